package delivery

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/parleyhq/parley/internal/store"
)

// BatchInfo is the batch_info block of a batch body.
type BatchInfo struct {
	Size           int    `json:"size"`
	WindowMS       int64  `json:"window_ms"`
	FirstSequence  int64  `json:"first_sequence"`
	LastSequence   int64  `json:"last_sequence"`
	ConversationID string `json:"conversation_id"`
}

// BatchBody is the body of a batch delivery (semantics.md §2.8).
type BatchBody struct {
	Type      string            `json:"type"`
	Batch     bool              `json:"batch"`
	Data      []json.RawMessage `json:"data"`
	BatchInfo BatchInfo         `json:"batch_info"`
}

// FlushDue turns conversation buffers that are due into batch deliveries: a
// buffer is due when buffer_window_seconds have passed since its first item
// or when it holds max_buffer_size items. The buffered rows themselves are
// the timers, so buffers survive restarts. It returns the batches created.
func (s *Service) FlushDue(ctx context.Context) (int, error) {
	now := s.Now()
	rows, err := s.db.Read().Query(ctx, `SELECT d.webhook_id, d.conversation_id, MIN(d.created_at), COUNT(*), w.buffer_window_seconds, w.max_buffer_size
		FROM deliveries d JOIN whatsapp_webhooks w ON w.id = d.webhook_id
		WHERE d.status = 'buffered' AND d.batch_id IS NULL
		GROUP BY d.webhook_id, d.conversation_id, w.buffer_window_seconds, w.max_buffer_size`)
	if err != nil {
		return 0, err
	}
	type group struct {
		webhook, conv string
		max           int
	}
	var due []group
	for rows.Next() {
		var g group
		var conv sql.NullString
		var first int64
		var n, window int
		if err := rows.Scan(&g.webhook, &conv, &first, &n, &window, &g.max); err != nil {
			rows.Close()
			return 0, err
		}
		g.conv = conv.String
		g.max = max(g.max, 1)
		if n >= g.max || store.Micros(now) >= first+int64(max(window, 1))*1_000_000 {
			due = append(due, g)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	made := 0
	for _, g := range due {
		err := s.db.Tx(ctx, func(tx *store.Conn) error {
			ok, err := s.flush(ctx, tx, g.webhook, g.conv, g.max)
			if ok {
				made++
			}
			return err
		})
		if err != nil {
			return made, err
		}
	}
	if made > 0 {
		s.Wake()
	}
	return made, nil
}

// flush makes one batch of at most limit items of a (webhook, conversation)
// buffer, oldest first.
func (s *Service) flush(ctx context.Context, tx *store.Conn, webhookID, conv string, limit int) (bool, error) {
	now := s.Now()
	rows, err := tx.Query(ctx, `SELECT id, event_id, seq FROM deliveries
		WHERE webhook_id = ? AND conversation_id = ? AND status = 'buffered' AND batch_id IS NULL
		ORDER BY seq, created_at LIMIT ?`+tx.ForUpdateSkipLocked(), webhookID, conv, limit)
	if err != nil {
		return false, err
	}
	type item struct {
		id, event string
		seq       int64
	}
	var items []item
	for rows.Next() {
		var it item
		var ev sql.NullString
		if err := rows.Scan(&it.id, &ev, &it.seq); err != nil {
			rows.Close()
			return false, err
		}
		it.event = ev.String
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(items) == 0 {
		return false, err
	}
	w, err := webhookByID(ctx, tx, webhookID)
	if err != nil {
		return false, err
	}
	var evType string
	body := BatchBody{Batch: true, BatchInfo: BatchInfo{Size: len(items), WindowMS: int64(w.BufferWindowSeconds) * 1000,
		FirstSequence: items[0].seq, LastSequence: items[len(items)-1].seq, ConversationID: conv}}
	for _, it := range items {
		var t, v2, v1 string
		if err := tx.QueryRow(ctx, `SELECT type, payload_v2, payload_v1 FROM events WHERE id = ?`, it.event).Scan(&t, &v2, &v1); err != nil {
			return false, err
		}
		evType = t
		if w.PayloadVersion == "v1" {
			body.Data = append(body.Data, json.RawMessage(v1))
		} else {
			body.Data = append(body.Data, json.RawMessage(v2))
		}
	}
	body.Type = evType
	var projectID string
	if err := tx.QueryRow(ctx, `SELECT project_id FROM deliveries WHERE id = ?`, items[0].id).Scan(&projectID); err != nil {
		return false, err
	}
	batchID := store.NewID()
	if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, project_id, webhook_id, event_id, event_type, conversation_id, seq, ordered, buffered,
		is_batch, batch_body, status, max_attempts, idempotency_key, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, NULL, ?, ?, ?, FALSE, FALSE, TRUE, ?, 'pending', ?, ?, ?, ?, ?)`,
		batchID, projectID, webhookID, evType, conv, items[len(items)-1].seq, string(marshalRaw(body)),
		maxAttemptsFor(w.RetryCustom, w.RetryMaxAttempts), store.NewID(), store.Micros(now), store.Micros(now), store.Micros(now)); err != nil {
		return false, err
	}
	for _, it := range items {
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET batch_id = ?, updated_at = ? WHERE id = ?`, batchID, store.Micros(now), it.id); err != nil {
			return false, err
		}
	}
	return true, nil
}
