package delivery

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cross-process wake-ups on PostgreSQL. A process that writes deliveries
// wakes its own workers (Wake) and sends NOTIFY on a channel named after the
// database schema; every Service listens on that channel on a dedicated
// connection and claims at once when another process notifies. Polling
// stays as the fallback: while the LISTEN connection is down, and for
// retries and buffers coming due.

// channelExpr names the channel of the current schema (a channel name is
// at most 63 bytes).
const channelExpr = `left('parley_deliveries:' || CAST(COALESCE(current_schema(), 'public') AS TEXT), 63)`

// notifySpacing bounds the NOTIFY rate of a busy process: one per interval
// at most, each waking every other process once.
const notifySpacing = 5 * time.Millisecond

// notifier coalesces Wake calls into NOTIFYs: at most one in flight, sent by
// a goroutine that exits when there is nothing left to send.
type notifier struct {
	pending atomic.Bool
	running atomic.Bool
}

func (n *notifier) notify(s *Service) {
	n.pending.Store(true)
	if n.running.CompareAndSwap(false, true) {
		go n.loop(s)
	}
}

func (n *notifier) loop(s *Service) {
	for {
		for n.pending.Swap(false) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := s.db.Write().Exec(ctx, `SELECT pg_notify(`+channelExpr+`, CAST(? AS TEXT))`, s.id)
			cancel()
			if err != nil {
				s.log.Debug("delivery: NOTIFY failed", slog.String("error", err.Error()))
			}
			time.Sleep(notifySpacing)
		}
		n.running.Store(false)
		// A notify between the last Swap and the Store above found the
		// loop still running; pick it up rather than lose it.
		if !n.pending.Load() || !n.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// listen keeps a LISTEN connection open until ctx ends, reconnecting with
// backoff; each notification from another process wakes the workers.
func (s *Service) listen(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		listening, err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if listening {
			backoff = time.Second
		}
		s.log.Warn("delivery: LISTEN connection failed; polling until it is back", slog.String("error", err.Error()),
			slog.Duration("retry_in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// listenOnce listens until the connection fails; listening reports whether
// it got as far as LISTEN.
func (s *Service) listenOnce(ctx context.Context) (listening bool, err error) {
	conn, err := pgx.Connect(ctx, s.cfg.DatabaseURL)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var ch string
	if err := conn.QueryRow(ctx, `SELECT `+channelExpr).Scan(&ch); err != nil {
		return false, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
		return false, err
	}
	s.listening.Store(true)
	defer s.listening.Store(false)
	s.wakeLocal() // whatever was written while no one listened
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if n.Payload != s.id {
			s.wakeLocal()
		}
	}
}
