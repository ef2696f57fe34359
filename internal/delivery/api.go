package delivery

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/store"
)

// Register adds the delivery routes (Parley extensions) to s: delivery logs,
// redelivery and test events of config webhooks, and the project webhooks'
// deliveries and test events.
func Register(s *api.Server) {
	h := &handlers{s: s}
	s.Handle("GET /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/deliveries", h.listConfigDeliveries)
	s.Handle("GET /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/deliveries/{delivery_id}", h.getConfigDelivery)
	s.Handle("POST /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", h.redeliverConfigDelivery)
	s.Handle("POST /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/test", h.testConfigWebhook)
	s.Handle("GET /webhooks/{id}/deliveries", h.listProjectDeliveries)
	s.Handle("POST /webhooks/{id}/test", h.testProjectWebhook)
	s.Handle("POST /webhooks/{id}/deliveries/{delivery_id}/redeliver", h.redeliverProjectDelivery)
	registerProjectWebhooks(s, h)
}

type handlers struct{ s *api.Server }

// configWebhook resolves /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}
// within the key's project.
func (h *handlers) configWebhook(r *http.Request, a *api.Auth) (*Webhook, error) {
	cfgID, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return nil, err
	}
	whID, err := api.PathID(r, "webhook_id", "Webhook")
	if err != nil {
		return nil, err
	}
	return GetWebhook(r.Context(), h.s.DB.Read(), a.ProjectID, &cfgID, whID)
}

func (h *handlers) projectWebhook(r *http.Request, a *api.Auth) (*Webhook, error) {
	id, err := api.PathID(r, "id", "Webhook")
	if err != nil {
		return nil, err
	}
	return GetWebhook(r.Context(), h.s.DB.Read(), a.ProjectID, nil, id)
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request, wh *Webhook) error {
	var f Filter
	f.Status, _ = api.QParam(r, "status_eq")
	if f.Status == "" {
		f.Status = strings.TrimSpace(r.URL.Query().Get("status")) // plain spelling, also accepted
	}
	f.Event, _ = api.QParam(r, "event_eq")
	p := api.PageOf(r)
	items, total, err := ListDeliveries(r.Context(), h.s.DB.Read(), wh.ID, f, p)
	if err != nil {
		return err
	}
	api.WriteList(w, items, p, total)
	return nil
}

func (h *handlers) listConfigDeliveries(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	wh, err := h.configWebhook(r, a)
	if err != nil {
		return err
	}
	return h.list(w, r, wh)
}

func (h *handlers) listProjectDeliveries(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	wh, err := h.projectWebhook(r, a)
	if err != nil {
		return err
	}
	return h.list(w, r, wh)
}

func (h *handlers) getConfigDelivery(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	wh, err := h.configWebhook(r, a)
	if err != nil {
		return err
	}
	id, err := api.PathID(r, "delivery_id", "Delivery")
	if err != nil {
		return err
	}
	d, err := GetDelivery(r.Context(), h.s.DB.Read(), wh.ID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, d)
	return nil
}

func (h *handlers) redeliverConfigDelivery(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	wh, err := h.configWebhook(r, a)
	if err != nil {
		return err
	}
	return h.redeliver(w, r, wh.ID)
}

func (h *handlers) redeliverProjectDelivery(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	wh, err := h.projectWebhook(r, a)
	if err != nil {
		return err
	}
	return h.redeliver(w, r, wh.ID)
}

// redeliver starts a new attempt cycle of the path's delivery of webhook
// webhookID and answers 202 with it.
func (h *handlers) redeliver(w http.ResponseWriter, r *http.Request, webhookID string) error {
	id, err := api.PathID(r, "delivery_id", "Delivery")
	if err != nil {
		return err
	}
	d, err := RedeliverNow(r.Context(), h.s, webhookID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusAccepted, d)
	return nil
}

// RedeliverNow redelivers delivery id of webhook webhookID (Redeliver) in a
// transaction and wakes the workers.
func RedeliverNow(ctx context.Context, s *api.Server, webhookID, id string) (*Delivery, error) {
	var d *Delivery
	err := s.DB.Tx(ctx, func(tx *store.Conn) error {
		var err error
		d, err = Redeliver(ctx, tx, webhookID, id, time.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	s.EventsWritten()
	return d, nil
}

func (h *handlers) testConfigWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	wh, err := h.configWebhook(r, a)
	if err != nil {
		return err
	}
	return h.test(w, r, wh)
}

func (h *handlers) testProjectWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	wh, err := h.projectWebhook(r, a)
	if err != nil {
		return err
	}
	return h.test(w, r, wh)
}

// test queues a sample event, marked "test": true, to the webhook only.
func (h *handlers) test(w http.ResponseWriter, r *http.Request, wh *Webhook) error {
	f, err := h.s.DecodeFields(w, r, "webhook")
	if err != nil {
		return err
	}
	evType, _, err := f.String("event_type")
	if err != nil {
		return err
	}
	if evType == nil {
		evType, _, err = f.RootString("event_type")
		if err != nil {
			return err
		}
	}
	name := ""
	if evType != nil {
		name = *evType
	}
	deliveryID, err := SendTest(r.Context(), h.s, wh, name)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusAccepted, map[string]any{"success": true, "delivery_id": deliveryID})
	return nil
}

// SendTest queues a sample event of type evType (empty: the webhook's first
// event), marked "test": true, to webhook wh only, and returns the
// delivery's id. An event the webhook does not receive is a 422.
func SendTest(ctx context.Context, s *api.Server, wh *Webhook, evType string) (string, error) {
	project := wh.ConfigID == nil
	var name string
	if evType == "" {
		name = firstEvent(wh.Events)
		if name == "" {
			return "", parley.Invalid("Validation failed", "Webhook has no events to test")
		}
	} else {
		name = evType
		if targets, ok := parley.EventAliases[name]; ok && !project {
			name = targets[0]
		}
		if !parley.ValidEvent(name, project) || !parley.Subscribed(wh.Events, name) {
			return "", parley.Invalid("Validation failed", "Event type must be one of the webhook's events")
		}
	}
	var phoneNumberID string
	var deliveryID string
	err := s.DB.Tx(ctx, func(tx *store.Conn) error {
		ev := events.Event{ProjectID: wh.ProjectID, Type: name}
		if wh.ConfigID != nil {
			ev.ConfigID = *wh.ConfigID
			if err := tx.QueryRow(ctx, `SELECT phone_number_id FROM whatsapp_configs WHERE id = ?`, *wh.ConfigID).Scan(&phoneNumberID); err != nil {
				return err
			}
		}
		ev.V2, ev.V1 = SamplePayload(name, wh.ProjectID, wh.ConfigID, phoneNumberID, time.Now())
		var err error
		deliveryID, err = events.EmitTo(ctx, tx, ev, wh.ID)
		return err
	})
	if err != nil {
		return "", err
	}
	s.EventsWritten()
	return deliveryID, nil
}

// firstEvent returns the first concrete event a webhook receives: its first
// event, or the first target of an alias.
func firstEvent(list []string) string {
	for _, e := range list {
		if t, ok := parley.EventAliases[e]; ok && len(t) > 0 {
			return t[0]
		}
		if e != "" {
			return e
		}
	}
	return ""
}
