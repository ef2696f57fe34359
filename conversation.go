package parley

import "time"

// Conversation statuses.
const (
	ConversationActive = "active"
	ConversationEnded  = "ended"
)

// Conversation is a thread between one WhatsApp config and one customer
// phone number (Kapso's "WhatsApp conversation"). At most one conversation
// per (config, phone) is active; a message with none active opens a new one.
type Conversation struct {
	ID        string
	ProjectID string
	ConfigID  string
	ContactID *string
	// PhoneNumber is the customer's number, digits only (the wa_id form).
	PhoneNumber string
	Status      string
	Metadata    JSONObject
	// ContactName is the contact's WhatsApp profile name, when known.
	ContactName   *string
	MessagesCount int
	// LastSeq is the last per-conversation sequence number handed to a
	// message; it orders message events for webhooks.
	LastSeq         int64
	LastMessageID   *string
	LastMessageType *string
	LastMessageText *string
	LastMessageAt   *time.Time
	LastInboundAt   *time.Time
	LastOutboundAt  *time.Time
	LastActiveAt    time.Time
	EndedAt         *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// DisplayPhone renders a stored phone number the way Kapso's REST and webhook
// examples show it: "+" followed by the digits.
func DisplayPhone(digits string) string {
	if digits == "" {
		return ""
	}
	return "+" + digits
}
