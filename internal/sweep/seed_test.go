package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store"
)

// world holds the ids of one project's seeded resources, by resource name.
type world struct {
	project string
	key     string
	ids     map[string]string
	phone   string // the contact's wa_id
}

func (w *world) id(name string) string {
	v, ok := w.ids[name]
	if !ok {
		panic("sweep: no seeded " + name)
	}
	return v
}

// fakeGraph answers every Graph API call with a generic success, so
// production configs never reach Meta and never fail upstream.
func fakeGraph(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":true,"id":"1234567890123","status":"PENDING","category":"UTILITY",`+
			`"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],`+
			`"messages":[{"id":"wamid.SWEEP"}],"data":[],"paging":{},`+
			`"verified_name":"Sweep","display_phone_number":"+1 555 000 0000","quality_rating":"GREEN",`+
			`"code_verification_status":"VERIFIED","name_status":"APPROVED","platform_type":"CLOUD_API",`+
			`"throughput":{"level":"STANDARD"}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// seed creates, in project n (1 or 2) of b, realistic data through the
// API where it has a route and through SQL where only Meta's webhooks or
// the workers would create it.
func seed(t *testing.T, b *apitest.Bundle, n int) *world {
	t.Helper()
	w := &world{ids: map[string]string{}}
	if n == 1 {
		w.project, w.key = b.Project, b.Key
		w.phone = "16505551234"
	} else {
		w.project, w.key = b.Project2, b.Key2
		w.phone = "447700900123"
	}
	must := func(status int, method, path string, body any) map[string]any {
		t.Helper()
		r := b.DoKey(w.key, method, path, body)
		if r.Status != status {
			t.Fatalf("seed %s %s: %d, want %d: %s", method, path, r.Status, status, r.Body)
		}
		return r.Data()
	}
	idOf := func(m map[string]any) string {
		t.Helper()
		s, _ := m["id"].(string)
		if s == "" {
			t.Fatalf("seed: no id in %v", m)
		}
		return s
	}
	w.ids["project"] = w.project
	w.ids["customer"] = idOf(must(201, "POST", "/customers", map[string]any{"customer": map[string]any{
		"name": fmt.Sprintf("Acme %d", n), "external_customer_id": fmt.Sprintf("acme-%d", n)}}))
	w.ids["setup_link"] = idOf(must(201, "POST", "/customers/"+w.id("customer")+"/setup_links", map[string]any{"setup_link": map[string]any{
		"success_redirect_url": "https://example.com/ok", "failure_redirect_url": "https://example.com/fail"}}))
	w.ids["prod_config"] = idOf(must(201, "POST", "/customers/"+w.id("customer")+"/whatsapp_configs", map[string]any{"whatsapp_config": map[string]any{
		"name": fmt.Sprintf("Main line %d", n), "phone_number_id": fmt.Sprintf("10654035224292%d", n),
		"business_account_id": fmt.Sprintf("10229012934039%d", n), "access_token": "EAAG-secret-token",
		"webhook_verify_token": fmt.Sprintf("verify-%d", n), "webhook_destination_url": "https://example.com/raw"}}))
	w.ids["sandbox_config"] = idOf(must(201, "POST", "/whatsapp_configs", map[string]any{"whatsapp_config": map[string]any{
		"name": fmt.Sprintf("Sandbox %d", n), "kind": "sandbox"}}))
	w.ids["display_name_request"] = idOf(must(201, "POST", "/whatsapp_configs/"+w.id("prod_config")+"/display_name_requests",
		map[string]any{"display_name_request": map[string]any{"new_display_name": fmt.Sprintf("Acme Support %d", n)}}))
	w.ids["config_webhook"] = idOf(must(201, "POST", "/whatsapp_configs/"+w.id("prod_config")+"/whatsapp_webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": "https://hooks.example.com/config", "secret_key": "whsec-0123456789", "events": []string{"whatsapp.message.received", "whatsapp.message.sent"}}}))
	w.ids["project_webhook"] = idOf(must(201, "POST", "/webhooks", map[string]any{"webhook": map[string]any{
		"url": "https://hooks.example.com/project", "secret_key": "whsec-0123456789", "events": []string{"whatsapp.config.created"}}}))
	d := b.DoKey(w.key, "POST", "/whatsapp_configs/"+w.id("prod_config")+"/whatsapp_webhooks/"+w.id("config_webhook")+"/test",
		map[string]any{"event_type": "whatsapp.message.received"})
	if d.Status != 202 {
		t.Fatalf("seed webhook test: %d %s", d.Status, d.Body)
	}
	w.ids["delivery"], _ = d.Data()["delivery_id"].(string)
	w.ids["user"] = idOf(must(201, "POST", "/users", map[string]any{"user": map[string]any{"email": fmt.Sprintf("agent%d@example.com", n), "name": "Agent"}}))
	w.ids["user2"] = idOf(must(201, "POST", "/users", map[string]any{"user": map[string]any{"email": fmt.Sprintf("other%d@example.com", n), "name": "Other"}}))
	w.ids["contact"] = idOf(must(201, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{
		"wa_id": w.phone, "profile_name": "Sheena Nelson", "customer_id": w.id("customer"), "metadata": map[string]any{"tier": "gold"}}}))
	w.ids["note"] = idOf(must(201, "POST", "/whatsapp_contacts/"+w.phone+"/notes", map[string]any{"note": map[string]any{
		"content": "Prefers mornings", "name": "habits"}}))

	// A conversation on the production config, opened by an inbound
	// message (Meta's webhook would do it; SQL here), then an outbound
	// reply through the API.
	ctx := context.Background()
	conv, in := store.NewID(), store.NewID()
	now := store.Micros(time.Now())
	wamid := fmt.Sprintf("wamid.SWEEPIN%d", n)
	err := b.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := tx.Exec(ctx, `INSERT INTO conversations (id, project_id, whatsapp_config_id, contact_id, phone_number, status, metadata,
			messages_count, last_active_at, last_inbound_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'active', '{}', 1, ?, ?, ?, ?)`,
			conv, w.project, w.id("prod_config"), w.id("contact"), w.phone, now, now, now, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO messages (id, project_id, conversation_id, whatsapp_config_id, phone_number, direction, message_type,
			content, status, processing_status, whatsapp_message_id, seq, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'inbound', 'text', 'Hello there', 'received', 'processed', ?, 1, ?, ?)`,
			in, w.project, conv, w.id("prod_config"), w.phone, wamid, now, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.ids["conversation"] = conv
	w.ids["inbound_message"] = in
	w.ids["inbound_wamid"] = wamid
	w.ids["message"] = idOf(must(201, "POST", "/whatsapp_conversations/"+conv+"/whatsapp_messages", map[string]any{"message": map[string]any{"content": "Hi, how can we help?"}}))
	w.ids["assignment"] = idOf(must(201, "POST", "/whatsapp_conversations/"+conv+"/conversation_assignments", map[string]any{
		"conversation_assignment": map[string]any{"user_id": w.id("user"), "notes": "VIP"}}))

	// An inbound message on the sandbox, through the simulator.
	must(202, "POST", "/whatsapp_configs/"+w.id("sandbox_config")+"/sandbox_messages", map[string]any{
		"from": w.phone, "profile_name": "Sheena Nelson", "type": "text", "text": map[string]any{"body": "hi sandbox"}})

	// Templates: a draft made through the API, and an approved one as
	// Meta's review would leave it.
	w.ids["template"] = idOf(must(201, "POST", "/whatsapp_templates", templateBody(fmt.Sprintf("order_shipped_%d", n), w.id("prod_config"))))
	w.ids["approved_template"] = idOf(must(201, "POST", "/whatsapp_templates", templateBody(fmt.Sprintf("order_ready_%d", n), w.id("prod_config"))))
	if _, err := b.DB.Write().Exec(ctx, `UPDATE templates SET status = 'approved', meta_status = 'APPROVED', meta_template_id = ? WHERE id = ?`,
		fmt.Sprintf("99887766%d", n), w.id("approved_template")); err != nil {
		t.Fatal(err)
	}

	// A draft broadcast of the approved template, with one recipient.
	w.ids["broadcast"] = idOf(must(201, "POST", "/whatsapp_broadcasts", map[string]any{"whatsapp_broadcast": map[string]any{
		"name": fmt.Sprintf("Promo %d", n), "whatsapp_config_id": w.id("prod_config"), "whatsapp_template_id": w.id("approved_template")}}))
	must(201, "POST", "/whatsapp_broadcasts/"+w.id("broadcast")+"/recipients", map[string]any{"recipients": []any{
		map[string]any{"phone_number": w.phone, "template_parameters": []any{"Ana", "A-17"}}}})

	// A call and a call permission, as Meta's calling webhooks would leave them.
	call, perm := store.NewID(), store.NewID()
	if _, err := b.DB.Write().Exec(ctx, `INSERT INTO calls (id, project_id, whatsapp_config_id, call_id, direction, status, duration_seconds,
		started_at, ended_at, user_wa_id, contact_id, conversation_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'inbound', 'completed', 42, ?, ?, ?, ?, ?, ?, ?)`,
		call, w.project, w.id("prod_config"), fmt.Sprintf("wacid.SWEEP%d", n), now, now, w.phone, w.id("contact"), conv, now, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DB.Write().Exec(ctx, `INSERT INTO call_permissions (id, project_id, contact_id, whatsapp_config_id, status, source,
		expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'accepted', 'user_action', ?, ?, ?)`,
		perm, w.project, w.id("contact"), w.id("prod_config"), now+7*24*3600*1_000_000, now, now); err != nil {
		t.Fatal(err)
	}
	w.ids["call"] = call
	return w
}

func templateBody(name, configID string) map[string]any {
	return map[string]any{"whatsapp_config_id": configID, "template": map[string]any{
		"name": name, "language_code": "en_US", "category": "UTILITY",
		"components": []any{map[string]any{"type": "BODY", "text": "Hello {{1}}, your order {{2}} shipped.",
			"example": map[string]any{"body_text": []any{[]any{"Ana", "A-17"}}}}},
	}}
}

// jsonOf marshals v, failing the test on error.
func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
