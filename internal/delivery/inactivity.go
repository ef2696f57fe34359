package delivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
)

// RegisterJobs registers the delivery package's job handlers on r: the
// inactivity timer that emits whatsapp.conversation.inactive. wake (may be
// nil) is called after a commit that created deliveries.
func RegisterJobs(r *jobs.Runner, db *store.DB, wake func()) {
	r.Register(events.InactivityJob, func(ctx context.Context, j *jobs.Job) error {
		var p events.InactivityPayload
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return jobs.Permanent(err)
		}
		emitted, err := FireInactivity(ctx, db, p, time.Now())
		if err == nil && emitted && wake != nil {
			wake()
		}
		return err
	})
}

// FireInactivity runs an inactivity timer: when the conversation is still
// active and has had no message for the webhook's inactivity_minutes, it
// emits whatsapp.conversation.inactive to that webhook only, once per idle
// period. A timer that fires early (the conversation moved on without the
// timer being rescheduled) is rescheduled for the right time.
func FireInactivity(ctx context.Context, db *store.DB, p events.InactivityPayload, now time.Time) (bool, error) {
	emitted := false
	err := db.Tx(ctx, func(tx *store.Conn) error {
		emitted = false
		var projectID, configID, status, phone, metadata, phoneNumberID string
		var lastActive, ca, ua int64
		err := tx.QueryRow(ctx, `SELECT c.project_id, c.whatsapp_config_id, c.status, c.phone_number, c.metadata, c.last_active_at,
			c.created_at, c.updated_at, w.phone_number_id
			FROM conversations c JOIN whatsapp_configs w ON w.id = c.whatsapp_config_id WHERE c.id = ?`, p.ConversationID).
			Scan(&projectID, &configID, &status, &phone, &metadata, &lastActive, &ca, &ua, &phoneNumberID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // conversation deleted
		}
		if err != nil {
			return err
		}
		var active bool
		var events_ string
		var minutes int
		err = tx.QueryRow(ctx, `SELECT active, events, inactivity_minutes FROM whatsapp_webhooks WHERE id = ? AND whatsapp_config_id = ?`,
			p.WebhookID, configID).Scan(&active, &events_, &minutes)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // webhook deleted
		}
		if err != nil {
			return err
		}
		var list []string
		_ = json.Unmarshal([]byte(events_), &list)
		if !active || status != "active" || !parley.Subscribed(list, parley.EventConversationInactive) {
			return nil
		}
		minutes = max(minutes, 1)
		dueAt := store.Time(lastActive).Add(time.Duration(minutes) * time.Minute)
		if now.Before(dueAt) {
			p.Minutes = minutes
			return jobs.Schedule(ctx, tx, events.InactivityJob, events.InactivityKey(p.WebhookID, p.ConversationID), p, dueAt)
		}
		// Once per idle period: a job retried after a crash must not emit twice.
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM deliveries WHERE webhook_id = ? AND conversation_id = ? AND event_type = ? AND created_at >= ?`,
			p.WebhookID, p.ConversationID, parley.EventConversationInactive, lastActive).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		conv := map[string]any{
			"id": p.ConversationID, "phone_number": parley.DisplayPhone(phone), "status": status,
			"last_active_at": rfc(lastActive), "created_at": rfc(ca), "updated_at": rfc(ua),
			"metadata": json.RawMessage(orEmptyObject(metadata)), "phone_number_id": phoneNumberID,
		}
		var since map[string]any
		var msgID string
		var wamid sql.NullString
		var dir string
		var mca int64
		err = tx.QueryRow(ctx, `SELECT id, whatsapp_message_id, direction, created_at FROM messages WHERE conversation_id = ?
			ORDER BY created_at DESC, id DESC LIMIT 1`, p.ConversationID).Scan(&msgID, &wamid, &dir, &mca)
		switch {
		case err == nil:
			since = map[string]any{"id": msgID, "whatsapp_message_id": store.StrPtr(wamid), "direction": dir, "created_at": rfc(mca)}
		case errors.Is(err, sql.ErrNoRows):
		default:
			return err
		}
		v2 := map[string]any{"conversation": conv, "since_message": since, "inactivity": map[string]any{"minutes": minutes},
			"phone_number_id": phoneNumberID}
		convV1 := map[string]any{}
		for k, v := range conv {
			convV1[k] = v
		}
		delete(convV1, "phone_number_id")
		convV1["whatsapp_config_id"] = configID
		v1 := map[string]any{"conversation": convV1, "since_message": since, "inactivity": map[string]any{"minutes": minutes},
			"whatsapp_config": map[string]any{"id": configID, "phone_number_id": phoneNumberID}}
		if _, err := events.EmitTo(ctx, tx, events.Event{ProjectID: projectID, ConfigID: configID, ConversationID: p.ConversationID,
			Type: parley.EventConversationInactive, V2: v2, V1: v1}, p.WebhookID); err != nil {
			return err
		}
		emitted = true
		return nil
	})
	return emitted, err
}

func rfc(us int64) string { return store.Time(us).Format(time.RFC3339) }

func orEmptyObject(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}
