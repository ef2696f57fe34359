package store

import "context"

// QueryAll runs query and returns every row read by scan, in order. No rows
// is an empty, non-nil slice, so a list renders as [] rather than null.
func QueryAll[T any](ctx context.Context, c *Conn, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := c.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// QueryPage is the paged list every store shares: countQuery gives the
// total (meta.total_count), then query, with LIMIT and OFFSET appended, reads
// limit rows from offset. Both take args. A page past the end is not read.
func QueryPage[T any](ctx context.Context, c *Conn, scan func(Scanner) (T, error), countQuery, query string, args []any, limit, offset int) ([]T, int, error) {
	var total int
	if err := c.QueryRow(ctx, countQuery, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if total == 0 || offset >= total {
		return []T{}, total, nil
	}
	out, err := QueryAll(ctx, c, scan, query+` LIMIT ? OFFSET ?`, append(args[:len(args):len(args)], limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}
