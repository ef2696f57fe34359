package messaging

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
)

func (sv *service) listConversations(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	var f ConversationFilter
	if v, ok := api.QParam(r, "status_eq"); ok {
		f.Status = strings.ToLower(v)
	}
	var err error
	if f.ActiveGteq, err = api.QTime(r, "last_active_at_gteq"); err != nil {
		return err
	}
	if f.ActiveLteq, err = api.QTime(r, "last_active_at_lteq"); err != nil {
		return err
	}
	if v, ok := api.QParam(r, "whatsapp_config_id_eq"); ok {
		f.ConfigID = strings.ToLower(v)
		f.emptyBecauseBad = f.emptyBecauseBad || !api.IsUUID(v)
	}
	if v, ok := api.QParam(r, "whatsapp_config_customer_id_eq"); ok {
		f.ConfigCustomer = strings.ToLower(v)
		f.emptyBecauseBad = f.emptyBecauseBad || !api.IsUUID(v)
	}
	if v, ok := api.QParam(r, "phone_number_eq"); ok {
		f.PhoneNumber = parley.NormalizePhone(v)
		f.emptyBecauseBad = f.emptyBecauseBad || f.PhoneNumber == ""
	}
	p := api.PageOf(r)
	items, total, err := listConversations(r.Context(), sv.api.DB.Read(), a.ProjectID, f, p)
	if err != nil {
		return err
	}
	out := make([]conversationJSON, len(items))
	for i, c := range items {
		out[i] = renderConversation(c)
	}
	api.WriteList(w, out, p, total)
	return nil
}

func (sv *service) getConversation(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "conversation_id", "Conversation")
	if err != nil {
		return err
	}
	c, err := getConversation(r.Context(), sv.api.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, renderConversation(c))
	return nil
}

// updateConversation ends or reopens a conversation. Only status is
// writable; setting the current status again changes nothing.
func (sv *service) updateConversation(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "conversation_id", "Conversation")
	if err != nil {
		return err
	}
	f, err := sv.api.DecodeFields(w, r, "whatsapp_conversation")
	if err != nil {
		return err
	}
	st, _, err := f.String("status")
	if err != nil {
		return err
	}
	if st == nil || strings.TrimSpace(*st) == "" {
		return parley.Invalid("Validation failed", "Status can't be blank")
	}
	status := strings.ToLower(strings.TrimSpace(*st))
	if status != parley.ConversationActive && status != parley.ConversationEnded {
		return parley.Invalid("Validation failed", "Status is not included in the list")
	}
	ctx := r.Context()
	var out *parley.Conversation
	wrote := false
	err = sv.api.DB.Tx(ctx, func(tx *store.Conn) error {
		c, err := getConversation(ctx, tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		out = c
		if c.Status == status {
			return nil
		}
		t := now()
		if err := setConversationStatus(ctx, tx, c, status, t); err != nil {
			return err
		}
		cfg, err := store.GetConfigByID(ctx, tx, c.ConfigID)
		if err != nil {
			return err
		}
		wrote = true
		if status == parley.ConversationEnded {
			if err := jobs.Cancel(ctx, tx, autoEndKey(c.ID)); err != nil {
				return err
			}
			v2, v1 := conversationPayloads(c, cfg)
			_, err := events.Emit(ctx, tx, events.Event{ProjectID: c.ProjectID, ConfigID: c.ConfigID, ConversationID: c.ID,
				Type: parley.EventConversationEnded, V2: v2, V1: v1})
			return err
		}
		// Reopening is activity: the idle clock restarts now.
		if err := touchActive(ctx, tx, c, t); err != nil {
			return err
		}
		return sv.scheduleAutoEnd(ctx, tx, c.ID, t)
	})
	if err != nil {
		return err
	}
	if wrote {
		sv.afterCommit()
	}
	api.WriteData(w, http.StatusOK, renderConversation(out))
	return nil
}

func (sv *service) listMessages(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "conversation_id", "Conversation")
	if err != nil {
		return err
	}
	ctx := r.Context()
	c, err := getConversation(ctx, sv.api.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	p := api.PageOf(r)
	items, total, err := listMessages(ctx, sv.api.DB.Read(), c.ID, p)
	if err != nil {
		return err
	}
	out := make([]messageJSON, len(items))
	for i, m := range items {
		out[i] = sv.renderMessage(m)
	}
	api.WriteList(w, out, p, total)
	return nil
}

func (sv *service) sendInConversation(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "conversation_id", "Conversation")
	if err != nil {
		return err
	}
	f, err := sv.api.DecodeFields(w, r, "message")
	if err != nil {
		return err
	}
	ctx := r.Context()
	c, err := getConversation(ctx, sv.api.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	o, err := ParseMessage(f)
	if err != nil {
		return err
	}
	cfg, err := store.GetConfig(ctx, sv.api.DB.Read(), a.ProjectID, c.ConfigID)
	if err != nil {
		return err
	}
	m, err := sv.send(ctx, a.ProjectID, cfg, SendRequest{ConversationID: c.ID, Message: o})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, sv.renderMessage(m))
	return nil
}

