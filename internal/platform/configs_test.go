package platform_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/store"
)

func prodConfig(name, pid string) map[string]any {
	return map[string]any{"whatsapp_config": map[string]any{
		"name": name, "phone_number_id": pid, "business_account_id": "98765432109", "access_token": "EAAG-secret-token",
		"webhook_verify_token": "verify-me", "webhook_destination_url": "https://example.com/raw",
	}}
}

func newCustomer(b *apitest.Bundle, name string) string {
	b.T.Helper()
	return b.Must(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": name}}).Data()["id"].(string)
}

// scalar reads one value with a query on the test database.
func scalar[T any](t *testing.T, b *apitest.Bundle, q string, args ...any) T {
	t.Helper()
	var v T
	if err := b.DB.Read().QueryRow(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func countRows(t *testing.T, b *apitest.Bundle, table string) int {
	t.Helper()
	return scalar[int](t, b, `SELECT COUNT(*) FROM `+table)
}

var writeOnly = []string{"access_token", "webhook_verify_token", "webhook_destination_url", "app_secret"}

func checkNoSecrets(t *testing.T, body []byte) {
	t.Helper()
	for _, k := range writeOnly {
		if strings.Contains(string(body), `"`+k+`"`) {
			t.Fatalf("write-only field %s rendered: %s", k, body)
		}
	}
	for _, v := range []string{"EAAG-secret-token", "verify-me", "https://example.com/raw"} {
		if strings.Contains(string(body), v) {
			t.Fatalf("secret value %q rendered: %s", v, body)
		}
	}
}

func TestProductionConfigCRUD(t *testing.T) {
	b := apitest.Setup(t)
	cust := newCustomer(b, "Acme")
	r := b.Must(201, "POST", "/customers/"+cust+"/whatsapp_configs", prodConfig("Acme main", "1234567890"))
	checkNoSecrets(t, r.Body)
	c := r.Data()
	id := c["id"].(string)
	if c["kind"] != "production" || c["phone_number_id"] != "1234567890" || c["business_account_id"] != "98765432109" ||
		c["customer_id"] != cust || c["inbound_processing_enabled"] != true || c["calls_enabled"] != false || c["is_coexistence"] != false {
		t.Fatalf("created: %s", r.Body)
	}
	// Secrets are encrypted at rest and the verify token is findable by hash.
	tok := scalar[string](t, b, `SELECT access_token_enc FROM whatsapp_configs WHERE id = ?`, id)
	vt := scalar[string](t, b, `SELECT webhook_verify_token_enc FROM whatsapp_configs WHERE id = ?`, id)
	if tok == "" || strings.Contains(tok, "EAAG") || vt == "" || strings.Contains(vt, "verify-me") {
		t.Fatalf("secrets not encrypted: %q %q", tok, vt)
	}
	if pt, _ := b.Box.Decrypt(tok); pt != "EAAG-secret-token" {
		t.Fatalf("token round trip: %q", pt)
	}
	found, err := store.GetConfigByVerifyToken(context.Background(), b.DB.Read(), b.Box.Lookup("verify-me"))
	if err != nil || found.ID != id {
		t.Fatalf("by verify token: %v %v", found, err)
	}

	// Project-level config (Parley extension) has a null customer_id.
	p := b.Must(201, "POST", "/whatsapp_configs", map[string]any{"name": "Project line", "phone_number_id": "555000111",
		"business_account_id": "222", "access_token": "tok", "calls_enabled": true}).Data()
	if p["customer_id"] != nil || p["calls_enabled"] != true {
		t.Fatalf("project config: %v", p)
	}

	// Get, tenancy, bad ids.
	b.Must(200, "GET", "/whatsapp_configs/"+id, nil)
	b.Must(404, "GET", "/whatsapp_configs/not-a-uuid", nil)
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_configs/"+id, nil); r.Status != 404 {
		t.Fatalf("other project get: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "PATCH", "/whatsapp_configs/"+id, map[string]any{"name": "x"}); r.Status != 404 {
		t.Fatalf("other project patch: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "DELETE", "/whatsapp_configs/"+id, nil); r.Status != 404 {
		t.Fatalf("other project delete: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "GET", "/customers/"+cust+"/whatsapp_configs", nil); r.Status != 404 {
		t.Fatalf("other project customer list: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "POST", "/customers/"+cust+"/whatsapp_configs", prodConfig("x", "77777")); r.Status != 404 {
		t.Fatalf("other project customer create: %d", r.Status)
	}

	// PATCH: writable fields, secrets replaced, verify token hash follows.
	u := b.Must(200, "PATCH", "/whatsapp_configs/"+id, map[string]any{"whatsapp_config": map[string]any{
		"name": "Renamed", "inbound_processing_enabled": false, "calls_enabled": "true", "webhook_verify_token": "new-verify",
		"is_coexistence": true, "customer_id": nil}})
	checkNoSecrets(t, u.Body)
	if d := u.Data(); d["name"] != "Renamed" || d["inbound_processing_enabled"] != false || d["calls_enabled"] != true ||
		d["is_coexistence"] != false || d["customer_id"] != cust {
		t.Fatalf("patched: %s", u.Body)
	}
	if _, err := store.GetConfigByVerifyToken(context.Background(), b.DB.Read(), b.Box.Lookup("verify-me")); err == nil {
		t.Fatal("old verify token still finds the config")
	}
	if f, err := store.GetConfigByVerifyToken(context.Background(), b.DB.Read(), b.Box.Lookup("new-verify")); err != nil || f.ID != id {
		t.Fatalf("new verify token: %v", err)
	}
	b.Must(200, "PATCH", "/whatsapp_configs/"+id, map[string]any{"webhook_verify_token": nil})
	if _, err := store.GetConfigByVerifyToken(context.Background(), b.DB.Read(), b.Box.Lookup("new-verify")); err == nil {
		t.Fatal("cleared verify token still finds the config")
	}

	// Duplicate phone number id, on create and on update.
	r = b.Must(422, "POST", "/whatsapp_configs", prodConfig("dup", "1234567890"))
	if !strings.Contains(string(r.Body), "Phone number has already been taken") {
		t.Fatalf("dup: %s", r.Body)
	}
	r = b.Must(422, "PATCH", "/whatsapp_configs/"+p["id"].(string), map[string]any{"phone_number_id": "1234567890"})
	if !strings.Contains(string(r.Body), "Phone number has already been taken") {
		t.Fatalf("dup patch: %s", r.Body)
	}
	// Another project cannot take it either: phone_number_id routes Meta's webhooks.
	if r := b.DoKey(b.Key2, "POST", "/whatsapp_configs", prodConfig("dup", "1234567890")); r.Status != 422 {
		t.Fatalf("dup other project: %d", r.Status)
	}

	// Delete cascades to webhooks.
	b.Must(201, "POST", "/whatsapp_configs/"+id+"/whatsapp_webhooks", map[string]any{"url": "https://h.example/x", "events": []string{"messages"}})
	b.Must(204, "DELETE", "/whatsapp_configs/"+id, nil)
	b.Must(404, "GET", "/whatsapp_configs/"+id, nil)
	b.Must(404, "DELETE", "/whatsapp_configs/"+id, nil)
	if n := scalar[int](t, b, `SELECT COUNT(*) FROM whatsapp_webhooks WHERE whatsapp_config_id = ?`, id); n != 0 {
		t.Fatalf("webhooks left: %d", n)
	}
}

func TestConfigValidation(t *testing.T) {
	b := apitest.Setup(t)
	cust := newCustomer(b, "Acme")
	cases := []struct {
		body   any
		status int
		want   string
	}{
		{`{"whatsapp_config":`, 400, ""},
		{`"x"`, 400, ""},
		{map[string]any{"whatsapp_config": map[string]any{}}, 422, "Name can't be blank"},
		{map[string]any{"name": "x"}, 422, "Phone number id can't be blank"},
		{map[string]any{"name": "x", "phone_number_id": "1"}, 422, "Access token can't be blank"},
		{map[string]any{"name": "x", "phone_number_id": "1", "business_account_id": "2"}, 422, "Access token can't be blank"},
		{map[string]any{"name": "x", "kind": "staging"}, 422, "Kind is not included in the list"},
		{map[string]any{"name": []int{1}}, 422, "Name must be a string"},
		{map[string]any{"name": "x", "kind": "sandbox", "calls_enabled": "maybe"}, 422, "Calls enabled must be a boolean"},
		{map[string]any{"name": "x", "phone_number_id": "1/2", "business_account_id": "2", "access_token": "t"}, 422, "Phone number id is invalid"},
		{map[string]any{"name": strings.Repeat("n", 256), "kind": "sandbox"}, 422, "Name is too long"},
		{map[string]any{"name": "x", "kind": "sandbox", "webhook_destination_url": "ftp://x"}, 422, "Webhook destination url must be a valid URL"},
		{map[string]any{"whatsapp_config": "nope"}, 422, ""},
	}
	for _, path := range []string{"/whatsapp_configs", "/customers/" + cust + "/whatsapp_configs"} {
		for i, c := range cases {
			r := b.Do("POST", path, c.body)
			if r.Status != c.status || !strings.Contains(string(r.Body), c.want) {
				t.Errorf("%s case %d: %d %s, want %d %q", path, i, r.Status, r.Body, c.status, c.want)
			}
			if _, ok := r.JSON["error"].(string); !ok {
				t.Errorf("case %d: no error title: %s", i, r.Body)
			}
		}
	}
	if n := countRows(t, b, "whatsapp_configs"); n != 0 {
		t.Fatalf("bad input stored %d configs", n)
	}
	if n := countRows(t, b, "events"); n != 0 {
		t.Fatalf("bad input emitted %d events", n)
	}
	b.Must(404, "POST", "/customers/00000000-0000-4000-8000-000000000000/whatsapp_configs", prodConfig("x", "1"))
	b.Must(404, "POST", "/customers/nope/whatsapp_configs", prodConfig("x", "1"))

	// PATCH validation leaves the row untouched.
	id := b.Must(201, "POST", "/whatsapp_configs", prodConfig("Main", "4444")).Data()["id"].(string)
	before := b.Must(200, "GET", "/whatsapp_configs/"+id, nil).Data()
	for i, body := range []any{
		map[string]any{"name": ""},
		map[string]any{"access_token": ""},
		map[string]any{"phone_number_id": nil},
		map[string]any{"kind": "weird"},
		map[string]any{"inbound_processing_enabled": nil},
		map[string]any{"name": "ok", "webhook_destination_url": "not a url"},
		`{"whatsapp_config": [1]}`,
	} {
		if r := b.Do("PATCH", "/whatsapp_configs/"+id, body); r.Status != 422 {
			t.Errorf("patch case %d: %d %s", i, r.Status, r.Body)
		}
	}
	after := b.Must(200, "GET", "/whatsapp_configs/"+id, nil).Data()
	if before["name"] != after["name"] || before["updated_at"] != after["updated_at"] {
		t.Fatalf("failed patch changed the config: %v -> %v", before, after)
	}
	// Switching to sandbox gives a generated identity; back to production needs the real one.
	sb := b.Must(200, "PATCH", "/whatsapp_configs/"+id, map[string]any{"kind": "sandbox"}).Data()
	if sb["kind"] != "sandbox" || sb["phone_number_id"] == "4444" {
		t.Fatalf("to sandbox: %v", sb)
	}
	b.Must(422, "PATCH", "/whatsapp_configs/"+id, map[string]any{"kind": "production"})
	back := prodConfig("Back", "4444")
	back["whatsapp_config"].(map[string]any)["kind"] = "production"
	pr := b.Must(200, "PATCH", "/whatsapp_configs/"+id, back).Data()
	if pr["kind"] != "production" || pr["phone_number_id"] != "4444" || pr["display_phone_number"] != nil {
		t.Fatalf("to production: %v", pr)
	}
}

func TestSandboxConfig(t *testing.T) {
	b := apitest.Setup(t)
	b.SubscribeAll("")
	cust := newCustomer(b, "Acme")
	r := b.Must(201, "POST", "/customers/"+cust+"/whatsapp_configs", map[string]any{"whatsapp_config": map[string]any{
		"name": "Try it", "kind": "sandbox", "phone_number_id": "ignored"}})
	checkNoSecrets(t, r.Body)
	s1 := r.Data()
	s2 := b.Must(201, "POST", "/whatsapp_configs", map[string]any{"name": "Second", "kind": "sandbox"}).Data()
	for _, s := range []map[string]any{s1, s2} {
		if !regexp.MustCompile(`^[1-9][0-9]{14}$`).MatchString(s["phone_number_id"].(string)) {
			t.Fatalf("phone_number_id: %v", s["phone_number_id"])
		}
		if !regexp.MustCompile(`^\+1 555 0[0-9]{2} [0-9]{4}$`).MatchString(s["display_phone_number"].(string)) {
			t.Fatalf("display number: %v", s["display_phone_number"])
		}
		if want := strings.NewReplacer("+", "", " ", "").Replace(s["display_phone_number"].(string)); s["display_phone_number_normalized"] != want {
			t.Fatalf("normalized: %v", s)
		}
		secret := scalar[string](t, b, `SELECT app_secret_enc FROM whatsapp_configs WHERE id = ?`, s["id"])
		if pt, err := b.Box.Decrypt(secret); err != nil || len(pt) != 64 {
			t.Fatalf("app secret: %q %v", pt, err)
		}
	}
	if s1["phone_number_id"] == s2["phone_number_id"] {
		t.Fatal("sandbox phone number ids collide")
	}
	if s1["business_account_id"] != s2["business_account_id"] || s1["business_account_id"] == nil {
		t.Fatalf("sandbox WABA not shared: %v %v", s1["business_account_id"], s2["business_account_id"])
	}
	other := b.DoKey(b.Key2, "POST", "/whatsapp_configs", map[string]any{"name": "Theirs", "kind": "sandbox"}).Data()
	if other["business_account_id"] == s1["business_account_id"] {
		t.Fatal("sandbox WABA shared across projects")
	}
	// Programmatic creation, as bootstrap does.
	var cfgID string
	err := b.DB.Tx(context.Background(), func(tx *store.Conn) error {
		cfg, err := platform.CreateSandboxConfig(context.Background(), tx, b.Box, b.Project, "Bootstrap sandbox")
		if err == nil {
			cfgID = cfg.ID
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c := b.Must(200, "GET", "/whatsapp_configs/"+cfgID, nil).Data()
	if c["kind"] != "sandbox" || c["customer_id"] != nil || c["business_account_id"] != s1["business_account_id"] {
		t.Fatalf("programmatic sandbox: %v", c)
	}
	if n := scalar[int](t, b, `SELECT COUNT(*) FROM events WHERE project_id = ? AND type = 'whatsapp.config.created'`, b.Project); n != 3 {
		t.Fatalf("created events: %d", n)
	}
}

func TestConfigListFilters(t *testing.T) {
	b := apitest.Setup(t)
	cust := newCustomer(b, "Acme")
	b.Must(201, "POST", "/customers/"+cust+"/whatsapp_configs", prodConfig("Alpha line", "1001"))
	mid := b.Must(201, "POST", "/whatsapp_configs", map[string]any{"name": "Beta line", "phone_number_id": "1002",
		"business_account_id": "other-waba", "access_token": "t"}).Data()
	b.Must(201, "POST", "/whatsapp_configs", map[string]any{"name": "Gamma sandbox", "kind": "sandbox"})
	b.DoKey(b.Key2, "POST", "/whatsapp_configs", prodConfig("Alpha other project", "1003"))

	count := func(q string) int {
		t.Helper()
		r := b.Must(200, "GET", "/whatsapp_configs"+q, nil)
		return int(r.JSON["meta"].(map[string]any)["total_count"].(float64))
	}
	checks := map[string]int{
		"":                                                  3,
		"?business_account_id=98765432109":                  1,
		"?q[business_account_id_eq]=other-waba":             1,
		"?q[name_cont]=LINE":                                2,
		"?q[name_cont]=%25":                                 0,
		"?customer_id=" + cust:                              1,
		"?q[customer_id_eq]=" + cust:                        1,
		"?customer_id=not-a-uuid":                           0,
		"?q[kind_eq]=sandbox":                               1,
		"?q[phone_number_id_eq]=1002":                       1,
		"?q[created_at_gteq]=2000-01-01T00:00:00Z":          3,
		"?q[created_at_lteq]=2000-01-01T00:00:00Z":          0,
		"?q[created_at_gteq]=" + mid["created_at"].(string): 2,
		"?unknown=1&q[bogus_eq]=2":                          3,
	}
	for q, want := range checks {
		if got := count(q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}
	b.Must(400, "GET", "/whatsapp_configs?q[created_at_gteq]=yesterday", nil)
	r := b.Must(200, "GET", "/whatsapp_configs?per_page=2&page=2", nil)
	if m := r.JSON["meta"].(map[string]any); len(r.List()) != 1 || m["total_pages"].(float64) != 2 || m["page"].(float64) != 2 {
		t.Fatalf("paging: %s", r.Body)
	}
	// Newest first.
	if first := b.Must(200, "GET", "/whatsapp_configs", nil).List()[0]; first["name"] != "Gamma sandbox" {
		t.Fatalf("order: %v", first["name"])
	}
	cl := b.Must(200, "GET", "/customers/"+cust+"/whatsapp_configs?q[name_cont]=alpha", nil)
	if len(cl.List()) != 1 || cl.List()[0]["customer_id"] != cust {
		t.Fatalf("customer list: %s", cl.Body)
	}
	b.Must(404, "GET", "/customers/00000000-0000-4000-8000-000000000000/whatsapp_configs", nil)
}

func TestConfigLifecycleEvents(t *testing.T) {
	b := apitest.Setup(t)
	b.SubscribeAll("")
	cust := newCustomer(b, "Acme")
	c := b.Must(201, "POST", "/customers/"+cust+"/whatsapp_configs", prodConfig("Main", "9001")).Data()
	id := c["id"].(string)
	var v1, v2 map[string]any
	_ = json.Unmarshal([]byte(scalar[string](t, b, `SELECT payload_v1 FROM events WHERE type = 'whatsapp.config.created' AND whatsapp_config_id = ?`, id)), &v1)
	_ = json.Unmarshal([]byte(scalar[string](t, b, `SELECT payload_v2 FROM events WHERE type = 'whatsapp.config.created' AND whatsapp_config_id = ?`, id)), &v2)
	wc, _ := v1["whatsapp_config"].(map[string]any)
	proj, _ := v1["project"].(map[string]any)
	cu, _ := v1["customer"].(map[string]any)
	if wc["id"] != id || wc["phone_number_id"] != "9001" || wc["customer_id"] != cust || proj["id"] != b.Project ||
		proj["name"] != "Test project" || cu["id"] != cust || cu["name"] != "Acme" {
		t.Fatalf("v1 payload: %v", v1)
	}
	for _, k := range []string{"access_token", "webhook_verify_token"} {
		if _, ok := wc[k]; ok {
			t.Fatalf("v1 payload leaks %s", k)
		}
	}
	if v2["phone_number_id"] != "9001" || v2["whatsapp_config_id"] != id || v2["project"].(map[string]any)["id"] != b.Project ||
		v2["customer"].(map[string]any)["id"] != cust {
		t.Fatalf("v2 payload: %v", v2)
	}
	// A project config has customer null.
	pc := b.Must(201, "POST", "/whatsapp_configs", prodConfig("P", "9002")).Data()
	_ = json.Unmarshal([]byte(scalar[string](t, b, `SELECT payload_v2 FROM events WHERE whatsapp_config_id = ?`, pc["id"])), &v2)
	if c, ok := v2["customer"]; !ok || c != nil {
		t.Fatalf("project config v2 customer: %v", v2)
	}
	// Project webhooks get a delivery; deletion emits its own event.
	hook := store.NewID()
	_, err := b.DB.Write().Exec(context.Background(), `INSERT INTO whatsapp_webhooks (id, project_id, url, secret_key_enc, events, created_at, updated_at)
		VALUES (?, ?, 'https://h.example/p', 'x', '["whatsapp.phone_number.deleted"]', 1, 1)`, hook, b.Project)
	if err != nil {
		t.Fatal(err)
	}
	b.Must(204, "DELETE", "/whatsapp_configs/"+id, nil)
	if n := scalar[int](t, b, `SELECT COUNT(*) FROM events WHERE type = 'whatsapp.config.deleted' AND whatsapp_config_id = ?`, id); n != 1 {
		t.Fatalf("deleted events: %d", n)
	}
	// A v2 webhook's delivery carries the v2 name (the one in its header).
	if n := scalar[int](t, b, `SELECT COUNT(*) FROM deliveries WHERE event_type = 'whatsapp.phone_number.deleted' AND webhook_id = ?`, hook); n != 1 {
		t.Fatalf("deleted deliveries: %d", n)
	}
	_ = json.Unmarshal([]byte(scalar[string](t, b, `SELECT payload_v1 FROM events WHERE type = 'whatsapp.config.deleted'`)), &v1)
	if v1["whatsapp_config"].(map[string]any)["id"] != id {
		t.Fatalf("deleted v1: %v", v1)
	}
}

func TestDeletingACustomerAnnouncesItsConfigs(t *testing.T) {
	b := apitest.Setup(t)
	b.SubscribeAll("")
	cust := b.Must(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Acme"}}).Data()["id"].(string)
	c1 := b.Must(201, "POST", "/customers/"+cust+"/whatsapp_configs", prodConfig("A", "9101")).Data()["id"].(string)
	c2 := b.Must(201, "POST", "/customers/"+cust+"/whatsapp_configs", prodConfig("B", "9102")).Data()["id"].(string)
	other := b.Must(201, "POST", "/whatsapp_configs", prodConfig("P", "9103")).Data()["id"].(string)
	// Another project cannot delete it.
	if r := b.DoKey(b.Key2, "DELETE", "/customers/"+cust, nil); r.Status != 404 {
		t.Fatalf("other project delete: %d", r.Status)
	}
	b.Must(204, "DELETE", "/customers/"+cust, nil)
	for _, id := range []string{c1, c2} {
		if n := scalar[int](t, b, `SELECT COUNT(*) FROM events WHERE type = 'whatsapp.config.deleted' AND whatsapp_config_id = ?`, id); n != 1 {
			t.Fatalf("config %s: %d deleted events, want 1", id, n)
		}
		b.Must(404, "GET", "/whatsapp_configs/"+id, nil)
	}
	if n := scalar[int](t, b, `SELECT COUNT(*) FROM events WHERE type = 'whatsapp.config.deleted' AND whatsapp_config_id = ?`, other); n != 0 {
		t.Fatalf("unrelated config announced as deleted")
	}
	b.Must(200, "GET", "/whatsapp_configs/"+other, nil)
	b.Must(404, "DELETE", "/customers/"+cust, nil)
}
