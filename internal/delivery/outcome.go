package delivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

// recordBatch caps the outcomes one transaction records.
const recordBatch = 256

// pgLeaders is how many outcome batches may commit at once on PostgreSQL:
// two, so that one batch's WAL flush overlaps the next batch's statements.
// More made the batches smaller (about 5 outcomes each at 1,000
// deliveries/s) and the commits, claims and their round trips as many more,
// for lower throughput.
const pgLeaders = 2

// outcome is a finished attempt waiting to be recorded.
type outcome struct {
	j       *job
	res     result
	err     error         // this outcome's own failure, set by finishBatch
	claimed bool          // the transaction that recorded it also claimed
	done    chan error    // the result, once recorded
	lead    chan struct{} // this outcome's caller is to record a batch
	leading bool          // a lead token was sent and not yet used (recorder.mu)
}

// recorder records attempt outcomes in batches: one write transaction for
// all the outcomes that finished while the previous transaction ran (group
// commit). Callers wait for their outcome to be committed, so a delivery is
// released (and its conversation's next delivery becomes due) only once its
// outcome is durable, as when each outcome had its own transaction.
//
// Callers take turns leading: a leader records the outcomes pending (its
// own among them, unless another leader took it), then hands the lead to
// the first caller still waiting; no goroutine outlives the callers. SQLite
// has one leader at a time (one writer); PostgreSQL pgLeaders, so that commits
// waiting on the WAL flush overlap.
type recorder struct {
	mu      sync.Mutex
	pending []*outcome
	leaders int
}

