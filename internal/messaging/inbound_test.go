package messaging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/messaging"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
	"github.com/parleyhq/parley/internal/whatsapp"
)

func TestInboundStoredOnceAndEvents(t *testing.T) {
	e := setup(t, setupOpts{})
	body := fixture(t, "text.json")
	for i := 0; i < 2; i++ { // Meta retries: the same body twice
		if st := e.postWebhook(t, body, appSecret); st != 200 {
			t.Fatalf("post %d: %d", i, st)
		}
	}
	// The same message in a different body (a re-delivery batched differently)
	// is a duplicate too.
	rebatched := bytes.Replace(body, []byte(`"id": "102290129340398"`), []byte(`"id": "102290129340398", "time": 1`), 1)
	if st := e.postWebhook(t, rebatched, appSecret); st != 200 {
		t.Fatalf("rebatched: %d", st)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages`); n != 1 {
		t.Fatalf("messages: %d", n)
	}
	convs := e.Must(200, "GET", "/whatsapp_conversations", nil).List()
	if len(convs) != 1 {
		t.Fatalf("conversations: %v", convs)
	}
	c := convs[0]
	if c["phone_number"] != "+16505551234" || c["contact_name"] != "Sheena Nelson" || c["status"] != "active" || c["whatsapp_config_id"] != e.cfg.ID {
		t.Errorf("conversation: %v", c)
	}
	m := e.Must(200, "GET", "/whatsapp_conversations/"+c["id"].(string)+"/whatsapp_messages", nil).List()[0]
	if m["direction"] != "inbound" || m["content"] != "Does it come in another color?" || m["status"] != "received" ||
		m["whatsapp_message_id"] != "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=" || dig(m, "message_type_data", "text") != m["content"] {
		t.Errorf("message: %v", m)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM contacts WHERE project_id = ? AND wa_id = ? AND profile_name = 'Sheena Nelson'`, e.Project, customer); n != 1 {
		t.Errorf("contact not created: %d", n)
	}
	created, _ := e.eventsOf(t, "whatsapp.conversation.created")
	received, receivedV1 := e.eventsOf(t, "whatsapp.message.received")
	if len(created) != 1 || len(received) != 1 {
		t.Fatalf("events: created %d received %d", len(created), len(received))
	}
	r := received[0]
	if r["is_new_conversation"] != true || r["phone_number_id"] != phoneID || dig(r, "message", "text", "body") != "Does it come in another color?" ||
		dig(r, "message", "from") != customer || dig(r, "message", "kapso", "direction") != "inbound" ||
		dig(r, "message", "kapso", "status") != "received" || dig(r, "message", "kapso", "processing_status") != "pending" ||
		dig(r, "message", "kapso", "origin") != "cloud_api" || dig(r, "message", "kapso", "has_media") != false {
		t.Errorf("v2 received: %v", r)
	}
	if dig(r, "conversation", "kapso", "contact_name") != "Sheena Nelson" || dig(r, "conversation", "kapso", "messages_count") != float64(1) ||
		dig(r, "conversation", "kapso", "last_message_text") != "Does it come in another color?" || dig(r, "conversation", "kapso", "last_outbound_at") != nil {
		t.Errorf("v2 conversation: %v", r["conversation"])
	}
	v1 := receivedV1[0]
	if dig(v1, "message", "message_type") != "text" || dig(v1, "message", "direction") != "inbound" || dig(v1, "whatsapp_config", "phone_number_id") != phoneID ||
		dig(v1, "conversation", "contact_name") != "Sheena Nelson" || v1["is_new_conversation"] != true {
		t.Errorf("v1 received: %v", v1)
	}
	var seq int64
	if err := e.DB.Read().QueryRow(context.Background(), `SELECT seq FROM events WHERE type = 'whatsapp.message.received'`).Scan(&seq); err != nil || seq != 1 {
		t.Errorf("received seq: %d %v", seq, err)
	}
}

