package messaging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestSendEveryType sends each message type Kapso documents and checks the
// Graph request body Meta receives, the 201 rendering and the final state.
func TestSendEveryType(t *testing.T) {
	e := setup(t, setupOpts{})
	cases := []struct {
		name    string
		msg     map[string]any
		meta    map[string]any // the type-specific part of the Graph body
		content string
		mtd     map[string]any
		meta2   map[string]any // expected metadata
	}{
		{"text", map[string]any{"message_type": "text", "content": "Hi https://x.example"},
			map[string]any{"type": "text", "text": map[string]any{"body": "Hi https://x.example", "preview_url": true}},
			"Hi https://x.example", map[string]any{"text": "Hi https://x.example"}, map[string]any{}},
		{"image-url", map[string]any{"message_type": "image", "media_url": "https://cdn.example.org/p.png", "caption": "Receipt"},
			map[string]any{"type": "image", "image": map[string]any{"link": "https://cdn.example.org/p.png", "caption": "Receipt"}},
			"Receipt", map[string]any{"caption": "Receipt"}, map[string]any{}},
		{"image-id", map[string]any{"message_type": "image", "media_id": "1479537139650973", "content": "Look"},
			map[string]any{"type": "image", "image": map[string]any{"id": "1479537139650973", "caption": "Look"}},
			"Look", map[string]any{"caption": "Look", "media_id": "1479537139650973"}, map[string]any{}},
		{"video", map[string]any{"message_type": "video", "media_id": "1166846181421424", "caption": "Eclipse"},
			map[string]any{"type": "video", "video": map[string]any{"id": "1166846181421424", "caption": "Eclipse"}},
			"Eclipse", map[string]any{"caption": "Eclipse", "media_id": "1166846181421424"}, map[string]any{}},
		{"audio", map[string]any{"message_type": "audio", "media_url": "https://cdn.example.org/a.ogg"},
			map[string]any{"type": "audio", "audio": map[string]any{"link": "https://cdn.example.org/a.ogg"}},
			"Audio attached", map[string]any{}, map[string]any{}},
		{"document", map[string]any{"message_type": "document", "media_url": "https://cdn.example.org/inv.pdf", "filename": "inv-88.pdf", "content": "Invoice"},
			map[string]any{"type": "document", "document": map[string]any{"link": "https://cdn.example.org/inv.pdf", "filename": "inv-88.pdf", "caption": "Invoice"}},
			"Invoice", map[string]any{"caption": "Invoice", "filename": "inv-88.pdf"}, map[string]any{}},
		{"location", map[string]any{"message_type": "location", "latitude": -33.45, "longitude": "-70.66", "location_name": "Office"},
			map[string]any{"type": "location", "location": map[string]any{"latitude": -33.45, "longitude": -70.66, "name": "Office"}},
			"Location: Office (-33.45, -70.66)", map[string]any{"latitude": -33.45, "longitude": -70.66, "location_name": "Office"}, map[string]any{}},
		{"buttons", map[string]any{"message_type": "interactive", "interactive_type": "button", "body_text": "Confirm?",
			"buttons": []any{map[string]any{"id": "y", "title": "Yes"}, map[string]any{"id": "n", "title": "No"}}},
			map[string]any{"type": "interactive", "interactive": map[string]any{"type": "button", "body": map[string]any{"text": "Confirm?"},
				"action": map[string]any{"buttons": []any{
					map[string]any{"type": "reply", "reply": map[string]any{"id": "y", "title": "Yes"}},
					map[string]any{"type": "reply", "reply": map[string]any{"id": "n", "title": "No"}}}}}},
			"Confirm?", map[string]any{"interactive_type": "button", "body_text": "Confirm?",
				"buttons": []any{map[string]any{"id": "y", "title": "Yes"}, map[string]any{"id": "n", "title": "No"}}}, map[string]any{}},
		{"list", map[string]any{"message_type": "interactive", "interactive_type": "list", "body_text": "Pick a slot", "list_button_text": "Slots",
			"header_text": "Slots", "footer_text": "Thanks",
			"sections": []any{map[string]any{"title": "Mon", "rows": []any{map[string]any{"id": "m9", "title": "09:00", "description": "1h"}}}}},
			map[string]any{"type": "interactive", "interactive": map[string]any{"type": "list", "body": map[string]any{"text": "Pick a slot"},
				"header": map[string]any{"type": "text", "text": "Slots"}, "footer": map[string]any{"text": "Thanks"},
				"action": map[string]any{"button": "Slots", "sections": []any{map[string]any{"title": "Mon",
					"rows": []any{map[string]any{"id": "m9", "title": "09:00", "description": "1h"}}}}}}},
			"Pick a slot", map[string]any{"interactive_type": "list", "body_text": "Pick a slot", "list_button_text": "Slots",
				"header_text": "Slots", "footer_text": "Thanks",
				"sections": []any{map[string]any{"title": "Mon", "rows": []any{map[string]any{"id": "m9", "title": "09:00", "description": "1h"}}}}},
			map[string]any{}},
		{"template-positional", map[string]any{"message_type": "template", "template_name": "order_update", "template_language": "en_US",
			"template_params": []any{"Ana", "A-17"}},
			map[string]any{"type": "template", "template": map[string]any{"name": "order_update", "language": map[string]any{"code": "en_US"},
				"components": []any{map[string]any{"type": "body", "parameters": []any{
					map[string]any{"type": "text", "text": "Ana"}, map[string]any{"type": "text", "text": "A-17"}}}}}},
			"Template: order_update", map[string]any{"template_name": "order_update", "template_language": "en_US", "template_params": []any{"Ana", "A-17"}},
			map[string]any{"template_name": "order_update", "template_language": "en_US", "template_params": []any{"Ana", "A-17"}}},
		{"template-named", map[string]any{"message_type": "template", "content": "t", "template_name": "order_update_named",
			"template_params": map[string]any{"order_id": "A-17", "customer_name": "Ana"}},
			map[string]any{"type": "template", "template": map[string]any{"name": "order_update_named", "language": map[string]any{"code": "en_US"},
				"components": []any{map[string]any{"type": "body", "parameters": []any{
					map[string]any{"type": "text", "parameter_name": "customer_name", "text": "Ana"},
					map[string]any{"type": "text", "parameter_name": "order_id", "text": "A-17"}}}}}},
			"t", map[string]any{"template_name": "order_update_named", "template_language": "en_US",
				"template_params": map[string]any{"order_id": "A-17", "customer_name": "Ana"}},
			map[string]any{"template_name": "order_update_named", "template_language": "en_US",
				"template_params": map[string]any{"order_id": "A-17", "customer_name": "Ana"}}},
		{"template-header-body", map[string]any{"message_type": "template", "template_name": "promo", "template_language": "es",
			"template_params": map[string]any{"header": map[string]any{"season": "Invierno"}, "body": map[string]any{"code": "INV10"}}},
			map[string]any{"type": "template", "template": map[string]any{"name": "promo", "language": map[string]any{"code": "es"},
				"components": []any{
					map[string]any{"type": "header", "parameters": []any{map[string]any{"type": "text", "parameter_name": "season", "text": "Invierno"}}},
					map[string]any{"type": "body", "parameters": []any{map[string]any{"type": "text", "parameter_name": "code", "text": "INV10"}}}}}},
			"Template: promo", nil, nil},
		{"template-media-header", map[string]any{"message_type": "template", "template_name": "invoice", "template_language": "en",
			"header_type": "document", "header_params": "https://cdn.example.org/inv.pdf", "header_filename": "inv.pdf", "template_params": []any{"Ana"}},
			map[string]any{"type": "template", "template": map[string]any{"name": "invoice", "language": map[string]any{"code": "en"},
				"components": []any{
					map[string]any{"type": "header", "parameters": []any{map[string]any{"type": "document",
						"document": map[string]any{"link": "https://cdn.example.org/inv.pdf", "filename": "inv.pdf"}}}},
					map[string]any{"type": "body", "parameters": []any{map[string]any{"type": "text", "text": "Ana"}}}}}},
			"Template: invoice", nil, nil},
		{"contacts", map[string]any{"message_type": "contacts", "contacts": []any{map[string]any{"first_name": "Barbara", "last_name": "Johnson",
			"phones": []any{map[string]any{"phone": "+19175559999", "type": "Mobile", "wa_id": "19175559999"}}}}},
			map[string]any{"type": "contacts", "contacts": []any{map[string]any{
				"name":   map[string]any{"first_name": "Barbara", "last_name": "Johnson", "formatted_name": "Barbara Johnson"},
				"phones": []any{map[string]any{"phone": "+19175559999", "type": "Mobile", "wa_id": "19175559999"}}}}},
			"Contact: Barbara Johnson", nil, nil},
	}
	sent := map[string]string{} // case → message id
	for _, c := range cases {
		msg := map[string]any{"phone_number": "+1 (650) 555-1234"}
		for k, v := range c.msg {
			msg[k] = v
		}
		d := e.Must(201, "POST", "/whatsapp_messages?whatsapp_config_id="+e.cfg.ID, map[string]any{"message": msg}).Data()
		if d["direction"] != "outbound" || d["phone_number"] != "+16505551234" || d["message_type"] != msg["message_type"] {
			t.Errorf("%s: rendered %v", c.name, d)
		}
		if d["content"] != c.content {
			t.Errorf("%s: content %q, want %q", c.name, d["content"], c.content)
		}
		if c.mtd != nil {
			jsonEq(t, c.name+" message_type_data", d["message_type_data"], c.mtd)
		}
		if c.meta2 != nil {
			jsonEq(t, c.name+" metadata", d["metadata"], c.meta2)
		}
		sent[c.name] = d["id"].(string)
	}
	waitFor(t, "every send to reach Graph", func() bool { return len(e.g.requests()) == len(cases) })
	// The job runner sends concurrently: match each case to its request.
	reqs := e.g.requests()
	for _, r := range reqs {
		if r.Path != "/v24.0/"+phoneID+"/messages" || r.Auth != "Bearer access-token-"+phoneID {
			t.Errorf("request %s auth %q", r.Path, r.Auth)
		}
	}
	for _, c := range cases {
		want := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": customer}
		for k, v := range c.meta {
			want[k] = v
		}
		found := false
		wb, _ := json.Marshal(want)
		for _, r := range reqs {
			if gb, _ := json.Marshal(r.Body); bytes.Equal(gb, wb) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no Graph request with body %s", c.name, wb)
			for _, r := range reqs {
				if r.Body["type"] == want["type"] {
					gb, _ := json.Marshal(r.Body)
					t.Logf("  candidate %s", gb)
				}
			}
		}
	}
	// All went into one conversation, opened once, and every message ends sent.
	convs := e.Must(200, "GET", "/whatsapp_conversations", nil).List()
	if len(convs) != 1 || convs[0]["phone_number"] != "+16505551234" || convs[0]["status"] != "active" {
		t.Fatalf("conversations: %v", convs)
	}
	convID := convs[0]["id"].(string)
	waitFor(t, "all messages sent", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM messages WHERE status = 'sent' AND whatsapp_message_id IS NOT NULL`) == len(cases)
	})
	list := e.Must(200, "GET", "/whatsapp_conversations/"+convID+"/whatsapp_messages?per_page=100", nil)
	items := list.List()
	if len(items) != len(cases) || items[0]["id"] != sent["template-media-header"] && items[0]["id"] != sent["contacts"] {
		t.Fatalf("list: %d items, first %v", len(items), items[0]["id"])
	}
	for _, it := range items {
		if it["status"] != "sent" || !strings.HasPrefix(str(it["whatsapp_message_id"]), "wamid.TEST") || it["processing_status"] != "processed" {
			t.Errorf("message not sent: %v", it)
		}
	}
	if n := e.count(t, `SELECT COUNT(*) FROM events WHERE type = 'whatsapp.conversation.created'`); n != 1 {
		t.Errorf("conversation.created events: %d", n)
	}
	v2s, v1s := e.eventsOf(t, "whatsapp.message.sent")
	if len(v2s) != len(cases) {
		t.Fatalf("sent events: %d", len(v2s))
	}
	k := dig(v2s[0], "message", "kapso").(map[string]any)
	if k["direction"] != "outbound" || k["status"] != "sent" || k["processing_status"] != "completed" || k["origin"] != "cloud_api" {
		t.Errorf("v2 sent kapso: %v", k)
	}
	if sts, _ := k["statuses"].([]any); len(sts) != 1 || dig(sts[0].(map[string]any), "status") != "sent" {
		t.Errorf("v2 sent statuses: %v", k["statuses"])
	}
	if v2s[0]["phone_number_id"] != phoneID || dig(v2s[0], "conversation", "id") != convID || v2s[0]["is_new_conversation"] != false {
		t.Errorf("v2 sent envelope: %v", v2s[0])
	}
	if dig(v1s[0], "whatsapp_config", "id") != e.cfg.ID || dig(v1s[0], "message", "message_type") == nil || dig(v1s[0], "conversation", "whatsapp_config_id") != e.cfg.ID {
		t.Errorf("v1 sent: %v", v1s[0])
	}
	// Pagination: newest first, stable pages.
	p1 := e.Must(200, "GET", "/whatsapp_conversations/"+convID+"/whatsapp_messages?per_page=5&page=1", nil)
	p3 := e.Must(200, "GET", "/whatsapp_conversations/"+convID+"/whatsapp_messages?per_page=5&page=3", nil)
	meta := p1.JSON["meta"].(map[string]any)
	if len(p1.List()) != 5 || len(p3.List()) != len(cases)-10 || meta["total_count"].(float64) != float64(len(cases)) || meta["total_pages"].(float64) != 3 {
		t.Errorf("pages: %d %d %v", len(p1.List()), len(p3.List()), meta)
	}
	if p3.List()[len(p3.List())-1]["id"] != sent["text"] {
		t.Errorf("oldest message should be last")
	}
	// Another project sees nothing.
	if r := e.DoKey(e.Key2, "GET", "/whatsapp_conversations/"+convID+"/whatsapp_messages", nil); r.Status != 404 {
		t.Errorf("other project list: %d", r.Status)
	}
	if r := e.DoKey(e.Key2, "POST", "/whatsapp_conversations/"+convID+"/whatsapp_messages", map[string]any{"message": map[string]any{"content": "x"}}); r.Status != 404 {
		t.Errorf("other project send: %d", r.Status)
	}
}

func TestSendInConversationAndReaction(t *testing.T) {
	e := setup(t, setupOpts{})
	// An inbound message opens the conversation; reply and react to it.
	if st := e.postWebhook(t, fixture(t, "text.json"), appSecret); st != 200 {
		t.Fatalf("webhook: %d", st)
	}
	conv := e.Must(200, "GET", "/whatsapp_conversations", nil).List()[0]
	convID := conv["id"].(string)
	in := e.Must(200, "GET", "/whatsapp_conversations/"+convID+"/whatsapp_messages", nil).List()[0]
	// Bare attributes (no root key) are accepted too.
	d := e.Must(201, "POST", "/whatsapp_conversations/"+convID+"/whatsapp_messages", map[string]any{"content": "Yes, in blue", "unknown": 1}).Data()
	if d["message_type"] != "text" || d["status"] != "pending" || d["whatsapp_message_id"] != nil {
		t.Fatalf("reply: %v", d)
	}
	// React by Parley id: Meta gets the wamid.
	e.Must(201, "POST", "/whatsapp_conversations/"+convID+"/whatsapp_messages",
		map[string]any{"message": map[string]any{"message_type": "reaction", "reaction_emoji": "👍", "reacted_to_message_id": in["id"]}})
	waitFor(t, "two sends", func() bool { return len(e.g.requests()) == 2 })
	r := e.g.requests()[1]
	if dig(r.Body, "reaction", "message_id") != in["whatsapp_message_id"] || dig(r.Body, "reaction", "emoji") != "👍" {
		t.Errorf("reaction body: %v", r.Body)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM conversations`); n != 1 {
		t.Errorf("conversations: %d", n)
	}
}

