package platformapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/delivery"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/store"
)

// registerWebhooks serves phone-number webhooks, project webhooks (the same
// table: a project webhook has no phone number), test deliveries, the
// delivery log and redelivery. Validation is platform.DecodeWebhook's, as
// on /api/v1.
func registerWebhooks(s *api.Server) {
	pn := "/whatsapp/phone_numbers/{phone_number_id}/webhooks"
	s.HandleOn(api.Platform, "GET "+pn, listWebhooks(s, true))
	s.HandleOn(api.Platform, "POST "+pn, createWebhook(s, true))
	s.HandleOn(api.Platform, "GET "+pn+"/{webhook_id}", getWebhook(s, true))
	s.HandleOn(api.Platform, "PATCH "+pn+"/{webhook_id}", updateWebhook(s, true))
	s.HandleOn(api.Platform, "DELETE "+pn+"/{webhook_id}", deleteWebhook(s, true))
	s.HandleOn(api.Platform, "GET /whatsapp/webhooks", listWebhooks(s, false))
	s.HandleOn(api.Platform, "POST /whatsapp/webhooks", createWebhook(s, false))
	s.HandleOn(api.Platform, "GET /whatsapp/webhooks/{webhook_id}", getWebhook(s, false))
	s.HandleOn(api.Platform, "PATCH /whatsapp/webhooks/{webhook_id}", updateWebhook(s, false))
	s.HandleOn(api.Platform, "DELETE /whatsapp/webhooks/{webhook_id}", deleteWebhook(s, false))
	s.HandleOn(api.Platform, "POST /whatsapp/webhooks/{webhook_id}/test", testWebhook(s))
	s.HandleOn(api.Platform, "GET /webhook_deliveries", listDeliveries(s))
	s.HandleOn(api.Platform, "POST /webhook_deliveries/{delivery_id}/redeliver", redeliver(s))
}

