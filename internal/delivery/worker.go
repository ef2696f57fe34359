package delivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// DefaultLease is how long a claim lasts unless renewed. Workers renew the
// leases of requests still in flight every DefaultLease/5, so a lease only
// runs out when its process is gone (or stalled for seconds): another
// process, or the same one restarted, then takes the delivery over. A
// process never takes over its own requests in flight, however late their
// renewal.
const DefaultLease = 3 * time.Second

// claimBatch caps the deliveries one claim transaction leases.
const claimBatch = 256

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
	// workers: the fallback for work written by another process (when
	// LISTEN/NOTIFY is unavailable) and for retries and buffers coming due.
	Poll time.Duration
	// Lease is how long a claim lasts without renewal (DefaultLease).
	Lease time.Duration
	// Jitter returns the random fraction (0..1) of the custom backoff that
	// is added to it; tests pin it.
	Jitter func() float64

	id      string
	client  *http.Client
	wake    chan struct{}
	secrets secretCache

	mu       sync.Mutex
	inflight map[string]int     // per webhook
	claimed  map[*job]time.Time // jobs not yet recorded, and when they were claimed
	running  int
	// runCtx and runWG are Run's, while it runs: jobs claimed by the
	// outcome recorder are started with them.
	runCtx context.Context
	runWG  *sync.WaitGroup
	// claimMu makes claims one at a time, so the in-flight counts a claim
	// starts from stay true until it has counted what it took.
	claimMu sync.Mutex
	skip    skipCursor // claimMu
	// more is set when the last claim left due work behind (all workers
	// busy, or endpoints at their limit): a finishing job then wakes the
	// claimer. Otherwise a finishing job has nothing to wake it for.
	more atomic.Bool

	webhooks  webhookCache
	failures  failureLog
	rec       recorder
	notifier  notifier
	listening atomic.Bool // the LISTEN connection is up (PostgreSQL)
}

// New returns a delivery service; call Run to start it. On PostgreSQL,
// cfg.DatabaseURL (when set) is used for a dedicated LISTEN connection, so
// deliveries written by another process are picked up at once rather than
// at the next poll.
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
	s := &Service{db: db, box: box, log: log, cfg: cfg, Now: time.Now, Poll: 200 * time.Millisecond, Lease: DefaultLease,
		Jitter: defaultJitter, id: store.NewID(), wake: make(chan struct{}, 1), inflight: map[string]int{}, claimed: map[*job]time.Time{}}
	s.client = newClient(cfg)
	return s
}

// Wake makes the workers look for due deliveries now instead of at the next
// poll. The API calls it after a commit that wrote events. On PostgreSQL it
// also notifies the other processes sharing the database.
func (s *Service) Wake() {
	s.wakeLocal()
	if s.db.Engine == store.Postgres {
		s.notifier.notify(s)
	}
}

func (s *Service) wakeLocal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// flushEvery bounds how often Run looks for due buffers when it is woken
// often; polls always look.
const flushEvery = 50 * time.Millisecond

// Run flushes buffers and claims and sends due deliveries until ctx ends,
// then waits for the requests in flight.
//
// Claims happen here when something wakes the loop (new events, a poll) and,
// under load, in the transaction that records finished attempts: the
// recorder claims the next deliveries with the same commit (see
// finishBatch), so a busy service spends one write transaction per batch of
// deliveries rather than two.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	s.mu.Lock()
	s.runCtx, s.runWG = ctx, &wg
	s.mu.Unlock()
	defer func() {
		wg.Wait()
		s.mu.Lock()
		s.runCtx, s.runWG = nil, nil
		s.mu.Unlock()
	}()
	if s.db.Engine == store.Postgres && s.cfg.DatabaseURL != "" {
		wg.Add(1)
		go func() { defer wg.Done(); s.listen(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.renewLeases(ctx) }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastSample, lastFlush time.Time
	for {
		polled := false
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			polled = true
		case <-s.wake:
		}
		if time.Since(lastSample) > 5*time.Second {
			lastSample = time.Now()
			s.sampleQueue(ctx)
		}
		if polled || time.Since(lastFlush) >= flushEvery {
			lastFlush = time.Now()
			if _, err := s.FlushDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("delivery: flush failed", slog.String("error", err.Error()))
			}
		}
		jobs, err := s.claim(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("delivery: claim failed", slog.String("error", err.Error()))
		}
		s.start(ctx, &wg, jobs)
		if len(jobs) > 0 && s.more.Load() {
			timer.Reset(0) // there is more
			continue
		}
		timer.Reset(s.Poll)
	}
}