func TestInboundRefusals(t *testing.T) {
	e := setup(t, setupOpts{})
	body := fixture(t, "text.json")
	if st := e.postWebhook(t, body, ""); st != 401 {
		t.Errorf("unsigned: %d", st)
	}
	if st := e.postWebhook(t, body, "wrong-secret"); st != 401 {
		t.Errorf("wrong secret: %d", st)
	}
	if st := e.postWebhook(t, []byte(`{"object":`), appSecret); st != 400 {
		t.Errorf("malformed: %d", st)
	}
	if st := e.postWebhook(t, []byte(`{"object":"page","entry":[]}`), appSecret); st != 400 {
		t.Errorf("not whatsapp: %d", st)
	}
	big := append([]byte(`{"object":"whatsapp_business_account","x":"`), bytes.Repeat([]byte("x"), int(e.Cfg.MaxWebhookBytes))...)
	if st := e.postWebhook(t, append(big, `"}`...), appSecret); st != 413 {
		t.Errorf("oversized: %d", st)
	}
	for _, table := range []string{"messages", "conversations", "contacts", "events", "meta_webhook_receipts"} {
		if n := e.count(t, `SELECT COUNT(*) FROM `+table); n != 0 {
			t.Errorf("%s: %d rows after refused webhooks", table, n)
		}
	}
	// Unknown phone_number_id: acknowledged, nothing stored.
	if st := e.postWebhook(t, inboundText(t, "999999999", customer, "wamid.X1", "hi"), appSecret); st != 200 {
		t.Errorf("unknown phone number id: %d", st)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages`); n != 0 {
		t.Errorf("unknown phone stored %d messages", n)
	}
}

func TestInboundPerConfigAppSecret(t *testing.T) {
	e := setup(t, setupOpts{})
	enc, _ := e.Box.Encrypt("config-secret")
	cfg2 := newConfig(t, e.Bundle, e.Project2, "555000111", "777")
	cfg2.AppSecretEnc = enc
	if err := store.UpdateConfig(context.Background(), e.DB.Write(), cfg2); err != nil {
		t.Fatal(err)
	}
	if st := e.postWebhook(t, inboundText(t, "555000111", "56911112222", "wamid.P1", "hola"), "config-secret"); st != 200 {
		t.Fatalf("per-config secret: %d", st)
	}
	// The config secret of one number does not sign bodies about another.
	if st := e.postWebhook(t, inboundText(t, phoneID, "56911112222", "wamid.P2", "hola"), "config-secret"); st != 401 {
		t.Fatalf("other config's secret: %d", st)
	}
	// Nor does it when the body also names its own number: a change about
	// another config (here project 1's number) rides along a change signed
	// for cfg2. The whole body is refused and nothing is stored.
	mixed := mergeChanges(t, inboundText(t, "555000111", "56911112222", "wamid.P3", "hola"),
		inboundText(t, phoneID, "56933334444", "wamid.P4", "injected"))
	if st := e.postWebhook(t, mixed, "config-secret"); st != 401 {
		t.Fatalf("change for another config signed by cfg2's secret: %d", st)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_message_id IN ('wamid.P3', 'wamid.P4')`); n != 0 {
		t.Errorf("refused mixed body stored %d messages", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages WHERE project_id = ?`, e.Project2); n != 1 {
		t.Errorf("project 2 messages: %d", n)
	}
	// Tenancy: project 1 cannot see project 2's conversation.
	if r := e.DoKey(e.Key2, "GET", "/whatsapp_conversations", nil); len(r.List()) != 1 {
		t.Fatalf("project 2 list: %s", r.Body)
	}
	id := e.DoKey(e.Key2, "GET", "/whatsapp_conversations", nil).List()[0]["id"].(string)
	e.Must(404, "GET", "/whatsapp_conversations/"+id, nil)
	e.Must(404, "PATCH", "/whatsapp_conversations/"+id, map[string]any{"status": "ended"})
	if n := len(e.Must(200, "GET", "/whatsapp_conversations", nil).List()); n != 0 {
		t.Errorf("project 1 sees %d conversations", n)
	}
}

// A NUL character in a customer's message or profile name (which
// PostgreSQL text cannot hold) does not make the webhook unstorable: Meta
// would redeliver it, with every message batched with it, for days.
func TestInboundNULCharacters(t *testing.T) {
	e := setup(t, setupOpts{noRunner: true})
	body := mergeChanges(t, inboundText(t, phoneID, "56911112222", "wamid.N1", "fine"),
		[]byte(`{"object":"whatsapp_business_account","entry":[{"id":"`+wabaID+`","changes":[{"field":"messages","value":{
		"metadata":{"phone_number_id":"`+phoneID+`"},"contacts":[{"wa_id":"56933334444","profile":{"name":"Ana\u0000"}}],
		"messages":[{"from":"56933334444","id":"wamid.N2","timestamp":"1750090702","type":"text","text":{"body":"a\u0000b"}}]}}]}]}`))
	if st := e.postWebhook(t, body, appSecret); st != 200 {
		t.Fatalf("webhook with a NUL character: %d", st)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_message_id IN ('wamid.N1', 'wamid.N2')`); n != 2 {
		t.Fatalf("messages stored: %d", n)
	}
	var content, name string
	if err := e.DB.Read().QueryRow(context.Background(), `SELECT m.content, c.profile_name FROM messages m
		JOIN contacts c ON c.project_id = m.project_id AND c.wa_id = m.phone_number WHERE m.whatsapp_message_id = 'wamid.N2'`).Scan(&content, &name); err != nil {
		t.Fatal(err)
	}
	if content != "a\uFFFDb" || name != "Ana\uFFFD" {
		t.Errorf("content %q, profile name %q", content, name)
	}
}

// mergeChanges returns webhook a with the changes of webhook b appended to
// its first entry.
func mergeChanges(t *testing.T, a, b []byte) []byte {
	t.Helper()
	var wa, wb map[string]any
	if err := json.Unmarshal(a, &wa); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &wb); err != nil {
		t.Fatal(err)
	}
	ea := wa["entry"].([]any)[0].(map[string]any)
	eb := wb["entry"].([]any)[0].(map[string]any)
	ea["changes"] = append(ea["changes"].([]any), eb["changes"].([]any)...)
	out, err := json.Marshal(wa)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A template status update signed with one config's app secret reaches
// only the configs of the WABA that secret belongs to.
func TestTemplateUpdateOnlyForSigningConfig(t *testing.T) {
	e := setup(t, setupOpts{noRunner: true})
	enc, _ := e.Box.Encrypt("config-secret")
	cfg2 := newConfig(t, e.Bundle, e.Project2, "555000111", wabaID) // same WABA as project 1's config
	cfg2.AppSecretEnc = enc
	if err := store.UpdateConfig(context.Background(), e.DB.Write(), cfg2); err != nil {
		t.Fatal(err)
	}
	var got []string
	s := api.New(api.Deps{DB: e.DB, Box: e.Box, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: e.Cfg})
	messaging.Register(s, messaging.Options{
		OnTemplateStatus: func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, u whatsapp.TemplateStatusUpdate) error {
			got = append(got, cfg.ID)
			return nil
		},
	})
	srv := httptest.NewServer(s)
	defer srv.Close()
	post := func(body []byte, secret string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/webhooks/whatsapp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign([]byte(secret), body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	body := fixture(t, "message_template_status_update_approved.json")
	if st := post(body, "config-secret"); st != 200 {
		t.Fatalf("per-config secret: %d", st)
	}
	if len(got) != 1 || got[0] != cfg2.ID {
		t.Errorf("template update applied to %v, want only %s", got, cfg2.ID)
	}
	got = nil
	if st := post(body, "wrong-secret"); st != 401 || len(got) != 0 {
		t.Errorf("wrong secret: %d %v", st, got)
	}
}

func TestStatusesOutOfOrder(t *testing.T) {
	e := setup(t, setupOpts{noRunner: true})
	e.g.next = []string{"wamid.EARLY", "wamid.LATE"}
	e.Must(201, "POST", "/whatsapp_messages", map[string]any{"message": map[string]any{"phone_number": customer, "content": "one"}})
	// Meta's delivered status arrives before the send job recorded the wamid.
	at := time.Now()
	if st := e.postWebhook(t, statusWebhook(t, "wamid.EARLY", "delivered", at), appSecret); st != 200 {
		t.Fatalf("early status: %d", st)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM pending_statuses`); n != 1 {
		t.Fatalf("pending statuses: %d", n)
	}
	e.startRunner(t)
	waitFor(t, "early message delivered", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_message_id = 'wamid.EARLY' AND status = 'delivered'`) == 1
	})
	if n := e.count(t, `SELECT COUNT(*) FROM pending_statuses`); n != 0 {
		t.Errorf("pending statuses left: %d", n)
	}
	// A second message: read arrives before delivered; read wins.
	d := e.Must(201, "POST", "/whatsapp_messages", map[string]any{"message": map[string]any{"phone_number": customer, "content": "two"}}).Data()
	waitFor(t, "second message sent", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_message_id = 'wamid.LATE' AND status = 'sent'`) == 1
	})
	for _, st := range []string{"sent", "read", "delivered", "read"} { // Meta's sent, then out of order, then a duplicate read
		if code := e.postWebhook(t, statusWebhook(t, "wamid.LATE", st, at), appSecret); code != 200 {
			t.Fatalf("status %s: %d", st, code)
		}
	}
	var status string
	var statuses string
	if err := e.DB.Read().QueryRow(context.Background(), `SELECT status, statuses FROM messages WHERE id = ?`, d["id"]).Scan(&status, &statuses); err != nil {
		t.Fatal(err)
	}
	if status != "read" || strings.Count(statuses, `"status":"read"`) != 1 || strings.Count(statuses, `"status":"sent"`) < 1 ||
		strings.Count(statuses, `"status":"delivered"`) != 1 {
		t.Errorf("status %s, history %s", status, statuses)
	}
	count := func(typ string) int { return e.count(t, `SELECT COUNT(*) FROM events WHERE type = ?`, typ) }
	if count("whatsapp.message.sent") != 2 || count("whatsapp.message.delivered") != 1 || count("whatsapp.message.read") != 1 {
		t.Errorf("events: sent %d delivered %d read %d", count("whatsapp.message.sent"), count("whatsapp.message.delivered"), count("whatsapp.message.read"))
	}
	// A failed status from Meta after the fact (fixture) on an unknown wamid is kept pending.
	if st := e.postWebhook(t, fixture(t, "status_failed_131047.json"), appSecret); st != 200 {
		t.Fatalf("failed fixture: %d", st)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM pending_statuses`); n != 1 {
		t.Errorf("pending after unknown failed: %d", n)
	}
}

