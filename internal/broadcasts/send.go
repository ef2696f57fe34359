package broadcasts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/messaging"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/templates"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// JobSend is the job that sends a broadcast, enqueued by POST …/send.
const JobSend = "broadcast_send"

// jobAttempts bounds the runs that end in an error (a database failure);
// runs that wait for earlier sends are snoozes and do not count.
const jobAttempts = 20

func jobKey(broadcastID string) string { return "broadcast-send:" + broadcastID }

type sendPayload struct {
	BroadcastID string `json:"broadcast_id"`
}

const (
	// batchSize recipients are handed to the send path per transaction.
	batchSize = 50
	// runBudget is how long one run hands over batches before it yields
	// its runner slot to other jobs.
	runBudget = 5 * time.Second
	// settleLimit is how long a broadcast whose recipients were all handed
	// over waits for its last messages to leave pending (their send jobs
	// retry for minutes at most) before it is finished anyway.
	settleLimit = 24 * time.Hour
)

type sender struct {
	s   *api.Server
	log *slog.Logger
}

// RegisterJobs registers the broadcast job handlers.
func RegisterJobs(r *jobs.Runner, s *api.Server) {
	sd := &sender{s: s, log: s.Log}
	r.Register(JobSend, sd.handle)
}

// window is how many of a broadcast's messages may wait for their send
// jobs at once: about two seconds of the per-number send rate. It keeps the
// jobs table small and lets the number's other sends (replies, other
// broadcasts) interleave with the broadcast's instead of queueing behind
// all of it.
func (sd *sender) window() int {
	rate := sd.s.Config.SendRatePerSec
	if rate <= 0 {
		rate = whatsapp.DefaultMessagesPerSecond
	}
	return max(2*rate, batchSize)
}

// handle is the broadcast_send job. Each run hands pending recipients over
// in batches while fewer than window() of the broadcast's messages are
// unsent, then snoozes; once every recipient is handed over and every
// message has left pending, it finishes the broadcast. Every batch commits
// its messages with the recipients' new state, so a run cut short (a crash,
// a lost lease) resumes at the first recipient not handed over.
func (sd *sender) handle(ctx context.Context, j *jobs.Job) error {
	var p sendPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.BroadcastID == "" {
		return jobs.Permanent(fmt.Errorf("broadcasts: bad send payload: %s", j.Payload))
	}
	wait, err := sd.run(ctx, p.BroadcastID)
	if err != nil {
		if j.LastAttempt() && ctx.Err() == nil {
			sd.giveUp(p.BroadcastID, err)
		}
		return err
	}
	if wait > 0 {
		return jobs.Snooze(wait)
	}
	return nil
}

// run hands batches over until the broadcast is finished (0, nil), must
// wait (the time to snooze) or fails.
func (sd *sender) run(ctx context.Context, id string) (time.Duration, error) {
	deadline := time.Now().Add(runBudget)
	read := sd.s.DB.Read()
	for {
		b, err := getBroadcast(ctx, read, "", id)
		if parley.IsNotFound(err) {
			return 0, nil // deleted with its config
		}
		if err != nil {
			return 0, err
		}
		if b.Status != statusSending {
			return 0, nil
		}
		n, err := inFlight(ctx, read, b.ID, sd.window())
		if err != nil {
			return 0, err
		}
		if n >= sd.window() {
			return 200 * time.Millisecond, nil
		}
		handed, err := sd.batch(ctx, b)
		if err != nil {
			return 0, err
		}
		if handed == 0 {
			return sd.settle(ctx, b)
		}
		if time.Now().After(deadline) {
			return 10 * time.Millisecond, nil
		}
	}
}

// settle finishes a broadcast whose recipients are all handed over once its
// messages have left pending, or says how long to wait for them.
func (sd *sender) settle(ctx context.Context, b *broadcast) (time.Duration, error) {
	left, err := unsent(ctx, sd.s.DB.Read(), b.ID)
	if err != nil {
		return 0, err
	}
	if left > 0 && (b.StartedAt == nil || time.Since(*b.StartedAt) < settleLimit) {
		return time.Second, nil
	}
	return 0, sd.s.DB.Tx(ctx, func(tx *store.Conn) error { return finish(ctx, tx, b.ID, now()) })
}

// afterHandOver, when set (by tests), runs in a batch's transaction after
// each recipient is handed over; an error rolls the batch back, as a crash
// before the commit would.
var afterHandOver atomic.Pointer[func(recipientID string) error]

// batch hands up to batchSize pending recipients to the send path in one
// transaction and returns how many it took (0: none was pending). A
// recipient whose message cannot be built fails alone.
func (sd *sender) batch(ctx context.Context, b *broadcast) (int, error) {
	read := sd.s.DB.Read()
	cfg, err := store.GetConfigByID(ctx, read, b.ConfigID)
	if err != nil {
		return 0, err
	}
	t, err := templates.GetTemplate(ctx, read, b.ProjectID, b.TemplateID)
	if err != nil {
		return 0, err
	}
	taken := 0
	err = sd.s.DB.Tx(ctx, func(tx *store.Conn) error {
		rs, err := claimPending(ctx, tx, b.ID, batchSize)
		if err != nil {
			return err
		}
		taken = len(rs)
		n := now()
		for _, r := range rs {
			o, err := templates.RecipientMessage(t, r.Params)
			if err == nil {
				var msg *parley.Message
				msg, err = messaging.SendTx(ctx, tx, sd.s, b.ProjectID, cfg, messaging.SendRequest{PhoneNumber: r.Phone, Message: o})
				if err == nil {
					ok, err := markQueued(ctx, tx, r.ID, msg.ID, n)
					if err != nil {
						return err
					}
					if !ok {
						return fmt.Errorf("broadcasts: recipient %s was handed over by another run", r.ID)
					}
					if hook := afterHandOver.Load(); hook != nil {
						if err := (*hook)(r.ID); err != nil {
							return err
						}
					}
					continue
				}
			}
			// Validation errors (*parley.Error) come before any statement
			// of the send, so the transaction is intact: the recipient
			// fails alone. Anything else rolls the batch back.
			var pe *parley.Error
			if !errors.As(err, &pe) {
				return err
			}
			if err := markFailed(ctx, tx, r.ID, "template parameters invalid - "+errText(err), n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if taken > 0 {
		sd.s.JobsEnqueued()
		sd.s.EventsWritten()
	}
	return taken, nil
}

// giveUp finishes a broadcast whose job failed for good (its last attempt
// ended in an error), so it does not stay sending forever: recipients not
// handed over are failed with the error.
func (sd *sender) giveUp(id string, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := sd.s.DB.Tx(ctx, func(tx *store.Conn) error {
		t := now()
		if err := failPending(ctx, tx, id, "broadcast send failed", t); err != nil {
			return err
		}
		return finish(ctx, tx, id, t)
	})
	sd.log.Warn("broadcasts: send job gave up", slog.String("broadcast", id), slog.String("error", cause.Error()),
		slog.Any("finish_error", err))
}
