package sandbox_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/media"
	"github.com/parleyhq/parley/internal/messaging"
	"github.com/parleyhq/parley/internal/sandbox"
	"github.com/parleyhq/parley/internal/store"
)

func countRows(t *testing.T, b *apitest.Bundle, table string) int {
	t.Helper()
	var n int
	if err := b.DB.Read().QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// conversationMessages returns the customer's conversation with the config
// (checked through the API) and its messages, oldest first. Messages are
// read from the database: their rendering is the messaging package's.
func conversationMessages(t *testing.T, b *apitest.Bundle, cfgID, phone string) (string, []map[string]any) {
	t.Helper()
	convs := b.Must(200, "GET", "/whatsapp_conversations?whatsapp_config_id="+cfgID+"&per_page=100", nil).List()
	for _, c := range convs {
		if c["phone_number"] == phone || c["phone_number"] == "+"+phone {
			id := c["id"].(string)
			return id, dbMessages(t, b, id)
		}
	}
	return "", nil
}

func dbMessages(t *testing.T, b *apitest.Bundle, convID string) []map[string]any {
	t.Helper()
	rows, err := b.DB.Read().Query(context.Background(), `SELECT id, message_type, COALESCE(content, ''), direction, status,
		COALESCE(whatsapp_message_id, '') FROM messages WHERE conversation_id = ? ORDER BY created_at, id`, convID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var id, typ, content, dir, status, wamid string
		if err := rows.Scan(&id, &typ, &content, &dir, &status, &wamid); err != nil {
			t.Fatal(err)
		}
		out = append(out, map[string]any{"id": id, "message_type": typ, "content": content, "direction": dir,
			"status": status, "whatsapp_message_id": wamid})
	}
	return out
}

func TestSandboxMessagesEndToEnd(t *testing.T) {
	b := apitest.Setup(t)
	cfg := newSandbox(t, b, b.Project)
	path := "/whatsapp_configs/" + cfg.ID + "/sandbox_messages"

	res := b.Must(202, "POST", path, map[string]any{"from": "5491100000000", "profile_name": "Ana", "type": "text", "text": map[string]any{"body": "hola"}})
	wamid, _ := res.Data()["whatsapp_message_id"].(string)
	if len(wamid) < 10 || res.Data()["whatsapp_config_id"] != cfg.ID {
		t.Fatalf("response: %s", res.Body)
	}
	// The real inbound path stored the message and opened a conversation.
	convID, msgs := conversationMessages(t, b, cfg.ID, "5491100000000")
	if convID == "" || len(msgs) != 1 {
		t.Fatalf("conversation %q with %d messages", convID, len(msgs))
	}
	if msgs[0]["whatsapp_message_id"] != wamid || msgs[0]["direction"] != "inbound" || msgs[0]["content"] != "hola" {
		t.Fatalf("message: %v", msgs[0])
	}
	contacts := b.Must(200, "GET", "/whatsapp_contacts?q[wa_id_cont]=5491100000000", nil).List()
	if len(contacts) != 1 || contacts[0]["profile_name"] != "Ana" {
		t.Fatalf("contacts: %v", contacts)
	}

	// Wrapped in the root key, with a reply context and an interactive reply.
	b.Must(202, "POST", path, map[string]any{"message": map[string]any{"from": "5491100000000", "type": "interactive",
		"context":     map[string]any{"id": wamid},
		"interactive": map[string]any{"type": "button_reply", "button_reply": map[string]any{"id": "yes", "title": "Yes"}}}})
	for _, body := range []map[string]any{
		{"from": "5491100000000", "type": "location", "location": map[string]any{"latitude": -33.4, "longitude": -70.6, "name": "Santiago"}},
		{"from": "5491100000000", "type": "reaction", "reaction": map[string]any{"message_id": wamid, "emoji": "👍"}},
		{"from": "5491100000000", "type": "contacts", "contacts": []any{map[string]any{"name": map[string]any{"formatted_name": "Bob"}}}},
		{"from": "5491100000000", "type": "button", "button": map[string]any{"text": "Stop", "payload": "STOP"}},
	} {
		b.Must(202, "POST", path, body)
	}
	if _, msgs := conversationMessages(t, b, cfg.ID, "5491100000000"); len(msgs) != 6 {
		t.Fatalf("%d messages after six inbound", len(msgs))
	}

	// Bad input: the documented 4xx and nothing stored.
	before := countRows(t, b, "messages")
	prod := &parley.WhatsAppConfig{ProjectID: b.Project, Name: "Prod", Kind: parley.KindProduction, PhoneNumberID: "777000222"}
	if err := store.CreateConfig(context.Background(), b.DB.Write(), prod); err != nil {
		t.Fatal(err)
	}
	other := newSandbox(t, b, b.Project2)
	good := map[string]any{"from": "5491100000000", "type": "text", "text": map[string]any{"body": "x"}}
	b.Must(404, "POST", "/whatsapp_configs/"+other.ID+"/sandbox_messages", good)
	b.Must(404, "POST", "/whatsapp_configs/not-a-uuid/sandbox_messages", good)
	b.Must(404, "POST", "/whatsapp_configs/"+store.NewID()+"/sandbox_messages", good)
	b.Must(422, "POST", "/whatsapp_configs/"+prod.ID+"/sandbox_messages", good)
	b.Must(400, "POST", path, `{"from": "549`)
	b.Must(400, "POST", path, `[1,2]`)
	for name, body := range map[string]any{
		"no from":       map[string]any{"type": "text", "text": map[string]any{"body": "x"}},
		"bad from":      map[string]any{"from": "12ab", "type": "text", "text": map[string]any{"body": "x"}},
		"from object":   map[string]any{"from": map[string]any{}, "type": "text", "text": map[string]any{"body": "x"}},
		"bad type":      map[string]any{"from": "5491100000000", "type": "hologram"},
		"type number":   map[string]any{"from": "5491100000000", "type": 5, "text": map[string]any{"body": "x"}},
		"empty text":    map[string]any{"from": "5491100000000", "type": "text", "text": map[string]any{"body": ""}},
		"text string":   map[string]any{"from": "5491100000000", "type": "text", "text": "hola"},
		"bad location":  map[string]any{"from": "5491100000000", "type": "location", "location": map[string]any{"latitude": 100, "longitude": 0}},
		"image nothing": map[string]any{"from": "5491100000000", "type": "image", "image": map[string]any{}},
		"image bad id":  map[string]any{"from": "5491100000000", "type": "image", "image": map[string]any{"id": "123"}},
		"bad link":      map[string]any{"from": "5491100000000", "type": "image", "image": map[string]any{"link": "file:///etc/passwd"}},
		"bad reply":     map[string]any{"from": "5491100000000", "type": "interactive", "interactive": map[string]any{"type": "button_reply"}},
		"name number":   map[string]any{"from": "5491100000000", "profile_name": 7, "type": "text", "text": map[string]any{"body": "x"}},
		"no contacts":   map[string]any{"from": "5491100000000", "type": "contacts", "contacts": []any{}},
	} {
		if r := b.Do("POST", path, body); r.Status != 422 {
			t.Errorf("%s: status %d, want 422: %s", name, r.Status, r.Body)
		}
	}
	if after := countRows(t, b, "messages"); after != before {
		t.Fatalf("bad input stored messages: %d → %d", before, after)
	}
	if r := b.DoKey("", "POST", path, good); r.Status != 401 {
		t.Fatalf("no key: %d", r.Status)
	}
}

func TestSentMessageReachesRead(t *testing.T) {
	b := apitest.Setup(t, func(c *configT, d *depsT) { c.SandboxStatusDelay = 20 * time.Millisecond })
	cfg := newSandbox(t, b, b.Project)
	runJobs(t, b, func(r *jobs.Runner) { messaging.RegisterJobs(r, b.API) })
	const phone = "56933334444"

	// Outside the window the send fails with Meta's 131047.
	b.Must(201, "POST", "/whatsapp_messages", map[string]any{"whatsapp_config_id": cfg.ID,
		"message": map[string]any{"phone_number": phone, "content": "too early", "message_type": "text"}})
	msgStatus := func(content string) (map[string]any, bool) {
		_, msgs := conversationMessages(t, b, cfg.ID, phone)
		for _, m := range msgs {
			if m["content"] == content {
				return m, true
			}
		}
		return nil, false
	}
	eventually(t, "out-of-window send to fail", func() bool {
		m, ok := msgStatus("too early")
		return ok && m["status"] == "failed"
	})

	// The customer writes; now a free-form reply goes sent → delivered → read.
	b.Must(202, "POST", "/whatsapp_configs/"+cfg.ID+"/sandbox_messages", map[string]any{"from": phone, "type": "text", "text": map[string]any{"body": "hi"}})
	b.Must(201, "POST", "/whatsapp_messages", map[string]any{"whatsapp_config_id": cfg.ID,
		"message": map[string]any{"phone_number": phone, "content": "welcome", "message_type": "text"}})
	eventually(t, "reply to be read", func() bool {
		m, ok := msgStatus("welcome")
		return ok && m["status"] == "read"
	})
	m, _ := msgStatus("welcome")
	if w, _ := m["whatsapp_message_id"].(string); len(w) < 10 {
		t.Fatalf("read message without wamid: %v", m)
	}
}

func TestInboundMediaFetchedAndServed(t *testing.T) {
	b := apitest.Setup(t, func(c *configT, d *depsT) { c.DataDir = t.TempDir() })
	cfg := newSandbox(t, b, b.Project)
	runJobs(t, b)
	ctx := context.Background()
	content := bytes.Repeat([]byte("JPEGDATA"), 1000)
	id, err := sandbox.For(b.API).Client().UploadMedia(ctx, token(t, b, cfg), cfg.PhoneNumberID, "cat.jpg", "image/jpeg", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	b.Must(202, "POST", "/whatsapp_configs/"+cfg.ID+"/sandbox_messages", map[string]any{"from": "56955556666", "type": "image",
		"image": map[string]any{"id": id, "caption": "my cat"}})
	b.Must(202, "POST", "/whatsapp_configs/"+cfg.ID+"/sandbox_messages", map[string]any{"from": "56955556666", "type": "text",
		"text": map[string]any{"body": "no media"}})
	_, msgs := conversationMessages(t, b, cfg.ID, "56955556666")
	var imgID, textID string
	for _, m := range msgs {
		switch m["message_type"] {
		case "image":
			imgID = m["id"].(string)
		case "text":
			textID = m["id"].(string)
		}
	}
	if imgID == "" || textID == "" {
		t.Fatalf("messages: %v", msgs)
	}
	get := func(key, id string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", b.Srv.URL+"/api/v1/whatsapp_messages/"+id+"/media", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	eventually(t, "media to be fetched", func() bool {
		resp, _ := get(b.Key, imgID)
		return resp.StatusCode == 200
	})
	resp, body := get(b.Key, imgID)
	if resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(body, content) {
		t.Fatalf("media: %s, %d bytes", resp.Header.Get("Content-Type"), len(body))
	}
	// The fetch is idempotent: running it again changes nothing.
	var path1, path2 string
	_ = b.DB.Read().QueryRow(ctx, `SELECT media_path FROM messages WHERE id = ?`, imgID).Scan(&path1)
	if err := mediaFetch(b, imgID); err != nil {
		t.Fatal(err)
	}
	_ = b.DB.Read().QueryRow(ctx, `SELECT media_path FROM messages WHERE id = ?`, imgID).Scan(&path2)
	if path1 == "" || path1 != path2 {
		t.Fatalf("paths %q %q", path1, path2)
	}
	// Errors go through the validated API client.
	b.Must(404, "GET", "/whatsapp_messages/"+textID+"/media", nil)
	b.Must(404, "GET", "/whatsapp_messages/nope/media", nil)
	b.Must(404, "GET", "/whatsapp_messages/"+store.NewID()+"/media", nil)
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_messages/"+imgID+"/media", nil); r.Status != 404 {
		t.Fatalf("other project: %d", r.Status)
	}
	if r := b.DoKey("", "GET", "/whatsapp_messages/"+imgID+"/media", nil); r.Status != 401 {
		t.Fatalf("no key: %d", r.Status)
	}
}

func mediaFetch(b *apitest.Bundle, messageID string) error {
	return media.Fetch(context.Background(), b.API, messageID)
}