// Meta's failed status shows on the message in the API: its code, title,
// message and details; a message that did not fail has null error fields.
func TestFailedStatusShowsItsReason(t *testing.T) {
	e := setup(t, setupOpts{})
	e.g.next = []string{"wamid.FAILS", "wamid.FINE"}
	id := e.Must(201, "POST", "/whatsapp_messages", map[string]any{"message": map[string]any{"phone_number": customer, "content": "one"}}).Data()["id"].(string)
	fine := e.Must(201, "POST", "/whatsapp_messages", map[string]any{"message": map[string]any{"phone_number": customer, "content": "two"}}).Data()["id"].(string)
	waitFor(t, "both sent", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_message_id IS NOT NULL`) == 2
	})
	fail := whatsapp.Error{Code: 131026, Title: "Message undeliverable", Message: "Message Undeliverable.", Details: "The recipient is not a WhatsApp user."}
	if st := e.postWebhook(t, statusWebhook(t, "wamid.FAILS", "failed", time.Now(), fail), appSecret); st != 200 {
		t.Fatalf("failed status: %d", st)
	}
	m := e.Must(200, "GET", "/whatsapp_messages/"+id, nil).Data()
	want := map[string]any{"error_code": "131026", "error_title": "Message undeliverable", "message": "Message Undeliverable.",
		"details": "The recipient is not a WhatsApp user."}
	if m["status"] != "failed" || m["error_message"] != "The recipient is not a WhatsApp user." {
		t.Errorf("failed message: %v %v", m["status"], m["error_message"])
	}
	jsonEq(t, "error_details", m["error_details"], want)
	if r := e.DoKey(e.Key2, "GET", "/whatsapp_messages/"+id, nil); r.Status != 404 {
		t.Errorf("another project's message: %d", r.Status)
	}
	ok := e.Must(200, "GET", "/whatsapp_messages/"+fine, nil).Data()
	if v, present := ok["error_message"]; !present || v != nil || ok["error_details"] != nil {
		t.Errorf("a message that did not fail: %v %v", ok["error_message"], ok["error_details"])
	}
}

func TestConversationLifecycle(t *testing.T) {
	e := setup(t, setupOpts{})
	if st := e.postWebhook(t, inboundText(t, phoneID, customer, "wamid.A1", "hello"), appSecret); st != 200 {
		t.Fatal(st)
	}
	first := e.Must(200, "GET", "/whatsapp_conversations", nil).List()[0]
	id := first["id"].(string)
	e.Must(200, "GET", "/whatsapp_conversations/"+id, nil)
	e.Must(404, "GET", "/whatsapp_conversations/not-a-uuid", nil)
	e.Must(404, "GET", "/whatsapp_conversations/0195b3f5-0000-7000-8000-000000000000", nil)
	// Bad PATCH input changes nothing.
	for _, body := range []any{map[string]any{"status": "closed"}, map[string]any{}, map[string]any{"status": 5}, `{"status":`} {
		r := e.Do("PATCH", "/whatsapp_conversations/"+id, body)
		if r.Status != 422 && r.Status != 400 {
			t.Errorf("bad patch %v: %d", body, r.Status)
		}
	}
	d := e.Must(200, "PATCH", "/whatsapp_conversations/"+id, map[string]any{"whatsapp_conversation": map[string]any{"status": "ended"}}).Data()
	if d["status"] != "ended" {
		t.Fatalf("patch: %v", d)
	}
	e.Must(200, "PATCH", "/whatsapp_conversations/"+id, map[string]any{"status": "ended"}) // no-op
	ended, endedV1 := e.eventsOf(t, "whatsapp.conversation.ended")
	if len(ended) != 1 || dig(ended[0], "conversation", "status") != "ended" || ended[0]["phone_number_id"] != phoneID ||
		dig(endedV1[0], "whatsapp_config", "id") != e.cfg.ID {
		t.Fatalf("ended events: %v", ended)
	}
	// The next inbound message opens a new conversation.
	if st := e.postWebhook(t, inboundText(t, phoneID, customer, "wamid.A2", "again"), appSecret); st != 200 {
		t.Fatal(st)
	}
	list := e.Must(200, "GET", "/whatsapp_conversations", nil).List()
	if len(list) != 2 || list[0]["id"] == id || list[0]["status"] != "active" {
		t.Fatalf("after reopen: %v", list)
	}
	// Reopening the old one while the new one is active is refused.
	r := e.Do("PATCH", "/whatsapp_conversations/"+id, map[string]any{"status": "active"})
	if r.Status != 422 {
		t.Fatalf("reopen with another active: %d %s", r.Status, r.Body)
	}
	// Filters.
	q := func(query string) int {
		return len(e.Must(200, "GET", "/whatsapp_conversations?"+query, nil).List())
	}
	if q("q[status_eq]=ended") != 1 || q("q[status_eq]=active") != 1 || q("q[phone_number_eq]="+url.QueryEscape("+1 650 555 1234")) != 2 ||
		q("q[phone_number_eq]=999") != 0 || q("q[whatsapp_config_id_eq]="+e.cfg.ID) != 2 || q("q[whatsapp_config_id_eq]=nope") != 0 ||
		q("q[whatsapp_config_customer_id_eq]=0195b3f5-0000-7000-8000-000000000000") != 0 ||
		q("q[last_active_at_gteq]="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))) != 0 ||
		q("q[last_active_at_lteq]="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))) != 2 {
		t.Errorf("filters wrong")
	}
	e.Must(400, "GET", "/whatsapp_conversations?q[last_active_at_gteq]=yesterday", nil)
	// End the new one, then the old one can be reopened.
	e.Must(200, "PATCH", "/whatsapp_conversations/"+list[0]["id"].(string), map[string]any{"status": "ended"})
	e.Must(200, "PATCH", "/whatsapp_conversations/"+id, map[string]any{"status": "active"})
	if n := e.count(t, `SELECT COUNT(*) FROM conversations WHERE status = 'active'`); n != 1 {
		t.Errorf("active conversations: %d", n)
	}
}

func TestMarkAsReadAndDelete(t *testing.T) {
	e := setup(t, setupOpts{})
	if st := e.postWebhook(t, inboundText(t, phoneID, customer, "wamid.R1", "read me"), appSecret); st != 200 {
		t.Fatal(st)
	}
	conv := e.Must(200, "GET", "/whatsapp_conversations", nil).List()[0]["id"].(string)
	in := e.Must(200, "GET", "/whatsapp_conversations/"+conv+"/whatsapp_messages", nil).List()[0]
	id := in["id"].(string)
	if r := e.DoKey(e.Key2, "PATCH", "/whatsapp_messages/"+id+"/mark_as_read", nil); r.Status != 404 {
		t.Errorf("other project mark: %d", r.Status)
	}
	d := e.Must(200, "PATCH", "/whatsapp_messages/"+id+"/mark_as_read?typing_indicator=false", nil).Data()
	if d["status"] != "read" {
		t.Fatalf("mark: %v", d)
	}
	waitFor(t, "mark_read sent to Graph", func() bool { return len(e.g.requests()) == 1 })
	r := e.g.requests()[0]
	if r.Body["status"] != "read" || r.Body["message_id"] != "wamid.R1" || r.Body["typing_indicator"] != nil {
		t.Errorf("mark_read body: %v", r.Body)
	}
	out := e.Must(201, "POST", "/whatsapp_conversations/"+conv+"/whatsapp_messages", map[string]any{"message": map[string]any{"content": "ok"}}).Data()
	rr := e.Do("PATCH", "/whatsapp_messages/"+out["id"].(string)+"/mark_as_read", nil)
	if rr.Status != 400 || rr.JSON["error"] != "Can only mark inbound messages as read" {
		t.Errorf("outbound mark: %d %s", rr.Status, rr.Body)
	}
	e.Must(404, "PATCH", "/whatsapp_messages/nope/mark_as_read", nil)
	if r := e.DoKey(e.Key2, "DELETE", "/whatsapp_messages/"+id, nil); r.Status != 404 {
		t.Errorf("other project delete: %d", r.Status)
	}
	e.Must(204, "DELETE", "/whatsapp_messages/"+id, nil)
	e.Must(404, "DELETE", "/whatsapp_messages/"+id, nil)
	if n := len(e.Must(200, "GET", "/whatsapp_conversations/"+conv+"/whatsapp_messages", nil).List()); n != 1 {
		t.Errorf("messages after delete: %d", n)
	}
}

func TestEchoAndMediaAndTemplateHook(t *testing.T) {
	var got []whatsapp.TemplateStatusUpdate
	e := setup(t, setupOpts{noRunner: true})
	// apitest's server has no hooks; a second server on the same database
	// registers the template hook and is driven in-process.
	s := api.New(api.Deps{DB: e.DB, Box: e.Box, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: e.Cfg})
	type perm struct {
		contact, status, source, wamid string
		expires                        *time.Time
	}
	var perms []perm
	messaging.Register(s, messaging.Options{
		OnTemplateStatus: func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, u whatsapp.TemplateStatusUpdate) error {
			got = append(got, u)
			return nil
		},
		OnCallPermission: messaging.CallPermissionReply(func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, contactID, status, source string,
			expiresAt *time.Time, messageID string, at time.Time) error {
			perms = append(perms, perm{contactID, status, source, messageID, expiresAt})
			return nil
		}),
	})
	if err := messaging.ProcessWebhook(context.Background(), s, fixture(t, "interactive_call_permission_reply.json")); err != nil {
		t.Fatal(err)
	}
	if len(perms) != 1 || perms[0].status != "accept" || perms[0].source != "user_action" || perms[0].contact == "" ||
		perms[0].expires == nil || perms[0].expires.Unix() != 1750881000 {
		t.Errorf("call permission hook: %+v", perms)
	}
	if err := messaging.ProcessWebhook(context.Background(), s, fixture(t, "message_template_status_update_approved.json")); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Event != "APPROVED" {
		t.Errorf("template hook: %v", got)
	}
	if err := messaging.ProcessWebhook(context.Background(), s, []byte(`nope`)); parley.ErrorCode(err) != parley.EBADREQUEST {
		t.Errorf("malformed: %v", err)
	}
	// Echo of a message typed in the WhatsApp Business app: outbound, business_app, emits sent.
	if st := e.postWebhook(t, fixture(t, "smb_message_echoes.json"), appSecret); st != 200 {
		t.Fatal(st)
	}
	sent, _ := e.eventsOf(t, "whatsapp.message.sent")
	if len(sent) != 1 || dig(sent[0], "message", "kapso", "origin") != "business_app" || dig(sent[0], "message", "kapso", "direction") != "outbound" {
		t.Errorf("echo event: %v", sent)
	}
	// Inbound image: media job enqueued, media_url points at Parley.
	if st := e.postWebhook(t, fixture(t, "image.json"), appSecret); st != 200 {
		t.Fatal(st)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM jobs WHERE kind = 'fetch_media'`); n != 1 {
		t.Errorf("fetch_media jobs: %d", n)
	}
	conv := e.Must(200, "GET", "/whatsapp_conversations", nil).List()[0]["id"].(string)
	msgs := e.Must(200, "GET", "/whatsapp_conversations/"+conv+"/whatsapp_messages", nil).List()
	img := msgs[0]
	if img["message_type"] != "image" || !strings.HasPrefix(str(img["media_url"]), "http://parley.test/api/v1/whatsapp_messages/") ||
		dig(img, "message_type_data", "media_id") != "1003383421387256" {
		t.Errorf("image: %v", img)
	}
	if len(msgs) != 3 || msgs[1]["direction"] != "outbound" {
		t.Errorf("echo and image share the conversation: %v", msgs)
	}
}

func TestAutoEnd(t *testing.T) {
	e := setup(t, setupOpts{autoEnd: time.Millisecond})
	if st := e.postWebhook(t, inboundText(t, phoneID, customer, "wamid.Z1", "bye"), appSecret); st != 200 {
		t.Fatal(st)
	}
	waitFor(t, "auto-end", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM conversations WHERE status = 'ended'`) == 1
	})
	waitFor(t, "ended event", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM events WHERE type = 'whatsapp.conversation.ended'`) == 1
	})
}

