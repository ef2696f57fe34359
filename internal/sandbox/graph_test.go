package sandbox_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/sandbox"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

func TestSendValidationAndWindow(t *testing.T) {
	b := apitest.Setup(t)
	cfg := newSandbox(t, b, b.Project)
	c := graphClient(b)
	ctx := context.Background()
	tok := token(t, b, cfg)
	text := func(to string) map[string]any {
		return map[string]any{"messaging_product": "whatsapp", "to": to, "type": "text", "text": map[string]any{"body": "hi"}}
	}

	// No inbound message yet: a free-form message is outside the window.
	_, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, text("+56 9 1111 2222"))
	if graphCode(err) != whatsapp.CodeReengagementMessage {
		t.Fatalf("free-form without inbound: got %v, want 131047", err)
	}
	// A customer message 25 hours ago does not open it either.
	addInbound(t, b, cfg, "56911112222", time.Now().Add(-25*time.Hour))
	if _, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, text("56911112222")); graphCode(err) != 131047 {
		t.Fatalf("free-form 25 h after inbound: got %v, want 131047", err)
	}
	// One an hour ago does.
	addInbound(t, b, cfg, "56911112222", time.Now().Add(-time.Hour))
	res, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, text("+56 9 1111 2222"))
	if err != nil {
		t.Fatalf("free-form inside the window: %v", err)
	}
	if !strings.HasPrefix(res.MessageID(), "wamid.") || res.Contacts[0].WaID != "56911112222" || res.Contacts[0].Input != "+56 9 1111 2222" {
		t.Fatalf("send response: %+v", res)
	}
	// Locations as Meta documents them: coordinates as strings.
	loc := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+56 9 1111 2222", "type": "location",
		"location": map[string]any{"latitude": "37.44216251868683", "longitude": "-122.16153582049394", "name": "Philz Coffee"}}
	if _, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, loc); err != nil {
		t.Fatalf("location with string coordinates: %v", err)
	}
	loc["location"] = map[string]any{"latitude": "north", "longitude": "-122.1"}
	if _, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, loc); graphCode(err) != 100 {
		t.Fatalf("location with a non-numeric coordinate: got %v, want code 100", err)
	}
	// The window is per config: another sandbox config of the same
	// customer is still closed.
	other := newSandbox(t, b, b.Project)
	if _, err := c.SendMessage(ctx, token(t, b, other), other.PhoneNumberID, text("56911112222")); graphCode(err) != 131047 {
		t.Fatalf("other config: got %v, want 131047", err)
	}

	// Templates need no window, but must exist and be approved.
	tpl := func(name, lang string) map[string]any {
		return map[string]any{"messaging_product": "whatsapp", "to": "5491100000000", "type": "template",
			"template": map[string]any{"name": name, "language": map[string]any{"code": lang}}}
	}
	res, err = c.SendMessage(ctx, tok, cfg.PhoneNumberID, tpl("hello_world", "en_US"))
	if err != nil || res.Messages[0].MessageStatus != "accepted" {
		t.Fatalf("hello_world: %+v, %v", res, err)
	}
	for _, bad := range [][2]string{{"hello_world", "es"}, {"nope", "en_US"}} {
		_, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, tpl(bad[0], bad[1]))
		var ge *whatsapp.GraphError
		if graphCode(err) != whatsapp.CodeTemplateNotFound || !errorsAs(err, &ge) || ge.HTTPStatus != 404 {
			t.Fatalf("template %v: got %v, want 132001", bad, err)
		}
	}

	// Bad recipients.
	for _, to := range []string{"15550001234", "+1 555 000 9999", "abc123456789", "123"} {
		m := tpl("hello_world", "en_US")
		m["to"] = to
		if _, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, m); graphCode(err) != whatsapp.CodeMessageUndeliverable {
			t.Fatalf("to %q: got %v, want 131026", to, err)
		}
	}

	// Malformed requests are Meta's code 100.
	for name, body := range map[string]map[string]any{
		"no product":  {"to": "56911112222", "type": "text", "text": map[string]any{"body": "x"}},
		"no to":       {"messaging_product": "whatsapp", "type": "text", "text": map[string]any{"body": "x"}},
		"bad type":    {"messaging_product": "whatsapp", "to": "56911112222", "type": "hologram"},
		"no object":   {"messaging_product": "whatsapp", "to": "56911112222", "type": "image"},
		"empty text":  {"messaging_product": "whatsapp", "to": "56911112222", "type": "text", "text": map[string]any{"body": " "}},
		"bad media":   {"messaging_product": "whatsapp", "to": "56911112222", "type": "image", "image": map[string]any{"id": "999"}},
		"bad loc":     {"messaging_product": "whatsapp", "to": "56911112222", "type": "location", "location": map[string]any{"latitude": 91, "longitude": 0}},
		"no template": {"messaging_product": "whatsapp", "to": "56911112222", "type": "template", "template": map[string]any{"name": "hello_world"}},
	} {
		if _, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, body); graphCode(err) != 100 {
			t.Errorf("%s: got %v, want code 100", name, err)
		}
	}

	// Only sandbox phone numbers are served.
	prod := &parley.WhatsAppConfig{ProjectID: b.Project, Name: "Prod", Kind: parley.KindProduction, PhoneNumberID: "777000111"}
	if err := store.CreateConfig(ctx, b.DB.Write(), prod); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []string{prod.PhoneNumberID, "123456"} {
		if _, err := c.SendMessage(ctx, tok, pid, tpl("hello_world", "en_US")); graphCode(err) != 100 {
			t.Errorf("phone number %s: got %v, want code 100", pid, err)
		}
	}

	// Mark as read.
	if err := c.MarkRead(ctx, tok, cfg.PhoneNumberID, "wamid.abc", true); err != nil {
		t.Fatalf("mark read: %v", err)
	}

	// No bearer token: 401 with code 190.
	req, _ := http.NewRequest("POST", b.Srv.URL+sandbox.GraphPrefix+"/v24.0/"+cfg.PhoneNumberID+"/messages", strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !bytes.Contains(body, []byte(`"code":190`)) {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	// Malformed JSON: code 100, never a 5xx.
	req, _ = http.NewRequest("POST", b.Srv.URL+sandbox.GraphPrefix+"/v24.0/"+cfg.PhoneNumberID+"/messages", strings.NewReader(`{"to":`))
	req.Header.Set("Authorization", "Bearer x")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !bytes.Contains(body, []byte(`"code":100`)) {
		t.Fatalf("bad JSON: %d %s", resp.StatusCode, body)
	}
}

func errorsAs(err error, ge **whatsapp.GraphError) bool {
	g, ok := err.(*whatsapp.GraphError)
	if ok {
		*ge = g
	}
	return ok
}

func TestTemplatesLifecycle(t *testing.T) {
	b := apitest.Setup(t, func(c *configT, d *depsT) { c.SandboxStatusDelay = 10 * time.Millisecond })
	cfg := newSandbox(t, b, b.Project)
	c := graphClient(b)
	ctx := context.Background()
	tok := token(t, b, cfg)
	waba := *cfg.BusinessAccountID

	body := map[string]any{"name": "order_update", "language": "en_US", "category": "UTILITY",
		"components": []map[string]any{{"type": "BODY", "text": "Your order {{1}} shipped", "example": map[string]any{"body_text": [][]string{{"42"}}}}}}
	created, err := c.CreateTemplate(ctx, tok, waba, body)
	if err != nil || created.Status != "PENDING" || created.Category != "UTILITY" || created.ID == "" {
		t.Fatalf("create: %+v, %v", created, err)
	}
	if _, err := c.CreateTemplate(ctx, tok, waba, body); graphCode(err) != 100 {
		t.Fatalf("duplicate: got %v, want 100", err)
	}
	for name, bad := range map[string]map[string]any{
		"bad name":     {"name": "Bad Name", "language": "en", "category": "UTILITY", "components": body["components"]},
		"bad category": {"name": "x", "language": "en", "category": "SPAM", "components": body["components"]},
		"no body":      {"name": "x", "language": "en", "category": "UTILITY", "components": []map[string]any{{"type": "FOOTER", "text": "x"}}},
	} {
		if _, err := c.CreateTemplate(ctx, tok, waba, bad); graphCode(err) != 100 {
			t.Errorf("%s: got %v, want 100", name, err)
		}
	}
	// Pending templates cannot be sent or edited.
	send := map[string]any{"messaging_product": "whatsapp", "to": "5491100000000", "type": "template",
		"template": map[string]any{"name": "order_update", "language": map[string]any{"code": "en_US"}}}
	if _, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, send); graphCode(err) != 132001 {
		t.Fatalf("send pending: got %v, want 132001", err)
	}
	if err := c.EditTemplate(ctx, tok, created.ID, map[string]any{"category": "MARKETING"}); graphCode(err) != 100 {
		t.Fatalf("edit pending: got %v, want 100", err)
	}

	// The review job approves it (the webhook goes through the inbound path).
	runJobs(t, b)
	eventually(t, "template approval", func() bool {
		ts, _, err := c.ListTemplates(ctx, tok, waba, whatsapp.ListTemplatesOptions{Name: "order_update"})
		return err == nil && len(ts) == 1 && ts[0].Status == "APPROVED"
	})
	if _, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, send); err != nil {
		t.Fatalf("send approved: %v", err)
	}
	if err := c.EditTemplate(ctx, tok, created.ID, map[string]any{"category": "MARKETING"}); graphCode(err) != 100 {
		t.Fatalf("category change of approved: got %v, want 100", err)
	}
	if err := c.EditTemplate(ctx, tok, created.ID, map[string]any{"components": []map[string]any{{"type": "BODY", "text": "Order {{1}} is on its way"}}}); err != nil {
		t.Fatalf("edit components: %v", err)
	}

	// A template the review rejects.
	rej, err := c.CreateTemplate(ctx, tok, waba, map[string]any{"name": sandbox.RejectPrefix + "_x", "language": "es", "category": "MARKETING", "components": body["components"]})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "template rejection", func() bool {
		ts, _, err := c.ListTemplates(ctx, tok, waba, whatsapp.ListTemplatesOptions{Status: "REJECTED"})
		return err == nil && len(ts) == 1 && ts[0].ID == rej.ID
	})

	// Paging: hello_world + two templates, one per page.
	all, err := c.ListAllTemplates(ctx, tok, waba, whatsapp.ListTemplatesOptions{Limit: 1})
	if err != nil || len(all) != 3 {
		t.Fatalf("list all: %d templates, %v", len(all), err)
	}
	seen := map[string]bool{}
	for _, tp := range all {
		seen[tp.Name+"/"+tp.Language] = true
	}
	if !seen["hello_world/en_US"] || !seen["order_update/en_US"] {
		t.Fatalf("list all: %v", seen)
	}

	// Delete by name and hsm_id.
	if err := c.DeleteTemplate(ctx, tok, waba, "order_update", "999"); graphCode(err) != 100 {
		t.Fatalf("delete wrong hsm_id: got %v, want 100", err)
	}
	if err := c.DeleteTemplate(ctx, tok, waba, "order_update", created.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := c.DeleteTemplate(ctx, tok, waba, "order_update", ""); graphCode(err) != 100 {
		t.Fatalf("delete again: got %v, want 100", err)
	}
	// Another WABA is not served.
	if _, _, err := c.ListTemplates(ctx, tok, "42", whatsapp.ListTemplatesOptions{}); graphCode(err) != 100 {
		t.Fatalf("unknown waba: got %v, want 100", err)
	}
}

