// Package retention prunes bookkeeping that would otherwise grow without
// bound: the receipts that deduplicate replayed Meta webhooks, statuses for
// wamids Parley never recorded, finished deliveries with their attempts,
// and events no delivery refers to. It runs
// as a self-rescheduling durable job, so exactly one process prunes at a
// time.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
)

// Job is the job kind; its unique key keeps one pending run.
const (
	Job = "retention_prune"
	key = "retention:prune"
)

// Policy says how long things are kept.
type Policy struct {
	// Receipts of Meta webhooks: Meta retries for up to 7 days, so a replay
	// older than that cannot be a retry.
	Receipts time.Duration
	// Deliveries that succeeded or failed for good, with their attempts,
	// and the events they belonged to.
	Deliveries time.Duration
	// PendingStatuses: statuses Meta reported for a wamid Parley has not
	// recorded. A send records its wamid within seconds, so one still
	// unknown after this long belongs to messages sent by another app on
	// the number, and will never be applied.
	PendingStatuses time.Duration
	// Every is the interval between runs.
	Every time.Duration
}

// DefaultPolicy keeps receipts and unmatched statuses 8 days and finished
// deliveries 30 days.
var DefaultPolicy = Policy{Receipts: 8 * 24 * time.Hour, Deliveries: 30 * 24 * time.Hour, PendingStatuses: 8 * 24 * time.Hour, Every: time.Hour}

// Register registers the job and schedules its first run (idempotent: the
// unique key keeps one pending run across processes).
func Register(ctx context.Context, r *jobs.Runner, db *store.DB, log *slog.Logger, p Policy) error {
	r.Register(Job, func(ctx context.Context, j *jobs.Job) error {
		n, err := Prune(ctx, db, p, time.Now())
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("retention: pruned rows", slog.Int64("rows", n))
		}
		// Schedule the next run. The running job still holds the key, so
		// the next run gets a key of its own generation.
		_, err = jobs.Enqueue(ctx, db.Write(), Job, nil, jobs.Options{RunAt: time.Now().Add(p.Every), UniqueKey: key + ":" + time.Now().Add(p.Every).UTC().Format("2006010215")})
		return err
	})
	_, err := jobs.Enqueue(ctx, db.Write(), Job, nil, jobs.Options{RunAt: time.Now().Add(time.Minute), UniqueKey: key + ":" + time.Now().Add(time.Minute).UTC().Format("2006010215")})
	return err
}

// Prune deletes what the policy no longer keeps, relative to now, and
// returns the number of rows deleted.
func Prune(ctx context.Context, db *store.DB, p Policy, now time.Time) (int64, error) {
	var total int64
	steps := []struct {
		q    string
		args []any
	}{
		{`DELETE FROM meta_webhook_receipts WHERE received_at < ?`, []any{now.Add(-p.Receipts).UnixMicro()}},
		// Ids are time-ordered (UUIDv7): the id bound walks the primary
		// key instead of scanning the table for created_at.
		{`DELETE FROM pending_statuses WHERE id < ? AND created_at < ?`,
			[]any{store.IDsBefore(now.Add(-p.PendingStatuses)), now.Add(-p.PendingStatuses).UnixMicro()}},
		{`DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE status IN ('succeeded', 'failed') AND updated_at < ?)`,
			[]any{now.Add(-p.Deliveries).UnixMicro()}},
		{`DELETE FROM deliveries WHERE status IN ('succeeded', 'failed') AND updated_at < ?`, []any{now.Add(-p.Deliveries).UnixMicro()}},
		{`DELETE FROM events WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)`,
			[]any{now.Add(-p.Deliveries).UnixMicro()}},
	}
	for _, s := range steps {
		res, err := db.Write().Exec(ctx, s.q, s.args...)
		if err != nil {
			return total, fmt.Errorf("retention: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
