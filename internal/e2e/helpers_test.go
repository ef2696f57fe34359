package e2e_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestMain removes the parley binary built for the subprocess scenarios.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// The server under test.

// server is a Parley started for a test.
type server struct {
	URL  string // http://127.0.0.1:port
	Key  string // the bootstrap API key
	logs *logBuffer
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startServer runs app.New and Serve on a loopback listener with the given
// PARLEY_* variables over a test baseline: a fresh database of the run's
// engine (storetest.URL), a private data dir, a bootstrap key. The server is
// shut down gracefully when the test ends; its log is printed if it failed.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"PARLEY_ADDR":              ln.Addr().String(),
		"PARLEY_DATA_DIR":          t.TempDir(),
		"PARLEY_BOOTSTRAP_API_KEY": "pk_e2e_" + randomHex(16),
		"PARLEY_LOG_LEVEL":         "info",
		"PARLEY_WEBHOOK_TIMEOUT":   "5s",
	}
	maps.Copy(vars, env)
	if vars["PARLEY_DATABASE_URL"] == "" {
		// Registered before the server's cleanup, so the database outlives it.
		vars["PARLEY_DATABASE_URL"] = storetest.URL(t)
	}
	cfg, err := config.Load(nil, nil, func(k string) string { return vars[k] })
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.NewLogger(cfg, logs), io.Discard)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("app.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not shut down within 30 s")
		}
		if t.Failed() {
			t.Logf("server log (tail):\n%s", logs.tail(12<<10))
		}
	})
	s := &server{URL: "http://" + ln.Addr().String(), Key: vars["PARLEY_BOOTSTRAP_API_KEY"], logs: logs}
	waitReady(t, s.URL, 30*time.Second)
	return s
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, base string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not become ready within %s", base, limit)
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// The API client.

// client calls /api/v1 with an API key. Every response is checked against
// Parley's OpenAPI document and Kapso's (apitest.Validate) unless raw.
type client struct {
	t    *testing.T
	base string // ends in /api/v1
	key  string
	raw  bool
}

func newClient(t *testing.T, s *server) *client {
	return &client{t: t, base: s.URL + "/api/v1", key: s.Key}
}

// resp is a decoded API response.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (r *resp) data() map[string]any {
	d, _ := r.JSON["data"].(map[string]any)
	return d
}

