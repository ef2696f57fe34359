package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// Job kinds of the simulator.
const (
	jobStatus = "sandbox_status"
	jobReview = "sandbox_template_review"
)

type statusPayload struct {
	ConfigID  string `json:"config_id"`
	WAMID     string `json:"wamid"`
	Recipient string `json:"recipient"`
	Status    string `json:"status"`
	Category  string `json:"category"`
	// Next are the statuses still to report, each SandboxStatusDelay after
	// the previous one has been applied, so they arrive in order.
	Next []string `json:"next,omitempty"`
}

type reviewPayload struct {
	TemplateID string `json:"template_id"`
}

func enqueue(ctx context.Context, tx *store.Conn, kind string, payload any, at time.Time) error {
	_, err := jobs.Enqueue(ctx, tx, kind, payload, jobs.Options{RunAt: at, MaxAttempts: 8})
	return err
}

// RegisterJobs registers the simulator's job handlers (simulated status and
// template review webhooks) on r, for the simulator attached to s.
func RegisterJobs(r *jobs.Runner, s *api.Server) {
	sim := For(s)
	r.Register(jobStatus, sim.runStatus)
	r.Register(jobReview, sim.runReview)
}

// runStatus posts one status webhook of a sandbox message.
func (sim *Simulator) runStatus(ctx context.Context, j *jobs.Job) error {
	var p statusPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Permanent(err)
	}
	cfg, err := store.GetConfigByID(ctx, sim.s.DB.Read(), p.ConfigID)
	if parley.IsNotFound(err) {
		return nil // config deleted meanwhile: Meta's webhook would find nobody either
	}
	if err != nil {
		return err
	}
	st := whatsapp.NewStatus(p.WAMID, p.Status, p.Recipient, time.Now())
	if p.Status == "sent" || p.Status == "delivered" {
		free := p.Category == "service"
		typ := "regular"
		if free {
			typ = "free_customer_service"
		}
		st["pricing"] = map[string]any{"billable": !free, "pricing_model": "PMP", "type": typ, "category": p.Category}
	}
	body, err := whatsapp.BuildStatusWebhook(wabaOf(cfg), cfg.PhoneNumberID, displayPhone(cfg), st)
	if err != nil {
		return jobs.Permanent(err)
	}
	if err := sim.deliver(ctx, cfg, body); err != nil {
		return err
	}
	if len(p.Next) == 0 {
		return nil
	}
	// Chain the next status only now: Meta reports delivered after sent and
	// read after delivered, and a read applied first would make delivered
	// a no-op.
	next := p
	next.Status, next.Next = p.Next[0], p.Next[1:]
	if err := enqueue(ctx, sim.s.DB.Write(), jobStatus, next, time.Now().Add(sim.s.Config.SandboxStatusDelay)); err != nil {
		return err
	}
	sim.s.JobsEnqueued()
	return nil
}

// runReview approves (or, for names starting with RejectPrefix, rejects) a
// pending template and reports it with a message_template_status_update
// webhook.
func (sim *Simulator) runReview(ctx context.Context, j *jobs.Job) error {
	var p reviewPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Permanent(err)
	}
	t, err := getTemplate(ctx, sim.s.DB.Read(), p.TemplateID)
	if parley.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg, err := sandboxConfigByWABA(ctx, sim.s.DB.Read(), t.WABAID)
	if parley.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	event, reason := "APPROVED", "NONE"
	if strings.HasPrefix(t.Name, RejectPrefix) {
		event, reason = "REJECTED", "INVALID_FORMAT"
	}
	if t.Status == "PENDING" {
		if _, err := setTemplateStatus(ctx, sim.s.DB.Write(), t.ID, "PENDING", event); err != nil {
			return err
		}
	} else if t.Status != event {
		return nil // edited or reviewed otherwise meanwhile
	}
	// A retry after a failed post finds the status already set and posts
	// again: Meta also repeats webhooks, and the inbound path dedupes.
	body, err := whatsapp.BuildTemplateStatusWebhook(t.WABAID, whatsapp.TemplateStatusUpdate{
		Event: event, TemplateID: t.ID, Name: t.Name, Language: t.Language, Reason: reason, Category: t.Category,
	})
	if err != nil {
		return jobs.Permanent(err)
	}
	if err := sim.deliver(ctx, cfg, body); err != nil {
		return fmt.Errorf("sandbox: template review webhook: %w", err)
	}
	return nil
}

func wabaOf(cfg *parley.WhatsAppConfig) string {
	if cfg.BusinessAccountID != nil {
		return *cfg.BusinessAccountID
	}
	return cfg.PhoneNumberID
}

func displayPhone(cfg *parley.WhatsAppConfig) string {
	if cfg.DisplayPhoneNumberNormalized != nil {
		return *cfg.DisplayPhoneNumberNormalized
	}
	if cfg.DisplayPhoneNumber != nil {
		return parley.NormalizePhone(*cfg.DisplayPhoneNumber)
	}
	return ""
}
