package messaging

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/parleyhq/parley"
)

// conversationJSON is Kapso's WhatsappConversation. contact_name, which the
// schema does not allow to be null, is omitted when unknown.
type conversationJSON struct {
	ID               string    `json:"id"`
	PhoneNumber      string    `json:"phone_number"`
	Status           string    `json:"status"`
	LastActiveAt     time.Time `json:"last_active_at"`
	ContactName      *string   `json:"contact_name,omitempty"`
	WhatsAppConfigID string    `json:"whatsapp_config_id"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

func renderConversation(c *parley.Conversation) conversationJSON {
	return conversationJSON{ID: c.ID, PhoneNumber: parley.DisplayPhone(c.PhoneNumber), Status: c.Status, LastActiveAt: c.LastActiveAt,
		ContactName: c.ContactName, WhatsAppConfigID: c.ConfigID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// messageJSON is Kapso's WhatsappMessage. The fields the schema does not
// allow to be null are omitted when unknown: content, whatsapp_message_id (a
// message not yet accepted by Meta), media_url (no media) and
// message_type_data. metadata is always an object (JSONObject).
type messageJSON struct {
	ID                string            `json:"id"`
	PhoneNumber       string            `json:"phone_number"`
	MessageType       string            `json:"message_type"`
	Content           *string           `json:"content,omitempty"`
	Direction         string            `json:"direction"`
	Status            string            `json:"status"`
	ProcessingStatus  string            `json:"processing_status"`
	WhatsAppMessageID *string           `json:"whatsapp_message_id,omitempty"`
	Metadata          parley.JSONObject `json:"metadata"`
	MediaURL          *string           `json:"media_url,omitempty"`
	MessageTypeData   any               `json:"message_type_data,omitempty"` // nil or a non-nil map (which may be {})
	// ErrorMessage and ErrorDetails say why a message failed (null
	// otherwise), with the field names Kapso uses for a failed broadcast
	// recipient: an extension of Kapso's WhatsappMessage.
	ErrorMessage *string        `json:"error_message"`
	ErrorDetails map[string]any `json:"error_details"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
}

// mediaURL is where a message's media can be fetched: Parley's media route
// for media Parley stores (or will store: inbound media is downloaded by the
// fetch_media job), else the external link it was sent from, else nil.
func mediaURL(publicURL string, m *parley.Message) *string {
	if m.MediaPath != nil || (m.Direction == parley.DirectionInbound && m.MediaID != nil) {
		u := publicURL + "/api/v1/whatsapp_messages/" + m.ID + "/media"
		return &u
	}
	return m.MediaURLExternal
}

