package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/store"
)

// users manages a project's users (README decision 9): the people
// conversations can be assigned to. The API offers the same at /users.
func users(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: parley users add --project ID --email E [--name N] | list --project ID"
	if len(args) == 0 {
		return errors.New(usage)
	}
	sub := args[0]
	var project, email, name string
	cfg, err := load("users "+sub, args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&project, "project", "", "project id")
		fs.StringVar(&email, "email", "", "the user's email address")
		fs.StringVar(&name, "name", "", "the user's name")
	})
	if err != nil {
		return err
	}
	if sub != "add" && sub != "list" {
		return fmt.Errorf("unknown users command %q; %s", sub, usage)
	}
	if project == "" {
		return errors.New(usage)
	}
	db, err := openStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := store.GetProject(ctx, db.Read(), project); err != nil {
		return err
	}
	switch sub {
	case "add":
		e, ok := platform.NormalizeEmail(email)
		if e == "" {
			return errors.New("--email is required")
		}
		if !ok {
			return fmt.Errorf("invalid email %q", email)
		}
		u := &parley.User{ProjectID: project, Email: e}
		if n := strings.TrimSpace(name); n != "" {
			u.Name = &n
		}
		if err := db.Tx(ctx, func(tx *store.Conn) error { return platform.CreateUser(ctx, tx, u) }); err != nil {
			var pe *parley.Error
			if errors.As(err, &pe) && len(pe.Details) > 0 {
				return errors.New(strings.Join(pe.Details, "; "))
			}
			return err
		}
		fmt.Fprintln(stdout, u.ID)
		return nil
	default:
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tCREATED")
		for page := 1; ; page++ {
			us, total, err := platform.ListUsers(ctx, db.Read(), project, platform.UserFilter{}, parley.Page{Page: page, PerPage: 100})
			if err != nil {
				return err
			}
			for _, u := range us {
				n := ""
				if u.Name != nil {
					n = *u.Name
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.ID, u.Email, n, u.CreatedAt.Format("2006-01-02T15:04:05Z"))
			}
			if page*100 >= total {
				break
			}
		}
		return tw.Flush()
	}
}
