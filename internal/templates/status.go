package templates

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// MapStatus maps a Meta template status (or message_template_status_update
// event) to Kapso's enum:
//
//	PENDING, IN_APPEAL                        → submitted (Meta is reviewing it)
//	APPROVED, REINSTATED, FLAGGED             → approved  (sendable; FLAGGED is only a quality warning)
//	REJECTED                                  → rejected
//	PAUSED, DISABLED, LOCKED                  → disabled  (not sendable until Meta lifts it)
//	DELETED, PENDING_DELETION, ARCHIVED       → removed
//
// Anything else (LIMIT_EXCEEDED, new values) returns "": the caller keeps
// the current status and records Meta's value in meta_status.
func MapStatus(meta string) string {
	switch strings.ToUpper(strings.TrimSpace(meta)) {
	case "PENDING", "IN_APPEAL", "PENDING_REVIEW":
		return parley.TemplateSubmitted
	case "APPROVED", "REINSTATED", "FLAGGED", "UNPAUSED":
		return parley.TemplateApproved
	case "REJECTED":
		return parley.TemplateRejected
	case "PAUSED", "DISABLED", "LOCKED":
		return parley.TemplateDisabled
	case "DELETED", "PENDING_DELETION", "ARCHIVED":
		return parley.TemplateRemoved
	}
	return ""
}

// mapCategory maps Meta's category (including retired ones) to Kapso's enum.
func mapCategory(meta, fallback string) string {
	switch c := strings.ToUpper(strings.TrimSpace(meta)); c {
	case parley.CategoryMarketing, parley.CategoryUtility, parley.CategoryAuthentication:
		return c
	case "OTP":
		return parley.CategoryAuthentication
	case "":
		if fallback != "" {
			return fallback
		}
	}
	if fallback != "" && validCategory(fallback) {
		return fallback
	}
	return parley.CategoryUtility
}

// reasonOf returns Meta's rejection reason, nil for none ("NONE" included).
func reasonOf(reasons ...string) *string {
	for _, r := range reasons {
		r = strings.TrimSpace(r)
		if r != "" && !strings.EqualFold(r, "NONE") {
			return &r
		}
	}
	return nil
}

// ApplyStatusUpdate applies a message_template_status_update webhook for
// one config of the WABA it concerns: it finds the template (in cfg's
// project) by Meta's id, else by (WABA, name, language), updates its status,
// category and rejection reason, and emits parley.EventTemplateStatus for
// cfg when cfg is linked to the template (or the template is linked to no
// config), in tx. The inbound path calls it once per config of the WABA, so
// each linked config receives exactly one event; applying the same update
// again is harmless. An update for a template Parley does not know is
// ignored (a sync imports it).
func ApplyStatusUpdate(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, u whatsapp.TemplateStatusUpdate) error {
	waba := ""
	if cfg.BusinessAccountID != nil {
		waba = *cfg.BusinessAccountID
	}
	t, err := FindTemplate(ctx, tx, cfg.ProjectID, u.TemplateID, waba, u.Name, u.Language)
	if err != nil || t == nil {
		return err
	}
	event := strings.ToUpper(strings.TrimSpace(u.Event))
	if s := MapStatus(event); s != "" {
		t.Status = s
	}
	if event != "" {
		t.MetaStatus = &event
	}
	t.Category = mapCategory(u.Category, t.Category)
	if t.MetaTemplateID == nil && u.TemplateID != "" {
		id := u.TemplateID
		t.MetaTemplateID = &id
	}
	reason := reasonOf(u.RejectionReason, u.Reason)
	switch t.Status {
	case parley.TemplateRejected:
		t.RejectedReason = reason
	case parley.TemplateApproved, parley.TemplateSubmitted:
		t.RejectedReason = nil
	}
	if err := UpdateTemplate(ctx, tx, t, false); err != nil {
		return fmt.Errorf("templates: apply status: %w", err)
	}
	if len(t.WhatsAppConfigIDs) > 0 && !slices.Contains(t.WhatsAppConfigIDs, cfg.ID) {
		return nil
	}
	payload := map[string]any{
		"template": map[string]any{
			"id": t.ID, "name": t.Name, "language_code": t.LanguageCode, "status": t.Status, "category": t.Category,
		},
		"event":           event,
		"reason":          reason,
		"phone_number_id": cfg.PhoneNumberID,
	}
	_, err = events.Emit(ctx, tx, events.Event{ProjectID: t.ProjectID, ConfigID: cfg.ID, Type: parley.EventTemplateStatus, V2: payload})
	return err
}
