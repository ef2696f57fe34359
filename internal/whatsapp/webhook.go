package whatsapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ObjectWhatsAppBusinessAccount is the only webhook "object" value accepted
// by [ParseWebhook].
const ObjectWhatsAppBusinessAccount = "whatsapp_business_account"

// Webhook fields (change.field values) that [ParseWebhook] normalizes.
// Changes with any other field are still returned, with their verbatim
// [Change.Value] and nothing else filled in.
const (
	FieldMessages                    = "messages"
	FieldMessageEchoes               = "smb_message_echoes"
	FieldMessageTemplateStatusUpdate = "message_template_status_update"
	FieldCalls                       = "calls"
)

// Origin values, matching Kapso's kapso.origin.
const (
	// OriginCloudAPI marks messages exchanged through the Cloud API: every
	// customer message and every message the platform itself sends.
	OriginCloudAPI = "cloud_api"
	// OriginBusinessApp marks echoes of messages the business typed in the
	// WhatsApp Business app (coexistence, field smb_message_echoes).
	OriginBusinessApp = "business_app"
)

// Direction values, matching Kapso's message direction.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
)

// MaxWebhookBytes is the largest webhook body Meta documents (3 MB).
// Handlers should cap request bodies a little above it before parsing.
const MaxWebhookBytes = 3 << 20

// ErrNotWhatsAppWebhook is returned (wrapped) by [ParseWebhook] when the
// body is valid JSON but its "object" is not "whatsapp_business_account".
var ErrNotWhatsAppWebhook = errors.New("whatsapp: webhook object is not whatsapp_business_account")

// Webhook is a parsed Meta webhook POST body.
type Webhook struct {
	// Object is always ObjectWhatsAppBusinessAccount.
	Object string
	// Entries holds one entry per WhatsApp Business Account in the batch.
	Entries []Entry
}

// Entry is one element of the webhook's "entry" array.
type Entry struct {
	// ID is the WhatsApp Business Account ID (entry.id).
	ID string
	// Time is entry.time when present (template status updates carry it).
	Time time.Time
	// Changes lists the entry's changes in payload order.
	Changes []Change
}

// Change is one normalized entry.changes[] element. Which slices are filled
// depends on Field; the rest stay nil.
type Change struct {
	// Field is change.field: "messages", "smb_message_echoes",
	// "message_template_status_update", "calls", ...
	Field string
	// WABAID is the WhatsApp Business Account ID of the enclosing entry.
	WABAID string
	// PhoneNumberID is value.metadata.phone_number_id (empty for
	// account-level fields such as template status updates).
	PhoneNumberID string
	// DisplayPhoneNumber is value.metadata.display_phone_number.
	DisplayPhoneNumber string
	// Contacts is value.contacts: the customer profiles of this change.
	Contacts []Contact
	// Messages holds customer messages (field "messages").
	Messages []InboundMessage
	// Echoes holds messages the business sent from the WhatsApp Business
	// app (field "smb_message_echoes"); see [InboundMessage.IsEcho].
	Echoes []InboundMessage
	// Statuses holds delivery statuses of outbound messages, and call
	// status updates (Type "call") for business-initiated calls.
	Statuses []Status
	// TemplateUpdates holds template review/status events
	// (field "message_template_status_update").
	TemplateUpdates []TemplateStatusUpdate
	// Calls holds calling events (field "calls").
	Calls []Call
	// Errors holds value-level errors (value.errors), which Meta uses for
	// problems not tied to one message.
	Errors []Error
	// Value is the verbatim change.value object, for fields this package
	// does not model.
	Value json.RawMessage
}

// Contact is a customer profile from value.contacts.
type Contact struct {
	// WaID is the customer's WhatsApp ID (phone number without "+").
	WaID string
	// ProfileName is the name the customer set in WhatsApp.
	ProfileName string
}

