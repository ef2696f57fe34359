package delivery

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// ---- fixtures ----

type env struct {
	t       testing.TB
	db      *store.DB
	box     *secrets.Box
	project string
	config  string
	cfg     config.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, storetest.Open(t))
}

func newEnvOn(t testing.TB, db *store.DB) *env {
	t.Helper()
	box, err := secrets.New(secrets.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := store.CreateProject(ctx, db.Write(), "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, box: box, project: p.ID}
	e.config = e.addConfig()
	e.cfg = config.Defaults()
	e.cfg.WebhookAllowPrivate = true
	e.cfg.WebhookTimeout = 5 * time.Second
	return e
}

func (e *env) addConfig() string {
	id := store.NewID()
	now := store.Micros(time.Now())
	if _, err := e.db.Write().Exec(context.Background(), `INSERT INTO whatsapp_configs (id, project_id, name, kind, phone_number_id, created_at, updated_at)
		VALUES (?, ?, 'c', 'sandbox', ?, ?, ?)`, id, e.project, strconv.FormatInt(time.Now().UnixNano(), 10), now, now); err != nil {
		e.t.Fatal(err)
	}
	return id
}

type hookOpts struct {
	configID       *string // nil: the env's config; pointer to "": project webhook
	events         []string
	secret         string
	headers        map[string]string
	payloadVersion string
	buffer         bool
	window, size   int
	retryCustom    bool
	retryMax       int
	backoff        int
	inactivity     int
}

func (e *env) addWebhook(url string, o hookOpts) string {
	e.t.Helper()
	if o.secret == "" {
		o.secret = "s3cret"
	}
	if o.payloadVersion == "" {
		o.payloadVersion = "v2"
	}
	if o.events == nil {
		o.events = []string{parley.EventMessageReceived, parley.EventMessageSent}
	}
	if o.window == 0 {
		o.window = 5
	}
	if o.size == 0 {
		o.size = 50
	}
	if o.retryMax == 0 {
		o.retryMax = 4
	}
	if o.backoff == 0 {
		o.backoff = 10
	}
	if o.inactivity == 0 {
		o.inactivity = 60
	}
	var cfg any = e.config
	if o.configID != nil {
		cfg = *o.configID
		if *o.configID == "" {
			cfg = nil
		}
	}
	enc, err := e.box.Encrypt(o.secret)
	if err != nil {
		e.t.Fatal(err)
	}
	var headers any
	if o.headers != nil {
		headers = store.JSON(o.headers)
	}
	id := store.NewID()
	now := store.Micros(time.Now())
	if _, err := e.db.Write().Exec(context.Background(), `INSERT INTO whatsapp_webhooks (id, project_id, whatsapp_config_id, url, secret_key_enc, events,
		headers, buffer_enabled, buffer_window_seconds, max_buffer_size, inactivity_minutes, retry_max_attempts, retry_backoff_seconds,
		retry_custom, payload_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, e.project, cfg, url, enc, store.JSON(o.events), headers, o.buffer, o.window, o.size, o.inactivity, o.retryMax, o.backoff,
		o.retryCustom, o.payloadVersion, now, now); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// emit writes an event the way the API does: in a transaction.
func (e *env) emit(ev events.Event) {
	e.t.Helper()
	if ev.ProjectID == "" {
		ev.ProjectID = e.project
	}
	if ev.ConfigID == "" && !events.IsProjectEvent(ev.Type) {
		ev.ConfigID = e.config
	}
	if err := e.db.Tx(context.Background(), func(tx *store.Conn) error {
		_, err := events.Emit(context.Background(), tx, ev)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) service() *Service {
	s := New(e.db, e.box, slog.New(slog.NewTextHandler(io.Discard, nil)), e.cfg)
	s.Jitter = func() float64 { return 0 }
	return s
}

func (e *env) run(s *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// step claims and sends due deliveries synchronously; it returns how many.
func step(t *testing.T, s *Service) int {
	t.Helper()
	ctx := context.Background()
	if _, err := s.FlushDue(ctx); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		s.process(ctx, j)
		s.release(j)
	}
	return len(jobs)
}

type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server recording requests; status decides the answer.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []received
	status func(n int, r *http.Request, w http.ResponseWriter) int
}

func newReceiver(t *testing.T, status func(n int, r *http.Request, w http.ResponseWriter) int) *receiver {
	rc := &receiver{status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{r.Header.Clone(), b})
		n := len(rc.reqs)
		rc.mu.Unlock()
		code := 200
		if rc.status != nil {
			code = rc.status(n, r, w)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) deliveries(webhookID string) []*Delivery {
	e.t.Helper()
	ds, _, err := ListDeliveries(context.Background(), e.db.Read(), webhookID, Filter{}, parley.Page{Page: 1, PerPage: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

func (e *env) nextAttemptAt(id string) time.Time {
	var us int64
	if err := e.db.Read().QueryRow(context.Background(), `SELECT next_attempt_at FROM deliveries WHERE id = ?`, id).Scan(&us); err != nil {
		e.t.Fatal(err)
	}
	return store.Time(us)
}

func msgEvent(typ, conv string, seq int64, text string) events.Event {
	return events.Event{Type: typ, ConversationID: conv, Seq: seq,
		V2: map[string]any{"message": map[string]any{"text": map[string]any{"body": text}}, "phone_number_id": "1"},
		V1: map[string]any{"message": map[string]any{"content": text}}}
}

// ---- tests ----

func TestSignatureAndHeadersAreExact(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	wh := e.addWebhook(rc.URL, hookOpts{secret: "topsecret", headers: map[string]string{"X-Custom": "yes", "X-Webhook-Signature": "forged"}})
	whV1 := e.addWebhook(rc.URL+"/v1", hookOpts{secret: "other", payloadVersion: "v1"})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "hola"))
	s := e.service()
	e.run(s)
	s.Wake()
	waitFor(t, "two deliveries recorded", func() bool {
		for _, h := range []string{wh, whV1} {
			if ds := e.deliveries(h); len(ds) != 1 || ds[0].Status != StatusSucceeded {
				return false
			}
		}
		return true
	})

	for _, r := range rc.got() {
		v1 := r.header.Get("X-Webhook-Payload-Version") == "v1"
		secret, hook := "topsecret", wh
		if v1 {
			secret, hook = "other", whV1
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(r.body)
		if got, want := r.header.Get("X-Webhook-Signature"), hex.EncodeToString(m.Sum(nil)); got != want {
			t.Fatalf("signature %q, want %q", got, want)
		}
		if r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Webhook-Event") != parley.EventMessageReceived {
			t.Fatalf("headers: %v", r.header)
		}
		ds := e.deliveries(hook)
		if len(ds) != 1 || r.header.Get("X-Idempotency-Key") != ds[0].IdempotencyKey || ds[0].Status != StatusSucceeded {
			t.Fatalf("idempotency key %q vs %+v", r.header.Get("X-Idempotency-Key"), ds)
		}
		if len(ds[0].Attempts) != 1 || ds[0].Attempts[0].StatusCode == nil || *ds[0].Attempts[0].StatusCode != 200 ||
			ds[0].Attempts[0].ResponseSnippet == nil || *ds[0].Attempts[0].ResponseSnippet != `{"ok":true}` {
			t.Fatalf("attempt: %+v", ds[0].Attempts)
		}
		// Standard Webhooks, verified independently.
		id, ts := r.header.Get("Webhook-Id"), r.header.Get("Webhook-Timestamp")
		sm := hmac.New(sha256.New, []byte(secret))
		sm.Write([]byte(id + "." + ts + "." + string(r.body)))
		if id != ds[0].IdempotencyKey || r.header.Get("Webhook-Signature") != "v1,"+base64.StdEncoding.EncodeToString(sm.Sum(nil)) {
			t.Fatalf("standard webhooks headers: %v", r.header)
		}
		if v1 {
			if string(r.body) != `{"message":{"content":"hola"}}` {
				t.Fatalf("v1 body %s", r.body)
			}
			continue
		}
		if string(r.body) != `{"message":{"text":{"body":"hola"}},"phone_number_id":"1"}` {
			t.Fatalf("v2 body %s", r.body)
		}
		if r.header.Get("X-Custom") != "yes" {
			t.Fatalf("custom header missing: %v", r.header)
		}
	}
}

func TestLifecycleEventNamePerPayloadVersion(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	proj := ""
	// Each subscribes by the other version's name (an alias): the name
	// follows the payload version, not the subscription.
	v2 := e.addWebhook(rc.URL+"/v2", hookOpts{configID: &proj, events: []string{parley.EventConfigCreated}})
	v1 := e.addWebhook(rc.URL+"/v1", hookOpts{configID: &proj, events: []string{parley.EventPhoneNumberCreated}, payloadVersion: "v1"})
	e.emit(events.Event{Type: parley.EventConfigCreated, V2: map[string]any{"phone_number_id": "1"}, V1: map[string]any{"whatsapp_config": map[string]any{}}})
	s := e.service()
	for step(t, s) > 0 {
	}
	got := map[string]string{}
	for _, r := range rc.got() {
		got[r.header.Get("X-Webhook-Payload-Version")] = r.header.Get("X-Webhook-Event")
	}
	if got["v2"] != parley.EventPhoneNumberCreated || got["v1"] != parley.EventConfigCreated {
		t.Fatalf("event names: %v", got)
	}
	// The delivery log says what the header said.
	if d := e.deliveries(v2)[0]; d.Event != got["v2"] {
		t.Errorf("v2 delivery log %q, header %q", d.Event, got["v2"])
	}
	if d := e.deliveries(v1)[0]; d.Event != got["v1"] {
		t.Errorf("v1 delivery log %q, header %q", d.Event, got["v1"])
	}
}

func TestDefaultRetryScheduleAndFailure(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { return 500 })
	wh := e.addWebhook(rc.URL, hookOpts{})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "x"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	for i, wait := range []time.Duration{10 * time.Second, 40 * time.Second, 90 * time.Second} {
		if n := step(t, s); n != 1 {
			t.Fatalf("attempt %d: claimed %d", i+1, n)
		}
		d := e.deliveries(wh)[0]
		if d.Status != StatusPending || !e.nextAttemptAt(d.ID).Equal(clk.Now().Truncate(time.Microsecond).Add(wait)) {
			t.Fatalf("after attempt %d: %s next %v, want now+%v", i+1, d.Status, e.nextAttemptAt(d.ID).Sub(clk.Now()), wait)
		}
		clk.Add(wait - time.Second)
		if n := step(t, s); n != 0 {
			t.Fatalf("attempt %d retried early", i+1)
		}
		clk.Add(time.Second)
	}
	if n := step(t, s); n != 1 {
		t.Fatal("4th attempt not made")
	}
	d := e.deliveries(wh)[0]
	if d.Status != StatusFailed || d.AttemptsCount != 4 || len(d.Attempts) != 4 || d.LastError == nil || *d.LastError != "HTTP 500" {
		t.Fatalf("final: %+v", d)
	}
	clk.Add(time.Hour)
	if n := step(t, s); n != 0 || len(rc.got()) != 4 {
		t.Fatalf("attempted after failure: %d requests", len(rc.got()))
	}
}

func TestCustomRetryPolicy(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { return 502 })
	wh := e.addWebhook(rc.URL, hookOpts{retryCustom: true, retryMax: 3, backoff: 5})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "x"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	for i, wait := range []time.Duration{5 * time.Second, 10 * time.Second} {
		step(t, s)
		d := e.deliveries(wh)[0]
		if got := e.nextAttemptAt(d.ID).Sub(clk.Now().Truncate(time.Microsecond)); got != wait {
			t.Fatalf("retry %d after %v, want %v", i+1, got, wait)
		}
		clk.Add(wait)
	}
	step(t, s)
	if d := e.deliveries(wh)[0]; d.Status != StatusFailed || d.AttemptsCount != 3 {
		t.Fatalf("final: %+v", d)
	}
	// Jitter adds at most 10 %, the cap is one hour.
	if d := RetryDelay(true, 5, 2, 0.999); d < 10*time.Second || d > 11*time.Second {
		t.Fatalf("jittered delay %v", d)
	}
	if d := RetryDelay(true, 3000, 5, 0.5); d != time.Hour {
		t.Fatalf("cap: %v", d)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(n int, _ *http.Request, w http.ResponseWriter) int {
		if n == 1 {
			w.Header().Set("Retry-After", "120")
			return 429
		}
		w.Header().Set("Retry-After", time.Now().Add(2*time.Hour).UTC().Format(http.TimeFormat))
		return 503
	})
	wh := e.addWebhook(rc.URL, hookOpts{})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "x"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	step(t, s)
	d := e.deliveries(wh)[0]
	if got := e.nextAttemptAt(d.ID).Sub(clk.Now().Truncate(time.Microsecond)); got != 120*time.Second {
		t.Fatalf("429 Retry-After: next in %v", got)
	}
	clk.Add(120 * time.Second)
	step(t, s)
	if got := e.nextAttemptAt(d.ID).Sub(clk.Now()); got != time.Hour && (got < 59*time.Minute || got > time.Hour) {
		t.Fatalf("503 Retry-After date (capped at 1 h): next in %v", got)
	}
}

func TestHangingEndpointDoesNotDelayOthers(t *testing.T) {
	e := newEnv(t)
	e.cfg.PerEndpointLimit = 2
	e.cfg.DeliveryWorkers = 8
	e.cfg.WebhookTimeout = time.Minute
	release := make(chan struct{})
	var hanging sync.WaitGroup
	var mu sync.Mutex
	concurrent, maxConcurrent := 0, 0
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		concurrent++
		maxConcurrent = max(maxConcurrent, concurrent)
		mu.Unlock()
		hanging.Add(1)
		defer hanging.Done()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		concurrent--
		mu.Unlock()
	}))
	defer slow.Close()
	defer close(release)
	fast := newReceiver(t, nil)
	e.addWebhook(slow.URL, hookOpts{})
	e.addWebhook(fast.URL, hookOpts{})
	const n = 20
	for i := 0; i < n; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, fmt.Sprint(i)))
	}
	s := e.service()
	e.run(s)
	s.Wake()
	waitFor(t, "the healthy endpoint to receive everything", func() bool { return len(fast.got()) == n })
	mu.Lock()
	defer mu.Unlock()
	if concurrent == 0 || maxConcurrent > 2 {
		t.Fatalf("hanging endpoint: %d in flight now, max %d (limit 2)", concurrent, maxConcurrent)
	}
}

func TestOrderingPerConversation(t *testing.T) {
	e := newEnv(t)
	fail := true
	var mu sync.Mutex
	rc := newReceiver(t, func(n int, r *http.Request, _ http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return 500
		}
		return 200
	})
	wh := e.addWebhook(rc.URL, hookOpts{})
	conv := store.NewID()
	e.emit(msgEvent(parley.EventMessageReceived, conv, 1, "first"))
	e.emit(msgEvent(parley.EventMessageSent, conv, 2, "second"))
	e.emit(msgEvent(parley.EventMessageReceived, store.NewID(), 1, "other conversation"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	if n := step(t, s); n != 2 { // seq 1 of each conversation; seq 2 waits
		t.Fatalf("claimed %d, want 2", n)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if n := step(t, s); n != 0 {
		t.Fatalf("seq 2 went before seq 1 was delivered (%d claimed)", n)
	}
	clk.Add(10 * time.Second)
	step(t, s) // seq 1 (conv A) retried and succeeds; "other" succeeds too
	step(t, s) // now seq 2
	var order []string
	for _, r := range rc.got() {
		if r.header.Get("X-Webhook-Event") != "" && !strings.Contains(string(r.body), "other") {
			order = append(order, string(r.body))
		}
	}
	if len(order) != 3 || !strings.Contains(order[2], "second") || !strings.Contains(order[1], "first") {
		t.Fatalf("order: %v", order)
	}
	for _, d := range e.deliveries(wh) {
		if d.Status != StatusSucceeded {
			t.Fatalf("delivery %s %s", d.Event, d.Status)
		}
	}
}

func TestOrderingGivesUpAfter30Seconds(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(n int, r *http.Request, _ http.ResponseWriter) int {
		b, _ := io.ReadAll(r.Body)
		_ = b
		return 200
	})
	rc.status = func(n int, r *http.Request, _ http.ResponseWriter) int {
		if n == 1 {
			return 500
		}
		return 200
	}
	e.addWebhook(rc.URL, hookOpts{retryCustom: true, retryMax: 2, backoff: 3600})
	conv := store.NewID()
	e.emit(msgEvent(parley.EventMessageReceived, conv, 1, "first"))
	e.emit(msgEvent(parley.EventMessageReceived, conv, 2, "second"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	step(t, s) // first fails, retry in 1 h
	if step(t, s) != 0 {
		t.Fatal("second went at once")
	}
	clk.Add(OrderingTimeout)
	if step(t, s) != 1 || !strings.Contains(string(rc.got()[1].body), "second") {
		t.Fatal("second not sent after the ordering timeout")
	}
}

func TestBufferingWindowSizeAndFallback(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	failBatches := false
	rc := newReceiver(t, func(n int, r *http.Request, _ http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if failBatches && r.Header.Get("X-Webhook-Batch") == "true" {
			return 500
		}
		return 200
	})
	wh := e.addWebhook(rc.URL, hookOpts{buffer: true, window: 5, size: 3, retryCustom: true, retryMax: 1})
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	convA, convB := store.NewID(), store.NewID()
	e.emit(msgEvent(parley.EventMessageReceived, convA, 7, "a1"))
	e.emit(msgEvent(parley.EventMessageReceived, convA, 8, "a2"))
	if step(t, s) != 0 || len(rc.got()) != 0 {
		t.Fatal("buffer flushed before its window")
	}
	for _, d := range e.deliveries(wh) {
		if d.Status != StatusBuffered {
			t.Fatalf("status %s", d.Status)
		}
	}
	clk.Add(5 * time.Second)
	if step(t, s) != 1 {
		t.Fatal("window flush missing")
	}
	got := rc.got()
	if len(got) != 1 || got[0].header.Get("X-Webhook-Batch") != "true" || got[0].header.Get("X-Batch-Size") != "2" ||
		got[0].header.Get("X-Webhook-Event") != parley.EventMessageReceived {
		t.Fatalf("batch headers: %v", got[0].header)
	}
	var body struct {
		Type      string            `json:"type"`
		Batch     bool              `json:"batch"`
		Data      []json.RawMessage `json:"data"`
		BatchInfo map[string]any    `json:"batch_info"`
	}
	if err := json.Unmarshal(got[0].body, &body); err != nil {
		t.Fatal(err)
	}
	bi := body.BatchInfo
	if body.Type != parley.EventMessageReceived || !body.Batch || len(body.Data) != 2 || !strings.Contains(string(body.Data[0]), "a1") ||
		bi["size"] != 2.0 || bi["window_ms"] != 5000.0 || bi["first_sequence"] != 7.0 || bi["last_sequence"] != 8.0 || bi["conversation_id"] != convA {
		t.Fatalf("batch body: %s", got[0].body)
	}
	items := 0
	for _, d := range e.deliveries(wh) {
		if !d.Batch {
			items++
			if d.Status != StatusSucceeded || d.BatchID == nil {
				t.Fatalf("item after batch success: %+v", d)
			}
		}
	}
	if items != 2 {
		t.Fatalf("items %d", items)
	}

	// Size flush: the third message flushes at once; the batch fails and
	// falls back to individual deliveries.
	mu.Lock()
	failBatches = true
	mu.Unlock()
	for i := 1; i <= 3; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, convB, int64(i), fmt.Sprintf("b%d", i)))
	}
	if step(t, s) != 1 {
		t.Fatal("size flush missing")
	}
	if got := rc.got(); len(got) != 2 || got[1].header.Get("X-Batch-Size") != "3" {
		t.Fatalf("size batch: %d requests", len(got))
	}
	for step(t, s) > 0 {
	}
	got = rc.got()
	if len(got) != 5 {
		t.Fatalf("fallback: %d requests, want 2 batches + 3 individual", len(got))
	}
	keys := map[string]bool{}
	for _, r := range got[2:] {
		if r.header.Get("X-Webhook-Batch") != "" || !strings.Contains(string(r.body), `"b`) {
			t.Fatalf("individual delivery: %v %s", r.header, r.body)
		}
		keys[r.header.Get("X-Idempotency-Key")] = true
	}
	if len(keys) != 3 {
		t.Fatalf("idempotency keys of the individual deliveries: %v", keys)
	}
}

func TestPauseAfterContinuousFailureAndResume(t *testing.T) {
	e := newEnv(t)
	e.cfg.PauseAfter = 72 * time.Hour
	var mu sync.Mutex
	code := 500
	rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { mu.Lock(); defer mu.Unlock(); return code })
	proj := ""
	projRC := newReceiver(t, nil)
	e.addWebhook(projRC.URL, hookOpts{configID: &proj, events: []string{parley.EventWebhookPaused}})
	wh := e.addWebhook(rc.URL, hookOpts{})
	conv := store.NewID()
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "one"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	step(t, s)
	var since int64
	ctx := context.Background()
	if err := e.db.Read().QueryRow(ctx, `SELECT failing_since FROM whatsapp_webhooks WHERE id = ?`, wh).Scan(&since); err != nil {
		t.Fatalf("failing_since not set: %v", err)
	}
	// Push the streak back 73 hours; the next failure pauses.
	if _, err := e.db.Write().Exec(ctx, `UPDATE whatsapp_webhooks SET failing_since = ? WHERE id = ?`,
		store.Micros(clk.Now().Add(-73*time.Hour)), wh); err != nil {
		t.Fatal(err)
	}
	e.emit(msgEvent(parley.EventMessageReceived, conv, 1, "two"))
	clk.Add(10 * time.Second)
	step(t, s)
	var active bool
	var pausedAt *int64
	var reason *string
	if err := e.db.Read().QueryRow(ctx, `SELECT active, paused_at, paused_reason FROM whatsapp_webhooks WHERE id = ?`, wh).
		Scan(&active, &pausedAt, &reason); err != nil {
		t.Fatal(err)
	}
	if active || pausedAt == nil || reason == nil {
		t.Fatalf("not paused: active=%v", active)
	}
	for _, d := range e.deliveries(wh) {
		if d.Status != StatusFailed {
			t.Fatalf("delivery of a paused webhook left %s", d.Status)
		}
	}
	for step(t, s) > 0 {
	}
	pg := projRC.got()
	if len(pg) != 1 || pg[0].header.Get("X-Webhook-Event") != parley.EventWebhookPaused || !strings.Contains(string(pg[0].body), wh) {
		t.Fatalf("paused event: %d", len(pg))
	}
	// New events skip the paused webhook.
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "three"))
	if n := len(e.deliveries(wh)); n != 2 {
		t.Fatalf("paused webhook got a new delivery (%d)", n)
	}
	// Resume: active again, streak cleared; a success keeps it clear.
	if _, err := e.db.Write().Exec(ctx, `UPDATE whatsapp_webhooks SET active = TRUE WHERE id = ?`, wh); err != nil {
		t.Fatal(err)
	}
	if err := Resume(ctx, e.db.Write(), wh); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	code = 200
	mu.Unlock()
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "four"))
	step(t, s)
	var fs *int64
	if err := e.db.Read().QueryRow(ctx, `SELECT failing_since FROM whatsapp_webhooks WHERE id = ?`, wh).Scan(&fs); err != nil || fs != nil {
		t.Fatalf("failing_since after success: %v %v", fs, err)
	}
	if ds := e.deliveries(wh); ds[0].Status != StatusSucceeded {
		t.Fatalf("after resume: %s", ds[0].Status)
	}
}

