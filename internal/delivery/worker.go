package delivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
)

// OrderingTimeout is how long an ordered delivery waits for the earlier
// deliveries of its (webhook, conversation) before it goes anyway.
const OrderingTimeout = 30 * time.Second

// Service claims due deliveries from the database and sends them. Several
// Services (in one process or several on PostgreSQL) may share a database:
// each delivery is leased by one of them at a time.
type Service struct {
	db  *store.DB
	box *secrets.Box
	log *slog.Logger
	cfg config.Config

	// Now is the clock of the retry policy, leases and buffers; tests
	// replace it.
	Now func() time.Time
	// Poll is how often the database is checked when nothing wakes the
	// workers: the fallback for work written by another process and for
	// retries and buffers coming due.
	Poll time.Duration
	// Jitter returns the random fraction (0..1) of the custom backoff that
	// is added to it; tests pin it.
	Jitter func() float64

	id     string
	client *http.Client
	wake   chan struct{}

	mu       sync.Mutex
	inflight map[string]int // per webhook
	running  int
}

// New returns a delivery service; call Run to start it.
func New(db *store.DB, box *secrets.Box, log *slog.Logger, cfg config.Config) *Service {
	if log == nil {
		log = slog.Default()
	}
	if cfg.DeliveryWorkers <= 0 {
		cfg.DeliveryWorkers = 1
	}
	if cfg.PerEndpointLimit <= 0 {
		cfg.PerEndpointLimit = 1
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = 10 * time.Second
	}
	s := &Service{db: db, box: box, log: log, cfg: cfg, Now: time.Now, Poll: 200 * time.Millisecond,
		Jitter: defaultJitter, id: store.NewID(), wake: make(chan struct{}, 1), inflight: map[string]int{}}
	s.client = newClient(cfg)
	return s
}

// Wake makes the workers look for due deliveries now instead of at the next
// poll. The API calls it after a commit that wrote events.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run flushes buffers and claims and sends due deliveries until ctx ends,
// then waits for the requests in flight.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastSample time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
		if time.Since(lastSample) > 5*time.Second {
			lastSample = time.Now()
			s.sampleQueue(ctx)
		}
		if _, err := s.FlushDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delivery: flush failed", slog.String("error", err.Error()))
		}
		jobs, err := s.claim(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("delivery: claim failed", slog.String("error", err.Error()))
		}
		for _, j := range jobs {
			wg.Add(1)
			go func(j *job) {
				defer wg.Done()
				s.process(ctx, j)
				s.release(j)
				s.Wake()
			}(j)
		}
		if len(jobs) > 0 {
			timer.Reset(0) // there may be more
			continue
		}
		timer.Reset(s.Poll)
	}
}

func (s *Service) release(j *job) {
	s.mu.Lock()
	s.running--
	if s.inflight[j.WebhookID]--; s.inflight[j.WebhookID] <= 0 {
		delete(s.inflight, j.WebhookID)
	}
	s.mu.Unlock()
}

// job is a claimed delivery with what sending it needs.
type job struct {
	Delivery
	Seq       int64
	IsBatch   bool
	BatchBody sql.NullString
	PayloadV2 sql.NullString
	PayloadV1 sql.NullString
	Webhook   *Webhook
}

// Body returns the bytes to send: the batch envelope, or the event's payload
// in the webhook's payload version.
func (j *job) Body() []byte {
	switch {
	case j.IsBatch:
		return []byte(j.BatchBody.String)
	case j.Webhook.PayloadVersion == "v1" && j.PayloadV1.Valid:
		return []byte(j.PayloadV1.String)
	default:
		return []byte(j.PayloadV2.String)
	}
}

// lease is how long a claim lasts: a process that dies mid-request leaves
// its deliveries to be claimed again when it ends.
func (s *Service) lease() time.Duration { return s.cfg.WebhookTimeout + 15*time.Second }

