package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// SendRequest is a message to send: into an existing conversation
// (ConversationID) or to a phone number, whose active conversation is found
// or opened (and its contact created).
type SendRequest struct {
	ConversationID string
	PhoneNumber    string
	Message        *Outbound
}

// Send stores req's message as pending in the project, with its Graph
// request body, and enqueues the send_message job that delivers it to Meta,
// all in one transaction. cfg may be nil when ConversationID is set (the
// conversation's config is used). The returned message is pending; the job
// records the wamid and emits whatsapp.message.sent or .failed.
func Send(ctx context.Context, s *api.Server, projectID string, cfg *parley.WhatsAppConfig, req SendRequest) (*parley.Message, error) {
	return svc(s).send(ctx, projectID, cfg, req)
}

// SendTx is Send inside the caller's transaction tx: the message, its send
// job and its events commit or roll back with the caller's own changes (a
// broadcast records which recipient the message is for in the same
// transaction). The caller wakes the workers after its commit
// (s.JobsEnqueued and s.EventsWritten).
func SendTx(ctx context.Context, tx *store.Conn, s *api.Server, projectID string, cfg *parley.WhatsAppConfig, req SendRequest) (*parley.Message, error) {
	return svc(s).sendTx(ctx, tx, projectID, cfg, req)
}

type sendPayload struct {
	MessageID string `json:"message_id"`
}

type markReadPayload struct {
	MessageID string `json:"message_id"`
	Typing    bool   `json:"typing"`
}

type autoEndPayload struct {
	ConversationID string `json:"conversation_id"`
}

func autoEndKey(conversationID string) string { return "conv-autoend:" + conversationID }

// scheduleAutoEnd (re)arms the conversation's idle timer.
func (sv *service) scheduleAutoEnd(ctx context.Context, tx *store.Conn, conversationID string, last time.Time) error {
	d := sv.api.Config.ConversationAutoEnd
	if d <= 0 {
		return nil
	}
	return jobs.Schedule(ctx, tx, JobAutoEnd, autoEndKey(conversationID), autoEndPayload{ConversationID: conversationID}, last.Add(d))
}

