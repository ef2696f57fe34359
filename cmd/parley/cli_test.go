package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// cli runs the parley command line in-process and returns what it printed.
func cli(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestHelpOnEveryCommand checks that -h and --help succeed on every command
// and subcommand, print to stdout, and list only that command's flags.
func TestHelpOnEveryCommand(t *testing.T) {
	serverOnly := []string{"-addr", "-public-url", "-rate-limit", "-log-level"}
	cases := []struct {
		path string
		want []string // flags the help must list
		not  []string // flags it must not list
	}{
		{"serve", []string{"-addr", "-data-dir", "-database-url", "-rate-limit"}, nil},
		{"migrate", []string{"-data-dir", "-database-url"}, serverOnly},
		{"version", nil, append([]string{"-data-dir"}, serverOnly...)},
		{"projects", []string{"create NAME", "list"}, serverOnly},
		{"projects create", []string{"-description", "-data-dir"}, append([]string{"-project"}, serverOnly...)},
		{"projects list", []string{"-data-dir"}, append([]string{"-description"}, serverOnly...)},
		{"keys", []string{"create --project ID", "revoke ID"}, serverOnly},
		{"keys create", []string{"-project", "-name", "-data-dir", "-database-url"}, serverOnly},
		{"keys list", []string{"-project"}, append([]string{"-name"}, serverOnly...)},
		{"keys revoke", []string{"-data-dir"}, append([]string{"-project"}, serverOnly...)},
		{"users", []string{"add --project ID", "list --project ID"}, serverOnly},
		{"users add", []string{"-project", "-email", "-name"}, serverOnly},
		{"users list", []string{"-project"}, append([]string{"-email"}, serverOnly...)},
		{"sandbox", []string{"send --config ID"}, serverOnly},
		{"sandbox send", []string{"-config", "-from", "-text", "-name"}, serverOnly},
	}
	for _, c := range cases {
		for _, h := range []string{"--help", "-h"} {
			args := append(strings.Fields(c.path), h)
			out, errOut, err := cli(t, args...)
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Errorf("parley %s %s: error %v", c.path, h, err)
				continue
			}
			if !strings.HasPrefix(out, "Usage: parley "+c.path) || errOut != "" {
				t.Errorf("parley %s %s: stdout %q, stderr %q", c.path, h, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("parley %s %s: help lacks %q:\n%s", c.path, h, w, out)
				}
			}
			for _, n := range c.not {
				if strings.Contains(out, "  "+n+" ") || strings.Contains(out, "  "+n+"\n") {
					t.Errorf("parley %s %s: help lists %q, not its flag:\n%s", c.path, h, n, out)
				}
			}
		}
	}
	// `parley help keys create` is `parley keys create --help`.
	out, _, err := cli(t, "help", "keys", "create")
	if !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(out, "Usage: parley keys create") {
		t.Errorf("help keys create: %v %q", err, out)
	}
	if out, _, err := cli(t, "--help"); err != nil || !strings.Contains(out, "Commands:") {
		t.Errorf("--help: %v %q", err, out)
	}
}

// TestUsageErrors checks that mistakes are refused with one plain sentence.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"keys"}, "parley keys needs a subcommand"},
		{[]string{"keys", "rotate"}, `unknown command "rotate" for parley keys`},
		{[]string{"keys", "create", "--bogus"}, "flag provided but not defined: -bogus (see 'parley keys create --help')"},
		{[]string{"keys", "create"}, "--project is required"},
		{[]string{"keys", "list", "extra"}, `unexpected argument "extra" (see 'parley keys list --help')`},
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus (see 'parley serve --help')"},
		{[]string{"users", "add", "--project", "p"}, "--email is required"},
		{[]string{"users", "add", "--project", "p", "--email", "nope"}, `"nope" is not a valid email address`},
		{[]string{"sandbox", "send", "--config", "c"}, "--config, --from and --text are required"},
		{[]string{"projects", "create"}, "give the project's name"},
	}
	for _, c := range cases {
		_, _, err := cli(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parley %v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestAdminCommandsRefuseMissingSQLiteStore checks that an admin command run
// where no data directory exists refuses, names the path and the setting to
// use, and creates nothing (no directory, no database, no secret key).
func TestAdminCommandsRefuseMissingSQLiteStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "elsewhere")
	for _, args := range [][]string{
		{"projects", "list"},
		{"projects", "create", "Acme"},
		{"keys", "create", "--project", "p"},
		{"keys", "list"},
		{"keys", "revoke", "pk_x"},
		{"users", "add", "--project", "p", "--email", "a@example.com"},
		{"users", "list", "--project", "p"},
		{"sandbox", "send", "--config", "c", "--from", "15550001111", "--text", "hi"},
	} {
		_, _, err := cli(t, append(args, "--data-dir", dir, "--database-url", "")...)
		if err == nil || !strings.Contains(err.Error(), "no Parley database at "+filepath.Join(dir, "parley.db")) ||
			!strings.Contains(err.Error(), "--data-dir (or PARLEY_DATA_DIR)") {
			t.Errorf("parley %v: error %v", args, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("parley %v created %s", args, dir)
		}
	}
}

// TestSandboxSendRefusesWithoutSecretKey checks that on PostgreSQL (where
// the database exists) sandbox send does not generate a secret key of its
// own when neither PARLEY_SECRET_KEY nor the data dir's key file exists.
func TestSandboxSendRefusesWithoutSecretKey(t *testing.T) {
	if os.Getenv(storetest.EnvPostgres) == "" {
		t.Skip("needs PostgreSQL: set " + storetest.EnvPostgres)
	}
	t.Setenv("PARLEY_SECRET_KEY", "")
	dir := filepath.Join(t.TempDir(), "elsewhere")
	_, _, err := cli(t, "sandbox", "send", "--config", "c", "--from", "15550001111", "--text", "hi",
		"--data-dir", dir, "--database-url", storetest.URL(t))
	if err == nil || !strings.Contains(err.Error(), "no secret key") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("sandbox send created %s", dir)
	}
}

