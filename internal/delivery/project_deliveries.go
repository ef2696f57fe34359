package delivery

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// ProjectFilter narrows the deliveries of all of a project's webhooks
// (Kapso's GET /webhook_deliveries).
type ProjectFilter struct {
	// Statuses are stored statuses; empty means any.
	Statuses []string
	Event    string
	// WebhookID limits the list to one webhook.
	WebhookID string
	// ErrorsOnly keeps deliveries that failed or whose last attempt failed.
	ErrorsOnly bool
	// Since keeps deliveries created at or after it.
	Since time.Time
}

// ProjectDelivery is a delivery with its webhook's URL and the config
// (phone number) it concerns, as Kapso's Platform API lists them.
type ProjectDelivery struct {
	Delivery
	WebhookURL    string
	ConfigID      *string
	PhoneNumberID *string
}

// ListProjectDeliveries returns a cursor page of a project's deliveries,
// newest first (oldest first when paging backward, as store.CursorClause
// says), without their attempts.
func ListProjectDeliveries(ctx context.Context, c *store.Conn, projectID string, f ProjectFilter, cur parley.Cursor) ([]*ProjectDelivery, error) {
	where := ` WHERE d.project_id = ? AND d.created_at >= ?`
	args := []any{projectID, store.Micros(f.Since)}
	if len(f.Statuses) > 0 {
		where += ` AND d.status IN (` + store.Placeholders(len(f.Statuses)) + `)`
		for _, s := range f.Statuses {
			args = append(args, s)
		}
	}
	if f.Event != "" {
		where += ` AND d.event_type = ?`
		args = append(args, f.Event)
	}
	if f.WebhookID != "" {
		where += ` AND d.webhook_id = ?`
		args = append(args, f.WebhookID)
	}
	if f.ErrorsOnly {
		where += ` AND (d.status = ? OR (d.status <> ? AND d.last_error IS NOT NULL))`
		args = append(args, StatusFailed, StatusSucceeded)
	}
	cw, cargs, order := store.CursorClause(cur, "d.created_at", "d.id")
	rows, err := c.Query(ctx, `SELECT `+deliveryColsD+`, w.url, w.whatsapp_config_id, wc.phone_number_id
		FROM deliveries d JOIN whatsapp_webhooks w ON w.id = d.webhook_id
		LEFT JOIN whatsapp_configs wc ON wc.id = w.whatsapp_config_id`+where+cw+order, append(args, cargs...)...)
	if err != nil {
		return nil, fmt.Errorf("delivery: list project deliveries: %w", err)
	}
	defer rows.Close()
	out := []*ProjectDelivery{}
	for rows.Next() {
		var pd ProjectDelivery
		var cfg, pnid sql.NullString
		d, err := scanDelivery(scanTail{rows, []any{&pd.WebhookURL, &cfg, &pnid}})
		if err != nil {
			return nil, err
		}
		pd.Delivery, pd.ConfigID, pd.PhoneNumberID = *d, store.StrPtr(cfg), store.StrPtr(pnid)
		out = append(out, &pd)
	}
	return out, rows.Err()
}

// deliveryColsD is deliveryCols qualified by the alias d, for joins.
const deliveryColsD = `d.id, d.project_id, d.webhook_id, d.event_type, d.status, d.attempts, d.max_attempts, d.idempotency_key,
	d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.event_id, d.conversation_id, d.batch_id, d.is_batch,
	d.created_at, d.updated_at`

// scanTail scans a row whose first columns are scanDelivery's and whose
// remaining ones go to tail.
type scanTail struct {
	s    store.Scanner
	tail []any
}

func (t scanTail) Scan(dest ...any) error { return t.s.Scan(append(dest, t.tail...)...) }

// ProjectDeliveryWebhook returns the webhook id of a project's delivery, so
// it can be redelivered; another project's delivery is a 404.
func ProjectDeliveryWebhook(ctx context.Context, c *store.Conn, projectID, id string) (string, error) {
	var wid string
	err := c.QueryRow(ctx, `SELECT webhook_id FROM deliveries WHERE id = ? AND project_id = ?`, id, projectID).Scan(&wid)
	if err == sql.ErrNoRows {
		return "", parley.NotFound("Delivery")
	}
	return wid, err
}
