package sweep_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

// snapshotExclude lists the columns left out of the snapshot because they
// legitimately change when data is only read: api_keys.last_used_at is
// bumped by authentication (today it is not, but it is documented as such
// and a read must not be reported when it starts to be).
var snapshotExclude = map[string]bool{
	"api_keys.last_used_at": true,
}

// snapshotter reads every table of the database: each row becomes a
// hash of its columns (NULL spelt out) and a short preview, so a snapshot
// gives each table's row count and checksum, and a diff can show rows.
//
// On PostgreSQL the checksums are computed by the server in one query
// (the sum of each row's md5 as a number), which saves moving every row
// to the test for each request; a diff then names tables and counts only.
type snapshotter struct {
	db      *store.DB
	queries map[string]string // table -> SELECT of its snapshotted columns
	pgSums  string            // PostgreSQL: one query of every table's count and checksum
	// pgVersions (PostgreSQL) reads each table's row count and newest
	// row version (max xmin): any committed insert, update or delete
	// changes one of them, and reading them does not hash row contents.
	// It is a pre-check only: when it moves, the checksums decide.
	pgVersions string
}

type tableSnap struct {
	rows map[[32]byte]*row // by hash of the row; nil when only sum is known
	n    int
	sum  string
}

type row struct {
	n       int // identical rows (tables without a key may have some)
	preview string
}

// snapshot maps a table to its rows.
type snapshot map[string]tableSnap

func newSnapshotter(t *testing.T, db *store.DB) *snapshotter {
	t.Helper()
	ctx := context.Background()
	var q string
	if db.Engine == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	} else {
		q = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	}
	rows, err := db.Read().Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	sort.Strings(tables)
	if len(tables) < 20 {
		t.Fatalf("snapshot: only %d tables found: %v", len(tables), tables)
	}
	s := &snapshotter{db: db, queries: map[string]string{}}
	var sums, versions []string
	for _, tbl := range tables {
		r, err := db.Read().Query(ctx, `SELECT * FROM `+tbl+` WHERE 1 = 0`)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := r.Columns()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, c := range cols {
			if !snapshotExclude[tbl+"."+c] {
				keep = append(keep, c)
			}
		}
		s.queries[tbl] = `SELECT ` + strings.Join(keep, ", ") + ` FROM ` + tbl
		// The checksum is the sum of each row's md5 cut to 60 bits: no
		// sort, and order does not matter.
		sums = append(sums, fmt.Sprintf(`SELECT '%s' AS t, COUNT(*) AS n, COALESCE(SUM(('x' || substr(md5(ROW(%s)::text), 1, 15))::bit(60)::bigint), 0)::text AS sum FROM %s`,
			tbl, strings.Join(keep, ", "), tbl))
		versions = append(versions, fmt.Sprintf(`SELECT COUNT(*) || ':' || COALESCE(MAX(xmin::text::bigint), 0) FROM %s`, tbl))
	}
	if db.Engine == store.Postgres {
		s.pgSums = strings.Join(sums, "\nUNION ALL\n")
		s.pgVersions = `SELECT ` + strings.Join(parenthesize(versions), " || ',' || ")
	}
	return s
}

func parenthesize(qs []string) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = "(" + q + ")"
	}
	return out
}

// version returns the cheap change marker of the database, or "" when the
// engine has none (then every snapshot is a full one).
func (s *snapshotter) version(t *testing.T) string {
	t.Helper()
	if s.pgVersions == "" {
		return ""
	}
	var v string
	if err := s.db.Read().QueryRow(context.Background(), s.pgVersions).Scan(&v); err != nil {
		t.Fatalf("snapshot version: %v", err)
	}
	return v
}