func (r *resp) list() []map[string]any {
	arr, _ := r.JSON["data"].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, v := range arr {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends a request. body is nil, a string (sent as is) or a value sent as
// JSON.
func (c *client) do(method, path string, body any) *resp {
	c.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		j, err := json.Marshal(v)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := httpClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := &resp{Status: res.StatusCode, Header: res.Header, Body: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.JSON)
	}
	if res.StatusCode >= 500 {
		c.t.Errorf("%s %s: server error %d: %s", method, path, res.StatusCode, raw)
	}
	if !c.raw {
		apitest.Validate(c.t, req, res.StatusCode, res.Header, raw)
	}
	return out
}

// must sends a request and fails the test unless the status is want.
func (c *client) must(want int, method, path string, body any) *resp {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.Status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// onlyConfig returns the project's single WhatsApp config (the sandbox one
// bootstrap created).
func (c *client) onlyConfig() map[string]any {
	c.t.Helper()
	l := c.must(200, "GET", "/whatsapp_configs", nil).list()
	if len(l) != 1 {
		c.t.Fatalf("want one config after bootstrap, got %d", len(l))
	}
	return l[0]
}

// messages returns a conversation's messages, oldest first (the API lists
// newest first).
func (c *client) messages(convID string) []map[string]any {
	c.t.Helper()
	var all []map[string]any
	for page := 1; ; page++ {
		l := c.must(200, "GET", fmt.Sprintf("/whatsapp_conversations/%s/whatsapp_messages?per_page=100&page=%d", convID, page), nil).list()
		all = append(all, l...)
		if len(l) < 100 {
			break
		}
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// conversationWith returns the id of the active conversation of a config
// with a phone number, or "".
func (c *client) conversationWith(cfgID, phone string) string {
	c.t.Helper()
	l := c.must(200, "GET", "/whatsapp_conversations?q[status_eq]=active&whatsapp_config_id="+cfgID+"&q[phone_number_eq]="+phone, nil).list()
	if len(l) == 0 {
		return ""
	}
	if len(l) > 1 {
		c.t.Fatalf("%d active conversations with %s", len(l), phone)
	}
	return l[0]["id"].(string)
}

// ---------------------------------------------------------------------------
// The webhook receiver.

// hook is one delivery the receiver got.
type hook struct {
	Event   string // X-Webhook-Event
	Key     string // X-Idempotency-Key
	Version string // X-Webhook-Payload-Version
	Batch   bool
	SigOK   bool // X-Webhook-Signature is the HMAC of the body under the secret
	Body    []byte
	Payload map[string]any
	At      time.Time
}

// receiver is a user's webhook endpoint: it checks each delivery's signature
// with its own HMAC and records it.
type receiver struct {
	*httptest.Server
	secret string
	// delay, when set, is how long to wait before answering a delivery: a
	// slow endpoint makes concurrent deliveries overlap. Fixed at creation.
	delay func(event string) time.Duration
	// pause is added to every answer (nanoseconds); it may change while
	// deliveries arrive.
	pause atomic.Int64

	mu    sync.Mutex
	hooks []hook
}

// newReceiver starts a receiver; delay (may be nil) slows its answers.
func newReceiver(t *testing.T, secret string, delay func(event string) time.Duration) *receiver {
	r := &receiver{secret: secret, delay: delay}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	h := hook{
		Event: req.Header.Get("X-Webhook-Event"), Key: req.Header.Get("X-Idempotency-Key"),
		Version: req.Header.Get("X-Webhook-Payload-Version"), Batch: req.Header.Get("X-Webhook-Batch") == "true",
		SigOK: hmac.Equal([]byte(want), []byte(req.Header.Get("X-Webhook-Signature"))),
		Body:  body, At: time.Now(),
	}
	_ = json.Unmarshal(body, &h.Payload)
	if r.delay != nil {
		time.Sleep(r.delay(h.Event))
	}
	time.Sleep(time.Duration(r.pause.Load()))
	r.mu.Lock()
	r.hooks = append(r.hooks, h)
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// all returns the deliveries so far, in arrival order.
func (r *receiver) all() []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hook(nil), r.hooks...)
}

// waitFor polls the deliveries until cond holds.
func (r *receiver) waitFor(t *testing.T, what string, limit time.Duration, cond func([]hook) bool) []hook {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		hs := r.all()
		if cond(hs) {
			return hs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; %d deliveries: %s", limit, what, len(hs), summary(hs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// summary renders deliveries briefly for failure messages.
func summary(hs []hook) string {
	var b strings.Builder
	for i, h := range hs {
		if i == 60 {
			fmt.Fprintf(&b, " …")
			break
		}
		fmt.Fprintf(&b, "\n  %s %s", h.Event, msgID(h))
	}
	return b.String()
}

// get walks nested JSON objects.
func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// gets is get for a string value ("" when absent).
func gets(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

// msgID is the Parley message id of a message event (message.kapso.id).
func msgID(h hook) string { return gets(h.Payload, "message", "kapso", "id") }

// convID is the conversation id of a message or conversation event.
func convID(h hook) string { return gets(h.Payload, "conversation", "id") }

// within polls cond until it holds or limit passes, and reports whether it
// held.
func within(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Meta's side.

// metaSignature is Meta's X-Hub-Signature-256 of a body.
func metaSignature(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// fixture reads a JSON file under testdata.
func fixture(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// ---------------------------------------------------------------------------
// The parley binary, for the scenarios where process behaviour matters.

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// parleyBinary builds cmd/parley once per test run.
func parleyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "parley-e2e-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "parley")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/parleyhq/parley/cmd/parley")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a `parley serve` subprocess.
type proc struct {
	cmd  *exec.Cmd
	URL  string
	logs *logBuffer
	done chan struct{}
}

// startProc runs `parley serve` with env (PARLEY_* assignments) on a free
// loopback port and waits until it is ready. The port is picked by listening
// on :0 and closing; should something take it before the process binds it
// (the process's own outgoing connections may), the start is retried.
func startProc(t *testing.T, name string, env map[string]string) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := tryStartProc(t, name, env)
		if err == nil {
			return p
		}
		if attempt == 3 || !strings.Contains(p.logs.tail(4<<10), "address already in use") {
			t.Fatalf("%s: %v\n%s", name, err, p.logs.tail(8<<10))
		}
	}
}

func tryStartProc(t *testing.T, name string, env map[string]string) (*proc, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(parleyBinary(t), "serve")
	// Only the variables given: nothing from the developer's environment
	// (a PARLEY_DATABASE_URL there) leaks into the process.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PARLEY_ADDR=" + addr}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, URL: "http://" + addr, logs: logs, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, logs.tail(8<<10))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return p, fmt.Errorf("exited before becoming ready")
		default:
		}
		if res, err := http.Get(p.URL + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, fmt.Errorf("not ready within 60 s")
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// outboundDone reports whether an outbound message reached WhatsApp: it
// has a wamid and a status past pending that is not failed.
func outboundDone(m map[string]any) bool {
	switch m["status"] {
	case "sent", "delivered", "read":
		return strings.HasPrefix(gets(m, "whatsapp_message_id"), "wamid.")
	}
	return false
}

// expectRead waits until every message of a conversation picked by pick
// has reached WhatsApp and then for it to show read; a message stuck short
// of read is a lost status update.
func expectRead(t *testing.T, c *client, conv string, want int, pick func(map[string]any) bool) {
	t.Helper()
	picked := func() []map[string]any {
		var out []map[string]any
		for _, m := range c.messages(conv) {
			if pick(m) {
				out = append(out, m)
			}
		}
		return out
	}
	eventually(t, "the messages to reach WhatsApp", 15*time.Second, func() bool {
		l := picked()
		for _, m := range l {
			if m["status"] == "failed" {
				t.Fatalf("message failed: %v", m)
			}
			if !outboundDone(m) {
				return false
			}
		}
		return len(l) == want
	})
	allRead := func() bool {
		for _, m := range picked() {
			if m["status"] != "read" {
				return false
			}
		}
		return true
	}
	if !within(3*time.Second, allRead) {
		for _, m := range picked() {
			if m["status"] != "read" {
				t.Errorf("message %s (%s) stays %v after its read status", m["id"], m["message_type"], m["status"])
			}
		}
	}
}
