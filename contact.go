package parley

import "time"

// Contact is a WhatsApp user a project has talked to (Kapso's "WhatsApp
// contact"), unique per project by wa_id.
type Contact struct {
	ID        string `json:"id"`
	ProjectID string `json:"-"`
	// WaID is the normalized phone number (digits only).
	WaID string `json:"wa_id"`
	// ProfileName is the WhatsApp profile name; null until known.
	ProfileName *string `json:"profile_name"`
	// CustomerID is null for sandbox and project-level contacts.
	CustomerID *string    `json:"customer_id"`
	Metadata   JSONObject `json:"metadata"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// ContactNote is a free-text note a project keeps about a contact.
type ContactNote struct {
	ID        string     `json:"id"`
	ProjectID string     `json:"-"`
	ContactID string     `json:"-"`
	Name      *string    `json:"name"`
	Content   string     `json:"content"`
	Metadata  JSONObject `json:"metadata"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// ConversationAssignment assigns a conversation to a project user. At most
// one assignment of a conversation is active; inactive ones are history.
type ConversationAssignment struct {
	ID             string  `json:"id"`
	ProjectID      string  `json:"-"`
	ConversationID string  `json:"-"`
	UserID         string  `json:"user_id"`
	Active         bool    `json:"active"`
	Notes          *string `json:"notes"`
	// CreatedByUserID is null when the assignment was made with an API key.
	CreatedByUserID *string   `json:"created_by_user_id"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"-"`
}

// Call directions as Kapso renders them.
const (
	CallInbound  = "inbound"
	CallOutbound = "outbound"
)

// Call is a WhatsApp voice call recorded from Meta's "calls" webhooks.
// Voice agents are out of Parley's scope, so VoiceAgentID and
// VoiceAgentName are always null.
type Call struct {
	ID                       string     `json:"id"`
	ProjectID                string     `json:"project_id"`
	WhatsAppConfigID         string     `json:"whatsapp_config_id"`
	ConfigDisplayName        string     `json:"config_display_name,omitempty"`
	ConfigDisplayPhoneNumber string     `json:"config_display_phone_number,omitempty"`
	VoiceAgentID             *string    `json:"voice_agent_id"`
	VoiceAgentName           *string    `json:"voice_agent_name"`
	CallID                   string     `json:"call_id"`
	Direction                string     `json:"direction,omitempty"`
	Status                   string     `json:"status,omitempty"`
	DurationSeconds          *int       `json:"duration_seconds"`
	StartedAt                *time.Time `json:"started_at"`
	EndedAt                  *time.Time `json:"ended_at"`
	SessionStartedAt         *time.Time `json:"session_started_at"`
	UserWaID                 string     `json:"user_wa_id,omitempty"`
	ContactID                *string    `json:"whatsapp_contact_id"`
	ConversationID           *string    `json:"whatsapp_conversation_id"`
	CreatedAt                time.Time  `json:"created_at"`
	UpdatedAt                time.Time  `json:"updated_at"`
}

// Call permission statuses.
const (
	CallPermissionAccepted = "accepted"
	CallPermissionRejected = "rejected"
)

// CallPermission is a contact's answer to a config's request for permission
// to call them (Meta's call_permission_reply).
type CallPermission struct {
	ID                 string     `json:"id"`
	ProjectID          string     `json:"-"`
	ContactID          string     `json:"whatsapp_contact_id"`
	WhatsAppConfigID   string     `json:"whatsapp_config_id"`
	ConfigDisplayName  string     `json:"config_display_name,omitempty"`
	Status             string     `json:"status"`
	Source             *string    `json:"source"`
	ExpiresAt          *time.Time `json:"expires_at"`
	LastEventMessageID *string    `json:"last_event_message_id"`
	LastEventAt        *time.Time `json:"last_event_at"`
	// Allowed is computed: accepted and not expired at render time.
	Allowed   bool      `json:"allowed"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}
