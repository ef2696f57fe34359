package parley

import (
	"encoding/json"
	"time"
)

// Message directions.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
)

// Message statuses. Outbound messages move pending → sent → delivered →
// read (or failed); inbound messages are received, then read once marked.
const (
	MessagePending   = "pending"
	MessageSent      = "sent"
	MessageDelivered = "delivered"
	MessageRead      = "read"
	MessageFailed    = "failed"
	MessageReceived  = "received"
)

// Message processing statuses of the REST record (Kapso's enum).
const (
	ProcessingPending   = "pending"
	ProcessingProcessed = "processed"
)

// Message is one WhatsApp message of a conversation, inbound or outbound
// (Kapso's "WhatsApp message").
type Message struct {
	ID             string
	ProjectID      string
	ConversationID string
	ConfigID       string
	// PhoneNumber is the customer's number, digits only.
	PhoneNumber      string
	Direction        string
	Origin           string
	MessageType      string
	Content          *string
	Status           string
	ProcessingStatus string
	// WhatsAppMessageID is Meta's wamid; nil until Meta accepted the send.
	WhatsAppMessageID *string
	Seq               int64
	Metadata          JSONObject
	// MessageTypeData is Kapso's type-specific block; nil renders as null.
	MessageTypeData map[string]any
	// MetaPayload is the Meta message object (inbound) or the Graph request
	// body (outbound).
	MetaPayload json.RawMessage
	// Statuses is the chronological list of raw Meta status objects.
	Statuses         []json.RawMessage
	ReplyToID        *string
	MediaID          *string
	MediaMimeType    *string
	MediaFilename    *string
	MediaSHA256      *string
	MediaSize        *int64
	MediaPath        *string
	MediaURLExternal *string
	ErrorCode        *int
	ErrorTitle       *string
	ErrorMessage     *string
	SentAt           *time.Time
	DeliveredAt      *time.Time
	ReadAt           *time.Time
	FailedAt         *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// HasMedia reports whether the message carries a media attachment.
func (m *Message) HasMedia() bool {
	return m.MediaID != nil || m.MediaPath != nil || m.MediaURLExternal != nil
}
