package platform_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/platform"
)

func newConfig(b *apitest.Bundle, key string) string {
	b.T.Helper()
	r := b.DoKey(key, "POST", "/whatsapp_configs", map[string]any{"name": "Line", "kind": "sandbox"})
	if r.Status != 201 {
		b.T.Fatalf("create config: %d %s", r.Status, r.Body)
	}
	return r.Data()["id"].(string)
}

func TestWebhookCRUD(t *testing.T) {
	b := apitest.Setup(t)
	cfg := newConfig(b, b.Key)
	base := "/whatsapp_configs/" + cfg + "/whatsapp_webhooks"

	// Defaults, generated secret.
	d := b.Must(201, "POST", base, map[string]any{"whatsapp_webhook": map[string]any{
		"url": "https://hooks.example.com/a", "events": []string{"whatsapp.message.received", "messages", "messages"}}}).Data()
	id := d["id"].(string)
	if d["active"] != true || d["buffer_enabled"] != false || d["buffer_window_seconds"].(float64) != 5 ||
		d["max_buffer_size"].(float64) != 50 || d["inactivity_minutes"].(float64) != 60 || d["payload_version"] != "v2" ||
		d["kind"] != "kapso" || d["headers"] != nil || d["whatsapp_config_id"] != cfg {
		t.Fatalf("defaults: %v", d)
	}
	if rc := d["retry_config"].(map[string]any); rc["max_attempts"].(float64) != 4 || rc["backoff_seconds"].(float64) != 10 {
		t.Fatalf("default retry: %v", rc)
	}
	if evs := d["events"].([]any); len(evs) != 2 {
		t.Fatalf("events not deduplicated: %v", evs)
	}
	secret := d["secret_key"].(string)
	if len(secret) != 64 {
		t.Fatalf("generated secret: %q", secret)
	}
	enc := scalar[string](t, b, `SELECT secret_key_enc FROM whatsapp_webhooks WHERE id = ?`, id)
	if strings.Contains(enc, secret) {
		t.Fatal("secret stored in clear")
	}
	if pt, _ := b.Box.Decrypt(enc); pt != secret {
		t.Fatal("secret does not round trip")
	}

	// Every field.
	full := b.Must(201, "POST", base, map[string]any{
		"url": "http://127.0.0.1:9/local", "secret_key": "my-secret", "events": []string{"whatsapp.conversation.inactive", "whatsapp.template.status_updated"},
		"active": false, "headers": map[string]string{"X-Source": "parley"}, "buffer_enabled": true, "buffer_window_seconds": 10,
		"max_buffer_size": 25, "buffer_events": []string{"whatsapp.message.received"}, "inactivity_minutes": 1440,
		"retry_config": map[string]any{"max_attempts": 20, "backoff_seconds": 3600}, "payload_version": "v1", "kind": "kapso",
	}).Data()
	if full["secret_key"] != "my-secret" || full["active"] != false || full["headers"].(map[string]any)["X-Source"] != "parley" ||
		full["buffer_window_seconds"].(float64) != 10 || full["max_buffer_size"].(float64) != 25 || full["inactivity_minutes"].(float64) != 1440 ||
		full["retry_config"].(map[string]any)["max_attempts"].(float64) != 20 || full["payload_version"] != "v1" {
		t.Fatalf("full: %v", full)
	}
	fid := full["id"].(string)

	// Get, list, filters.
	if g := b.Must(200, "GET", base+"/"+id, nil).Data(); g["secret_key"] != secret {
		t.Fatalf("get: %v", g)
	}
	list := func(q string) int {
		t.Helper()
		return len(b.Must(200, "GET", base+q, nil).List())
	}
	for q, want := range map[string]int{"": 2, "?q[url_cont]=HOOKS.example": 1, "?q[url_cont]=_": 0, "?q[active_eq]=false": 1,
		"?q[active_eq]=true": 1, "?q[active_eq]=banana": 2, "?per_page=1": 1} {
		if got := list(q); got != want {
			t.Errorf("list %s: %d, want %d", q, got, want)
		}
	}

	// PATCH.
	u := b.Must(200, "PATCH", base+"/"+fid, map[string]any{"whatsapp_webhook": map[string]any{
		"active": true, "headers": nil, "retry_config": map[string]any{"max_attempts": 3}, "events": []string{"status_updates"}}}).Data()
	if u["active"] != true || u["headers"] != nil || u["events"].([]any)[0] != "status_updates" || u["secret_key"] != "my-secret" {
		t.Fatalf("patch: %v", u)
	}
	if rc := u["retry_config"].(map[string]any); rc["max_attempts"].(float64) != 3 || rc["backoff_seconds"].(float64) != 3600 {
		t.Fatalf("partial retry: %v", rc)
	}
	// Writing back the default as it is shown keeps the default schedule.
	b.Must(200, "PATCH", base+"/"+fid, map[string]any{"retry_config": map[string]any{"max_attempts": 4, "backoff_seconds": 10}})
	if scalar[bool](t, b, `SELECT retry_custom FROM whatsapp_webhooks WHERE id = ?`, fid) {
		t.Error("retry_config {4, 10} switched the webhook off the default schedule")
	}
	u = b.Must(200, "PATCH", base+"/"+fid, map[string]any{"retry_config": nil, "secret_key": "rotated"}).Data()
	if rc := u["retry_config"].(map[string]any); rc["max_attempts"].(float64) != 4 || u["secret_key"] != "rotated" {
		t.Fatalf("retry reset: %v", u)
	}

	// Tenancy: another project, another config, bad ids.
	other := newConfig(b, b.Key2)
	if r := b.DoKey(b.Key2, "GET", base+"/"+id, nil); r.Status != 404 {
		t.Fatalf("other project get: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "GET", base, nil); r.Status != 404 {
		t.Fatalf("other project list: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "POST", base, map[string]any{"url": "https://x.example", "events": []string{"messages"}}); r.Status != 404 {
		t.Fatalf("other project create: %d", r.Status)
	}
	b.Must(404, "GET", "/whatsapp_configs/"+other+"/whatsapp_webhooks/"+id, nil)
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_configs/"+other+"/whatsapp_webhooks/"+id, nil); r.Status != 404 {
		t.Fatalf("webhook through another config: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "DELETE", "/whatsapp_configs/"+other+"/whatsapp_webhooks/"+id, nil); r.Status != 404 {
		t.Fatalf("delete through another config: %d", r.Status)
	}
	b.Must(404, "GET", base+"/nope", nil)
	b.Must(404, "GET", "/whatsapp_configs/nope/whatsapp_webhooks", nil)

	b.Must(204, "DELETE", base+"/"+id, nil)
	b.Must(404, "DELETE", base+"/"+id, nil)
	b.Must(404, "PATCH", base+"/"+id, map[string]any{"active": false})
	if n := list(""); n != 1 {
		t.Fatalf("after delete: %d", n)
	}
}

func TestWebhookValidation(t *testing.T) {
	b := apitest.Setup(t)
	cfg := newConfig(b, b.Key)
	base := "/whatsapp_configs/" + cfg + "/whatsapp_webhooks"
	ok := map[string]any{"url": "https://h.example/x", "events": []string{"messages"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	cases := []struct {
		body   any
		status int
		want   string
	}{
		{`{"whatsapp_webhook": {`, 400, ""},
		{map[string]any{"events": []string{"messages"}}, 422, "Url can't be blank"},
		{with("url", "ftp://h.example/x"), 422, "Url must be a valid"},
		{with("url", "javascript:alert(1)"), 422, "Url must be a valid"},
		{with("url", "/relative"), 422, "Url must be a valid"},
		{with("url", "https://h.example/"+strings.Repeat("a", 2048)), 422, "Url is too long"},
		{with("url", 12), 422, "Url must be a valid"},
		{map[string]any{"url": "https://h.example"}, 422, "Events can't be blank"},
		{with("events", []string{}), 422, "Events can't be blank"},
		{with("events", []string{"messages", "whatsapp.bogus"}), 422, "whatsapp.bogus"},
		{with("events", []string{"whatsapp.config.created"}), 422, "whatsapp.config.created"},
		{with("events", "messages"), 422, "Events must be an array"},
		{with("buffer_window_seconds", 0), 422, "Buffer window seconds must be between 1 and 60"},
		{with("buffer_window_seconds", 61), 422, "Buffer window seconds"},
		{with("buffer_window_seconds", "abc"), 422, "Buffer window seconds must be an integer"},
		{with("max_buffer_size", 101), 422, "Max buffer size must be between 1 and 100"},
		{with("inactivity_minutes", 1441), 422, "Inactivity minutes must be between 1 and 1440"},
		{with("inactivity_minutes", 1.5), 422, "Inactivity minutes must be an integer"},
		{with("buffer_events", []string{"whatsapp.message.sent"}), 422, "Buffer events"},
		{with("headers", map[string]any{"X-A": 1}), 422, "Headers must be an object of strings"},
		{with("headers", []string{"a"}), 422, "Headers must be an object"},
		{with("headers", map[string]any{"Bad Header": "x"}), 422, "invalid header name"},
		{with("headers", map[string]any{"X-Webhook-Signature": "x"}), 422, "cannot override"},
		{with("headers", map[string]any{"X-A": "a\r\nb"}), 422, "invalid value"},
		{with("retry_config", map[string]any{"max_attempts": 21}), 422, "max_attempts must be between 1 and 20"},
		{with("retry_config", map[string]any{"backoff_seconds": 0}), 422, "backoff_seconds must be between 1 and 3600"},
		{with("retry_config", map[string]any{"max_attempts": "x"}), 422, "Retry config"},
		{with("retry_config", 5), 422, "Retry config must be an object"},
		{with("payload_version", "v3"), 422, "Payload version is not included"},
		{with("kind", "teams"), 422, "Kind is not included"},
		{with("active", "perhaps"), 422, "Active must be a boolean"},
		{with("secret_key", strings.Repeat("s", 256)), 422, "Secret key is too long"},
	}
	for i, c := range cases {
		r := b.Do("POST", base, c.body)
		if r.Status != c.status || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("case %d: %d %s, want %d %q", i, r.Status, r.Body, c.status, c.want)
		}
	}
	if n := countRows(t, b, "whatsapp_webhooks"); n != 0 {
		t.Fatalf("bad input stored %d webhooks", n)
	}
	id := b.Must(201, "POST", base, ok).Data()["id"].(string)
	for i, body := range []any{
		map[string]any{"url": ""}, map[string]any{"events": nil}, map[string]any{"secret_key": ""},
		map[string]any{"inactivity_minutes": 0}, map[string]any{"events": []string{"nope"}},
	} {
		if r := b.Do("PATCH", base+"/"+id, body); r.Status != 422 {
			t.Errorf("patch case %d: %d %s", i, r.Status, r.Body)
		}
	}
	if g := b.Must(200, "GET", base+"/"+id, nil).Data(); g["url"] != "https://h.example/x" || g["inactivity_minutes"].(float64) != 60 {
		t.Fatalf("failed patches changed the webhook: %v", g)
	}
}

// TestProjectWebhookHelpers drives the exported helpers the delivery
// package uses for project webhooks (whatsapp_config_id NULL).
func TestProjectWebhookHelpers(t *testing.T) {
	b := apitest.Setup(t)
	ctx := t.Context()
	f, err := api.ParseFields([]byte(`{"webhook":{"url":"https://p.example/hook","events":["whatsapp.phone_number.created"]}}`), "webhook")
	if err != nil {
		t.Fatal(err)
	}
	wh := platform.NewWebhook(b.Project, nil)
	if err := platform.DecodeWebhook(f, wh, true, true); err != nil {
		t.Fatal(err)
	}
	bad, _ := api.ParseFields([]byte(`{"url":"https://p.example","events":["whatsapp.message.received"]}`), "webhook")
	if err := platform.DecodeWebhook(bad, platform.NewWebhook(b.Project, nil), true, true); err == nil {
		t.Fatal("project webhook accepted a config event")
	}
	if err := platform.CreateWebhook(ctx, b.DB.Write(), b.Box, wh); err != nil {
		t.Fatal(err)
	}
	cfg := newConfig(b, b.Key)
	items, total, err := platform.ListWebhooks(ctx, b.DB.Read(), b.Project, nil, platform.WebhookFilter{}, parleyPage())
	if err != nil || total != 1 || items[0].ID != wh.ID {
		t.Fatalf("list project webhooks: %v %d %v", items, total, err)
	}
	if _, err := platform.GetWebhook(ctx, b.DB.Read(), b.Project, &cfg, wh.ID); err == nil {
		t.Fatal("project webhook found under a config")
	}
	if _, err := platform.GetWebhook(ctx, b.DB.Read(), b.Project2, nil, wh.ID); err == nil {
		t.Fatal("project webhook found from another project")
	}
	got, err := platform.GetWebhook(ctx, b.DB.Read(), b.Project, nil, wh.ID)
	if err != nil {
		t.Fatal(err)
	}
	v, err := platform.RenderWebhook(b.Box, got)
	if err != nil || v.SecretKey != wh.SecretKey || v.WhatsAppConfigID != nil || v.Events[0] != "whatsapp.phone_number.created" {
		t.Fatalf("render: %+v %v", v, err)
	}
	got.Active = false
	if err := platform.UpdateWebhook(ctx, b.DB.Write(), b.Box, got); err != nil {
		t.Fatal(err)
	}
	if err := platform.DeleteWebhook(ctx, b.DB.Write(), b.Project, nil, wh.ID); err != nil {
		t.Fatal(err)
	}
	if err := platform.DeleteWebhook(ctx, b.DB.Write(), b.Project, nil, wh.ID); err == nil {
		t.Fatal("second delete succeeded")
	}
}

func parleyPage() parley.Page { return parley.Page{Page: 1, PerPage: 20} }

// A webhook URL that no delivery could reach under the address policy is a
// 422 at create and update naming the setting; while Parley listens on
// loopback (the default), a local receiver is accepted.
func TestWebhookTargetPolicy(t *testing.T) {
	public := apitest.Setup(t, func(c *config.Config, _ *api.Deps) { c.Addr = "0.0.0.0:8080" })
	cfg := newConfig(public, public.Key)
	base := "/whatsapp_configs/" + cfg + "/whatsapp_webhooks"
	for _, path := range []string{base, "/webhooks"} {
		for _, u := range []string{"http://127.0.0.1:9000/hook", "http://localhost:9000/hook", "http://10.0.0.8/hook"} {
			r := public.Do("POST", path, map[string]any{"url": u, "events": []string{eventFor(path)}})
			if r.Status != 422 || !strings.Contains(string(r.Body), "PARLEY_WEBHOOK_ALLOW_PRIVATE") {
				t.Errorf("POST %s %s: %d %s", path, u, r.Status, r.Body)
			}
		}
		id := public.Must(201, "POST", path, map[string]any{"url": "https://hooks.example.com/a", "events": []string{eventFor(path)}}).Data()["id"].(string)
		r := public.Do("PATCH", path+"/"+id, map[string]any{"url": "http://[::1]:9000/"})
		if r.Status != 422 || !strings.Contains(string(r.Body), "PARLEY_WEBHOOK_ALLOW_CIDRS") {
			t.Errorf("PATCH %s: %d %s", path, r.Status, r.Body)
		}
		if got := public.Must(200, "GET", path+"/"+id, nil).Data()["url"]; got != "https://hooks.example.com/a" {
			t.Errorf("refused update changed the url: %v", got)
		}
		// Another field changes without the url being checked again.
		public.Must(200, "PATCH", path+"/"+id, map[string]any{"active": false})
	}
	// The config's webhook_destination_url follows the same policy.
	r := public.Do("PATCH", "/whatsapp_configs/"+cfg, map[string]any{"webhook_destination_url": "http://127.0.0.1:9/"})
	if r.Status != 422 || !strings.Contains(string(r.Body), "PARLEY_WEBHOOK_ALLOW_PRIVATE") {
		t.Errorf("destination url: %d %s", r.Status, r.Body)
	}

	// An operator's setting opens it.
	allowed := apitest.Setup(t, func(c *config.Config, _ *api.Deps) {
		c.Addr = "0.0.0.0:8080"
		c.WebhookAllowCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	allowed.Must(201, "POST", "/webhooks", map[string]any{"url": "http://10.0.0.8/hook", "events": []string{"whatsapp.config.created"}})

	// Listening on loopback (the default): a local receiver is accepted,
	// a private network address still is not.
	local := apitest.Setup(t)
	local.Must(201, "POST", "/webhooks", map[string]any{"url": "http://localhost:9000/hook", "events": []string{"whatsapp.config.created"}})
	if r := local.Do("POST", "/webhooks", map[string]any{"url": "http://192.168.1.9/hook", "events": []string{"whatsapp.config.created"}}); r.Status != 422 {
		t.Errorf("private address while listening on loopback: %d %s", r.Status, r.Body)
	}
}

func eventFor(path string) string {
	if path == "/webhooks" {
		return "whatsapp.config.created"
	}
	return "whatsapp.message.received"
}
