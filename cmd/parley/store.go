package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
)

// adminConfig reads the environment and registers on fs the two flags that
// say which store an admin command opens, so its help lists those and not
// the server's settings.
func adminConfig(fs *flag.FlagSet) (*config.Config, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the data directory of the Parley to manage (PARLEY_DATA_DIR)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "postgres:// URL; empty = SQLite in the data dir (PARLEY_DATABASE_URL)")
	return &cfg, nil
}

// openAdminStore opens the store of an existing Parley for the admin
// commands (projects, keys, users). Unlike serve and migrate it never
// creates a SQLite database: run from another folder, it would otherwise
// start a second, empty Parley beside the real one. It says on stderr which
// store it opened.
func openAdminStore(ctx context.Context, cfg config.Config, stderr io.Writer) (*store.DB, error) {
	if err := checkStoreExists(cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "parley: store: %s\n", describeStore(cfg))
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openAdminStoreWithKey is openAdminStore for commands that read or write
// secrets (the sandbox signs with its config's app secret), so they need the
// secret key the server uses. They refuse rather than generate a new key,
// which would leave the server unable to read what they write.
func openAdminStoreWithKey(ctx context.Context, cfg config.Config, stderr io.Writer) (*store.DB, *secrets.Box, error) {
	if err := checkStoreExists(cfg); err != nil {
		return nil, nil, err
	}
	if cfg.SecretKey == "" {
		if _, err := os.Stat(cfg.SecretKeyFile()); err != nil {
			return nil, nil, fmt.Errorf("no secret key: PARLEY_SECRET_KEY is not set and %s does not exist; "+
				"set PARLEY_SECRET_KEY to the key the server uses, or point --data-dir (PARLEY_DATA_DIR) at the server's data directory",
				absPath(cfg.SecretKeyFile()))
		}
	}
	fmt.Fprintf(stderr, "parley: store: %s\n", describeStore(cfg))
	return app.Open(ctx, cfg, app.NewLogger(cfg, stderr))
}

// checkStoreExists refuses a SQLite database that does not exist yet.
func checkStoreExists(cfg config.Config) error {
	path, ok := store.SQLitePath(cfg.DatabaseURL, cfg.DataDir)
	if !ok {
		return nil // PostgreSQL: the server owns creating it
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no Parley database at %s. Point --data-dir (or PARLEY_DATA_DIR) at the data directory of your Parley, "+
			"or --database-url (PARLEY_DATABASE_URL) at its database; 'parley serve' and 'parley migrate' create a new one",
			absPath(path))
	} else if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	return nil
}

// describeStore names the store for the operator: the SQLite file's
// absolute path, or PostgreSQL's host and database (never the password).
func describeStore(cfg config.Config) string {
	if path, ok := store.SQLitePath(cfg.DatabaseURL, cfg.DataDir); ok {
		return "SQLite " + absPath(path)
	}
	if !store.IsPostgresURL(cfg.DatabaseURL) {
		return "unsupported database URL"
	}
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		return "PostgreSQL (unparsable URL)"
	}
	q := u.Query()
	host := u.Host
	if host == "" {
		host = q.Get("host")
	}
	if host == "" {
		host = "localhost"
	}
	db := u.Path
	if len(db) > 0 && db[0] == '/' {
		db = db[1:]
	}
	if db == "" {
		db = q.Get("dbname")
	}
	s := fmt.Sprintf("PostgreSQL database %q on %s", db, host)
	if u.User != nil && u.User.Username() != "" {
		s += " as " + u.User.Username()
	}
	return s
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
