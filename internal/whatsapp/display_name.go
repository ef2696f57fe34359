package whatsapp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// Changing a business phone number's display name, as Meta documents it
// (WhatsApp Business Platform > Display names, "Update display name via
// API"; developers.facebook.com/documentation/business-messaging/whatsapp/display-names/):
//
//	POST /{phone-number-id}?new_display_name=Lucky%20Shrub   → {"success": true}
//
// The new name then goes through display name verification; its progress
// is read from the phone number node:
//
//	GET /{phone-number-id}?fields=new_display_name,new_name_status
//	→ {"new_display_name": "New Lucky Shrub", "new_name_status": "PENDING_REVIEW", "id": "…"}
//
// The name_status values documented for the node are APPROVED,
// AVAILABLE_WITHOUT_REVIEW, DECLINED, EXPIRED, PENDING_REVIEW and NONE.
// Once approved, the name becomes the number's verified_name, which is
// requested as well.

// displayNameFields is the field list DisplayNameStatus requests.
const displayNameFields = "id,new_display_name,new_name_status,verified_name,name_status"

// DisplayNameStatus is the display-name part of a phone number node.
type DisplayNameStatus struct {
	// ID is the phone number ID.
	ID string `json:"id"`
	// NewDisplayName is the name submitted for review, if any.
	NewDisplayName string `json:"new_display_name"`
	// NewNameStatus is the review status of NewDisplayName
	// (PENDING_REVIEW, APPROVED, AVAILABLE_WITHOUT_REVIEW, DECLINED,
	// EXPIRED, NONE, …).
	NewNameStatus string `json:"new_name_status"`
	// VerifiedName is the number's current display name.
	VerifiedName string `json:"verified_name"`
	// NameStatus is the review status of VerifiedName.
	NameStatus string `json:"name_status"`
	// Raw is the response body, verbatim.
	Raw json.RawMessage `json:"-"`
}

// RequestDisplayNameChange submits name as the phone number's new display
// name (POST /{phone-number-id}?new_display_name=…); Meta then reviews it.
func (c *Client) RequestDisplayNameChange(ctx context.Context, token, phoneNumberID, name string) error {
	if err := requireIDs("phone number ID", phoneNumberID, "display name", name); err != nil {
		return err
	}
	return c.doSuccess(ctx, request{
		method: http.MethodPost, path: pathOf(phoneNumberID),
		query: url.Values{"new_display_name": {name}}, token: token,
	})
}

// DisplayNameStatus reads the review status of the phone number's display
// name change (GET /{phone-number-id}?fields=new_display_name,new_name_status,…).
func (c *Client) DisplayNameStatus(ctx context.Context, token, phoneNumberID string) (*DisplayNameStatus, error) {
	if err := requireIDs("phone number ID", phoneNumberID); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	err := c.doJSON(ctx, request{
		method: http.MethodGet, path: pathOf(phoneNumberID),
		query: url.Values{"fields": {displayNameFields}}, token: token,
	}, &raw)
	if err != nil {
		return nil, err
	}
	var st DisplayNameStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	st.Raw = raw
	return &st, nil
}
