// Package jobs runs durable background work and timers stored in the jobs
// table: sends to the Graph API, media downloads, template syncs, conversation
// timers. A job is enqueued in the same transaction as the change that needs
// it, so it is never lost; several processes on PostgreSQL share the table
// and each job is claimed by one of them (FOR UPDATE SKIP LOCKED). A claim is
// a lease: a process that dies leaves its jobs to be claimed again when the
// lease expires, so handlers must be idempotent.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

// Job is a claimed job.
type Job struct {
	ID          string
	Kind        string
	Payload     json.RawMessage
	Attempt     int // 1 on the first run
	MaxAttempts int
}

// LastAttempt reports whether a failure now is final.
func (j *Job) LastAttempt() bool { return j.Attempt >= j.MaxAttempts }

// Handler runs a job. Returning nil completes it; an error retries it with
// backoff until MaxAttempts, unless wrapped with Permanent.
type Handler func(ctx context.Context, j *Job) error

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return permanent{err} }

type retryAfter struct {
	err error
	d   time.Duration
}

func (r retryAfter) Error() string { return r.err.Error() }
func (r retryAfter) Unwrap() error { return r.err }

// RetryAfter asks for the next attempt after d.
func RetryAfter(d time.Duration, err error) error { return retryAfter{err, d} }

type snooze struct{ d time.Duration }

func (s snooze) Error() string { return "snoozed" }

// Snooze puts the job back to run after d without counting the run as an
// attempt: the job is waiting for something (such as an earlier message of
// the same conversation), not failing.
func Snooze(d time.Duration) error { return snooze{d} }

// Options for Enqueue.
type Options struct {
	RunAt       time.Time
	UniqueKey   string // at most one pending job per key; see Schedule
	MaxAttempts int
}

// Enqueue inserts a job. With a UniqueKey that already exists it does
// nothing and returns the empty id.
func Enqueue(ctx context.Context, c *store.Conn, kind string, payload any, o Options) (string, error) {
	now := time.Now()
	if o.RunAt.IsZero() {
		o.RunAt = now
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("jobs: encode payload: %w", err)
	}
	id := store.NewID()
	var uk any
	if o.UniqueKey != "" {
		uk = o.UniqueKey
	}
	res, err := c.Exec(ctx, `INSERT INTO jobs (id, kind, unique_key, payload, run_at, max_attempts, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (unique_key) DO NOTHING`,
		id, kind, uk, string(b), o.RunAt.UnixMicro(), o.MaxAttempts, now.UnixMicro())
	if err != nil {
		return "", fmt.Errorf("jobs: enqueue %s: %w", kind, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", nil
	}
	return id, nil
}

// Schedule sets the timer uniqueKey to fire at runAt with payload, replacing
// an earlier schedule of the same key (for example an inactivity timer that
// every new message pushes back).
func Schedule(ctx context.Context, c *store.Conn, kind, uniqueKey string, payload any, runAt time.Time) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("jobs: encode payload: %w", err)
	}
	_, err = c.Exec(ctx, `INSERT INTO jobs (id, kind, unique_key, payload, run_at, max_attempts, created_at)
		VALUES (?, ?, ?, ?, ?, 10, ?)
		ON CONFLICT (unique_key) DO UPDATE SET kind = excluded.kind, payload = excluded.payload, run_at = excluded.run_at,
			attempts = 0, locked_by = NULL, locked_until = NULL, last_error = NULL`,
		store.NewID(), kind, uniqueKey, string(b), runAt.UnixMicro(), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("jobs: schedule %s: %w", kind, err)
	}
	return nil
}

// Cancel removes the timer uniqueKey, if any.
func Cancel(ctx context.Context, c *store.Conn, uniqueKey string) error {
	_, err := c.Exec(ctx, `DELETE FROM jobs WHERE unique_key = ?`, uniqueKey)
	return err
}

// DefaultLease is how long a claim lasts unless renewed. The runner renews
// the leases of the jobs it is running every Lease/5, so a lease only runs
// out when its process is gone (killed, or cut off from the database): the
// job is then run again, by another process or the same one restarted,
// within seconds rather than minutes.
const DefaultLease = 3 * time.Second

// Runner claims and runs jobs.
type Runner struct {
	db          *store.DB
	log         *slog.Logger
	id          string
	handlers    map[string]Handler
	wake        chan struct{}
	Concurrency int
	Lease       time.Duration
	Poll        time.Duration

	mu      sync.Mutex
	running map[string]time.Time // jobs being run, and when they were claimed
}

// NewRunner returns a runner; register handlers before Run.
func NewRunner(db *store.DB, log *slog.Logger) *Runner {
	return &Runner{db: db, log: log, id: store.NewID(), handlers: map[string]Handler{},
		wake: make(chan struct{}, 1), Concurrency: 8, Lease: DefaultLease, Poll: 500 * time.Millisecond,
		running: map[string]time.Time{}}
}

// Register sets the handler of a job kind.
func (r *Runner) Register(kind string, h Handler) { r.handlers[kind] = h }

// Wake makes the runner look for due jobs now instead of at the next poll.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs due jobs until ctx ends, then waits for running jobs.
func (r *Runner) Run(ctx context.Context) {
	sem := make(chan struct{}, r.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); r.renewLeases(ctx) }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.wake:
		}
		free := r.Concurrency - len(sem)
		if free > 0 {
			jobs, err := r.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("jobs: claim failed", slog.String("error", err.Error()))
			}
			for _, j := range jobs {
				sem <- struct{}{}
				wg.Add(1)
				go func(j *Job) {
					defer func() {
						r.mu.Lock()
						delete(r.running, j.ID)
						r.mu.Unlock()
						<-sem
						wg.Done()
						r.Wake()
					}()
					r.run(ctx, j)
				}(j)
			}
			if len(jobs) == free {
				timer.Reset(0) // there may be more
				continue
			}
		}
		timer.Reset(r.Poll)
	}
}

