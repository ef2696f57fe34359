package platformapi_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/delivery"
	"github.com/parleyhq/parley/internal/jobs"
)

func TestWebhooks(t *testing.T) {
	b := apitest.Setup(t)
	cust := b.PMust(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Acme"}}).Data()["id"].(string)
	pn := connect(t, b, cust, "5550001")
	cfgID := pn["internal_id"].(string)
	base := "/whatsapp/phone_numbers/5550001/webhooks"

	n1 := b.PMust(201, "POST", base, map[string]any{"whatsapp_webhook": map[string]any{
		"url": "https://hooks.example.com/a", "events": []string{"whatsapp.message.received"}}}).Data()
	if n1["phone_number_id"] != "5550001" || n1["kind"] != "kapso" || n1["secret_key"] == "" {
		t.Fatalf("number webhook: %v", n1)
	}
	n2 := b.PMust(201, "POST", "/whatsapp/webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": "https://hooks.example.com/b", "phone_number_id": "5550001", "events": []string{"whatsapp.conversation.created"}}}).Data()
	if n2["phone_number_id"] != "5550001" {
		t.Errorf("number webhook through /whatsapp/webhooks: %v", n2)
	}
	proj := b.PMust(201, "POST", "/whatsapp/webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": "https://hooks.example.com/p", "events": []string{"whatsapp.phone_number.created"}}}).Data()
	if proj["phone_number_id"] != nil {
		t.Errorf("project webhook: %v", proj)
	}
	// Message events are for phone-number webhooks only.
	b.PMust(422, "POST", "/whatsapp/webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": "https://hooks.example.com/x", "events": []string{"whatsapp.message.received"}}})

	// Meta kind: no events, one per number, never project-level.
	meta := b.PMust(201, "POST", base, map[string]any{"whatsapp_webhook": map[string]any{"url": "https://hooks.example.com/meta", "kind": "meta"}}).Data()
	if meta["kind"] != "meta" || len(meta["events"].([]any)) != 0 {
		t.Errorf("meta webhook: %v", meta)
	}
	b.PMust(422, "POST", "/whatsapp/webhooks", map[string]any{"whatsapp_webhook": map[string]any{"url": "https://hooks.example.com/m2", "kind": "meta", "phone_number_id": "5550001"}})
	b.PMust(422, "POST", "/whatsapp/webhooks", map[string]any{"whatsapp_webhook": map[string]any{"url": "https://hooks.example.com/m3", "kind": "meta"}})
	b.PMust(422, "PATCH", base+"/"+n1["id"].(string), map[string]any{"whatsapp_webhook": map[string]any{"kind": "meta"}})

	if n := len(b.PMust(200, "GET", "/whatsapp/webhooks", nil).List()); n != 4 {
		t.Errorf("project list shows %d, want 4 (both scopes)", n)
	}
	if n := len(b.PMust(200, "GET", base, nil).List()); n != 3 {
		t.Errorf("number list %d, want 3", n)
	}
	for q, want := range map[string]int{"?kind=meta": 1, "?url_contains=/p": 1, "?active=true": 4, "?active=false": 0, "?per_page=2": 2} {
		if n := len(b.PMust(200, "GET", "/whatsapp/webhooks"+q, nil).List()); n != want {
			t.Errorf("list %s: %d, want %d", q, n, want)
		}
	}
	b.PMust(400, "GET", "/whatsapp/webhooks?active=maybe", nil)
	b.PMust(400, "GET", base+"?created_after=nope", nil)

	// One store: /api/v1 sees the number's webhooks and changes them.
	b.Must(200, "PATCH", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks/"+n1["id"].(string), map[string]any{"whatsapp_webhook": map[string]any{"active": false}})
	if got := b.PMust(200, "GET", "/whatsapp/webhooks/"+n1["id"].(string), nil).Data()["active"]; got != false {
		t.Errorf("active after v1 patch: %v", got)
	}
	up := b.PMust(200, "PATCH", "/whatsapp/webhooks/"+n1["id"].(string), map[string]any{"whatsapp_webhook": map[string]any{"active": true, "url": "https://hooks.example.com/a2"}}).Data()
	if up["url"] != "https://hooks.example.com/a2" || up["active"] != true {
		t.Errorf("patched: %v", up)
	}
	b.PMust(422, "PATCH", base+"/"+n1["id"].(string), map[string]any{"whatsapp_webhook": map[string]any{"url": "not a url"}})
	// A project webhook is not under a number's route.
	b.PMust(404, "GET", base+"/"+proj["id"].(string), nil)

	// Test delivery, event_type in the body or the query.
	b.PMust(200, "POST", "/whatsapp/webhooks/"+n1["id"].(string)+"/test", map[string]any{"event_type": "whatsapp.message.received"})
	b.PMust(200, "POST", "/whatsapp/webhooks/"+proj["id"].(string)+"/test?event_type=whatsapp.phone_number.created", nil)
	b.PMust(422, "POST", "/whatsapp/webhooks/"+n1["id"].(string)+"/test?event_type=whatsapp.message.failed", nil)

	// Delivery log: both tests, newest first, cursor paged.
	all := b.PMust(200, "GET", "/webhook_deliveries", nil)
	if len(all.List()) != 2 || all.List()[0]["webhook_id"] != proj["id"] || all.List()[1]["phone_number_id"] != "5550001" {
		t.Fatalf("deliveries: %s", all.Body)
	}
	p1 := b.PMust(200, "GET", "/webhook_deliveries?limit=1", nil)
	next, _ := p1.JSON["paging"].(map[string]any)["next"].(string)
	p2 := b.PMust(200, "GET", "/webhook_deliveries?limit=1&after="+next, nil)
	if len(p2.List()) != 1 || p2.List()[0]["id"] != all.List()[1]["id"] || p2.JSON["paging"].(map[string]any)["next"] != nil {
		t.Errorf("second page: %s", p2.Body)
	}
	for q, want := range map[string]int{"?webhook_id=" + n1["id"].(string): 1, "?event=whatsapp.phone_number.created": 1,
		"?status=pending": 2, "?status=failed": 0, "?errors_only=true": 0, "?period=30d": 2} {
		if n := len(b.PMust(200, "GET", "/webhook_deliveries"+q, nil).List()); n != want {
			t.Errorf("deliveries %s: %d, want %d", q, n, want)
		}
	}
	for _, q := range []string{"?status=bogus", "?period=1y", "?after=xyz", "?errors_only=perhaps", "?webhook_id=1"} {
		b.PMust(400, "GET", "/webhook_deliveries"+q, nil)
	}
	// Redelivery of a finished delivery of a project webhook.
	did := all.List()[0]["id"].(string)
	if _, err := b.DB.Write().Exec(context.Background(), `UPDATE deliveries SET status = 'failed', last_error = 'HTTP 500' WHERE id = ?`, did); err != nil {
		t.Fatal(err)
	}
	if n := len(b.PMust(200, "GET", "/webhook_deliveries?errors_only=true", nil).List()); n != 1 {
		t.Errorf("errors_only: %d", n)
	}
	if got := b.PMust(202, "POST", "/webhook_deliveries/"+did+"/redeliver", nil).Data()["status"]; got != "pending" {
		t.Errorf("redelivered status %v", got)
	}
	// And through /api/v1, the project webhook's redelivery route.
	if _, err := b.DB.Write().Exec(context.Background(), `UPDATE deliveries SET status = 'failed' WHERE id = ?`, did); err != nil {
		t.Fatal(err)
	}
	b.Must(202, "POST", "/webhooks/"+proj["id"].(string)+"/deliveries/"+did+"/redeliver", nil)

	// Tenancy.
	for _, p := range []string{"/whatsapp/webhooks/" + n1["id"].(string), base, base + "/" + n1["id"].(string)} {
		if r := b.PKey(b.Key2, "GET", p, nil); r.Status != 404 {
			t.Errorf("other project GET %s: %d", p, r.Status)
		}
	}
	if r := b.PKey(b.Key2, "POST", "/webhook_deliveries/"+did+"/redeliver", nil); r.Status != 404 {
		t.Errorf("other project redeliver: %d", r.Status)
	}
	if r := b.PKey(b.Key2, "DELETE", "/whatsapp/webhooks/"+n1["id"].(string), nil); r.Status != 404 {
		t.Errorf("other project delete: %d", r.Status)
	}
	if n := len(b.PKey(b.Key2, "GET", "/webhook_deliveries", nil).List()); n != 0 {
		t.Errorf("other project sees %d deliveries", n)
	}
	b.PMust(204, "DELETE", base+"/"+n1["id"].(string), nil)
	b.PMust(204, "DELETE", "/whatsapp/webhooks/"+proj["id"].(string), nil)
	b.PMust(404, "GET", "/whatsapp/webhooks/"+proj["id"].(string), nil)
	if n := len(b.PMust(200, "GET", "/whatsapp/webhooks", nil).List()); n != 2 {
		t.Errorf("after deletes: %d", n)
	}
}