func (sv *service) send(ctx context.Context, projectID string, cfg *parley.WhatsAppConfig, req SendRequest) (*parley.Message, error) {
	var msg *parley.Message
	err := sv.api.DB.Tx(ctx, func(tx *store.Conn) error {
		var err error
		msg, err = sv.sendTx(ctx, tx, projectID, cfg, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	sv.afterCommit()
	return msg, nil
}

func (sv *service) sendTx(ctx context.Context, tx *store.Conn, projectID string, cfg *parley.WhatsAppConfig, req SendRequest) (*parley.Message, error) {
	o := req.Message
	if o == nil || o.Body == nil || o.MessageType == "" {
		return nil, parley.Invalid("Validation failed", "Message can't be blank")
	}
	if cfg == nil && req.ConversationID == "" {
		return nil, configNotFound()
	}
	var msg *parley.Message
	err := func() error {
		t := now()
		var cv *parley.Conversation
		created := false
		if req.ConversationID != "" {
			var err error
			if cv, err = getConversation(ctx, tx, projectID, req.ConversationID); err != nil {
				return err
			}
			if cfg == nil {
				if cfg, err = store.GetConfig(ctx, tx, projectID, cv.ConfigID); err != nil {
					return err
				}
			} else if cfg.ID != cv.ConfigID {
				return parley.Invalid("Validation failed", "Conversation belongs to another WhatsApp configuration")
			}
		} else {
			phone := parley.NormalizePhone(req.PhoneNumber)
			if !parley.ValidPhone(phone) {
				return parley.Invalid("Validation failed", "Phone number is invalid")
			}
			contactID, name, err := upsertContact(ctx, tx, cfg, phone, "", t)
			if err != nil {
				return err
			}
			if cv, created, err = openConversation(ctx, tx, cfg, phone, &contactID, name, t); err != nil {
				return err
			}
		}
		body := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": cv.PhoneNumber}
		for k, v := range o.Body {
			body[k] = v
		}
		mtd := o.MessageTypeData
		if o.reactTo != "" {
			target, err := getMessage(ctx, tx, projectID, o.reactTo)
			if err != nil || target.WhatsAppMessageID == nil {
				return parley.Invalid("Validation failed", "Reacted to message was not found or has no WhatsApp message id yet")
			}
			body["reaction"] = map[string]any{"message_id": *target.WhatsAppMessageID, "emoji": mtd["reaction_emoji"]}
		}
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("messaging: encode body: %w", err)
		}
		meta := parley.JSONObject{}
		for k, v := range o.Metadata {
			meta[k] = v
		}
		content := o.Content
		if o.MessageType == "template" && sv.opts.TemplateContent != nil {
			name, _ := o.Metadata["template_name"].(string)
			lang, _ := o.Metadata["template_language"].(string)
			s, ok, err := sv.opts.TemplateContent(ctx, tx, cfg, name, lang, o.Metadata["template_params"])
			if err != nil {
				return err
			}
			if ok {
				content = &s
			}
		}
		msg = &parley.Message{ID: store.NewID(), ProjectID: projectID, ConversationID: cv.ID, ConfigID: cfg.ID, PhoneNumber: cv.PhoneNumber,
			Direction: parley.DirectionOutbound, Origin: whatsapp.OriginCloudAPI, MessageType: o.MessageType, Content: content,
			Status: parley.MessagePending, ProcessingStatus: parley.ProcessingPending, Metadata: meta, MessageTypeData: mtd,
			MetaPayload: raw, MediaID: o.MediaID, MediaURLExternal: o.MediaURL, MediaFilename: o.MediaFilename,
			MediaMimeType: o.MediaMimeType, CreatedAt: t, UpdatedAt: t}
		upd, err := touchConversation(ctx, tx, cv, messageActivity{MessageID: msg.ID, Type: o.MessageType, Text: content, At: t})
		if err != nil {
			return err
		}
		msg.Seq = upd.LastSeq
		if _, err := insertMessage(ctx, tx, msg); err != nil {
			return err
		}
		if _, err := jobs.Enqueue(ctx, tx, JobSendMessage, sendPayload{MessageID: msg.ID}, jobs.Options{MaxAttempts: 8}); err != nil {
			return err
		}
		if err := sv.scheduleAutoEnd(ctx, tx, cv.ID, t); err != nil {
			return err
		}
		if created {
			v2, v1 := conversationPayloads(upd, cfg)
			if _, err := events.Emit(ctx, tx, events.Event{ProjectID: projectID, ConfigID: cfg.ID, ConversationID: cv.ID,
				Type: parley.EventConversationCreated, V2: v2, V1: v1}); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		return nil, err
	}
	return msg, nil
}

// accessToken returns the token to call the Graph API with for cfg.
// Sandbox configs talk to the built-in simulator, which needs none; the
// client still wants a non-empty value.
func (sv *service) accessToken(cfg *parley.WhatsAppConfig) (string, error) {
	if cfg.AccessTokenEnc != "" && sv.api.Box != nil {
		tok, err := sv.api.Box.Decrypt(cfg.AccessTokenEnc)
		if err != nil {
			return "", fmt.Errorf("messaging: decrypt access token: %w", err)
		}
		if tok != "" {
			return tok, nil
		}
	}
	if cfg.IsSandbox() {
		return "sandbox", nil
	}
	return "", whatsapp.ErrMissingToken
}

func (sv *service) graph(cfg *parley.WhatsAppConfig) *whatsapp.Client {
	if sv.api.Graph != nil {
		if g := sv.api.Graph(cfg); g != nil {
			return g
		}
	}
	return &whatsapp.Client{BaseURL: sv.api.Config.MetaGraphURL, Version: sv.api.Config.MetaGraphVersion}
}

// handleSend is the send_message job: one Graph call, then the outcome in
// one transaction. A message that is no longer pending was handled by an
// earlier run, so a re-run after a lost lease sends nothing twice unless
// the earlier run died between Meta's answer and the commit.
func (sv *service) handleSend(ctx context.Context, j *jobs.Job) error {
	var p sendPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.MessageID == "" {
		return jobs.Permanent(fmt.Errorf("messaging: bad send payload: %s", j.Payload))
	}
	m, err := getMessageByID(ctx, sv.api.DB.Read(), p.MessageID)
	if parley.IsNotFound(err) {
		return nil // deleted before it was sent
	}
	if err != nil {
		return err
	}
	if m.Status != parley.MessagePending || m.WhatsAppMessageID != nil {
		return nil
	}
	// Messages of a conversation go to Meta in the order they were sent to
	// Parley: wait while an earlier one is still pending (for at most
	// sendOrderWait, so one stuck message cannot hold the rest forever).
	if earlier, err := earlierPending(ctx, sv.api.DB.Read(), m); err != nil {
		return err
	} else if earlier && time.Since(m.CreatedAt) < sendOrderWait {
		return jobs.Snooze(20 * time.Millisecond)
	}
	cfg, err := store.GetConfigByID(ctx, sv.api.DB.Read(), m.ConfigID)
	if parley.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	token, err := sv.accessToken(cfg)
	if err != nil {
		return sv.finishFailed(ctx, m.ID, err)
	}
	res, err := sv.graph(cfg).SendMessage(ctx, token, cfg.PhoneNumberID, json.RawMessage(m.MetaPayload))
	if err == nil && res.MessageID() == "" {
		err = errors.New("messaging: Graph API accepted the message without a message id")
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		if whatsapp.IsRetryable(err) && !j.LastAttempt() {
			var ge *whatsapp.GraphError
			if errors.As(err, &ge) && ge.RetryAfter > 0 {
				return jobs.RetryAfter(ge.RetryAfter, err)
			}
			return err
		}
		return sv.finishFailed(ctx, m.ID, err)
	}
	return sv.finishSent(ctx, m.ID, res.MessageID())
}

// sendOrderWait bounds how long a send waits for earlier sends of its
// conversation.
const sendOrderWait = 30 * time.Second

// earlierPending reports whether an outbound message created before m in
// the same conversation is still waiting for its send job.
func earlierPending(ctx context.Context, c *store.Conn, m *parley.Message) (bool, error) {
	var n int
	err := c.QueryRow(ctx, `SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND direction = 'outbound'
		AND status = 'pending' AND seq < ? AND whatsapp_message_id IS NULL`, m.ConversationID, m.Seq).Scan(&n)
	return n > 0, err
}

// afterWamidLocked, when set (by tests), runs in finishSent's transaction
// once the wamid is locked, before it is recorded.
var afterWamidLocked func()

// finishSent records Meta's acceptance: the wamid, status sent with a
// synthetic "sent" status entry, the whatsapp.message.sent event, and any
// statuses that arrived before the wamid was known.
func (sv *service) finishSent(ctx context.Context, id, wamid string) error {
	err := sv.api.DB.Tx(ctx, func(tx *store.Conn) error {
		m, err := getMessageByID(ctx, tx, id)
		if parley.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Status != parley.MessagePending {
			return nil
		}
		if err := lockWamids(ctx, tx, m.ConfigID, []string{wamid}); err != nil {
			return err
		}
		if afterWamidLocked != nil {
			afterWamidLocked()
		}
		t := now()
		m.WhatsAppMessageID = &wamid
		m.ProcessingStatus = parley.ProcessingProcessed
		synthetic, _ := json.Marshal(map[string]any{"id": wamid, "status": "sent", "timestamp": strconv.FormatInt(t.Unix(), 10),
			"recipient_id": m.PhoneNumber})
		applyStatus(m, synthetic, t)
		m.UpdatedAt = t
		if err := saveMessageState(ctx, tx, m); err != nil {
			return err
		}
		pending, err := takePendingStatuses(ctx, tx, m.ConfigID, wamid)
		if err != nil {
			return err
		}
		evs := []string{parley.EventMessageSent}
		for _, raw := range pending {
			if ev, changed := applyStatus(m, raw, t); changed {
				if ev != "" {
					evs = append(evs, ev)
				}
			}
		}
		if len(pending) > 0 {
			if err := saveMessageState(ctx, tx, m); err != nil {
				return err
			}
		}
		return sv.emitMessageEvents(ctx, tx, m, evs)
	})
	if err != nil {
		return err
	}
	sv.api.EventsWritten()
	return nil
}

// finishFailed marks a pending message failed with the Graph error.
func (sv *service) finishFailed(ctx context.Context, id string, cause error) error {
	code, title, message := 0, "Send failed", cause.Error()
	var ge *whatsapp.GraphError
	if errors.As(cause, &ge) {
		code, title, message = ge.Code, ge.Title, ge.Message
		if ge.Details != "" {
			message = ge.Details
		}
		if title == "" {
			title = "Graph API error"
		}
	}
	err := sv.api.DB.Tx(ctx, func(tx *store.Conn) error {
		m, err := getMessageByID(ctx, tx, id)
		if parley.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Status != parley.MessagePending {
			return nil
		}
		t := now()
		m.ProcessingStatus = parley.ProcessingProcessed
		e := map[string]any{"code": code, "title": title, "message": message}
		if ge != nil && ge.Details != "" {
			e["error_data"] = map[string]any{"details": ge.Details}
		}
		synthetic, _ := json.Marshal(map[string]any{"id": m.ID, "status": "failed", "timestamp": strconv.FormatInt(t.Unix(), 10),
			"recipient_id": m.PhoneNumber, "errors": []any{e}})
		applyStatus(m, synthetic, t)
		m.UpdatedAt = t
		if err := saveMessageState(ctx, tx, m); err != nil {
			return err
		}
		return sv.emitMessageEvents(ctx, tx, m, []string{parley.EventMessageFailed})
	})
	if err != nil {
		return err
	}
	sv.log.Info("messaging: send failed", slog.String("message", id), slog.String("error", cause.Error()))
	sv.api.EventsWritten()
	return nil
}

// emitMessageEvents emits status events of m, in order.
func (sv *service) emitMessageEvents(ctx context.Context, tx *store.Conn, m *parley.Message, types []string) error {
	if len(types) == 0 {
		return nil
	}
	cv, err := getConversationByID(ctx, tx, m.ConversationID)
	if err != nil {
		return err
	}
	cfg, err := store.GetConfigByID(ctx, tx, m.ConfigID)
	if err != nil {
		return err
	}
	for _, typ := range types {
		v2, v1 := sv.messagePayloads(m, cv, cfg, false)
		var seq int64
		if events.Ordered(typ) {
			seq = m.Seq
		}
		if _, err := events.Emit(ctx, tx, events.Event{ProjectID: m.ProjectID, ConfigID: m.ConfigID, ConversationID: m.ConversationID,
			Type: typ, Seq: seq, V2: v2, V1: v1}); err != nil {
			return err
		}
	}
	return nil
}

// rawStatus is the part of a Meta status object Parley reads.
type rawStatus struct {
	Status    string `json:"status"`
	Timestamp any    `json:"timestamp"`
	Errors    []struct {
		Code      int    `json:"code"`
		Title     string `json:"title"`
		Message   string `json:"message"`
		ErrorData struct {
			Details string `json:"details"`
		} `json:"error_data"`
	} `json:"errors"`
}

func tsString(x any) string {
	switch t := x.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatInt(int64(t), 10)
	}
	return ""
}

func tsTime(x any, def time.Time) time.Time {
	if n, err := strconv.ParseInt(tsString(x), 10, 64); err == nil && n > 0 && n < 253402300799 {
		return time.Unix(n, 0).UTC()
	}
	return def
}

// canonical renders a JSON value with sorted keys and no spacing, so equal
// objects compare equal whatever their formatting.
func canonical(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// statusEvents maps the statuses that change a message to their events.
var statusEvents = map[string]string{
	whatsapp.StatusSent:      parley.EventMessageSent,
	whatsapp.StatusDelivered: parley.EventMessageDelivered,
	whatsapp.StatusRead:      parley.EventMessageRead,
	whatsapp.StatusFailed:    parley.EventMessageFailed,
}

// applyStatus applies one raw Meta status to m in memory: it is appended
// to the history (unless an identical status object is already there, a
// duplicate delivery that changes nothing), its time recorded, and m's
// status advanced when it ranks higher ("most advanced wins": a late
// delivered never demotes read). It returns the event to emit, if any, and
// whether m changed.
func applyStatus(m *parley.Message, raw json.RawMessage, at time.Time) (string, bool) {
	var st rawStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", false
	}
	status := strings.ToLower(st.Status)
	canon := canonical(raw)
	for _, prev := range m.Statuses {
		if canonical(prev) == canon {
			return "", false // Meta delivered the same status object again
		}
	}
	m.Statuses = append(m.Statuses, raw)
	when := tsTime(st.Timestamp, at)
	switch status {
	case whatsapp.StatusSent:
		if m.SentAt == nil {
			m.SentAt = &when
		}
	case whatsapp.StatusDelivered:
		if m.DeliveredAt == nil {
			m.DeliveredAt = &when
		}
	case whatsapp.StatusRead, whatsapp.StatusPlayed:
		if m.ReadAt == nil {
			m.ReadAt = &when
		}
	case whatsapp.StatusFailed:
		if m.FailedAt == nil {
			m.FailedAt = &when
		}
		if len(st.Errors) > 0 {
			e := st.Errors[0]
			code, title, msg := e.Code, e.Title, e.Message
			if e.ErrorData.Details != "" {
				msg = e.ErrorData.Details
			}
			m.ErrorCode, m.ErrorTitle, m.ErrorMessage = &code, &title, &msg
		}
	}
	ev, known := statusEvents[status]
	if !known || whatsapp.StatusRank(status) <= whatsapp.StatusRank(m.Status) {
		return "", true
	}
	m.Status = status
	m.UpdatedAt = at
	return ev, true
}

// handleMarkRead is the mark_read job: tell Meta the message was read.
func (sv *service) handleMarkRead(ctx context.Context, j *jobs.Job) error {
	var p markReadPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.MessageID == "" {
		return jobs.Permanent(fmt.Errorf("messaging: bad mark_read payload: %s", j.Payload))
	}
	m, err := getMessageByID(ctx, sv.api.DB.Read(), p.MessageID)
	if parley.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.WhatsAppMessageID == nil {
		return nil
	}
	cfg, err := store.GetConfigByID(ctx, sv.api.DB.Read(), m.ConfigID)
	if parley.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	token, err := sv.accessToken(cfg)
	if err != nil {
		return jobs.Permanent(err)
	}
	err = sv.graph(cfg).MarkRead(ctx, token, cfg.PhoneNumberID, *m.WhatsAppMessageID, p.Typing)
	if err != nil && !whatsapp.IsRetryable(err) {
		return jobs.Permanent(err)
	}
	return err
}

// handleAutoEnd is the conversation idle timer: it ends the conversation
// if nothing happened since the timer was armed, else re-arms it.
func (sv *service) handleAutoEnd(ctx context.Context, j *jobs.Job) error {
	var p autoEndPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.ConversationID == "" {
		return jobs.Permanent(fmt.Errorf("messaging: bad auto-end payload: %s", j.Payload))
	}
	d := sv.api.Config.ConversationAutoEnd
	if d <= 0 {
		return nil
	}
	ended := false
	err := sv.api.DB.Tx(ctx, func(tx *store.Conn) error {
		c, err := getConversationByID(ctx, tx, p.ConversationID)
		if parley.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.Status != parley.ConversationActive {
			return nil
		}
		t := now()
		if c.LastActiveAt.Add(d).After(t) {
			return sv.scheduleAutoEnd(ctx, tx, c.ID, c.LastActiveAt)
		}
		ok, err := endIfIdle(ctx, tx, c.ID, t.Add(-d), t)
		if err != nil || !ok {
			return err
		}
		c.Status, c.UpdatedAt, c.EndedAt = parley.ConversationEnded, t, &t
		cfg, err := store.GetConfigByID(ctx, tx, c.ConfigID)
		if err != nil {
			return err
		}
		ended = true
		v2, v1 := conversationPayloads(c, cfg)
		_, err = events.Emit(ctx, tx, events.Event{ProjectID: c.ProjectID, ConfigID: c.ConfigID, ConversationID: c.ID,
			Type: parley.EventConversationEnded, V2: v2, V1: v1})
		return err
	})
	if ended {
		sv.api.EventsWritten()
	}
	return err
}

// RegisterJobs registers the handlers of the jobs this package enqueues
// (send_message, mark_read, conversation_auto_end) on r. fetch_media is the
// media package's.
func RegisterJobs(r *jobs.Runner, s *api.Server) {
	sv := svc(s)
	r.Register(JobSendMessage, sv.handleSend)
	r.Register(JobMarkRead, sv.handleMarkRead)
	r.Register(JobAutoEnd, sv.handleAutoEnd)
}
