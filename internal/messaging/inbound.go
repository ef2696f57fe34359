package messaging

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// Inbound webhook metrics.
var (
	webhookUnknownPhone = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "parley_meta_webhook_unknown_phone_number_total",
		Help: "Meta webhook changes for a phone_number_id (or WABA) no config has; acknowledged and dropped.",
	})
	webhookResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_meta_webhooks_total",
		Help: "Meta webhook POSTs by outcome (processed, replayed, unauthorized, malformed, too_large, error).",
	}, []string{"outcome"})
)

func init() { metrics.Registry.MustRegister(webhookUnknownPhone, webhookResults) }

// InboundHandler serves Meta's webhook endpoint: the GET verification
// handshake and signed POST notifications.
func InboundHandler(s *api.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sv := svc(s)
		if r.Method == http.MethodGet {
			sv.verifyHandshake(w, r)
			return
		}
		sv.receive(w, r)
	})
}

// verifyHandshake answers Meta's subscription check: the challenge echoed
// when hub.verify_token is PARLEY_META_VERIFY_TOKEN or a config's verify
// token (found by its lookup hash, never by decrypting every config).
func (sv *service) verifyHandshake(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token, challenge := q.Get("hub.verify_token"), q.Get("hub.challenge")
	ok := false
	if q.Get("hub.mode") == "subscribe" && token != "" {
		if g := sv.api.Config.MetaVerifyToken; g != "" && subtle.ConstantTimeCompare([]byte(g), []byte(token)) == 1 {
			ok = true
		}
		if sv.api.Box != nil {
			cfg, err := store.GetConfigByVerifyToken(r.Context(), sv.api.DB.Read(), sv.api.Box.Lookup(token))
			if err == nil {
				ok = true
				if err := store.MarkConfigVerified(r.Context(), sv.api.DB.Write(), cfg.ID, now()); err != nil {
					sv.log.Warn("messaging: record webhook verification", slog.String("error", err.Error()))
				}
			} else if !parley.IsNotFound(err) {
				sv.log.Warn("messaging: verify token lookup", slog.String("error", err.Error()))
			}
		}
	}
	if !ok {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, challenge)
}

func plainStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, `{"error":"`+msg+`"}`)
}