func TestSendValidation(t *testing.T) {
	e := setup(t, setupOpts{noRunner: true})
	path := "/whatsapp_messages?whatsapp_config_id=" + e.cfg.ID
	long := strings.Repeat("x", 4097)
	btn := func(id, title string) map[string]any { return map[string]any{"id": id, "title": title} }
	cases := []struct {
		name   string
		body   any
		status int
		err    string
	}{
		{"malformed", `{"message":`, 400, ""},
		{"array body", `[1]`, 400, ""},
		{"no phone", map[string]any{"message": map[string]any{"content": "hi"}}, 400, "Phone number is required"},
		{"bad phone", map[string]any{"message": map[string]any{"phone_number": "12", "content": "hi"}}, 422, ""},
		{"unknown type", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "sticker", "content": "hi"}}, 422, ""},
		{"text blank", map[string]any{"message": map[string]any{"phone_number": customer, "content": "  "}}, 422, ""},
		{"text too long", map[string]any{"message": map[string]any{"phone_number": customer, "content": long}}, 422, ""},
		{"text wrong type", map[string]any{"message": map[string]any{"phone_number": customer, "content": []int{1}}}, 422, ""},
		{"image no media", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "image"}}, 422, ""},
		{"image bad url", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "image", "media_url": "ftp://x"}}, 422, ""},
		{"location range", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "location", "latitude": 91, "longitude": 0}}, 422, ""},
		{"location missing", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "location", "latitude": 1}}, 422, ""},
		{"location type", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "location", "latitude": "north", "longitude": 1}}, 422, ""},
		{"no buttons", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "interactive", "body_text": "x"}}, 422, ""},
		{"4 buttons", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "interactive", "body_text": "x",
			"buttons": []any{btn("a", "A"), btn("b", "B"), btn("c", "C"), btn("d", "D")}}}, 422, ""},
		{"long title", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "interactive", "body_text": "x",
			"buttons": []any{btn("a", strings.Repeat("t", 21))}}}, 422, ""},
		{"buttons wrong type", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "interactive", "body_text": "x",
			"buttons": "yes"}}, 422, ""},
		{"list no button text", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "interactive", "interactive_type": "list",
			"body_text": "x", "sections": []any{map[string]any{"title": "s", "rows": []any{btn("a", "A")}}}}}, 422, ""},
		{"list 11 rows", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "interactive", "interactive_type": "list",
			"body_text": "x", "list_button_text": "Go", "sections": []any{map[string]any{"title": "s", "rows": []any{btn("1", "A"), btn("2", "A"),
				btn("3", "A"), btn("4", "A"), btn("5", "A"), btn("6", "A"), btn("7", "A"), btn("8", "A"), btn("9", "A"), btn("10", "A"), btn("11", "A")}}}}}, 422, ""},
		{"template no name", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "template"}}, 422, ""},
		{"template params type", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "template", "template_name": "x", "template_params": 5}}, 422, ""},
		{"reaction no target", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "reaction", "reaction_emoji": "👍"}}, 422, ""},
		{"reaction unknown parley id", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "reaction", "reaction_emoji": "👍",
			"reacted_to_message_id": "0195b3f5-0000-7000-8000-000000000000"}}, 422, ""},
		{"contacts empty", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "contacts", "contacts": []any{}}}, 422, ""},
		{"contacts no name", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "contacts", "contacts": []any{map[string]any{"birthday": "1999-01-23"}}}}, 422, ""},
		{"contacts 258", map[string]any{"message": map[string]any{"phone_number": customer, "message_type": "contacts", "contacts": make([]any, 258)}}, 422, ""},
		{"oversized", `{"message":{"phone_number":"16505551234","content":"` + strings.Repeat("x", 2<<20) + `"}}`, 413, ""},
	}
	for _, c := range cases {
		r := e.Do("POST", path, c.body)
		if r.Status != c.status {
			t.Errorf("%s: status %d, want %d: %.300s", c.name, r.Status, c.status, r.Body)
			continue
		}
		if _, ok := r.JSON["error"].(string); !ok {
			t.Errorf("%s: no error field: %.200s", c.name, r.Body)
		}
		if c.err != "" && r.JSON["error"] != c.err {
			t.Errorf("%s: error %v, want %q", c.name, r.JSON["error"], c.err)
		}
	}
	// Config selection errors.
	other := newConfig(t, e.Bundle, e.Project2, "999000111", "888")
	for _, q := range []string{"?whatsapp_config_id=" + other.ID, "?whatsapp_config_id=nope", "?customer_id=0195b3f5-0000-7000-8000-000000000000"} {
		r := e.Do("POST", "/whatsapp_messages"+q, map[string]any{"message": map[string]any{"phone_number": customer, "content": "hi"}})
		if r.Status != 422 || r.JSON["error"] != "WhatsApp configuration not found" {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	// Nothing was stored by any refused request.
	for _, table := range []string{"messages", "conversations", "contacts", "jobs", "events"} {
		if n := e.count(t, `SELECT COUNT(*) FROM `+table); n != 0 {
			t.Errorf("%s: %d rows after refused requests", table, n)
		}
	}
	// Without a config id: body root key, then the project's first config.
	e.Must(201, "POST", "/whatsapp_messages", map[string]any{"whatsapp_config_id": e.cfg.ID, "message": map[string]any{"phone_number": customer, "content": "a"}})
	d := e.Must(201, "POST", "/whatsapp_messages?phone_number=%2B56911112222", map[string]any{"message": map[string]any{"content": "b"}}).Data()
	if d["phone_number"] != "+56911112222" {
		t.Errorf("query phone: %v", d)
	}
	if r := e.DoKey(e.Key2, "POST", "/whatsapp_messages", map[string]any{"message": map[string]any{"phone_number": customer, "content": "c"}}); r.Status != 201 {
		t.Errorf("project 2 with its own config: %d %s", r.Status, r.Body)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages WHERE project_id = ?`, e.Project); n != 2 {
		t.Errorf("project messages: %d", n)
	}
}

func TestSendFailure131047(t *testing.T) {
	e := setup(t, setupOpts{})
	e.g.mu.Lock()
	e.g.fail["56922223333"] = fixture(t, "error_131047_reengagement.json")
	e.g.mu.Unlock()
	d := e.Must(201, "POST", "/whatsapp_messages", map[string]any{"message": map[string]any{"phone_number": "+56 9 2222 3333", "content": "late"}}).Data()
	id := d["id"].(string)
	waitFor(t, "message failed", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM messages WHERE id = ? AND status = 'failed'`, id) == 1
	})
	var code int
	var title, msg string
	if err := e.DB.Read().QueryRow(t.Context(), `SELECT error_code, error_title, error_message FROM messages WHERE id = ?`, id).Scan(&code, &title, &msg); err != nil {
		t.Fatal(err)
	}
	if code != 131047 || title != "Re-engagement message" || !strings.Contains(msg, "24 hours") {
		t.Errorf("error fields: %d %q %q", code, title, msg)
	}
	// The API shows why: on get and in the list.
	got := e.Must(200, "GET", "/whatsapp_messages/"+id, nil).Data()
	var conv string
	if err := e.DB.Read().QueryRow(t.Context(), `SELECT conversation_id FROM messages WHERE id = ?`, id).Scan(&conv); err != nil {
		t.Fatal(err)
	}
	var listed map[string]any
	for _, m := range e.Must(200, "GET", "/whatsapp_conversations/"+conv+"/whatsapp_messages", nil).List() {
		if m["id"] == id {
			listed = m
		}
	}
	for where, m := range map[string]map[string]any{"get": got, "list": listed} {
		det, _ := m["error_details"].(map[string]any)
		if m["status"] != "failed" || !strings.Contains(str(m["error_message"]), "24 hours") || det == nil ||
			det["error_code"] != "131047" || det["error_title"] != "Re-engagement message" || !strings.Contains(str(det["details"]), "24 hours") {
			t.Errorf("%s: error fields %v %v", where, m["error_message"], m["error_details"])
		}
	}
	v2s, _ := e.eventsOf(t, "whatsapp.message.failed")
	if len(v2s) != 1 {
		t.Fatalf("failed events: %d", len(v2s))
	}
	sts := dig(v2s[0], "message", "kapso", "statuses").([]any)
	last := sts[len(sts)-1].(map[string]any)
	if last["status"] != "failed" || dig(last["errors"].([]any)[0].(map[string]any), "code") != float64(131047) {
		t.Errorf("failed statuses: %v", sts)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM events WHERE type = 'whatsapp.message.sent'`); n != 0 {
		t.Errorf("sent events for a failed send: %d", n)
	}
	// The job row is deleted just after the handler's transaction commits.
	waitFor(t, "send job finished", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM jobs WHERE kind = 'send_message'`) == 0
	})
}