// TestMetaWebhookForwardsRawPayload: a meta webhook receives Meta's webhook
// body byte for byte, with Meta's X-Hub-Signature-256, and no Kapso events.
func TestMetaWebhookForwardsRawPayload(t *testing.T) {
	const appSecret = "meta-app-secret"
	var mu sync.Mutex
	type got struct {
		body []byte
		h    http.Header
	}
	var received []got
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, got{body, r.Header.Clone()})
		mu.Unlock()
	}))
	t.Cleanup(dest.Close)
	b := apitest.Setup(t, func(c *config.Config, d *api.Deps) {
		c.MetaAppSecret, c.WebhookAllowPrivate = appSecret, true
	})
	b.StartRunner(b.NewRunner(func(r *jobs.Runner, s *api.Server) { delivery.RegisterForwarding(r, s.Config) }))
	cust := b.PMust(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Acme"}}).Data()["id"].(string)
	connect(t, b, cust, "5550002")
	// The number's webhook_destination_url points elsewhere; the meta
	// webhook still gets its own copy.
	b.PMust(201, "POST", "/whatsapp/webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": dest.URL + "/meta", "kind": "meta", "phone_number_id": "5550002"}})

	body := []byte(fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"waba-5550002","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550002","phone_number_id":"5550002"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"5215512345678"}],"messages":[{"from":"5215512345678","id":"wamid.meta-forward-1","timestamp":"%d","type":"text","text":{"body":"hola"}}]}}]}]}`, time.Now().Unix()))
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	req, _ := http.NewRequest("POST", b.Srv.URL+"/webhooks/whatsapp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", sig)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("meta webhook: %d", res.StatusCode)
	}
	apitest.WaitFor(t, "the forwarded body", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(received) > 0
	})
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 1 {
		t.Fatalf("%d forwards", len(received))
	}
	sum := sha256.Sum256(body)
	if !bytes.Equal(received[0].body, body) || received[0].h.Get("X-Hub-Signature-256") != sig ||
		received[0].h.Get("X-Idempotency-Key") != hex.EncodeToString(sum[:]) || received[0].h.Get("X-Webhook-Event") != "" {
		t.Errorf("forwarded %q with headers %v", received[0].body, received[0].h)
	}
}
