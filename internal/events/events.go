// Package events records webhook events in the same transaction as the change
// that causes them, and fans each one out into deliveries: one per active
// webhook subscribed to it. The delivery workers (internal/delivery) send
// them. Because events and deliveries commit with the change, a crash can
// delay an event but never lose it.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

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

// Emit stores ev and one delivery per subscribed active webhook. It returns
// the number of deliveries created.
func Emit(ctx context.Context, tx *store.Conn, ev Event) (int, error) {
	now := time.Now()
	v2, err := json.Marshal(ev.V2)
	if err != nil {
		return 0, fmt.Errorf("events: encode payload: %w", err)
	}
	v1 := v2
	if ev.V1 != nil {
		if v1, err = json.Marshal(ev.V1); err != nil {
			return 0, fmt.Errorf("events: encode v1 payload: %w", err)
		}
	}
	id := store.NewID()
	var cfg, conv any
	if ev.ConfigID != "" {
		cfg = ev.ConfigID
	}
	if ev.ConversationID != "" {
		conv = ev.ConversationID
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (id, project_id, whatsapp_config_id, conversation_id, type, seq, payload_v2, payload_v1, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, ev.ProjectID, cfg, conv, ev.Type, ev.Seq, string(v2), string(v1), now.UnixMicro()); err != nil {
		return 0, fmt.Errorf("events: insert: %w", err)
	}
	var rows interface {
		Next() bool
		Scan(...any) error
		Close() error
		Err() error
	}
	if IsProjectEvent(ev.Type) {
		rows, err = tx.Query(ctx, `SELECT id, events, buffer_enabled, buffer_events, retry_max_attempts FROM whatsapp_webhooks
			WHERE project_id = ? AND whatsapp_config_id IS NULL AND active`, ev.ProjectID)
	} else {
		rows, err = tx.Query(ctx, `SELECT id, events, buffer_enabled, buffer_events, retry_max_attempts FROM whatsapp_webhooks
			WHERE whatsapp_config_id = ? AND active`, ev.ConfigID)
	}
	if err != nil {
		return 0, fmt.Errorf("events: select webhooks: %w", err)
	}
	type target struct {
		id          string
		buffered    bool
		maxAttempts int
	}
	var targets []target
	for rows.Next() {
		var whID, evs, bufEvs string
		var buf bool
		var maxAttempts int
		if err := rows.Scan(&whID, &evs, &buf, &bufEvs, &maxAttempts); err != nil {
			rows.Close()
			return 0, err
		}
		var list, bufList []string
		_ = json.Unmarshal([]byte(evs), &list)
		_ = json.Unmarshal([]byte(bufEvs), &bufList)
		if !parley.Subscribed(list, ev.Type) {
			continue
		}
		targets = append(targets, target{whID, buf && slices.Contains(bufList, ev.Type) && ev.ConversationID != "", maxAttempts})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, t := range targets {
		status := "pending"
		if t.buffered {
			status = "buffered"
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, project_id, webhook_id, event_id, event_type, conversation_id, seq, ordered, buffered,
			status, max_attempts, idempotency_key, next_attempt_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			store.NewID(), ev.ProjectID, t.id, id, ev.Type, conv, ev.Seq, Ordered(ev.Type) && ev.ConversationID != "", t.buffered,
			status, max(t.maxAttempts, 1), store.NewID(), now.UnixMicro(), now.UnixMicro(), now.UnixMicro()); err != nil {
			return 0, fmt.Errorf("events: insert delivery: %w", err)
		}
	}
	return len(targets), nil
}
