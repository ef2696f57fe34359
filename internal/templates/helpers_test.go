package templates_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// graphCall is one request the fake Graph server received.
type graphCall struct {
	Method string
	Path   string // without the version prefix, e.g. "/123/message_templates"
	Query  map[string]string
	Body   map[string]any
	Token  string
}

// fakeGraph is a scripted Graph API: reply decides each answer, and every
// request is recorded.
type fakeGraph struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	calls []graphCall
	reply func(c graphCall) (int, string)
}

func newFakeGraph(t *testing.T) *fakeGraph {
	fg := &fakeGraph{t: t}
	fg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := graphCall{Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, "/v24.0"), Query: map[string]string{},
			Token: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}
		for k := range r.URL.Query() {
			c.Query[k] = r.URL.Query().Get(k)
		}
		if len(raw) > 0 {
			_ = json.Unmarshal(raw, &c.Body)
		}
		fg.mu.Lock()
		fg.calls = append(fg.calls, c)
		reply := fg.reply
		fg.mu.Unlock()
		status, body := 200, `{"success":true}`
		if reply != nil {
			status, body = reply(c)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(fg.srv.Close)
	return fg
}

func (fg *fakeGraph) setReply(f func(c graphCall) (int, string)) {
	fg.mu.Lock()
	fg.reply = f
	fg.mu.Unlock()
}

// take returns and clears the recorded calls.
func (fg *fakeGraph) take() []graphCall {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	out := fg.calls
	fg.calls = nil
	return out
}

// setup starts the API with Graph calls going to a fake server.
func setup(t *testing.T) (*apitest.Bundle, *fakeGraph) {
	fg := newFakeGraph(t)
	b := apitest.Setup(t, func(c *config.Config, d *api.Deps) {
		client := &whatsapp.Client{BaseURL: fg.srv.URL, Version: "v24.0", Retry: whatsapp.RetryPolicy{MaxAttempts: 1}}
		d.Graph = func(*parley.WhatsAppConfig) *whatsapp.Client { return client }
	})
	return b, fg
}

// configOpts describe a test config.
type configOpts struct {
	project  string
	customer *string
	kind     string
	waba     string
	token    string
}

var phoneSeq int
var phoneMu sync.Mutex

// newConfig stores a config directly (the configs API is another package's).
func newConfig(t *testing.T, b *apitest.Bundle, o configOpts) *parley.WhatsAppConfig {
	t.Helper()
	phoneMu.Lock()
	phoneSeq++
	n := phoneSeq
	phoneMu.Unlock()
	if o.project == "" {
		o.project = b.Project
	}
	if o.kind == "" {
		o.kind = parley.KindProduction
	}
	if o.token == "" {
		o.token = "tok-" + o.waba
	}
	enc, err := b.Box.Encrypt(o.token)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &parley.WhatsAppConfig{ProjectID: o.project, CustomerID: o.customer, Name: "cfg", Kind: o.kind,
		PhoneNumberID: "10000" + itoa(n), AccessTokenEnc: enc}
	if o.waba != "" {
		w := o.waba
		cfg.BusinessAccountID = &w
	}
	if err := store.CreateConfig(context.Background(), b.DB.Write(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func newCustomer(t *testing.T, b *apitest.Bundle, project string) string {
	t.Helper()
	c := &parley.Customer{ProjectID: project, Name: "Customer"}
	if err := store.CreateCustomer(context.Background(), b.DB.Write(), c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// fixture reads a testdata file as generic JSON.
func fixture(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func fixtureRaw(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// upperEnums upper-cases the enum values Meta accepts in either case
// (type, format, category, parameter_format, button types), so a request
// can be compared with Meta's lower-case documentation examples.
func upperEnums(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			switch k {
			case "type", "format", "category", "parameter_format":
				if s, ok := val.(string); ok {
					out[k] = strings.ToUpper(s)
					continue
				}
			}
			out[k] = upperEnums(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = upperEnums(e)
		}
		return out
	}
	return v
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// simpleBody is a valid create body.
func simpleBody(name string) map[string]any {
	return map[string]any{"template": map[string]any{
		"name": name, "language_code": "en_US", "category": "UTILITY",
		"components": []any{map[string]any{"type": "BODY", "text": "Hello {{1}}, your order {{2}} shipped.",
			"example": map[string]any{"body_text": []any{[]any{"Ana", "A-17"}}}}},
	}}
}

// setStatus forces a template's status and Meta id in the database, as a
// review by Meta would.
func setStatus(t *testing.T, b *apitest.Bundle, id, status, metaID string) {
	t.Helper()
	if _, err := b.DB.Write().Exec(context.Background(), `UPDATE templates SET status = ?, meta_template_id = ? WHERE id = ?`,
		status, metaID, id); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, b *apitest.Bundle, query string, args ...any) int {
	t.Helper()
	var n int
	if err := b.DB.Read().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
