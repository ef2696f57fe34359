package parley

// JobForwardMetaWebhook is the job kind that forwards a Meta webhook, byte
// for byte with Meta's X-Hub-Signature-256, to a config's
// webhook_destination_url (Kapso forwards raw Meta webhooks there).
const JobForwardMetaWebhook = "meta_webhook_forward"

// MetaWebhookForward is the payload of a JobForwardMetaWebhook job.
type MetaWebhookForward struct {
	ConfigID  string `json:"config_id"`
	URL       string `json:"url"`
	Body      []byte `json:"body"`                // the raw body, as received
	Signature string `json:"signature,omitempty"` // Meta's X-Hub-Signature-256, when the body came with one
}
