package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
)

// kapsoClient is what a Kapso integration is: a base URL and an API key. It
// sends only requests Kapso documents, bodies under their documented root
// keys (Kapso's semantics notes, appendix B, and the v1 OpenAPI examples),
// and checks each answer against Kapso's documents.
type kapsoClient struct {
	t       *testing.T
	baseURL string
	apiKey  string
}

// call sends one request and returns the status and decoded body.
func (k *kapsoClient) call(method, path string, body any) (int, map[string]any) {
	k.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			k.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, k.baseURL+path, rd)
	if err != nil {
		k.t.Fatal(err)
	}
	if k.apiKey != "" {
		req.Header.Set("X-API-Key", k.apiKey)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := httpClient.Do(req)
	if err != nil {
		k.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	apitest.Validate(k.t, req, res.StatusCode, res.Header, raw)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// ok sends a request that must succeed with want.
func (k *kapsoClient) ok(want int, method, path string, body any) map[string]any {
	k.t.Helper()
	status, out := k.call(method, path, body)
	if status != want {
		k.t.Fatalf("%s %s: %d, want %d: %v", method, path, status, want, out)
	}
	return out
}

func data(out map[string]any) map[string]any { d, _ := out["data"].(map[string]any); return d }

func dataList(out map[string]any) []map[string]any {
	arr, _ := out["data"].([]any)
	l := make([]map[string]any, 0, len(arr))
	for _, v := range arr {
		m, _ := v.(map[string]any)
		l = append(l, m)
	}
	return l
}

// TestKapsoClient points a Kapso client at Parley by base URL only and runs
// every send request of Kapso's documentation (text, image, document,
// location, buttons, list, three template forms, reaction, standalone,
// send_template) plus the reads, notes, webhook and status changes around
// them; each must succeed, and each message must reach WhatsApp (the
// sandbox) rather than fail.
func TestKapsoClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, map[string]string{"PARLEY_SANDBOX_STATUS_DELAY": "20ms"})
	k := &kapsoClient{t: t, baseURL: s.URL + "/api/v1", apiKey: s.Key}

	// The number to talk from, and templates the examples use, created
	// and submitted the Kapso way.
	cfgs := dataList(k.ok(200, "GET", "/whatsapp_configs", nil))
	if len(cfgs) != 1 {
		t.Fatalf("%d configs", len(cfgs))
	}
	cfgID := cfgs[0]["id"].(string)
	k.ok(200, "GET", "/whatsapp_configs/"+cfgID, nil)
	templates := []map[string]any{
		{"name": "order_update", "language_code": "en_US", "category": "UTILITY", "parameter_format": "POSITIONAL",
			"components": []any{map[string]any{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped.",
				"example": map[string]any{"body_text": []any{[]any{"Ana", "A-17"}}}}}},
		{"name": "order_update_named", "language_code": "en_US", "category": "UTILITY", "parameter_format": "NAMED",
			"components": []any{map[string]any{"type": "BODY", "text": "Hi {{customer_name}}, your order {{order_id}} has shipped.",
				"example": map[string]any{"body_text_named_params": []any{
					map[string]any{"param_name": "customer_name", "example": "Ana"}, map[string]any{"param_name": "order_id", "example": "A-17"}}}}}},
		{"name": "promo", "language_code": "es", "category": "MARKETING", "parameter_format": "NAMED",
			"components": []any{
				map[string]any{"type": "HEADER", "format": "TEXT", "text": "Ofertas de {{season}}",
					"example": map[string]any{"header_text_named_params": []any{map[string]any{"param_name": "season", "example": "Invierno"}}}},
				map[string]any{"type": "BODY", "text": "Usá el código {{code}} en tu próxima compra.",
					"example": map[string]any{"body_text_named_params": []any{map[string]any{"param_name": "code", "example": "INV10"}}}}}},
		{"name": "invoice_ready", "language_code": "en_US", "category": "UTILITY", "parameter_format": "POSITIONAL",
			"components": []any{
				map[string]any{"type": "HEADER", "format": "DOCUMENT", "example": map[string]any{"header_handle": []any{"4::aW..."}}},
				map[string]any{"type": "BODY", "text": "Hi {{1}}, your invoice is attached.", "example": map[string]any{"body_text": []any{[]any{"Ana"}}}},
				map[string]any{"type": "BUTTONS", "buttons": []any{map[string]any{"type": "URL", "text": "View order",
					"url": "https://shop.example.org/orders/{{1}}", "example": []any{"A-17"}}}}}},
	}
	ids := map[string]string{}
	for _, tpl := range templates {
		d := data(k.ok(201, "POST", "/whatsapp_templates", map[string]any{"template": tpl, "whatsapp_config_id": cfgID}))
		ids[tpl["name"].(string)] = d["id"].(string)
		sub := k.ok(200, "POST", "/whatsapp_templates/"+d["id"].(string)+"/submit", map[string]any{"whatsapp_config_id": cfgID})
		if sub["status"] != "success" {
			t.Fatalf("submit %s: %v", tpl["name"], sub)
		}
	}
	for name, id := range ids {
		eventually(t, name+" to be approved", 10*time.Second, func() bool {
			return data(k.ok(200, "GET", "/whatsapp_templates/"+id, nil))["status"] == "approved"
		})
	}

	// The customer writes first (the sandbox's side, not Kapso's), which
	// opens the 24-hour window.
	const phone = "+56911112222"
	in := newClient(t, s).must(202, "POST", "/whatsapp_configs/"+cfgID+"/sandbox_messages",
		map[string]any{"from": "56911112222", "profile_name": "Ana", "type": "text", "text": map[string]any{"body": "hola"}}).data()
	customerWAMID := in["whatsapp_message_id"].(string)
	convs := dataList(k.ok(200, "GET", "/whatsapp_conversations?"+url.Values{"q[phone_number_eq]": {phone}, "q[status_eq]": {"active"}}.Encode(), nil))
	if len(convs) != 1 {
		t.Fatalf("%d conversations with %s", len(convs), phone)
	}
	conv := convs[0]["id"].(string)
	k.ok(200, "GET", "/whatsapp_conversations/"+conv, nil)

	// Appendix B, request by request.
	inConv := "/whatsapp_conversations/" + conv + "/whatsapp_messages"
	sends := []struct {
		name string
		body map[string]any
	}{
		{"text", map[string]any{"message": map[string]any{"message_type": "text", "content": "Your order shipped"}}},
		{"image", map[string]any{"message": map[string]any{"message_type": "image", "media_url": "https://cdn.example.org/p.png", "caption": "Receipt", "content": "Receipt"}}},
		{"document", map[string]any{"message": map[string]any{"message_type": "document", "media_url": "https://cdn.example.org/inv.pdf", "filename": "inv-88.pdf", "content": "Invoice"}}},
		{"location", map[string]any{"message": map[string]any{"message_type": "location", "latitude": -33.45, "longitude": -70.66, "location_name": "Office", "content": "Here"}}},
		{"buttons", map[string]any{"message": map[string]any{"message_type": "interactive", "interactive_type": "button", "body_text": "Confirm?", "content": "Confirm?",
			"buttons": []any{map[string]any{"id": "y", "title": "Yes"}, map[string]any{"id": "n", "title": "No"}}}}},
		{"list", map[string]any{"message": map[string]any{"message_type": "interactive", "interactive_type": "list", "body_text": "Pick a slot", "list_button_text": "Slots",
			"sections": []any{map[string]any{"title": "Mon", "rows": []any{map[string]any{"id": "m9", "title": "09:00", "description": "1h"}}}}}}},
		{"template positional", map[string]any{"message": map[string]any{"message_type": "template", "content": "t", "template_name": "order_update",
			"template_language": "en_US", "template_params": []any{"Ana", "A-17"}}}},
		{"template named", map[string]any{"message": map[string]any{"message_type": "template", "content": "t", "template_name": "order_update_named",
			"template_language": "en_US", "template_params": map[string]any{"customer_name": "Ana", "order_id": "A-17"}}}},
		{"template header+body", map[string]any{"message": map[string]any{"message_type": "template", "content": "t", "template_name": "promo",
			"template_language": "es", "template_params": map[string]any{"header": map[string]any{"season": "Invierno"}, "body": map[string]any{"code": "INV10"}}}}},
		{"reaction", map[string]any{"message": map[string]any{"message_type": "reaction", "reaction_emoji": "👍", "reacted_to_message_id": customerWAMID, "content": "👍"}}},
	}
	for _, snd := range sends {
		d := data(k.ok(201, "POST", inConv, snd.body))
		if d["direction"] != "outbound" || d["message_type"] != snd.body["message"].(map[string]any)["message_type"] {
			t.Errorf("%s: %v", snd.name, d)
		}
	}
	// Standalone: finds the active conversation (checked below by counting
	// its messages).
	k.ok(201, "POST", "/whatsapp_messages?whatsapp_config_id="+cfgID,
		map[string]any{"message": map[string]any{"phone_number": phone, "message_type": "text", "content": "Hi"}})
	st := k.ok(200, "POST", "/whatsapp_templates/"+ids["invoice_ready"]+"/send_template", map[string]any{"template": map[string]any{
		"phone_number": phone, "template_parameters": []any{"Ana"}, "header_type": "document",
		"header_params": "https://cdn.example.org/inv.pdf", "header_filename": "inv.pdf", "button_url_params": map[string]any{"0": "A-17"}}})
	if st["status"] != "success" || st["template_name"] != "invoice_ready" {
		t.Fatalf("send_template: %v", st)
	}

	// Every message reaches WhatsApp: none fails, all end up read.
	expectRead(t, newClient(t, s), conv, len(sends)+2, func(m map[string]any) bool { return m["direction"] == "outbound" })
	msgs := dataList(k.ok(200, "GET", inConv+"?per_page=100", nil))
	if len(msgs) != len(sends)+3 {
		t.Fatalf("%d messages in the conversation, want %d", len(msgs), len(sends)+3)
	}

	// The reads and writes around a conversation.
	var inboundID string
	for _, m := range msgs {
		if m["direction"] == "inbound" {
			inboundID = m["id"].(string)
		}
	}
	k.ok(200, "PATCH", "/whatsapp_messages/"+inboundID+"/mark_as_read", nil)
	k.ok(200, "GET", "/whatsapp_contacts?"+url.Values{"q[wa_id_eq]": {"56911112222"}}.Encode(), nil)
	k.ok(200, "GET", "/whatsapp_contacts/56911112222", nil)
	k.ok(201, "POST", "/whatsapp_contacts/56911112222/notes", map[string]any{"note": map[string]any{"content": "VIP"}})
	k.ok(200, "GET", "/whatsapp_contacts/56911112222/notes", nil)
	k.ok(200, "GET", "/whatsapp_templates?"+url.Values{"q[name_cont]": {"order"}}.Encode(), nil)
	k.ok(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Acme", "external_customer_id": "acme-1"}})
	k.ok(200, "GET", "/customers", nil)
	// A webhook with the older event names and retry_config of Kapso's
	// rendered reference.
	wh := data(k.ok(201, "POST", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": "https://hooks.example.org/kapso", "secret_key": "s3cret", "events": []any{"messages", "status_updates", "templates"},
		"retry_config": map[string]any{"max_attempts": 3, "backoff_seconds": 60}}}))
	k.ok(200, "PATCH", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks/"+wh["id"].(string), map[string]any{"whatsapp_webhook": map[string]any{"active": false}})
	k.ok(200, "GET", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks", nil)
	k.ok(204, "DELETE", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks/"+wh["id"].(string), nil)
	ended := data(k.ok(200, "PATCH", "/whatsapp_conversations/"+conv, map[string]any{"whatsapp_conversation": map[string]any{"status": "ended"}}))
	if ended["status"] != "ended" {
		t.Errorf("ended: %v", ended)
	}

	// Kapso's error shapes.
	if status, out := k.call("GET", "/whatsapp_conversations/3c90c3cc-0d44-4b50-8888-8dd25736052a", nil); status != 404 || out["error"] == nil {
		t.Errorf("unknown conversation: %d %v", status, out)
	}
	anon := &kapsoClient{t: t, baseURL: k.baseURL}
	if status, out := anon.call("GET", "/whatsapp_conversations", nil); status != 401 || out["error"] == nil {
		t.Errorf("no key: %d %v", status, out)
	}
	if status, out := k.call("POST", inConv, map[string]any{"message": map[string]any{"message_type": "hologram", "content": "x"}}); status != 422 || out["error"] == nil {
		t.Errorf("bad message type: %d %v", status, out)
	}
}
