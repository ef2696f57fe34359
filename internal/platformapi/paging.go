package platformapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
)

// Cursor paging (webhook deliveries, API logs, messages, conversations,
// contacts): limit 1–100 (default 20; out-of-range values are clamped, as
// per_page is), after/before opaque cursors, and a paging block. A cursor
// is Base64 of {"values":[<time>,<id>],"columns":[<time column>,"id"]}, as
// Kapso encodes them.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// Paging is the paging block of a cursor-paged list. Next and Previous hold
// the cursor strings of the neighbouring pages (null when there is none),
// as in Kapso's examples.
type Paging struct {
	Cursors  PagingCursors `json:"cursors"`
	Next     *string       `json:"next"`
	Previous *string       `json:"previous"`
}

// PagingCursors are the cursors of the first and last item of the page.
type PagingCursors struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

type cursorJSON struct {
	Values  []string `json:"values"`
	Columns []string `json:"columns"`
}

// EncodeCursor returns the cursor of the item at k in a list ordered by
// timeColumn (the name shown in the cursor, such as "created_at").
func EncodeCursor(timeColumn string, k parley.CursorKey) string {
	b, _ := json.Marshal(cursorJSON{
		Values:  []string{k.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), k.ID},
		Columns: []string{timeColumn, "id"},
	})
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeCursor parses a cursor made by EncodeCursor for the same
// timeColumn; anything else is a 400 naming param.
func DecodeCursor(param, timeColumn, s string) (*parley.CursorKey, error) {
	bad := &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters", Message: param + " is not a valid cursor"}
	s = strings.TrimSpace(s)
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, bad
	}
	var c cursorJSON
	if json.Unmarshal(raw, &c) != nil || len(c.Values) != 2 || !slices.Equal(c.Columns, []string{timeColumn, "id"}) {
		return nil, bad
	}
	t, err := time.Parse(time.RFC3339Nano, c.Values[0])
	if err != nil || !api.IsUUID(c.Values[1]) {
		return nil, bad
	}
	return &parley.CursorKey{Time: t, ID: strings.ToLower(c.Values[1])}, nil
}

// CursorOf reads limit, after and before for a list ordered by timeColumn.
// A malformed cursor, or both after and before, is a 400.
func CursorOf(r *http.Request, timeColumn string) (parley.Cursor, error) {
	q := r.URL.Query()
	c := parley.Cursor{Limit: defaultLimit}
	if v := strings.TrimSpace(q.Get("limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters", Message: "limit must be an integer between 1 and 100"}
		}
		c.Limit = max(1, min(n, maxLimit))
	}
	after, before := q.Get("after"), q.Get("before")
	if after != "" && before != "" {
		return c, &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters", Message: "Use either after or before, not both"}
	}
	var err error
	if after != "" {
		c.After, err = DecodeCursor("after", timeColumn, after)
	} else if before != "" {
		c.Before, err = DecodeCursor("before", timeColumn, before)
	}
	return c, err
}

// CursorPage trims rows (as a store returns them for c: Limit+1 rows at
// most, oldest first when paging backward) to the page, newest first, and
// computes its paging block. key gives an item's position.
func CursorPage[T any](rows []T, c parley.Cursor, timeColumn string, key func(T) parley.CursorKey) ([]T, Paging) {
	more := len(rows) > c.Limit
	if more {
		rows = rows[:c.Limit]
	}
	if c.Before != nil {
		slices.Reverse(rows)
	}
	var p Paging
	if len(rows) == 0 {
		return rows, p
	}
	first := EncodeCursor(timeColumn, key(rows[0]))
	last := EncodeCursor(timeColumn, key(rows[len(rows)-1]))
	p.Cursors = PagingCursors{Before: &first, After: &last}
	// Older items follow when the store had more, or when this page was
	// reached backward (the item of the before cursor is older).
	if more && c.Before == nil || c.Before != nil {
		p.Next = &last
	}
	// Newer items precede when this page was reached forward, or backward
	// with more to go.
	if c.After != nil || c.Before != nil && more {
		p.Previous = &first
	}
	return rows, p
}

// WriteCursorList writes {"data": items, "paging": p}.
func WriteCursorList[T any](w http.ResponseWriter, items []T, p Paging) {
	if items == nil {
		items = []T{}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"data": items, "paging": p})
}

// WriteOffsetList writes {"data": items, "meta": {...}} for items already
// rendered (a slice).
func WriteOffsetList(w http.ResponseWriter, items any, p parley.Page, total int) {
	api.WriteJSON(w, http.StatusOK, map[string]any{"data": items, "meta": parley.NewPageMeta(p, total)})
}