func TestPrivateAddressesAreRefused(t *testing.T) {
	e := newEnv(t)
	e.cfg.WebhookAllowPrivate = false
	e.cfg.Addr = "0.0.0.0:8080" // listening publicly: loopback targets are refused
	rc := newReceiver(t, nil)
	wh := e.addWebhook(rc.URL, hookOpts{})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "x"))
	s := e.service()
	step(t, s)
	d := e.deliveries(wh)[0]
	if len(rc.got()) != 0 || len(d.Attempts) != 1 || d.Attempts[0].Error == nil ||
		!strings.Contains(*d.Attempts[0].Error, "refused") || !strings.Contains(*d.Attempts[0].Error, "loopback") || d.Attempts[0].StatusCode != nil {
		t.Fatalf("loopback not refused: %d requests, %+v", len(rc.got()), d.Attempts)
	}
	// Allowed by CIDR.
	e.cfg.WebhookAllowCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	s2 := e.service()
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "y"))
	step(t, s2)
	if len(rc.got()) != 1 {
		t.Fatal("allowed CIDR still refused")
	}
}

// A Parley listening on loopback (the default address) delivers to a
// receiver on the same machine without any setting.
func TestLoopbackAllowedWhileListeningOnLoopback(t *testing.T) {
	e := newEnv(t)
	e.cfg.WebhookAllowPrivate = false
	e.cfg.Addr = "127.0.0.1:8080"
	rc := newReceiver(t, nil)
	wh := e.addWebhook(rc.URL, hookOpts{})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "x"))
	step(t, e.service())
	if d := e.deliveries(wh)[0]; len(rc.got()) != 1 || d.Status != StatusSucceeded {
		t.Fatalf("loopback delivery while listening on loopback: %d requests, status %s", len(rc.got()), d.Status)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	e := newEnv(t)
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, _ *http.Request, w http.ResponseWriter) int {
		w.Header().Set("Location", target.URL)
		return 302
	})
	wh := e.addWebhook(rc.URL, hookOpts{})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "x"))
	step(t, e.service())
	if len(target.got()) != 0 || e.deliveries(wh)[0].Status != StatusPending {
		t.Fatal("redirect followed or counted as success")
	}
}