func (r *recorder) record(ctx context.Context, s *Service, j *job, res result) (claimed bool, err error) {
	o := &outcome{j: j, res: res, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	maxLeaders := 1
	if s.db.Engine == store.Postgres {
		maxLeaders = pgLeaders
	}
	r.mu.Lock()
	r.pending = append(r.pending, o)
	lead := r.leaders < maxLeaders
	if lead {
		r.leaders++
	}
	r.mu.Unlock()
	if lead {
		r.leadOnce(ctx, s, o)
	}
	for {
		select {
		case err := <-o.done:
			// Our outcome is recorded; a lead handed to us meanwhile must
			// still be used, or the recorder would lose a leader.
			r.mu.Lock()
			handed := o.leading
			r.mu.Unlock()
			if handed {
				<-o.lead
				r.leadOnce(ctx, s, o)
			}
			return o.claimed, err
		case <-o.lead:
			r.leadOnce(ctx, s, o)
		}
	}
}

// leadOnce records one batch of the pending outcomes, then hands the lead
// on (or gives it up when no one is waiting).
func (r *recorder) leadOnce(ctx context.Context, s *Service, self *outcome) {
	r.mu.Lock()
	self.leading = false
	n := min(len(r.pending), recordBatch)
	batch := slices.Clone(r.pending[:n])
	r.pending = slices.Delete(r.pending, 0, n)
	r.mu.Unlock()
	if n > 0 {
		claimed, err := s.finishBatch(ctx, batch)
		for _, b := range batch {
			b.claimed = claimed
			if err == nil {
				b.done <- b.err
			} else {
				b.done <- err
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pending {
		if !p.leading {
			p.leading = true
			p.lead <- struct{}{}
			return
		}
	}
	r.leaders--
}

// finishBatch records the outcomes of batch in one transaction (on SQLite
// a group commit shared with other writers). Webhooks whose outcomes in the
// batch all succeeded are recorded with a few multi-row statements; a
// webhook with a failure among them has its outcomes recorded one by one in
// the order they finished, each in a savepoint, exactly as if each had its
// own transaction (the failure streak and pausing depend on that order).
//
// While Run runs, and unless another claim is under way, the same
// transaction then claims the next deliveries (the workers of batch are
// free, and a recorded ordered delivery lets its successor go) and Run's
// workers start them after the commit: under load, one commit per batch
// both records and claims. claimed reports whether it did.
func (s *Service) finishBatch(ctx context.Context, batch []*outcome) (claimed bool, err error) {
	now := s.Now()
	failing := map[string]bool{}
	for _, o := range batch {
		if !o.res.ok {
			failing[o.j.WebhookID] = true
		}
	}
	s.mu.Lock()
	runCtx, runWG := s.runCtx, s.runWG
	s.mu.Unlock()
	claiming := runCtx != nil && runCtx.Err() == nil && s.claimMu.TryLock()
	if claiming {
		defer s.claimMu.Unlock()
		for _, o := range batch {
			s.releaseSlot(o.j) // their requests are over
		}
	}
	var paused, created int
	var next []*job
	var more bool
	err = s.db.TxGroup(ctx, func(tx *store.Conn) error {
		paused, created, next, more, claimed = 0, 0, nil, false, false
		var ok []*outcome
		for _, o := range batch {
			if !failing[o.j.WebhookID] {
				ok = append(ok, o)
			}
		}
		streakEnds, err := s.finishSucceeded(ctx, tx, ok, now)
		if err != nil {
			return err
		}
		// Then the webhook rows, one webhook at a time in id order, so
		// that concurrent transactions (PostgreSQL) lock them in the same
		// order and never deadlock: the failure streaks that end, and the
		// outcomes of failing webhooks one by one in the order they
		// finished.
		hooks := streakEnds
		for wh := range failing {
			hooks = append(hooks, wh)
		}
		slices.Sort(hooks)
		for _, wh := range hooks {
			if !failing[wh] {
				if _, err := tx.Exec(ctx, `UPDATE whatsapp_webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`, wh); err != nil {
					return err
				}
				continue
			}
			var outs []*outcome
			for _, o := range batch {
				if o.j.WebhookID == wh {
					outs = append(outs, o)
				}
			}
			if tx.Postgres() && len(outs) > 1 && !slices.ContainsFunc(outs, func(o *outcome) bool { return o.res.ok }) {
				// Only failures: those that schedule a retry in one
				// statement, the rest one by one below. (With a success
				// among them the order of the outcomes decides the
				// failure streak, so each is recorded in turn.)
				rest, err := s.finishRetriesPG(ctx, tx, wh, outs, now)
				if errors.Is(err, errSavepoint) {
					return err
				}
				if err == nil {
					outs = rest
				}
			}
			for _, o := range outs {
				o.err = nil
				err := savepoint(ctx, tx, func() error {
					p, c, err := s.finishOne(ctx, tx, o.j, o.res, now)
					if p {
						paused++
					}
					if c {
						created++
					}
					return err
				})
				if errors.Is(err, errSavepoint) {
					return err
				}
				o.err = err
			}
		}
		if !claiming {
			return nil
		}
		// A failed claim must not undo the outcomes: the loop claims later.
		if tx.Postgres() {
			// The savepoint opens with the claim's settings, and the
			// commit that follows releases it: no round trip of its own.
			next, more, err = s.claimTx(ctx, tx, now, false, true)
			if err != nil {
				if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT delivery`); rerr != nil {
					return fmt.Errorf("%w: %v", errSavepoint, rerr)
				}
			}
		} else {
			err = savepoint(ctx, tx, func() error {
				var err error
				next, more, err = s.claimTx(ctx, tx, now, false, false)
				return err
			})
			if errors.Is(err, errSavepoint) {
				return err
			}
		}
		if err != nil {
			s.log.Warn("delivery: claim failed", slog.String("error", err.Error()))
			next = nil
			return nil
		}
		claimed = true
		return nil
	})
	if err != nil {
		return false, err
	}
	if claimed {
		s.countClaimed(next, more, now)
		s.start(runCtx, runWG, next)
	}
	if paused > 0 {
		webhooksPaused.Add(float64(paused))
	}
	if created > 0 {
		s.Wake()
	}
	return claimed, nil
}

// errSavepoint marks a failure of the savepoint statements themselves,
// which leaves the transaction unusable.
var errSavepoint = errors.New("delivery: savepoint")

// savepoint runs fn in a savepoint of tx, rolled back when fn fails; fn's
// error is returned.
func savepoint(ctx context.Context, tx *store.Conn, fn func() error) error {
	if _, err := tx.Exec(ctx, `SAVEPOINT delivery`); err != nil {
		return fmt.Errorf("%w: %v", errSavepoint, err)
	}
	ferr := fn()
	if ferr != nil {
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT delivery`); err != nil {
			return fmt.Errorf("%w: %v", errSavepoint, err)
		}
	}
	if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT delivery`); err != nil {
		return fmt.Errorf("%w: %v", errSavepoint, err)
	}
	return ferr
}

// finishSucceeded records successful outcomes: the deliveries still leased
// by this service become succeeded (one statement, returning which were
// still held) and their attempts are inserted (one statement). It returns
// the webhooks among them whose failure streak ends (failing_since set), for
// the caller to clear in its order.
func (s *Service) finishSucceeded(ctx context.Context, tx *store.Conn, ok []*outcome, now time.Time) (streakEnds []string, err error) {
	if len(ok) == 0 {
		return nil, nil
	}
	// In id order: concurrent transactions lock delivery rows in one order.
	ok = slices.Clone(ok)
	slices.SortFunc(ok, func(a, b *outcome) int { return strings.Compare(a.j.ID, b.j.ID) })
	if tx.Postgres() {
		return s.finishSucceededPG(ctx, tx, ok, now)
	}
	var vals strings.Builder
	args := make([]any, 0, 3*len(ok)+2)
	args = append(args, store.Micros(now))
	for i, o := range ok {
		if i > 0 {
			vals.WriteString(", ")
		}
		vals.WriteString("(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS INTEGER))")
		args = append(args, o.j.ID, store.Micros(o.res.started), o.res.status)
	}
	args = append(args, s.id)
	rows, err := tx.Query(ctx, `UPDATE deliveries SET status = 'succeeded', locked_by = NULL, locked_until = NULL,
		last_attempt_at = v.column2, last_status_code = v.column3, last_error = NULL, updated_at = ?
		FROM (VALUES `+vals.String()+`) AS v WHERE deliveries.id = v.column1 AND deliveries.locked_by = ? RETURNING deliveries.id`, args...)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		held[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var recorded []*outcome
	for _, o := range ok {
		if held[o.j.ID] { // else another worker took over after our lease ran out
			recorded = append(recorded, o)
		}
	}
	if len(recorded) == 0 {
		return nil, nil
	}
	if err := insertAttempts(ctx, tx, recorded); err != nil {
		return nil, err
	}
	var hooks []any
	seen := map[string]bool{}
	for _, o := range recorded {
		if o.j.IsBatch {
			if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'succeeded', updated_at = ? WHERE batch_id = ? AND status = 'buffered'`,
				store.Micros(now), o.j.ID); err != nil {
				return nil, err
			}
		}
		if !seen[o.j.WebhookID] {
			seen[o.j.WebhookID] = true
			hooks = append(hooks, o.j.WebhookID)
		}
	}
	// Usually none: a plain read, no row locked.
	rows, err = tx.Query(ctx, `SELECT id FROM whatsapp_webhooks WHERE id IN (`+store.Placeholders(len(hooks))+`) AND failing_since IS NOT NULL`, hooks...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		streakEnds = append(streakEnds, id)
	}
	return streakEnds, rows.Err()
}

// finishSucceededPG is finishSucceeded in one statement on PostgreSQL: the
// deliveries still leased become succeeded, their attempts are inserted, and
// the failure streaks that end are read, all from array parameters, so the
// statement's text never changes with the batch size (one prepared
// statement per connection, one round trip per batch). The outcomes come in
// id order; the update takes them in that order (nested loop over the
// arrays), so concurrent batches lock delivery rows in one order.
func (s *Service) finishSucceededPG(ctx context.Context, tx *store.Conn, ok []*outcome, now time.Time) (streakEnds []string, err error) {
	a := newAttemptArrays(ok)
	rows, err := tx.Query(ctx, `WITH v AS (
			SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS INTEGER[]), CAST(? AS TEXT[]), CAST(? AS INTEGER[]),
				CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])) WITH ORDINALITY
				AS v(id, started, code, attempt_id, number, latency, error, snippet, n)),
		u AS (UPDATE deliveries SET status = 'succeeded', locked_by = NULL, locked_until = NULL,
				last_attempt_at = v.started, last_status_code = v.code, last_error = NULL, updated_at = ?
			FROM v WHERE deliveries.id = v.id AND deliveries.locked_by = ? RETURNING deliveries.id, deliveries.webhook_id),
		a AS (INSERT INTO delivery_attempts (id, delivery_id, number, started_at, status_code, latency_ms, error, response_snippet)
			SELECT v.attempt_id, v.id, v.number, v.started, v.code, v.latency, v.error, v.snippet FROM v JOIN u ON u.id = v.id ORDER BY v.n)
		SELECT u.id, u.webhook_id, w.failing_since IS NOT NULL FROM u JOIN whatsapp_webhooks w ON w.id = u.webhook_id`,
		a.ids, a.started, a.codes, a.attemptIDs, a.numbers, a.latency, a.errs, a.snippets, store.Micros(now), s.id)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	ends := map[string]bool{}
	for rows.Next() {
		var id, wh string
		var failing bool
		if err := rows.Scan(&id, &wh, &failing); err != nil {
			rows.Close()
			return nil, err
		}
		held[id] = true
		if failing && !ends[wh] {
			ends[wh] = true
			streakEnds = append(streakEnds, wh)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, o := range ok { // else another worker took over after our lease ran out
		if held[o.j.ID] && o.j.IsBatch {
			if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'succeeded', updated_at = ? WHERE batch_id = ? AND status = 'buffered'`,
				store.Micros(now), o.j.ID); err != nil {
				return nil, err
			}
		}
	}
	return streakEnds, nil
}

// finishRetriesPG records, on PostgreSQL, the failures of webhook wh that
// only schedule a retry (not the last attempt, not a batch, the webhook
// not paused by them) in one savepoint: the failure streak is started
// once, then the deliveries still leased get their retry time and their
// attempts in one statement from array parameters, as finishSucceededPG
// does for successes. It returns the outcomes left for finishOne (last
// attempts, batches, or all of them when the webhook is to be paused); on
// an error (the savepoint rolled back) the caller records them all one by
// one.
func (s *Service) finishRetriesPG(ctx context.Context, tx *store.Conn, wh string, outs []*outcome, now time.Time) (rest []*outcome, err error) {
	err = savepoint(ctx, tx, func() error {
		rest = nil
		first := outs[0].res.started
		for _, o := range outs {
			if o.res.started.Before(first) {
				first = o.res.started
			}
		}
		var active bool
		var since, pausedAt sql.NullInt64
		if err := tx.QueryRow(ctx, `UPDATE whatsapp_webhooks SET failing_since = COALESCE(failing_since, ?) WHERE id = ?
			RETURNING failing_since, active, paused_at`, store.Micros(first), wh).Scan(&since, &active, &pausedAt); err != nil {
			return err
		}
		if pausedAt.Valid || (s.cfg.PauseAfter > 0 && active && since.Valid && now.Sub(store.Time(since.Int64)) >= s.cfg.PauseAfter) {
			rest = outs // finishOne pauses the webhook and fails them
			return nil
		}
		var retry []*outcome
		for _, o := range outs {
			if o.j.IsBatch || o.j.AttemptsCount >= o.j.MaxAttempts {
				rest = append(rest, o)
			} else {
				retry = append(retry, o)
			}
		}
		if len(retry) == 0 {
			return nil
		}
		slices.SortFunc(retry, func(a, b *outcome) int { return strings.Compare(a.j.ID, b.j.ID) })
		a := newAttemptArrays(retry)
		next := make([]int64, len(retry))
		for i, o := range retry {
			next[i] = store.Micros(now.Add(s.retryDelay(o.j, o.res)))
		}
		_, err := tx.Exec(ctx, `WITH v AS (
				SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS INTEGER[]), CAST(? AS TEXT[]), CAST(? AS INTEGER[]),
					CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[])) WITH ORDINALITY
					AS v(id, started, code, attempt_id, number, latency, error, snippet, next, n)),
			u AS (UPDATE deliveries SET status = 'pending', next_attempt_at = v.next, locked_by = NULL, locked_until = NULL,
					last_attempt_at = v.started, last_status_code = v.code, last_error = v.error, updated_at = ?
				FROM v WHERE deliveries.id = v.id AND deliveries.locked_by = ? RETURNING deliveries.id)
			INSERT INTO delivery_attempts (id, delivery_id, number, started_at, status_code, latency_ms, error, response_snippet)
				SELECT v.attempt_id, v.id, v.number, v.started, v.code, v.latency, v.error, v.snippet FROM v JOIN u ON u.id = v.id ORDER BY v.n`,
			a.ids, a.started, a.codes, a.attemptIDs, a.numbers, a.latency, a.errs, a.snippets, next, store.Micros(now), s.id)
		return err
	})
	return rest, err
}

// attemptArrays are outcomes as PostgreSQL array parameters, one element
// per outcome: the delivery, its new attempt row, and the attempt's
// nullable columns.
type attemptArrays struct {
	ids, attemptIDs           []string
	started, latency, numbers []int64
	codes                     []*int64
	errs, snippets            []*string
}

func newAttemptArrays(outs []*outcome) attemptArrays {
	n := len(outs)
	a := attemptArrays{ids: make([]string, n), attemptIDs: make([]string, n), started: make([]int64, n), latency: make([]int64, n),
		numbers: make([]int64, n), codes: make([]*int64, n), errs: make([]*string, n), snippets: make([]*string, n)}
	for i, o := range outs {
		a.ids[i], a.attemptIDs[i] = o.j.ID, store.NewID()
		a.started[i], a.latency[i] = store.Micros(o.res.started), o.res.latency.Milliseconds()
		a.numbers[i] = int64(o.j.AttemptsCount)
		if o.res.status != 0 {
			c := int64(o.res.status)
			a.codes[i] = &c
		}
		if o.res.err != "" {
			e := o.res.err
			a.errs[i] = &e
		}
		if o.res.snippet != "" {
			sn := o.res.snippet
			a.snippets[i] = &sn
		}
	}
	return a
}

// insertAttempts inserts the attempt rows of outcomes in one statement.
func insertAttempts(ctx context.Context, tx *store.Conn, outs []*outcome) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO delivery_attempts (id, delivery_id, number, started_at, status_code, latency_ms, error, response_snippet) VALUES `)
	args := make([]any, 0, 8*len(outs))
	for i, o := range outs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		code, errText, snippet := attemptValues(o.res)
		args = append(args, store.NewID(), o.j.ID, o.j.AttemptsCount, store.Micros(o.res.started), code,
			o.res.latency.Milliseconds(), errText, snippet)
	}
	_, err := tx.Exec(ctx, q.String(), args...)
	return err
}

// attemptValues returns the nullable columns of an attempt.
func attemptValues(res result) (code, errText, snippet any) {
	if res.status != 0 {
		code = res.status
	}
	if res.err != "" {
		errText = res.err
	}
	if res.snippet != "" {
		snippet = res.snippet
	}
	return code, errText, snippet
}

// forUpdate locks the rows read (PostgreSQL); SQLite's single writer
// already serialises the transaction.
func forUpdate(c *store.Conn) string {
	if c.Postgres() {
		return " FOR UPDATE"
	}
	return ""
}

// finishOne records one outcome and moves its delivery on: succeeded,
// retried later, or failed (a failed batch falls back to individual
// deliveries). It reports whether it paused the webhook and whether it
// created deliveries (the paused event, a batch's fallback). An outcome
// whose lease another worker took over is dropped.
func (s *Service) finishOne(ctx context.Context, tx *store.Conn, j *job, res result, now time.Time) (paused, created bool, err error) {
	// The attempt is inserted only while the lease is ours (the delivery row
	// locked meanwhile, PostgreSQL): one statement for the check and the
	// insert.
	code, errText, snippet := attemptValues(res)
	r, err := tx.Exec(ctx, `INSERT INTO delivery_attempts (id, delivery_id, number, started_at, status_code, latency_ms, error, response_snippet)
		SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS INTEGER), CAST(? AS BIGINT),
		CAST(? AS TEXT), CAST(? AS TEXT) WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ? AND locked_by = ?`+forUpdate(tx)+`)`,
		store.NewID(), j.ID, j.AttemptsCount, store.Micros(res.started), code, res.latency.Milliseconds(), errText, snippet, j.ID, s.id)
	if err != nil {
		return false, false, err
	}
	if n, err := r.RowsAffected(); err != nil {
		return false, false, err
	} else if n == 0 {
		return false, false, nil
	}
	if res.ok {
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'succeeded', locked_by = NULL, locked_until = NULL, last_attempt_at = ?,
			last_status_code = ?, last_error = NULL, updated_at = ? WHERE id = ?`,
			store.Micros(res.started), code, store.Micros(now), j.ID); err != nil {
			return false, false, err
		}
		if j.IsBatch {
			if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'succeeded', updated_at = ? WHERE batch_id = ? AND status = 'buffered'`,
				store.Micros(now), j.ID); err != nil {
				return false, false, err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE whatsapp_webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`, j.WebhookID)
		return false, false, err
	}
	// The failure streak starts (unless it runs already), and what pausing
	// needs comes back with it: one statement.
	w := hookState{id: j.WebhookID}
	if err := tx.QueryRow(ctx, `UPDATE whatsapp_webhooks SET failing_since = COALESCE(failing_since, ?) WHERE id = ?
		RETURNING failing_since, active, project_id, whatsapp_config_id, url, paused_at`, store.Micros(res.started), j.WebhookID).
		Scan(&w.since, &w.active, &w.projectID, &w.configID, &w.url, &w.pausedAt); err != nil {
		return false, false, err
	}
	if paused, err = s.maybePause(ctx, tx, w, now); err != nil {
		return false, false, err
	}
	pausedAt := w.pausedAt
	if paused {
		pausedAt = sql.NullInt64{Int64: store.Micros(now), Valid: true}
	}
	final := j.AttemptsCount >= j.MaxAttempts || pausedAt.Valid
	status := StatusPending
	next := now.Add(s.retryDelay(j, res))
	if final {
		status, next = StatusFailed, now
	}
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = ?, next_attempt_at = ?, locked_by = NULL, locked_until = NULL,
		last_attempt_at = ?, last_status_code = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		status, store.Micros(next), store.Micros(res.started), code, errText, store.Micros(now), j.ID); err != nil {
		return false, false, err
	}
	if final && j.IsBatch && !pausedAt.Valid {
		if err := fallBackToIndividual(ctx, tx, j.ID, now); err != nil {
			return false, false, err
		}
		created = true
	}
	return paused, paused || created, nil
}