// TestAdminCommandsOnAStore runs the admin commands against a store made by
// migrate, on SQLite or PostgreSQL (PARLEY_TEST_POSTGRES_URL).
func TestAdminCommandsOnAStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PARLEY_SECRET_KEY", "")
	dbURL := ""
	if os.Getenv(storetest.EnvPostgres) != "" {
		dbURL = storetest.URL(t)
	}
	storeFlags := []string{"--data-dir", dir, "--database-url", dbURL}
	must := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := cli(t, append(args, storeFlags...)...)
		if err != nil {
			t.Fatalf("parley %v: %v (stderr %s)", args, err, errOut)
		}
		return strings.TrimSpace(out), errOut
	}
	out, errOut := must("migrate")
	if out != "migrations applied" {
		t.Fatalf("migrate printed %q", out)
	}
	wantStore := "parley: store: SQLite " + filepath.Join(dir, "parley.db")
	if dbURL != "" {
		wantStore = "parley: store: PostgreSQL database"
	}
	if !strings.Contains(errOut, wantStore) {
		t.Fatalf("migrate stderr %q lacks %q", errOut, wantStore)
	}

	project, errOut := must("projects", "create", "Acme", "--description", "flags after the name")
	if !strings.Contains(errOut, wantStore) {
		t.Errorf("projects create stderr %q lacks %q", errOut, wantStore)
	}
	if list, _ := must("projects", "list"); !strings.Contains(list, project) || !strings.Contains(list, "Acme") {
		t.Errorf("projects list: %q", list)
	}
	key, _ := must("keys", "create", "--project", project, "--name", "ci")
	if !strings.HasPrefix(key, "pk_") {
		t.Fatalf("keys create printed %q", key)
	}
	if list, _ := must("keys", "list", "--project", project); !strings.Contains(list, "ci") || !strings.Contains(list, "active") {
		t.Errorf("keys list: %q", list)
	}
	user, _ := must("users", "add", "--project", project, "--email", "Ana@Example.com", "--name", "Ana")
	if list, _ := must("users", "list", "--project", project); !strings.Contains(list, user) || !strings.Contains(list, "ana@example.com") {
		t.Errorf("users list: %q", list)
	}
	// The prefix as keys list prints it, with its ellipsis.
	if out, _ := must("keys", "revoke", key[:10]+"…"); out != "revoked" {
		t.Errorf("keys revoke printed %q", out)
	}

	// Errors are sentences, without the API's machine codes.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "create", "--project", "nope"}, `no project with id "nope" (see 'parley projects list')`},
		{[]string{"users", "list", "--project", "nope"}, `no project with id "nope"`},
		{[]string{"keys", "revoke", "pk_nope"}, `no active API key with id or prefix "pk_nope"`},
		{[]string{"users", "add", "--project", project, "--email", "ana@example.com"}, "has already been taken"},
		{[]string{"sandbox", "send", "--config", "nope", "--from", "15550001111", "--text", "hi"}, `no WhatsApp config with id "nope"`},
	} {
		_, _, err := cli(t, append(c.args, storeFlags...)...)
		if err == nil || !strings.Contains(plain(err), c.want) || strings.Contains(plain(err), "not_found") {
			t.Errorf("parley %v: error %v, want %q", c.args, err, c.want)
		}
	}
}

func TestPlainErrors(t *testing.T) {
	if got := plain(parley.NotFound("Project")); got != "Project not found" {
		t.Errorf("plain(NotFound) = %q", got)
	}
	if got := plain(parley.Invalid("Validation failed", "Email is invalid")); got != "Validation failed (Email is invalid)" {
		t.Errorf("plain(Invalid) = %q", got)
	}
}

func TestDescribeStoreNeverShowsThePassword(t *testing.T) {
	got := describeStore(configFor("postgres://parley:s3cret@db.internal:5433/prod?sslmode=require", "x"))
	if got != `PostgreSQL database "prod" on db.internal:5433 as parley` || strings.Contains(got, "s3cret") {
		t.Errorf("describeStore = %q", got)
	}
	if got := describeStore(configFor("", "data")); !strings.HasPrefix(got, "SQLite /") || !strings.HasSuffix(got, "/data/parley.db") {
		t.Errorf("describeStore(SQLite) = %q", got)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/parleyhq/parley", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-04T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	var b bytes.Buffer
	readBuildInfo(bi, true, "").print(&b)
	want := "parley v1.2.3\n  revision  0123456789abcdef (modified)\n  committed 2026-12-04T10:00:00Z\n  go        go1.26.0 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if b.String() != want {
		t.Errorf("version output:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	readBuildInfo(nil, false, "v9.9.9").print(&b)
	if !strings.HasPrefix(b.String(), "parley v9.9.9\n  go        "+runtime.Version()) {
		t.Errorf("version without build info:\n%s", b.String())
	}
	out, _, err := cli(t, "version")
	if err != nil || !strings.HasPrefix(out, "parley ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("parley version: %v %q", err, out)
	}
}

func configFor(databaseURL, dataDir string) config.Config {
	return config.Config{DatabaseURL: databaseURL, DataDir: dataDir}
}
