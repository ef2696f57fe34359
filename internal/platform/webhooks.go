package platform

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/netguard"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
)

// Webhook limits.
const (
	maxWebhookURL     = 2048
	maxWebhookHeaders = 50
	maxRetryAttempts  = 20
	maxRetryBackoff   = 3600
)

// reservedHeaders are set by the delivery itself; a webhook's custom headers
// may not replace them (a custom signature would defeat verification).
var reservedHeaders = []string{
	"host", "content-length", "content-type", "transfer-encoding", "connection",
	"x-webhook-signature", "x-webhook-event", "x-idempotency-key", "x-webhook-payload-version",
	"x-webhook-batch", "x-batch-size",
}

// RetryConfig is a webhook's retry policy as rendered.
type RetryConfig struct {
	MaxAttempts    int `json:"max_attempts"`
	BackoffSeconds int `json:"backoff_seconds"`
}

// WebhookView is a webhook as the API renders it (Kapso's WhatsappWebhook,
// or Parley's ProjectWebhook when WhatsAppConfigID is null). The signing
// secret is rendered, as Kapso does, so clients can verify signatures.
type WebhookView struct {
	ID                  string            `json:"id"`
	WhatsAppConfigID    *string           `json:"whatsapp_config_id"`
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
	RetryConfig         RetryConfig       `json:"retry_config"`
	PayloadVersion      string            `json:"payload_version"`
	Kind                string            `json:"kind"`
	PausedAt            *time.Time        `json:"paused_at,omitempty"`
	PausedReason        *string           `json:"paused_reason,omitempty"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

// RenderWebhook returns the API view of wh, decrypting its secret with box.
func RenderWebhook(box *secrets.Box, wh *parley.Webhook) (WebhookView, error) {
	secret := wh.SecretKey
	if secret == "" {
		var err error
		if secret, err = box.Decrypt(wh.SecretKeyEnc); err != nil {
			return WebhookView{}, err
		}
	}
	rc := RetryConfig{parley.DefaultRetryMaxAttempts, parley.DefaultRetryBackoffSeconds}
	if wh.RetryCustom {
		rc = RetryConfig{wh.RetryMaxAttempts, wh.RetryBackoffSeconds}
	}
	evs, bufEvs := wh.Events, wh.BufferEvents
	if evs == nil {
		evs = []string{}
	}
	if bufEvs == nil {
		bufEvs = []string{}
	}
	return WebhookView{
		ID: wh.ID, WhatsAppConfigID: wh.ConfigID, URL: wh.URL, SecretKey: secret, Events: evs, Active: wh.Active,
		Headers: wh.Headers, BufferEnabled: wh.BufferEnabled, BufferWindowSeconds: wh.BufferWindowSeconds,
		MaxBufferSize: wh.MaxBufferSize, BufferEvents: bufEvs, InactivityMinutes: wh.InactivityMinutes, RetryConfig: rc,
		PayloadVersion: wh.PayloadVersion, Kind: wh.Kind, PausedAt: wh.PausedAt, PausedReason: wh.PausedReason,
		CreatedAt: wh.CreatedAt, UpdatedAt: wh.UpdatedAt,
	}, nil
}

// RenderWebhooks renders a list with RenderWebhook.
func RenderWebhooks(box *secrets.Box, whs []*parley.Webhook) ([]WebhookView, error) {
	out := make([]WebhookView, len(whs))
	for i, wh := range whs {
		v, err := RenderWebhook(box, wh)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// NewWebhook returns a webhook with Kapso's defaults, for DecodeWebhook to
// fill when creating.
func NewWebhook(projectID string, configID *string) *parley.Webhook {
	return &parley.Webhook{
		ProjectID: projectID, ConfigID: configID, Active: true,
		BufferWindowSeconds: parley.DefaultBufferWindowSeconds, MaxBufferSize: parley.DefaultMaxBufferSize,
		BufferEvents:      []string{parley.EventMessageReceived},
		InactivityMinutes: parley.DefaultInactivityMinutes,
		RetryMaxAttempts:  parley.DefaultRetryMaxAttempts, RetryBackoffSeconds: parley.DefaultRetryBackoffSeconds,
		PayloadVersion: parley.PayloadV2, Kind: parley.WebhookKindKapso,
	}
}

// DecodeWebhook validates the webhook fields of f and applies them to wh
// (start from NewWebhook when creating). project selects the event catalog:
// lifecycle events for project webhooks, message and conversation events
// (and Kapso's old aliases) for config webhooks. A missing secret_key on
// create is generated. Validation failures are one 422 listing every
// problem; nothing is applied then.
func DecodeWebhook(f *api.Fields, wh *parley.Webhook, creating bool, project bool) error {
	rd := &reader{f: f}
	urlV := rd.str("url")
	secret := rd.str("secret_key")
	active := rd.bool("active")
	bufEnabled := rd.bool("buffer_enabled")
	window := rd.int("buffer_window_seconds")
	maxSize := rd.int("max_buffer_size")
	inactivity := rd.int("inactivity_minutes")
	version := rd.str("payload_version")
	kind := rd.str("kind")
	evs, _, err := f.Strings("events")
	rd.set(err)
	bufEvs, _, err := f.Strings("buffer_events")
	rd.set(err)
	headers, _, err := f.StringMap("headers")
	rd.set(err)
	if rd.err != nil {
		return rd.err
	}
	out := *wh
	var v validation
	if creating || f.Has("url") {
		switch u := str(urlV); {
		case u == "":
			v.add("Url can't be blank")
		case len(u) > maxWebhookURL:
			v.add("Url is too long (maximum is 2048 characters)")
		case !ValidHTTPURL(u):
			v.add("Url must be a valid http or https URL")
		default:
			out.URL = u
		}
	}
	if f.Has("secret_key") {
		switch s := str(secret); {
		case s == "" && creating:
		case s == "":
			v.add("Secret key can't be blank")
		case len(s) > 255:
			v.add("Secret key is too long (maximum is 255 characters)")
		default:
			out.SecretKey = s
		}
	}
	if creating && out.SecretKey == "" {
		out.SecretKey = randomHex(32)
	}
	// A meta webhook forwards Meta's raw bodies: it takes no event filter
	// and no buffering, and only a phone number's webhook can be one.
	meta := out.Kind == parley.WebhookKindMeta
	if f.Has("kind") {
		switch k := strings.ToLower(str(kind)); {
		case k == parley.WebhookKindKapso:
			out.Kind, meta = k, false
		case k == parley.WebhookKindMeta && !project:
			out.Kind, meta = k, true
		case k == parley.WebhookKindMeta:
			v.add("Kind meta needs a phone number: a project webhook cannot forward Meta's payloads")
		default:
			v.add("Kind is not included in the list")
		}
	}
	if meta {
		out.Events, out.BufferEnabled, out.BufferEvents = []string{}, false, []string{}
	} else if creating || f.Has("events") || len(out.Events) == 0 {
		if len(evs) == 0 {
			v.add("Events can't be blank")
		} else {
			var bad, clean []string
			for _, e := range evs {
				e = strings.TrimSpace(e)
				switch {
				case !parley.ValidEvent(e, project):
					bad = append(bad, e)
				case !slices.Contains(clean, e):
					clean = append(clean, e)
				}
			}
			if len(bad) > 0 {
				v.add("Events contains invalid events: %s", strings.Join(bad, ", "))
			} else {
				out.Events = clean
			}
		}
	}
	if f.Has("active") {
		if active == nil {
			v.add("Active must be true or false")
		} else {
			out.Active = *active
			if *active {
				// Re-activating resumes a webhook the delivery workers paused.
				out.PausedAt, out.PausedReason, out.FailingSince = nil, nil, nil
			}
		}
	}
	if f.Has("headers") {
		if headers == nil {
			out.Headers = nil
		} else if msg := checkHeaders(headers); msg != "" {
			v.add("%s", msg)
		} else {
			out.Headers = headers
		}
	}
	if f.Has("buffer_enabled") && !meta {
		if bufEnabled == nil {
			v.add("Buffer enabled must be true or false")
		} else {
			out.BufferEnabled = *bufEnabled
		}
	}
	intField(&v, f, "buffer_window_seconds", window, 1, 60, &out.BufferWindowSeconds)
	intField(&v, f, "max_buffer_size", maxSize, 1, 100, &out.MaxBufferSize)
	intField(&v, f, "inactivity_minutes", inactivity, 1, 1440, &out.InactivityMinutes)
	if f.Has("buffer_events") && !meta {
		var bad, clean []string
		for _, e := range bufEvs {
			if e != parley.EventMessageReceived {
				bad = append(bad, e)
			} else if !slices.Contains(clean, e) {
				clean = append(clean, e)
			}
		}
		if len(bad) > 0 {
			v.add("Buffer events contains unsupported events: %s (only whatsapp.message.received can be buffered)", strings.Join(bad, ", "))
		} else {
			out.BufferEvents = clean
		}
	}
	if f.Has("retry_config") {
		decodeRetry(&v, f, &out)
	}
	if f.Has("payload_version") {
		switch p := strings.ToLower(str(version)); p {
		case parley.PayloadV1, parley.PayloadV2:
			out.PayloadVersion = p
		default:
			v.add("Payload version is not included in the list")
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	*wh = out
	return nil
}

// intField validates an optional integer in [lo, hi].
func intField(v *validation, f *api.Fields, key string, val *int, lo, hi int, dst *int) {
	if !f.Has(key) {
		return
	}
	switch {
	case val == nil:
		v.add("%s can't be blank", api.HumanKey(key))
	case *val < lo || *val > hi:
		v.add("%s must be between %d and %d", api.HumanKey(key), lo, hi)
	default:
		*dst = *val
	}
}

// decodeRetry applies retry_config: null restores the default policy; an
// object sets max_attempts and backoff_seconds (a missing one keeps its
// current value).
func decodeRetry(v *validation, f *api.Fields, out *parley.Webhook) {
	raw, _ := f.Raw("retry_config")
	if strings.TrimSpace(string(raw)) == "null" {
		out.RetryCustom = false
		out.RetryMaxAttempts, out.RetryBackoffSeconds = parley.DefaultRetryMaxAttempts, parley.DefaultRetryBackoffSeconds
		return
	}
	inner, err := api.ParseFields(raw, "")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
		v.add("Retry config must be an object")
		return
	}
	rd := &reader{f: inner}
	ma := rd.int("max_attempts")
	bs := rd.int("backoff_seconds")
	if rd.err != nil {
		v.add("Retry config max_attempts and backoff_seconds must be integers")
		return
	}
	n := len(*v)
	maxAttempts, backoff := out.RetryMaxAttempts, out.RetryBackoffSeconds
	if ma != nil {
		if *ma < 1 || *ma > maxRetryAttempts {
			v.add("Retry config max_attempts must be between 1 and %d", maxRetryAttempts)
		}
		maxAttempts = *ma
	}
	if bs != nil {
		if *bs < 1 || *bs > maxRetryBackoff {
			v.add("Retry config backoff_seconds must be between 1 and %d", maxRetryBackoff)
		}
		backoff = *bs
	}
	if len(*v) == n {
		// The default policy is shown as {4, 10}; a client that writes
		// back what it read keeps the default schedule (+10 s, +40 s,
		// +90 s) rather than switching to 10 × 2^(n-1).
		custom := maxAttempts != parley.DefaultRetryMaxAttempts || backoff != parley.DefaultRetryBackoffSeconds
		out.RetryCustom, out.RetryMaxAttempts, out.RetryBackoffSeconds = custom, maxAttempts, backoff
	}
}

// checkHeaders returns a validation message for bad custom headers, or "".
func checkHeaders(h map[string]string) string {
	if len(h) > maxWebhookHeaders {
		return "Headers must have at most 50 entries"
	}
	for k, val := range h {
		if !validHeaderName(k) {
			return "Headers contains an invalid header name: " + k
		}
		if slices.Contains(reservedHeaders, strings.ToLower(k)) {
			return "Headers cannot override " + k
		}
		if strings.ContainsAny(val, "\r\n\x00") || len(val) > 4096 {
			return "Headers contains an invalid value for " + k
		}
	}
	return ""
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// CheckWebhookTarget refuses, with a 422 naming the setting to change, a
// webhook URL the delivery could never reach under the operator's address
// policy (a literal private or loopback address, or localhost). Call it
// after DecodeWebhook when the URL was given; names that resolve later are
// still checked on every delivery.
func CheckWebhookTarget(cfg config.Config, field, rawURL string) error {
	if err := netguard.PolicyFor(cfg).CheckURL(rawURL); err != nil {
		return parley.Invalid("Validation failed", api.HumanKey(field)+" "+err.Error())
	}
	return nil
}

// ---- handlers: /whatsapp_configs/{id}/whatsapp_webhooks ----

// webhookConfig resolves the path's config within the key's project.
func (h *handlers) webhookConfig(r *http.Request, c *store.Conn, projectID string) (string, error) {
	cid, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return "", err
	}
	if _, err := store.GetConfig(r.Context(), c, projectID, cid); err != nil {
		return "", err
	}
	return cid, nil
}

func (h *handlers) listWebhooks(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	c := h.s.DB.Read()
	cid, err := h.webhookConfig(r, c, a.ProjectID)
	if err != nil {
		return err
	}
	var f WebhookFilter
	f.URLCont, _ = api.QParam(r, "url_cont")
	if b, ok := api.QBool(r, "active_eq"); ok {
		f.ActiveEq = &b
	}
	p := api.PageOf(r)
	items, total, err := ListWebhooks(r.Context(), c, a.ProjectID, &cid, f, p)
	if err != nil {
		return err
	}
	views, err := RenderWebhooks(h.s.Box, items)
	if err != nil {
		return err
	}
	api.WriteList(w, views, p, total)
	return nil
}

func (h *handlers) getWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	c := h.s.DB.Read()
	cid, err := h.webhookConfig(r, c, a.ProjectID)
	if err != nil {
		return err
	}
	id, err := api.PathID(r, "webhook_id", "Webhook")
	if err != nil {
		return err
	}
	wh, err := GetWebhook(r.Context(), c, a.ProjectID, &cid, id)
	if err != nil {
		return err
	}
	return writeWebhook(w, h.s.Box, http.StatusOK, wh)
}

func writeWebhook(w http.ResponseWriter, box *secrets.Box, status int, wh *parley.Webhook) error {
	v, err := RenderWebhook(box, wh)
	if err != nil {
		return err
	}
	api.WriteData(w, status, v)
	return nil
}

func (h *handlers) createWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	cid, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "whatsapp_webhook")
	if err != nil {
		return err
	}
	ctx := r.Context()
	wh := NewWebhook(a.ProjectID, &cid)
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := store.GetConfig(ctx, tx, a.ProjectID, cid); err != nil {
			return err
		}
		if err := DecodeWebhook(f, wh, true, false); err != nil {
			return err
		}
		if err := CheckWebhookTarget(h.s.Config, "url", wh.URL); err != nil {
			return err
		}
		return CreateWebhook(ctx, tx, h.s.Box, wh)
	})
	if err != nil {
		return err
	}
	return writeWebhook(w, h.s.Box, http.StatusCreated, wh)
}

func (h *handlers) updateWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	cid, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return err
	}
	id, err := api.PathID(r, "webhook_id", "Webhook")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "whatsapp_webhook")
	if err != nil {
		return err
	}
	ctx := r.Context()
	var out *parley.Webhook
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := store.GetConfig(ctx, tx, a.ProjectID, cid); err != nil {
			return err
		}
		wh, err := GetWebhook(ctx, tx, a.ProjectID, &cid, id)
		if err != nil {
			return err
		}
		if err := DecodeWebhook(f, wh, false, false); err != nil {
			return err
		}
		if f.Has("url") {
			if err := CheckWebhookTarget(h.s.Config, "url", wh.URL); err != nil {
				return err
			}
		}
		out = wh
		return UpdateWebhook(ctx, tx, h.s.Box, wh)
	})
	if err != nil {
		return err
	}
	return writeWebhook(w, h.s.Box, http.StatusOK, out)
}

func (h *handlers) deleteWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	cid, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return err
	}
	id, err := api.PathID(r, "webhook_id", "Webhook")
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := store.GetConfig(ctx, tx, a.ProjectID, cid); err != nil {
			return err
		}
		return DeleteWebhook(ctx, tx, a.ProjectID, &cid, id)
	})
	if err != nil {
		return err
	}
	api.NoContent(w)
	return nil
}