func TestWebhookHandshake(t *testing.T) {
	e := setup(t, setupOpts{})
	get := func(q string) (int, string) {
		res, err := http.Get(e.Srv.URL + "/webhooks/whatsapp?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, body := get("hub.mode=subscribe&hub.verify_token=global-verify&hub.challenge=123"); st != 200 || body != "123" {
		t.Errorf("global token: %d %q", st, body)
	}
	if st, _ := get("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=123"); st != 403 {
		t.Errorf("wrong token: %d", st)
	}
	if st, _ := get("hub.mode=unsubscribe&hub.verify_token=global-verify&hub.challenge=1"); st != 403 {
		t.Errorf("wrong mode: %d", st)
	}
	h := e.Box.Lookup("cfg-token")
	if err := store.SetConfigVerifyTokenHash(context.Background(), e.DB.Write(), e.cfg.ID, &h); err != nil {
		t.Fatal(err)
	}
	if st, body := get("hub.mode=subscribe&hub.verify_token=cfg-token&hub.challenge=abc"); st != 200 || body != "abc" {
		t.Errorf("config token: %d %q", st, body)
	}
	cfg, err := store.GetConfigByID(context.Background(), e.DB.Read(), e.cfg.ID)
	if err != nil || cfg.WebhookVerifiedAt == nil {
		t.Errorf("webhook_verified_at not recorded: %v", err)
	}
}

// FuzzInbound posts arbitrary bodies, correctly signed, to the inbound
// handler: it must never answer 5xx or panic.
func FuzzInbound(f *testing.F) {
	db := storetest.Open(f)
	box, _ := secrets.New(secrets.GenerateKey())
	cfg := config.Defaults()
	cfg.MetaAppSecret = appSecret
	s := app.BuildAPI(api.Deps{DB: db, Box: box, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: cfg})
	ctx := context.Background()
	p, err := store.CreateProject(ctx, db.Write(), "fuzz", nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := store.CreateConfig(ctx, db.Write(), &parley.WhatsAppConfig{ProjectID: p.ID, Name: "f", Kind: parley.KindProduction, PhoneNumberID: phoneID}); err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"text.json", "image.json", "status_read.json", "smb_message_echoes.json", "message_template_status_update_approved.json"} {
		b, err := readFixture(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[{"id":"w","from":"","type":"text"}]}}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"w","status":"read","timestamp":"x"}]}}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/webhooks/whatsapp", bytes.NewReader(body))
		req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign([]byte(appSecret), body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.String())
		}
	})
}

