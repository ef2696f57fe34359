package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// healthTimeout bounds the whole health check (three Graph calls in
// parallel, each with the client's own retries).
const healthTimeout = 20 * time.Second

// HealthReport is the body of GET /whatsapp_configs/{id}/health (rendered
// at the root, without "data").
type HealthReport struct {
	Status    string        `json:"status"` // healthy, degraded, unhealthy or error
	Checks    *HealthChecks `json:"checks,omitempty"`
	Timestamp time.Time     `json:"timestamp"`
	Error     string        `json:"error,omitempty"`
}

// HealthChecks are the four checks of a report.
type HealthChecks struct {
	PhoneNumberAccess   Check          `json:"phone_number_access"`
	MessagingHealth     MessagingCheck `json:"messaging_health"`
	WebhookSubscription Check          `json:"webhook_subscription"`
	WebhookVerified     Check          `json:"webhook_verified"`
}

// Check is one check's result.
type Check struct {
	Passed  bool   `json:"passed"`
	Details any    `json:"details,omitempty"`
	Error   string `json:"error,omitempty"`
}

// MessagingCheck is the messaging_health check.
type MessagingCheck struct {
	Passed        bool              `json:"passed"`
	OverallStatus string            `json:"overall_status,omitempty"`
	Details       *MessagingDetails `json:"details,omitempty"`
	Error         string            `json:"error,omitempty"`
}

// MessagingDetails is Meta's health_status.
type MessagingDetails struct {
	CanSendMessage string                  `json:"can_send_message"`
	Entities       []whatsapp.HealthEntity `json:"entities"`
}

type phoneDetails struct {
	VerifiedName       string `json:"verified_name"`
	DisplayPhoneNumber string `json:"display_phone_number"`
	QualityRating      string `json:"quality_rating"`
	ID                 string `json:"id"`
}

// subscriptionDetails are the webhook_subscription check's details.
// subscribed_fields is omitted when unknown (Graph's subscribed_apps does not
// report them): Kapso's example shows null, but its schema does not allow it.
type subscriptionDetails struct {
	AppID            string   `json:"app_id,omitempty"`
	Subscribed       bool     `json:"subscribed"`
	SubscribedFields []string `json:"subscribed_fields,omitempty"`
}

// verifiedDetails are the webhook_verified check's details; verified_at,
// which Kapso's schema does not allow to be null, is omitted until the
// webhook is verified.
type verifiedDetails struct {
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	Message    string     `json:"message"`
}

func (sim *Simulator) health(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return err
	}
	cfg, err := store.GetConfig(r.Context(), sim.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	api.WriteJSON(w, http.StatusOK, CheckHealth(ctx, sim.s, cfg))
	return nil
}

// CheckHealth runs the health checks of a config: production configs
// through Meta's Graph API (s.Graph), sandbox configs through the simulator.
//
// Status rules (semantics §8.3): unhealthy when the phone number cannot be
// read (token, permissions) or messaging is BLOCKED or unreadable; degraded
// when messaging is LIMITED or the webhook is not subscribed or not verified;
// healthy otherwise; error when the checks could not run at all (undecryptable
// token, Graph unreachable).
func CheckHealth(ctx context.Context, s *api.Server, cfg *parley.WhatsAppConfig) *HealthReport {
	now := time.Now().UTC().Truncate(time.Second)
	token, err := s.Box.Decrypt(cfg.AccessTokenEnc)
	if err != nil {
		return &HealthReport{Status: "error", Timestamp: now, Error: "The config's access token cannot be decrypted (PARLEY_SECRET_KEY changed?)"}
	}
	if token == "" && cfg.IsSandbox() {
		token = "sandbox"
	}
	if s.Graph == nil {
		return &HealthReport{Status: "error", Timestamp: now, Error: "No Graph API client is configured"}
	}
	client := s.Graph(cfg)
	checks := &HealthChecks{}
	var phoneErr, msgErr, subErr error
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		checks.PhoneNumberAccess, phoneErr = phoneCheck(ctx, client, token, cfg)
	}()
	go func() {
		defer wg.Done()
		checks.MessagingHealth, msgErr = messagingCheck(ctx, client, token, cfg)
	}()
	go func() {
		defer wg.Done()
		checks.WebhookSubscription, subErr = subscriptionCheck(ctx, client, token, cfg)
	}()
	wg.Wait()
	checks.WebhookVerified = verifiedCheck(cfg)
	if unreachable(phoneErr) && unreachable(msgErr) && unreachable(subErr) {
		return &HealthReport{Status: "error", Timestamp: now, Error: "The WhatsApp Cloud API could not be reached: " + phoneErr.Error()}
	}
	status := "healthy"
	m := checks.MessagingHealth
	switch {
	case !checks.PhoneNumberAccess.Passed, m.Error != "", m.OverallStatus == "BLOCKED":
		status = "unhealthy"
	case !m.Passed, !checks.WebhookSubscription.Passed, !checks.WebhookVerified.Passed:
		status = "degraded"
	}
	return &HealthReport{Status: status, Checks: checks, Timestamp: now}
}

