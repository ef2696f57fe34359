package e2e_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// allEvents is every event a phone-number webhook can subscribe to.
var allEvents = []string{
	"whatsapp.message.received", "whatsapp.message.sent", "whatsapp.message.delivered", "whatsapp.message.read",
	"whatsapp.message.failed", "whatsapp.conversation.created", "whatsapp.conversation.ended",
	"whatsapp.conversation.inactive", "whatsapp.template.status_updated",
}

// TestSandboxStory is issue 4's story on a fresh server: the bootstrap key
// and sandbox config, a signed webhook receiver for every event, a customer
// writing, the team answering, assigning and noting, statuses coming back
// through the simulator, the 24-hour window (a free-form send fails with
// 131047, templates go through), and the conversation ended by PATCH.
func TestSandboxStory(t *testing.T) {
	t.Parallel()
	s := startServer(t, map[string]string{
		"PARLEY_WEBHOOK_ALLOW_PRIVATE": "true",
		"PARLEY_SANDBOX_STATUS_DELAY":  "20ms",
	})
	c := newClient(t, s)

	// Bootstrap made a sandbox config the key can see.
	cfg := c.onlyConfig()
	if cfg["kind"] != "sandbox" || gets(cfg, "phone_number_id") == "" || gets(cfg, "business_account_id") == "" {
		t.Fatalf("bootstrap config: %v", cfg)
	}
	cfgID := cfg["id"].(string)

	// The user's endpoint: slow and jittery for ordered events, so that
	// concurrent deliveries would overtake each other if order were not kept.
	secret := "whsec_" + randomHex(16)
	rcv := newReceiver(t, secret, func(ev string) time.Duration {
		if ev == "whatsapp.message.received" || ev == "whatsapp.message.sent" {
			return time.Duration(rand.IntN(25)) * time.Millisecond
		}
		return 0
	})
	wh := c.must(201, "POST", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": rcv.URL + "/parley", "secret_key": secret, "events": allEvents}}).data()
	if wh["active"] != true || len(wh["events"].([]any)) != len(allEvents) {
		t.Fatalf("webhook: %v", wh)
	}

	// The customer writes three messages in a row.
	const ana, bob = "5491122223333", "5491144445555"
	inbound := "/whatsapp_configs/" + cfgID + "/sandbox_messages"
	for _, text := range []string{"hola", "¿hacen envíos a Córdoba?", "es para hoy"} {
		r := c.must(202, "POST", inbound, map[string]any{"from": ana, "profile_name": "Ana", "type": "text", "text": map[string]any{"body": text}})
		if !strings.HasPrefix(gets(r.data(), "whatsapp_message_id"), "wamid.") {
			t.Fatalf("sandbox message: %s", r.Body)
		}
	}
	conv := c.conversationWith(cfgID, ana)
	if conv == "" {
		t.Fatal("no conversation opened by the customer's messages")
	}
	got := c.must(200, "GET", "/whatsapp_conversations/"+conv, nil).data()
	if got["status"] != "active" || got["whatsapp_config_id"] != cfgID || !strings.HasSuffix(gets(got, "phone_number"), ana) {
		t.Fatalf("conversation: %v", got)
	}
	rcv.waitFor(t, "three received events", 10*time.Second, func(hs []hook) bool {
		return count(hs, "whatsapp.message.received", conv) == 3
	})

	// The team answers twice, back to back.
	var replies []string
	for _, body := range []map[string]any{
		{"message": map[string]any{"message_type": "text", "content": "¡Hola Ana! Sí, enviamos a Córdoba."}},
		{"message": map[string]any{"message_type": "interactive", "interactive_type": "button", "body_text": "¿Lo querés para hoy?",
			"content": "¿Lo querés para hoy?", "buttons": []any{map[string]any{"id": "si", "title": "Sí"}, map[string]any{"id": "no", "title": "No"}}}},
	} {
		m := c.must(201, "POST", "/whatsapp_conversations/"+conv+"/whatsapp_messages", body).data()
		if m["direction"] != "outbound" {
			t.Fatalf("reply: %v", m)
		}
		replies = append(replies, m["id"].(string))
	}
	// Statuses come back through the simulator: sent, delivered, read.
	hs := rcv.waitFor(t, "sent and read of both replies", 15*time.Second, func(hs []hook) bool {
		for _, id := range replies {
			if countMsg(hs, "whatsapp.message.sent", id) != 1 || countMsg(hs, "whatsapp.message.read", id) != 1 {
				return false
			}
		}
		return true
	})
	for _, id := range replies {
		switch n := countMsg(hs, "whatsapp.message.delivered", id); {
		case n == 0:
			t.Errorf("reply %s: read arrived, delivered never did", id)
		case n > 1:
			t.Errorf("reply %s: %d delivered events", id, n)
		}
	}
	expectRead(t, c, conv, len(replies), func(m map[string]any) bool { return slices.Contains(replies, m["id"].(string)) })
	// The customer answers the buttons, then writes once more.
	c.must(202, "POST", inbound, map[string]any{"from": ana, "type": "interactive",
		"interactive": map[string]any{"type": "button_reply", "button_reply": map[string]any{"id": "si", "title": "Sí"}}})
	c.must(202, "POST", inbound, map[string]any{"from": ana, "type": "text", "text": map[string]any{"body": "gracias"}})

	// A user takes the conversation; a note on the contact.
	user := c.must(201, "POST", "/users", map[string]any{"user": map[string]any{"email": "sofia@tienda.example", "name": "Sofía"}}).data()
	asg := c.must(201, "POST", "/whatsapp_conversations/"+conv+"/conversation_assignments", map[string]any{
		"conversation_assignment": map[string]any{"user_id": user["id"], "notes": "envío urgente"}}).data()
	if asg["user_id"] != user["id"] || asg["active"] != true {
		t.Fatalf("assignment: %v", asg)
	}
	if l := c.must(200, "GET", "/whatsapp_conversations/"+conv+"/conversation_assignments", nil).list(); len(l) != 1 || l[0]["id"] != asg["id"] {
		t.Fatalf("assignments: %v", l)
	}
	note := c.must(201, "POST", "/whatsapp_contacts/"+ana+"/notes", map[string]any{"note": map[string]any{"content": "Prefiere entregas por la tarde"}}).data()
	if notes := c.must(200, "GET", "/whatsapp_contacts/"+ana+"/notes", nil).list(); len(notes) != 1 || notes[0]["id"] != note["id"] {
		t.Fatalf("notes: %v", notes)
	}
	if ct := c.must(200, "GET", "/whatsapp_contacts/"+ana, nil).data(); ct["profile_name"] != "Ana" {
		t.Fatalf("contact: %v", ct)
	}

	// Outside the 24-hour window a free-form message is accepted, then fails
	// with Meta's 131047.
	early := c.must(201, "POST", "/whatsapp_messages", map[string]any{"whatsapp_config_id": cfgID,
		"message": map[string]any{"phone_number": "+" + bob, "message_type": "text", "content": "¿Seguís interesado?"}}).data()
	earlyID := early["id"].(string)
	hs = rcv.waitFor(t, "whatsapp.message.failed", 15*time.Second, func(hs []hook) bool {
		return countMsg(hs, "whatsapp.message.failed", earlyID) == 1
	})
	if f := find(hs, "whatsapp.message.failed", earlyID); !hasErrorCode(f.Payload, 131047) {
		t.Fatalf("failed event without 131047: %s", f.Body)
	}
	bobConv := c.conversationWith(cfgID, bob)
	if bobConv == "" {
		t.Fatal("the standalone send opened no conversation")
	}
	if m := lastMessage(c, bobConv); m["id"] != earlyID || m["status"] != "failed" {
		t.Fatalf("out-of-window message: %v", m)
	}

	// Templates go through outside the window: the WABA's approved
	// hello_world (synced), and one created, submitted and approved by the
	// simulator's review.
	sync := c.must(202, "POST", "/whatsapp_templates/sync", map[string]any{"whatsapp_config_id": cfgID})
	if sync.JSON["status"] != "queued" {
		t.Fatalf("sync: %s", sync.Body)
	}
	var hello string
	eventually(t, "hello_world to be synced", 10*time.Second, func() bool {
		l := c.must(200, "GET", "/whatsapp_templates?q[name_eq]=hello_world", nil).list()
		if len(l) == 1 && l[0]["status"] == "approved" {
			hello = l[0]["id"].(string)
		}
		return hello != ""
	})
	created := c.must(201, "POST", "/whatsapp_templates", map[string]any{"whatsapp_config_id": cfgID, "template": map[string]any{
		"name": "pedido_listo", "language_code": "es", "category": "UTILITY", "parameter_format": "POSITIONAL",
		"components": []any{map[string]any{"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}} está listo.",
			"example": map[string]any{"body_text": []any{[]any{"Ana", "A-17"}}}}},
	}}).data()
	tplID := created["id"].(string)
	if created["status"] != "draft" {
		t.Fatalf("created template: %v", created)
	}
	c.must(200, "POST", "/whatsapp_templates/"+tplID+"/submit", map[string]any{"whatsapp_config_id": cfgID})
	eventually(t, "the simulator to approve pedido_listo", 10*time.Second, func() bool {
		return c.must(200, "GET", "/whatsapp_templates/"+tplID, nil).data()["status"] == "approved"
	})
	rcv.waitFor(t, "whatsapp.template.status_updated", 10*time.Second, func(hs []hook) bool {
		return len(filter(hs, "whatsapp.template.status_updated")) > 0
	})
	for _, send := range []struct{ id, params any }{{hello, nil}, {tplID, []any{"Beto", "B-42"}}} {
		body := map[string]any{"phone_number": "+" + bob}
		if send.params != nil {
			body["template_parameters"] = send.params
		}
		r := c.must(200, "POST", "/whatsapp_templates/"+send.id.(string)+"/send_template", map[string]any{"template": body})
		if r.JSON["status"] != "success" {
			t.Fatalf("send_template: %s", r.Body)
		}
	}
	expectRead(t, c, bobConv, 2, func(m map[string]any) bool { return m["message_type"] == "template" })

	// The team ends Ana's conversation.
	ended := c.must(200, "PATCH", "/whatsapp_conversations/"+conv, map[string]any{"whatsapp_conversation": map[string]any{"status": "ended"}}).data()
	if ended["status"] != "ended" {
		t.Fatalf("PATCH: %v", ended)
	}
	msgs := c.messages(conv)
	if len(msgs) != 7 {
		t.Fatalf("%d messages in the conversation, want 7", len(msgs))
	}
	if l := c.must(200, "GET", "/whatsapp_conversations?q[status_eq]=ended", nil).list(); len(l) != 1 || l[0]["id"] != conv {
		t.Fatalf("ended conversations: %v", l)
	}
	if l := c.must(200, "GET", "/whatsapp_conversations", nil).list(); len(l) != 2 {
		t.Fatalf("%d conversations, want Ana's and Beto's", len(l))
	}
	// The receiver has everything once the delivery log has nothing left.
	logPath := "/whatsapp_configs/" + cfgID + "/whatsapp_webhooks/" + wh["id"].(string) + "/deliveries?per_page=1"
	hs = rcv.waitFor(t, "whatsapp.conversation.ended and every logged delivery", 15*time.Second, func(hs []hook) bool {
		total := int(get(c.must(200, "GET", logPath, nil).JSON, "meta", "total_count").(float64))
		return count(hs, "whatsapp.conversation.ended", conv) == 1 && len(hs) == total &&
			count(hs, "whatsapp.message.received", conv)+count(hs, "whatsapp.message.sent", conv) == len(msgs)
	})

	// What the receiver got.
	keys := map[string]bool{}
	types := map[string]int{}
	for _, h := range hs {
		if !h.SigOK {
			t.Errorf("%s: bad X-Webhook-Signature", h.Event)
		}
		if h.Key == "" || keys[h.Key] {
			t.Errorf("%s: X-Idempotency-Key %q missing or repeated", h.Event, h.Key)
		}
		keys[h.Key] = true
		if h.Version != "v2" || h.Batch || h.Payload == nil {
			t.Errorf("%s: version %q batch %v: %s", h.Event, h.Version, h.Batch, h.Body)
		}
		types[h.Event]++
	}
	for _, ev := range allEvents {
		if ev == "whatsapp.conversation.inactive" {
			continue // needs an idle hour
		}
		switch {
		case types[ev] > 0:
		case ev == "whatsapp.message.delivered":
			t.Errorf("no whatsapp.message.delivered at all")
		default:
			t.Errorf("no %s delivered", ev)
		}
	}
	if n := count(hs, "whatsapp.conversation.created", conv); n != 1 {
		t.Errorf("%d conversation.created for Ana's conversation", n)
	}
	if n := count(hs, "whatsapp.conversation.created", bobConv); n != 1 {
		t.Errorf("%d conversation.created for Beto's conversation", n)
	}
	// received and sent arrive in the conversation's order, each once, and
	// only the first one says the conversation is new.
	var want, order []string
	for _, m := range msgs {
		want = append(want, m["id"].(string))
	}
	for _, h := range hs {
		if (h.Event == "whatsapp.message.received" || h.Event == "whatsapp.message.sent") && convID(h) == conv {
			order = append(order, msgID(h))
			if isNew, _ := h.Payload["is_new_conversation"].(bool); isNew != (len(order) == 1) {
				t.Errorf("delivery %d (%s): is_new_conversation %v", len(order), h.Event, isNew)
			}
		}
	}
	if !slices.Equal(order, want) {
		t.Errorf("received/sent out of conversation order:\n got  %v\n want %v", order, want)
	}
}

// filter returns the deliveries of an event.
func filter(hs []hook, event string) []hook {
	var out []hook
	for _, h := range hs {
		if h.Event == event {
			out = append(out, h)
		}
	}
	return out
}

// count counts the deliveries of an event about a conversation.
func count(hs []hook, event, conversationID string) int {
	n := 0
	for _, h := range filter(hs, event) {
		if convID(h) == conversationID {
			n++
		}
	}
	return n
}

// countMsg counts the deliveries of an event about a message.
func countMsg(hs []hook, event, messageID string) int {
	n := 0
	for _, h := range filter(hs, event) {
		if msgID(h) == messageID {
			n++
		}
	}
	return n
}

// find returns the first delivery of an event about a message.
func find(hs []hook, event, messageID string) hook {
	for _, h := range filter(hs, event) {
		if msgID(h) == messageID {
			return h
		}
	}
	return hook{}
}

// hasErrorCode reports whether a message event's status history carries a
// Meta error code.
func hasErrorCode(payload map[string]any, code float64) bool {
	sts, _ := get(payload, "message", "kapso", "statuses").([]any)
	for _, st := range sts {
		errs, _ := get(st, "errors").([]any)
		for _, e := range errs {
			if get(e, "code") == code {
				return true
			}
		}
	}
	return false
}

// lastMessage returns a conversation's newest message.
func lastMessage(c *client, conv string) map[string]any {
	c.t.Helper()
	l := c.must(200, "GET", "/whatsapp_conversations/"+conv+"/whatsapp_messages?per_page=1", nil).list()
	if len(l) == 0 {
		c.t.Fatalf("conversation %s has no messages", conv)
	}
	return l[0]
}

// TestSandboxOrderAcrossSendAndReceive has the team answer and the customer
// write right after each answer, before the answer's send job has run: the
// receiver must still get received and sent in the conversation's order.
func TestSandboxOrderAcrossSendAndReceive(t *testing.T) {
	t.Parallel()
	s := startServer(t, map[string]string{"PARLEY_WEBHOOK_ALLOW_PRIVATE": "true", "PARLEY_SANDBOX_STATUS_DELAY": "20ms"})
	c := newClient(t, s)
	cfgID := c.onlyConfig()["id"].(string)
	secret := "whsec_" + randomHex(16)
	rcv := newReceiver(t, secret, nil)
	c.must(201, "POST", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": rcv.URL, "secret_key": secret, "events": []string{"whatsapp.message.received", "whatsapp.message.sent"}}})
	const phone = "5491166667777"
	inbound := "/whatsapp_configs/" + cfgID + "/sandbox_messages"
	c.must(202, "POST", inbound, map[string]any{"from": phone, "type": "text", "text": map[string]any{"body": "hola"}})
	conv := c.conversationWith(cfgID, phone)
	const rounds = 5
	for i := range rounds {
		c.must(201, "POST", "/whatsapp_conversations/"+conv+"/whatsapp_messages", map[string]any{"message": map[string]any{
			"message_type": "text", "content": "respuesta " + string(rune('a'+i))}})
		c.must(202, "POST", inbound, map[string]any{"from": phone, "type": "text", "text": map[string]any{"body": "pregunta " + string(rune('a'+i))}})
	}
	hs := rcv.waitFor(t, "every received and sent", 20*time.Second, func(hs []hook) bool { return len(hs) >= 1+2*rounds })
	var want, got []string
	for _, m := range c.messages(conv) {
		want = append(want, m["id"].(string))
	}
	for _, h := range hs {
		if !h.SigOK {
			t.Errorf("%s: bad signature", h.Event)
		}
		got = append(got, msgID(h))
	}
	if len(got) != len(want) {
		t.Fatalf("%d deliveries for %d messages", len(got), len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("received/sent out of conversation order:\n got  %v\n want %v", got, want)
	}
}
