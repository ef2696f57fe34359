// Command parley runs Parley, the self-hostable WhatsApp Business platform
// that speaks Kapso's v1 API, and manages its projects, keys and users.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store"
)

const usage = `Parley: a self-hostable WhatsApp Business platform that speaks Kapso's v1 API.

Usage: parley <command> [subcommand] [flags]

Commands:
  serve        run the API and the workers (creates the data directory on first start)
  migrate      apply database migrations and exit (creates the data directory too)
  projects     create and list projects
  keys         create, list and revoke API keys
  users        add and list a project's users
  sandbox      play a customer writing to a sandbox number
  version      print the version and build information

Run 'parley <command> --help' for a command's subcommands and flags.
Configuration comes from flags and PARLEY_* environment variables; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "parley:", plain(err))
		os.Exit(1)
	}
}

// plain renders err as a sentence for the operator: a Parley error gives
// its title, message and details without the machine code ("not_found")
// the API uses to pick a status.
func plain(err error) string {
	var pe *parley.Error
	if !errors.As(err, &pe) {
		return err.Error()
	}
	parts := []string{pe.Title}
	if pe.Message != "" {
		parts = append(parts, pe.Message)
	}
	s := strings.Join(parts, ": ")
	if len(pe.Details) > 0 {
		s += " (" + strings.Join(pe.Details, "; ") + ")"
	}
	return s
}

// command is the signature of every command and subcommand: args are what
// follows its name on the command line.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	commands := map[string]command{
		"serve":    serve,
		"migrate":  migrate,
		"projects": projects,
		"keys":     keys,
		"users":    users,
		"sandbox":  sandbox,
		"version":  versionCmd,
	}
	if f, ok := commands[cmd]; ok {
		return f(ctx, rest, stdout, stderr)
	}
	switch cmd {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 { // `parley help keys create` = `parley keys create --help`
			return run(ctx, append(append([]string{}, rest...), "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// group runs a command made of subcommands (projects, keys, users,
// sandbox). Its usage lists them; a missing or unknown subcommand is an
// error and --help is not.
func group(name, usage string, subs map[string]command) command {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if len(args) == 0 {
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("parley %s needs a subcommand", name)
		}
		if isHelp(args[0]) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		f, ok := subs[args[0]]
		if !ok {
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("unknown command %q for parley %s", args[0], name)
		}
		return f(ctx, args[1:], stdout, stderr)
	}
}

// newFlags returns the flag set of the (sub)command path ("keys create").
// Its help, printed by parseFlags for -h or --help, shows the synopsis
// (path and operands), what the command does and only the flags registered
// on this set.
func newFlags(path, operands, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: parley %s\n\n%s\n", strings.TrimSpace(path+" "+operands), about)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// seeHelp appends the hint to read the command's help to a usage error.
func seeHelp(fs *flag.FlagSet, err error) error {
	return fmt.Errorf("%v (see 'parley %s --help')", err, fs.Name())
}

// parseFlags parses args with fs and returns the positional arguments.
// Flags may follow positional ones (`projects create NAME --description D`).
// For -h or --help it prints the help to stdout and returns flag.ErrHelp,
// which main treats as success; other errors come back as one sentence.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, seeHelp(fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil // everything after "--" is positional
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// noArgs parses the flags of a command that takes no positional argument.
func noArgs(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	pos, err := parseFlags(fs, args, stdout)
	if err == nil && len(pos) > 0 {
		err = seeHelp(fs, fmt.Errorf("unexpected argument %q", pos[0]))
	}
	return err
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "[flags]", "Run the API and the background workers until interrupted. On first start\n"+
		"with an empty store it creates the data directory, a project, an API key\n"+
		"(printed once) and a sandbox WhatsApp number.")
	cfg, err := loadConfig(fs, args, stdout)
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg, stderr)
	log.Info("opening store", slog.String("store", describeStore(cfg)))
	a, err := app.New(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "[--data-dir DIR] [--database-url URL]", "Apply the database migrations and exit. On SQLite it creates the data\n"+
		"directory, the database and the secret key when they do not exist yet.")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	if _, err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "parley: store: %s\n", describeStore(*cfg))
	db, _, err := app.Open(ctx, *cfg, app.NewLogger(*cfg, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func versionCmd(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("version", "", "Print Parley's version, the VCS revision it was built from and the Go version.")
	if _, err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	printVersion(stdout)
	return nil
}

// loadConfig is serve's configuration: every setting's flag and the
// environment.
func loadConfig(fs *flag.FlagSet, args []string, stdout io.Writer) (config.Config, error) {
	fs.SetOutput(io.Discard)
	cfg, err := config.Load(fs, args, os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
	case err != nil && !strings.HasPrefix(err.Error(), "config:"):
		err = seeHelp(fs, err) // a flag error; config: errors name the variable
	case err == nil && fs.NArg() > 0:
		err = seeHelp(fs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	return cfg, err
}

var projects = group("projects", `Usage: parley projects <subcommand> [flags]

