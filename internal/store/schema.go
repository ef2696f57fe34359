package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
)

// PrivateSchema creates a throw-away schema named prefix + random hex on the
// PostgreSQL server at base, and returns a URL whose search_path selects it
// (plus any extra connection parameters), so tests and benchmarks never
// touch the database's own tables. drop removes the schema and everything
// in it.
func PrivateSchema(ctx context.Context, base, prefix string, params url.Values) (dbURL string, drop func(), err error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("store: parse database URL: %w", err)
	}
	admin, err := Open(ctx, base, "")
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	if _, err := admin.Write().Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("store: create schema: %w", err)
	}
	drop = func() {
		_, _ = admin.Write().Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
