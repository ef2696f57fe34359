package displaynames_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/displaynames"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// graphCall is one request the fake Graph API received.
type graphCall struct {
	Method string
	Path   string // without the version, e.g. "/106540352242922"
	Query  map[string]string
	Token  string
}

// fakeGraph is a scripted Graph API: reply decides each answer (a generic
// success when nil), and every request is recorded.
type fakeGraph struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []graphCall
	reply func(c graphCall) (int, string)
}

func newFakeGraph(t *testing.T) *fakeGraph {
	fg := &fakeGraph{}
	fg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c := graphCall{Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, "/v24.0"), Query: map[string]string{},
			Token: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}
		for k := range r.URL.Query() {
			c.Query[k] = r.URL.Query().Get(k)
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

func (fg *fakeGraph) requests() []graphCall {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	return append([]graphCall(nil), fg.calls...)
}

type env struct {
	*apitest.Bundle
	g      *fakeGraph
	runner *jobs.Runner
}

// setup starts the API with Graph calls going to a fake server, fast
// review polling and a short sandbox delay; with run, a job runner with
// this package's handlers.
func setup(t *testing.T, run bool) *env {
	t.Helper()
	displaynames.SetPolling(t, 20*time.Millisecond, 50*time.Millisecond, time.Hour)
	g := newFakeGraph(t)
	b := apitest.Setup(t, func(c *config.Config, d *api.Deps) {
		d.Config.SandboxStatusDelay = 20 * time.Millisecond
		client := &whatsapp.Client{BaseURL: g.srv.URL, Version: "v24.0", Retry: whatsapp.RetryPolicy{MaxAttempts: 1}}
		d.Graph = func(*parley.WhatsAppConfig) *whatsapp.Client { return client }
	})
	e := &env{Bundle: b, g: g}
	e.runner = b.NewRunner(displaynames.RegisterJobs)
	if run {
		e.start(t)
	}
	return e
}

func (e *env) start(*testing.T) { e.StartRunner(e.runner) }

var phoneSeq struct {
	sync.Mutex
	n int
}

// prodConfig stores a production config of project with an access token
// (token "" for none) and the display name name ("" for none).
func prodConfig(t *testing.T, b *apitest.Bundle, project, token, name string) *parley.WhatsAppConfig {
	t.Helper()
	phoneSeq.Lock()
	phoneSeq.n++
	n := phoneSeq.n
	phoneSeq.Unlock()
	waba := "102290129340398"
	cfg := &parley.WhatsAppConfig{ProjectID: project, Name: "Main", Kind: parley.KindProduction,
		PhoneNumberID: fmt.Sprintf("1065403522%05d", n), BusinessAccountID: &waba, InboundProcessingEnabled: true}
	if token != "" {
		enc, err := b.Box.Encrypt(token)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AccessTokenEnc = enc
	}
	if name != "" {
		cfg.DisplayName = &name
	}
	if err := store.CreateConfig(context.Background(), b.DB.Write(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sandboxConfig creates a sandbox config through the API.
func sandboxConfig(t *testing.T, b *apitest.Bundle) string {
	t.Helper()
	return b.Must(201, "POST", "/whatsapp_configs", map[string]any{"whatsapp_config": map[string]any{
		"name": "Sandbox", "kind": "sandbox"}}).Data()["id"].(string)
}

func body(name string) map[string]any {
	return map[string]any{"display_name_request": map[string]any{"new_display_name": name}}
}

func path(configID string) string { return "/whatsapp_configs/" + configID + "/display_name_requests" }

// waitStatus polls the request until it has status want.
func waitStatus(t *testing.T, b *apitest.Bundle, configID, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last map[string]any
	for time.Now().Before(deadline) {
		last = b.Must(200, "GET", path(configID)+"/"+id, nil).Data()
		if last["status"] == want {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	j, _ := json.Marshal(last)
	t.Fatalf("request %s: status never became %s: %s", id, want, j)
	return nil
}

func countJobs(t *testing.T, b *apitest.Bundle) int {
	t.Helper()
	var n int
	if err := b.DB.Read().QueryRow(context.Background(), `SELECT COUNT(*) FROM jobs WHERE kind LIKE 'display_name_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
