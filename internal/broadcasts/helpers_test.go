package broadcasts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/broadcasts"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/messaging"
	"github.com/parleyhq/parley/internal/sandbox"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/templates"
	"github.com/parleyhq/parley/internal/whatsapp"
)

var seq atomic.Int64

// fakeGraph stands in for Meta's Graph API: it records the send bodies,
// answers with sequential wamids, and fails sends to the numbers in fail.
type fakeGraph struct {
	mu   sync.Mutex
	sent []map[string]any
	fail map[string]bool
	srv  *httptest.Server
}

func newFakeGraph(t *testing.T) *fakeGraph {
	g := &fakeGraph{fail: map[string]bool{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		to, _ := body["to"].(string)
		g.mu.Lock()
		g.sent = append(g.sent, body)
		n := len(g.sent)
		fail := g.fail[to]
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if fail {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"(#131026) Message Undeliverable.","type":"OAuthException","code":131026,"fbtrace_id":"x"}}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":%q,"wa_id":%q}],"messages":[{"id":"wamid.BC%d"}]}`, to, to, n)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGraph) sends() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.sent...)
}

type env struct {
	*apitest.Bundle
	g      *fakeGraph
	cfg    *parley.WhatsAppConfig // production, on the fake Graph API
	tpl    *parley.Template       // approved, {{1}} {{2}}, linked to cfg
	runner *jobs.Runner
}

type opts struct {
	noRunner    bool
	sendRate    int
	statusDelay time.Duration
}

// setup starts the API with a fake Graph API for production configs (the
// simulator for sandbox ones), a production config with an approved
// two-parameter template, and unless noRunner a job runner with the
// messaging, sandbox and broadcast handlers.
func setup(t *testing.T, o opts) *env {
	t.Helper()
	g := newFakeGraph(t)
	b := apitest.Setup(t, func(c *config.Config, d *api.Deps) {
		d.Config.RateLimitPerMinute = 0
		if o.sendRate > 0 {
			d.Config.SendRatePerSec = o.sendRate
		}
		d.Config.SandboxStatusDelay = 20 * time.Millisecond
		if o.statusDelay > 0 {
			d.Config.SandboxStatusDelay = o.statusDelay
		}
		d.Graph = func(*parley.WhatsAppConfig) *whatsapp.Client {
			return &whatsapp.Client{BaseURL: g.srv.URL, MessagesPerSecond: -1, Retry: whatsapp.RetryPolicy{MaxAttempts: 1}}
		}
	})
	e := &env{Bundle: b, g: g}
	e.cfg = prodConfig(t, b, b.Project)
	e.tpl = approvedTemplate(t, b, b.Project, e.cfg, "promo", "Hi {{1}}, use code {{2}}.", nil)
	e.runner = b.NewRunner(messaging.RegisterJobs, sandbox.RegisterJobs, broadcasts.RegisterJobs)
	if !o.noRunner {
		e.startRunner(t)
	}
	return e
}

func (e *env) startRunner(*testing.T) { e.StartRunner(e.runner) }

// prodConfig inserts a production config with a WABA and an access token.
func prodConfig(t *testing.T, b *apitest.Bundle, project string) *parley.WhatsAppConfig {
	t.Helper()
	n := seq.Add(1)
	tok, err := b.Box.Encrypt("token")
	if err != nil {
		t.Fatal(err)
	}
	waba := fmt.Sprintf("9%014d", n)
	cfg := &parley.WhatsAppConfig{ProjectID: project, Name: fmt.Sprintf("Line %d", n), Kind: parley.KindProduction,
		PhoneNumberID: fmt.Sprintf("8%014d", n), BusinessAccountID: &waba, InboundProcessingEnabled: true, AccessTokenEnc: tok}
	if err := store.CreateConfig(context.Background(), b.DB.Write(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sandboxConfig creates a sandbox config as the API does.
func sandboxConfig(t *testing.T, b *apitest.Bundle, project string) *parley.WhatsAppConfig {
	t.Helper()
	return b.SandboxConfig(project)
}

// approvedTemplate inserts an approved template of cfg's WABA linked to
// cfg, with body text and optional extra components.
func approvedTemplate(t *testing.T, b *apitest.Bundle, project string, cfg *parley.WhatsAppConfig, name, body string, extra []any) *parley.Template {
	t.Helper()
	comps := append([]any{map[string]any{"type": "BODY", "text": body}}, extra...)
	raw, _ := json.Marshal(comps)
	tpl := &parley.Template{ProjectID: project, Name: name, LanguageCode: "en_US", Category: parley.CategoryMarketing,
		Status: parley.TemplateApproved, Content: body, ParameterFormat: parley.ParamsPositional, BusinessAccountID: cfg.BusinessAccountID,
		WhatsAppConfigIDs: []string{cfg.ID}, Components: raw, Metadata: parley.JSONObject{}}
	if err := templates.InsertTemplate(context.Background(), b.DB.Write(), tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

// newBroadcast creates a draft through the API and returns its id.
func (e *env) newBroadcast(t *testing.T, name string, cfg *parley.WhatsAppConfig, tpl *parley.Template) string {
	t.Helper()
	return e.Must(201, "POST", "/whatsapp_broadcasts", map[string]any{"whatsapp_broadcast": map[string]any{
		"name": name, "whatsapp_config_id": cfg.ID, "whatsapp_template_id": tpl.ID}}).Data()["id"].(string)
}

// phones returns n distinct valid phone numbers.
func phones(n int) []string {
	out := make([]string, n)
	base := seq.Add(int64(n))
	for i := range out {
		out[i] = fmt.Sprintf("5691%07d", (base+int64(i))%10_000_000)
	}
	return out
}

// recipientsOf builds a recipients body with positional parameters.
func recipientsOf(ps []string) map[string]any {
	rs := make([]any, len(ps))
	for i, p := range ps {
		rs[i] = map[string]any{"phone_number": "+" + p, "template_parameters": []any{fmt.Sprintf("N%d", i), "CODE"}}
	}
	return map[string]any{"recipients": rs}
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	apitest.WaitFor(t, what, 20*time.Second, cond)
}

func (e *env) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	return e.Count(q, args...)
}

// allRecipients pages through a broadcast's recipients.
func (e *env) allRecipients(t *testing.T, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for page := 1; ; page++ {
		r := e.Must(200, "GET", fmt.Sprintf("/whatsapp_broadcasts/%s/recipients?per_page=100&page=%d", id, page), nil)
		out = append(out, r.List()...)
		if len(r.List()) < 100 {
			return out
		}
	}
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}
