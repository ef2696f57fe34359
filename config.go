package parley

import "time"

// Config kinds.
const (
	KindProduction = "production"
	KindSandbox    = "sandbox"
)

// WhatsAppConfig is a WhatsApp phone number connected to Parley (Kapso's
// "WhatsApp config"). Secrets are held encrypted and never rendered.
type WhatsAppConfig struct {
	ID                           string     `json:"id"`
	ProjectID                    string     `json:"-"`
	CustomerID                   *string    `json:"customer_id"`
	Name                         string     `json:"name"`
	Kind                         string     `json:"kind"`
	PhoneNumberID                string     `json:"phone_number_id"`
	BusinessAccountID            *string    `json:"business_account_id"`
	DisplayName                  *string    `json:"display_name"`
	DisplayPhoneNumber           *string    `json:"display_phone_number"`
	DisplayPhoneNumberNormalized *string    `json:"display_phone_number_normalized"`
	IsCoexistence                bool       `json:"is_coexistence"`
	InboundProcessingEnabled     bool       `json:"inbound_processing_enabled"`
	CallsEnabled                 bool       `json:"calls_enabled"`
	WebhookVerifiedAt            *time.Time `json:"webhook_verified_at"`
	CreatedAt                    time.Time  `json:"created_at"`
	UpdatedAt                    time.Time  `json:"updated_at"`

	// Encrypted at rest (internal/secrets); never rendered.
	AccessTokenEnc        string  `json:"-"`
	WebhookVerifyTokenEnc string  `json:"-"`
	AppSecretEnc          string  `json:"-"`
	WebhookDestinationURL *string `json:"-"`
}

// IsSandbox reports whether the config talks to the built-in simulator.
func (c *WhatsAppConfig) IsSandbox() bool { return c.Kind == KindSandbox }
