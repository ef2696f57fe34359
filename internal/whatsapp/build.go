package whatsapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The Build* helpers produce webhook bodies shaped exactly like Meta's, so
// the sandbox simulator (and tests) can push events through the real inbound
// path: build the body, sign it with [Sign], POST it with the
// X-Hub-Signature-256 header. Message and status objects may be given as a
// map, a struct, a json.RawMessage or raw JSON []byte; raw JSON is embedded
// verbatim.

// BuildWebhook wraps one change value in the object/entry/changes envelope.
func BuildWebhook(wabaID, field string, value any) ([]byte, error) {
	return buildEnvelope(wabaID, time.Time{}, field, value)
}

// BuildMessageWebhook builds a "messages" webhook carrying one customer
// message from contact (see [NewTextMessage] for a minimal msg).
func BuildMessageWebhook(wabaID, phoneNumberID, displayPhone string, contact Contact, msg any) ([]byte, error) {
	m, err := rawJSON(msg)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: build message webhook: %w", err)
	}
	v := newMessagingValue(phoneNumberID, displayPhone)
	v.Contacts = []contactOut{{Profile: profileOut{Name: contact.ProfileName}, WaID: contact.WaID}}
	v.Messages = []json.RawMessage{m}
	return buildEnvelope(wabaID, time.Time{}, FieldMessages, v)
}

// BuildEchoWebhook builds a "smb_message_echoes" webhook for a message the
// business sent from the WhatsApp Business app. The echo object must carry
// "from" (business number) and "to" (customer).
func BuildEchoWebhook(wabaID, phoneNumberID, displayPhone string, echo any) ([]byte, error) {
	m, err := rawJSON(echo)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: build echo webhook: %w", err)
	}
	v := newMessagingValue(phoneNumberID, displayPhone)
	v.MessageEchoes = []json.RawMessage{m}
	return buildEnvelope(wabaID, time.Time{}, FieldMessageEchoes, v)
}

// BuildStatusWebhook builds a "messages" webhook carrying one status update
// (see [NewStatus]).
func BuildStatusWebhook(wabaID, phoneNumberID, displayPhone string, status any) ([]byte, error) {
	s, err := rawJSON(status)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: build status webhook: %w", err)
	}
	v := newMessagingValue(phoneNumberID, displayPhone)
	v.Statuses = []json.RawMessage{s}
	return buildEnvelope(wabaID, time.Time{}, FieldMessages, v)
}

// BuildTemplateStatusWebhook builds a "message_template_status_update"
// webhook. u.Time becomes entry.time (now when zero); a numeric TemplateID
// is emitted as an integer, as Meta does. u.Raw is ignored.
func BuildTemplateStatusWebhook(wabaID string, u TemplateStatusUpdate) ([]byte, error) {
	type rejection struct {
		Reason         string `json:"reason"`
		Recommendation string `json:"recommendation,omitempty"`
	}
	v := struct {
		Event         string     `json:"event"`
		TemplateID    any        `json:"message_template_id"`
		Name          string     `json:"message_template_name"`
		Language      string     `json:"message_template_language"`
		Reason        string     `json:"reason"`
		Category      string     `json:"message_template_category,omitempty"`
		RejectionInfo *rejection `json:"rejection_info,omitempty"`
	}{Event: u.Event, TemplateID: u.TemplateID, Name: u.Name, Language: u.Language, Reason: u.Reason, Category: u.Category}
	if n, err := strconv.ParseInt(u.TemplateID, 10, 64); err == nil {
		v.TemplateID = n
	}
	if v.Reason == "" {
		v.Reason = "NONE"
	}
	if u.RejectionReason != "" || u.RejectionRecommendation != "" {
		v.RejectionInfo = &rejection{Reason: u.RejectionReason, Recommendation: u.RejectionRecommendation}
	}
	at := u.Time
	if at.IsZero() {
		at = time.Now()
	}
	return buildEnvelope(wabaID, at, FieldMessageTemplateStatusUpdate, v)
}

// NewTextMessage returns a Meta inbound text message object.
func NewTextMessage(from, id string, at time.Time, body string) map[string]any {
	return map[string]any{
		"from":      from,
		"id":        id,
		"timestamp": unixString(at),
		"type":      "text",
		"text":      map[string]any{"body": body},
	}
}

// NewStatus returns a Meta status object. errs are attached as
// statuses[].errors (use them with status "failed").
func NewStatus(messageID, status, recipientID string, at time.Time, errs ...Error) map[string]any {
	s := map[string]any{
		"id":           messageID,
		"status":       status,
		"timestamp":    unixString(at),
		"recipient_id": recipientID,
	}
	if len(errs) > 0 {
		list := make([]map[string]any, len(errs))
		for i, e := range errs {
			obj := map[string]any{"code": e.Code, "title": e.Title, "message": firstNonEmpty(e.Message, e.Title)}
			if e.Details != "" {
				obj["error_data"] = map[string]any{"details": e.Details}
			}
			if e.Href != "" {
				obj["href"] = e.Href
			}
			list[i] = obj
		}
		s["errors"] = list
	}
	return s
}

type envelopeOut struct {
	Object string     `json:"object"`
	Entry  []entryOut `json:"entry"`
}

type entryOut struct {
	ID      string      `json:"id"`
	Time    int64       `json:"time,omitempty"`
	Changes []changeOut `json:"changes"`
}

type changeOut struct {
	Value any    `json:"value"`
	Field string `json:"field"`
}

type messagingValueOut struct {
	MessagingProduct string            `json:"messaging_product"`
	Metadata         metadataOut       `json:"metadata"`
	Contacts         []contactOut      `json:"contacts,omitempty"`
	Messages         []json.RawMessage `json:"messages,omitempty"`
	MessageEchoes    []json.RawMessage `json:"message_echoes,omitempty"`
	Statuses         []json.RawMessage `json:"statuses,omitempty"`
}

type metadataOut struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

type contactOut struct {
	Profile profileOut `json:"profile"`
	WaID    string     `json:"wa_id"`
}

type profileOut struct {
	Name string `json:"name"`
}

func newMessagingValue(phoneNumberID, displayPhone string) *messagingValueOut {
	return &messagingValueOut{
		MessagingProduct: "whatsapp",
		Metadata:         metadataOut{DisplayPhoneNumber: displayPhone, PhoneNumberID: phoneNumberID},
	}
}

func buildEnvelope(wabaID string, at time.Time, field string, value any) ([]byte, error) {
	e := entryOut{ID: wabaID, Changes: []changeOut{{Value: value, Field: field}}}
	if !at.IsZero() {
		e.Time = at.Unix()
	}
	return json.Marshal(envelopeOut{Object: ObjectWhatsAppBusinessAccount, Entry: []entryOut{e}})
}

// rawJSON marshals v, passing raw JSON through after validating it.
func rawJSON(v any) (json.RawMessage, error) {
	switch t := v.(type) {
	case nil:
		return nil, errors.New("nil object")
	case json.RawMessage:
		return validRaw(t)
	case []byte:
		return validRaw(t)
	}
	return json.Marshal(v)
}

func validRaw(b []byte) (json.RawMessage, error) {
	if !json.Valid(b) {
		return nil, errors.New("invalid JSON")
	}
	return json.RawMessage(b), nil
}

func unixString(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return strconv.FormatInt(t.Unix(), 10)
}
