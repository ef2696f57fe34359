package whatsapp

import (
	"context"
	"net/http"
)

// SendResponse is Meta's answer to an accepted send. Acceptance is not
// delivery: delivery arrives later as status webhooks.
type SendResponse struct {
	// MessagingProduct is always "whatsapp".
	MessagingProduct string `json:"messaging_product"`
	// Contacts maps the "to" input to the recipient's wa_id.
	Contacts []SendContact `json:"contacts"`
	// Messages holds the new message's ID.
	Messages []SentMessage `json:"messages"`
}

// SendContact is one element of SendResponse.Contacts.
type SendContact struct {
	// Input is the "to" value of the request.
	Input string `json:"input"`
	// WaID is the recipient's WhatsApp ID.
	WaID string `json:"wa_id"`
}

// SentMessage is one element of SendResponse.Messages.
type SentMessage struct {
	// ID is the new message's wamid.
	ID string `json:"id"`
	// MessageStatus is set for template sends ("accepted", "held_for_quality_assessment", "paused").
	MessageStatus string `json:"message_status,omitempty"`
}

// MessageID returns the wamid of the first sent message, or "".
func (r *SendResponse) MessageID() string {
	if r == nil || len(r.Messages) == 0 {
		return ""
	}
	return r.Messages[0].ID
}

// SendMessage posts body (a Meta send-message request: a map, a struct, a
// json.RawMessage or raw JSON []byte) to /{phoneNumberID}/messages. It waits
// for the phone number's rate-limit token first and retries transient
// failures. Meta rejections come back as *GraphError.
func (c *Client) SendMessage(ctx context.Context, token, phoneNumberID string, body any) (*SendResponse, error) {
	if err := requireIDs("phone number ID", phoneNumberID); err != nil {
		return nil, err
	}
	b, err := jsonBody(body)
	if err != nil {
		return nil, err
	}
	var res SendResponse
	err = c.doJSON(ctx, request{
		method: http.MethodPost, path: pathOf(phoneNumberID, "messages"),
		body: b, token: token, pace: phoneNumberID,
	}, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// MarkRead marks an inbound message (and the earlier ones in the thread) as
// read; with typing set it also shows a typing indicator, which WhatsApp
// dismisses on the next reply or after 25 seconds.
func (c *Client) MarkRead(ctx context.Context, token, phoneNumberID, messageID string, typing bool) error {
	if err := requireIDs("phone number ID", phoneNumberID, "message ID", messageID); err != nil {
		return err
	}
	type typingIndicator struct {
		Type string `json:"type"`
	}
	payload := struct {
		MessagingProduct string           `json:"messaging_product"`
		Status           string           `json:"status"`
		MessageID        string           `json:"message_id"`
		TypingIndicator  *typingIndicator `json:"typing_indicator,omitempty"`
	}{MessagingProduct: "whatsapp", Status: StatusRead, MessageID: messageID}
	if typing {
		payload.TypingIndicator = &typingIndicator{Type: "text"}
	}
	b, err := jsonBody(payload)
	if err != nil {
		return err
	}
	return c.doSuccess(ctx, request{
		method: http.MethodPost, path: pathOf(phoneNumberID, "messages"), body: b, token: token,
	})
}
