package whatsapp

import (
	"encoding/json"
	"time"
)

// TemplateStatusUpdate is a message_template_status_update webhook value.
type TemplateStatusUpdate struct {
	// Event is the new template status: APPROVED, REJECTED, PAUSED,
	// DISABLED, PENDING_DELETION, …
	Event string
	// TemplateID is message_template_id as a decimal string (Meta sends an
	// integer).
	TemplateID string
	// Name is the template name.
	Name string
	// Language is the template language code, e.g. "en_US".
	Language string
	// Reason is Meta's reason code (NONE, INVALID_FORMAT, …).
	Reason string
	// Category is the template category (MARKETING, UTILITY, …).
	Category string
	// RejectionReason is rejection_info.reason, when present.
	RejectionReason string
	// RejectionRecommendation is rejection_info.recommendation.
	RejectionRecommendation string
	// Time is entry.time: when Meta emitted the event.
	Time time.Time
	// Raw is the change value, verbatim (disable_info, other_info, …).
	Raw json.RawMessage
}

func parseTemplateStatusUpdate(raw json.RawMessage, at time.Time) (TemplateStatusUpdate, error) {
	var w struct {
		Event         string     `json:"event"`
		TemplateID    flexString `json:"message_template_id"`
		Name          string     `json:"message_template_name"`
		Language      string     `json:"message_template_language"`
		Reason        string     `json:"reason"`
		Category      string     `json:"message_template_category"`
		RejectionInfo *struct {
			Reason         string `json:"reason"`
			Recommendation string `json:"recommendation"`
		} `json:"rejection_info"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return TemplateStatusUpdate{}, err
	}
	u := TemplateStatusUpdate{
		Event: w.Event, TemplateID: string(w.TemplateID), Name: w.Name, Language: w.Language,
		Reason: w.Reason, Category: w.Category, Time: at, Raw: raw,
	}
	if ri := w.RejectionInfo; ri != nil {
		u.RejectionReason, u.RejectionRecommendation = ri.Reason, ri.Recommendation
	}
	return u, nil
}
