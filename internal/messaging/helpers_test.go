package messaging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/messaging"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

const (
	appSecret = "test-app-secret"
	phoneID   = "106540352242922" // the fixtures' phone_number_id
	wabaID    = "102290129340398"
	customer  = "16505551234" // the fixtures' customer wa_id
)

// graphReq is one request the fake Graph API received.
type graphReq struct {
	Path string
	Auth string
	Body map[string]any
}

// fakeGraph stands in for Meta's Graph API: it records requests, answers
// sends with sequential wamids, and fails sends to numbers in fail with the
// given Graph error body.
type fakeGraph struct {
	mu    sync.Mutex
	reqs  []graphReq
	n     int
	next  []string // wamids to hand out first
	fail  map[string][]byte
	srv   *httptest.Server
	holds chan struct{} // when set, sends wait for a token
}

func newFakeGraph(t *testing.T) *fakeGraph {
	g := &fakeGraph{fail: map[string][]byte{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		g.mu.Lock()
		g.reqs = append(g.reqs, graphReq{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: body})
		to, _ := body["to"].(string)
		failBody := g.fail[to]
		var id string
		if len(g.next) > 0 {
			id, g.next = g.next[0], g.next[1:]
		} else {
			g.n++
			id = fmt.Sprintf("wamid.TEST%d", g.n)
		}
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case body["status"] == "read":
			_, _ = io.WriteString(w, `{"success":true}`)
		case failBody != nil:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(failBody)
		default:
			_, _ = fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":%q,"wa_id":%q}],"messages":[{"id":%q}]}`, to, to, id)
		}
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGraph) requests() []graphReq {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]graphReq(nil), g.reqs...)
}

type env struct {
	*apitest.Bundle
	g      *fakeGraph
	cfg    *parley.WhatsAppConfig
	runner *jobs.Runner
}

type setupOpts struct {
	noRunner bool
	autoEnd  time.Duration
}

// setup starts the API with a fake Graph API, a production config on the
// fixtures' phone number, and (unless noRunner) a job runner with this
// package's handlers.
func setup(t *testing.T, o setupOpts) *env {
	t.Helper()
	g := newFakeGraph(t)
	b := apitest.Setup(t, func(c *config.Config, d *api.Deps) {
		d.Config.MetaAppSecret = appSecret
		d.Config.MetaVerifyToken = "global-verify"
		d.Config.ConversationAutoEnd = o.autoEnd
		d.Graph = func(*parley.WhatsAppConfig) *whatsapp.Client {
			return &whatsapp.Client{BaseURL: g.srv.URL, MessagesPerSecond: -1, Retry: whatsapp.RetryPolicy{MaxAttempts: 1}}
		}
	})
	e := &env{Bundle: b, g: g}
	e.cfg = newConfig(t, b, b.Project, phoneID, wabaID)
	b.SubscribeAll(e.cfg.ID)
	e.runner = b.NewRunner(messaging.RegisterJobs)
	if !o.noRunner {
		e.startRunner(t)
	}
	return e
}

func (e *env) startRunner(*testing.T) { e.StartRunner(e.runner) }

func newConfig(t *testing.T, b *apitest.Bundle, project, pnid, waba string) *parley.WhatsAppConfig {
	t.Helper()
	tok, err := b.Box.Encrypt("access-token-" + pnid)
	if err != nil {
		t.Fatal(err)
	}
	dpn := "15550783881"
	cfg := &parley.WhatsAppConfig{ProjectID: project, Name: "Main " + pnid, Kind: parley.KindProduction, PhoneNumberID: pnid,
		BusinessAccountID: &waba, DisplayPhoneNumber: &dpn, InboundProcessingEnabled: true, AccessTokenEnc: tok}
	if err := store.CreateConfig(context.Background(), b.DB.Write(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	apitest.WaitFor(t, what, 10*time.Second, cond)
}

func (e *env) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	return e.Count(q, args...)
}

// eventsOf returns the events of a type, oldest first, as decoded v2 and v1
// payloads.
func (e *env) eventsOf(t *testing.T, typ string) (v2s, v1s []map[string]any) {
	t.Helper()
	rows, err := e.DB.Read().Query(context.Background(), `SELECT payload_v2, payload_v1 FROM events WHERE type = ? ORDER BY created_at, id`, typ)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		var m2, m1 map[string]any
		_ = json.Unmarshal([]byte(a), &m2)
		_ = json.Unmarshal([]byte(b), &m1)
		v2s, v1s = append(v2s, m2), append(v1s, m1)
	}
	return v2s, v1s
}

func readFixture(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := readFixture(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postWebhook posts body to Meta's webhook endpoint signed with secret
// ("" = no signature header) and returns the status.
func (e *env) postWebhook(t *testing.T, body []byte, secret string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", e.Srv.URL+"/webhooks/whatsapp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign([]byte(secret), body))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// inboundText builds a signed-able text message webhook.
func inboundText(t *testing.T, pnid, from, wamid, text string) []byte {
	t.Helper()
	b, err := whatsapp.BuildMessageWebhook(wabaID, pnid, "15550783881", whatsapp.Contact{WaID: from, ProfileName: "Sheena Nelson"},
		whatsapp.NewTextMessage(from, wamid, time.Now(), text))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func statusWebhook(t *testing.T, wamid, status string, at time.Time, errs ...whatsapp.Error) []byte {
	t.Helper()
	b, err := whatsapp.BuildStatusWebhook(wabaID, phoneID, "15550783881", whatsapp.NewStatus(wamid, status, customer, at, errs...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func jsonEq(t *testing.T, label string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	var gv, wv any
	_ = json.Unmarshal(g, &gv)
	_ = json.Unmarshal(w, &wv)
	gb, _ := json.Marshal(gv)
	wb, _ := json.Marshal(wv)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s:\n got %s\nwant %s", label, gb, wb)
	}
}