// Error is a WhatsApp error object as found in webhooks
// (value.errors, messages[].errors, statuses[].errors, calls[].errors).
type Error struct {
	// Code is the WhatsApp error code, e.g. 131047.
	Code int
	// Title is the short error title.
	Title string
	// Message is the error message (often equal to Title).
	Message string
	// Details is error_data.details, the longest explanation Meta gives.
	Details string
	// Href points at Meta's error-code documentation, when present.
	Href string
}

// Changes returns pointers to every change of every entry, in payload order.
func (w *Webhook) Changes() []*Change {
	if w == nil {
		return nil
	}
	var out []*Change
	for i := range w.Entries {
		for j := range w.Entries[i].Changes {
			out = append(out, &w.Entries[i].Changes[j])
		}
	}
	return out
}

// ParseWebhook decodes and normalizes a webhook POST body.
//
// It fails on bodies that are not JSON objects, that are not shaped like a
// Meta webhook envelope, or whose "object" is not
// "whatsapp_business_account" (the error then wraps ErrNotWhatsAppWebhook).
// Unknown fields are ignored and unknown change fields are kept verbatim in
// [Change.Value]. NUL characters (\u0000) and invalid UTF-8, which cannot
// be stored, are read as U+FFFD, in the parsed values and in the Raw copies
// alike. ParseWebhook does not verify the signature: call
// [VerifySignature] on the raw body first.
func ParseWebhook(body []byte) (*Webhook, error) {
	body = storable(body)
	var env struct {
		Object *string `json:"object"`
		Entry  []struct {
			ID      flexString `json:"id"`
			Time    flexString `json:"time"`
			Changes []struct {
				Field string          `json:"field"`
				Value json.RawMessage `json:"value"`
			} `json:"changes"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("whatsapp: parse webhook: %w", err)
	}
	if env.Object == nil {
		return nil, fmt.Errorf("whatsapp: parse webhook: missing object: %w", ErrNotWhatsAppWebhook)
	}
	if *env.Object != ObjectWhatsAppBusinessAccount {
		return nil, fmt.Errorf("whatsapp: parse webhook: object %q: %w", *env.Object, ErrNotWhatsAppWebhook)
	}
	w := &Webhook{Object: *env.Object, Entries: make([]Entry, 0, len(env.Entry))}
	for i, e := range env.Entry {
		entry := Entry{ID: string(e.ID), Time: unixTime(e.Time), Changes: make([]Change, 0, len(e.Changes))}
		for j, c := range e.Changes {
			ch, err := parseChange(entry, c.Field, c.Value)
			if err != nil {
				return nil, fmt.Errorf("whatsapp: parse webhook: entry[%d].changes[%d] (%s): %w", i, j, c.Field, err)
			}
			entry.Changes = append(entry.Changes, ch)
		}
		w.Entries = append(w.Entries, entry)
	}
	return w, nil
}

// storable returns body unchanged unless it holds text no store can keep:
// then a copy where each \u0000 escape (a NUL character, which PostgreSQL
// text cannot hold) reads \ufffd and invalid UTF-8 is replaced by U+FFFD.
// A customer can put either in a message or a profile name, and Meta would
// redeliver a webhook that fails to store for days, with every other
// message batched with it. The replacement keeps escapes the same length.
func storable(body []byte) []byte {
	nul := bytes.Contains(body, []byte(`\u0000`))
	valid := utf8.Valid(body)
	if !nul && valid {
		return body
	}
	var out []byte
	if valid {
		out = bytes.Clone(body)
	} else {
		out = bytes.ToValidUTF8(body, []byte("\uFFFD"))
	}
	if nul {
		// Backslashes only occur in JSON strings, each starting an escape:
		// skipping the escaped character keeps "\\u0000" (a backslash and
		// the text u0000) as it is.
		for i := 0; i < len(out)-1; i++ {
			if out[i] != '\\' {
				continue
			}
			if i+6 <= len(out) && string(out[i+1:i+6]) == "u0000" {
				copy(out[i+1:i+6], "ufffd")
			}
			i++
		}
	}
	return out
}

// wireValue is the subset of change.value shared by messaging fields.
type wireValue struct {
	Metadata struct {
		DisplayPhoneNumber flexString `json:"display_phone_number"`
		PhoneNumberID      flexString `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []struct {
		WaID    flexString `json:"wa_id"`
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
	} `json:"contacts"`
	Messages      []json.RawMessage `json:"messages"`
	MessageEchoes []json.RawMessage `json:"message_echoes"`
	Statuses      []json.RawMessage `json:"statuses"`
	Calls         []json.RawMessage `json:"calls"`
	Errors        []wireError       `json:"errors"`
}

func parseChange(entry Entry, field string, value json.RawMessage) (Change, error) {
	ch := Change{Field: field, WABAID: entry.ID, Value: value}
	if len(value) == 0 || string(value) == "null" {
		return ch, nil
	}
	if field == FieldMessageTemplateStatusUpdate {
		u, err := parseTemplateStatusUpdate(value, entry.Time)
		if err != nil {
			return ch, err
		}
		ch.TemplateUpdates = []TemplateStatusUpdate{u}
		return ch, nil
	}

	var v wireValue
	if err := json.Unmarshal(value, &v); err != nil {
		return ch, err
	}
	ch.PhoneNumberID = string(v.Metadata.PhoneNumberID)
	ch.DisplayPhoneNumber = string(v.Metadata.DisplayPhoneNumber)
	names := make(map[string]string, len(v.Contacts))
	for _, c := range v.Contacts {
		ch.Contacts = append(ch.Contacts, Contact{WaID: string(c.WaID), ProfileName: c.Profile.Name})
		names[string(c.WaID)] = c.Profile.Name
	}
	profile := func(waID string) string {
		if n, ok := names[waID]; ok {
			return n
		}
		if len(ch.Contacts) == 1 { // contact keyed by username/BSUID only
			return ch.Contacts[0].ProfileName
		}
		return ""
	}
	for i, raw := range v.Messages {
		m, err := parseMessage(raw, false)
		if err != nil {
			return ch, fmt.Errorf("messages[%d]: %w", i, err)
		}
		m.ProfileName = profile(m.From)
		ch.Messages = append(ch.Messages, m)
	}
	for i, raw := range v.MessageEchoes {
		m, err := parseMessage(raw, true)
		if err != nil {
			return ch, fmt.Errorf("message_echoes[%d]: %w", i, err)
		}
		m.ProfileName = profile(m.To)
		ch.Echoes = append(ch.Echoes, m)
	}
	for i, raw := range v.Statuses {
		s, err := parseStatus(raw)
		if err != nil {
			return ch, fmt.Errorf("statuses[%d]: %w", i, err)
		}
		ch.Statuses = append(ch.Statuses, s)
	}
	for i, raw := range v.Calls {
		c, err := parseCall(raw)
		if err != nil {
			return ch, fmt.Errorf("calls[%d]: %w", i, err)
		}
		ch.Calls = append(ch.Calls, c)
	}
	ch.Errors = convertErrors(v.Errors)
	return ch, nil
}

// wireError is the webhook error object.
type wireError struct {
	Code      flexInt   `json:"code"`
	Title     string    `json:"title"`
	Message   string    `json:"message"`
	Href      string    `json:"href"`
	ErrorData errorData `json:"error_data"`
}

// errorData is error_data. Graph usually sends an object, occasionally a
// plain string; both are accepted and anything else is ignored.
type errorData struct {
	MessagingProduct string
	Details          string
}

func (d *errorData) UnmarshalJSON(b []byte) error {
	var obj struct {
		MessagingProduct string `json:"messaging_product"`
		Details          string `json:"details"`
	}
	if err := json.Unmarshal(b, &obj); err == nil {
		d.MessagingProduct, d.Details = obj.MessagingProduct, obj.Details
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		d.Details = s
	}
	return nil
}

func convertErrors(in []wireError) []Error {
	if len(in) == 0 {
		return nil
	}
	out := make([]Error, len(in))
	for i, e := range in {
		out[i] = Error{Code: int(e.Code), Title: e.Title, Message: e.Message, Details: e.ErrorData.Details, Href: e.Href}
	}
	return out
}
