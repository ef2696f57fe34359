package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// bundle is what setup gives a test: a running API on a fresh database, a
// project with a key, and a second project with its own key for tenancy tests.
type bundle struct {
	t        *testing.T
	db       *store.DB
	srv      *httptest.Server
	api      *api.Server
	cfg      config.Config
	project  string
	key      string
	project2 string
	key2     string
}

type setupOpt func(*config.Config, *api.Deps)

func setup(t *testing.T, opts ...setupOpt) *bundle {
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
	s := api.New(deps)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	b := &bundle{t: t, db: db, srv: srv, api: s, cfg: deps.Config}
	ctx := context.Background()
	b.project, b.key = newProject(t, db, "Test project")
	b.project2, b.key2 = newProject(t, db, "Other project")
	_ = ctx
	return b
}

func newProject(t *testing.T, db *store.DB, name string) (id, key string) {
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

// resp is a decoded response.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// Data returns the "data" object of the response.
func (r *resp) Data() map[string]any {
	d, _ := r.JSON["data"].(map[string]any)
	return d
}

// List returns the "data" array of the response.
func (r *resp) List() []map[string]any {
	arr, _ := r.JSON["data"].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, v := range arr {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

// do sends a request with the bundle's key. body may be nil, a string (sent
// raw) or any value (sent as JSON). Every response is checked against
// Parley's OpenAPI document by validate.
func (b *bundle) do(method, path string, body any) *resp {
	return b.doKey(b.key, method, path, body)
}

func (b *bundle) doKey(key, method, path string, body any) *resp {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		j, _ := json.Marshal(v)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.srv.URL+"/api/v1"+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := &resp{Status: res.StatusCode, Header: res.Header, Body: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.JSON)
	}
	if res.StatusCode >= 500 {
		b.t.Errorf("%s %s: server error %d: %s", method, path, res.StatusCode, raw)
	}
	validate(b.t, req, res.StatusCode, res.Header, raw)
	return out
}

// must asserts the status and returns the response.
func (b *bundle) must(status int, method, path string, body any) *resp {
	b.t.Helper()
	r := b.do(method, path, body)
	if r.Status != status {
		b.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	return r
}