// start sends jobs, each on its own goroutine counted by wg.
func (s *Service) start(ctx context.Context, wg *sync.WaitGroup, jobs []*job) {
	for _, j := range jobs {
		wg.Add(1)
		go func(j *job) {
			defer wg.Done()
			claimed := s.process(ctx, j)
			s.release(j)
			// A finished delivery frees a worker for work left behind, and
			// an ordered one lets its conversation's next go; unless the
			// recorder has claimed in the transaction that recorded it.
			if !claimed && (s.more.Load() || j.ordered()) {
				s.wakeLocal()
			}
		}(j)
	}
}

// release forgets j once its outcome is recorded.
func (s *Service) release(j *job) {
	s.releaseSlot(j)
	s.mu.Lock()
	delete(s.claimed, j) // its lease needs no more renewing
	s.mu.Unlock()
}

// releaseSlot frees j's worker and endpoint slot, once. The limits are on
// requests in flight, so the slot is free as soon as the request is over:
// the next request to the endpoint need not wait for the commit that
// records this one. (The lease still holds until then, and an ordered
// successor waits for the recorded outcome in the database.)
func (s *Service) releaseSlot(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.released {
		return
	}
	j.released = true
	s.running--
	if s.inflight[j.WebhookID]--; s.inflight[j.WebhookID] <= 0 {
		delete(s.inflight, j.WebhookID)
	}
}

// renewLeases extends the leases of requests that are taking long (a slow
// receiver, up to PARLEY_WEBHOOK_TIMEOUT), so that only a dead process's
// leases run out.
func (s *Service) renewLeases(ctx context.Context) {
	every := max(s.Lease/5, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.Now()
		s.mu.Lock()
		var ids []any
		for j, at := range s.claimed {
			if now.Sub(at) >= every {
				ids = append(ids, j.ID)
			}
		}
		s.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		until := store.Micros(now.Add(s.Lease))
		w := s.db.Write()
		cond, idArgs := inSet(w, "id", false, ids)
		args := append([]any{until, until, s.id}, idArgs...)
		// Rows locked by a transaction recording their outcome are skipped
		// (they need no lease any more), so renewal never waits on it and
		// never deadlocks with it.
		if _, err := w.Exec(ctx, `UPDATE deliveries SET locked_until = ?, next_attempt_at = ? WHERE id IN (
			SELECT id FROM deliveries WHERE locked_by = ? AND status = 'delivering' AND `+cond+skipLocked(s.db)+`)`,
			args...); err != nil && ctx.Err() == nil {
			s.log.Warn("delivery: renew leases failed", slog.String("error", err.Error()))
		}
	}
}

// job is a claimed delivery with what sending it needs.
type job struct {
	Delivery
	Seq       int64
	IsBatch   bool
	BatchBody []byte
	Payload   []byte // the event's payload in the webhook's version
	Webhook   *Webhook

	released      bool          // guarded by Service.mu
	blockedUntil  sql.NullInt64 // claim only: behind an earlier delivery waiting for a retry at this time
	webhookActive bool          // claim only: the webhook's active flag, read with the delivery
}

// Body returns the bytes to send: the batch envelope, or the event's payload
// in the webhook's payload version.
func (j *job) Body() []byte {
	if j.IsBatch {
		return j.BatchBody
	}
	return j.Payload
}

