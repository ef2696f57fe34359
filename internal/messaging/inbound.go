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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/metrics"
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
	if !verified {
		// Without a process-wide secret (or when it does not match), the
		// app secret of the config(s) the body is about may sign it.
		if perr == nil {
			verified = sv.verifyWithConfigSecrets(r.Context(), wh, body, sig)
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
	if err := sv.process(r.Context(), wh, body); err != nil {
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

// verifyWithConfigSecrets checks the signature against the app secrets of
// the configs the webhook names.
func (sv *service) verifyWithConfigSecrets(ctx context.Context, wh *whatsapp.Webhook, body []byte, sig string) bool {
	if sv.api.Box == nil {
		return false
	}
	seen := map[string]bool{}
	for _, ch := range wh.Changes() {
		var cfgs []*parley.WhatsAppConfig
		if ch.PhoneNumberID != "" {
			if seen["p:"+ch.PhoneNumberID] {
				continue
			}
			seen["p:"+ch.PhoneNumberID] = true
			if cfg, err := store.GetConfigByPhoneNumberID(ctx, sv.api.DB.Read(), ch.PhoneNumberID); err == nil {
				cfgs = append(cfgs, cfg)
			}
		} else if ch.WABAID != "" {
			if seen["w:"+ch.WABAID] {
				continue
			}
			seen["w:"+ch.WABAID] = true
			cfgs, _ = configsByWABA(ctx, sv.api.DB.Read(), ch.WABAID)
		}
		for _, cfg := range cfgs {
			if cfg.AppSecretEnc == "" {
				continue
			}
			secret, err := sv.api.Box.Decrypt(cfg.AppSecretEnc)
			if err == nil && secret != "" && whatsapp.VerifySignature([]byte(secret), body, sig) {
				return true
			}
		}
	}
	return false
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
	return svc(s).process(ctx, wh, body)
}

// errRace asks process to run the transaction again: a concurrent webhook
// inserted the same message between our check and our insert.
var errRace = errors.New("messaging: concurrent duplicate")

// process applies a parsed webhook in one transaction, once per body.
func (sv *service) process(ctx context.Context, wh *whatsapp.Webhook, body []byte) error {
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	var err error
	wrote := false
	for attempt := 0; attempt < 3; attempt++ {
		err = sv.api.DB.Tx(ctx, func(tx *store.Conn) error {
			fresh, err := insertReceipt(ctx, tx, sha, now())
			if err != nil || !fresh {
				return err // a replay is acknowledged and not applied again
			}
			wrote, err = sv.apply(ctx, tx, wh)
			return err
		})
		if !errors.Is(err, errRace) {
			break
		}
	}
	if err != nil {
		return err
	}
	if wrote {
		sv.afterCommit()
	}
	return nil
}

// inbound holds per-transaction lookups so a batch naming the same config
// many times reads it once.
type inbound struct {
	configs map[string]*parley.WhatsAppConfig // by phone_number_id; nil = unknown
}

func (sv *service) configFor(ctx context.Context, tx *store.Conn, in *inbound, phoneNumberID string) (*parley.WhatsAppConfig, error) {
	if cfg, ok := in.configs[phoneNumberID]; ok {
		return cfg, nil
	}
	cfg, err := store.GetConfigByPhoneNumberID(ctx, tx, phoneNumberID)
	if parley.IsNotFound(err) {
		in.configs[phoneNumberID] = nil
		webhookUnknownPhone.Inc()
		sv.log.Warn("messaging: webhook for unknown phone_number_id", slog.String("phone_number_id", phoneNumberID))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	in.configs[phoneNumberID] = cfg
	return cfg, nil
}

func (sv *service) apply(ctx context.Context, tx *store.Conn, wh *whatsapp.Webhook) (bool, error) {
	in := &inbound{configs: map[string]*parley.WhatsAppConfig{}}
	wrote := false
	for _, ch := range wh.Changes() {
		if ch.Field == whatsapp.FieldMessageTemplateStatusUpdate {
			if len(ch.TemplateUpdates) == 0 {
				continue
			}
			cfgs, err := configsByWABA(ctx, tx, ch.WABAID)
			if err != nil {
				return wrote, err
			}
			if len(cfgs) == 0 {
				webhookUnknownPhone.Inc()
				sv.log.Warn("messaging: template update for unknown WABA", slog.String("waba_id", ch.WABAID))
			}
			if sv.opts.OnTemplateStatus == nil {
				continue
			}
			for _, cfg := range cfgs {
				for _, u := range ch.TemplateUpdates {
					if err := sv.hookErr("template status", sv.opts.OnTemplateStatus(ctx, tx, cfg, u)); err != nil {
						return wrote, err
					}
					wrote = true
				}
			}
			continue
		}
		if ch.PhoneNumberID == "" {
			continue
		}
		if len(ch.Messages) == 0 && len(ch.Echoes) == 0 && len(ch.Statuses) == 0 && len(ch.Calls) == 0 {
			continue
		}
		cfg, err := sv.configFor(ctx, tx, in, ch.PhoneNumberID)
		if err != nil {
			return wrote, err
		}
		if cfg == nil {
			continue
		}
		for i := range ch.Messages {
			w, err := sv.applyMessage(ctx, tx, cfg, &ch.Messages[i])
			if err != nil {
				return wrote, err
			}
			wrote = wrote || w
		}
		for i := range ch.Echoes {
			w, err := sv.applyMessage(ctx, tx, cfg, &ch.Echoes[i])
			if err != nil {
				return wrote, err
			}
			wrote = wrote || w
		}
		for _, st := range ch.Statuses {
			if st.Type == "call" || st.ID == "" {
				continue // call statuses belong to the calls area
			}
			w, err := sv.applyInboundStatus(ctx, tx, cfg, st)
			if err != nil {
				return wrote, err
			}
			wrote = wrote || w
		}
		if sv.opts.OnCall != nil {
			for _, c := range ch.Calls {
				if err := sv.hookErr("call", sv.opts.OnCall(ctx, tx, cfg, c)); err != nil {
					return wrote, err
				}
				wrote = true
			}
		}
	}
	return wrote, nil
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

// applyMessage stores one customer message (or business-app echo), opening
// a conversation when none is active, and emits its events. A wamid the
// config already has is a duplicate delivery: nothing happens.
func (sv *service) applyMessage(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, im *whatsapp.InboundMessage) (bool, error) {
	if im.ID == "" {
		return false, nil
	}
	if dup, err := messageExists(ctx, tx, cfg.ID, im.ID); err != nil || dup {
		return false, err
	}
	peer := im.From
	if im.IsEcho {
		peer = im.To
	}
	phone := parley.NormalizePhone(peer)
	if phone == "" {
		return false, nil
	}
	t := now()
	contactID, name, err := upsertContact(ctx, tx, cfg, phone, im.ProfileName, t)
	if err != nil {
		return false, err
	}
	cv, created, err := openConversation(ctx, tx, cfg, phone, &contactID, name, t)
	if err != nil {
		return false, err
	}
	m := &parley.Message{ID: store.NewID(), ProjectID: cfg.ProjectID, ConversationID: cv.ID, ConfigID: cfg.ID, PhoneNumber: phone,
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
	upd, err := touchConversation(ctx, tx, cv, messageActivity{MessageID: m.ID, Type: m.MessageType, Text: m.Content, At: t,
		Inbound: m.Direction == parley.DirectionInbound})
	if err != nil {
		return false, err
	}
	m.Seq = upd.LastSeq
	ok, err := insertMessage(ctx, tx, m)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, errRace
	}
	if m.MediaID != nil {
		if _, err := jobs.Enqueue(ctx, tx, JobFetchMedia, map[string]string{"message_id": m.ID},
			jobs.Options{UniqueKey: JobFetchMedia + ":" + m.ID}); err != nil {
			return false, err
		}
	}
	if err := sv.scheduleAutoEnd(ctx, tx, cv.ID, t); err != nil {
		return false, err
	}
	if created {
		v2, v1 := conversationPayloads(upd, cfg)
		if _, err := events.Emit(ctx, tx, events.Event{ProjectID: cfg.ProjectID, ConfigID: cfg.ID, ConversationID: cv.ID,
			Type: parley.EventConversationCreated, V2: v2, V1: v1}); err != nil {
			return false, err
		}
	}
	typ := parley.EventMessageReceived
	if im.IsEcho {
		typ = parley.EventMessageSent
	}
	v2, v1 := sv.messagePayloads(m, upd, cfg, created)
	if _, err := events.Emit(ctx, tx, events.Event{ProjectID: cfg.ProjectID, ConfigID: cfg.ID, ConversationID: cv.ID,
		Type: typ, Seq: m.Seq, V2: v2, V1: v1}); err != nil {
		return false, err
	}
	if sv.opts.OnCallPermission != nil && im.MessageType == whatsapp.MessageTypeInteractive &&
		fmt.Sprint(im.MessageTypeData["interactive_type"]) == "call_permission_reply" {
		if err := sv.hookErr("call permission", sv.opts.OnCallPermission(ctx, tx, cfg, contactID, im)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// applyInboundStatus applies a delivery status to the config's message with
// that wamid, or keeps it for later when the send job has not recorded the
// wamid yet.
func (sv *service) applyInboundStatus(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, st whatsapp.Status) (bool, error) {
	m, err := getMessageByWamid(ctx, tx, cfg.ID, st.ID)
	if err != nil {
		return false, err
	}
	t := now()
	if m == nil {
		return false, addPendingStatus(ctx, tx, cfg.ID, st.ID, st.Raw, t)
	}
	ev, changed := applyStatus(m, st.Raw, t)
	if !changed {
		return false, nil
	}
	m.UpdatedAt = t
	if err := saveMessageState(ctx, tx, m); err != nil {
		return false, err
	}
	if ev == "" {
		return false, nil
	}
	return true, sv.emitMessageEvents(ctx, tx, m, []string{ev})
}