// sendStandalone is POST /whatsapp_messages: the recipient by phone number,
// the config by whatsapp_config_id, else customer_id, else the project's
// first config.
func (sv *service) sendStandalone(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := sv.api.DecodeFields(w, r, "message")
	if err != nil {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	phone, _, err := f.String("phone_number")
	if err != nil {
		return err
	}
	if phone == nil || strings.TrimSpace(*phone) == "" {
		if v := strings.TrimSpace(q.Get("phone_number")); v != "" {
			phone = &v
		}
	}
	if phone == nil || strings.TrimSpace(*phone) == "" {
		return &parley.Error{Code: parley.EBADREQUEST, Title: "Phone number is required"}
	}
	digits := parley.NormalizePhone(*phone)
	if !parley.ValidPhone(digits) {
		return parley.Invalid("Validation failed", "Phone number is invalid")
	}
	param := func(key string) (*string, error) {
		if v := strings.TrimSpace(q.Get(key)); v != "" {
			return &v, nil
		}
		v, _, err := f.RootString(key)
		if err != nil {
			return nil, err
		}
		if v == nil {
			v, _, err = f.String(key)
		}
		if v != nil && strings.TrimSpace(*v) == "" {
			v = nil
		}
		return v, err
	}
	cfgID, err := param("whatsapp_config_id")
	if err != nil {
		return err
	}
	customerID, err := param("customer_id")
	if err != nil {
		return err
	}
	var cfg *parley.WhatsAppConfig
	switch {
	case cfgID != nil:
		if !api.IsUUID(strings.TrimSpace(*cfgID)) {
			return configNotFound()
		}
		cfg, err = store.GetConfig(ctx, sv.api.DB.Read(), a.ProjectID, strings.ToLower(strings.TrimSpace(*cfgID)))
		if parley.IsNotFound(err) {
			return configNotFound()
		}
	case customerID != nil:
		if !api.IsUUID(strings.TrimSpace(*customerID)) {
			return configNotFound()
		}
		id := strings.ToLower(strings.TrimSpace(*customerID))
		cfg, err = firstConfig(ctx, sv.api.DB.Read(), a.ProjectID, &id)
	default:
		cfg, err = firstConfig(ctx, sv.api.DB.Read(), a.ProjectID, nil)
	}
	if err != nil {
		return err
	}
	o, err := ParseMessage(f)
	if err != nil {
		return err
	}
	m, err := sv.send(ctx, a.ProjectID, cfg, SendRequest{PhoneNumber: digits, Message: o})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, sv.renderMessage(m))
	return nil
}

// markAsRead marks an inbound message read at once and tells Meta from the
// mark_read job. A message already read changes nothing.
func (sv *service) markAsRead(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp message")
	if err != nil {
		return err
	}
	typing := true
	if v := strings.TrimSpace(r.URL.Query().Get("typing_indicator")); v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			typing = b
		}
	}
	ctx := r.Context()
	var out *parley.Message
	enqueued := false
	err = sv.api.DB.Tx(ctx, func(tx *store.Conn) error {
		m, err := getMessage(ctx, tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		out = m
		if m.Direction != parley.DirectionInbound {
			return &parley.Error{Code: parley.EBADREQUEST, Title: "Can only mark inbound messages as read"}
		}
		if m.Status == parley.MessageRead {
			return nil
		}
		if err := markMessageRead(ctx, tx, m, now()); err != nil {
			return err
		}
		if m.WhatsAppMessageID == nil {
			return nil
		}
		enqueued = true
		_, err = jobs.Enqueue(ctx, tx, JobMarkRead, markReadPayload{MessageID: m.ID, Typing: typing}, jobs.Options{MaxAttempts: 5})
		return err
	})
	if err != nil {
		return err
	}
	if enqueued {
		sv.api.JobsEnqueued()
	}
	api.WriteData(w, http.StatusOK, sv.renderMessage(out))
	return nil
}

// getMessage answers one message (a Parley extension: Kapso lists messages
// only per conversation), so a client can follow a send to its outcome.
func (sv *service) getMessage(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp message")
	if err != nil {
		return err
	}
	m, err := getMessage(r.Context(), sv.api.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, sv.renderMessage(m))
	return nil
}

func (sv *service) deleteMessage(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp message")
	if err != nil {
		return err
	}
	if err := deleteMessage(r.Context(), sv.api.DB.Write(), a.ProjectID, id); err != nil {
		return err
	}
	api.NoContent(w)
	return nil
}