// claim leases due deliveries, at most DeliveryWorkers in flight in total
// and PerEndpointLimit per webhook. Webhooks at their limit are left out of
// the query, so a slow endpoint's backlog never fills the claim and blocks
// other endpoints (no head-of-line blocking).
func (s *Service) claim(ctx context.Context) ([]*job, error) {
	s.mu.Lock()
	free := s.cfg.DeliveryWorkers - s.running
	var full []any
	counts := map[string]int{}
	for wh, n := range s.inflight {
		counts[wh] = n
		if n >= s.cfg.PerEndpointLimit {
			full = append(full, wh)
		}
	}
	s.mu.Unlock()
	if free <= 0 {
		return nil, nil
	}
	now := s.Now()
	var out []*job
	err := s.db.Tx(ctx, func(tx *store.Conn) error {
		out = nil
		q := `SELECT d.id, d.webhook_id FROM deliveries d
			WHERE d.status IN ('pending', 'delivering') AND d.next_attempt_at <= ?
			AND (NOT d.ordered OR d.created_at <= ? OR NOT EXISTS (
				SELECT 1 FROM deliveries p WHERE p.webhook_id = d.webhook_id AND p.conversation_id = d.conversation_id
				AND p.ordered AND p.seq < d.seq AND p.status IN ('pending', 'delivering')))`
		args := []any{store.Micros(now), store.Micros(now.Add(-OrderingTimeout))}
		if len(full) > 0 {
			q += ` AND d.webhook_id NOT IN (` + inList(len(full)) + `)`
			args = append(args, full...)
		}
		q += ` ORDER BY d.next_attempt_at LIMIT ?` + tx.ForUpdateSkipLocked()
		rows, err := tx.Query(ctx, q, append(args, free*4)...)
		if err != nil {
			return err
		}
		var ids []string
		var whs []string
		for rows.Next() {
			var id, wh string
			if err := rows.Scan(&id, &wh); err != nil {
				rows.Close()
				return err
			}
			ids, whs = append(ids, id), append(whs, wh)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		taken := map[string]int{}
		var chosen []string
		for i, id := range ids {
			if len(chosen) >= free {
				break
			}
			if counts[whs[i]]+taken[whs[i]] >= s.cfg.PerEndpointLimit {
				continue
			}
			res, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'delivering', locked_by = ?, locked_until = ?, next_attempt_at = ?,
				attempts = attempts + 1, updated_at = ? WHERE id = ? AND status IN ('pending', 'delivering') AND next_attempt_at <= ?`,
				s.id, store.Micros(now.Add(s.lease())), store.Micros(now.Add(s.lease())), store.Micros(now), id, store.Micros(now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				taken[whs[i]]++
				chosen = append(chosen, id)
			}
		}
		if len(chosen) == 0 {
			return nil
		}
		args = make([]any, len(chosen))
		for i, id := range chosen {
			args[i] = id
		}
		rows, err = tx.Query(ctx, `SELECT d.id, d.project_id, d.webhook_id, d.event_type, d.status, d.attempts, d.max_attempts,
			d.idempotency_key, d.event_id, d.conversation_id, d.seq, d.is_batch, d.batch_body, d.created_at, e.payload_v2, e.payload_v1
			FROM deliveries d LEFT JOIN events e ON e.id = d.event_id WHERE d.id IN (`+inList(len(chosen))+`)`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			j := &job{}
			var evID, conv sql.NullString
			var ca int64
			if err := rows.Scan(&j.ID, &j.ProjectID, &j.WebhookID, &j.Event, &j.Status, &j.AttemptsCount, &j.MaxAttempts,
				&j.IdempotencyKey, &evID, &conv, &j.Seq, &j.IsBatch, &j.BatchBody, &ca, &j.PayloadV2, &j.PayloadV1); err != nil {
				rows.Close()
				return err
			}
			j.EventID, j.ConversationID, j.CreatedAt = store.StrPtr(evID), store.StrPtr(conv), store.Time(ca)
			out = append(out, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		hooks := map[string]*Webhook{}
		for _, j := range out {
			if hooks[j.WebhookID] == nil {
				w, err := webhookByID(ctx, tx, j.WebhookID)
				if err != nil {
					return err
				}
				hooks[j.WebhookID] = w
			}
			j.Webhook = hooks[j.WebhookID]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, j := range out {
		s.running++
		s.inflight[j.WebhookID]++
	}
	s.mu.Unlock()
	return out, nil
}

// process sends one claimed delivery and records the outcome.
func (s *Service) process(ctx context.Context, j *job) {
	res := s.send(ctx, j)
	// A request cut short by shutdown is not the receiver's fault: give
	// the delivery back (and the attempt) instead of counting a failure.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ctx.Err() != nil && !res.ok {
		_, _ = s.db.Write().Exec(fctx, `UPDATE deliveries SET status = 'pending', attempts = attempts - 1, next_attempt_at = ?,
			locked_by = NULL, locked_until = NULL WHERE id = ? AND locked_by = ?`, store.Micros(s.Now()), j.ID, s.id)
		return
	}
	recordAttempt(res)
	if err := s.finish(fctx, j, res); err != nil {
		s.log.Warn("delivery: record outcome failed", slog.String("delivery", j.ID), slog.String("error", err.Error()))
	}
}

// finish records the attempt and moves the delivery on: succeeded, retried
// later, or failed (a failed batch falls back to individual deliveries).
func (s *Service) finish(ctx context.Context, j *job, res result) error {
	now := s.Now()
	var pausedEvent bool
	err := s.db.Tx(ctx, func(tx *store.Conn) error {
		pausedEvent = false
		var code any
		if res.status != 0 {
			code = res.status
		}
		var errText, snippet any
		if res.err != "" {
			errText = res.err
		}
		if res.snippet != "" {
			snippet = res.snippet
		}
		if _, err := tx.Exec(ctx, `INSERT INTO delivery_attempts (id, delivery_id, number, started_at, status_code, latency_ms, error, response_snippet)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, store.NewID(), j.ID, j.AttemptsCount, store.Micros(res.started), code,
			res.latency.Milliseconds(), errText, snippet); err != nil {
			return err
		}
		if res.ok {
			r, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'succeeded', locked_by = NULL, locked_until = NULL, last_attempt_at = ?,
				last_status_code = ?, last_error = NULL, updated_at = ? WHERE id = ? AND locked_by = ?`,
				store.Micros(res.started), code, store.Micros(now), j.ID, s.id)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				return errLeaseLost
			}
			if j.IsBatch {
				if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'succeeded', updated_at = ? WHERE batch_id = ? AND status = 'buffered'`,
					store.Micros(now), j.ID); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `UPDATE whatsapp_webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`, j.WebhookID)
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE whatsapp_webhooks SET failing_since = ? WHERE id = ? AND failing_since IS NULL`,
			store.Micros(res.started), j.WebhookID); err != nil {
			return err
		}
		var err error
		if pausedEvent, err = s.maybePause(ctx, tx, j.WebhookID, now); err != nil {
			return err
		}
		var paused sql.NullInt64
		if err := tx.QueryRow(ctx, `SELECT paused_at FROM whatsapp_webhooks WHERE id = ?`, j.WebhookID).Scan(&paused); err != nil {
			return err
		}
		final := j.AttemptsCount >= j.MaxAttempts || paused.Valid
		status := StatusPending
		next := now.Add(s.retryDelay(j, res))
		if final {
			status, next = StatusFailed, now
		}
		r, err := tx.Exec(ctx, `UPDATE deliveries SET status = ?, next_attempt_at = ?, locked_by = NULL, locked_until = NULL,
			last_attempt_at = ?, last_status_code = ?, last_error = ?, updated_at = ? WHERE id = ? AND locked_by = ?`,
			status, store.Micros(next), store.Micros(res.started), code, errText, store.Micros(now), j.ID, s.id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return errLeaseLost
		}
		if final && j.IsBatch && !paused.Valid {
			return fallBackToIndividual(ctx, tx, j.ID, now)
		}
		return nil
	})
	if err == errLeaseLost {
		return nil // another worker took over after our lease ran out
	}
	if err == nil && pausedEvent {
		webhooksPaused.Inc()
		s.Wake()
	}
	return err
}

// fallBackToIndividual turns the items of a failed batch into individual
// pending deliveries (each keeping its own idempotency key) and marks the
// items failed.
func fallBackToIndividual(ctx context.Context, tx *store.Conn, batchID string, now time.Time) error {
	rows, err := tx.Query(ctx, `SELECT id FROM deliveries WHERE batch_id = ? AND status = 'buffered'`, batchID)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, project_id, webhook_id, event_id, event_type, conversation_id, seq, ordered,
			buffered, status, attempts, max_attempts, idempotency_key, next_attempt_at, created_at, updated_at)
			SELECT ?, project_id, webhook_id, event_id, event_type, conversation_id, seq, FALSE, FALSE, 'pending', 0, max_attempts,
			idempotency_key, ?, ?, ? FROM deliveries WHERE id = ?`,
			store.NewID(), store.Micros(now), store.Micros(now), store.Micros(now), id); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE deliveries SET status = 'failed', last_error = ?, updated_at = ? WHERE batch_id = ? AND status = 'buffered'`,
		"batch failed; redelivered individually", store.Micros(now), batchID)
	return err
}

// maybePause pauses a webhook that has had no 2xx for PauseAfter while its
// deliveries kept failing: it is set inactive, its waiting deliveries are
// failed, and project webhooks are told with parley.webhook.paused.
func (s *Service) maybePause(ctx context.Context, tx *store.Conn, webhookID string, now time.Time) (bool, error) {
	if s.cfg.PauseAfter <= 0 {
		return false, nil
	}
	var since sql.NullInt64
	var active bool
	var projectID, url string
	var configID sql.NullString
	if err := tx.QueryRow(ctx, `SELECT failing_since, active, project_id, whatsapp_config_id, url FROM whatsapp_webhooks WHERE id = ?`, webhookID).
		Scan(&since, &active, &projectID, &configID, &url); err != nil {
		return false, err
	}
	if !active || !since.Valid || now.Sub(store.Time(since.Int64)) < s.cfg.PauseAfter {
		return false, nil
	}
	reason := fmt.Sprintf("No successful delivery since %s (%s of failures)", store.Time(since.Int64).Format(time.RFC3339), s.cfg.PauseAfter)
	if _, err := tx.Exec(ctx, `UPDATE whatsapp_webhooks SET active = FALSE, paused_at = ?, paused_reason = ?, updated_at = ? WHERE id = ?`,
		store.Micros(now), reason, store.Micros(now), webhookID); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'failed', last_error = 'webhook paused', locked_by = NULL, locked_until = NULL,
		updated_at = ? WHERE webhook_id = ? AND status IN ('pending', 'buffered')`, store.Micros(now), webhookID); err != nil {
		return false, err
	}
	payload := map[string]any{
		"webhook": map[string]any{
			"id": webhookID, "url": url, "whatsapp_config_id": store.StrPtr(configID),
			"paused_at": now.UTC().Format(time.RFC3339), "paused_reason": reason,
		},
		"project": map[string]any{"id": projectID},
	}
	if _, err := events.Emit(ctx, tx, events.Event{ProjectID: projectID, Type: parley.EventWebhookPaused, V2: payload}); err != nil {
		return false, err
	}
	s.log.Warn("delivery: webhook paused", slog.String("webhook", webhookID), slog.String("reason", reason))
	return true, nil
}

// sampleQueue updates the queue-depth gauge.
func (s *Service) sampleQueue(ctx context.Context) {
	rows, err := s.db.Read().Query(ctx, `SELECT status, COUNT(*) FROM deliveries WHERE status IN ('pending', 'buffered', 'delivering') GROUP BY status`)
	if err != nil {
		return
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var st string
		var n int
		if rows.Scan(&st, &n) == nil {
			queueDepth.WithLabelValues(st).Set(float64(n))
			seen[st] = true
		}
	}
	for _, st := range []string{StatusPending, StatusBuffered, StatusDelivering} {
		if !seen[st] {
			queueDepth.WithLabelValues(st).Set(0)
		}
	}
}

// marshalRaw is json.Marshal for values that cannot fail.
func marshalRaw(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
