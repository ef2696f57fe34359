package delivery_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/delivery"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/store"
)

type hits struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (h *hits) n() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.reqs) }

func receiver(t *testing.T) (*httptest.Server, *hits) {
	h := &hits{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, r)
		h.body = append(h.body, b)
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, h
}

func addConfig(t *testing.T, b *apitest.Bundle, project string) string {
	id := store.NewID()
	now := store.Micros(time.Now())
	if _, err := b.DB.Write().Exec(context.Background(), `INSERT INTO whatsapp_configs (id, project_id, name, kind, phone_number_id, created_at, updated_at)
		VALUES (?, ?, 'c', 'sandbox', ?, ?, ?)`, id, project, strconv.FormatInt(time.Now().UnixNano(), 10), now, now); err != nil {
		t.Fatal(err)
	}
	return id
}

func startWorkers(t *testing.T, b *apitest.Bundle) *delivery.Service {
	cfg := b.Cfg
	cfg.WebhookAllowPrivate = true
	s := delivery.New(b.DB, b.Box, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	s.Poll = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func emit(t *testing.T, b *apitest.Bundle, ev events.Event) {
	if err := b.DB.Tx(context.Background(), func(tx *store.Conn) error {
		_, err := events.Emit(context.Background(), tx, ev)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestDeliveryLogRedeliverAndTest(t *testing.T) {
	b := apitest.Setup(t)
	srv, got := receiver(t)
	cfg := addConfig(t, b, b.Project)
	wh := b.Must(201, "POST", "/whatsapp_configs/"+cfg+"/whatsapp_webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": srv.URL, "secret_key": "k", "events": []string{"messages", parley.EventConversationEnded}}}).Data()["id"].(string)
	base := "/whatsapp_configs/" + cfg + "/whatsapp_webhooks/" + wh
	for i := 0; i < 3; i++ {
		emit(t, b, events.Event{ProjectID: b.Project, ConfigID: cfg, Type: parley.EventMessageSent, V2: map[string]any{"n": i}})
	}
	emit(t, b, events.Event{ProjectID: b.Project, ConfigID: cfg, Type: parley.EventConversationEnded, V2: map[string]any{"n": "end"}})
	startWorkers(t, b)
	waitUntil(t, "4 deliveries", func() bool {
		return len(b.Must(200, "GET", base+"/deliveries?q[status_eq]=succeeded", nil).List()) == 4
	})

	list := b.Must(200, "GET", base+"/deliveries?per_page=2", nil)
	meta := list.JSON["meta"].(map[string]any)
	if len(list.List()) != 2 || meta["total_count"].(float64) != 4 || meta["total_pages"].(float64) != 2 {
		t.Fatalf("page: %s", list.Body)
	}
	first := list.List()[0]
	if first["event"] != parley.EventConversationEnded || len(first["attempts"].([]any)) != 1 {
		t.Fatalf("newest first with attempts: %v", first)
	}
	if n := len(b.Must(200, "GET", base+"/deliveries?q[event_eq]="+parley.EventMessageSent, nil).List()); n != 3 {
		t.Fatalf("event filter: %d", n)
	}
	if n := len(b.Must(200, "GET", base+"/deliveries?q[status_eq]=failed", nil).List()); n != 0 {
		t.Fatalf("status filter: %d", n)
	}

	id := first["id"].(string)
	d := b.Must(200, "GET", base+"/deliveries/"+id, nil).Data()
	att := d["attempts"].([]any)[0].(map[string]any)
	if d["status"] != "succeeded" || att["status_code"].(float64) != 200 || att["number"].(float64) != 1 {
		t.Fatalf("delivery: %v", d)
	}

	// Redeliver: a new cycle, same idempotency key.
	r := b.Must(202, "POST", base+"/deliveries/"+id+"/redeliver", nil).Data()
	if r["status"] != "pending" || r["next_attempt_at"] == nil {
		t.Fatalf("redeliver: %v", r)
	}
	waitUntil(t, "redelivery", func() bool {
		d := b.Must(200, "GET", base+"/deliveries/"+id, nil).Data()
		return d["status"] == "succeeded" && len(d["attempts"].([]any)) == 2
	})
	keys := map[string]int{}
	got.mu.Lock()
	for _, q := range got.reqs {
		keys[q.Header.Get("X-Idempotency-Key")]++
	}
	got.mu.Unlock()
	if keys[d["idempotency_key"].(string)] != 2 {
		t.Fatalf("redelivered with another key: %v", keys)
	}

	// Test events: default (first event of an alias), explicit, invalid.
	tr := b.Must(202, "POST", base+"/test", nil).Data()
	tid := tr["delivery_id"].(string)
	if tr["success"] != true {
		t.Fatalf("test: %v", tr)
	}
	waitUntil(t, "test delivery", func() bool {
		return b.Must(200, "GET", base+"/deliveries/"+tid, nil).Data()["status"] == "succeeded"
	})
	got.mu.Lock()
	last, lastReq := got.body[len(got.body)-1], got.reqs[len(got.reqs)-1]
	got.mu.Unlock()
	var payload map[string]any
	_ = json.Unmarshal(last, &payload)
	if payload["test"] != true || lastReq.Header.Get("X-Webhook-Event") != parley.EventMessageReceived || payload["message"] == nil {
		t.Fatalf("test payload %s (%s)", last, lastReq.Header.Get("X-Webhook-Event"))
	}
	b.Must(202, "POST", base+"/test", map[string]any{"event_type": parley.EventMessageSent})
	b.Must(202, "POST", base+"/test", map[string]any{"webhook": map[string]any{"event_type": parley.EventConversationEnded}})
	for _, bad := range []any{map[string]any{"event_type": parley.EventMessageRead}, map[string]any{"event_type": "nope"},
		map[string]any{"event_type": 5}, map[string]any{"event_type": []string{"x"}}} {
		if r := b.Do("POST", base+"/test", bad); r.Status != 422 {
			t.Fatalf("bad event_type %v: %d %s", bad, r.Status, r.Body)
		}
	}
	b.Must(400, "POST", base+"/test", "{not json")

	// Not found: bad ids, another project's key, another config, another webhook's delivery.
	total := b.Must(200, "GET", base+"/deliveries", nil).JSON["meta"].(map[string]any)["total_count"]
	for _, p := range []string{
		"/whatsapp_configs/" + cfg + "/whatsapp_webhooks/nope/deliveries",
		"/whatsapp_configs/nope/whatsapp_webhooks/" + wh + "/deliveries",
		"/whatsapp_configs/" + store.NewID() + "/whatsapp_webhooks/" + wh + "/deliveries",
		base + "/deliveries/" + store.NewID(),
		base + "/deliveries/xyz",
	} {
		b.Must(404, "GET", p, nil)
	}
	for _, p := range []string{base + "/deliveries", base + "/deliveries/" + id} {
		if r := b.DoKey(b.Key2, "GET", p, nil); r.Status != 404 {
			t.Fatalf("other project: %d", r.Status)
		}
	}
	for _, p := range []string{base + "/deliveries/" + id + "/redeliver", base + "/test"} {
		if r := b.DoKey(b.Key2, "POST", p, nil); r.Status != 404 {
			t.Fatalf("other project POST %s: %d", p, r.Status)
		}
	}
	if now := b.Must(200, "GET", base+"/deliveries", nil).JSON["meta"].(map[string]any)["total_count"]; now != total {
		t.Fatalf("refused requests changed the deliveries: %v -> %v", total, now)
	}
}

func TestProjectWebhooks(t *testing.T) {
	b := apitest.Setup(t)
	srv, got := receiver(t)
	b.Must(422, "POST", "/webhooks", map[string]any{"webhook": map[string]any{"url": srv.URL, "events": []string{parley.EventMessageReceived}}})
	b.Must(422, "POST", "/webhooks", map[string]any{"url": "not a url", "events": []string{parley.EventPhoneNumberCreated}})
	b.Must(400, "POST", "/webhooks", "[1,2")
	if n := len(b.Must(200, "GET", "/webhooks", nil).List()); n != 0 {
		t.Fatalf("invalid input stored a webhook (%d)", n)
	}
	w := b.Must(201, "POST", "/webhooks", map[string]any{"webhook": map[string]any{"url": srv.URL, "secret_key": "sk",
		"events": []string{parley.EventPhoneNumberCreated, parley.EventWebhookPaused}}}).Data()
	id := w["id"].(string)
	if w["secret_key"] != "sk" || w["active"] != true {
		t.Fatalf("created: %v", w)
	}
	if l := b.Must(200, "GET", "/webhooks", nil).List(); len(l) != 1 || l[0]["id"] != id {
		t.Fatalf("list: %v", l)
	}
	if l := b.DoKey(b.Key2, "GET", "/webhooks", nil); len(l.List()) != 0 {
		t.Fatal("another project sees the webhook")
	}
	b.Must(200, "GET", "/webhooks/"+id, nil)
	if r := b.DoKey(b.Key2, "GET", "/webhooks/"+id, nil); r.Status != 404 {
		t.Fatalf("other project: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "PATCH", "/webhooks/"+id, map[string]any{"active": false}); r.Status != 404 {
		t.Fatalf("other project PATCH: %d", r.Status)
	}
	// A config webhook is not a project webhook.
	cfg := addConfig(t, b, b.Project)
	cw := b.Must(201, "POST", "/whatsapp_configs/"+cfg+"/whatsapp_webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": srv.URL, "secret_key": "k", "events": []string{"messages"}}}).Data()["id"].(string)
	b.Must(404, "GET", "/webhooks/"+cw, nil)
	b.Must(404, "GET", "/webhooks/"+cw+"/deliveries", nil)

	// Paused, then resumed by PATCH active:true.
	if _, err := b.DB.Write().Exec(context.Background(), `UPDATE whatsapp_webhooks SET active = FALSE, paused_at = ?, paused_reason = 'x', failing_since = ? WHERE id = ?`,
		store.Micros(time.Now()), store.Micros(time.Now()), id); err != nil {
		t.Fatal(err)
	}
	up := b.Must(200, "PATCH", "/webhooks/"+id, map[string]any{"webhook": map[string]any{"active": true}}).Data()
	if up["active"] != true || up["paused_at"] != nil {
		t.Fatalf("resume: %v", up)
	}
	var since *int64
	if err := b.DB.Read().QueryRow(context.Background(), `SELECT failing_since FROM whatsapp_webhooks WHERE id = ?`, id).Scan(&since); err != nil || since != nil {
		t.Fatalf("failing_since kept: %v %v", since, err)
	}

	// Lifecycle events reach it; test events only for its lifecycle events.
	emit(t, b, events.Event{ProjectID: b.Project, Type: parley.EventConfigCreated, V2: map[string]any{"phone_number_id": "1"}})
	b.Must(422, "POST", "/webhooks/"+id+"/test", map[string]any{"event_type": parley.EventMessageReceived})
	tr := b.Must(202, "POST", "/webhooks/"+id+"/test", map[string]any{"event_type": parley.EventWebhookPaused}).Data()
	startWorkers(t, b)
	waitUntil(t, "two project deliveries", func() bool {
		return len(b.Must(200, "GET", "/webhooks/"+id+"/deliveries?q[status_eq]=succeeded", nil).List()) == 2
	})
	evs := map[string]bool{}
	got.mu.Lock()
	for _, r := range got.reqs {
		evs[r.Header.Get("X-Webhook-Event")] = true
	}
	got.mu.Unlock()
	if !evs[parley.EventPhoneNumberCreated] || !evs[parley.EventWebhookPaused] || tr["delivery_id"] == nil {
		t.Fatalf("events received: %v", evs)
	}
	// One name for the v2 webhook: the delivery log says what the header
	// said, and a filter on either name finds it.
	for _, q := range []string{parley.EventPhoneNumberCreated, parley.EventConfigCreated} {
		l := b.Must(200, "GET", "/webhooks/"+id+"/deliveries?q[event_eq]="+q, nil).List()
		if len(l) != 1 || l[0]["event"] != parley.EventPhoneNumberCreated {
			t.Fatalf("deliveries for %s: %v", q, l)
		}
	}

	b.Must(204, "DELETE", "/webhooks/"+id, nil)
	b.Must(404, "GET", "/webhooks/"+id, nil)
	b.Must(404, "DELETE", "/webhooks/"+id, nil)
	if !strings.Contains(b.Must(404, "GET", "/webhooks/not-a-uuid", nil).JSON["error"].(string), "not found") {
		t.Fatal("error title")
	}
}