// unreachable reports a failure that is not an answer from Graph (network,
// timeout), as opposed to Graph refusing the call.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var ge *whatsapp.GraphError
	return !errors.As(err, &ge) && !errors.Is(err, errNoToken) && !errors.Is(err, errNoWABA)
}

var (
	errNoToken = errors.New("the config has no access token")
	errNoWABA  = errors.New("the config has no business account id")
)

// graphMessage renders a Graph failure the way Kapso's checks do.
func graphMessage(err error) string {
	var ge *whatsapp.GraphError
	if errors.As(err, &ge) {
		msg := ge.Message
		if ge.Code != 0 {
			msg = fmt.Sprintf("%s (code %d)", msg, ge.Code)
		}
		return fmt.Sprintf("Meta Graph API error: %d - %s", ge.HTTPStatus, msg)
	}
	return "Meta Graph API error: " + err.Error()
}

func phoneCheck(ctx context.Context, c *whatsapp.Client, token string, cfg *parley.WhatsAppConfig) (Check, error) {
	if token == "" {
		return Check{Error: "Meta Graph API error: " + errNoToken.Error()}, errNoToken
	}
	p, err := c.GetPhoneNumber(ctx, token, cfg.PhoneNumberID)
	if err != nil {
		return Check{Error: graphMessage(err)}, err
	}
	return Check{Passed: true, Details: phoneDetails{VerifiedName: p.VerifiedName, DisplayPhoneNumber: p.DisplayPhoneNumber,
		QualityRating: p.QualityRating, ID: p.ID}}, nil
}

func messagingCheck(ctx context.Context, c *whatsapp.Client, token string, cfg *parley.WhatsAppConfig) (MessagingCheck, error) {
	if token == "" {
		return MessagingCheck{Error: "Meta Graph API error: " + errNoToken.Error()}, errNoToken
	}
	h, err := c.HealthStatus(ctx, token, cfg.PhoneNumberID)
	if err != nil {
		return MessagingCheck{Error: graphMessage(err)}, err
	}
	entities := h.Entities
	if entities == nil {
		entities = []whatsapp.HealthEntity{}
	}
	out := MessagingCheck{Passed: h.CanSendMessage == "AVAILABLE", Details: &MessagingDetails{CanSendMessage: h.CanSendMessage, Entities: entities}}
	switch h.CanSendMessage {
	case "AVAILABLE", "LIMITED", "BLOCKED":
		out.OverallStatus = h.CanSendMessage
	}
	return out, nil
}

func subscriptionCheck(ctx context.Context, c *whatsapp.Client, token string, cfg *parley.WhatsAppConfig) (Check, error) {
	if cfg.BusinessAccountID == nil || *cfg.BusinessAccountID == "" {
		return Check{Error: errNoWABA.Error()}, errNoWABA
	}
	if token == "" {
		return Check{Error: "Meta Graph API error: " + errNoToken.Error()}, errNoToken
	}
	apps, err := c.SubscribedApps(ctx, token, *cfg.BusinessAccountID)
	if err != nil {
		return Check{Error: graphMessage(err)}, err
	}
	if len(apps) == 0 {
		return Check{Details: subscriptionDetails{Subscribed: false}, Error: "No app is subscribed to the WhatsApp Business Account's webhooks"}, nil
	}
	return Check{Passed: true, Details: subscriptionDetails{AppID: apps[0].ID, Subscribed: true}}, nil
}

// verifiedCheck reads webhook_verified_at. Sandbox webhooks never leave the
// process, so a sandbox config counts as verified since its creation.
func verifiedCheck(cfg *parley.WhatsAppConfig) Check {
	at := cfg.WebhookVerifiedAt
	if at == nil && cfg.IsSandbox() {
		at = &cfg.CreatedAt
	}
	if at == nil {
		return Check{Details: verifiedDetails{Message: "Webhook not yet verified by Meta"}}
	}
	t := at.UTC()
	return Check{Passed: true, Details: verifiedDetails{VerifiedAt: &t,
		Message: "Webhook successfully verified at " + t.Format("2006-01-02 15:04:05") + " UTC"}}
}
