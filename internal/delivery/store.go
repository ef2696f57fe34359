package delivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Delivery statuses. "buffered" items wait in a conversation buffer (and,
// once flushed, for their batch); "delivering" ones are leased by a worker.
const (
	StatusBuffered   = "buffered"
	StatusPending    = "pending"
	StatusDelivering = "delivering"
	StatusSucceeded  = "succeeded"
	StatusFailed     = "failed"
)

// Delivery is one event (or one batch of buffered events) to one webhook, as
// the API renders it.
type Delivery struct {
	ID             string     `json:"id"`
	WebhookID      string     `json:"webhook_id"`
	Event          string     `json:"event"`
	Status         string     `json:"status"`
	AttemptsCount  int        `json:"attempts_count"`
	IdempotencyKey string     `json:"idempotency_key"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	EventID        *string    `json:"event_id"`
	ConversationID *string    `json:"conversation_id"`
	BatchID        *string    `json:"batch_id"`
	Batch          bool       `json:"batch"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	Attempts       []Attempt  `json:"attempts"`

	ProjectID   string `json:"-"`
	MaxAttempts int    `json:"-"`
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	Number          int       `json:"number"`
	StartedAt       time.Time `json:"started_at"`
	StatusCode      *int      `json:"status_code"`
	LatencyMS       int64     `json:"latency_ms"`
	Error           *string   `json:"error"`
	ResponseSnippet *string   `json:"response_snippet"`

	deliveryID string
}

const deliveryCols = `id, project_id, webhook_id, event_type, status, attempts, max_attempts, idempotency_key, next_attempt_at,
	last_attempt_at, last_status_code, last_error, event_id, conversation_id, batch_id, is_batch, created_at, updated_at`

func scanDelivery(s store.Scanner) (*Delivery, error) {
	var d Delivery
	var next, ca, ua int64
	var last sql.NullInt64
	var code sql.NullInt64
	var lastErr, eventID, conv, batchID sql.NullString
	if err := s.Scan(&d.ID, &d.ProjectID, &d.WebhookID, &d.Event, &d.Status, &d.AttemptsCount, &d.MaxAttempts, &d.IdempotencyKey,
		&next, &last, &code, &lastErr, &eventID, &conv, &batchID, &d.Batch, &ca, &ua); err != nil {
		return nil, err
	}
	if d.Status == StatusPending {
		t := store.Time(next)
		d.NextAttemptAt = &t
	}
	d.LastAttemptAt = store.TimePtr(last)
	if code.Valid {
		c := int(code.Int64)
		d.LastStatusCode = &c
	}
	d.LastError, d.EventID, d.ConversationID, d.BatchID = store.StrPtr(lastErr), store.StrPtr(eventID), store.StrPtr(conv), store.StrPtr(batchID)
	d.CreatedAt, d.UpdatedAt = store.Time(ca), store.Time(ua)
	d.Attempts = []Attempt{}
	return &d, nil
}

// Filter holds the list filters of the deliveries endpoints.
type Filter struct {
	Status string // q[status_eq]
	Event  string // q[event_eq]
}

// ListDeliveries returns a page of a webhook's deliveries, newest first, each
// with its attempts.
func ListDeliveries(ctx context.Context, c *store.Conn, webhookID string, f Filter, p parley.Page) ([]*Delivery, int, error) {
	where := ` WHERE webhook_id = ?`
	args := []any{webhookID}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.Event != "" {
		// Either name of a lifecycle event finds its deliveries.
		names := parley.EventNames(f.Event)
		where += ` AND event_type IN (?` + strings.Repeat(", ?", len(names)-1) + `)`
		for _, n := range names {
			args = append(args, n)
		}
	}
	out, total, err := store.QueryPage(ctx, c, scanDelivery, `SELECT COUNT(*) FROM deliveries`+where,
		`SELECT `+deliveryCols+` FROM deliveries`+where+` ORDER BY created_at DESC, id DESC`, args, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, err
	}
	return out, total, loadAttempts(ctx, c, out)
}

// GetDelivery returns a webhook's delivery with its attempts.
func GetDelivery(ctx context.Context, c *store.Conn, webhookID, id string) (*Delivery, error) {
	d, err := scanDelivery(c.QueryRow(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE id = ? AND webhook_id = ?`, id, webhookID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Delivery")
	}
	if err != nil {
		return nil, err
	}
	return d, loadAttempts(ctx, c, []*Delivery{d})
}

func loadAttempts(ctx context.Context, c *store.Conn, ds []*Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	byID := map[string]*Delivery{}
	ph := make([]string, len(ds))
	args := make([]any, len(ds))
	for i, d := range ds {
		byID[d.ID] = d
		ph[i] = "?"
		args[i] = d.ID
	}
	rows, err := c.Query(ctx, `SELECT delivery_id, number, started_at, status_code, latency_ms, error, response_snippet
		FROM delivery_attempts WHERE delivery_id IN (`+strings.Join(ph, ",")+`) ORDER BY delivery_id, number`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a Attempt
		var started int64
		var code sql.NullInt64
		var e, snip sql.NullString
		if err := rows.Scan(&a.deliveryID, &a.Number, &started, &code, &a.LatencyMS, &e, &snip); err != nil {
			return err
		}
		a.StartedAt = store.Time(started)
		if code.Valid {
			v := int(code.Int64)
			a.StatusCode = &v
		}
		a.Error, a.ResponseSnippet = store.StrPtr(e), store.StrPtr(snip)
		if d := byID[a.deliveryID]; d != nil {
			d.Attempts = append(d.Attempts, a)
		}
	}
	return rows.Err()
}

// Redeliver starts a new attempt cycle for a finished delivery now: the same
// payload and idempotency key, the webhook's full number of attempts. A
// delivery still waiting (pending, delivering, buffered) is left as it is.
func Redeliver(ctx context.Context, c *store.Conn, webhookID, id string, now time.Time) (*Delivery, error) {
	d, err := GetDelivery(ctx, c, webhookID, id)
	if err != nil {
		return nil, err
	}
	if d.Status != StatusSucceeded && d.Status != StatusFailed {
		return d, nil
	}
	var custom bool
	var maxAttempts int
	if err := c.QueryRow(ctx, `SELECT retry_custom, retry_max_attempts FROM whatsapp_webhooks WHERE id = ?`, webhookID).
		Scan(&custom, &maxAttempts); err != nil {
		return nil, err
	}
	cycle := maxAttemptsFor(custom, maxAttempts)
	if _, err := c.Exec(ctx, `UPDATE deliveries SET status = 'pending', max_attempts = attempts + ?, next_attempt_at = ?,
		locked_by = NULL, locked_until = NULL, updated_at = ? WHERE id = ?`,
		cycle, store.Micros(now), store.Micros(now), id); err != nil {
		return nil, err
	}
	return GetDelivery(ctx, c, webhookID, id)
}

// Webhook is what the workers and the API need to know of a webhook.
type Webhook struct {
	ID                  string
	ProjectID           string
	ConfigID            *string
	URL                 string
	SecretEnc           string
	Events              []string
	Active              bool
	Headers             map[string]string
	BufferWindowSeconds int
	MaxBufferSize       int
	PayloadVersion      string
	RetryCustom         bool
	RetryMaxAttempts    int
	RetryBackoffSeconds int
	InactivityMinutes   int

	updatedAt int64 // stored microseconds; the version webhookCache checks
}

const webhookCols = `id, project_id, whatsapp_config_id, url, secret_key_enc, events, active, headers, buffer_window_seconds,
	max_buffer_size, payload_version, retry_custom, retry_max_attempts, retry_backoff_seconds, inactivity_minutes`

// webhookColsW is webhookCols qualified by the alias w, for joins.
const webhookColsW = `w.id, w.project_id, w.whatsapp_config_id, w.url, w.secret_key_enc, w.events, w.active, w.headers,
	w.buffer_window_seconds, w.max_buffer_size, w.payload_version, w.retry_custom, w.retry_max_attempts, w.retry_backoff_seconds,
	w.inactivity_minutes`

func scanWebhook(s store.Scanner) (*Webhook, error) {
	var w Webhook
	if err := scanWebhookInto(s, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// scanWebhookInto scans a row of the columns before, then webhookCols.
func scanWebhookInto(s store.Scanner, w *Webhook, before ...any) error {
	var cfg, headers sql.NullString
	var evs string
	dest := append(before, &w.ID, &w.ProjectID, &cfg, &w.URL, &w.SecretEnc, &evs, &w.Active, &headers, &w.BufferWindowSeconds,
		&w.MaxBufferSize, &w.PayloadVersion, &w.RetryCustom, &w.RetryMaxAttempts, &w.RetryBackoffSeconds, &w.InactivityMinutes)
	if err := s.Scan(dest...); err != nil {
		return err
	}
	w.ConfigID = store.StrPtr(cfg)
	_ = json.Unmarshal([]byte(evs), &w.Events)
	if headers.Valid {
		_ = json.Unmarshal([]byte(headers.String), &w.Headers)
	}
	return nil
}

// GetWebhook returns a project's webhook: of the config configID, or a
// project webhook when configID is nil.
func GetWebhook(ctx context.Context, c *store.Conn, projectID string, configID *string, id string) (*Webhook, error) {
	q := `SELECT ` + webhookCols + ` FROM whatsapp_webhooks WHERE id = ? AND project_id = ?`
	args := []any{id, projectID}
	if configID == nil {
		q += ` AND whatsapp_config_id IS NULL`
	} else {
		q += ` AND whatsapp_config_id = ?`
		args = append(args, *configID)
	}
	w, err := scanWebhook(c.QueryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Webhook")
	}
	return w, err
}

// webhookCache keeps the webhook rows the workers send with, checked
// against the row's updated_at on every claim (the claim reads it with the
// deliveries): a webhook changed through the API is read again at once, and
// an unchanged one costs no column decoding per delivery.
type webhookCache struct {
	mu sync.Mutex
	m  map[string]*Webhook
}

// resolve points each job's Webhook (holding only ID and updatedAt) at the
// cached row of that version, reading in tx those missing or out of date.
func (c *webhookCache) resolve(ctx context.Context, tx *store.Conn, jobs []*job) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var stale []any
	seen := map[string]bool{}
	for _, j := range jobs {
		if w := c.m[j.WebhookID]; (w == nil || w.updatedAt != j.Webhook.updatedAt) && !seen[j.WebhookID] {
			seen[j.WebhookID] = true
			stale = append(stale, j.WebhookID)
		}
	}
	if len(stale) > 0 {
		if c.m == nil || len(c.m)+len(stale) > 10000 {
			c.m = map[string]*Webhook{}
		}
		cond, args := inSet(tx, "id", false, stale)
		rows, err := tx.Query(ctx, `SELECT updated_at, `+webhookCols+` FROM whatsapp_webhooks WHERE `+cond, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			w := &Webhook{}
			if err := scanWebhookInto(rows, w, &w.updatedAt); err != nil {
				return err
			}
			c.m[w.ID] = w
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for _, j := range jobs {
		if w := c.m[j.WebhookID]; w != nil {
			j.Webhook = w
		}
	}
	return nil
}

func webhookByID(ctx context.Context, c *store.Conn, id string) (*Webhook, error) {
	return scanWebhook(c.QueryRow(ctx, `SELECT `+webhookCols+` FROM whatsapp_webhooks WHERE id = ?`, id))
}

// Resume clears a webhook's pause and failure streak; the endpoint that sets
// active back to true calls it in the same transaction.
func Resume(ctx context.Context, c *store.Conn, webhookID string) error {
	_, err := c.Exec(ctx, `UPDATE whatsapp_webhooks SET failing_since = NULL, paused_at = NULL, paused_reason = NULL WHERE id = ?`, webhookID)
	return err
}

// maxAttemptsFor is the attempt budget of one delivery cycle.
func maxAttemptsFor(custom bool, retryMax int) int {
	if !custom {
		return 4
	}
	return max(retryMax, 1)
}

// inSet returns the condition "col IN (ids)" (or NOT IN) and its
// arguments. On PostgreSQL the ids are one array parameter, so the
// statement's text is the same however many there are: one prepared
// statement per connection rather than one per list length, each needing
// its own parse and plan round trip.
func inSet(c *store.Conn, col string, not bool, ids []any) (string, []any) {
	if c.Postgres() {
		arr := make([]string, len(ids))
		for i, id := range ids {
			arr[i] = id.(string)
		}
		if not {
			return col + ` <> ALL(CAST(? AS TEXT[]))`, []any{arr}
		}
		return col + ` = ANY(CAST(? AS TEXT[]))`, []any{arr}
	}
	if not {
		return col + ` NOT IN (` + store.Placeholders(len(ids)) + `)`, ids
	}
	return col + ` IN (` + store.Placeholders(len(ids)) + `)`, ids
}

var errLeaseLost = fmt.Errorf("delivery: lease lost")
