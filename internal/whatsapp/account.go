package whatsapp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// phoneNumberFields is the field list GetPhoneNumber requests.
const phoneNumberFields = "id,display_phone_number,verified_name,quality_rating,name_status,code_verification_status"

// PhoneNumber is a business phone number node.
type PhoneNumber struct {
	// ID is the phone number ID.
	ID string `json:"id"`
	// DisplayPhoneNumber is the formatted number, e.g. "+1 555-078-3881".
	DisplayPhoneNumber string `json:"display_phone_number"`
	// VerifiedName is the approved display name.
	VerifiedName string `json:"verified_name"`
	// QualityRating is GREEN, YELLOW, RED or UNKNOWN.
	QualityRating string `json:"quality_rating"`
	// NameStatus is the display-name review status.
	NameStatus string `json:"name_status"`
	// CodeVerificationStatus is VERIFIED, NOT_VERIFIED or EXPIRED.
	CodeVerificationStatus string `json:"code_verification_status"`
	// Status is the connection status, when requested.
	Status string `json:"status,omitempty"`
	// MessagingLimitTier is the messaging tier, when requested.
	MessagingLimitTier string `json:"messaging_limit_tier,omitempty"`
	// Raw is the response body, verbatim.
	Raw json.RawMessage `json:"-"`
}

// HealthStatus is the health_status of a Graph node (phone number, WABA,
// template, …).
type HealthStatus struct {
	// ID is the node queried.
	ID string
	// CanSendMessage is the overall AVAILABLE, LIMITED or BLOCKED.
	CanSendMessage string
	// Entities details the status of each entity in the sending chain.
	Entities []HealthEntity
}

// HealthEntity is one entity of a HealthStatus.
type HealthEntity struct {
	// EntityType is PHONE_NUMBER, WABA, BUSINESS, APP, MESSAGE_TEMPLATE, ….
	EntityType string `json:"entity_type"`
	// ID is the entity's ID.
	ID string `json:"id"`
	// CanSendMessage is AVAILABLE, LIMITED or BLOCKED.
	CanSendMessage string `json:"can_send_message"`
	// CanReceiveCallSIP is the SIP calling availability, when reported.
	CanReceiveCallSIP string `json:"can_receive_call_sip,omitempty"`
	// AdditionalInfo explains LIMITED states.
	AdditionalInfo []string `json:"additional_info,omitempty"`
	// Errors explains BLOCKED states.
	Errors []HealthError `json:"errors,omitempty"`
}

// HealthError is one reason an entity is blocked.
type HealthError struct {
	// ErrorCode is Meta's error code, e.g. 141002.
	ErrorCode int `json:"error_code"`
	// ErrorDescription describes the problem.
	ErrorDescription string `json:"error_description"`
	// PossibleSolution suggests a fix.
	PossibleSolution string `json:"possible_solution"`
}

// SubscribedApp is an app subscribed to a WABA's webhooks.
type SubscribedApp struct {
	// ID is the app ID.
	ID string `json:"id"`
	// Name is the app name.
	Name string `json:"name"`
	// Link is the app's link.
	Link string `json:"link"`
}

// GetPhoneNumber fetches a business phone number (ID, display number,
// verified name, quality rating, name status, code verification status).
func (c *Client) GetPhoneNumber(ctx context.Context, token, phoneNumberID string) (*PhoneNumber, error) {
	if err := requireIDs("phone number ID", phoneNumberID); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	err := c.doJSON(ctx, request{
		method: http.MethodGet, path: pathOf(phoneNumberID),
		query: url.Values{"fields": {phoneNumberFields}}, token: token,
	}, &raw)
	if err != nil {
		return nil, err
	}
	var p PhoneNumber
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	p.Raw = raw
	return &p, nil
}

// HealthStatus fetches ?fields=health_status of nodeID (a phone number,
// WABA or template ID).
func (c *Client) HealthStatus(ctx context.Context, token, nodeID string) (*HealthStatus, error) {
	if err := requireIDs("node ID", nodeID); err != nil {
		return nil, err
	}
	var res struct {
		ID           flexString `json:"id"`
		HealthStatus struct {
			CanSendMessage string         `json:"can_send_message"`
			Entities       []HealthEntity `json:"entities"`
		} `json:"health_status"`
	}
	err := c.doJSON(ctx, request{
		method: http.MethodGet, path: pathOf(nodeID),
		query: url.Values{"fields": {"health_status"}}, token: token,
	}, &res)
	if err != nil {
		return nil, err
	}
	return &HealthStatus{ID: string(res.ID), CanSendMessage: res.HealthStatus.CanSendMessage, Entities: res.HealthStatus.Entities}, nil
}

// SubscribedApps lists the apps subscribed to the WABA's webhooks.
func (c *Client) SubscribedApps(ctx context.Context, token, wabaID string) ([]SubscribedApp, error) {
	if err := requireIDs("WABA ID", wabaID); err != nil {
		return nil, err
	}
	var res struct {
		Data []struct {
			App SubscribedApp `json:"whatsapp_business_api_data"`
		} `json:"data"`
	}
	err := c.doJSON(ctx, request{method: http.MethodGet, path: pathOf(wabaID, "subscribed_apps"), token: token}, &res)
	if err != nil {
		return nil, err
	}
	apps := make([]SubscribedApp, 0, len(res.Data))
	for _, d := range res.Data {
		apps = append(apps, d.App)
	}
	return apps, nil
}

// Subscribe subscribes the token's app to the WABA's webhooks.
func (c *Client) Subscribe(ctx context.Context, token, wabaID string) error {
	if err := requireIDs("WABA ID", wabaID); err != nil {
		return err
	}
	return c.doSuccess(ctx, request{method: http.MethodPost, path: pathOf(wabaID, "subscribed_apps"), token: token})
}

// Unsubscribe removes the token's app from the WABA's webhooks.
func (c *Client) Unsubscribe(ctx context.Context, token, wabaID string) error {
	if err := requireIDs("WABA ID", wabaID); err != nil {
		return err
	}
	return c.doSuccess(ctx, request{method: http.MethodDelete, path: pathOf(wabaID, "subscribed_apps"), token: token})
}
