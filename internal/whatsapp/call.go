package whatsapp

import (
	"encoding/json"
	"time"
)

// Call is one element of a "calls" webhook (WhatsApp Business Calling API).
type Call struct {
	// ID is the WhatsApp call ID (wacid.…).
	ID string
	// From is the caller (customer wa_id or business number).
	From string
	// To is the callee.
	To string
	// Event is "connect" or "terminate".
	Event string
	// Status is the final status on terminate ("COMPLETED", "FAILED").
	Status string
	// Direction is "USER_INITIATED" or "BUSINESS_INITIATED".
	Direction string
	// Timestamp is when the event happened.
	Timestamp time.Time
	// StartTime is when the call connected (terminate events).
	StartTime time.Time
	// EndTime is when the call ended (terminate events).
	EndTime time.Time
	// Duration is the call length (terminate events).
	Duration time.Duration
	// SDPType is session.sdp_type ("offer"/"answer") on connect events.
	SDPType string
	// SDP is session.sdp on connect events.
	SDP string
	// BizOpaqueCallbackData echoes the value given when accepting the call.
	BizOpaqueCallbackData string
	// Errors holds calls[].errors, when present.
	Errors []Error
	// Raw is the Meta call object, verbatim.
	Raw json.RawMessage
}

func parseCall(raw json.RawMessage) (Call, error) {
	var w struct {
		ID        string     `json:"id"`
		From      flexString `json:"from"`
		To        flexString `json:"to"`
		Event     string     `json:"event"`
		Status    flexFirst  `json:"status"`
		Direction string     `json:"direction"`
		Timestamp flexString `json:"timestamp"`
		StartTime flexString `json:"start_time"`
		EndTime   flexString `json:"end_time"`
		Duration  flexInt    `json:"duration"`
		Session   *struct {
			SDPType string `json:"sdp_type"`
			SDP     string `json:"sdp"`
		} `json:"session"`
		BizOpaqueCallbackData string      `json:"biz_opaque_callback_data"`
		Errors                []wireError `json:"errors"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return Call{}, err
	}
	c := Call{
		ID: w.ID, From: string(w.From), To: string(w.To), Event: w.Event,
		Status: string(w.Status), Direction: w.Direction,
		Timestamp: unixTime(w.Timestamp), StartTime: unixTime(w.StartTime), EndTime: unixTime(w.EndTime),
		BizOpaqueCallbackData: w.BizOpaqueCallbackData,
		Errors:                convertErrors(w.Errors),
		Raw:                   raw,
	}
	if w.Duration > 0 && int64(w.Duration) < int64(maxUnixSeconds) {
		c.Duration = time.Duration(w.Duration) * time.Second
	}
	if s := w.Session; s != nil {
		c.SDPType, c.SDP = s.SDPType, s.SDP
	}
	return c, nil
}
