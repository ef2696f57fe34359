// Package events records webhook events in the same transaction as the change
// that causes them, and fans each one out into deliveries: one per active
// webhook subscribed to it. The delivery workers (internal/delivery) send
// them. Because events and deliveries commit with the change, a crash can
// delay an event but never lose it.
//
// Callers run Emit inside the transaction of their change and, after the
// commit, call api.Server.EventsWritten (or delivery.Service.Wake) so the
// workers start at once instead of at their next poll.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
)

// InactivityJob is the job kind of the per-(webhook, conversation) timer that
// emits whatsapp.conversation.inactive; internal/delivery handles it.
const InactivityJob = "webhook.inactivity"

// InactivityKey is the unique job key of the inactivity timer of a webhook
// and conversation: each new message replaces the previous timer.
func InactivityKey(webhookID, conversationID string) string {
	return "inactive:" + webhookID + ":" + conversationID
}

// InactivityPayload is the payload of an InactivityJob.
type InactivityPayload struct {
	WebhookID      string `json:"webhook_id"`
	ConversationID string `json:"conversation_id"`
	Minutes        int    `json:"minutes"`
}

// Default retry policy (README decision 5): 4 attempts in total.
const DefaultMaxAttempts = 4

// Event is one occurrence to deliver.
type Event struct {
	ProjectID      string
	ConfigID       string // empty for project lifecycle events
	ConversationID string // empty when not about a conversation
	Type           string
	// Seq orders whatsapp.message.received and .sent per conversation.
	Seq int64
	// V2 and V1 are the payloads for webhooks of each payload version; a nil
	// V1 means V2 is used for both.
	V2 any
	V1 any
}

// IsProjectEvent reports whether t is delivered to project webhooks rather
// than to a config's webhooks.
func IsProjectEvent(t string) bool { return slices.Contains(parley.ProjectEvents, t) }

// Ordered reports whether deliveries of t follow the conversation's order.
func Ordered(t string) bool { return t == parley.EventMessageReceived || t == parley.EventMessageSent }

