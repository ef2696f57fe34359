package templates_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/messaging"
)

// lastPayload returns the Graph request body stored with the newest message.
func lastPayload(t *testing.T, b *apitest.Bundle) map[string]any {
	t.Helper()
	var raw string
	if err := b.DB.Read().QueryRow(context.Background(), `SELECT meta_payload FROM messages ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func approvedFromFixture(t *testing.T, b *apitest.Bundle, fx string) string {
	t.Helper()
	d, _ := createFromFixture(t, b, fx, nil)
	id := d["id"].(string)
	setStatus(t, b, id, "approved", "m-"+id[:8])
	return id
}

func TestSendTemplateNamed(t *testing.T) {
	b, fg := setup(t)
	cfg := newConfig(t, b, configOpts{waba: "W1", token: "tok"})
	id := approvedFromFixture(t, b, "requests/template_create_marketing.json")
	fg.setReply(func(c graphCall) (int, string) { return 200, fixtureRaw(t, "responses/send_message_template.json") })

	r := b.Must(200, "POST", "/whatsapp_templates/"+id+"/send_template", map[string]any{"template": map[string]any{
		"phone_number":        "+16505551234",
		"template_parameters": map[string]any{"discount_amount": "25%", "first_name": "Jessica", "discount_code": "WELCOME25"},
		"header_type":         "image", "header_params": "1339522734477770",
	}})
	resp := r.JSON["response"].(map[string]any)
	if r.JSON["status"] != "success" || r.JSON["message"] != "Template message sent successfully" || r.JSON["template_id"] != id ||
		r.JSON["template_name"] != "welcome_discount_template" || resp["messaging_product"] != "whatsapp" {
		t.Fatalf("send response: %s", r.Body)
	}
	want := fixture(t, "requests/send_template_named_params.json")["template"]
	if got := lastPayload(t, b)["template"]; !jsonEqual(got, want) {
		t.Fatalf("template object:\n got %v\nwant %v", got, want)
	}
	// The send job delivers exactly that to Meta with the config's token.
	runner := jobs.NewRunner(b.DB, b.API.Log)
	runner.Poll = 20 * time.Millisecond
	messaging.RegisterJobs(runner, b.API)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	var sent []graphCall
	for time.Now().Before(deadline) && len(sent) == 0 {
		for _, c := range fg.take() {
			if strings.HasSuffix(c.Path, "/messages") {
				sent = append(sent, c)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(sent) != 1 || sent[0].Path != "/"+cfg.PhoneNumberID+"/messages" || sent[0].Token != "tok" || !jsonEqual(sent[0].Body["template"], want) {
		t.Fatalf("graph send: %+v", sent)
	}
}

func TestSendTemplateAuthenticationAndButtons(t *testing.T) {
	b, _ := setup(t)
	newConfig(t, b, configOpts{waba: "W1"})
	create := func(name string, comps []any) string {
		d := b.Must(201, "POST", "/whatsapp_templates", map[string]any{"template": map[string]any{
			"name": name, "language_code": "en_US", "category": "AUTHENTICATION", "components": comps}}).Data()
		setStatus(t, b, d["id"].(string), "approved", "m"+name)
		return d["id"].(string)
	}
	auth := create("verification_code", []any{
		map[string]any{"type": "BODY", "text": "{{1}} is your verification code.", "example": map[string]any{"body_text": []any{[]any{"123"}}}},
		map[string]any{"type": "BUTTONS", "buttons": []any{map[string]any{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}}},
	})
	b.Must(200, "POST", "/whatsapp_templates/"+auth+"/send_template", map[string]any{"template": map[string]any{
		"phone_number": "+16505551234", "template_parameters": []any{"J$FpnYnP"}}})
	want := fixture(t, "requests/send_template_authentication.json")["template"]
	if got := lastPayload(t, b)["template"]; !jsonEqual(got, want) {
		t.Fatalf("auth template:\n got %v\nwant %v", got, want)
	}
	// Text header, URL button, quick reply payload, document header.
	mixed := b.Must(201, "POST", "/whatsapp_templates", map[string]any{"template": map[string]any{
		"name": "order_ready", "language_code": "en", "category": "UTILITY", "components": []any{
			map[string]any{"type": "HEADER", "format": "DOCUMENT", "example": map[string]any{"header_handle": []any{"4::x"}}},
			map[string]any{"type": "BODY", "text": "Order {{1}} ready", "example": map[string]any{"body_text": []any{[]any{"A1"}}}},
			map[string]any{"type": "BUTTONS", "buttons": []any{
				map[string]any{"type": "QUICK_REPLY", "text": "Thanks"},
				map[string]any{"type": "URL", "text": "Track", "url": "https://x.example/t/{{1}}", "example": []any{"abc"}},
			}},
		}}}).Data()["id"].(string)
	setStatus(t, b, mixed, "approved", "mm")
	b.Must(200, "POST", "/whatsapp_templates/"+mixed+"/send_template", map[string]any{"template": map[string]any{
		"phone_number": "56911112222", "template_parameters": []any{"A-17"}, "header_type": "document",
		"header_params": "https://cdn.example.org/inv.pdf", "header_filename": "inv.pdf",
		"button_url_params": map[string]any{"1": "A-17"}, "button_quick_reply_payloads": map[string]any{"0": "thanks-A-17"}}})
	got := lastPayload(t, b)["template"].(map[string]any)["components"]
	wantComps := []any{
		map[string]any{"type": "header", "parameters": []any{map[string]any{"type": "document", "document": map[string]any{"link": "https://cdn.example.org/inv.pdf", "filename": "inv.pdf"}}}},
		map[string]any{"type": "body", "parameters": []any{map[string]any{"type": "text", "text": "A-17"}}},
		map[string]any{"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": []any{map[string]any{"type": "payload", "payload": "thanks-A-17"}}},
		map[string]any{"type": "button", "sub_type": "url", "index": "1", "parameters": []any{map[string]any{"type": "text", "text": "A-17"}}},
	}
	if !jsonEqual(got, wantComps) {
		t.Fatalf("components:\n got %v\nwant %v", got, wantComps)
	}
	var content string
	if err := b.DB.Read().QueryRow(context.Background(), `SELECT content FROM messages ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&content); err != nil || content != "Order A-17 ready" {
		t.Fatalf("content %q %v", content, err)
	}

	// Bad input: 4xx and nothing stored.
	before := count(t, b, `SELECT COUNT(*) FROM messages`)
	draft := b.Must(201, "POST", "/whatsapp_templates", simpleBody("still_draft")).Data()["id"].(string)
	cases := []struct {
		id     string
		body   any
		status int
		err    string
	}{
		{draft, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": []any{"a", "b"}}}, 422, "Template is not approved"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": []any{}}}, 422, "Template requires 1 parameters, but 0 were provided"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": []any{"a", "b"}, "header_params": "x", "button_url_params": map[string]any{"1": "a"}}}, 422, "Template requires 1 parameters, but 2 were provided"},
		{mixed, map[string]any{"template": map[string]any{"template_parameters": []any{"a"}}}, 422, "Phone number can't be blank"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "12", "template_parameters": []any{"a"}}}, 422, "Phone number is invalid"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": []any{"a"}, "header_params": "https://x.example/a.pdf"}}, 422, "Button url params must include a value for button 1"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": []any{"a"}, "button_url_params": map[string]any{"1": "a"}}}, 422, "Header params can't be blank: the template has a document header"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": []any{"a"}, "header_type": "image", "header_params": "x", "button_url_params": map[string]any{"1": "a"}}}, 422, "Header type must be document for this template"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": "a"}}, 422, "Invalid parameters"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": []any{map[string]any{}}, "header_params": "x", "button_url_params": map[string]any{"1": "a"}}}, 422, "Template parameter 1 must be a string"},
		{mixed, map[string]any{"template": map[string]any{"phone_number": "+56911112222", "template_parameters": []any{"a"}, "header_params": "x", "button_url_params": map[string]any{"1": "a"}, "whatsapp_config_id": "nope"}}, 404, ""},
		{mixed, `{"template":`, 400, ""},
		{"not-a-uuid", map[string]any{}, 404, "Template not found"},
	}
	for i, c := range cases {
		r := b.Do("POST", "/whatsapp_templates/"+c.id+"/send_template", c.body)
		if r.Status != c.status || (c.err != "" && r.JSON["error"] != c.err) {
			t.Errorf("case %d: %d %s, want %d %q", i, r.Status, r.Body, c.status, c.err)
		}
	}
	if r := b.DoKey(b.Key2, "POST", "/whatsapp_templates/"+mixed+"/send_template", map[string]any{"template": map[string]any{"phone_number": "+56911112222"}}); r.Status != 404 {
		t.Fatalf("other project: %d", r.Status)
	}
	if after := count(t, b, `SELECT COUNT(*) FROM messages`); after != before {
		t.Fatalf("bad sends stored %d messages", after-before)
	}
}