// TestConversationCountsStayExact: meta.total_count of the conversation
// list, unfiltered and by status (read from counts kept by triggers on
// SQLite), equals a COUNT of the rows through openings, endings, reopenings
// and a config's deletion, which cascades to its conversations.
func TestConversationCountsStayExact(t *testing.T) {
	e := setup(t, setupOpts{noRunner: true})
	total := func(query string) int {
		return int(e.Must(200, "GET", "/whatsapp_conversations?"+query, nil).JSON["meta"].(map[string]any)["total_count"].(float64))
	}
	check := func(step string) {
		t.Helper()
		for _, q := range []struct{ query, where string }{
			{"", ""}, {"q[status_eq]=active", " AND status = 'active'"}, {"q[status_eq]=ended", " AND status = 'ended'"},
			{"q[status_eq]=archived", " AND status = 'archived'"},
		} {
			want := e.count(t, `SELECT COUNT(*) FROM conversations WHERE project_id = ?`+q.where, e.Project)
			if got := total(q.query); got != want {
				t.Errorf("%s: %q total_count %d, want %d", step, q.query, got, want)
			}
		}
	}
	check("empty")
	for i := range 5 {
		if st := e.postWebhook(t, inboundText(t, phoneID, fmt.Sprintf("1650555100%d", i), fmt.Sprintf("wamid.C%d", i), "hola"), appSecret); st != 200 {
			t.Fatal(st)
		}
	}
	check("five opened")
	list := e.Must(200, "GET", "/whatsapp_conversations", nil).List()
	for _, cv := range list[:3] {
		e.Must(200, "PATCH", "/whatsapp_conversations/"+cv["id"].(string), map[string]any{"status": "ended"})
	}
	e.Must(200, "PATCH", "/whatsapp_conversations/"+list[0]["id"].(string), map[string]any{"status": "ended"}) // no change
	check("three ended")
	e.Must(200, "PATCH", "/whatsapp_conversations/"+list[1]["id"].(string), map[string]any{"status": "active"})
	check("one reopened")
	// A customer of an ended conversation writes again: a new one opens.
	if st := e.postWebhook(t, inboundText(t, phoneID, "16505551004", "wamid.C9", "otra vez"), appSecret); st != 200 {
		t.Fatal(st)
	}
	check("another opened")
	other := newConfig(t, e.Bundle, e.Project, "999000111", wabaID)
	if st := e.postWebhook(t, inboundText(t, "999000111", "16505552000", "wamid.D1", "hi"), appSecret); st != 200 {
		t.Fatal(st)
	}
	check("on a second config")
	e.Must(204, "DELETE", "/whatsapp_configs/"+other.ID, nil)
	check("second config deleted")
	if n := e.count(t, `SELECT COUNT(*) FROM conversations WHERE project_id = ?`, e.Project); n != 6 {
		t.Fatalf("%d conversations left, want 6", n)
	}
}