// insertEvent stores ev and returns its id.
func insertEvent(ctx context.Context, tx *store.Conn, ev Event, now time.Time) (string, error) {
	v2, err := json.Marshal(ev.V2)
	if err != nil {
		return "", fmt.Errorf("events: encode payload: %w", err)
	}
	v1 := v2
	if ev.V1 != nil {
		if v1, err = json.Marshal(ev.V1); err != nil {
			return "", fmt.Errorf("events: encode v1 payload: %w", err)
		}
	}
	id := store.NewID()
	if _, err := tx.Exec(ctx, `INSERT INTO events (id, project_id, whatsapp_config_id, conversation_id, type, seq, payload_v2, payload_v1, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, ev.ProjectID, nullable(ev.ConfigID), nullable(ev.ConversationID), ev.Type, ev.Seq,
		string(v2), string(v1), now.UnixMicro()); err != nil {
		return "", fmt.Errorf("events: insert: %w", err)
	}
	return id, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// MaxAttempts is the number of attempts a webhook's retry settings allow:
// the default policy unless retry_custom is set.
func MaxAttempts(custom bool, retryMaxAttempts int) int {
	if !custom {
		return DefaultMaxAttempts
	}
	return max(retryMaxAttempts, 1)
}

type delivery struct {
	webhookID   string
	buffered    bool
	ordered     bool
	maxAttempts int
}

func insertDelivery(ctx context.Context, tx *store.Conn, ev Event, eventID string, d delivery, now time.Time) (string, error) {
	status := "pending"
	if d.buffered {
		status = "buffered"
	}
	id := store.NewID()
	if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, project_id, webhook_id, event_id, event_type, conversation_id, seq, ordered, buffered,
		status, max_attempts, idempotency_key, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, ev.ProjectID, d.webhookID, eventID, ev.Type, nullable(ev.ConversationID), ev.Seq, d.ordered, d.buffered,
		status, d.maxAttempts, store.NewID(), now.UnixMicro(), now.UnixMicro(), now.UnixMicro()); err != nil {
		return "", fmt.Errorf("events: insert delivery: %w", err)
	}
	return id, nil
}

// Emit stores ev and one delivery per subscribed active webhook. Received and
// sent message events also (re)start the inactivity timer of every webhook
// of the config subscribed to whatsapp.conversation.inactive. It returns the
// number of deliveries created.
func Emit(ctx context.Context, tx *store.Conn, ev Event) (int, error) {
	now := time.Now()
	id, err := insertEvent(ctx, tx, ev, now)
	if err != nil {
		return 0, err
	}
	const cols = `id, events, buffer_enabled, buffer_events, retry_max_attempts, retry_custom, inactivity_minutes`
	var rows interface {
		Next() bool
		Scan(...any) error
		Close() error
		Err() error
	}
	if IsProjectEvent(ev.Type) {
		rows, err = tx.Query(ctx, `SELECT `+cols+` FROM whatsapp_webhooks
			WHERE project_id = ? AND whatsapp_config_id IS NULL AND active`, ev.ProjectID)
	} else {
		rows, err = tx.Query(ctx, `SELECT `+cols+` FROM whatsapp_webhooks
			WHERE whatsapp_config_id = ? AND active`, ev.ConfigID)
	}
	if err != nil {
		return 0, fmt.Errorf("events: select webhooks: %w", err)
	}
	type timer struct {
		webhookID string
		minutes   int
	}
	var targets []delivery
	var timers []timer
	for rows.Next() {
		var whID, evs, bufEvs string
		var buf, custom bool
		var maxAttempts, inactivity int
		if err := rows.Scan(&whID, &evs, &buf, &bufEvs, &maxAttempts, &custom, &inactivity); err != nil {
			rows.Close()
			return 0, err
		}
		var list, bufList []string
		_ = json.Unmarshal([]byte(evs), &list)
		_ = json.Unmarshal([]byte(bufEvs), &bufList)
		if Ordered(ev.Type) && ev.ConversationID != "" && parley.Subscribed(list, parley.EventConversationInactive) {
			timers = append(timers, timer{whID, max(inactivity, 1)})
		}
		if !parley.Subscribed(list, ev.Type) {
			continue
		}
		targets = append(targets, delivery{
			webhookID:   whID,
			buffered:    buf && slices.Contains(bufList, ev.Type) && ev.ConversationID != "",
			ordered:     Ordered(ev.Type) && ev.ConversationID != "",
			maxAttempts: MaxAttempts(custom, maxAttempts),
		})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, t := range targets {
		if _, err := insertDelivery(ctx, tx, ev, id, t, now); err != nil {
			return 0, err
		}
	}
	for _, t := range timers {
		p := InactivityPayload{WebhookID: t.webhookID, ConversationID: ev.ConversationID, Minutes: t.minutes}
		if err := jobs.Schedule(ctx, tx, InactivityJob, InactivityKey(t.webhookID, ev.ConversationID), p,
			now.Add(time.Duration(t.minutes)*time.Minute)); err != nil {
			return 0, err
		}
	}
	return len(targets), nil
}

// EmitTo stores ev and one immediate delivery of it to the webhook webhookID
// only, whatever the webhook subscribes to: test deliveries and per-webhook
// timers (whatsapp.conversation.inactive) use it. It returns the delivery id.
func EmitTo(ctx context.Context, tx *store.Conn, ev Event, webhookID string) (string, error) {
	now := time.Now()
	id, err := insertEvent(ctx, tx, ev, now)
	if err != nil {
		return "", err
	}
	var custom bool
	var maxAttempts int
	if err := tx.QueryRow(ctx, `SELECT retry_custom, retry_max_attempts FROM whatsapp_webhooks WHERE id = ?`, webhookID).
		Scan(&custom, &maxAttempts); err != nil {
		return "", fmt.Errorf("events: webhook %s: %w", webhookID, err)
	}
	return insertDelivery(ctx, tx, ev, id, delivery{webhookID: webhookID, maxAttempts: MaxAttempts(custom, maxAttempts)}, now)
}
