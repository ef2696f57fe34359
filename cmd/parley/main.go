// Command parley runs Parley, the self-hostable WhatsApp Business platform
// that speaks Kapso's v1 API, and manages its projects, keys and users.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store"
)

const usage = `Usage: parley <command> [flags]

Commands:
  serve                           run the API and the workers
  migrate                         apply database migrations and exit
  projects create NAME            create a project
  projects list                   list projects
  keys create --project ID        create an API key (printed once)
  keys list [--project ID]        list API keys
  keys revoke ID                  revoke an API key
  users add --project ID --email E [--name N]
  users list --project ID
  sandbox send --config ID --from NUMBER --text TEXT [--name NAME]
  version                         print the version

Configuration comes from flags and PARLEY_* environment variables; see README.md.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "parley:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr)
	case "migrate":
		cfg, err := load("migrate", rest, stderr, nil)
		if err != nil {
			return err
		}
		db, _, err := app.Open(ctx, cfg, app.NewLogger(cfg, stderr))
		if err != nil {
			return err
		}
		defer db.Close()
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	case "projects":
		return projects(ctx, rest, stdout, stderr)
	case "keys":
		return keys(ctx, rest, stdout, stderr)
	case "users":
		return users(ctx, rest, stdout, stderr)
	case "sandbox":
		return sandbox(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "parley", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// load parses flags and the environment into a Config. extra registers
// command-specific flags before parsing.
func load(name string, args []string, stderr io.Writer, extra func(fs *flag.FlagSet)) (config.Config, error) {
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if extra != nil {
		extra(fs)
	}
	return config.Load(fs, args, os.Getenv)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := load("serve", args, stderr, nil)
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg, stderr)
	a, err := app.New(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// openStore opens and migrates the store for the management commands.
func openStore(ctx context.Context, cfg config.Config, stderr io.Writer) (*store.DB, error) {
	db, _, err := app.Open(ctx, cfg, app.NewLogger(cfg, stderr))
	return db, err
}

func projects(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: parley projects create NAME | list")
	}
	sub := args[0]
	var desc string
	cfg, err := load("projects "+sub, args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&desc, "description", "", "project description")
	})
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	fsArgs := flagArgs(args[1:])
	switch sub {
	case "create":
		if len(fsArgs) == 0 {
			return errors.New("usage: parley projects create NAME")
		}
		var d *string
		if desc != "" {
			d = &desc
		}
		p, err := store.CreateProject(ctx, db.Write(), fsArgs[0], d)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, p.ID)
		return nil
	case "list":
		ps, err := store.ListProjects(ctx, db.Read())
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Name, p.CreatedAt.Format("2006-01-02T15:04:05Z"))
		}
		return tw.Flush()
	}
	return fmt.Errorf("unknown projects command %q", sub)
}

func keys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: parley keys create --project ID | list | revoke ID")
	}
	sub := args[0]
	var project, name string
	cfg, err := load("keys "+sub, args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&project, "project", "", "project id")
		fs.StringVar(&name, "name", "", "a label for the key")
	})
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "create":
		if project == "" {
			return errors.New("usage: parley keys create --project ID")
		}
		if _, err := store.GetProject(ctx, db.Read(), project); err != nil {
			return err
		}
		key := store.GenerateAPIKey()
		if _, err := store.CreateAPIKey(ctx, db.Write(), project, name, key); err != nil {
			return err
		}
		fmt.Fprintln(stdout, key)
		return nil
	case "list":
		ks, err := store.ListAPIKeys(ctx, db.Read(), project)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPROJECT\tPREFIX\tNAME\tSTATUS")
		for _, k := range ks {
			status := "active"
			if k.RevokedAt != nil {
				status = "revoked"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\n", k.ID, k.ProjectID, k.Prefix, k.Name, status)
		}
		return tw.Flush()
	case "revoke":
		rest := flagArgs(args[1:])
		if len(rest) == 0 {
			return errors.New("usage: parley keys revoke ID")
		}
		if err := store.RevokeAPIKey(ctx, db.Write(), rest[0]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "revoked")
		return nil
	}
	return fmt.Errorf("unknown keys command %q", sub)
}

// flagArgs returns the positional arguments among args (those not starting
// with '-' and not the value of a flag).
func flagArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			if !containsEq(a) && i+1 < len(args) && !isBoolFlag(a) {
				i++
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

func containsEq(s string) bool {
	for _, c := range s {
		if c == '=' {
			return true
		}
	}
	return false
}

func isBoolFlag(string) bool { return false }