Subcommands:
  create NAME [--description TEXT]   create a project and print its id
  list                               list projects

Run 'parley projects <subcommand> --help' for its flags.
`, map[string]command{"create": projectsCreate, "list": projectsList})

func projectsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("projects create", "NAME [--description TEXT]", "Create a project and print its id.")
	desc := fs.String("description", "", "project description")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return errors.New("give the project's name: parley projects create NAME")
	}
	db, err := openAdminStore(ctx, *cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	var d *string
	if *desc != "" {
		d = desc
	}
	p, err := store.CreateProject(ctx, db.Write(), pos[0], d)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, p.ID)
	return nil
}

func projectsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("projects list", "", "List every project, oldest first.")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	if err := noArgs(fs, args, stdout); err != nil {
		return err
	}
	db, err := openAdminStore(ctx, *cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
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

var keys = group("keys", `Usage: parley keys <subcommand> [flags]

Subcommands:
  create --project ID [--name NAME]   create an API key and print it (shown once)
  list [--project ID]                 list API keys (prefixes only)
  revoke ID                           revoke an API key by id or prefix

Run 'parley keys <subcommand> --help' for its flags.
`, map[string]command{"create": keysCreate, "list": keysList, "revoke": keysRevoke})

func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys create", "--project ID [--name NAME]", "Create an API key for a project and print it. Only a hash is stored:\n"+
		"the key is shown this once.")
	project := fs.String("project", "", "project id (required; see 'parley projects list')")
	name := fs.String("name", "", "a label for the key")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	if err := noArgs(fs, args, stdout); err != nil {
		return err
	}
	if *project == "" {
		return errors.New("--project is required: parley keys create --project ID")
	}
	db, err := openAdminStore(ctx, *cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkProject(ctx, db, *project); err != nil {
		return err
	}
	key := store.GenerateAPIKey()
	if _, err := store.CreateAPIKey(ctx, db.Write(), *project, *name, key); err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	return nil
}

func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys list", "[--project ID]", "List API keys: id, project, prefix, label and status. Keys themselves\n"+
		"are stored hashed and cannot be shown again.")
	project := fs.String("project", "", "only this project's keys")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	if err := noArgs(fs, args, stdout); err != nil {
		return err
	}
	db, err := openAdminStore(ctx, *cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	ks, err := store.ListAPIKeys(ctx, db.Read(), *project)
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
}

func keysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys revoke", "ID", "Revoke an API key, given its id or its prefix (see 'parley keys list').\n"+
		"Requests with it are refused from then on.")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("give the key's id or prefix: parley keys revoke ID")
	}
	db, err := openAdminStore(ctx, *cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	// keys list prints prefixes with an ellipsis; accept them pasted as is.
	if err := store.RevokeAPIKey(ctx, db.Write(), strings.TrimSuffix(pos[0], "…")); err != nil {
		if parley.IsNotFound(err) {
			return fmt.Errorf("no active API key with id or prefix %q (see 'parley keys list')", pos[0])
		}
		return err
	}
	fmt.Fprintln(stdout, "revoked")
	return nil
}

// checkProject answers a plain sentence when the project does not exist.
func checkProject(ctx context.Context, db *store.DB, id string) error {
	_, err := store.GetProject(ctx, db.Read(), id)
	if parley.IsNotFound(err) {
		return fmt.Errorf("no project with id %q (see 'parley projects list')", id)
	}
	return err
}