func TestAccountNodes(t *testing.T) {
	b := apitest.Setup(t)
	cfg := newSandbox(t, b, b.Project)
	ctx := context.Background()
	tok := token(t, b, cfg)
	// In-process, through the simulator's transport.
	c := sandbox.For(b.API).Client()
	p, err := c.GetPhoneNumber(ctx, tok, cfg.PhoneNumberID)
	if err != nil || p.ID != cfg.PhoneNumberID || p.QualityRating != "GREEN" || p.DisplayPhoneNumber == "" || p.VerifiedName == "" {
		t.Fatalf("phone number: %+v, %v", p, err)
	}
	h, err := c.HealthStatus(ctx, tok, cfg.PhoneNumberID)
	if err != nil || h.CanSendMessage != "AVAILABLE" || len(h.Entities) != 4 || h.Entities[1].ID != *cfg.BusinessAccountID {
		t.Fatalf("health: %+v, %v", h, err)
	}
	apps, err := c.SubscribedApps(ctx, tok, *cfg.BusinessAccountID)
	if err != nil || len(apps) != 1 {
		t.Fatalf("subscribed apps: %+v, %v", apps, err)
	}
	if err := c.Unsubscribe(ctx, tok, *cfg.BusinessAccountID); err != nil {
		t.Fatal(err)
	}
	if apps, err := c.SubscribedApps(ctx, tok, *cfg.BusinessAccountID); err != nil || len(apps) != 0 {
		t.Fatalf("after unsubscribe: %+v, %v", apps, err)
	}
	if err := c.Subscribe(ctx, tok, *cfg.BusinessAccountID); err != nil {
		t.Fatal(err)
	}
	if apps, _ := c.SubscribedApps(ctx, tok, *cfg.BusinessAccountID); len(apps) != 1 {
		t.Fatalf("after subscribe: %+v", apps)
	}
	if _, err := c.GetPhoneNumber(ctx, tok, "5550001"); graphCode(err) != 100 {
		t.Fatalf("unknown node: got %v, want 100", err)
	}
	// GET /{waba_id}/phone_numbers over real HTTP, as any Graph client
	// would: the WABA's sandbox numbers.
	second := newSandbox(t, b, b.Project)
	req, _ := http.NewRequest("GET", b.Srv.URL+sandbox.GraphPrefix+"/v24.0/"+*cfg.BusinessAccountID+"/phone_numbers", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct {
			ID                 string `json:"id"`
			DisplayPhoneNumber string `json:"display_phone_number"`
			VerifiedName       string `json:"verified_name"`
		} `json:"data"`
	}
	err = json.NewDecoder(res.Body).Decode(&list)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || len(list.Data) != 2 || list.Data[0].ID != cfg.PhoneNumberID ||
		list.Data[1].ID != second.PhoneNumberID || list.Data[0].DisplayPhoneNumber == "" || list.Data[0].VerifiedName == "" {
		t.Fatalf("phone_numbers: %d %+v %v", res.StatusCode, list, err)
	}
	// s.Graph hands sandbox configs the in-process client.
	if b.API.Graph(cfg).BaseURL != sandbox.LocalBaseURL {
		t.Fatalf("Graph(sandbox) = %s", b.API.Graph(cfg).BaseURL)
	}
}

