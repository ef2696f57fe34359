// Package storetest opens a fresh, migrated database for a test: a SQLite file
// in t.TempDir() by default, or a private schema on the PostgreSQL server
// named by PARLEY_TEST_POSTGRES_URL, dropped when the test ends. The whole
// suite runs on either engine this way, and parallel runs never collide.
package storetest

import (
	"context"
	"os"
	"testing"

	"github.com/parleyhq/parley/internal/store"
)

// EnvPostgres names the environment variable that switches tests to PostgreSQL.
const EnvPostgres = "PARLEY_TEST_POSTGRES_URL"

// URL returns a database URL for a fresh database, and registers its removal
// with t. Use it where a test starts a whole server (or a second process) on
// the same database; use Open for a store.DB.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		return "sqlite:" + t.TempDir() + "/parley.db"
	}
	dbURL, drop, err := store.PrivateSchema(context.Background(), base, "parley_test_", nil)
	if err != nil {
		t.Fatalf("storetest: %s: %v", EnvPostgres, err)
	}
	t.Cleanup(drop)
	return dbURL
}

// Open returns a migrated database for the test, closed when it ends.
func Open(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, URL(t), "")
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrate: %v", err)
	}
	return db
}
