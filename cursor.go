package parley

import "time"

// Cursor selects a page of a list ordered newest first by (time, id), the
// order of every cursor-paged list of Kapso's Platform API. At most one of
// After and Before is set.
type Cursor struct {
	// Limit is the number of items wanted; stores fetch Limit+1 rows so the
	// caller knows whether more follow.
	Limit int
	// After selects the items after (older than) this key.
	After *CursorKey
	// Before selects the items before (newer than) this key; the store then
	// returns them oldest first, nearest to the key first.
	Before *CursorKey
}

// CursorKey is the position of an item in a cursor-paged list.
type CursorKey struct {
	Time time.Time
	ID   string
}