func TestTwoWorkersClaimEachDeliveryOnce(t *testing.T) {
	e := newEnv(t)
	e.cfg.PerEndpointLimit = 4
	rc := newReceiver(t, nil)
	wh := e.addWebhook(rc.URL, hookOpts{})
	const n = 60
	for i := 0; i < n; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, fmt.Sprint(i)))
	}
	a, b := e.service(), e.service()
	e.run(a)
	e.run(b)
	a.Wake()
	b.Wake()
	waitFor(t, "all deliveries", func() bool {
		for _, d := range e.deliveries(wh) {
			if d.Status != StatusSucceeded {
				return false
			}
		}
		return true
	})
	seen := map[string]int{}
	for _, r := range rc.got() {
		seen[r.header.Get("X-Idempotency-Key")]++
	}
	if len(seen) != n || len(rc.got()) != n {
		t.Fatalf("%d requests for %d distinct deliveries, want %d", len(rc.got()), len(seen), n)
	}
	var attempts int
	if err := e.db.Read().QueryRow(context.Background(), `SELECT COUNT(*) FROM delivery_attempts`).Scan(&attempts); err != nil || attempts != n {
		t.Fatalf("attempts %d", attempts)
	}
}

func TestInactivityTimerFiresOncePerIdlePeriod(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	ctx := context.Background()
	wh := e.addWebhook(rc.URL, hookOpts{events: []string{parley.EventConversationInactive}, inactivity: 30})
	conv, msg := store.NewID(), store.NewID()
	last := time.Now().Add(-time.Minute)
	if _, err := e.db.Write().Exec(ctx, `INSERT INTO conversations (id, project_id, whatsapp_config_id, phone_number, status, last_active_at, created_at, updated_at)
		VALUES (?, ?, ?, '56911112222', 'active', ?, ?, ?)`, conv, e.project, e.config, store.Micros(last), store.Micros(last), store.Micros(last)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Write().Exec(ctx, `INSERT INTO messages (id, project_id, conversation_id, whatsapp_config_id, phone_number, direction, message_type,
		status, whatsapp_message_id, created_at, updated_at) VALUES (?, ?, ?, ?, '56911112222', 'inbound', 'text', 'received', 'wamid.X', ?, ?)`,
		msg, e.project, conv, e.config, store.Micros(last), store.Micros(last)); err != nil {
		t.Fatal(err)
	}
	e.emit(msgEvent(parley.EventMessageReceived, conv, 1, "hi"))
	var runAt int64
	if err := e.db.Read().QueryRow(ctx, `SELECT run_at FROM jobs WHERE unique_key = ?`, events.InactivityKey(wh, conv)).Scan(&runAt); err != nil {
		t.Fatalf("timer not scheduled: %v", err)
	}
	if d := store.Time(runAt).Sub(time.Now()); d < 29*time.Minute || d > 31*time.Minute {
		t.Fatalf("timer in %v, want 30m", d)
	}
	p := events.InactivityPayload{WebhookID: wh, ConversationID: conv, Minutes: 30}
	// Too early: rescheduled, nothing emitted.
	if fired, err := FireInactivity(ctx, e.db, p, time.Now()); err != nil || fired {
		t.Fatalf("early fire: %v %v", fired, err)
	}
	later := last.Add(31 * time.Minute)
	for i := 0; i < 2; i++ {
		fired, err := FireInactivity(ctx, e.db, p, later)
		if err != nil || fired != (i == 0) {
			t.Fatalf("fire %d: %v %v", i, fired, err)
		}
	}
	step(t, e.service())
	got := rc.got()
	if len(got) != 1 || got[0].header.Get("X-Webhook-Event") != parley.EventConversationInactive {
		t.Fatalf("inactive deliveries: %d", len(got))
	}
	var body struct {
		Conversation map[string]any `json:"conversation"`
		Since        map[string]any `json:"since_message"`
		Inactivity   map[string]any `json:"inactivity"`
		PhoneNumber  string         `json:"phone_number_id"`
	}
	if err := json.Unmarshal(got[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Conversation["id"] != conv || body.Conversation["status"] != "active" || body.Since["id"] != msg ||
		body.Since["whatsapp_message_id"] != "wamid.X" || body.Since["direction"] != "inbound" || body.Inactivity["minutes"] != 30.0 || body.PhoneNumber == "" {
		t.Fatalf("payload: %s", got[0].body)
	}
	// The conversation's phone number as the other events render it.
	if body.Conversation["phone_number"] != "+56911112222" {
		t.Fatalf("conversation.phone_number %v, want +56911112222", body.Conversation["phone_number"])
	}
}

func failed(status int, at time.Time) result {
	return result{status: status, started: at, err: fmt.Sprintf("HTTP %d", status), outcome: "http_error"}
}

func succeeded(at time.Time) result {
	return result{ok: true, status: 200, started: at, outcome: "success", snippet: "ok"}
}

// claimAll claims every due delivery without sending it.
func claimAll(t *testing.T, s *Service) []*job {
	t.Helper()
	jobs, err := s.claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func (e *env) failingSince(wh string) *int64 {
	e.t.Helper()
	var v *int64
	if err := e.db.Read().QueryRow(context.Background(), `SELECT failing_since FROM whatsapp_webhooks WHERE id = ?`, wh).Scan(&v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func TestBatchedOutcomesKeepTheirOrder(t *testing.T) {
	e := newEnv(t)
	a := e.addWebhook("http://127.0.0.1:1/a", hookOpts{})
	b := e.addWebhook("http://127.0.0.1:1/b", hookOpts{})
	for i := 0; i < 2; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, fmt.Sprint(i)))
	}
	s := e.service()
	now := time.Now()
	jobs := claimAll(t, s)
	if len(jobs) != 4 {
		t.Fatalf("claimed %d", len(jobs))
	}
	byHook := map[string][]*job{}
	for _, j := range jobs {
		byHook[j.WebhookID] = append(byHook[j.WebhookID], j)
	}
	// One transaction: on a, a failure then a success (the streak ends);
	// on b, a success then a failure (the streak starts).
	batch := []*outcome{
		{j: byHook[a][0], res: failed(500, now)}, {j: byHook[b][0], res: succeeded(now)},
		{j: byHook[a][1], res: succeeded(now)}, {j: byHook[b][1], res: failed(502, now)},
	}
	if _, err := s.finishBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if e.failingSince(a) != nil || e.failingSince(b) == nil {
		t.Fatalf("failure streaks: a %v, b %v", e.failingSince(a), e.failingSince(b))
	}
	statuses := map[string]string{}
	for _, wh := range []string{a, b} {
		for _, d := range e.deliveries(wh) {
			statuses[d.ID] = d.Status
			if len(d.Attempts) != 1 {
				t.Fatalf("delivery %s: %d attempts", d.ID, len(d.Attempts))
			}
		}
	}
	for _, o := range batch {
		want := StatusSucceeded
		if !o.res.ok {
			want = StatusPending
		}
		if statuses[o.j.ID] != want {
			t.Fatalf("delivery %s: %s, want %s", o.j.ID, statuses[o.j.ID], want)
		}
	}
}

func TestExpiredLeaseIsTakenOverAndTheLateOutcomeDropped(t *testing.T) {
	e := newEnv(t)
	wh := e.addWebhook("http://127.0.0.1:1/", hookOpts{})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "x"))
	clk := &clock{t: time.Now().Add(time.Second)}
	dead, alive := e.service(), e.service()
	dead.Now, alive.Now = clk.Now, clk.Now
	late := claimAll(t, dead)
	if len(late) != 1 || len(claimAll(t, alive)) != 0 {
		t.Fatal("a leased delivery was claimed twice")
	}
	clk.Add(DefaultLease)
	if len(claimAll(t, dead)) != 0 {
		t.Fatal("a service took over its own request in flight")
	}
	taken := claimAll(t, alive)
	if len(taken) != 1 || taken[0].ID != late[0].ID || taken[0].AttemptsCount != 2 {
		t.Fatalf("expired lease not taken over: %d", len(taken))
	}
	// The first worker's outcome arrives after the takeover: dropped, in a
	// batch or alone.
	if _, err := dead.finishBatch(context.Background(), []*outcome{{j: late[0], res: succeeded(clk.Now())}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dead.finishBatch(context.Background(), []*outcome{{j: late[0], res: failed(500, clk.Now())}}); err != nil {
		t.Fatal(err)
	}
	if d := e.deliveries(wh)[0]; d.Status != StatusDelivering || len(d.Attempts) != 0 {
		t.Fatalf("late outcome recorded: %s, %d attempts", d.Status, len(d.Attempts))
	}
	if _, err := alive.finishBatch(context.Background(), []*outcome{{j: taken[0], res: succeeded(clk.Now())}}); err != nil {
		t.Fatal(err)
	}
	if d := e.deliveries(wh)[0]; d.Status != StatusSucceeded || len(d.Attempts) != 1 || d.Attempts[0].Number != 2 {
		t.Fatalf("after takeover: %+v", d)
	}
}

func TestLeaseIsRenewedWhileARequestRuns(t *testing.T) {
	e := newEnv(t)
	e.cfg.WebhookTimeout = 10 * time.Second
	rc := newReceiver(t, func(n int, _ *http.Request, _ http.ResponseWriter) int {
		time.Sleep(time.Second) // five leases
		return 200
	})
	wh := e.addWebhook(rc.URL, hookOpts{})
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "slow"))
	a, b := e.service(), e.service()
	for _, s := range []*Service{a, b} {
		s.Lease, s.Poll = 200*time.Millisecond, 20*time.Millisecond
		e.run(s)
	}
	waitFor(t, "the delivery to succeed", func() bool {
		ds := e.deliveries(wh)
		return len(ds) == 1 && ds[0].Status == StatusSucceeded
	})
	if n := len(rc.got()); n != 1 {
		t.Fatalf("%d requests: the lease ran out while the request was in flight", n)
	}
}

func TestManyConcurrentOutcomesAreAllRecorded(t *testing.T) {
	e := newEnv(t)
	e.cfg.DeliveryWorkers, e.cfg.PerEndpointLimit = 64, 16
	var hooks []string
	var rcs []*receiver
	for i := 0; i < 4; i++ {
		rc := newReceiver(t, func(n int, _ *http.Request, _ http.ResponseWriter) int {
			if n%7 == 0 {
				return 500
			}
			return 200
		})
		rcs = append(rcs, rc)
		hooks = append(hooks, e.addWebhook(rc.URL, hookOpts{}))
	}
	const n = 100
	for i := 0; i < n; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, fmt.Sprint(i)))
	}
	s := e.service()
	e.run(s)
	s.Wake()
	waitFor(t, "every delivery attempted", func() bool {
		total := 0
		for _, rc := range rcs {
			total += len(rc.got())
		}
		return total >= 4*n
	})
	waitFor(t, "every outcome recorded", func() bool {
		var inFlight int
		_ = e.db.Read().QueryRow(context.Background(), `SELECT COUNT(*) FROM deliveries WHERE status = 'delivering'`).Scan(&inFlight)
		return inFlight == 0
	})
	for i, wh := range hooks {
		var attempts, ok, pending int
		ctx := context.Background()
		_ = e.db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = ?`, wh).Scan(&attempts)
		_ = e.db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM deliveries WHERE webhook_id = ? AND status = 'succeeded'`, wh).Scan(&ok)
		_ = e.db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM deliveries WHERE webhook_id = ? AND status = 'pending'`, wh).Scan(&pending)
		if got := len(rcs[i].got()); attempts != got || ok+pending != n || pending != got/7 {
			t.Fatalf("webhook %d: %d requests, %d attempts recorded, %d succeeded, %d pending", i, got, attempts, ok, pending)
		}
	}
}

func TestNotifyWakesAnotherProcess(t *testing.T) {
	if os.Getenv(storetest.EnvPostgres) == "" {
		t.Skip("LISTEN/NOTIFY is PostgreSQL only")
	}
	url := storetest.URL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, db)
	e.cfg.DatabaseURL = url
	rc := newReceiver(t, nil)
	e.addWebhook(rc.URL, hookOpts{})
	// The other process polls once an hour: only a notification wakes it.
	other := e.service()
	other.Poll = time.Hour
	e.run(other)
	waitFor(t, "the other process to listen", other.listening.Load)
	time.Sleep(50 * time.Millisecond) // its first claim, at start, is over
	writer := e.service()             // writes and wakes, never runs workers
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "across"))
	writer.Wake()
	waitFor(t, "the other process to deliver", func() bool { return len(rc.got()) == 1 })
}

func TestFullWebhookBacklogIsSkippedAndResumed(t *testing.T) {
	e := newEnv(t)
	e.cfg.PerEndpointLimit = 1
	a := e.addWebhook("http://127.0.0.1:1/a", hookOpts{})
	for i := 1; i <= 3; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, fmt.Sprintf("a%d", i)))
	}
	time.Sleep(2 * skipCursorLag) // a's backlog is older than the cursor's lag
	b := e.addWebhook("http://127.0.0.1:1/b", hookOpts{})
	for i := 1; i <= 2; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, fmt.Sprintf("b%d", i)))
	}
	s := e.service()
	ctx := context.Background()
	finish := func(j *job) {
		t.Helper()
		if _, err := s.finishBatch(ctx, []*outcome{{j: j, res: succeeded(time.Now())}}); err != nil {
			t.Fatal(err)
		}
		s.release(j)
	}
	texts := func(jobs []*job) map[string]string {
		out := map[string]string{}
		for _, j := range jobs {
			var p struct {
				Message struct {
					Text struct {
						Body string `json:"body"`
					} `json:"text"`
				} `json:"message"`
			}
			_ = json.Unmarshal(j.Body(), &p)
			out[j.WebhookID] += p.Message.Text.Body
		}
		return out
	}
	first := claimAll(t, s)
	if got := texts(first); got[a] != "a1" || got[b] != "b1" {
		t.Fatalf("first claim: %v", got)
	}
	var hanging *job
	for _, j := range first {
		if j.WebhookID == a {
			hanging = j // stays in flight: a is at its limit
		} else {
			finish(j)
		}
	}
	second := claimAll(t, s)
	if got := texts(second); len(second) != 1 || got[b] != "b2" {
		t.Fatalf("with a full, claimed %v", got)
	}
	finish(second[0])
	finish(hanging)
	third := claimAll(t, s)
	if got := texts(third); len(third) != 1 || got[a] != "a2" {
		t.Fatalf("a's backlog after its slot freed: %v", got)
	}
}

func TestDeliveryBehindARetryWaitsForIt(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	fail := true
	rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return 500
		}
		return 200
	})
	wh := e.addWebhook(rc.URL, hookOpts{})
	conv := store.NewID()
	e.emit(msgEvent(parley.EventMessageReceived, conv, 1, "first"))
	e.emit(msgEvent(parley.EventMessageReceived, conv, 2, "second"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	if n := step(t, s); n != 1 { // first fails: retry in 10 s
		t.Fatalf("claimed %d", n)
	}
	byText := map[string]string{}
	for _, d := range e.deliveries(wh) {
		var body string
		_ = e.db.Read().QueryRow(context.Background(), `SELECT e.payload_v2 FROM events e JOIN deliveries d ON d.event_id = e.id WHERE d.id = ?`, d.ID).Scan(&body)
		byText[map[bool]string{true: "first", false: "second"}[strings.Contains(body, "first")]] = d.ID
	}
	if n := step(t, s); n != 0 {
		t.Fatal("second went before first")
	}
	// The second is now due when the first is retried, not at every claim.
	if got, want := e.nextAttemptAt(byText["second"]), e.nextAttemptAt(byText["first"]); !got.Equal(want) {
		t.Fatalf("second due at %v, first retried at %v", got, want)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	clk.Add(10 * time.Second)
	step(t, s) // first retried, succeeds
	step(t, s) // then second
	var order []string
	for _, r := range rc.got() {
		order = append(order, map[bool]string{true: "first", false: "second"}[strings.Contains(string(r.body), "first")])
	}
	if strings.Join(order, ",") != "first,first,second" {
		t.Fatalf("order: %v", order)
	}
}

// replyBeingSent stores a conversation whose first message (seq 1) is the
// team's reply still waiting for its send job, as messaging.Send leaves it.
func (e *env) replyBeingSent() (conv, reply string) {
	e.t.Helper()
	ctx := context.Background()
	conv, reply = store.NewID(), store.NewID()
	now := store.Micros(time.Now())
	if _, err := e.db.Write().Exec(ctx, `INSERT INTO conversations (id, project_id, whatsapp_config_id, phone_number, status, last_seq,
		last_active_at, created_at, updated_at) VALUES (?, ?, ?, '5491100000000', 'active', 2, ?, ?, ?)`,
		conv, e.project, e.config, now, now, now); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.Write().Exec(ctx, `INSERT INTO messages (id, project_id, conversation_id, whatsapp_config_id, phone_number, direction,
		message_type, status, seq, created_at, updated_at) VALUES (?, ?, ?, ?, '5491100000000', 'outbound', 'text', 'pending', 1, ?, ?)`,
		reply, e.project, conv, e.config, now, now); err != nil {
		e.t.Fatal(err)
	}
	return conv, reply
}

// TestOrderingWaitsForAnEarlierSend: a customer message received while the
// team's earlier reply is still being sent is delivered after that reply's
// whatsapp.message.sent (which does not exist until the send finishes), to
// webhooks subscribed to sent events; others get it at once.
func TestOrderingWaitsForAnEarlierSend(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	withSent := e.addWebhook(rc.URL, hookOpts{})
	receivedOnly := e.addWebhook(rc.URL, hookOpts{events: []string{parley.EventMessageReceived}})
	// Subscribed to sent events through Kapso's "messages" alias.
	rcAlias := newReceiver(t, nil)
	e.addWebhook(rcAlias.URL, hookOpts{events: []string{"messages"}})
	conv, reply := e.replyBeingSent()
	e.emit(msgEvent(parley.EventMessageReceived, conv, 2, "customer"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	if n := step(t, s); n != 1 {
		t.Fatalf("claimed %d while the reply is being sent, want 1 (the webhook without sent events)", n)
	}
	if d := e.deliveries(receivedOnly); len(d) != 1 || d[0].Status != StatusSucceeded {
		t.Fatalf("received-only webhook: %+v", d)
	}
	// The send finishes: the message is sent and its event written, in one
	// transaction, as messaging.finishSent does.
	if err := e.db.Tx(ctx, func(tx *store.Conn) error {
		if _, err := tx.Exec(ctx, `UPDATE messages SET status = 'sent', whatsapp_message_id = 'wamid.R' WHERE id = ?`, reply); err != nil {
			return err
		}
		ev := msgEvent(parley.EventMessageSent, conv, 1, "reply")
		ev.ProjectID, ev.ConfigID = e.project, e.config
		_, err := events.Emit(ctx, tx, ev)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	step(t, s) // the sent event (seq 1); seq 2 waits for it
	step(t, s) // then the customer's message
	var order []string
	for _, r := range rc.got() {
		order = append(order, string(r.body))
	}
	if len(order) != 3 || !strings.Contains(order[1], "reply") || !strings.Contains(order[2], "customer") {
		t.Fatalf("deliveries in this order: %v", order)
	}
	if got := rcAlias.got(); len(got) != 2 || !strings.Contains(string(got[0].body), "reply") || !strings.Contains(string(got[1].body), "customer") {
		t.Fatalf("alias webhook: %d deliveries, customer's message before the reply's sent event", len(got))
	}
	for _, d := range e.deliveries(withSent) {
		if d.Status != StatusSucceeded {
			t.Fatalf("delivery %s %s", d.Event, d.Status)
		}
	}
}

// TestOrderingGivesUpOnASendAfter30Seconds: a send stuck in retries holds
// the conversation's later deliveries back for OrderingTimeout at most.
func TestOrderingGivesUpOnASendAfter30Seconds(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	e.addWebhook(rc.URL, hookOpts{})
	conv, _ := e.replyBeingSent()
	e.emit(msgEvent(parley.EventMessageReceived, conv, 2, "customer"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	if n := step(t, s); n != 0 {
		t.Fatalf("claimed %d behind a send in progress", n)
	}
	clk.Add(OrderingTimeout)
	if n := step(t, s); n != 1 {
		t.Fatalf("claimed %d after the ordering timeout, want 1", n)
	}
}

// A batch of successes is recorded attempt by attempt, each with its own
// values (on PostgreSQL in one statement from array parameters, whatever the
// batch size), and a second batch for the same deliveries changes nothing.
func TestSuccessfulBatchRecordsEachAttempt(t *testing.T) {
	e := newEnv(t)
	wh := e.addWebhook("http://127.0.0.1:1/", hookOpts{})
	for i := 0; i < 5; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, fmt.Sprint(i)))
	}
	s := e.service()
	jobs := claimAll(t, s)
	if len(jobs) != 5 {
		t.Fatalf("claimed %d", len(jobs))
	}
	started := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	want := map[string]result{}
	var batch []*outcome
	for i, j := range jobs {
		res := result{ok: true, status: 200 + i, started: started.Add(time.Duration(i) * time.Second),
			latency: time.Duration(10+i) * time.Millisecond, outcome: "success"}
		if i%2 == 0 {
			res.snippet = fmt.Sprintf("body %d", i)
		}
		want[j.ID] = res
		batch = append(batch, &outcome{j: j, res: res})
	}
	for _, size := range []int{2, 3} { // two statements of different sizes
		if _, err := s.finishBatch(context.Background(), batch[:size]); err != nil {
			t.Fatal(err)
		}
		batch = batch[size:]
	}
	ds := e.deliveries(wh)
	if len(ds) != 5 {
		t.Fatalf("%d deliveries", len(ds))
	}
	for _, d := range ds {
		res := want[d.ID]
		if d.Status != StatusSucceeded || d.LastStatusCode == nil || *d.LastStatusCode != res.status || d.LastError != nil ||
			d.LastAttemptAt == nil || !d.LastAttemptAt.Equal(res.started) || len(d.Attempts) != 1 {
			t.Fatalf("delivery %s: %+v", d.ID, d)
		}
		a := d.Attempts[0]
		if a.Number != 1 || a.StatusCode == nil || *a.StatusCode != res.status || a.LatencyMS != res.latency.Milliseconds() ||
			!a.StartedAt.Equal(res.started) || a.Error != nil {
			t.Fatalf("attempt of %s: %+v", d.ID, a)
		}
		if (res.snippet == "") != (a.ResponseSnippet == nil) || (a.ResponseSnippet != nil && *a.ResponseSnippet != res.snippet) {
			t.Fatalf("attempt of %s: snippet %v, want %q", d.ID, a.ResponseSnippet, res.snippet)
		}
	}
	// The same outcomes again (a duplicate report): no lease held, nothing recorded.
	var again []*outcome
	for _, j := range jobs {
		again = append(again, &outcome{j: j, res: want[j.ID]})
	}
	if _, err := s.finishBatch(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	for _, d := range e.deliveries(wh) {
		if len(d.Attempts) != 1 {
			t.Fatalf("delivery %s: %d attempts after a repeated outcome", d.ID, len(d.Attempts))
		}
	}
}

// TestEmitWritesOneDeliveryPerSubscriber: an event's deliveries are written
// together (several statements past maxDeliveryRows): one per subscribed
// webhook, each with its own id and idempotency key, none for a webhook not
// subscribed to the event.
func TestEmitWritesOneDeliveryPerSubscriber(t *testing.T) {
	e := newEnv(t)
	const subscribed = 70
	for range subscribed {
		e.addWebhook("http://127.0.0.1:9/", hookOpts{})
	}
	other := e.addWebhook("http://127.0.0.1:9/", hookOpts{events: []string{parley.EventMessageFailed}})
	var n int
	if err := e.db.Tx(context.Background(), func(tx *store.Conn) error {
		ev := msgEvent(parley.EventMessageReceived, store.NewID(), 1, "hola")
		ev.ProjectID, ev.ConfigID = e.project, e.config
		var err error
		n, err = events.Emit(context.Background(), tx, ev)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var rows, ids, keys, hooks int
	if err := e.db.Read().QueryRow(context.Background(), `SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT idempotency_key),
		COUNT(DISTINCT webhook_id) FROM deliveries WHERE project_id = ?`, e.project).Scan(&rows, &ids, &keys, &hooks); err != nil {
		t.Fatal(err)
	}
	if n != subscribed || rows != subscribed || ids != subscribed || keys != subscribed || hooks != subscribed {
		t.Fatalf("Emit reported %d; %d deliveries, %d ids, %d keys, %d webhooks; want %d each", n, rows, ids, keys, hooks, subscribed)
	}
	if d := e.deliveries(other); len(d) != 0 {
		t.Fatalf("a webhook not subscribed to the event got %d deliveries", len(d))
	}
}

// TestSentWaitsForEarlierBufferedMessages: with buffering on, a
// conversation's whatsapp.message.sent waits for the batch holding the
// customer messages before it, and a batch waits for an earlier batch of
// its conversation that is waiting for a retry.
func TestSentWaitsForEarlierBufferedMessages(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	failFirst := false
	rc := newReceiver(t, func(n int, r *http.Request, _ http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if failFirst {
			failFirst = false
			return 500
		}
		return 200
	})
	e.addWebhook(rc.URL, hookOpts{buffer: true, window: 5, size: 50, retryCustom: true, retryMax: 3, backoff: 5})
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	conv := store.NewID()
	e.emit(msgEvent(parley.EventMessageReceived, conv, 1, "customer"))
	e.emit(msgEvent(parley.EventMessageSent, conv, 2, "reply"))
	if n := step(t, s); n != 0 {
		t.Fatalf("claimed %d while the earlier message is in its buffer", n)
	}
	clk.Add(5 * time.Second)
	if n := step(t, s); n != 1 { // the batch; the sent event waits for it
		t.Fatalf("claimed %d, want the batch only", n)
	}
	step(t, s)
	got := rc.got()
	if len(got) != 2 || got[0].header.Get("X-Webhook-Batch") != "true" || !strings.Contains(string(got[1].body), "reply") {
		t.Fatalf("%d deliveries, the reply's sent event before the batch with the customer's message", len(got))
	}

	// A batch failing once holds the next batch back until its retry.
	mu.Lock()
	failFirst = true
	mu.Unlock()
	e.emit(msgEvent(parley.EventMessageReceived, conv, 3, "c3"))
	clk.Add(5 * time.Second)
	step(t, s) // batch c3 fails; retry in 5 s
	e.emit(msgEvent(parley.EventMessageReceived, conv, 4, "c4"))
	clk.Add(5 * time.Second)
	step(t, s) // batch c3 retried (and batch c4 made, waiting for it)
	for step(t, s) > 0 {
	}
	got = rc.got()
	var order []string
	for _, r := range got[2:] {
		order = append(order, string(r.body))
	}
	if len(order) != 3 || !strings.Contains(order[0], "c3") || !strings.Contains(order[1], "c3") || !strings.Contains(order[2], "c4") {
		t.Fatalf("batches in this order: %v", order)
	}
}

// TestInactiveWebhookGetsNoMoreAttempts: a webhook set inactive through the
// API while a delivery waits for its retry (or while messages wait in its
// buffer) is sent nothing more; those deliveries fail.
func TestInactiveWebhookGetsNoMoreAttempts(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { return 500 })
	wh := e.addWebhook(rc.URL, hookOpts{})
	bufRC := newReceiver(t, nil)
	buf := e.addWebhook(bufRC.URL, hookOpts{buffer: true, window: 5})
	conv := store.NewID()
	e.emit(msgEvent(parley.EventMessageReceived, conv, 1, "one"))
	s := e.service()
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	if n := step(t, s); n != 1 {
		t.Fatalf("claimed %d", n)
	}
	// PATCH active:false, as the API saves it.
	if _, err := e.db.Write().Exec(context.Background(), `UPDATE whatsapp_webhooks SET active = FALSE, updated_at = ? WHERE id IN (?, ?)`,
		store.Micros(time.Now().Add(time.Minute)), wh, buf); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Second)
	for step(t, s) > 0 {
	}
	if n := len(rc.got()); n != 1 {
		t.Fatalf("inactive webhook got %d requests, want the 1 made before", n)
	}
	if n := len(bufRC.got()); n != 0 {
		t.Fatalf("inactive buffering webhook got %d requests", n)
	}
	for _, id := range []string{wh, buf} {
		for _, d := range e.deliveries(id) {
			if d.Status != StatusFailed {
				t.Fatalf("delivery of an inactive webhook left %s (batch %v)", d.Status, d.Batch)
			}
		}
	}
}

// TestBrokenConnectionIsOneAttempt: a receiver that drops the connection
// after reading a request gets that request once per attempt; the HTTP
// client does not replay it on its other (idle) connections.
func TestBrokenConnectionIsOneAttempt(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	resets := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if r.URL.Path != "/reset" {
			w.WriteHeader(200)
			return
		}
		mu.Lock()
		resets++
		mu.Unlock()
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := c.(interface{ SetLinger(int) error }); ok {
			_ = tc.SetLinger(0) // RST
		}
		c.Close()
	}))
	t.Cleanup(srv.Close)
	// Deliveries to /ok leave idle keep-alive connections to the host.
	e.addWebhook(srv.URL+"/ok", hookOpts{events: []string{parley.EventMessageDelivered}})
	e.addWebhook(srv.URL+"/ok", hookOpts{events: []string{parley.EventMessageDelivered}})
	bad := e.addWebhook(srv.URL+"/reset", hookOpts{events: []string{parley.EventMessageReceived}})
	s := e.service()
	ctx := context.Background()
	e.emit(msgEvent(parley.EventMessageDelivered, "", 0, "warm"))
	jobs := claimAll(t, s)
	var wg sync.WaitGroup
	for _, j := range jobs { // at once, so that each opens its own connection
		wg.Add(1)
		go func(j *job) { defer wg.Done(); s.process(ctx, j); s.release(j) }(j)
	}
	wg.Wait()
	e.emit(msgEvent(parley.EventMessageReceived, "", 0, "dropped"))
	if n := step(t, s); n != 1 {
		t.Fatalf("claimed %d", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if resets != 1 {
		t.Fatalf("one attempt reached the receiver %d times", resets)
	}
	if ds := e.deliveries(bad); len(ds) != 1 || ds[0].AttemptsCount != 1 || ds[0].Status != StatusPending {
		t.Fatalf("delivery: %+v", ds)
	}
}

// A batch of only failures of one webhook (on PostgreSQL one statement for
// those that schedule a retry) records each attempt, schedules each retry,
// starts the failure streak, fails the delivery on its last attempt, and
// drops the outcome of a delivery whose lease was taken over.
func TestBatchOfFailuresOfOneWebhook(t *testing.T) {
	e := newEnv(t)
	wh := e.addWebhook("http://127.0.0.1:1/f", hookOpts{retryCustom: true, retryMax: 2, backoff: 60})
	for i := 0; i < 4; i++ {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, fmt.Sprint(i)))
	}
	s := e.service()
	now := time.Now()
	jobs := claimAll(t, s)
	if len(jobs) != 4 {
		t.Fatalf("claimed %d", len(jobs))
	}
	jobs[3].AttemptsCount = 2 // its last attempt
	if _, err := e.db.Write().Exec(context.Background(), `UPDATE deliveries SET locked_by = 'someone-else' WHERE id = ?`, jobs[2].ID); err != nil {
		t.Fatal(err)
	}
	batch := []*outcome{
		{j: jobs[0], res: failed(500, now)}, {j: jobs[1], res: failed(503, now.Add(time.Millisecond))},
		{j: jobs[2], res: failed(500, now)}, {j: jobs[3], res: failed(502, now)},
	}
	if _, err := s.finishBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if e.failingSince(wh) == nil {
		t.Fatal("the failure streak did not start")
	}
	byID := map[string]*Delivery{}
	for _, d := range e.deliveries(wh) {
		byID[d.ID] = d
	}
	for i, want := range []struct {
		status   string
		code     int
		attempts int
	}{{StatusPending, 500, 1}, {StatusPending, 503, 1}, {StatusDelivering, 0, 0}, {StatusFailed, 502, 1}} {
		d := byID[jobs[i].ID]
		if d.Status != want.status || len(d.Attempts) != want.attempts {
			t.Fatalf("delivery %d: %s with %d attempts, want %s with %d", i, d.Status, len(d.Attempts), want.status, want.attempts)
		}
		if want.attempts == 0 {
			continue
		}
		if *d.Attempts[0].StatusCode != want.code || d.LastStatusCode == nil || *d.LastStatusCode != want.code || d.LastError == nil {
			t.Fatalf("delivery %d: attempt %+v, last %v %v", i, d.Attempts[0], d.LastStatusCode, d.LastError)
		}
		if want.status == StatusPending && (d.NextAttemptAt == nil || d.NextAttemptAt.Before(now.Add(50*time.Second))) {
			t.Fatalf("delivery %d: retry at %v, want about a minute after %v", i, d.NextAttemptAt, now)
		}
	}
}
