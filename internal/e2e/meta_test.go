package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The identities of Meta's fixtures.
const (
	fixturePhoneNumberID = "106540352242922"
	fixtureWABA          = "102290129340398"
	fixtureCustomer      = "16505551234"
)

// newWAMID returns a fresh WhatsApp message id shaped like Meta's.
func newWAMID() string {
	return "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQz" + strings.ToUpper(randomHex(10)) + "AA="
}

// metaInbound reads a webhook fixture and gives its message a fresh id and
// timestamp, as Meta would for a new message.
func metaInbound(t *testing.T, name, wamid string, at time.Time) map[string]any {
	t.Helper()
	m := fixture(t, "webhooks/"+name+".json")
	msgs := metaValue(m)["messages"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("%s: %d messages", name, len(msgs))
	}
	msg := msgs[0].(map[string]any)
	msg["id"], msg["timestamp"] = wamid, strconv.FormatInt(at.Unix(), 10)
	return m
}

// metaStatus reads a status fixture and points it at one of our messages.
func metaStatus(t *testing.T, name, wamid, recipient string, at time.Time) map[string]any {
	t.Helper()
	m := fixture(t, "webhooks/"+name+".json")
	st := metaValue(m)["statuses"].([]any)[0].(map[string]any)
	st["id"], st["recipient_id"], st["timestamp"] = wamid, recipient, strconv.FormatInt(at.Unix(), 10)
	return m
}

