// Package store keeps Parley's data in SQLite (the embedded default) or
// PostgreSQL. Both engines run the same SQL through database/sql: queries are
// written once with '?' placeholders and rebound for PostgreSQL, the schema
// uses the portable subset of types (see migrations/0001_init.sql), and the
// behavioural suite in storetest runs against both.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

	// SQLite only: prepared statements per pool. The modernc driver would
	// otherwise parse and plan every statement on every call; pgx caches
	// prepared statements per connection by itself.
	wStmts, rStmts *stmtCache

	group     chan *groupReq // SQLite only: transactions waiting for a group commit
	groupOnce sync.Once
	// SQLite only: group transactions committed, and the TxGroup calls
	// they carried (see GroupStats).
	groupCommits, groupMembers atomic.Int64

	ck             *sql.DB // SQLite only: runs WAL checkpoints
	stopCk, ckDone chan struct{}
	closeOnce      sync.Once
}

// checkpointInterval is how often the WAL is copied back into the database.
const checkpointInterval = time.Second

// checkpointLoop checkpoints the WAL in the background. PASSIVE never waits
// for readers or writers; it copies what it can. Once a minute a RESTART
// checkpoint (which waits briefly, up to busy_timeout) lets the WAL be
// reused from its start so it does not grow without bound.
func (db *DB) checkpointLoop() {
	defer close(db.ckDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-db.stopCk:
			_, _ = db.ck.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			return
		case <-t.C:
		}
		mode := "PASSIVE"
		if n%60 == 0 {
			mode = "RESTART"
		}
		_, _ = db.ck.Exec("PRAGMA wal_checkpoint(" + mode + ")")
	}
}

// Open connects to the database named by databaseURL: empty means a SQLite
// file "parley.db" in dataDir; "postgres://" or "postgresql://" means
// PostgreSQL; "sqlite:" or "file:" followed by a path means that SQLite file.
// A SQLite file that does not exist is created, with its directory.
func Open(ctx context.Context, databaseURL, dataDir string) (*DB, error) {
	if IsPostgresURL(databaseURL) {
		return openPostgres(ctx, databaseURL)
	}
	path, ok := SQLitePath(databaseURL, dataDir)
	if !ok {
		return nil, fmt.Errorf("store: unsupported database URL scheme (want postgres:// or sqlite:)")
	}
	return openSQLite(ctx, path)
}

// IsPostgresURL reports whether databaseURL names a PostgreSQL database.
func IsPostgresURL(databaseURL string) bool {
	return strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://")
}

// SQLitePath returns the SQLite file Open would use for databaseURL and
// dataDir; ok is false when databaseURL names no SQLite file.
func SQLitePath(databaseURL, dataDir string) (path string, ok bool) {
	switch {
	case databaseURL == "":
		return filepath.Join(dataDir, "parley.db"), true
	case strings.HasPrefix(databaseURL, "sqlite:"):
		return strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//"), true
	case strings.HasPrefix(databaseURL, "file:"):
		return strings.TrimPrefix(databaseURL, "file:"), true
	}
	return "", false
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
	// Checkpoints (copying the WAL back into the database, with an fsync)
	// would otherwise run inside whichever commit crosses the threshold,
	// stalling every writer queued behind it; a background connection runs
	// them instead (see checkpointLoop).
	wq.Add("_pragma", "wal_autocheckpoint(0)")
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
	ck, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("store: open sqlite checkpointer: %w", err)
	}
	ck.SetMaxOpenConns(1)
	db := &DB{Engine: SQLite, w: w, r: r, wStmts: &stmtCache{db: w}, rStmts: &stmtCache{db: r},
		ck: ck, stopCk: make(chan struct{}), ckDone: make(chan struct{})}
	go db.checkpointLoop()
	return db, nil
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
	if db.ck != nil {
		db.closeOnce.Do(func() {
			close(db.stopCk)
			<-db.ckDone
			db.ck.Close()
		})
	}
	for _, c := range []*stmtCache{db.wStmts, db.rStmts} {
		if c != nil {
			c.m.Range(func(_, v any) bool {
				if st, ok := v.(*sql.Stmt); ok {
					st.Close()
				}
				return true
			})
		}
	}
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
func (db *DB) Read() *Conn { return &Conn{q: db.r, pg: db.Engine == Postgres, stmts: db.rStmts} }

