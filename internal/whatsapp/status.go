package whatsapp

import (
	"encoding/json"
	"strings"
	"time"
)

// Meta (and Kapso) message status values.
const (
	StatusPending   = "pending"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusPlayed    = "played"
	StatusFailed    = "failed"
	StatusDeleted   = "deleted"
)

// Status is a delivery status of an outbound message (statuses[] in a
// "messages" change). Call status updates of business-initiated calls use
// the same shape with Type "call" and a wacid.… ID.
type Status struct {
	// ID is the wamid of the message (or wacid of the call).
	ID string
	// Status is Meta's status: sent, delivered, read, played, failed,
	// deleted, … (for calls: RINGING, ACCEPTED, REJECTED, …).
	Status string
	// Timestamp is when the status happened, in UTC.
	Timestamp time.Time
	// RecipientID is the customer's wa_id (or group ID).
	RecipientID string
	// RecipientType is "group" for group messages, empty otherwise.
	RecipientType string
	// Type is "call" for call statuses, empty for message statuses.
	Type string
	// BizOpaqueCallbackData echoes the value given when sending.
	BizOpaqueCallbackData string
	// Conversation is the (pre-v24) conversation object, when present.
	Conversation *Conversation
	// Pricing is the pricing object, when present.
	Pricing *Pricing
	// Errors explains failures (status "failed").
	Errors []Error
	// Raw is the Meta status object, verbatim.
	Raw json.RawMessage
}

// Conversation is a status' conversation object.
type Conversation struct {
	// ID is Meta's conversation ID.
	ID string
	// ExpiresAt is expiration_timestamp, when given.
	ExpiresAt time.Time
	// OriginType is origin.type (marketing, utility, service, …).
	OriginType string
}

// Pricing is a status' pricing object.
type Pricing struct {
	// Billable reports whether the message is charged.
	Billable bool
	// PricingModel is "CBP" or "PMP".
	PricingModel string
	// Type is the PMP pricing type (regular, free_customer_service, …).
	Type string
	// Category is the pricing category (marketing, utility, service, …).
	Category string
}

type wireStatus struct {
	ID                    string     `json:"id"`
	Status                string     `json:"status"`
	Timestamp             flexString `json:"timestamp"`
	RecipientID           flexString `json:"recipient_id"`
	RecipientType         string     `json:"recipient_type"`
	Type                  string     `json:"type"`
	BizOpaqueCallbackData string     `json:"biz_opaque_callback_data"`
	Conversation          *struct {
		ID                  string     `json:"id"`
		ExpirationTimestamp flexString `json:"expiration_timestamp"`
		Origin              struct {
			Type string `json:"type"`
		} `json:"origin"`
	} `json:"conversation"`
	Pricing *struct {
		Billable     bool   `json:"billable"`
		PricingModel string `json:"pricing_model"`
		Type         string `json:"type"`
		Category     string `json:"category"`
	} `json:"pricing"`
	Errors []wireError `json:"errors"`
}

func parseStatus(raw json.RawMessage) (Status, error) {
	var w wireStatus
	if err := json.Unmarshal(raw, &w); err != nil {
		return Status{}, err
	}
	s := Status{
		ID:                    w.ID,
		Status:                w.Status,
		Timestamp:             unixTime(w.Timestamp),
		RecipientID:           string(w.RecipientID),
		RecipientType:         w.RecipientType,
		Type:                  w.Type,
		BizOpaqueCallbackData: w.BizOpaqueCallbackData,
		Errors:                convertErrors(w.Errors),
		Raw:                   raw,
	}
	if c := w.Conversation; c != nil {
		s.Conversation = &Conversation{ID: c.ID, ExpiresAt: unixTime(c.ExpirationTimestamp), OriginType: c.Origin.Type}
	}
	if p := w.Pricing; p != nil {
		s.Pricing = &Pricing{Billable: p.Billable, PricingModel: p.PricingModel, Type: p.Type, Category: p.Category}
	}
	return s, nil
}

// StatusRank orders message statuses so callers can apply "the most
// advanced status wins" when webhooks arrive late, twice or out of order:
// update a stored status only when StatusRank(new) > StatusRank(stored).
//
//	unknown/"" 0 < pending 1 < sent 2 < delivered 3 < failed 4 < read 5 < played 6 < deleted 7
//
// failed is terminal with respect to sent and delivered: a late "sent" or
// "delivered" never resurrects a failed message. A "read" (or "played")
// receipt, however, proves the customer saw the message, so it outranks
// failed; Meta does not normally emit both. Comparison is case-insensitive.
func StatusRank(s string) int {
	switch strings.ToLower(s) {
	case StatusPending:
		return 1
	case StatusSent:
		return 2
	case StatusDelivered:
		return 3
	case StatusFailed:
		return 4
	case StatusRead:
		return 5
	case StatusPlayed:
		return 6
	case StatusDeleted:
		return 7
	default:
		return 0
	}
}
