package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/store"
)

// users manages a project's users: the people conversations can be
// assigned to (Kapso's v1 API has no endpoint to create them, so the CLI
// does). The API offers the same at /users.
var users = group("users", `Usage: parley users <subcommand> [flags]

Subcommands:
  add --project ID --email E [--name N]   add a user to a project and print its id
  list --project ID                       list a project's users

Run 'parley users <subcommand> --help' for its flags.
`, map[string]command{"add": usersAdd, "list": usersList})

func usersAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("users add", "--project ID --email E [--name N]", "Add a user to a project and print the user's id.")
	project := fs.String("project", "", "project id (required)")
	email := fs.String("email", "", "the user's email address (required)")
	name := fs.String("name", "", "the user's name")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	if err := noArgs(fs, args, stdout); err != nil {
		return err
	}
	if *project == "" {
		return seeHelp(fs, errors.New("--project is required"))
	}
	e, ok := platform.NormalizeEmail(*email)
	if e == "" {
		return seeHelp(fs, errors.New("--email is required"))
	}
	if !ok {
		return fmt.Errorf("%q is not a valid email address", *email)
	}
	db, err := openAdminStore(ctx, *cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkProject(ctx, db, *project); err != nil {
		return err
	}
	u := &parley.User{ProjectID: *project, Email: e}
	if n := strings.TrimSpace(*name); n != "" {
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
}

func usersList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("users list", "--project ID", "List a project's users.")
	project := fs.String("project", "", "project id (required)")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	if err := noArgs(fs, args, stdout); err != nil {
		return err
	}
	if *project == "" {
		return seeHelp(fs, errors.New("--project is required"))
	}
	db, err := openAdminStore(ctx, *cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkProject(ctx, db, *project); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tCREATED")
	for page := 1; ; page++ {
		us, total, err := platform.ListUsers(ctx, db.Read(), *project, platform.UserFilter{}, parley.Page{Page: page, PerPage: 100})
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