// TestMessageContentIsTheRenderedBody: a template message sent through
// /whatsapp_messages gets the template's body, filled with its parameters,
// as its content when the config's WABA has the template; otherwise the
// content given, or "Template: <name>".
func TestMessageContentIsTheRenderedBody(t *testing.T) {
	b, _ := setup(t)
	cfg := newConfig(t, b, configOpts{waba: "W1"})
	body := simpleBody("order_shipped")
	body["whatsapp_config_id"] = cfg.ID
	d := b.Must(201, "POST", "/whatsapp_templates", body).Data()
	setStatus(t, b, d["id"].(string), "approved", "m-1")
	send := func(msg map[string]any) map[string]any {
		msg["message_type"] = "template"
		msg["phone_number"] = "+5491100000001"
		return b.Must(201, "POST", "/whatsapp_messages", map[string]any{"whatsapp_config_id": cfg.ID,
			"message": msg}).Data()
	}
	m := send(map[string]any{"template_name": "order_shipped", "template_language": "en_US", "template_params": []any{"Ana", "A-17"}})
	if m["content"] != "Hello Ana, your order A-17 shipped." {
		t.Fatalf("content %q, want the rendered body", m["content"])
	}
	var last string
	if err := b.DB.Read().QueryRow(context.Background(), `SELECT last_message_text FROM conversations WHERE whatsapp_config_id = ?`,
		cfg.ID).Scan(&last); err != nil || last != "Hello Ana, your order A-17 shipped." {
		t.Fatalf("conversation's last message text %q (%v)", last, err)
	}
	// Another language of the same name is another template: not known.
	m = send(map[string]any{"template_name": "order_shipped", "template_language": "es", "template_params": []any{"Ana", "A-17"},
		"content": "Pedido enviado"})
	if m["content"] != "Pedido enviado" {
		t.Fatalf("content %q, want the given content", m["content"])
	}
	m = send(map[string]any{"template_name": "unknown_tpl", "template_language": "en_US"})
	if m["content"] != "Template: unknown_tpl" {
		t.Fatalf("content %q", m["content"])
	}
}