func TestMediaUploadAndDownload(t *testing.T) {
	b := apitest.Setup(t, func(c *configT, d *depsT) { c.DataDir = t.TempDir() })
	cfg := newSandbox(t, b, b.Project)
	ctx := context.Background()
	tok := token(t, b, cfg)
	content := bytes.Repeat([]byte("\x89PNG parley "), 5000)
	sum := sha256.Sum256(content)
	for name, c := range map[string]*whatsapp.Client{"http": graphClient(b), "in-process": sandbox.For(b.API).Client()} {
		id, err := c.UploadMedia(ctx, tok, cfg.PhoneNumberID, "pic.png", "image/png", bytes.NewReader(content))
		if err != nil {
			t.Fatalf("%s: upload: %v", name, err)
		}
		m, err := c.GetMedia(ctx, tok, id)
		if err != nil || m.ID != id || m.MimeType != "image/png" || m.FileSize != int64(len(content)) || m.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: get media: %+v, %v", name, m, err)
		}
		var buf bytes.Buffer
		n, err := c.DownloadMedia(ctx, tok, m.URL, &buf, 0)
		if err != nil || n != int64(len(content)) || !bytes.Equal(buf.Bytes(), content) {
			t.Fatalf("%s: download: %d bytes, %v", name, n, err)
		}
		if _, err := c.DownloadMedia(ctx, tok, m.URL, io.Discard, 10); err == nil {
			t.Fatalf("%s: download over the cap succeeded", name)
		}
		// An image by media id may now be sent (inside the window).
		addInbound(t, b, cfg, "56922223333", time.Now())
		if _, err := c.SendMessage(ctx, tok, cfg.PhoneNumberID, map[string]any{"messaging_product": "whatsapp", "to": "56922223333",
			"type": "image", "image": map[string]any{"id": id}}); err != nil {
			t.Fatalf("%s: send image: %v", name, err)
		}
		if err := c.DeleteMedia(ctx, tok, id); err != nil {
			t.Fatalf("%s: delete: %v", name, err)
		}
		if _, err := c.GetMedia(ctx, tok, id); graphCode(err) != 100 {
			t.Fatalf("%s: get deleted: %v", name, err)
		}
	}
	// Not multipart: code 100.
	req, _ := http.NewRequest("POST", b.Srv.URL+sandbox.GraphPrefix+"/v24.0/"+cfg.PhoneNumberID+"/media", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer x")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || e.Error.Code != 100 {
		t.Fatalf("json upload: %d %+v", resp.StatusCode, e)
	}
}