// renewLeases extends the leases of the jobs this runner is running, so
// that only a dead process's leases run out, until ctx ends.
func (r *Runner) renewLeases(ctx context.Context) {
	every := max(r.Lease/5, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		args := []any{now.Add(r.Lease).UnixMicro(), r.id}
		r.mu.Lock()
		for id, at := range r.running {
			if now.Sub(at) >= every {
				args = append(args, id)
			}
		}
		r.mu.Unlock()
		if len(args) == 2 {
			continue
		}
		// Rows locked by another transaction (a Schedule replacing the
		// timer) are skipped rather than waited for: never a deadlock, and
		// the next round renews them.
		if _, err := r.db.Write().Exec(ctx, `UPDATE jobs SET locked_until = ? WHERE id IN (
			SELECT id FROM jobs WHERE locked_by = ? AND id IN (`+store.Placeholders(len(args)-2)+`)`+r.db.Write().ForUpdateSkipLocked()+`)`,
			args...); err != nil && ctx.Err() == nil {
			r.log.Warn("jobs: renew leases failed", slog.String("error", err.Error()))
		}
	}
}

func (r *Runner) claim(ctx context.Context, limit int) ([]*Job, error) {
	var out []*Job
	now := time.Now()
	// A job this runner is still running is never claimed again by it,
	// even should its lease have run out (a renewal held up by a busy
	// writer): it would run twice at once.
	mine := ""
	args := []any{r.id, now.Add(r.Lease).UnixMicro(), now.UnixMicro(), now.UnixMicro()}
	r.mu.Lock()
	if len(r.running) > 0 {
		mine = ` AND id NOT IN (` + store.Placeholders(len(r.running)) + `)`
		for id := range r.running {
			args = append(args, id)
		}
	}
	r.mu.Unlock()
	args = append(args, limit)
	err := r.db.Tx(ctx, func(tx *store.Conn) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `UPDATE jobs SET locked_by = ?, locked_until = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM jobs WHERE run_at <= ? AND (locked_until IS NULL OR locked_until < ?)`+mine+`
				ORDER BY run_at LIMIT ?`+tx.ForUpdateSkipLocked()+`)
			RETURNING id, kind, payload, attempts, max_attempts`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j Job
			var payload string
			if err := rows.Scan(&j.ID, &j.Kind, &payload, &j.Attempt, &j.MaxAttempts); err != nil {
				return err
			}
			j.Payload = json.RawMessage(payload)
			out = append(out, &j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	for _, j := range out {
		r.running[j.ID] = now
	}
	r.mu.Unlock()
	return out, nil
}

func (r *Runner) run(ctx context.Context, j *Job) {
	h, ok := r.handlers[j.Kind]
	var err error
	if !ok {
		err = Permanent(fmt.Errorf("no handler for job kind %q", j.Kind))
	} else {
		err = safeRun(ctx, h, j)
	}
	// Finishing uses a context that outlives shutdown, so a job that ran is
	// recorded as run.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		_, derr := r.db.Write().Exec(fctx, `DELETE FROM jobs WHERE id = ? AND locked_by = ?`, j.ID, r.id)
		if derr != nil {
			r.log.Warn("jobs: complete failed", slog.String("job", j.ID), slog.String("error", derr.Error()))
		}
		return
	}
	if ctx.Err() != nil {
		// Cut short by shutdown: the attempt is given back and the job
		// runs again at once, in this process restarted or another one,
		// rather than counting as a failure (and, on its last attempt,
		// being dropped with a send left pending).
		_, _ = r.db.Write().Exec(fctx, `UPDATE jobs SET attempts = attempts - 1, locked_by = NULL, locked_until = NULL WHERE id = ? AND locked_by = ?`,
			j.ID, r.id)
		return
	}
	var sn snooze
	if errors.As(err, &sn) {
		_, _ = r.db.Write().Exec(fctx, `UPDATE jobs SET run_at = ?, attempts = attempts - 1, locked_by = NULL, locked_until = NULL WHERE id = ? AND locked_by = ?`,
			time.Now().Add(sn.d).UnixMicro(), j.ID, r.id)
		return
	}
	var p permanent
	if errors.As(err, &p) || j.LastAttempt() {
		r.log.Warn("jobs: giving up", slog.String("kind", j.Kind), slog.String("job", j.ID), slog.Int("attempt", j.Attempt), slog.String("error", err.Error()))
		_, _ = r.db.Write().Exec(fctx, `DELETE FROM jobs WHERE id = ? AND locked_by = ?`, j.ID, r.id)
		return
	}
	delay := backoff(j.Attempt)
	var ra retryAfter
	if errors.As(err, &ra) {
		delay = ra.d
	}
	r.log.Debug("jobs: retrying", slog.String("kind", j.Kind), slog.String("job", j.ID), slog.Duration("in", delay), slog.String("error", err.Error()))
	_, _ = r.db.Write().Exec(fctx, `UPDATE jobs SET run_at = ?, locked_by = NULL, locked_until = NULL, last_error = ? WHERE id = ? AND locked_by = ?`,
		time.Now().Add(delay).UnixMicro(), truncate(err.Error(), 1000), j.ID, r.id)
}

func safeRun(ctx context.Context, h Handler, j *Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return h(ctx, j)
}

// backoff is exponential from 1 s, capped at 10 minutes, with ±20 % jitter.
func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt-1, 10)
	d = min(d, 10*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