// An event nobody subscribes to is not stored: a second config with no
// webhook keeps its messages and conversations but writes no events, while
// the subscribed config's events are all there.
func TestEventsOnlyForSubscribers(t *testing.T) {
	e := setup(t, setupOpts{})
	other := newConfig(t, e.Bundle, e.Project, "200000000000001", wabaID)
	if st := e.postWebhook(t, inboundText(t, other.PhoneNumberID, customer, "wamid.UNSUB1", "nobody listens"), appSecret); st != 200 {
		t.Fatalf("status %d", st)
	}
	if st := e.postWebhook(t, inboundText(t, phoneID, customer, "wamid.SUB1", "somebody listens"), appSecret); st != 200 {
		t.Fatalf("status %d", st)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_config_id = ?`, other.ID); n != 1 {
		t.Fatalf("unsubscribed config's messages: %d", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM events WHERE whatsapp_config_id = ?`, other.ID); n != 0 {
		t.Fatalf("unsubscribed config's events: %d", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM events WHERE whatsapp_config_id = ?`, e.cfg.ID); n != 2 {
		t.Fatalf("subscribed config's events (created, received): %d", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM deliveries d JOIN events ev ON ev.id = d.event_id WHERE ev.whatsapp_config_id = ?`, e.cfg.ID); n != 2 {
		t.Fatalf("subscribed config's deliveries: %d", n)
	}
}

// A status that arrives while the send job is recording its wamid is
// applied, not parked for good: on PostgreSQL the status webhook's lookup
// could run before the send committed (so it parked the status) and commit
// after the send had taken the parked statuses. The status webhook now
// waits for the send (an advisory lock per wamid; SQLite's single writer
// already serialises them).
func TestStatusDuringSendIsApplied(t *testing.T) {
	e := setup(t, setupOpts{})
	e.g.next = []string{"wamid.RACE"}
	locked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer messaging.SetAfterWamidLocked(func() {
		once.Do(func() { close(locked); <-release })
	})()
	e.Must(201, "POST", "/whatsapp_messages", map[string]any{"message": map[string]any{"phone_number": customer, "content": "racing"}})
	select {
	case <-locked:
	case <-time.After(10 * time.Second):
		t.Fatal("the send job did not reach finishSent")
	}
	posted := make(chan int, 1)
	go func() { posted <- e.postWebhook(t, statusWebhook(t, "wamid.RACE", "delivered", time.Now()), appSecret) }()
	select {
	case st := <-posted:
		close(release)
		t.Fatalf("the status webhook (%d) did not wait for the send recording its wamid", st)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if st := <-posted; st != 200 {
		t.Fatalf("status webhook: %d", st)
	}
	waitFor(t, "the status applied", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_message_id = 'wamid.RACE' AND status = 'delivered'`) == 1
	})
	if n := e.count(t, `SELECT COUNT(*) FROM pending_statuses`); n != 0 {
		t.Errorf("statuses left parked: %d", n)
	}
}

// metaWebhooks reads parley_meta_webhooks_total{outcome} from the registry.
func metaWebhooks(t *testing.T, outcome string) float64 {
	t.Helper()
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "parley_meta_webhooks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Applied webhooks count as processed and replays as replayed in
// parley_meta_webhooks_total.
func TestInboundOutcomeMetrics(t *testing.T) {
	e := setup(t, setupOpts{})
	processed, replayed := metaWebhooks(t, "processed"), metaWebhooks(t, "replayed")
	body := statusWebhook(t, "wamid.METRIC", "delivered", time.Now())
	for range 2 {
		if st := e.postWebhook(t, body, appSecret); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if got := metaWebhooks(t, "processed") - processed; got != 1 {
		t.Errorf("processed +%v, want +1", got)
	}
	if got := metaWebhooks(t, "replayed") - replayed; got != 1 {
		t.Errorf("replayed +%v, want +1", got)
	}
}