// Text no store can hold (NUL characters, invalid UTF-8) in a Graph request
// is Meta's code 100, never a 500 (PostgreSQL rejects it), and an uploaded
// file's name is kept storable.
func TestGraphUnstorableText(t *testing.T) {
	b := apitest.Setup(t, func(c *configT, d *depsT) { c.DataDir = t.TempDir() })
	cfg := newSandbox(t, b, b.Project)
	tok := token(t, b, cfg)
	addInbound(t, b, cfg, "56922223333", time.Now())
	base := b.Srv.URL + sandbox.GraphPrefix + "/v24.0/"
	do := func(method, url, ctype string, body []byte) (int, int) {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error.Code
	}
	waba := *cfg.BusinessAccountID
	for name, tc := range map[string]struct{ method, url, body string }{
		"text":            {"POST", base + cfg.PhoneNumberID + "/messages", `{"messaging_product":"whatsapp","to":"56922223333","type":"text","text":{"body":"a\u0000b"}}`},
		"template name":   {"POST", base + cfg.PhoneNumberID + "/messages", `{"messaging_product":"whatsapp","to":"56922223333","type":"template","template":{"name":"a\u0000","language":{"code":"en_US"}}}`},
		"media id":        {"POST", base + cfg.PhoneNumberID + "/messages", `{"messaging_product":"whatsapp","to":"56922223333","type":"image","image":{"id":"1\u0000"}}`},
		"new template":    {"POST", base + waba + "/message_templates", `{"name":"nul_body","language":"en_US","category":"UTILITY","components":[{"type":"BODY","text":"x\u0000"}]}`},
		"node":            {"GET", base + "1%00", ``},
		"invalid utf-8":   {"GET", base + "%ff%fe", ``},
		"query":           {"GET", base + waba + "/message_templates?name=a%00b", ``},
		"delete template": {"DELETE", base + waba + "/message_templates?name=a%00b", ``},
		"edit template":   {"POST", base + "1%00", `{"category":"UTILITY"}`},
	} {
		if st, code := do(tc.method, tc.url, "application/json", []byte(tc.body)); st != 400 || code != 100 {
			t.Errorf("%s: %d, code %d; want 400, code 100", name, st, code)
		}
	}
	mp := "--XX\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''a%00b%FF.jpg\r\nContent-Type: image/jpeg\r\n\r\nDATA\r\n--XX--\r\n"
	if st, code := do("POST", base+cfg.PhoneNumberID+"/media", "multipart/form-data; boundary=XX", []byte(mp)); st != 200 {
		t.Fatalf("upload with an unstorable file name: %d, code %d", st, code)
	}
	var name string
	if err := b.DB.Read().QueryRow(context.Background(), `SELECT filename FROM sandbox_media WHERE phone_number_id = ?`, cfg.PhoneNumberID).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "ab\uFFFD.jpg" {
		t.Errorf("stored file name %q", name)
	}
}