// receive handles a webhook POST: size limit, signature, then one
// transaction for the whole body.
func (sv *service) receive(w http.ResponseWriter, r *http.Request) {
	limit := sv.api.Config.MaxWebhookBytes
	if limit <= 0 {
		limit = 3 << 20
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			webhookResults.WithLabelValues("too_large").Inc()
			plainStatus(w, http.StatusRequestEntityTooLarge, "Request body too large")
			return
		}
		webhookResults.WithLabelValues("malformed").Inc()
		plainStatus(w, http.StatusBadRequest, "Invalid request body")
		return
	}
	sig := r.Header.Get(whatsapp.SignatureHeader)
	if sig == "" {
		webhookResults.WithLabelValues("unauthorized").Inc()
		plainStatus(w, http.StatusUnauthorized, "Missing signature")
		return
	}
	verified := false
	if secret := sv.api.Config.MetaAppSecret; secret != "" {
		verified = whatsapp.VerifySignature([]byte(secret), body, sig)
	}
	wh, perr := whatsapp.ParseWebhook(body)
	// signers is nil when the process-wide secret verified the body (every
	// config may be changed); otherwise it holds the configs whose own app
	// secret verified it, the only ones the body may change.
	var signers map[string]bool
	if !verified {
		// Without a process-wide secret (or when it does not match), the
		// app secret of the config(s) the body is about may sign it.
		if perr == nil {
			signers, verified = sv.verifyWithConfigSecrets(r.Context(), wh, body, sig)
		}
		if !verified {
			webhookResults.WithLabelValues("unauthorized").Inc()
			plainStatus(w, http.StatusUnauthorized, "Invalid signature")
			return
		}
	}
	if perr != nil {
		webhookResults.WithLabelValues("malformed").Inc()
		plainStatus(w, http.StatusBadRequest, "Malformed webhook")
		return
	}
	if err := sv.process(r.Context(), wh, body, sig, signers); err != nil {
		webhookResults.WithLabelValues("error").Inc()
		sv.log.Error("messaging: inbound webhook failed", slog.String("error", err.Error()))
		// 503 asks Meta to retry later; nothing was committed.
		plainStatus(w, http.StatusServiceUnavailable, "Temporarily unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"status":"ok"}`)
}

// ---- config cache ----

// configTTL is how long a config looked up by phone_number_id (with its
// decrypted app secret) is reused by the inbound path. Every webhook would
// otherwise read the config and decrypt its secret. The cache is per
// process and has no cross-process invalidation, so a change to a config
// (another app secret, name or customer) reaches the inbound path of every
// process within configTTL. Two cases do not wait: a signature that the
// cached secrets do not verify is checked again against freshly read
// configs (a rotated app secret works at once), and a webhook whose cached
// config was deleted fails on its foreign key and is applied again with a
// fresh lookup. Unknown phone numbers are never cached, so a config created
// for a number receives its webhooks at once.
const configTTL = 5 * time.Second

type cachedConfig struct {
	cfg    *parley.WhatsAppConfig
	secret string // the decrypted app secret; empty when none
	loaded time.Time
}

type configCache struct {
	mu sync.Mutex
	m  map[string]*cachedConfig // by phone_number_id
}

var configCaches sync.Map // *service → *configCache

func (sv *service) configs() *configCache {
	if v, ok := configCaches.Load(sv); ok {
		return v.(*configCache)
	}
	v, _ := configCaches.LoadOrStore(sv, &configCache{m: map[string]*cachedConfig{}})
	return v.(*configCache)
}

// configByPhone returns the config of phoneNumberID, from the cache unless
// fresh is set or the entry is older than configTTL; nil when no config
// has that number. cached reports that the answer came from the cache.
func (sv *service) configByPhone(ctx context.Context, phoneNumberID string, fresh bool) (e *cachedConfig, cached bool, err error) {
	cc := sv.configs()
	if !fresh {
		cc.mu.Lock()
		e = cc.m[phoneNumberID]
		cc.mu.Unlock()
		if e != nil && time.Since(e.loaded) < configTTL {
			return e, true, nil
		}
	}
	loaded := time.Now()
	cfg, err := store.GetConfigByPhoneNumberID(ctx, sv.api.DB.Read(), phoneNumberID)
	if parley.IsNotFound(err) {
		cc.mu.Lock()
		delete(cc.m, phoneNumberID)
		cc.mu.Unlock()
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	e = &cachedConfig{cfg: cfg, loaded: loaded}
	if cfg.AppSecretEnc != "" && sv.api.Box != nil {
		if s, err := sv.api.Box.Decrypt(cfg.AppSecretEnc); err == nil {
			e.secret = s
		}
	}
	cc.mu.Lock()
	if len(cc.m) > 10000 { // bound the memory a flood of numbers can take
		clear(cc.m)
	}
	cc.m[phoneNumberID] = e
	cc.mu.Unlock()
	return e, false, nil
}

// verifyWithConfigSecrets checks the signature against the app secrets of
// the configs the webhook names, and returns the ids of the configs whose
// secret verifies it. The body is accepted only when some config's secret
// verifies it and every change it would apply to a known config is signed
// with that config's secret: one config's app secret never vouches for
// changes to another config (another project's number). Cached configs are
// tried first; when they do not verify the body, freshly read ones are (a
// rotated secret).
func (sv *service) verifyWithConfigSecrets(ctx context.Context, wh *whatsapp.Webhook, body []byte, sig string) (map[string]bool, bool) {
	if sv.api.Box == nil {
		return nil, false
	}
	for pass := 0; pass < 2; pass++ {
		fresh, anyCached := pass == 1, false
		signers, covered := map[string]bool{}, true
		seen := map[string]bool{}
		for _, ch := range wh.Changes() {
			if ch.PhoneNumberID != "" {
				if seen["p:"+ch.PhoneNumberID] {
					continue
				}
				seen["p:"+ch.PhoneNumberID] = true
				e, cached, err := sv.configByPhone(ctx, ch.PhoneNumberID, fresh)
				if err != nil || e == nil {
					continue
				}
				anyCached = anyCached || cached
				if e.secret != "" && whatsapp.VerifySignature([]byte(e.secret), body, sig) {
					signers[e.cfg.ID] = true
				} else if needsConfig(ch) {
					covered = false
				}
				continue
			}
			if ch.WABAID == "" || seen["w:"+ch.WABAID] {
				continue
			}
			seen["w:"+ch.WABAID] = true
			cfgs, _ := configsByWABA(ctx, sv.api.DB.Read(), ch.WABAID)
			wabaSigned := false
			for _, cfg := range cfgs {
				if cfg.AppSecretEnc == "" {
					continue
				}
				secret, err := sv.api.Box.Decrypt(cfg.AppSecretEnc)
				if err == nil && secret != "" && whatsapp.VerifySignature([]byte(secret), body, sig) {
					signers[cfg.ID], wabaSigned = true, true
				}
			}
			if len(cfgs) > 0 && !wabaSigned && ch.Field == whatsapp.FieldMessageTemplateStatusUpdate && len(ch.TemplateUpdates) > 0 {
				covered = false
			}
		}
		if covered && len(signers) > 0 {
			return signers, true
		}
		if !anyCached {
			break
		}
	}
	return nil, false
}

// forwardRaw queues the raw body for the webhook_destination_url of each
// config it concerns (once per URL), in the webhook's transaction, so the
// forward is as durable as what was stored. A replay (caught by its
// receipt) is not forwarded again.
func forwardRaw(ctx context.Context, tx *store.Conn, cfgs map[string]*parley.WhatsAppConfig, signers map[string]bool,
	body []byte, sig string, did *applied) error {
	var urls []string
	for _, cfg := range cfgs {
		if cfg == nil || (signers != nil && !signers[cfg.ID]) {
			continue
		}
		// The config's meta-kind webhooks get the same forward.
		dests, err := platform.MetaWebhookURLs(ctx, tx, cfg.ID)
		if err != nil {
			return err
		}
		if cfg.WebhookDestinationURL != nil && *cfg.WebhookDestinationURL != "" {
			dests = append(dests, *cfg.WebhookDestinationURL)
		}
		for _, u := range dests {
			if slices.Contains(urls, u) {
				continue
			}
			urls = append(urls, u)
			if _, err := jobs.Enqueue(ctx, tx, parley.JobForwardMetaWebhook, parley.MetaWebhookForward{
				ConfigID: cfg.ID, URL: u, Body: body, Signature: sig}, jobs.Options{}); err != nil {
				return err
			}
			did.jobsDue = true
		}
	}
	return nil
}

// ProcessWebhook applies a Meta webhook body without checking its
// signature, exactly as a verified POST would: for the sandbox simulator
// and benchmarks, which produce trusted bodies in-process. A malformed body
// is a 400-class *parley.Error.
func ProcessWebhook(ctx context.Context, s *api.Server, body []byte) error {
	wh, err := whatsapp.ParseWebhook(body)
	if err != nil {
		return &parley.Error{Code: parley.EBADREQUEST, Title: "Malformed webhook", Message: err.Error()}
	}
	return svc(s).process(ctx, wh, body, "", nil)
}

// errRace asks process to run the transaction again: a concurrent webhook
// inserted the same message between our check and our insert.
var errRace = errors.New("messaging: concurrent duplicate")

// needsConfig reports whether a change is applied to the config of its
// phone number.
func needsConfig(ch *whatsapp.Change) bool {
	return ch.Field != whatsapp.FieldMessageTemplateStatusUpdate && ch.PhoneNumberID != "" &&
		(len(ch.Messages) > 0 || len(ch.Echoes) > 0 || len(ch.Statuses) > 0 || len(ch.Calls) > 0)
}

// resolveConfigs looks up, outside the transaction, the configs of the
// phone numbers the webhook is about (nil for unknown numbers).
func (sv *service) resolveConfigs(ctx context.Context, wh *whatsapp.Webhook, fresh bool) (map[string]*parley.WhatsAppConfig, bool, error) {
	out := map[string]*parley.WhatsAppConfig{}
	anyCached := false
	for _, ch := range wh.Changes() {
		if !needsConfig(ch) {
			continue
		}
		if _, ok := out[ch.PhoneNumberID]; ok {
			continue
		}
		e, cached, err := sv.configByPhone(ctx, ch.PhoneNumberID, fresh)
		if err != nil {
			return nil, false, err
		}
		anyCached = anyCached || cached
		if e == nil {
			out[ch.PhoneNumberID] = nil
			continue
		}
		out[ch.PhoneNumberID] = e.cfg
	}
	return out, anyCached, nil
}

// needsReceipt reports whether applying the webhook twice could differ
// from applying it once, so its body's hash must be recorded: statuses
// (unknown wamids are kept as pending, once per delivery), template updates
// and calls. Messages and echoes need no receipt: a wamid the config
// already has is a duplicate, recognised by the same statement that finds
// the contact, so a replayed message-only body changes nothing either way
// and saves a write per webhook.
func needsReceipt(wh *whatsapp.Webhook) bool {
	for _, ch := range wh.Changes() {
		if ch.Field == whatsapp.FieldMessageTemplateStatusUpdate || len(ch.Statuses) > 0 || len(ch.Calls) > 0 {
			return true
		}
	}
	return false
}

// applied is what a webhook's transaction did, for the wake-ups after its
// commit.
type applied struct {
	jobsDue   bool // a job that is due now (or very soon) was enqueued
	delivered bool // events with at least one delivery were written
	replayed  bool // the body was applied before (its receipt exists)
}

// soon is how close a timer must be for its enqueueing to wake the job
// runner; later timers are found by the runner's polling.
const soon = time.Second

// process applies a parsed webhook in one transaction, once per body. The
// transaction is a group commit on SQLite: it shares its commit with the
// webhooks arriving at the same time, each in its own savepoint, and
// returns only after that commit (so Meta's 200 means stored), or with an
// error having stored nothing. A non-nil signers limits the configs the
// webhook may change to those whose app secret signed it. sig is the
// body's X-Hub-Signature-256, forwarded with it to the configs'
// webhook_destination_url.
func (sv *service) process(ctx context.Context, wh *whatsapp.Webhook, body []byte, sig string, signers map[string]bool) error {
	sha := ""
	if needsReceipt(wh) {
		sum := sha256.Sum256(body)
		sha = hex.EncodeToString(sum[:])
	}
	cfgs, cached, err := sv.resolveConfigs(ctx, wh, false)
	if err != nil {
		return err
	}
	var did applied
	for attempt := 0; attempt < 3; attempt++ {
		err = sv.api.DB.TxGroup(ctx, func(tx *store.Conn) error {
			did = applied{}
			if sha != "" {
				fresh, err := insertReceipt(ctx, tx, sha, now())
				if err != nil || !fresh {
					did.replayed = err == nil
					return err // a replay is acknowledged and not applied again
				}
			}
			if err := sv.apply(ctx, tx, wh, cfgs, signers, &did); err != nil {
				return err
			}
			return forwardRaw(ctx, tx, cfgs, signers, body, sig, &did)
		})
		if errors.Is(err, errRace) {
			continue
		}
		if cached && store.IsForeignKeyViolation(err) {
			// A cached config (or its customer) was deleted meanwhile:
			// look the numbers up again and apply the webhook to what
			// exists now.
			if cfgs, cached, err = sv.resolveConfigs(ctx, wh, true); err != nil {
				return err
			}
			continue
		}
		break
	}
	if err != nil {
		return err
	}
	if did.replayed {
		webhookResults.WithLabelValues("replayed").Inc()
	} else {
		webhookResults.WithLabelValues("processed").Inc()
	}
	if did.jobsDue {
		sv.api.JobsEnqueued()
	}
	if did.delivered {
		sv.api.EventsWritten()
	}
	return nil
}

// unknownPhone records a change for a phone_number_id no config has: it is
// acknowledged and dropped.
func (sv *service) unknownPhone(phoneNumberID string) {
	webhookUnknownPhone.Inc()
	sv.log.Warn("messaging: webhook for unknown phone_number_id", slog.String("phone_number_id", phoneNumberID))
}

func (sv *service) apply(ctx context.Context, tx *store.Conn, wh *whatsapp.Webhook, cfgs map[string]*parley.WhatsAppConfig,
	signers map[string]bool, did *applied) error {
	unknown := map[string]bool{}
	for _, ch := range wh.Changes() {
		if ch.Field == whatsapp.FieldMessageTemplateStatusUpdate {
			if len(ch.TemplateUpdates) == 0 {
				continue
			}
			wabaCfgs, err := configsByWABA(ctx, tx, ch.WABAID)
			if err != nil {
				return err
			}
			if len(wabaCfgs) == 0 {
				webhookUnknownPhone.Inc()
				sv.log.Warn("messaging: template update for unknown WABA", slog.String("waba_id", ch.WABAID))
			}
			if sv.opts.OnTemplateStatus == nil {
				continue
			}
			for _, cfg := range wabaCfgs {
				if signers != nil && !signers[cfg.ID] {
					continue // another app's config: not vouched for by this signature
				}
				for _, u := range ch.TemplateUpdates {
					if err := sv.hookErr("template status", sv.opts.OnTemplateStatus(ctx, tx, cfg, u)); err != nil {
						return err
					}
					did.jobsDue, did.delivered = true, true // hooks may enqueue and emit
				}
			}
			continue
		}
		if !needsConfig(ch) {
			continue
		}
		cfg := cfgs[ch.PhoneNumberID]
		if cfg != nil && signers != nil && !signers[cfg.ID] {
			// The number's config changed since the signature was checked
			// (deleted and created again): its secret did not sign this.
			sv.log.Warn("messaging: webhook change not signed by its config's app secret", slog.String("phone_number_id", ch.PhoneNumberID))
			continue
		}
		if cfg == nil {
			if !unknown[ch.PhoneNumberID] {
				unknown[ch.PhoneNumberID] = true
				sv.unknownPhone(ch.PhoneNumberID)
			}
			continue
		}
		for i := range ch.Messages {
			if err := sv.applyMessage(ctx, tx, cfg, &ch.Messages[i], did); err != nil {
				return err
			}
		}
		for i := range ch.Echoes {
			if err := sv.applyMessage(ctx, tx, cfg, &ch.Echoes[i], did); err != nil {
				return err
			}
		}
		if err := sv.applyStatuses(ctx, tx, cfg, ch.Statuses, did); err != nil {
			return err
		}
		if sv.opts.OnCall != nil {
			for _, c := range ch.Calls {
				if err := sv.hookErr("call", sv.opts.OnCall(ctx, tx, cfg, c)); err != nil {
					return err
				}
				did.jobsDue, did.delivered = true, true
			}
		}
	}
	return nil
}

// hookErr lets a hook refuse one item without failing the webhook: a
// *parley.Error (bad data in Meta's payload) is logged and skipped, since
// Meta would redeliver the same body forever; other errors (the store)
// roll the webhook back so Meta retries it.
func (sv *service) hookErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if code := parley.ErrorCode(err); code != parley.EINTERNAL {
		sv.log.Warn("messaging: inbound hook refused an item", slog.String("hook", what), slog.String("error", err.Error()))
		return nil
	}
	return err
}

// emit writes an event and notes whether it has deliveries to wake the
// workers for.
func emit(ctx context.Context, tx *store.Conn, did *applied, ev events.Event) error {
	n, err := events.Emit(ctx, tx, ev)
	if n > 0 {
		did.delivered = true
	}
	return err
}

// inboundMessage builds the stored message of an inbound message or echo.
func inboundMessage(cfg *parley.WhatsAppConfig, im *whatsapp.InboundMessage, phone string, t time.Time) *parley.Message {
	m := &parley.Message{ID: store.NewID(), ProjectID: cfg.ProjectID, ConfigID: cfg.ID, PhoneNumber: phone,
		Direction: im.Direction, Origin: im.Origin, MessageType: im.MessageType, Status: parley.MessageReceived,
		ProcessingStatus: parley.ProcessingPending, MessageTypeData: im.MessageTypeData, MetaPayload: im.Raw,
		Metadata: parley.JSONObject{}, CreatedAt: t, UpdatedAt: t}
	if m.Direction == "" {
		m.Direction = parley.DirectionInbound
	}
	if m.Origin == "" {
		m.Origin = whatsapp.OriginCloudAPI
	}
	if m.MessageType == "" {
		m.MessageType = whatsapp.MessageTypeText
	}
	wamid := im.ID
	m.WhatsAppMessageID = &wamid
	if im.Content != "" {
		c := im.Content
		m.Content = &c
	}
	if !im.Timestamp.IsZero() {
		m.Metadata["timestamp"] = im.Timestamp.Unix()
	}
	if im.IsEcho {
		m.Status, m.ProcessingStatus = parley.MessageSent, parley.ProcessingProcessed
		m.SentAt = &t
	}
	if r := im.ReplyToID(); r != "" {
		m.ReplyToID = &r
	}
	if md := im.Media; md != nil && md.ID != "" {
		id := md.ID
		m.MediaID = &id
		if md.MimeType != "" {
			v := md.MimeType
			m.MediaMimeType = &v
		}
		if md.Filename != "" {
			v := md.Filename
			m.MediaFilename = &v
		}
		if md.SHA256 != "" {
			v := md.SHA256
			m.MediaSHA256 = &v
		}
	}
	return m
}

// applyMessage stores one customer message (or business-app echo), opening
// a conversation when none is active, and emits its events. A wamid the
// config already has is a duplicate delivery: nothing happens.
func (sv *service) applyMessage(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, im *whatsapp.InboundMessage, did *applied) error {
	if im.ID == "" {
		return nil
	}
	peer := im.From
	if im.IsEcho {
		peer = im.To
	}
	phone := parley.NormalizePhone(peer)
	if phone == "" {
		return nil
	}
	t := now()
	// A read finds the contact and tells a duplicate apart (then nothing
	// changes); the contact is written only when new or renamed.
	contactID, name, dup, err := upsertInboundContact(ctx, tx, cfg, phone, im.ProfileName, im.ID, t)
	if err != nil || dup {
		return err
	}
	m := inboundMessage(cfg, im, phone, t)
	// One statement records the message on the active conversation, or,
	// when there is none, another opens one already counting it.
	upd, created, err := recordMessage(ctx, tx, cfg, phone, contactID, name, messageActivity{MessageID: m.ID, Type: m.MessageType,
		Text: m.Content, At: t, Inbound: m.Direction == parley.DirectionInbound})
	if err != nil {
		return err
	}
	m.ConversationID, m.Seq = upd.ID, upd.LastSeq
	ok, err := insertMessage(ctx, tx, m)
	if err != nil {
		return err
	}
	if !ok {
		return errRace
	}
	if m.MediaID != nil {
		if _, err := jobs.Enqueue(ctx, tx, JobFetchMedia, map[string]string{"message_id": m.ID},
			jobs.Options{UniqueKey: JobFetchMedia + ":" + m.ID}); err != nil {
			return err
		}
		did.jobsDue = true
	}
	if err := sv.armAutoEnd(ctx, tx, upd.ID, t, did); err != nil {
		return err
	}
	if created {
		if err := emit(ctx, tx, did, events.Event{ProjectID: cfg.ProjectID, ConfigID: cfg.ID, ConversationID: upd.ID,
			Type: parley.EventConversationCreated, Payloads: func() (any, any, error) {
				v2, v1 := conversationPayloads(upd, cfg)
				return v2, v1, nil
			}}); err != nil {
			return err
		}
	}
	typ := parley.EventMessageReceived
	if im.IsEcho {
		typ = parley.EventMessageSent
	}
	if err := emit(ctx, tx, did, events.Event{ProjectID: cfg.ProjectID, ConfigID: cfg.ID, ConversationID: upd.ID,
		Type: typ, Seq: m.Seq, Payloads: func() (any, any, error) {
			v2, v1 := sv.messagePayloads(m, upd, cfg, created)
			return v2, v1, nil
		}}); err != nil {
		return err
	}
	if sv.opts.OnCallPermission != nil && im.MessageType == whatsapp.MessageTypeInteractive &&
		fmt.Sprint(im.MessageTypeData["interactive_type"]) == "call_permission_reply" {
		if err := sv.hookErr("call permission", sv.opts.OnCallPermission(ctx, tx, cfg, contactID, im)); err != nil {
			return err
		}
		did.jobsDue, did.delivered = true, true
	}
	return nil
}

// armAutoEnd makes sure the conversation's idle timer exists. Unlike
// scheduleAutoEnd it does not push an armed timer back on every message:
// the timer, when it fires, ends the conversation only if it has been idle
// for the whole auto-end period and re-arms itself from the last activity
// otherwise. The inbound path so adds no job write per message (an insert
// that finds the timer armed writes nothing).
func (sv *service) armAutoEnd(ctx context.Context, tx *store.Conn, conversationID string, last time.Time, did *applied) error {
	d := sv.api.Config.ConversationAutoEnd
	if d <= 0 {
		return nil
	}
	id, err := jobs.Enqueue(ctx, tx, JobAutoEnd, autoEndPayload{ConversationID: conversationID},
		jobs.Options{UniqueKey: autoEndKey(conversationID), RunAt: last.Add(d)})
	if err != nil {
		return err
	}
	if id != "" && d < soon {
		did.jobsDue = true
	}
	return nil
}

// applyStatuses applies a change's delivery statuses, in order, to the
// config's messages with their wamids, and keeps those whose wamid is not
// known yet (the send job has not recorded it) for later. The messages are
// read with one query and the kept statuses written with one statement.
func (sv *service) applyStatuses(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, sts []whatsapp.Status, did *applied) error {
	wamids := make([]string, 0, len(sts))
	for _, st := range sts {
		if st.Type == "call" || st.ID == "" {
			continue // call statuses belong to the calls area
		}
		wamids = append(wamids, st.ID)
	}
	if len(wamids) == 0 {
		return nil
	}
	if err := lockWamids(ctx, tx, cfg.ID, wamids); err != nil {
		return err
	}
	msgs, err := messagesByWamids(ctx, tx, cfg.ID, wamids)
	if err != nil {
		return err
	}
	var pending []pendingStatus
	var convs map[string]*parley.Conversation
	for _, st := range sts {
		if st.Type == "call" || st.ID == "" {
			continue
		}
		t := now()
		m := msgs[st.ID]
		if m == nil {
			pending = append(pending, pendingStatus{wamid: st.ID, payload: st.Raw, at: t})
			continue
		}
		ev, changed := applyStatus(m, st.Raw, t)
		if !changed {
			continue
		}
		m.UpdatedAt = t
		if err := saveMessageState(ctx, tx, m); err != nil {
			return err
		}
		if ev == "" {
			continue
		}
		var seq int64
		if events.Ordered(ev) {
			seq = m.Seq
		}
		// The payload carries the conversation, read (once per
		// conversation) only when the event has deliveries.
		payloads := func() (any, any, error) {
			cv := convs[m.ConversationID]
			if cv == nil {
				var err error
				if cv, err = getConversationByID(ctx, tx, m.ConversationID); err != nil {
					return nil, nil, err
				}
				if convs == nil {
					convs = map[string]*parley.Conversation{}
				}
				convs[m.ConversationID] = cv
			}
			v2, v1 := sv.messagePayloads(m, cv, cfg, false)
			return v2, v1, nil
		}
		if err := emit(ctx, tx, did, events.Event{ProjectID: m.ProjectID, ConfigID: m.ConfigID, ConversationID: m.ConversationID,
			Type: ev, Seq: seq, Payloads: payloads}); err != nil {
			return err
		}
	}
	return addPendingStatuses(ctx, tx, cfg.ID, pending)
}
