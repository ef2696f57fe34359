package displaynames

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// Job kinds.
const (
	jobSubmit = "display_name_submit"
	jobPoll   = "display_name_poll"
)

// submitAttempts bounds the submissions of one request: a Graph failure
// that may pass (network, 5xx, throttling) is retried with the runner's
// backoff (about 4 minutes in all); after the last attempt, or at once for
// an error Meta will repeat, the request is failed with Meta's error.
const submitAttempts = 8

// Review polling. Meta answers most reviews within 24–48 hours; a name
// "available without review" is decided at once. The first poll comes
// firstPoll after the submission, each next one twice as late up to
// maxPoll; a request with no outcome pollHorizon after its submission is
// given up as no_review. Variables so tests can shorten them.
var (
	firstPoll   = 30 * time.Second
	maxPoll     = time.Hour
	pollHorizon = 30 * 24 * time.Hour
)

// sandboxRejectPrefix marks names the sandbox's simulated review declines,
// as the simulator does for templates (sandbox.RejectPrefix).
const sandboxRejectPrefix = "sandbox_reject"

type jobPayload struct {
	RequestID string `json:"request_id"`
	Poll      int    `json:"poll,omitempty"` // polls done so far
}

func submitKey(id string) string { return "display_name_submit:" + id }
func pollKey(id string) string   { return "display_name_poll:" + id }

// pollDelay is the wait before poll n+1 (n polls done).
func pollDelay(n int) time.Duration {
	d := firstPoll << min(n, 30)
	if d <= 0 || d > maxPoll {
		d = maxPoll
	}
	return d
}

// RegisterJobs registers the display-name job handlers.
func RegisterJobs(r *jobs.Runner, s *api.Server) {
	w := &worker{s: s}
	r.Register(jobSubmit, w.submit)
	r.Register(jobPoll, w.poll)
}

type worker struct{ s *api.Server }

// load returns the job's request and its config; nil, nil when there is
// nothing left to do (request finished, or deleted with its config). A
// request whose config has changed number is cancelled here.
func (wk *worker) load(ctx context.Context, j *jobs.Job) (*Request, *parley.WhatsAppConfig, jobPayload, error) {
	var p jobPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return nil, nil, p, jobs.Permanent(fmt.Errorf("displaynames: payload: %w", err))
	}
	read := wk.s.DB.Read()
	req, err := getRequestByID(ctx, read, p.RequestID)
	if parley.IsNotFound(err) {
		return nil, nil, p, nil
	}
	if err != nil || !req.Active() {
		return nil, nil, p, err
	}
	cfg, err := store.GetConfigByID(ctx, read, req.ConfigID)
	if parley.IsNotFound(err) {
		return nil, nil, p, nil
	}
	if err != nil {
		return nil, nil, p, err
	}
	if cfg.PhoneNumberID != req.PhoneNumberID {
		req.Status = StatusCancelled
		_, err := updateActive(ctx, wk.s.DB.Write(), req)
		return nil, nil, p, err
	}
	return req, cfg, p, nil
}

// graph returns the Graph client and access token of a production config.
func (wk *worker) graph(cfg *parley.WhatsAppConfig) (*whatsapp.Client, string, error) {
	var g *whatsapp.Client
	if wk.s.Graph != nil {
		g = wk.s.Graph(cfg)
	}
	if g == nil {
		g = &whatsapp.Client{BaseURL: wk.s.Config.MetaGraphURL, Version: wk.s.Config.MetaGraphVersion}
	}
	if cfg.AccessTokenEnc == "" || wk.s.Box == nil {
		return nil, "", whatsapp.ErrMissingToken
	}
	tok, err := wk.s.Box.Decrypt(cfg.AccessTokenEnc)
	if err != nil {
		return nil, "", fmt.Errorf("displaynames: the access token cannot be decrypted: %w", err)
	}
	if tok == "" {
		return nil, "", whatsapp.ErrMissingToken
	}
	return g, tok, nil
}

// submit is the display_name_submit job: the name goes to Meta (or to the
// sandbox's simulated review), then the request waits for the review.
func (wk *worker) submit(ctx context.Context, j *jobs.Job) error {
	req, cfg, _, err := wk.load(ctx, j)
	if err != nil || req == nil || req.Status != StatusSubmitted {
		return err
	}
	first := pollDelay(0)
	if cfg.IsSandbox() {
		// The simulator accepts every name; its review ends after twice
		// the sandbox delay (see sandboxStatus).
		first = 2 * wk.s.Config.SandboxStatusDelay
	} else {
		g, tok, err := wk.graph(cfg)
		if err == nil {
			err = g.RequestDisplayNameChange(ctx, tok, cfg.PhoneNumberID, req.RequestedName)
		}
		if err != nil {
			if ctx.Err() != nil || (whatsapp.IsRetryable(err) && !j.LastAttempt()) {
				return err
			}
			wk.s.Log.WarnContext(ctx, "displaynames: submission failed", slog.String("request", req.ID), slog.String("error", err.Error()))
			failWith(req, err)
			_, err := updateActive(ctx, wk.s.DB.Write(), req)
			return err
		}
	}
	pending := "PENDING_REVIEW"
	req.Status, req.MetaStatus = StatusPendingReview, &pending
	return wk.s.DB.Tx(ctx, func(tx *store.Conn) error {
		ok, err := updateActive(ctx, tx, req)
		if err != nil || !ok {
			return err
		}
		return jobs.Schedule(ctx, tx, jobPoll, pollKey(req.ID), jobPayload{RequestID: req.ID}, time.Now().Add(first))
	})
}