func (s *snapshotter) take(t *testing.T) snapshot {
	t.Helper()
	out := snapshot{}
	if s.pgSums != "" {
		rows, err := s.db.Read().Query(context.Background(), s.pgSums)
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		defer rows.Close()
		for rows.Next() {
			var ts tableSnap
			var tbl string
			if err := rows.Scan(&tbl, &ts.n, &ts.sum); err != nil {
				t.Fatal(err)
			}
			out[tbl] = ts
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for tbl, q := range s.queries {
		out[tbl] = s.table(t, q)
	}
	return out
}

func (s *snapshotter) table(t *testing.T, q string) tableSnap {
	rows, err := s.db.Read().Query(context.Background(), q)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	ts := tableSnap{rows: map[[32]byte]*row{}}
	h := sha256.New()
	var preview []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		h.Reset()
		preview = preview[:0]
		for i, v := range vals {
			if v == nil {
				h.Write([]byte{0})
			} else {
				h.Write([]byte{1})
				h.Write(v)
			}
			h.Write([]byte{0xff})
			if len(preview) < 300 {
				if i > 0 {
					preview = append(preview, '|')
				}
				if v == nil {
					preview = append(preview, "<null>"...)
				} else {
					preview = append(preview, v[:min(len(v), 120)]...)
				}
			}
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		ts.n++
		if r, ok := ts.rows[sum]; ok {
			r.n++
		} else {
			ts.rows[sum] = &row{n: 1, preview: string(preview)}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ts
}

// diff describes how after differs from s, table by table ("" when equal).
func (s snapshot) diff(after snapshot) string {
	var tables []string
	for k := range s {
		tables = append(tables, k)
	}
	for k := range after {
		if _, ok := s[k]; !ok {
			tables = append(tables, k)
		}
	}
	sort.Strings(tables)
	var out []string
	for _, tbl := range tables {
		if s[tbl].rows == nil || after[tbl].rows == nil {
			if s[tbl].n != after[tbl].n || s[tbl].sum != after[tbl].sum {
				out = append(out, fmt.Sprintf("%s: %d -> %d rows, checksum changed", tbl, s[tbl].n, after[tbl].n))
			}
			continue
		}
		before, now := s[tbl].rows, after[tbl].rows
		var added, removed []string
		for h, r := range now {
			if b, ok := before[h]; !ok || b.n < r.n {
				added = append(added, r.preview)
			}
		}
		for h, r := range before {
			if a, ok := now[h]; !ok || a.n < r.n {
				removed = append(removed, r.preview)
			}
		}
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		sort.Strings(added)
		sort.Strings(removed)
		d := fmt.Sprintf("%s: %d -> %d rows", tbl, s[tbl].n, after[tbl].n)
		for _, r := range removed {
			d += "\n      - " + clip(r, 300)
		}
		for _, r := range added {
			d += "\n      + " + clip(r, 300)
		}
		out = append(out, d)
	}
	return strings.Join(out, "\n    ")
}

// TestSnapshotDetectsChanges checks the checker: an update that keeps the
// row count, a delete and an insert are all seen, a rewrite with the same
// values is not a difference, and api_keys.last_used_at is ignored.
func TestSnapshotDetectsChanges(t *testing.T) {
	b := setup(t)
	own := seed(t, b, 1)
	ctx := context.Background()
	snap := newSnapshotter(t, b.DB)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := b.DB.Write().Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	base, baseV := snap.take(t), snap.version(t)
	exec(`UPDATE api_keys SET last_used_at = ?`, time.Now().UnixMicro())
	exec(`UPDATE customers SET name = name WHERE id = ?`, own.id("customer"))
	if d := base.diff(snap.take(t)); d != "" {
		t.Fatalf("no data changed, but diff says:\n%s", d)
	}
	exec(`UPDATE customers SET name = 'Renamed' WHERE id = ?`, own.id("customer"))
	after := snap.take(t)
	if d := base.diff(after); !strings.Contains(d, "customers: 1 -> 1 rows") {
		t.Fatalf("update not seen: %q", d)
	}
	if v := snap.version(t); v != "" && v == baseV {
		t.Fatal("update did not move the version")
	}
	exec(`DELETE FROM contact_notes WHERE id = ?`, own.id("note"))
	if d := after.diff(snap.take(t)); !strings.Contains(d, "contact_notes: 1 -> 0 rows") {
		t.Fatalf("delete not seen: %q", d)
	}
}
