package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/retention"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

func TestPruneKeepsRecentAndPendingRows(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	now := time.Now()
	old := now.Add(-40 * 24 * time.Hour).UnixMicro()
	recent := now.Add(-time.Hour).UnixMicro()
	p, err := store.CreateProject(ctx, db.Write(), "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Write().Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO meta_webhook_receipts (body_sha256, received_at) VALUES ('old', ?), ('new', ?)`, old, recent)
	exec(`INSERT INTO whatsapp_webhooks (id, project_id, url, secret_key_enc, created_at, updated_at) VALUES ('w1', ?, 'https://x.test', 'x', ?, ?)`, p.ID, old, old)
	for _, e := range []struct {
		id     string
		status string
		at     int64
	}{{"e-old-done", "succeeded", old}, {"e-old-pending", "pending", old}, {"e-new-done", "failed", recent}} {
		exec(`INSERT INTO events (id, project_id, type, payload_v2, payload_v1, created_at) VALUES (?, ?, 't', '{}', '{}', ?)`, e.id, p.ID, e.at)
		exec(`INSERT INTO deliveries (id, project_id, webhook_id, event_id, event_type, status, idempotency_key, next_attempt_at, created_at, updated_at)
			VALUES (?, ?, 'w1', ?, 't', ?, ?, ?, ?, ?)`, "d-"+e.id, p.ID, e.id, e.status, "k-"+e.id, e.at, e.at, e.at)
		exec(`INSERT INTO delivery_attempts (id, delivery_id, number, started_at, latency_ms) VALUES (?, ?, 1, ?, 1)`, "a-"+e.id, "d-"+e.id, e.at)
	}
	cfg := &parley.WhatsAppConfig{ProjectID: p.ID, Name: "c", Kind: parley.KindProduction, PhoneNumberID: "100200300"}
	if err := store.CreateConfig(ctx, db.Write(), cfg); err != nil {
		t.Fatal(err)
	}
	oldID := store.IDsBefore(time.UnixMicro(old).Add(time.Millisecond))
	for _, ps := range []struct {
		id string
		at int64
	}{{oldID, old}, {store.NewID(), recent}} {
		exec(`INSERT INTO pending_statuses (id, whatsapp_config_id, whatsapp_message_id, payload, created_at) VALUES (?, ?, ?, '{}', ?)`,
			ps.id, cfg.ID, "wamid."+ps.id, ps.at)
	}
	n, err := retention.Prune(ctx, db, retention.DefaultPolicy, now)
	if err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		var c int
		if err := db.Read().QueryRow(ctx, q).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := count(`SELECT COUNT(*) FROM meta_webhook_receipts`); got != 1 {
		t.Errorf("receipts left: %d, want 1", got)
	}
	if got := count(`SELECT COUNT(*) FROM deliveries`); got != 2 {
		t.Errorf("deliveries left: %d, want 2 (old pending and recent)", got)
	}
	if got := count(`SELECT COUNT(*) FROM events`); got != 2 {
		t.Errorf("events left: %d, want 2", got)
	}
	if got := count(`SELECT COUNT(*) FROM delivery_attempts`); got != 2 {
		t.Errorf("attempts left: %d, want 2", got)
	}
	var left string
	if err := db.Read().QueryRow(ctx, `SELECT id FROM pending_statuses`).Scan(&left); err != nil || left == oldID {
		t.Errorf("pending statuses: %q left (%v), want only the recent one", left, err)
	}
	if n != 5 {
		t.Errorf("pruned %d rows, want 5", n)
	}
}