// Write returns a query runner on the write pool, for single statements
// outside a transaction.
func (db *DB) Write() *Conn { return &Conn{q: db.w, pg: db.Engine == Postgres, stmts: db.wStmts} }

// Tx runs fn in a transaction, committing when fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(tx *Conn) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	c := &Conn{q: tx, pg: db.Engine == Postgres, tx: true, stmts: db.wStmts, sqlTx: tx}
	if err := fn(c); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// TxGroup runs fn in a transaction like Tx, but on SQLite it may share the
// transaction (and its commit) with other TxGroup calls running at the same
// time: under load this turns many small commits into few larger ones. The
// group's fns run one after the other in one transaction; when one of them
// fails, the whole group is rolled back and each fn runs again alone, in a
// transaction of its own, so an fn that fails is rolled back alone and only
// its caller sees the error. fn may therefore run twice: it must have no
// effects outside the database other than results it sets afresh at its
// start, and nothing that assumes its commit (wake workers after TxGroup
// returns, not inside fn). On PostgreSQL it is Tx.
func (db *DB) TxGroup(ctx context.Context, fn func(tx *Conn) error) error {
	if db.Engine != SQLite {
		return db.Tx(ctx, fn)
	}
	db.groupOnce.Do(func() {
		db.group = make(chan *groupReq, 1024)
		go db.groupLoop()
	})
	req := &groupReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case db.group <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// GroupStats reports, on SQLite, how many group transactions TxGroup has
// run and how many TxGroup calls they carried: their ratio is the mean
// number of transactions sharing a commit.
func (db *DB) GroupStats() (groups, members int64) {
	return db.groupCommits.Load(), db.groupMembers.Load()
}

type groupReq struct {
	ctx  context.Context
	fn   func(tx *Conn) error
	done chan error
}

// maxGroup bounds how many transactions share one commit, so one group's
// latency stays small.
const maxGroup = 128

func (db *DB) groupLoop() {
	for first := range db.group {
		reqs := []*groupReq{first}
	drain:
		for len(reqs) < maxGroup {
			select {
			case r := <-db.group:
				reqs = append(reqs, r)
			default:
				break drain
			}
		}
		db.runGroup(reqs)
	}
}

// runGroup runs reqs in one transaction. No SAVEPOINT is taken per member:
// a savepoint makes SQLite copy every page a member changes into its
// statement journal first, which cost as much as a member's own writes.
// Members fail rarely (a concurrent duplicate, a deleted config), so a
// failure instead rolls the whole group back and runs each member again in
// a transaction of its own; a member whose context has ended by then gets
// its context's error, having stored nothing.
func (db *DB) runGroup(reqs []*groupReq) {
	results := make([]error, len(reqs))
	live := 0
	for i, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		live++
	}
	var err error
	memberFailed := false
	if live > 0 {
		db.groupCommits.Add(1)
		db.groupMembers.Add(int64(live))
		err = db.Tx(context.Background(), func(tx *Conn) error {
			for i, r := range reqs {
				if results[i] != nil {
					continue
				}
				if err := safeCall(r.fn, tx); err != nil {
					memberFailed = true
					return err
				}
			}
			return nil
		})
	}
	if memberFailed && live > 1 {
		// Run every member alone: the one that failed fails again (or
		// not: its failure may have come from another member's writes,
		// such as a unique key both inserted), the others commit.
		for i, r := range reqs {
			if results[i] != nil {
				continue
			}
			if results[i] = r.ctx.Err(); results[i] == nil {
				results[i] = db.Tx(context.Background(), func(tx *Conn) error { return safeCall(r.fn, tx) })
			}
		}
		err = nil
	}
	for i, r := range reqs {
		if err != nil && results[i] == nil {
			results[i] = err
		}
		r.done <- results[i]
	}
}