// ordered reports whether j holds back the later deliveries of its
// conversation (see events.Ordered); a batch of received messages does too.
func (j *job) ordered() bool {
	return j.ConversationID != nil && events.Ordered(j.Event)
}

// failInactive fails a claimed candidate whose webhook is inactive (and the
// items of a batch).
func failInactive(ctx context.Context, tx *store.Conn, j *job, now time.Time) error {
	const reason = "webhook inactive"
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'failed', last_error = ?, locked_by = NULL, locked_until = NULL,
		updated_at = ? WHERE id = ?`, reason, store.Micros(now), j.ID); err != nil {
		return err
	}
	if j.IsBatch {
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'failed', last_error = ?, updated_at = ? WHERE batch_id = ? AND status = 'buffered'`,
			reason, store.Micros(now), j.ID); err != nil {
			return err
		}
	}
	return nil
}

// skipLocked is FOR UPDATE SKIP LOCKED on PostgreSQL.
func skipLocked(db *store.DB) string {
	if db.Engine == store.Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// forUpdateOfD locks only the deliveries rows a claim reads (PostgreSQL),
// never the webhook or event rows joined to them.
func forUpdateOfD(c *store.Conn) string {
	if c.Postgres() {
		return " FOR UPDATE OF d SKIP LOCKED"
	}
	return ""
}

// claim leases due deliveries in a transaction of its own (see claimTx).
func (s *Service) claim(ctx context.Context) ([]*job, error) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	var out []*job
	var more bool
	now := s.Now()
	// On SQLite the claim may share its commit with other writers (the
	// inbound path, the outcome recorder) waiting at the same time.
	err := s.db.TxGroup(ctx, func(tx *store.Conn) error {
		var err error
		out, more, err = s.claimTx(ctx, tx, now, true, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.countClaimed(out, more, now)
	return out, nil
}

// countClaimed counts the jobs of a committed claim as in flight. The caller
// holds claimMu.
func (s *Service) countClaimed(jobs []*job, more bool, now time.Time) {
	s.more.Store(more)
	s.mu.Lock()
	for _, j := range jobs {
		s.running++
		s.inflight[j.WebhookID]++
		s.claimed[j] = now
	}
	s.mu.Unlock()
}

// claimTx leases due deliveries in tx, at most DeliveryWorkers in flight in
// total and PerEndpointLimit per webhook, with two statements however many
// it takes: the due deliveries with what sending them needs (the payload
// and the webhook row joined, so no delivery costs a further read), and the
// lease. more reports due work left behind. Webhooks at their limit are left
// out of the query, so a slow endpoint's backlog never fills the claim and
// blocks other endpoints (no head-of-line blocking). The caller holds
// claimMu and counts the jobs (countClaimed) once tx has committed.
//
// own is set when tx does nothing but claim: the claim then also takes the
// deliveries whose lease ran out (their process died), and on PostgreSQL
// the transaction commits without waiting for the WAL flush. A lease is
// bookkeeping: should PostgreSQL itself crash and lose it, the delivery is
// simply pending again (at least once, as after any crash).
//
// savepoint (PostgreSQL only) opens SAVEPOINT delivery in the same round trip
// as the claim's settings, for a caller that rolls back to it when the claim
// fails.
func (s *Service) claimTx(ctx context.Context, tx *store.Conn, now time.Time, own, savepoint bool) (out []*job, more bool, err error) {
	s.mu.Lock()
	free := min(s.cfg.DeliveryWorkers-s.running, claimBatch)
	mine := map[string]bool{} // not recorded yet: never taken over by ourselves
	if own {
		for j := range s.claimed {
			mine[j.ID] = true
		}
	}
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
		return nil, true, nil
	}
	// Expired leases ('delivering' past next_attempt_at) and pending
	// deliveries are read separately so each scan follows the (status,
	// next_attempt_at) index in order. A few more than there are free
	// workers are read, to make up for those of webhooks reaching their
	// limit within this claim (a shortfall only means another claim soon).
	statuses := []string{StatusPending}
	if own {
		statuses = []string{StatusDelivering, StatusPending}
	}
	if tx.Postgres() {
		// Walk the (status, next_attempt_at) index and stop at the limit.
		// With the pending count misestimated (stale statistics after a
		// burst), the planner would rather fetch every due row, test each
		// against the ordering subquery and sort: milliseconds per claim
		// with a backlog of thousands.
		q := `SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)`
		if own {
			q += `, set_config('synchronous_commit', 'off', true)`
		}
		if savepoint {
			q = `SAVEPOINT delivery; ` + q // no arguments: one simple-protocol round trip
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			return nil, false, err
		}
	}
	var cands []*job
	for _, status := range statuses {
		want := free + free/4 + 1 - len(cands)
		if want <= 0 {
			break
		}
		// An ordered delivery waits for the earlier ones of its (webhook,
		// conversation) until OrderingTimeout after its creation. Behind
		// one in flight it is left out here (that wait is short); behind
		// one waiting for a retry it is read with the time of that retry
		// (blocked_until) and moved out of the way below. For a webhook
		// subscribed to whatsapp.message.sent it also waits, left out
		// here, for the earlier outbound messages of its conversation that
		// are still being sent: their sent deliveries do not exist yet,
		// and come before it (a customer may write while the team's reply
		// is on its way to Meta).
		orderedAfter := store.Micros(now.Add(-OrderingTimeout))
		q := `SELECT d.id, d.project_id, d.webhook_id, d.event_type, d.attempts, d.max_attempts,
			d.idempotency_key, d.event_id, d.conversation_id, d.seq, d.is_batch, d.batch_body, d.created_at,
			CASE WHEN w.payload_version = 'v1' THEN e.payload_v1 ELSE e.payload_v2 END, w.updated_at, w.active,
			CASE WHEN d.ordered AND d.created_at > ? THEN (
				SELECT MAX(p.next_attempt_at) FROM deliveries p WHERE p.webhook_id = d.webhook_id AND p.conversation_id = d.conversation_id
				AND p.ordered AND p.seq < d.seq AND p.status = 'pending') END
			FROM deliveries d JOIN whatsapp_webhooks w ON w.id = d.webhook_id LEFT JOIN events e ON e.id = d.event_id
			WHERE d.status = ? AND d.next_attempt_at <= ?`
		args := []any{orderedAfter, status, store.Micros(now)}
		if len(full) > 0 {
			cond, fullArgs := inSet(tx, "d.webhook_id", true, full)
			q += ` AND ` + cond
			args = append(args, fullArgs...)
			if status == StatusPending {
				from, err := s.skip.from(ctx, tx, full, now)
				if err != nil {
					return nil, false, err
				}
				q += ` AND d.next_attempt_at >= ?`
				args = append(args, from)
			}
		}
		// Earlier received messages still in a conversation buffer, or in
		// a batch not delivered yet, also hold back the later deliveries
		// (a sent event, a later batch) of the conversation; a batch does
		// not wait for its own items. A webhook subscribed to the
		// "messages" alias receives whatsapp.message.sent too.
		q += ` AND (NOT (d.ordered OR d.is_batch) OR d.created_at <= ? OR NOT EXISTS (
				SELECT 1 FROM deliveries p WHERE p.webhook_id = d.webhook_id AND p.conversation_id = d.conversation_id
				AND p.ordered AND p.seq < d.seq AND (p.status = 'delivering'
					OR (p.status = 'buffered' AND (p.batch_id IS NULL OR p.batch_id <> d.id)))))
			AND (NOT d.ordered OR d.created_at <= ? OR (w.events NOT LIKE '%"` + parley.EventMessageSent + `"%'
				AND w.events NOT LIKE '%"messages"%') OR NOT EXISTS (
				SELECT 1 FROM messages m WHERE m.conversation_id = d.conversation_id AND m.direction = 'outbound'
				AND m.status = 'pending' AND m.seq < d.seq))
			ORDER BY d.next_attempt_at LIMIT ?` + forUpdateOfD(tx)
		args = append(args, orderedAfter, orderedAfter)
		rows, err := tx.Query(ctx, q, append(args, want)...)
		if err != nil {
			return nil, false, err
		}
		for rows.Next() {
			j := &job{}
			var evID, conv sql.NullString
			var ca, whUpdated int64
			if err := rows.Scan(&j.ID, &j.ProjectID, &j.WebhookID, &j.Event, &j.AttemptsCount, &j.MaxAttempts,
				&j.IdempotencyKey, &evID, &conv, &j.Seq, &j.IsBatch, &j.BatchBody, &ca, &j.Payload, &whUpdated, &j.webhookActive,
				&j.blockedUntil); err != nil {
				rows.Close()
				return nil, false, err
			}
			j.EventID, j.ConversationID, j.CreatedAt = store.StrPtr(evID), store.StrPtr(conv), store.Time(ca)
			j.Webhook = &Webhook{ID: j.WebhookID, updatedAt: whUpdated} // resolved below
			cands = append(cands, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, false, err
		}
	}
	if err := s.webhooks.resolve(ctx, tx, cands); err != nil {
		return nil, false, err
	}
	taken := map[string]int{}
	var ids []any
	for _, j := range cands {
		if mine[j.ID] {
			continue
		}
		if !j.webhookActive {
			// The webhook was deactivated (through the API, or paused)
			// while this delivery waited: it fails, as a pause fails the
			// waiting deliveries, rather than reach an endpoint that is
			// off. A batch takes its items with it.
			if err := failInactive(ctx, tx, j, now); err != nil {
				return nil, false, err
			}
			continue
		}
		if j.blockedUntil.Valid {
			// Due, but behind a delivery waiting for its retry: not due
			// before that retry (or the ordering timeout), so it is moved
			// there rather than read again by every claim until then.
			if at := min(j.blockedUntil.Int64, store.Micros(j.CreatedAt.Add(OrderingTimeout))); at > store.Micros(now) {
				if _, err := tx.Exec(ctx, `UPDATE deliveries SET next_attempt_at = ? WHERE id = ?`, at, j.ID); err != nil {
					return nil, false, err
				}
			}
			continue
		}
		if len(out) >= free || counts[j.WebhookID]+taken[j.WebhookID] >= s.cfg.PerEndpointLimit {
			more = true // left behind: claim again when a worker frees up
			continue
		}
		taken[j.WebhookID]++
		j.Status, j.AttemptsCount = StatusDelivering, j.AttemptsCount+1
		out = append(out, j)
		ids = append(ids, j.ID)
	}
	if len(out) == 0 {
		return nil, more, nil
	}
	// The candidates are still due: SQLite has one writer, and PostgreSQL
	// holds their row locks until this transaction ends.
	until := store.Micros(now.Add(s.Lease))
	cond, idArgs := inSet(tx, "id", false, ids)
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'delivering', locked_by = ?, locked_until = ?, next_attempt_at = ?,
		attempts = attempts + 1, updated_at = ? WHERE `+cond,
		append([]any{s.id, until, until, store.Micros(now)}, idArgs...)...); err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// skipCursorAge bounds how long a skipCursor is trusted; skipCursorLag is
// how much earlier than the cursor claims still look, for deliveries stamped
// before the cursor was set but committed after (PostgreSQL).
const (
	skipCursorAge = 200 * time.Millisecond
	skipCursorLag = 100 * time.Millisecond
)

// skipCursor spares claims the backlog of webhooks at their limit. Such a
// webhook (a receiver that hangs until the timeout) piles up due deliveries
// at the head of the due index, and every claim would walk past all of
// them to find work for the other webhooks. The cursor remembers where,
// for a given set of full webhooks, the first due delivery of any other
// webhook was: everything due before it belongs to those full webhooks, and
// deliveries that become due later are stamped later (give or take
// skipCursorLag). It is renewed when the set of full webhooks changes (one of
// them has a free slot again) and at least every skipCursorAge, which also
// bounds the effect of clocks that differ between processes.
type skipCursor struct {
	full  string // the full webhooks, sorted and joined
	first int64  // next_attempt_at of the first due delivery of another webhook
	at    time.Time
}

// from returns the next_attempt_at claims can start from, given the webhooks
// now full.
func (c *skipCursor) from(ctx context.Context, tx *store.Conn, full []any, now time.Time) (int64, error) {
	ids := make([]string, len(full))
	for i, f := range full {
		ids[i] = f.(string)
	}
	slices.Sort(ids)
	key := strings.Join(ids, ",")
	if key == c.full && now.Sub(c.at) >= 0 && now.Sub(c.at) < skipCursorAge {
		return c.first - skipCursorLag.Microseconds(), nil
	}
	cond, args := inSet(tx, "d.webhook_id", true, full)
	err := tx.QueryRow(ctx, `SELECT d.next_attempt_at FROM deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= ?
		AND `+cond+` ORDER BY d.next_attempt_at LIMIT 1`,
		append([]any{store.Micros(now)}, args...)...).Scan(&c.first)
	if errors.Is(err, sql.ErrNoRows) {
		c.first, err = store.Micros(now), nil
	}
	if err != nil {
		c.full = ""
		return 0, err
	}
	c.full, c.at = key, now
	return c.first - skipCursorLag.Microseconds(), nil
}

// process sends one claimed delivery and records the outcome. It reports
// whether the transaction that recorded the outcome also claimed.
func (s *Service) process(ctx context.Context, j *job) (claimed bool) {
	res := s.send(ctx, j)
	s.releaseSlot(j)
	// A request cut short by shutdown is not the receiver's fault: give
	// the delivery back (and the attempt) instead of counting a failure.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ctx.Err() != nil && !res.ok {
		_, _ = s.db.Write().Exec(fctx, `UPDATE deliveries SET status = 'pending', attempts = attempts - 1, next_attempt_at = ?,
			locked_by = NULL, locked_until = NULL WHERE id = ? AND locked_by = ?`, store.Micros(s.Now()), j.ID, s.id)
		return false
	}
	recordAttempt(res)
	if !res.ok {
		s.logFailure(j, res)
	}
	claimed, err := s.rec.record(fctx, s, j, res)
	if err != nil {
		s.log.Warn("delivery: record outcome failed", slog.String("delivery", j.ID), slog.String("error", err.Error()))
	}
	return claimed
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

// hookState is what recording a failure reads of its webhook row.
type hookState struct {
	id              string
	since, pausedAt sql.NullInt64
	active          bool
	projectID, url  string
	configID        sql.NullString
}

// maybePause pauses a webhook that has had no 2xx for PauseAfter while its
// deliveries kept failing: it is set inactive, its waiting deliveries are
// failed, and project webhooks are told with parley.webhook.paused.
func (s *Service) maybePause(ctx context.Context, tx *store.Conn, w hookState, now time.Time) (bool, error) {
	if s.cfg.PauseAfter <= 0 {
		return false, nil
	}
	webhookID, since, projectID, configID, url := w.id, w.since, w.projectID, w.configID, w.url
	if !w.active || !since.Valid || now.Sub(store.Time(since.Int64)) < s.cfg.PauseAfter {
		return false, nil
	}
	reason := fmt.Sprintf("No successful delivery since %s (%s of failures)", store.Time(since.Int64).Format(time.RFC3339), s.cfg.PauseAfter)
	if _, err := tx.Exec(ctx, `UPDATE whatsapp_webhooks SET active = FALSE, paused_at = ?, paused_reason = ?, updated_at = ? WHERE id = ?`,
		store.Micros(now), reason, store.Micros(now), webhookID); err != nil {
		return false, err
	}
	// Events emitted later in this transaction (on SQLite it may be a group
	// commit shared with the inbound path) must skip the paused webhook; a
	// project webhook (no config) clears every list.
	events.InvalidateWebhooks(configID.String)
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
