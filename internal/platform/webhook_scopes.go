package platform

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// checkMetaWebhook enforces one meta webhook per phone number (config).
func checkMetaWebhook(ctx context.Context, c *store.Conn, w *parley.Webhook) error {
	if w.Kind != parley.WebhookKindMeta || w.ConfigID == nil {
		return nil
	}
	var n int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM whatsapp_webhooks WHERE whatsapp_config_id = ? AND kind = ? AND id <> ?`,
		*w.ConfigID, parley.WebhookKindMeta, w.ID).Scan(&n); err != nil {
		return fmt.Errorf("platform: count meta webhooks: %w", err)
	}
	if n > 0 {
		return parley.Invalid("Validation failed", "Kind meta is already used by another webhook of this phone number (one per phone number)")
	}
	return nil
}

// MetaWebhookURLs returns the URLs of a config's active meta webhooks, to
// which Meta's raw webhook bodies about the config are forwarded.
func MetaWebhookURLs(ctx context.Context, c *store.Conn, configID string) ([]string, error) {
	rows, err := c.Query(ctx, `SELECT url FROM whatsapp_webhooks WHERE whatsapp_config_id = ? AND kind = ? AND active = ?`,
		configID, parley.WebhookKindMeta, true)
	if err != nil {
		return nil, fmt.Errorf("platform: meta webhooks: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// GetAnyWebhook returns a webhook of the project, project-level or of one
// of its configs.
func GetAnyWebhook(ctx context.Context, c *store.Conn, projectID, id string) (*parley.Webhook, error) {
	w, err := scanWebhook(c.QueryRow(ctx, `SELECT `+webhookCols+` FROM whatsapp_webhooks WHERE project_id = ? AND id = ?`, projectID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Webhook")
	}
	if err != nil {
		return nil, fmt.Errorf("platform: get webhook: %w", err)
	}
	return w, nil
}

// AnyWebhookFilter narrows the list of all of a project's webhooks.
type AnyWebhookFilter struct {
	WebhookFilter
	// ConfigID limits the list to one config's webhooks.
	ConfigID      *string
	Kind          string
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
}

// ListAnyWebhooks returns a page of all of a project's webhooks (project
// and config ones), newest first.
func ListAnyWebhooks(ctx context.Context, c *store.Conn, projectID string, f AnyWebhookFilter, p parley.Page) ([]*parley.Webhook, int, error) {
	where := ` WHERE project_id = ?`
	args := []any{projectID}
	if f.ConfigID != nil {
		where += ` AND whatsapp_config_id = ?`
		args = append(args, *f.ConfigID)
	}
	if f.Kind != "" {
		where += ` AND kind = ?`
		args = append(args, f.Kind)
	}
	if f.URLCont != "" {
		where += ` AND url ` + c.ILike() + ` ? ESCAPE '\'`
		args = append(args, "%"+store.EscapeLike(f.URLCont)+"%")
	}
	if f.ActiveEq != nil {
		where += ` AND active = ?`
		args = append(args, *f.ActiveEq)
	}
	if f.CreatedAfter != nil {
		where += ` AND created_at >= ?`
		args = append(args, store.Micros(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		where += ` AND created_at <= ?`
		args = append(args, store.Micros(*f.CreatedBefore))
	}
	var total int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM whatsapp_webhooks`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("platform: count webhooks: %w", err)
	}
	rows, err := c.Query(ctx, `SELECT `+webhookCols+` FROM whatsapp_webhooks`+where+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, p.PerPage, p.Offset())...)
	if err != nil {
		return nil, 0, fmt.Errorf("platform: list webhooks: %w", err)
	}
	defer rows.Close()
	out := []*parley.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, w)
	}
	return out, total, rows.Err()
}
