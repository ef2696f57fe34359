package delivery

import (
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// SamplePayload returns v2 and v1 sample payloads of event for a test
// delivery. Both carry "test": true so receivers can tell them apart; ids
// are fresh and refer to nothing stored.
func SamplePayload(event, projectID string, configID *string, phoneNumberID string, now time.Time) (v2, v1 map[string]any) {
	ts := now.UTC().Format(time.RFC3339)
	convID := store.NewID()
	conv := map[string]any{
		"id": convID, "phone_number": "+15550000000", "status": "active", "last_active_at": ts,
		"created_at": ts, "updated_at": ts, "metadata": map[string]any{}, "phone_number_id": phoneNumberID,
	}
	cfgID := ""
	if configID != nil {
		cfgID = *configID
	}
	convV1 := map[string]any{"id": convID, "phone_number": "+15550000000", "status": "active", "last_active_at": ts,
		"created_at": ts, "updated_at": ts, "metadata": map[string]any{}, "whatsapp_config_id": cfgID}
	wc := map[string]any{"id": cfgID, "phone_number_id": phoneNumberID}
	switch {
	case strings.HasPrefix(event, "whatsapp.message."):
		status := strings.TrimPrefix(event, "whatsapp.message.")
		dir, proc := "outbound", "completed"
		if status == "received" {
			dir, proc = "inbound", "pending"
		}
		wamid := "wamid.TEST" + strconv.FormatInt(now.UnixNano(), 36)
		msg := map[string]any{
			"id": wamid, "timestamp": strconv.FormatInt(now.Unix(), 10), "type": "text",
			"text": map[string]any{"body": "This is a test event from Parley"},
			"kapso": map[string]any{"direction": dir, "status": status, "processing_status": proc, "origin": "cloud_api",
				"has_media": false, "content": "This is a test event from Parley"},
		}
		v2 = map[string]any{"message": msg, "conversation": conv, "is_new_conversation": false, "phone_number_id": phoneNumberID}
		v1 = map[string]any{"message": map[string]any{"id": store.NewID(), "whatsapp_message_id": wamid, "message_type": "text",
			"content": "This is a test event from Parley", "direction": dir, "status": status, "origin": "cloud_api", "has_media": false,
			"created_at": ts}, "conversation": convV1, "whatsapp_config": wc}
	case event == parley.EventConversationInactive:
		since := map[string]any{"id": store.NewID(), "whatsapp_message_id": "wamid.TEST", "direction": "inbound", "created_at": ts}
		v2 = map[string]any{"conversation": conv, "since_message": since, "inactivity": map[string]any{"minutes": 60}, "phone_number_id": phoneNumberID}
		v1 = map[string]any{"conversation": convV1, "since_message": since, "inactivity": map[string]any{"minutes": 60}, "whatsapp_config": wc}
	case strings.HasPrefix(event, "whatsapp.conversation."):
		if event == parley.EventConversationEnded {
			conv["status"], convV1["status"] = "ended", "ended"
		}
		v2 = map[string]any{"conversation": conv, "phone_number_id": phoneNumberID}
		v1 = map[string]any{"conversation": convV1, "whatsapp_config": wc}
	case event == parley.EventTemplateStatus:
		v2 = map[string]any{"template": map[string]any{"id": store.NewID(), "name": "test_template", "language_code": "en_US",
			"status": "approved"}, "phone_number_id": phoneNumberID}
		v1 = map[string]any{"template": v2["template"], "whatsapp_config": wc}
	default: // project lifecycle events
		pid := "100000000000000"
		v2 = map[string]any{"phone_number_id": pid, "project": map[string]any{"id": projectID}, "customer": nil}
		v1 = map[string]any{"whatsapp_config": map[string]any{"id": store.NewID(), "name": "Test config", "phone_number_id": pid,
			"created_at": ts, "updated_at": ts}, "project": map[string]any{"id": projectID}, "customer": nil}
		if event == parley.EventWebhookPaused {
			v2 = map[string]any{"webhook": map[string]any{"id": store.NewID(), "url": "https://example.com/webhook",
				"whatsapp_config_id": nil, "paused_at": ts, "paused_reason": "test"}, "project": map[string]any{"id": projectID}}
			v1 = v2
		}
	}
	v2["test"], v1["test"] = true, true
	return v2, v1
}
