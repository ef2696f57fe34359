package parley

import (
	"encoding/json"
	"time"
)

// Template statuses (Kapso's WhatsappTemplate.status enum).
const (
	TemplateDraft     = "draft"
	TemplateSubmitted = "submitted"
	TemplateApproved  = "approved"
	TemplateRejected  = "rejected"
	TemplateDisabled  = "disabled"
	TemplateRemoved   = "removed"
)

// Template categories, as Meta spells them.
const (
	CategoryMarketing      = "MARKETING"
	CategoryUtility        = "UTILITY"
	CategoryAuthentication = "AUTHENTICATION"
)

// Template parameter formats.
const (
	ParamsPositional = "POSITIONAL"
	ParamsNamed      = "NAMED"
)

// Template is a WhatsApp message template (Kapso's WhatsappTemplate). A
// template belongs to one WhatsApp Business Account and is usable from the
// configs listed in WhatsAppConfigIDs.
type Template struct {
	ID                string          `json:"id"`
	ProjectID         string          `json:"-"`
	Name              string          `json:"name"`
	LanguageCode      string          `json:"language_code"`
	Category          string          `json:"category"`
	Status            string          `json:"status"`
	Content           string          `json:"content"`
	ParameterCount    int             `json:"parameter_count"`
	ParameterFormat   string          `json:"parameter_format"`
	BusinessAccountID *string         `json:"business_account_id"`
	WhatsAppConfigIDs []string        `json:"whatsapp_config_ids"`
	Components        json.RawMessage `json:"components"`
	Metadata          JSONObject      `json:"metadata"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`

	// Meta's side of the template; rendered inside metadata, not at the root,
	// because Kapso's schema has no such properties.
	MetaTemplateID *string `json:"-"`
	MetaStatus     *string `json:"-"`
	RejectedReason *string `json:"-"`
}

// MarshalJSON renders the template with Meta's id, status and rejection
// reason folded into metadata, and never a null array.
func (t *Template) MarshalJSON() ([]byte, error) {
	type plain Template
	out := plain(*t)
	meta := JSONObject{}
	for k, v := range t.Metadata {
		meta[k] = v
	}
	if t.MetaTemplateID != nil {
		meta["meta_template_id"] = *t.MetaTemplateID
	}
	if t.MetaStatus != nil {
		meta["meta_status"] = *t.MetaStatus
	}
	if t.RejectedReason != nil {
		meta["rejected_reason"] = *t.RejectedReason
	}
	out.Metadata = meta
	if out.WhatsAppConfigIDs == nil {
		out.WhatsAppConfigIDs = []string{}
	}
	if len(out.Components) == 0 {
		out.Components = json.RawMessage("[]")
	}
	return json.Marshal(out)
}

// Template sync run statuses.
const (
	SyncQueued    = "queued"
	SyncRunning   = "running"
	SyncSucceeded = "succeeded"
	SyncFailed    = "failed"
)

// SyncCounts are the counters of a template sync.
type SyncCounts struct {
	Synced  int `json:"templates_synced"`
	Created int `json:"templates_created"`
	Updated int `json:"templates_updated"`
	Removed int `json:"templates_removed"`
}

// TemplateSyncRun is one import of a WABA's templates from Meta (Kapso's
// WhatsappTemplateSyncRun).
type TemplateSyncRun struct {
	ID                        string                `json:"id"`
	ProjectID                 string                `json:"-"`
	BusinessAccountID         string                `json:"business_account_id"`
	AnchorWhatsAppConfigID    *string               `json:"anchor_whatsapp_config_id,omitempty"`
	Status                    string                `json:"status"`
	SyncCounts                                      // templates_* counters
	QueuedAt                  time.Time             `json:"queued_at"`
	StartedAt                 *time.Time            `json:"started_at"`
	FinishedAt                *time.Time            `json:"finished_at"`
	JobID                     *string               `json:"job_id"`
	ErrorClass                *string               `json:"error_class"`
	ErrorMessage              *string               `json:"error_message"`
	Results                   map[string]SyncCounts `json:"results"`
	AffectedWhatsAppConfigIDs []string              `json:"affected_whatsapp_config_ids"`
	// AnchorWhatsAppConfig summarises the anchor config, when it still exists.
	AnchorWhatsAppConfig *SyncAnchorConfig `json:"anchor_whatsapp_config,omitempty"`
	CreatedAt            time.Time         `json:"-"`
	UpdatedAt            time.Time         `json:"-"`
}

// SyncAnchorConfig is the summary of a sync run's anchor config. It omits
// display_name when unset, because Kapso's schema does not allow it null.
type SyncAnchorConfig struct {
	ID                           string     `json:"id"`
	Name                         string     `json:"name"`
	DisplayName                  *string    `json:"display_name,omitempty"`
	PhoneNumberID                string     `json:"phone_number_id"`
	BusinessAccountID            *string    `json:"business_account_id"`
	Kind                         string     `json:"kind"`
	DisplayPhoneNumber           *string    `json:"display_phone_number"`
	DisplayPhoneNumberNormalized *string    `json:"display_phone_number_normalized"`
	IsCoexistence                bool       `json:"is_coexistence"`
	WebhookVerifiedAt            *time.Time `json:"webhook_verified_at"`
	CustomerID                   *string    `json:"customer_id"`
	InboundProcessingEnabled     bool       `json:"inbound_processing_enabled"`
	CallsEnabled                 bool       `json:"calls_enabled"`
}

// NewSyncAnchorConfig summarises cfg for a sync run.
func NewSyncAnchorConfig(cfg *WhatsAppConfig) *SyncAnchorConfig {
	return &SyncAnchorConfig{
		ID: cfg.ID, Name: cfg.Name, DisplayName: cfg.DisplayName, PhoneNumberID: cfg.PhoneNumberID,
		BusinessAccountID: cfg.BusinessAccountID, Kind: cfg.Kind, DisplayPhoneNumber: cfg.DisplayPhoneNumber,
		DisplayPhoneNumberNormalized: cfg.DisplayPhoneNumberNormalized, IsCoexistence: cfg.IsCoexistence,
		WebhookVerifiedAt: cfg.WebhookVerifiedAt, CustomerID: cfg.CustomerID,
		InboundProcessingEnabled: cfg.InboundProcessingEnabled, CallsEnabled: cfg.CallsEnabled,
	}
}
