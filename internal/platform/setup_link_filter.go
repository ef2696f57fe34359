package platform

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// SetupLinkFilter narrows a customer's setup links. Status is the status a
// link shows (an active link past its expiry shows expired).
type SetupLinkFilter struct {
	Status        string
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
}

// ListSetupLinksFiltered lists a customer's setup links matching f, newest
// first.
func ListSetupLinksFiltered(ctx context.Context, c *store.Conn, projectID, customerID string, f SetupLinkFilter, p parley.Page) ([]*parley.SetupLink, int, error) {
	where := ` WHERE project_id = ? AND customer_id = ?`
	args := []any{projectID, customerID}
	at := store.Micros(time.Now())
	switch f.Status {
	case "":
	case parley.SetupLinkActive:
		where += ` AND status = ? AND expires_at > ?`
		args = append(args, parley.SetupLinkActive, at)
	case parley.SetupLinkExpired:
		where += ` AND (status = ? OR (status = ? AND expires_at <= ?))`
		args = append(args, parley.SetupLinkExpired, parley.SetupLinkActive, at)
	default:
		where += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.CreatedAfter != nil {
		where += ` AND created_at >= ?`
		args = append(args, store.Micros(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		where += ` AND created_at <= ?`
		args = append(args, store.Micros(*f.CreatedBefore))
	}
	out, total, err := store.QueryPage(ctx, c, scanSetupLink, `SELECT COUNT(*) FROM setup_links`+where,
		`SELECT `+setupLinkCols+` FROM setup_links`+where+` ORDER BY created_at DESC, id DESC`, args, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("platform: list setup links: %w", err)
	}
	return out, total, nil
}