func safeCall(fn func(tx *Conn) error, tx *Conn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: panic in transaction: %v", p)
		}
	}()
	return fn(tx)
}

// stmtCache holds prepared statements of one pool, by query text.
type stmtCache struct {
	db *sql.DB
	m  sync.Map // string -> *sql.Stmt, or preparing while being prepared
}

// preparing marks a statement being prepared in the background.
type preparing struct{}

// lookup returns the cached statement for q. When there is none it starts
// preparing one in the background and reports false: the caller runs the
// query unprepared this time. Preparing in the background matters on the
// SQLite writer, whose only connection may be held by the caller's own
// transaction.
func (c *stmtCache) lookup(q string) (*sql.Stmt, bool) {
	v, loaded := c.m.LoadOrStore(q, preparing{})
	if loaded {
		st, ok := v.(*sql.Stmt)
		return st, ok
	}
	go func() {
		st, err := c.db.PrepareContext(context.Background(), q)
		if err != nil {
			c.m.Delete(q) // not preparable (rare); try again next time
			return
		}
		c.m.Store(q, st)
	}()
	return nil, false
}

type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Conn runs queries written with '?' placeholders on either engine.
type Conn struct {
	q     sqlRunner
	pg    bool
	tx    bool
	stmts *stmtCache // nil: no statement cache (PostgreSQL)
	sqlTx *sql.Tx
	// txStmts are the cached statements already bound to sqlTx: binding
	// costs a few microseconds per call, and a group commit runs many
	// small transactions' statements in one sqlTx.
	txStmts map[string]*sql.Stmt
}

// stmt returns the cached prepared statement for q, bound to the
// transaction when c is one; ok is false when there is no cache.
func (c *Conn) stmt(ctx context.Context, q string) (*sql.Stmt, bool) {
	if c.stmts == nil {
		return nil, false
	}
	st, ok := c.stmts.lookup(q)
	if !ok {
		return nil, false
	}
	if c.sqlTx != nil {
		if ts, ok := c.txStmts[q]; ok {
			return ts, true
		}
		ts := c.sqlTx.StmtContext(ctx, st)
		if c.txStmts == nil {
			c.txStmts = map[string]*sql.Stmt{}
		}
		c.txStmts[q] = ts
		return ts, true
	}
	return st, true
}

// Postgres reports whether the connection is to PostgreSQL.
func (c *Conn) Postgres() bool { return c.pg }

// InTx reports whether c runs inside a transaction.
func (c *Conn) InTx() bool { return c.tx }

// Exec runs a statement.
func (c *Conn) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := c.stmt(ctx, query); ok {
		return st.ExecContext(ctx, args...)
	}
	return c.q.ExecContext(ctx, c.rebind(query), args...)
}

// Query runs a query returning rows.
func (c *Conn) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := c.stmt(ctx, query); ok {
		return st.QueryContext(ctx, args...)
	}
	return c.q.QueryContext(ctx, c.rebind(query), args...)
}

// QueryRow runs a query returning at most one row.
func (c *Conn) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := c.stmt(ctx, query); ok {
		return st.QueryRowContext(ctx, args...)
	}
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

var (
	rebound  sync.Map // query string -> rebound string
	reboundN atomic.Int64
)

// reboundMax bounds the rebind cache.
const reboundMax = 4096

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
	// The statements are constants but for a few with a literal written
	// in (the PostgreSQL contact name search): the cache stops growing at
	// reboundMax entries, so those cannot grow it without bound.
	if reboundN.Load() < reboundMax {
		if _, loaded := rebound.LoadOrStore(q, out); !loaded {
			reboundN.Add(1)
		}
	}
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

// IsUnavailable reports whether err means the database could not be
// reached or dropped the connection (PostgreSQL restarting or ending the
// session: SQLSTATE classes 08 and 57P; a connection closed under a query;
// SQLite busy beyond its timeout): the request may succeed if retried, so
// it is a 503, not a 500.
func IsUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code()&0xff == sqlite3.SQLITE_BUSY
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF)
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