// failWith records a failed submission with Meta's error.
func failWith(req *Request, err error) {
	req.Status = StatusFailed
	var ge *whatsapp.GraphError
	if !errors.As(err, &ge) {
		msg := err.Error()
		req.MetaErrorMessage = &msg
		return
	}
	if ge.Code != 0 {
		code := ge.Code
		req.MetaErrorCode = &code
	}
	if ge.Subcode != 0 {
		sub := ge.Subcode
		req.MetaErrorSubcode = &sub
	}
	if ge.Type != "" {
		typ := ge.Type
		req.MetaErrorType = &typ
	}
	msg := ge.Message
	if ge.Details != "" && ge.Details != ge.Message {
		msg = strings.TrimSpace(msg + ": " + ge.Details)
	}
	req.MetaErrorMessage = &msg
}

// reviewStatus reads Meta's review of the request's name: the phone
// number's new_display_name and new_name_status (and verified_name).
func (wk *worker) reviewStatus(ctx context.Context, req *Request, cfg *parley.WhatsAppConfig) (*whatsapp.DisplayNameStatus, error) {
	if cfg.IsSandbox() {
		return sandboxStatus(req, time.Now(), 2*wk.s.Config.SandboxStatusDelay), nil
	}
	g, tok, err := wk.graph(cfg)
	if err != nil {
		return nil, err
	}
	return g.DisplayNameStatus(ctx, tok, cfg.PhoneNumberID)
}

// sandboxStatus is the simulated review of a sandbox request: in review
// until delay after the submission, then approved, except names starting
// with sandboxRejectPrefix, which are declined.
func sandboxStatus(req *Request, now time.Time, delay time.Duration) *whatsapp.DisplayNameStatus {
	st := &whatsapp.DisplayNameStatus{ID: req.PhoneNumberID, NewDisplayName: req.RequestedName, NewNameStatus: "PENDING_REVIEW", NameStatus: "APPROVED"}
	if req.PreviousName != nil {
		st.VerifiedName = *req.PreviousName
	}
	if now.Before(req.SubmittedAt.Add(delay)) {
		return st
	}
	if strings.HasPrefix(strings.ToLower(req.RequestedName), sandboxRejectPrefix) {
		st.NewNameStatus = "DECLINED"
		return st
	}
	st.NewNameStatus, st.NewDisplayName, st.VerifiedName = "APPROVED", "", req.RequestedName
	return st
}

// outcome maps Meta's answer onto the request's next status; "" means the
// review is still going on.
func outcome(req *Request, st *whatsapp.DisplayNameStatus) string {
	same := func(a, b string) bool { return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b)) }
	status := strings.ToUpper(strings.TrimSpace(st.NewNameStatus))
	if st.NewDisplayName != "" && !same(st.NewDisplayName, req.RequestedName) {
		// Another name was submitted since (WhatsApp Manager, another
		// tool): this request will get no review of its own.
		return StatusCancelled
	}
	switch status {
	case "APPROVED", "AVAILABLE_WITHOUT_REVIEW":
		return StatusApplied
	case "DECLINED", "REJECTED":
		return StatusDeclined
	case "EXPIRED":
		return StatusExpired
	case "DEFERRED":
		return StatusDeferred
	case "", "NONE":
		// Nothing under review: the change went through when the name
		// is now the number's verified name.
		if same(st.VerifiedName, req.RequestedName) {
			return StatusApplied
		}
	}
	return ""
}

// poll is the display_name_poll job: one look at Meta's review, then the
// outcome, or the next poll.
func (wk *worker) poll(ctx context.Context, j *jobs.Job) error {
	req, cfg, p, err := wk.load(ctx, j)
	if err != nil || req == nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	st, err := wk.reviewStatus(ctx, req, cfg)
	next := ""
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		// A failed look does not fail the request (the name is with
		// Meta); the next poll tries again.
		wk.s.Log.WarnContext(ctx, "displaynames: review status failed", slog.String("request", req.ID), slog.String("error", err.Error()))
	} else {
		next = outcome(req, st)
		if st.NewNameStatus != "" {
			ms := st.NewNameStatus
			req.MetaStatus = &ms
		}
	}
	if next == "" && now.Sub(req.SubmittedAt) >= pollHorizon {
		next = StatusNoReview
	}
	if next == "" {
		wait := pollDelay(p.Poll + 1)
		if cfg.IsSandbox() {
			wait = max(2*wk.s.Config.SandboxStatusDelay, 10*time.Millisecond)
		}
		req.Status = StatusPendingReview
		return wk.s.DB.Tx(ctx, func(tx *store.Conn) error {
			ok, err := updateActive(ctx, tx, req)
			if err != nil || !ok {
				return err
			}
			return jobs.Schedule(ctx, tx, jobPoll, pollKey(req.ID), jobPayload{RequestID: req.ID, Poll: p.Poll + 1}, now.Add(wait))
		})
	}
	req.Status = next
	switch next {
	case StatusApplied:
		req.ReviewedAt, req.AppliedAt = &now, &now
	case StatusDeclined, StatusExpired, StatusDeferred:
		req.ReviewedAt = &now
	}
	return wk.s.DB.Tx(ctx, func(tx *store.Conn) error {
		ok, err := updateActive(ctx, tx, req)
		if err != nil || !ok || next != StatusApplied {
			return err
		}
		return setConfigDisplayName(ctx, tx, req.ConfigID, req.RequestedName, now)
	})
}
