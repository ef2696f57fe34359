package store

import "github.com/parleyhq/parley"

// CursorClause returns what a cursor-paged query over (timeCol, idCol)
// appends: a WHERE fragment starting with " AND" (empty on the first page),
// its arguments, and the ORDER BY and LIMIT clause. Rows come newest first,
// or, when paging backward (c.Before), oldest first from the key; one row
// more than c.Limit is asked for, to tell whether more follow. args holds
// the arguments of both, so the query ends with where + orderLimit.
func CursorClause(c parley.Cursor, timeCol, idCol string) (where string, args []any, orderLimit string) {
	order := " ORDER BY " + timeCol + " DESC, " + idCol + " DESC LIMIT ?"
	switch {
	case c.After != nil:
		t := Micros(c.After.Time)
		where = " AND (" + timeCol + " < ? OR (" + timeCol + " = ? AND " + idCol + " < ?))"
		args = []any{t, t, c.After.ID}
	case c.Before != nil:
		t := Micros(c.Before.Time)
		where = " AND (" + timeCol + " > ? OR (" + timeCol + " = ? AND " + idCol + " > ?))"
		args = []any{t, t, c.Before.ID}
		order = " ORDER BY " + timeCol + " ASC, " + idCol + " ASC LIMIT ?"
	}
	return where, append(args, c.Limit+1), order
}
