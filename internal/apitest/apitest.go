// Package apitest runs Parley's whole API on a fresh database for a test,
// with a project and key (and a second project for tenancy checks), and
// validates every response against Parley's OpenAPI document and, for Kapso's
// operations, against Kapso's own documents (see Validate).
package apitest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// Bundle is what Setup gives a test: a running API on a fresh database, a
// project with a key, and a second project with its own key for tenancy tests.
type Bundle struct {
	T        *testing.T
	DB       *store.DB
	Srv      *httptest.Server
	API      *api.Server
	Box      *secrets.Box
	Cfg      config.Config
	Project  string
	Key      string
	Project2 string
	Key2     string
}

// Option adjusts the configuration or dependencies before the server starts.
type Option func(*config.Config, *api.Deps)

// Setup starts the whole API on a fresh database.
func Setup(t *testing.T, opts ...Option) *Bundle {
	t.Helper()
	db := storetest.Open(t)
	cfg := config.Defaults()
	cfg.PublicURL = "http://parley.test"
	box, err := secrets.New(secrets.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	deps := api.Deps{DB: db, Box: box, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: cfg}
	for _, o := range opts {
		o(&deps.Config, &deps)
	}
	s := app.BuildAPI(deps)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	b := &Bundle{T: t, DB: db, Srv: srv, API: s, Box: box, Cfg: deps.Config}
	b.Project, b.Key = NewProject(t, db, "Test project")
	b.Project2, b.Key2 = NewProject(t, db, "Other project")
	return b
}

// NewProject creates a project with an API key.
func NewProject(t *testing.T, db *store.DB, name string) (id, key string) {
	t.Helper()
	ctx := context.Background()
	p, err := store.CreateProject(ctx, db.Write(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	key = store.GenerateAPIKey()
	if _, err := store.CreateAPIKey(ctx, db.Write(), p.ID, "test", key); err != nil {
		t.Fatal(err)
	}
	return p.ID, key
}

// Resp is a decoded response.
type Resp struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// Data returns the "data" object of the response.
func (r *Resp) Data() map[string]any {
	d, _ := r.JSON["data"].(map[string]any)
	return d
}

// List returns the "data" array of the response.
func (r *Resp) List() []map[string]any {
	arr, _ := r.JSON["data"].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, v := range arr {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

// Do sends a request with the bundle's key. body may be nil, a string (sent
// raw) or any value (sent as JSON). Every response is checked against
// Parley's OpenAPI document and Kapso's by Validate.
func (b *Bundle) Do(method, path string, body any) *Resp {
	return b.DoKey(b.Key, method, path, body)
}

func (b *Bundle) DoKey(key, method, path string, body any) *Resp {
	b.T.Helper()
	return b.send("/api/v1", key, method, path, body, Validate)
}

// Must asserts the status and returns the response.
func (b *Bundle) Must(status int, method, path string, body any) *Resp {
	b.T.Helper()
	r := b.Do(method, path, body)
	if r.Status != status {
		b.T.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	return r
}

// SubscribeAll creates a webhook subscribed to every event of the config
// configID except whatsapp.conversation.inactive (whose timers need the
// delivery package's job handler), or, when configID is empty, a project
// webhook subscribed to every project event. Events nobody subscribes to are
// not stored, so a test that reads the events table subscribes first.
func (b *Bundle) SubscribeAll(configID string) string {
	b.T.Helper()
	if configID == "" {
		return b.Must(201, "POST", "/webhooks", map[string]any{"url": "https://hooks.example.com/project",
			"events": parley.ProjectEvents}).Data()["id"].(string)
	}
	evs := slices.DeleteFunc(slices.Clone(parley.ConfigEvents), func(e string) bool { return e == parley.EventConversationInactive })
	return b.Must(201, "POST", "/whatsapp_configs/"+configID+"/whatsapp_webhooks", map[string]any{
		"url": "https://hooks.example.com/all", "events": evs}).Data()["id"].(string)
}

// NewRunner returns a job runner on the bundle's database that polls every
// 20 ms, with the handlers each register function adds (an area's
// RegisterJobs).
func (b *Bundle) NewRunner(register ...func(*jobs.Runner, *api.Server)) *jobs.Runner {
	r := jobs.NewRunner(b.DB, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Poll = 20 * time.Millisecond
	for _, f := range register {
		f(r, b.API)
	}
	return r
}

// StartRunner runs r until the test ends, woken whenever the API enqueues
// a job.
func (b *Bundle) StartRunner(r *jobs.Runner) {
	b.API.Hooks.JobsEnqueued = r.Wake
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	b.T.Cleanup(func() { cancel(); <-done })
	r.Wake()
}

// Count returns the integer a query answers (a COUNT), on the read pool.
func (b *Bundle) Count(q string, args ...any) int {
	b.T.Helper()
	var n int
	if err := b.DB.Read().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		b.T.Fatal(err)
	}
	return n
}

// WaitFor polls cond until it holds, failing the test after limit.
func WaitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SandboxConfig creates a sandbox config in project, as the API does.
func (b *Bundle) SandboxConfig(project string) *parley.WhatsAppConfig {
	b.T.Helper()
	var cfg *parley.WhatsAppConfig
	err := b.DB.Tx(context.Background(), func(tx *store.Conn) error {
		var err error
		cfg, err = platform.CreateSandboxConfig(context.Background(), tx, b.Box, project, "Sandbox")
		return err
	})
	if err != nil {
		b.T.Fatal(err)
	}
	return cfg
}
