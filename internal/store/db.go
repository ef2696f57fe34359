// Package store keeps Parley's data in SQLite (the embedded default) or
// PostgreSQL. Both engines run the same SQL through database/sql: queries are
// written once with '?' placeholders and rebound for PostgreSQL, the schema
// uses the portable subset of types (see migrations/0001_init.sql), and the
// behavioural suite in storetest runs against both.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Engine names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is a connection to either engine. Writes go through Tx; reads may use
// Read, which on SQLite is a separate pool of read-only connections so reads
// never queue behind the single writer.
type DB struct {
	Engine string
	w      *sql.DB // writes (SQLite: exactly one connection)
	r      *sql.DB // reads (SQLite: several connections; PostgreSQL: same as w)
}

// Open connects to the database named by databaseURL: empty means a SQLite
// file "parley.db" in dataDir; "postgres://" or "postgresql://" means
// PostgreSQL; "sqlite:" or "file:" followed by a path means that SQLite file.
func Open(ctx context.Context, databaseURL, dataDir string) (*DB, error) {
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return openPostgres(ctx, databaseURL)
	case databaseURL == "":
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data dir: %w", err)
		}
		return openSQLite(ctx, filepath.Join(dataDir, "parley.db"))
	case strings.HasPrefix(databaseURL, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//"))
	case strings.HasPrefix(databaseURL, "file:"):
		return openSQLite(ctx, strings.TrimPrefix(databaseURL, "file:"))
	default:
		return nil, fmt.Errorf("store: unsupported database URL scheme (want postgres:// or sqlite:)")
	}
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create database dir: %w", err)
		}
	}
	pragmas := []string{
		// WAL lets readers run while the writer commits, and makes each
		// commit one append to the log instead of a journal rewrite.
		"journal_mode(WAL)",
		// NORMAL is durable against a process crash (SIGKILL) in WAL mode;
		// only an OS crash or power loss can drop the last commits.
		"synchronous(NORMAL)",
		// Wait for a lock instead of failing at once with SQLITE_BUSY (for
		// example while another process runs `parley migrate`).
		"busy_timeout(10000)",
		// SQLite does not enforce REFERENCES unless asked, per connection.
		"foreign_keys(1)",
		// Keep temporary b-trees (sorts, DISTINCT) in memory.
		"temp_store(MEMORY)",
		// A 64 MiB page cache per connection (negative = KiB).
		"cache_size(-65536)",
	}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	// The writer starts transactions with BEGIN IMMEDIATE so a transaction
	// that reads then writes never has to upgrade its lock and fail.
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	// SQLite has one writer at a time; a single connection queues writers in
	// Go instead of spinning on SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: ping sqlite: %w", err)
	}
	rq := url.Values{}
	for k, v := range q {
		rq[k] = v
	}
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite reader: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(0)
	return &DB{Engine: SQLite, w: w, r: r}, nil
}

func openPostgres(ctx context.Context, databaseURL string) (*DB, error) {
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: ping postgres: %w", err)
	}
	return &DB{Engine: Postgres, w: db, r: db}, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	err := db.w.Close()
	if db.r != db.w {
		if rerr := db.r.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Read returns a query runner on the read pool.
func (db *DB) Read() *Conn { return &Conn{q: db.r, pg: db.Engine == Postgres} }

// Write returns a query runner on the write pool, for single statements
// outside a transaction.
func (db *DB) Write() *Conn { return &Conn{q: db.w, pg: db.Engine == Postgres} }

// Tx runs fn in a transaction, committing when fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(tx *Conn) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	c := &Conn{q: tx, pg: db.Engine == Postgres, tx: true}
	if err := fn(c); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Conn runs queries written with '?' placeholders on either engine.
type Conn struct {
	q  sqlRunner
	pg bool
	tx bool
}

// Postgres reports whether the connection is to PostgreSQL.
func (c *Conn) Postgres() bool { return c.pg }

// InTx reports whether c runs inside a transaction.
func (c *Conn) InTx() bool { return c.tx }

// Exec runs a statement.
func (c *Conn) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.rebind(query), args...)
}

// Query runs a query returning rows.
func (c *Conn) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.rebind(query), args...)
}

// QueryRow runs a query returning at most one row.
func (c *Conn) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.rebind(query), args...)
}

// ILike returns the case-insensitive LIKE operator of the engine.
func (c *Conn) ILike() string {
	if c.pg {
		return "ILIKE"
	}
	return "LIKE" // SQLite's LIKE is case-insensitive for ASCII
}

// ForUpdateSkipLocked returns the row-locking clause for claiming work; empty
// on SQLite, where the single writer already serialises claims.
func (c *Conn) ForUpdateSkipLocked() string {
	if c.pg {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

var rebound sync.Map // query string -> rebound string

func (c *Conn) rebind(q string) string {
	if !c.pg {
		return q
	}
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	inStr := false
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case ch == '\'':
			inStr = !inStr
			b.WriteByte(ch)
		case ch == '?' && !inStr:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(ch)
		}
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either engine.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign-key violation.
func IsForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}
