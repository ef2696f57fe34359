package sandbox_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// fakeGraph serves fixture files for the three calls a health check makes.
type fakeGraph struct {
	mu       sync.Mutex
	phone    string // fixture names (testdata/*.json)
	health   string
	apps     string
	tokens   []string
	requests []string
}

func (f *fakeGraph) set(phone, health, apps string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.phone, f.health, f.apps = phone, health, apps
}

func (f *fakeGraph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tokens = append(f.tokens, r.Header.Get("Authorization"))
	f.requests = append(f.requests, r.URL.Path+"?"+r.URL.RawQuery)
	var name string
	switch {
	case strings.HasSuffix(r.URL.Path, "/subscribed_apps"):
		name = f.apps
	case r.URL.Query().Get("fields") == "health_status":
		name = f.health
	default:
		name = f.phone
	}
	f.mu.Unlock()
	b, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	status := 200
	if strings.HasPrefix(name, "error_190") {
		status = 401
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func TestConfigHealth(t *testing.T) {
	fake := &fakeGraph{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	graphURL := srv.URL
	var urlMu sync.Mutex
	b := apitest.Setup(t, func(c *configT, d *depsT) {
		d.Graph = func(*parley.WhatsAppConfig) *whatsapp.Client {
			urlMu.Lock()
			defer urlMu.Unlock()
			return &whatsapp.Client{BaseURL: graphURL, Retry: whatsapp.RetryPolicy{MaxAttempts: 1}}
		}
	})
	ctx := context.Background()
	tok, _ := b.Box.Encrypt("EAAG-secret-token")
	waba := "102290129340398"
	verified := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	prod := &parley.WhatsAppConfig{ProjectID: b.Project, Name: "Prod", Kind: parley.KindProduction, PhoneNumberID: "106540352242922",
		BusinessAccountID: &waba, AccessTokenEnc: tok, WebhookVerifiedAt: &verified}
	if err := store.CreateConfig(ctx, b.DB.Write(), prod); err != nil {
		t.Fatal(err)
	}
	path := "/whatsapp_configs/" + prod.ID + "/health"
	check := func(r *apitest.Resp, name string) map[string]any {
		c, _ := r.JSON["checks"].(map[string]any)
		m, _ := c[name].(map[string]any)
		return m
	}

	fake.set("phone_number_get", "health_status", "subscribed_apps_get")
	r := b.Must(200, "GET", path, nil)
	if r.JSON["status"] != "healthy" {
		t.Fatalf("all good: %s", r.Body)
	}
	pd := check(r, "phone_number_access")["details"].(map[string]any)
	if pd["verified_name"] != "Jaspers Market" || pd["display_phone_number"] != "+1 555-078-3881" || pd["quality_rating"] != "GREEN" || pd["id"] != "106540352242922" {
		t.Fatalf("phone details: %v", pd)
	}
	mh := check(r, "messaging_health")
	if mh["overall_status"] != "AVAILABLE" || mh["passed"] != true || len(mh["details"].(map[string]any)["entities"].([]any)) != 4 {
		t.Fatalf("messaging: %v", mh)
	}
	ws := check(r, "webhook_subscription")["details"].(map[string]any)
	if ws["app_id"] != "634974688087057" || ws["subscribed"] != true {
		t.Fatalf("subscription: %v", ws)
	}
	wv := check(r, "webhook_verified")["details"].(map[string]any)
	if wv["verified_at"] != "2024-01-15T10:30:00Z" || !strings.Contains(wv["message"].(string), "2024-01-15 10:30:00 UTC") {
		t.Fatalf("verified: %v", wv)
	}
	fake.mu.Lock()
	for _, h := range fake.tokens {
		if h != "Bearer EAAG-secret-token" {
			t.Fatalf("Graph got Authorization %q", h)
		}
	}
	fake.mu.Unlock()
	if strings.Contains(string(r.Body), "EAAG") {
		t.Fatal("token leaked into the response")
	}

	for _, tc := range []struct {
		phone, health, apps string
		want                string
	}{
		{"phone_number_get", "health_status_limited", "subscribed_apps_get", "degraded"},
		{"phone_number_get", "health_status", "subscribed_apps_get_empty", "degraded"},
		{"phone_number_get", "health_status_blocked_template", "subscribed_apps_get", "unhealthy"},
		{"phone_number_get", "health_status_blocked_template", "subscribed_apps_get_empty", "unhealthy"},
		{"error_190_token_expired", "health_status", "subscribed_apps_get", "unhealthy"},
		{"error_190_token_expired", "error_190_token_expired", "error_190_token_expired", "unhealthy"},
	} {
		fake.set(tc.phone, tc.health, tc.apps)
		r := b.Must(200, "GET", path, nil)
		if r.JSON["status"] != tc.want {
			t.Errorf("%s/%s/%s: status %v, want %s: %s", tc.phone, tc.health, tc.apps, r.JSON["status"], tc.want, r.Body)
		}
		if tc.phone == "error_190_token_expired" {
			pa := check(r, "phone_number_access")
			if pa["passed"] != false || !strings.Contains(pa["error"].(string), "190") {
				t.Errorf("token expired: %v", pa)
			}
		}
		if tc.health == "health_status_blocked_template" && check(r, "messaging_health")["overall_status"] != "BLOCKED" {
			t.Errorf("blocked: %v", check(r, "messaging_health"))
		}
	}

	// Not verified by Meta yet: degraded, verified_at null.
	prod.WebhookVerifiedAt = nil
	if err := store.UpdateConfig(ctx, b.DB.Write(), prod); err != nil {
		t.Fatal(err)
	}
	fake.set("phone_number_get", "health_status", "subscribed_apps_get")
	r = b.Must(200, "GET", path, nil)
	wv = check(r, "webhook_verified")
	if r.JSON["status"] != "degraded" || wv["passed"] != false || wv["details"].(map[string]any)["verified_at"] != nil {
		t.Fatalf("unverified: %s", r.Body)
	}

	// Graph unreachable: the check itself fails.
	urlMu.Lock()
	graphURL = downURL
	urlMu.Unlock()
	r = b.Must(200, "GET", path, nil)
	if r.JSON["status"] != "error" || r.JSON["error"] == "" || r.JSON["checks"] != nil || r.JSON["timestamp"] == nil {
		t.Fatalf("unreachable: %s", r.Body)
	}

	// Sandbox configs are checked against the simulator.
	sb := newSandbox(t, b, b.Project)
	r = b.Must(200, "GET", "/whatsapp_configs/"+sb.ID+"/health", nil)
	if r.JSON["status"] != "healthy" {
		t.Fatalf("sandbox: %s", r.Body)
	}
	c := graphClient(b)
	if err := c.Unsubscribe(ctx, token(t, b, sb), *sb.BusinessAccountID); err != nil {
		t.Fatal(err)
	}
	if r := b.Must(200, "GET", "/whatsapp_configs/"+sb.ID+"/health", nil); r.JSON["status"] != "degraded" {
		t.Fatalf("sandbox unsubscribed: %s", r.Body)
	}

	// Tenancy and bad ids.
	b.Must(404, "GET", "/whatsapp_configs/"+newSandbox(t, b, b.Project2).ID+"/health", nil)
	b.Must(404, "GET", "/whatsapp_configs/123/health", nil)
	b.Must(404, "GET", "/whatsapp_configs/"+store.NewID()+"/health", nil)
	if r := b.DoKey("", "GET", path, nil); r.Status != 401 {
		t.Fatalf("no key: %d", r.Status)
	}
}
