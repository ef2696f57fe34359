package platformapi

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
)

// fakeStore answers a cursor query over items (newest first) as
// store.CursorClause's SQL would.
func fakeStore(items []parley.CursorKey, c parley.Cursor) []parley.CursorKey {
	var out []parley.CursorKey
	newer := func(a, b parley.CursorKey) bool {
		return a.Time.After(b.Time) || a.Time.Equal(b.Time) && a.ID > b.ID
	}
	if c.Before != nil {
		for i := len(items) - 1; i >= 0; i-- {
			if newer(items[i], *c.Before) {
				out = append(out, items[i])
			}
		}
	} else {
		for _, it := range items {
			if c.After == nil || newer(*c.After, it) {
				out = append(out, it)
			}
		}
	}
	return out[:min(len(out), c.Limit+1)]
}

func TestCursorPagingWalksBothWays(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var items []parley.CursorKey
	for i := 0; i < 7; i++ {
		// Two items share each time, so the id breaks ties.
		items = append(items, parley.CursorKey{Time: base.Add(-time.Duration(i/2) * time.Second), ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", 100-i)})
	}
	key := func(k parley.CursorKey) parley.CursorKey { return k }
	page := func(query string) ([]parley.CursorKey, Paging) {
		t.Helper()
		c, err := CursorOf(httptest.NewRequest("GET", "/x?"+query, nil), "created_at")
		if err != nil {
			t.Fatal(err)
		}
		return CursorPage(fakeStore(items, c), c, "created_at", key)
	}
	var seen []parley.CursorKey
	got, p := page("limit=3")
	seen = append(seen, got...)
	if p.Previous != nil || p.Next == nil {
		t.Fatalf("first page paging %+v", p)
	}
	for p.Next != nil {
		got, p = page("limit=3&after=" + *p.Next)
		seen = append(seen, got...)
		if p.Previous == nil {
			t.Fatal("a later page has no previous")
		}
	}
	if !slices.Equal(seen, items) {
		t.Fatalf("forward walk %v, want %v", seen, items)
	}
	// Back from the last page.
	got, p = page("limit=3&before=" + *p.Previous)
	if !slices.Equal(got, items[3:6]) || p.Next == nil || p.Previous == nil {
		t.Fatalf("backward page %v paging %+v", got, p)
	}
	got, p = page("limit=3&before=" + *p.Previous)
	if !slices.Equal(got, items[0:3]) || p.Previous != nil {
		t.Fatalf("first page backward %v paging %+v", got, p)
	}
	for _, bad := range []string{"after=zzz", "before=e30=", "limit=x", "after=" + *p.Next + "&before=" + *p.Next,
		"after=" + EncodeCursor("last_active_at", items[0])} {
		if _, err := CursorOf(httptest.NewRequest("GET", "/x?"+bad, nil), "created_at"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
