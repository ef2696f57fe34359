package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the PostgreSQL advisory lock that serialises migrations
// when several parley processes start at once.
const migrationLockKey = 7226_1_0001

// Migrate applies every embedded migration not yet applied. Each file runs in
// its own transaction together with its schema_migrations row.
func (db *DB) Migrate(ctx context.Context) error {
	if db.Engine == Postgres {
		conn, err := db.w.Conn(ctx)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return fmt.Errorf("store: migrate lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	files, err := migrationFiles(migrationFS, db.Engine)
	if err != nil {
		return err
	}
	for _, m := range files {
		f, base, v := m.path, m.base, m.version
		var n int
		if err := db.Write().QueryRow(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", v).Scan(&n); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrationFS.ReadFile(f)
		if err != nil {
			return err
		}
		err = db.Tx(ctx, func(tx *Conn) error {
			for _, stmt := range splitStatements(string(body)) {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("store: migration %s: %w\n%s", base, err, stmt)
				}
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", v, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// migration is one embedded migration file that applies to an engine.
type migration struct {
	path, base string
	version    int
}

// migrationFiles lists the migrations of engine in version order. A file
// named NNNN_name.sql applies on both engines; NNNN_name.sqlite.sql and
// NNNN_name.postgres.sql only on that engine (for DDL the one dialect
// cannot express: triggers, virtual tables, extensions). An engine sees at
// most one file per version.
func migrationFiles(fsys fs.FS, engine string) ([]migration, error) {
	paths, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []migration
	seen := map[int]string{}
	for _, f := range paths {
		base := strings.TrimPrefix(f, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: bad version prefix", base)
		}
		name := strings.TrimSuffix(base, ".sql")
		switch {
		case strings.HasSuffix(name, "."+SQLite):
			if engine != SQLite {
				continue
			}
		case strings.HasSuffix(name, "."+Postgres):
			if engine != Postgres {
				continue
			}
		case strings.Contains(name, "."):
			return nil, fmt.Errorf("store: migration %s: unknown engine suffix", base)
		}
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("store: migrations %s and %s share version %d", prev, base, v)
		}
		seen[v] = base
		out = append(out, migration{path: f, base: base, version: v})
	}
	return out, nil
}

// splitStatements splits a migration on semicolons at line ends, dropping
// comment-only chunks. Migrations keep one statement per ';'-terminated line,
// except a CREATE TRIGGER, which runs to its line "END;".
func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	trigger := false
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		if cur.Len() == 0 {
			trigger = strings.HasPrefix(strings.ToUpper(trimmed), "CREATE TRIGGER")
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if trigger && !strings.EqualFold(trimmed, "END;") {
			continue
		}
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}