func (s *service) renderMessage(m *parley.Message) messageJSON {
	errMsg, errDetails := messageError(m)
	var mtd any
	if m.MessageTypeData != nil {
		mtd = m.MessageTypeData
	}
	return messageJSON{ID: m.ID, PhoneNumber: parley.DisplayPhone(m.PhoneNumber), MessageType: m.MessageType, Content: m.Content,
		Direction: m.Direction, Status: m.Status, ProcessingStatus: m.ProcessingStatus, WhatsAppMessageID: m.WhatsAppMessageID,
		Metadata: m.Metadata, MediaURL: mediaURL(s.api.Config.PublicURL, m), MessageTypeData: mtd,
		ErrorMessage: errMsg, ErrorDetails: errDetails, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

// messageError returns why m failed: error_message is the most specific
// text Meta gave (its error_data.details, else its message, else its
// title); error_details holds Meta's code (a string, as in Kapso's
// examples), title, message and details. They come from the last failed
// status recorded (Meta's webhook, or the refusal of the send), falling
// back to the stored columns. Both are nil for a message that never failed.
func messageError(m *parley.Message) (*string, map[string]any) {
	if m.ErrorCode == nil && m.ErrorTitle == nil && m.ErrorMessage == nil {
		return nil, nil
	}
	var e struct {
		Code      *int   `json:"code"`
		Title     string `json:"title"`
		Message   string `json:"message"`
		ErrorData struct {
			Details string `json:"details"`
		} `json:"error_data"`
	}
	for i := len(m.Statuses) - 1; i >= 0; i-- {
		var st struct {
			Status string            `json:"status"`
			Errors []json.RawMessage `json:"errors"`
		}
		if json.Unmarshal(m.Statuses[i], &st) == nil && st.Status == "failed" && len(st.Errors) > 0 {
			_ = json.Unmarshal(st.Errors[0], &e)
			break
		}
	}
	if e.Code == nil {
		e.Code = m.ErrorCode
	}
	if e.Title == "" && m.ErrorTitle != nil {
		e.Title = *m.ErrorTitle
	}
	if e.Message == "" && e.ErrorData.Details == "" && m.ErrorMessage != nil {
		e.Message = *m.ErrorMessage
	}
	d := map[string]any{"error_title": nonEmpty(e.Title), "message": nonEmpty(e.Message), "details": nonEmpty(e.ErrorData.Details)}
	d["error_code"] = nil
	if e.Code != nil {
		d["error_code"] = strconv.Itoa(*e.Code)
	}
	msg := e.ErrorData.Details
	if msg == "" {
		msg = e.Message
	}
	if msg == "" {
		msg = e.Title
	}
	return nonEmpty(msg), d
}

// nonEmpty is s, or nil when s is empty.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ---- webhook event payloads (semantics §2.11, appendix C) ----

func timePtrJSON(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// v2Conversation is the conversation object of v2 payloads.
func v2Conversation(c *parley.Conversation, cfg *parley.WhatsAppConfig) map[string]any {
	meta := c.Metadata
	if meta == nil {
		meta = parley.JSONObject{}
	}
	return map[string]any{
		"id": c.ID, "phone_number": parley.DisplayPhone(c.PhoneNumber), "status": c.Status,
		"last_active_at": rfc(c.LastActiveAt), "created_at": rfc(c.CreatedAt), "updated_at": rfc(c.UpdatedAt),
		"metadata": meta, "phone_number_id": cfg.PhoneNumberID,
		"kapso": map[string]any{
			"contact_name": c.ContactName, "messages_count": c.MessagesCount, "last_message_id": c.LastMessageID,
			"last_message_type": c.LastMessageType, "last_message_timestamp": timePtrJSON(c.LastMessageAt),
			"last_message_text": c.LastMessageText, "last_inbound_at": timePtrJSON(c.LastInboundAt),
			"last_outbound_at": timePtrJSON(c.LastOutboundAt),
		},
	}
}

// v1Conversation is the conversation object of v1 payloads.
func v1Conversation(c *parley.Conversation) map[string]any {
	return map[string]any{
		"id": c.ID, "phone_number": parley.DisplayPhone(c.PhoneNumber), "status": c.Status, "whatsapp_config_id": c.ConfigID,
		"contact_name": c.ContactName, "last_active_at": rfc(c.LastActiveAt), "created_at": rfc(c.CreatedAt), "updated_at": rfc(c.UpdatedAt),
	}
}

func v1Config(cfg *parley.WhatsAppConfig) map[string]any {
	return map[string]any{"id": cfg.ID, "name": cfg.Name, "phone_number_id": cfg.PhoneNumberID, "display_phone_number": cfg.DisplayPhoneNumber}
}

// v2Message is the Meta-style message object with Kapso's "kapso" block.
func (s *service) v2Message(m *parley.Message) map[string]any {
	out := map[string]any{}
	if len(m.MetaPayload) > 0 {
		_ = json.Unmarshal(m.MetaPayload, &out)
		if out == nil {
			out = map[string]any{}
		}
	}
	if m.Direction == parley.DirectionOutbound {
		// The stored payload is the Graph request; keep its type object.
		delete(out, "messaging_product")
		delete(out, "recipient_type")
		if _, ok := out["timestamp"]; !ok {
			at := m.CreatedAt
			if m.SentAt != nil {
				at = *m.SentAt
			}
			out["timestamp"] = strconv.FormatInt(at.Unix(), 10)
		}
		if m.Origin == "cloud_api" {
			out["to"] = m.PhoneNumber
		}
	}
	if m.WhatsAppMessageID != nil {
		out["id"] = *m.WhatsAppMessageID
	} else if _, ok := out["id"]; !ok {
		out["id"] = m.ID
	}
	if _, ok := out["type"]; !ok {
		out["type"] = m.MessageType
	}
	processing := m.ProcessingStatus
	if m.Direction == parley.DirectionOutbound && processing == parley.ProcessingProcessed {
		processing = "completed" // v2 webhooks say "completed" for outbound
	}
	statuses := m.Statuses
	if statuses == nil {
		statuses = []json.RawMessage{}
	}
	k := map[string]any{
		"id": m.ID, "direction": m.Direction, "status": m.Status, "processing_status": processing, "origin": m.Origin,
		"has_media": m.HasMedia(), "content": m.Content, "message_type_data": m.MessageTypeData, "statuses": statuses,
		"whatsapp_conversation_id": m.ConversationID, "phone_number": parley.DisplayPhone(m.PhoneNumber),
	}
	if u := mediaURL(s.api.Config.PublicURL, m); u != nil {
		k["media_url"] = *u
	}
	out["kapso"] = k
	return out
}

// v1Message is the flat message object of v1 payloads.
func (s *service) v1Message(m *parley.Message) map[string]any {
	meta := m.Metadata
	if meta == nil {
		meta = parley.JSONObject{}
	}
	return map[string]any{
		"id": m.ID, "whatsapp_message_id": m.WhatsAppMessageID, "content": m.Content, "message_type": m.MessageType,
		"direction": m.Direction, "status": m.Status, "origin": m.Origin, "has_media": m.HasMedia(), "created_at": rfc(m.CreatedAt),
		"phone_number": parley.DisplayPhone(m.PhoneNumber), "metadata": meta, "media_url": mediaURL(s.api.Config.PublicURL, m),
		"message_type_data": m.MessageTypeData,
	}
}

// messagePayloads returns the v2 and v1 payloads of a message event.
func (s *service) messagePayloads(m *parley.Message, c *parley.Conversation, cfg *parley.WhatsAppConfig, isNew bool) (map[string]any, map[string]any) {
	v2 := map[string]any{"message": s.v2Message(m), "conversation": v2Conversation(c, cfg), "is_new_conversation": isNew,
		"phone_number_id": cfg.PhoneNumberID}
	v1 := map[string]any{"message": s.v1Message(m), "conversation": v1Conversation(c), "whatsapp_config": v1Config(cfg),
		"is_new_conversation": isNew}
	return v2, v1
}

// conversationPayloads returns the v2 and v1 payloads of a conversation event.
func conversationPayloads(c *parley.Conversation, cfg *parley.WhatsAppConfig) (map[string]any, map[string]any) {
	return map[string]any{"conversation": v2Conversation(c, cfg), "phone_number_id": cfg.PhoneNumberID},
		map[string]any{"conversation": v1Conversation(c), "whatsapp_config": v1Config(cfg)}
}