// metaValue is the value of a fixture's only change.
func metaValue(m map[string]any) map[string]any {
	return get(m, "entry").([]any)[0].(map[string]any)["changes"].([]any)[0].(map[string]any)["value"].(map[string]any)
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postMeta posts a body to Parley's Meta webhook endpoint with the given
// X-Hub-Signature-256 ("" for none).
func postMeta(t *testing.T, s *server, body []byte, sig string) int {
	t.Helper()
	code, err := tryPostMeta(s, body, sig)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// tryPostMeta is postMeta for goroutines.
func tryPostMeta(s *server, body []byte, sig string) (int, error) {
	req, _ := http.NewRequest("POST", s.URL+"/webhooks/whatsapp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// TestMetaStory feeds a production config signed Meta webhooks built from
// Meta's fixtures (several message types, duplicates, statuses out of order,
// an unsigned and a malformed body), checks what the API then shows, replies
// through a fake Graph API and checks the request Meta would get, and runs
// the verification handshake and the health check against the fake Graph.
func TestMetaStory(t *testing.T) {
	t.Parallel()
	const appSecret, token, verify = "app-secret-e2e", "EAAG-e2e-token", "verify-e2e-token"
	graph := newFakeGraph(t, token, fixturePhoneNumberID, fixtureWABA)
	s := startServer(t, map[string]string{
		"PARLEY_META_APP_SECRET":       appSecret,
		"PARLEY_META_GRAPH_URL":        graph.URL,
		"PARLEY_WEBHOOK_ALLOW_PRIVATE": "true",
		"PARLEY_SANDBOX":               "false",
	})
	c := newClient(t, s)
	if l := c.must(200, "GET", "/whatsapp_configs", nil).list(); len(l) != 0 {
		t.Fatalf("PARLEY_SANDBOX=false, yet bootstrap created %d configs", len(l))
	}
	cfg := c.must(201, "POST", "/whatsapp_configs", map[string]any{"whatsapp_config": map[string]any{
		"name": "Jaspers Market", "phone_number_id": fixturePhoneNumberID, "business_account_id": fixtureWABA,
		"access_token": token, "webhook_verify_token": verify}}).data()
	cfgID := cfg["id"].(string)
	if cfg["kind"] != "production" || cfg["webhook_verified_at"] != nil || strings.Contains(string(encode(t, cfg)), token) {
		t.Fatalf("config: %v", cfg)
	}

	// Meta's subscription handshake with the config's verify token.
	handshake := func(tok string) (int, string) {
		q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {tok}, "hub.challenge": {"1158201444"}}
		res, err := httpClient.Get(s.URL + "/webhooks/whatsapp?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, _ := handshake("wrong"); st != 403 {
		t.Fatalf("handshake with a wrong token: %d", st)
	}
	if st, body := handshake(verify); st != 200 || body != "1158201444" {
		t.Fatalf("handshake: %d %q", st, body)
	}

	// Health through the fake Graph: every check passes.
	health := c.must(200, "GET", "/whatsapp_configs/"+cfgID+"/health", nil).JSON
	if health["status"] != "healthy" {
		t.Fatalf("health: %v", health)
	}
	for _, check := range []string{"phone_number_access", "messaging_health", "webhook_subscription", "webhook_verified"} {
		if get(health, "checks", check, "passed") != true {
			t.Errorf("health check %s: %v", check, get(health, "checks", check))
		}
	}
	if gets(health, "checks", "phone_number_access", "details", "verified_name") != "Jaspers Market" {
		t.Errorf("phone details: %v", get(health, "checks", "phone_number_access"))
	}
	if len(graph.requests("GET", "/"+fixturePhoneNumberID)) < 2 || len(graph.requests("GET", "/"+fixtureWABA+"/subscribed_apps")) != 1 {
		t.Errorf("health did not call Graph as expected")
	}

	secret := "whsec_" + randomHex(16)
	rcv := newReceiver(t, secret, nil)
	wh := c.must(201, "POST", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks", map[string]any{"whatsapp_webhook": map[string]any{
		"url": rcv.URL, "secret_key": secret, "events": allEvents}}).data()
	signed := func(body []byte) int { return postMeta(t, s, body, metaSignature(appSecret, body)) }

	// Messages of several types, a second apart.
	kinds := []struct{ fixture, messageType string }{
		{"text", "text"}, {"image", "image"}, {"document", "document"}, {"location", "location"}, {"contacts", "contacts"},
		{"interactive_button_reply", "interactive"}, {"interactive_list_reply", "interactive"}, {"reaction", "reaction"}, {"button", "interactive"},
	}
	start := time.Now().Add(-time.Duration(len(kinds)+5) * time.Second)
	wamids := map[string]string{}
	var bodies [][]byte
	for i, k := range kinds {
		wamids[k.fixture] = newWAMID()
		body := encode(t, metaInbound(t, k.fixture, wamids[k.fixture], start.Add(time.Duration(i)*time.Second)))
		bodies = append(bodies, body)
		if st := signed(body); st != 200 {
			t.Fatalf("%s webhook: %d", k.fixture, st)
		}
	}
	// Duplicates: Meta retries a body as is, and sends a known message again
	// inside a new body next to a new one.
	if st := signed(bodies[0]); st != 200 {
		t.Fatalf("replayed webhook: %d", st)
	}
	again := metaInbound(t, "text", wamids["text"], start)
	extra := clone(metaValue(again)["messages"].([]any)[0].(map[string]any))
	extraID := newWAMID()
	extra["id"], extra["text"] = extraID, map[string]any{"body": "Is it in stock?"}
	metaValue(again)["messages"] = append(metaValue(again)["messages"].([]any), extra)
	if st := signed(encode(t, again)); st != 200 {
		t.Fatalf("webhook with a duplicate inside: %d", st)
	}
	// Refused: unsigned, wrongly signed, malformed.
	forged := encode(t, metaInbound(t, "text", newWAMID(), time.Now()))
	if st := postMeta(t, s, forged, ""); st != 401 {
		t.Errorf("unsigned webhook: %d, want 401", st)
	}
	if st := postMeta(t, s, forged, metaSignature("not-the-app-secret", forged)); st != 401 {
		t.Errorf("webhook signed with another secret: %d, want 401", st)
	}
	if st := signed([]byte(`{"object":"whatsapp_business_account","entry":[{"id":"` + fixtureWABA + `","changes":[`)); st != 400 {
		t.Errorf("truncated webhook: %d, want 400", st)
	}
	if st := signed([]byte(`{"object":"whatsapp_business_account","entry":"nope"}`)); st != 400 {
		t.Errorf("malformed webhook: %d, want 400", st)
	}

	// What the API shows: one conversation, every message once.
	conv := c.conversationWith(cfgID, fixtureCustomer)
	if conv == "" {
		t.Fatal("no conversation with the fixtures' customer")
	}
	if ct := c.must(200, "GET", "/whatsapp_contacts/"+fixtureCustomer, nil).data(); ct["profile_name"] != "Sheena Nelson" {
		t.Errorf("contact: %v", ct)
	}
	msgs := c.messages(conv)
	if len(msgs) != len(kinds)+1 {
		t.Fatalf("%d messages stored, want %d", len(msgs), len(kinds)+1)
	}
	byWAMID := map[string]map[string]any{}
	for _, m := range msgs {
		if m["direction"] != "inbound" {
			t.Errorf("direction: %v", m)
		}
		byWAMID[gets(m, "whatsapp_message_id")] = m
	}
	for _, k := range kinds {
		m := byWAMID[wamids[k.fixture]]
		if m == nil {
			t.Errorf("%s message not stored", k.fixture)
			continue
		}
		if m["message_type"] != k.messageType {
			t.Errorf("%s stored as %v", k.fixture, m["message_type"])
		}
	}
	if m := byWAMID[wamids["text"]]; m == nil || m["content"] != "Does it come in another color?" {
		t.Errorf("text: %v", m)
	}
	if byWAMID[extraID] == nil {
		t.Errorf("the new message next to a duplicate was not stored")
	}

	// The image is fetched from Graph and served.
	img := byWAMID[wamids["image"]]["id"].(string)
	eventually(t, "the image to be fetched", 10*time.Second, func() bool {
		req, _ := http.NewRequest("GET", c.base+"/whatsapp_messages/"+img+"/media", nil)
		req.Header.Set("X-API-Key", c.key)
		res, err := httpClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode == 200 && bytes.Equal(b, graph.media)
	})

	// A reply goes to Graph as Meta documents it.
	const reply = "Yes! It comes in red and blue."
	out := c.must(201, "POST", "/whatsapp_conversations/"+conv+"/whatsapp_messages", map[string]any{
		"message": map[string]any{"message_type": "text", "content": reply}}).data()
	var replyWAMID string
	eventually(t, "the reply to be accepted by Graph", 10*time.Second, func() bool {
		m := lastMessage(c, conv)
		replyWAMID = gets(m, "whatsapp_message_id")
		return m["id"] == out["id"] && m["status"] == "sent" && replyWAMID != ""
	})
	sends := graph.requests("POST", "/"+fixturePhoneNumberID+"/messages")
	if len(sends) != 1 {
		t.Fatalf("Graph got %d sends, want 1", len(sends))
	}
	want := fixture(t, "graph/send_text_request.json")
	send := sends[0]
	if send.Auth != "Bearer "+token || send.Body["messaging_product"] != "whatsapp" || send.Body["type"] != "text" ||
		strings.TrimPrefix(gets(send.Body, "to"), "+") != fixtureCustomer || gets(send.Body, "text", "body") != reply {
		t.Errorf("send request: %s %v", send.Auth, send.Body)
	}
	for k := range send.Body {
		if _, ok := want[k]; !ok {
			t.Errorf("send request has %q, which Meta's text example does not", k)
		}
	}

	// Statuses arrive out of order (read first) and twice: most advanced wins.
	at := time.Now()
	for _, st := range []map[string]any{
		metaStatus(t, "status_read", replyWAMID, fixtureCustomer, at.Add(2*time.Second)),
		metaStatus(t, "status_delivered", replyWAMID, fixtureCustomer, at.Add(time.Second)),
		metaStatus(t, "status_sent", replyWAMID, fixtureCustomer, at),
		metaStatus(t, "status_read", replyWAMID, fixtureCustomer, at.Add(2*time.Second)),
	} {
		if code := signed(encode(t, st)); code != 200 {
			t.Fatalf("status webhook: %d", code)
		}
	}
	if m := lastMessage(c, conv); m["status"] != "read" {
		t.Errorf("after reordered statuses: %v", m["status"])
	}

	// Meta sends a message's delivered and read at nearly the same time;
	// processed concurrently, read must still win.
	var updates []string
	for i := range 8 {
		d := c.must(201, "POST", "/whatsapp_conversations/"+conv+"/whatsapp_messages", map[string]any{
			"message": map[string]any{"message_type": "text", "content": fmt.Sprintf("Update %d", i)}}).data()
		updates = append(updates, d["id"].(string))
	}
	wamidOf := map[string]string{}
	eventually(t, "the updates to be accepted by Graph", 10*time.Second, func() bool {
		for _, m := range c.messages(conv) {
			if slices.Contains(updates, m["id"].(string)) && m["status"] == "sent" {
				wamidOf[m["id"].(string)] = gets(m, "whatsapp_message_id")
			}
		}
		return len(wamidOf) == len(updates)
	})
	var wg sync.WaitGroup
	at = time.Now()
	for _, id := range updates {
		for i, name := range []string{"status_delivered", "status_read"} {
			body := encode(t, metaStatus(t, name, wamidOf[id], fixtureCustomer, at.Add(time.Duration(i)*time.Second)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, err := tryPostMeta(s, body, metaSignature(appSecret, body)); code != 200 {
					t.Errorf("concurrent %s: %d %v", name, code, err)
				}
			}()
		}
	}
	wg.Wait()
	notRead := 0
	for _, m := range c.messages(conv) {
		if slices.Contains(updates, m["id"].(string)) && m["status"] != "read" {
			notRead++
		}
	}
	if notRead > 0 {
		t.Errorf("%d of %d messages not read after their delivered and read webhooks arrived together", notRead, len(updates))
	}

	// Marking the customer's text read calls Graph.
	c.must(200, "PATCH", "/whatsapp_messages/"+byWAMID[wamids["text"]]["id"].(string)+"/mark_as_read", nil)
	wantRead := fixture(t, "graph/mark_as_read_request.json")
	eventually(t, "the read receipt at Graph", 10*time.Second, func() bool {
		for _, r := range graph.requests("POST", "/"+fixturePhoneNumberID+"/messages") {
			if r.Body["status"] == wantRead["status"] && r.Body["message_id"] == wamids["text"] && r.Body["messaging_product"] == "whatsapp" {
				return true
			}
		}
		return false
	})

	// The receiver: every message received once, one conversation, the
	// reply sent then read, each delivery signed.
	logPath := "/whatsapp_configs/" + cfgID + "/whatsapp_webhooks/" + wh["id"].(string) + "/deliveries?per_page=100"
	var total int
	hs := rcv.waitFor(t, "every delivery of the delivery log", 15*time.Second, func(hs []hook) bool {
		total = int(get(c.must(200, "GET", logPath, nil).JSON, "meta", "total_count").(float64))
		return countMsg(hs, "whatsapp.message.read", out["id"].(string)) == 1 && len(hs) == total
	})
	received := map[string]int{}
	for _, h := range hs {
		if !h.SigOK {
			t.Errorf("%s: bad signature", h.Event)
		}
		if h.Event == "whatsapp.message.received" {
			received[gets(h.Payload, "message", "id")]++
		}
	}
	for _, w := range append(slices.Collect(maps.Values(wamids)), extraID) {
		if received[w] != 1 {
			t.Errorf("message %s received %d times", w, received[w])
		}
	}
	if len(received) != len(kinds)+1 {
		t.Errorf("%d distinct messages received, want %d", len(received), len(kinds)+1)
	}
	if n := count(hs, "whatsapp.conversation.created", conv); n != 1 {
		t.Errorf("%d conversation.created", n)
	}
	if n := countMsg(hs, "whatsapp.message.sent", out["id"].(string)); n != 1 {
		t.Errorf("%d sent events for the reply", n)
	}
	if n := countMsg(hs, "whatsapp.message.delivered", out["id"].(string)); n > 1 {
		t.Errorf("%d delivered events for the reply", n)
	}
}

// TestMetaWebhookForwarding: a config's webhook_destination_url receives
// each Meta webhook about the config byte for byte, with Meta's
// X-Hub-Signature-256, as Kapso forwards them; a receiver that fails at
// first gets it again; a config without one forwards nothing.
func TestMetaWebhookForwarding(t *testing.T) {
	t.Parallel()
	const appSecret = "app-secret-forward"
	type got struct {
		body []byte
		sig  string
	}
	var mu sync.Mutex
	var received []got
	failures := 1
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		received = append(received, got{b, r.Header.Get("X-Hub-Signature-256")})
	}))
	t.Cleanup(dest.Close)
	s := startServer(t, map[string]string{
		"PARLEY_META_APP_SECRET":       appSecret,
		"PARLEY_WEBHOOK_ALLOW_PRIVATE": "true",
		"PARLEY_SANDBOX":               "false",
	})
	c := newClient(t, s)
	c.must(201, "POST", "/whatsapp_configs", map[string]any{"whatsapp_config": map[string]any{
		"name": "Forwarding", "phone_number_id": fixturePhoneNumberID, "business_account_id": fixtureWABA,
		"access_token": "t", "webhook_destination_url": dest.URL + "/meta"}})
	c.must(201, "POST", "/whatsapp_configs", map[string]any{"whatsapp_config": map[string]any{
		"name": "Not forwarding", "phone_number_id": "200000000000777", "business_account_id": fixtureWABA, "access_token": "t"}})

	body := encode(t, metaInbound(t, "text", newWAMID(), time.Now()))
	sig := metaSignature(appSecret, body)
	if st := postMeta(t, s, body, sig); st != 200 {
		t.Fatalf("webhook: %d", st)
	}
	other := metaInbound(t, "text", newWAMID(), time.Now())
	metaValue(other)["metadata"].(map[string]any)["phone_number_id"] = "200000000000777"
	otherBody := encode(t, other)
	if st := postMeta(t, s, otherBody, metaSignature(appSecret, otherBody)); st != 200 {
		t.Fatalf("other config's webhook: %d", st)
	}
	eventually(t, "the forwarded webhook", 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(received) > 0
	})
	time.Sleep(500 * time.Millisecond) // anything else forwarded arrives meanwhile
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 1 || !bytes.Equal(received[0].body, body) || received[0].sig != sig {
		t.Fatalf("forwarded %d bodies; first: %q signed %q; want %q signed %q", len(received), received[0].body, received[0].sig, body, sig)
	}
}