// webhookView is a webhook as Kapso's Platform API renders it: the phone
// number by Meta's id (null for a project webhook), and the kind.
type webhookView struct {
	ID                  string            `json:"id"`
	ProjectID           string            `json:"project_id"`
	PhoneNumberID       *string           `json:"phone_number_id"`
	Kind                string            `json:"kind"`
	URL                 string            `json:"url"`
	SecretKey           string            `json:"secret_key"`
	Events              []string          `json:"events"`
	Active              bool              `json:"active"`
	Headers             map[string]string `json:"headers"`
	BufferEnabled       bool              `json:"buffer_enabled"`
	BufferWindowSeconds int               `json:"buffer_window_seconds"`
	MaxBufferSize       int               `json:"max_buffer_size"`
	BufferEvents        []string          `json:"buffer_events"`
	InactivityMinutes   int               `json:"inactivity_minutes"`
	PayloadVersion      string            `json:"payload_version"`
	PausedAt            *time.Time        `json:"paused_at,omitempty"`
	PausedReason        *string           `json:"paused_reason,omitempty"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

// renderWebhooks renders webhooks, looking up the phone number of each
// config once.
func renderWebhooks(ctx context.Context, s *api.Server, c *store.Conn, whs []*parley.Webhook) ([]webhookView, error) {
	pnids := map[string]string{}
	out := make([]webhookView, len(whs))
	for i, wh := range whs {
		v, err := platform.RenderWebhook(s.Box, wh)
		if err != nil {
			return nil, err
		}
		var pnid *string
		if wh.ConfigID != nil {
			id, ok := pnids[*wh.ConfigID]
			if !ok {
				cfg, err := store.GetConfig(ctx, c, wh.ProjectID, *wh.ConfigID)
				if err != nil {
					return nil, err
				}
				id = cfg.PhoneNumberID
				pnids[*wh.ConfigID] = id
			}
			pnid = &id
		}
		headers := v.Headers
		if headers == nil {
			headers = map[string]string{}
		}
		out[i] = webhookView{
			ID: v.ID, ProjectID: wh.ProjectID, PhoneNumberID: pnid, Kind: v.Kind, URL: v.URL, SecretKey: v.SecretKey,
			Events: v.Events, Active: v.Active, Headers: headers, BufferEnabled: v.BufferEnabled,
			BufferWindowSeconds: v.BufferWindowSeconds, MaxBufferSize: v.MaxBufferSize, BufferEvents: v.BufferEvents,
			InactivityMinutes: v.InactivityMinutes, PayloadVersion: v.PayloadVersion, PausedAt: v.PausedAt,
			PausedReason: v.PausedReason, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
		}
	}
	return out, nil
}

func writeWebhook(ctx context.Context, s *api.Server, w http.ResponseWriter, status int, wh *parley.Webhook) error {
	v, err := renderWebhooks(ctx, s, s.DB.Read(), []*parley.Webhook{wh})
	if err != nil {
		return err
	}
	api.WriteData(w, status, v[0])
	return nil
}

// pathConfig resolves the {phone_number_id} of a phone-number route to its
// config id (byNumber), or returns nil for a project route.
func pathConfig(r *http.Request, s *api.Server, a *api.Auth, byNumber bool) (*string, error) {
	if !byNumber {
		return nil, nil
	}
	cfg, err := PhoneNumber(r.Context(), s.DB.Read(), a.ProjectID, r.PathValue("phone_number_id"))
	if err != nil {
		return nil, err
	}
	return &cfg.ID, nil
}

// pathWebhook returns the route's webhook: under a phone number, one of its
// webhooks; under /whatsapp/webhooks, any of the project's.
func pathWebhook(ctx context.Context, c *store.Conn, r *http.Request, a *api.Auth, configID *string) (*parley.Webhook, error) {
	id, err := api.PathID(r, "webhook_id", "Webhook")
	if err != nil {
		return nil, err
	}
	if configID != nil {
		return platform.GetWebhook(ctx, c, a.ProjectID, configID, id)
	}
	return platform.GetAnyWebhook(ctx, c, a.ProjectID, id)
}

// webhookFilter reads url_contains, active, kind, created_after and
// created_before; a malformed value is a 400.
func webhookFilter(r *http.Request) (platform.AnyWebhookFilter, error) {
	q := r.URL.Query()
	var f platform.AnyWebhookFilter
	f.URLCont = strings.TrimSpace(q.Get("url_contains"))
	if v := strings.TrimSpace(q.Get("active")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, badParam("active must be true or false")
		}
		f.ActiveEq = &b
	}
	switch k := strings.TrimSpace(q.Get("kind")); k {
	case "", parley.WebhookKindKapso, parley.WebhookKindMeta:
		f.Kind = k
	default:
		return f, badParam("kind must be kapso or meta")
	}
	var err error
	if f.CreatedAfter, err = timeParam(r, "created_after"); err != nil {
		return f, err
	}
	f.CreatedBefore, err = timeParam(r, "created_before")
	return f, err
}

func listWebhooks(s *api.Server, byNumber bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfgID, err := pathConfig(r, s, a, byNumber)
		if err != nil {
			return err
		}
		f, err := webhookFilter(r)
		if err != nil {
			return err
		}
		f.ConfigID = cfgID
		p := api.PageOf(r)
		c := s.DB.Read()
		items, total, err := platform.ListAnyWebhooks(r.Context(), c, a.ProjectID, f, p)
		if err != nil {
			return err
		}
		views, err := renderWebhooks(r.Context(), s, c, items)
		if err != nil {
			return err
		}
		WriteOffsetList(w, views, p, total)
		return nil
	}
}

func getWebhook(s *api.Server, byNumber bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfgID, err := pathConfig(r, s, a, byNumber)
		if err != nil {
			return err
		}
		wh, err := pathWebhook(r.Context(), s.DB.Read(), r, a, cfgID)
		if err != nil {
			return err
		}
		return writeWebhook(r.Context(), s, w, http.StatusOK, wh)
	}
}

// createWebhook creates a phone number's webhook (under the number's route,
// or with phone_number_id in the body of POST /whatsapp/webhooks) or a
// project webhook (neither).
func createWebhook(s *api.Server, byNumber bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfgID, err := pathConfig(r, s, a, byNumber)
		if err != nil {
			return err
		}
		f, err := s.DecodeFields(w, r, "whatsapp_webhook")
		if err != nil {
			return err
		}
		ctx := r.Context()
		if !byNumber {
			pnid, _, err := f.String("phone_number_id")
			if err != nil {
				return err
			}
			if pnid != nil && *pnid != "" {
				cfg, err := PhoneNumber(ctx, s.DB.Read(), a.ProjectID, *pnid)
				if err != nil {
					return parley.Invalid("Validation failed", "Phone number id does not match a phone number of this project")
				}
				cfgID = &cfg.ID
			} else if k, _, _ := f.String("kind"); k != nil && strings.EqualFold(*k, parley.WebhookKindMeta) {
				return parley.Invalid("Validation failed", "Phone number id is required for meta webhooks")
			}
		}
		wh := platform.NewWebhook(a.ProjectID, cfgID)
		err = s.DB.Tx(ctx, func(tx *store.Conn) error {
			if cfgID != nil {
				if _, err := store.GetConfig(ctx, tx, a.ProjectID, *cfgID); err != nil {
					return err
				}
			}
			if err := platform.DecodeWebhook(f, wh, true, cfgID == nil); err != nil {
				return err
			}
			return platform.CreateWebhook(ctx, tx, s.Box, wh)
		})
		if err != nil {
			return err
		}
		return writeWebhook(ctx, s, w, http.StatusCreated, wh)
	}
}

func updateWebhook(s *api.Server, byNumber bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfgID, err := pathConfig(r, s, a, byNumber)
		if err != nil {
			return err
		}
		f, err := s.DecodeFields(w, r, "whatsapp_webhook")
		if err != nil {
			return err
		}
		ctx := r.Context()
		var out *parley.Webhook
		err = s.DB.Tx(ctx, func(tx *store.Conn) error {
			wh, err := pathWebhook(ctx, tx, r, a, cfgID)
			if err != nil {
				return err
			}
			if err := platform.DecodeWebhook(f, wh, false, wh.ConfigID == nil); err != nil {
				return err
			}
			out = wh
			return platform.UpdateWebhook(ctx, tx, s.Box, wh)
		})
		if err != nil {
			return err
		}
		return writeWebhook(ctx, s, w, http.StatusOK, out)
	}
}

func deleteWebhook(s *api.Server, byNumber bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfgID, err := pathConfig(r, s, a, byNumber)
		if err != nil {
			return err
		}
		ctx := r.Context()
		err = s.DB.Tx(ctx, func(tx *store.Conn) error {
			wh, err := pathWebhook(ctx, tx, r, a, cfgID)
			if err != nil {
				return err
			}
			return platform.DeleteWebhook(ctx, tx, a.ProjectID, wh.ConfigID, wh.ID)
		})
		if err != nil {
			return err
		}
		api.NoContent(w)
		return nil
	}
}

// testWebhook queues a test delivery. event_type comes from the body (bare
// or under whatsapp_webhook) or, failing that, the query string.
func testWebhook(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		ctx := r.Context()
		wh, err := pathWebhook(ctx, s.DB.Read(), r, a, nil)
		if err != nil {
			return err
		}
		f, err := s.DecodeFields(w, r, "whatsapp_webhook")
		if err != nil {
			return err
		}
		ev, _, err := f.String("event_type")
		if err != nil {
			return err
		}
		name := strings.TrimSpace(r.URL.Query().Get("event_type"))
		if ev != nil && *ev != "" {
			name = *ev
		}
		dwh, err := delivery.GetWebhook(ctx, s.DB.Read(), a.ProjectID, wh.ConfigID, wh.ID)
		if err != nil {
			return err
		}
		if _, err := delivery.SendTest(ctx, s, dwh, name); err != nil {
			return err
		}
		api.WriteData(w, http.StatusOK, map[string]any{"success": true})
		return nil
	}
}

// deliveryView is a delivery as Kapso's Platform API lists it.
type deliveryView struct {
	ID             string     `json:"id"`
	Event          string     `json:"event"`
	Status         string     `json:"status"`
	AttemptCount   int        `json:"attempt_count"`
	ResponseStatus *int       `json:"response_status"`
	Error          *string    `json:"error"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	FailedAt       *time.Time `json:"failed_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	WebhookID      string     `json:"webhook_id"`
	WebhookURL     string     `json:"webhook_url"`
	WhatsAppConfig *string    `json:"whatsapp_config_id"`
	PhoneNumberID  *string    `json:"phone_number_id"`
	CreatedAt      time.Time  `json:"created_at"`
}

// deliveryStatuses maps Kapso's delivery statuses to Parley's: pending
// covers every delivery not yet finished.
var deliveryStatuses = map[string][]string{
	"pending":   {delivery.StatusBuffered, delivery.StatusPending, delivery.StatusDelivering},
	"delivered": {delivery.StatusSucceeded},
	"failed":    {delivery.StatusFailed},
}

// periods are the values of the period filter.
var periods = map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

// PeriodStart reads the period filter (24h, 7d or 30d; default 24h) and
// returns the time it starts at.
func PeriodStart(r *http.Request) (time.Time, error) {
	p := strings.TrimSpace(r.URL.Query().Get("period"))
	if p == "" {
		p = "24h"
	}
	d, ok := periods[p]
	if !ok {
		return time.Time{}, badParam("period must be one of 24h, 7d, 30d")
	}
	return time.Now().Add(-d), nil
}

func listDeliveries(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		q := r.URL.Query()
		var f delivery.ProjectFilter
		if v := strings.TrimSpace(q.Get("status")); v != "" {
			st, ok := deliveryStatuses[v]
			if !ok {
				return badParam("status must be one of pending, delivered, failed")
			}
			f.Statuses = st
		}
		f.Event = strings.TrimSpace(q.Get("event"))
		if v := strings.TrimSpace(q.Get("webhook_id")); v != "" {
			if !api.IsUUID(v) {
				return badParam("webhook_id must be a UUID")
			}
			f.WebhookID = strings.ToLower(v)
		}
		if v := strings.TrimSpace(q.Get("errors_only")); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return badParam("errors_only must be true or false")
			}
			f.ErrorsOnly = b
		}
		var err error
		if f.Since, err = PeriodStart(r); err != nil {
			return err
		}
		cur, err := CursorOf(r, "created_at")
		if err != nil {
			return err
		}
		rows, err := delivery.ListProjectDeliveries(r.Context(), s.DB.Read(), a.ProjectID, f, cur)
		if err != nil {
			return err
		}
		page, paging := CursorPage(rows, cur, "created_at", func(d *delivery.ProjectDelivery) parley.CursorKey {
			return parley.CursorKey{Time: d.CreatedAt, ID: d.ID}
		})
		out := make([]deliveryView, len(page))
		for i, d := range page {
			v := deliveryView{ID: d.ID, Event: d.Event, Status: d.Status, AttemptCount: d.AttemptsCount,
				ResponseStatus: d.LastStatusCode, Error: d.LastError, LastAttemptAt: d.LastAttemptAt, WebhookID: d.WebhookID,
				WebhookURL: d.WebhookURL, WhatsAppConfig: d.ConfigID, PhoneNumberID: d.PhoneNumberID, CreatedAt: d.CreatedAt}
			switch d.Status {
			case delivery.StatusSucceeded:
				v.Status, v.DeliveredAt = "delivered", &d.UpdatedAt
			case delivery.StatusFailed:
				v.FailedAt = &d.UpdatedAt
			default:
				v.Status = "pending"
			}
			out[i] = v
		}
		WriteCursorList(w, out, paging)
		return nil
	}
}

// redeliver starts a new attempt cycle of a finished delivery of any of the
// project's webhooks (a Parley extension).
func redeliver(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		id, err := api.PathID(r, "delivery_id", "Delivery")
		if err != nil {
			return err
		}
		wid, err := delivery.ProjectDeliveryWebhook(r.Context(), s.DB.Read(), a.ProjectID, id)
		if err != nil {
			return err
		}
		d, err := delivery.RedeliverNow(r.Context(), s, wid, id)
		if err != nil {
			return err
		}
		api.WriteData(w, http.StatusAccepted, map[string]any{"id": d.ID, "status": d.Status, "webhook_id": d.WebhookID,
			"event": d.Event, "attempt_count": d.AttemptsCount, "created_at": d.CreatedAt})
		return nil
	}
}

func badParam(msg string) error {
	return &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters", Message: msg}
}

// timeParam reads an optional ISO 8601 query parameter; malformed is a 400.
func timeParam(r *http.Request, name string) (*time.Time, error) {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	if v == "" {
		return nil, nil
	}
	t, err := api.ParseTime(v)
	if err != nil {
		return nil, badParam(name + " must be an ISO 8601 time")
	}
	return &t, nil
}
