package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

func TestQueryPageAndQueryAll(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	for i := range 5 {
		if _, err := store.CreateProject(ctx, db.Write(), fmt.Sprintf("p%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(s store.Scanner) (string, error) {
		var name string
		err := s.Scan(&name)
		return name, err
	}
	const count = `SELECT COUNT(*) FROM projects WHERE name <> ?`
	const query = `SELECT name FROM projects WHERE name <> ? ORDER BY name`
	for _, tc := range []struct {
		limit, offset int
		want          string
	}{
		{2, 0, "[p0 p1]"},
		{2, 2, "[p2 p3]"},
		{2, 4, "[p4]"},
		{2, 6, "[]"},
	} {
		got, total, err := store.QueryPage(ctx, db.Read(), scan, count, query, []any{"none"}, tc.limit, tc.offset)
		if err != nil {
			t.Fatal(err)
		}
		if total != 5 || fmt.Sprint(got) != tc.want || got == nil {
			t.Errorf("limit %d offset %d: got %v (nil %v), total %d; want %s, total 5", tc.limit, tc.offset, got, got == nil, total, tc.want)
		}
	}
	none, err := store.QueryAll(ctx, db.Read(), scan, query, "p0' OR 1=1")
	if err != nil || len(none) != 5 {
		t.Fatalf("QueryAll with a quote in the argument: %v, %v", none, err)
	}
	empty, err := store.QueryAll(ctx, db.Read(), scan, `SELECT name FROM projects WHERE name = ?`, "nobody")
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("no rows: got %#v, %v; want an empty non-nil slice", empty, err)
	}
	if _, err := store.QueryAll(ctx, db.Read(), scan, `SELECT name, id FROM projects`); err == nil {
		t.Fatal("a scan error is not returned")
	}
}
