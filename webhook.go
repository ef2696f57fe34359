package parley

import "time"

// Webhook kinds and payload versions.
const (
	WebhookKindKapso = "kapso"
	// WebhookKindMeta forwards Meta's raw webhook bodies about the
	// webhook's phone number, as Meta signed them; it has no event filter.
	WebhookKindMeta = "meta"
	PayloadV1       = "v1"
	PayloadV2       = "v2"
)

// Webhook defaults (semantics.md §2.2, README decision 5).
const (
	DefaultBufferWindowSeconds = 5
	DefaultMaxBufferSize       = 50
	DefaultInactivityMinutes   = 60
	DefaultRetryMaxAttempts    = 4
	DefaultRetryBackoffSeconds = 10
)

// Webhook is a destination for events: a config's webhook (Kapso's
// "WhatsApp webhook", ConfigID set) or a project webhook (ConfigID nil),
// which receives the project lifecycle events only.
type Webhook struct {
	ID        string
	ProjectID string
	// ConfigID is nil for a project webhook.
	ConfigID *string
	URL      string
	// SecretKey is the plaintext signing secret while a request is being
	// handled (set when decoded or generated); only SecretKeyEnc is stored.
	SecretKey    string
	SecretKeyEnc string
	// Events are the subscribed names as written (aliases kept).
	Events []string
	Active bool
	// Headers are added to every delivery; nil renders as null.
	Headers             map[string]string
	BufferEnabled       bool
	BufferWindowSeconds int
	MaxBufferSize       int
	BufferEvents        []string
	InactivityMinutes   int
	RetryMaxAttempts    int
	RetryBackoffSeconds int
	// RetryCustom records that retry_config was set explicitly; when false
	// the defaults apply and are what is rendered.
	RetryCustom    bool
	PayloadVersion string
	Kind           string
	// Delivery health, maintained by the delivery workers.
	FailingSince *time.Time
	PausedAt     *time.Time
	PausedReason *string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// IsProject reports whether w is a project webhook.
func (w *Webhook) IsProject() bool { return w.ConfigID == nil }
