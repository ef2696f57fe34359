package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "EAAG-secret-test-token"

// fakeClock is a deterministic clock: Sleep records the duration and
// advances Now instantly.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1750000000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// fakeGraph is an httptest Graph server; handle gets the 1-based attempt
// number of each request.
type fakeGraph struct {
	*httptest.Server
	calls atomic.Int32
}

func newFakeGraph(t *testing.T, handle func(t *testing.T, w http.ResponseWriter, r *http.Request, n int)) (*Client, *fakeGraph, *fakeClock) {
	t.Helper()
	fg := &fakeGraph{}
	fg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(fg.calls.Add(1))
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("Authorization = %q", got)
		}
		handle(t, w, r, n)
	}))
	t.Cleanup(fg.Close)
	clk := newFakeClock()
	c := &Client{
		BaseURL:    fg.URL,
		HTTPClient: fg.Client(),
		Retry:      RetryPolicy{MaxAttempts: 4, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second},
		clock:      clk,
		jitter:     func() float64 { return 0 },
	}
	return c, fg, clk
}

// respond writes a fixture response with the given status.
func respond(t *testing.T, w http.ResponseWriter, status int, fixture string) {
	t.Helper()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(readFixture(t, "graph", "responses", fixture))
}

// assertJSONBody checks that the request body equals the fixture JSON.
func assertJSONBody(t *testing.T, r *http.Request, fixture string) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	got, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(readFixture(t, "graph", "requests", fixture), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("request body differs from %s:\n got %s", fixture, got)
	}
}

// descriptor is a request descriptor fixture (graph/requests/*.json for
// calls without a JSON body).
type descriptor struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Query  map[string]string `json:"query"`
	// ContentType is set for the multipart upload descriptor.
	ContentType string            `json:"content_type"`
	Form        map[string]string `json:"form"`
	Files       map[string]struct {
		Filename    string `json:"filename"`
		ContentType string `json:"content_type"`
	} `json:"files"`
}

func loadDescriptor(t *testing.T, name string) descriptor {
	t.Helper()
	var d descriptor
	if err := json.Unmarshal(readFixture(t, "graph", "requests", name), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// assertDescriptor checks method, path and query against a descriptor
// fixture; bodyless descriptors also require an empty body.
func assertDescriptor(t *testing.T, r *http.Request, name string) descriptor {
	t.Helper()
	d := loadDescriptor(t, name)
	if r.Method != d.Method {
		t.Errorf("%s: method = %s, want %s", name, r.Method, d.Method)
	}
	if want := "/" + DefaultVersion + d.Path; r.URL.Path != want {
		t.Errorf("%s: path = %s, want %s", name, r.URL.Path, want)
	}
	q := r.URL.Query()
	if len(q) != len(d.Query) {
		t.Errorf("%s: query = %v, want %v", name, q, d.Query)
	}
	for k, v := range d.Query {
		if q.Get(k) != v || len(q[k]) != 1 {
			t.Errorf("%s: query %s = %q, want %q", name, k, q[k], v)
		}
	}
	if d.Files == nil {
		if body, _ := io.ReadAll(r.Body); len(body) != 0 {
			t.Errorf("%s: unexpected body %q", name, body)
		}
	}
	return d
}

func assertPath(t *testing.T, r *http.Request, method, path string) {
	t.Helper()
	if r.Method != method || r.URL.Path != "/"+DefaultVersion+path {
		t.Errorf("request = %s %s, want %s /%s%s", r.Method, r.URL.Path, method, DefaultVersion, path)
	}
}

func TestSendMessageFixtureBodies(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "graph", "requests", "send_*.json"))
	if len(files) < 10 {
		t.Fatalf("found %d send fixtures", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			response := "send_message.json"
			if strings.HasPrefix(name, "send_template") {
				response = "send_message_template.json"
			}
			c, fg, clk := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
				assertPath(t, r, http.MethodPost, "/"+fxPhoneID+"/messages")
				assertJSONBody(t, r, name)
				respond(t, w, http.StatusOK, response)
			})
			// Send once verbatim and once as a decoded map.
			var asMap map[string]any
			raw := readFixture(t, "graph", "requests", name)
			if err := json.Unmarshal(raw, &asMap); err != nil {
				t.Fatal(err)
			}
			for _, body := range []any{json.RawMessage(raw), asMap} {
				res, err := c.SendMessage(context.Background(), testToken, fxPhoneID, body)
				if err != nil {
					t.Fatal(err)
				}
				if res.MessagingProduct != "whatsapp" || len(res.Contacts) != 1 ||
					res.Contacts[0] != (SendContact{Input: "+16505551234", WaID: fxCustomer}) {
					t.Errorf("response = %+v", res)
				}
				wantID, wantStatus := "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA", ""
				if response == "send_message_template.json" {
					wantID, wantStatus = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBIyQjM2RTlERTY4QjFGNzUwNDgA", "accepted"
				}
				if res.MessageID() != wantID || res.Messages[0].MessageStatus != wantStatus {
					t.Errorf("messages = %+v", res.Messages)
				}
			}
			if fg.calls.Load() != 2 || len(clk.Sleeps()) != 0 {
				t.Errorf("calls = %d, sleeps = %v", fg.calls.Load(), clk.Sleeps())
			}
		})
	}
}

func TestSendMessageRejectsBadInput(t *testing.T) {
	c := &Client{BaseURL: "http://127.0.0.1:0"}
	ctx := context.Background()
	if _, err := c.SendMessage(ctx, "", fxPhoneID, map[string]any{}); !errors.Is(err, ErrMissingToken) {
		t.Errorf("empty token: %v", err)
	}
	if _, err := c.SendMessage(ctx, testToken, "", map[string]any{}); err == nil {
		t.Error("empty phone number ID accepted")
	}
	if _, err := c.SendMessage(ctx, testToken, fxPhoneID, json.RawMessage(`{bad`)); err == nil {
		t.Error("invalid JSON accepted")
	}
	if _, err := c.SendMessage(ctx, testToken, fxPhoneID, nil); err == nil {
		t.Error("nil body accepted")
	}
}

func TestMarkRead(t *testing.T) {
	const msgID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"
	for typing, fixture := range map[bool]string{false: "mark_as_read.json", true: "mark_as_read_typing_indicator.json"} {
		c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
			assertPath(t, r, http.MethodPost, "/"+fxPhoneID+"/messages")
			assertJSONBody(t, r, fixture)
			respond(t, w, http.StatusOK, "mark_as_read.json")
		})
		if err := c.MarkRead(context.Background(), testToken, fxPhoneID, msgID, typing); err != nil {
			t.Errorf("typing=%v: %v", typing, err)
		}
	}
}

func TestGraphErrorFixtures(t *testing.T) {
	tests := []struct {
		fixture   string
		status    int
		want      GraphError
		transient bool
		retryable bool
	}{
		{"error_130429_rate_limit.json", 400, GraphError{HTTPStatus: 400, Code: 130429, Subcode: 2494055, Type: "OAuthException",
			Message: "(#130429) Rate limit hit", Title: "Rate limit hit", Details: "Cloud API message throughput has been reached.",
			FBTraceID: "Az8or2yhqkZfEZ-_4Qn_Bam"}, true, true},
		{"error_100_invalid_parameter.json", 400, GraphError{HTTPStatus: 400, Code: 100, Type: "OAuthException",
			Message: "(#100) Invalid parameter", Title: "Invalid parameter", Details: "Message must be a template message.",
			FBTraceID: "Ak6nxJSySLEJz32Ps-QiZ1t"}, false, false},
		{"error_131047_reengagement.json", 400, GraphError{HTTPStatus: 400, Code: 131047, Type: "OAuthException",
			Message: "(#131047) Re-engagement message", Title: "Re-engagement message",
			Details:   "More than 24 hours have passed since the recipient last replied to the sender number.",
			FBTraceID: "AYx4kR2mPq9ZtLw7Bn3cVd1"}, false, false},
		{"error_131026_undeliverable.json", 400, GraphError{HTTPStatus: 400, Code: 131026, Type: "OAuthException",
			Message: "(#131026) Message Undeliverable", Title: "Message Undeliverable", Details: "Unable to deliver message.",
			FBTraceID: "A3pQ8sLk2VwXy5Rt7Nb1Hc0"}, false, false},
		{"error_131056_pair_rate_limit.json", 400, GraphError{HTTPStatus: 400, Code: 131056, Type: "OAuthException",
			Message: "(#131056) (Business Account, Consumer Account) pair rate limit hit", Title: "(Business Account, Consumer Account) pair rate limit hit",
			Details:   "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time.",
			FBTraceID: "AkT9wE3rYu6Io1Pa4Sd7Fg2"}, false, true},
		{"error_132001_template_not_found.json", 404, GraphError{HTTPStatus: 404, Code: 132001, Type: "OAuthException",
			Message: "(#132001) Template does not exist", Title: "Template does not exist",
			Details:   "The template does not exist in the specified language or the template has not been approved.",
			FBTraceID: "AzX2cV5bN8mQ1wE4rT7yU0i"}, false, false},
		{"error_190_token_expired.json", 401, GraphError{HTTPStatus: 401, Code: 190, Type: "OAuthException",
			Message: "(#190) Access token has expired", Title: "Access token has expired",
			FBTraceID: "AqW3eR6tY9uI2oP5aS8dF1g"}, false, false},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.fixture, ".json"), func(t *testing.T) {
			c, fg, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
				respond(t, w, tt.status, tt.fixture)
			})
			c.Retry.MaxAttempts = 1
			_, err := c.SendMessage(context.Background(), testToken, fxPhoneID, json.RawMessage(readFixture(t, "graph", "requests", "send_text.json")))
			var ge *GraphError
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v (%T), want *GraphError", err, err)
			}
			if *ge != tt.want {
				t.Errorf("GraphError =\n  %+v\nwant\n  %+v", *ge, tt.want)
			}
			if IsTransient(err) != tt.transient || IsRetryable(err) != tt.retryable {
				t.Errorf("IsTransient = %v, IsRetryable = %v", IsTransient(err), IsRetryable(err))
			}
			if ErrorCode(err) != tt.want.Code {
				t.Errorf("ErrorCode = %d", ErrorCode(err))
			}
			if strings.Contains(err.Error(), testToken) || !strings.Contains(err.Error(), tt.want.Message) {
				t.Errorf("Error() = %q", err.Error())
			}
			if fg.calls.Load() != 1 {
				t.Errorf("calls = %d", fg.calls.Load())
			}
		})
	}
}

func TestRetryTransientThenSucceed(t *testing.T) {
	tests := []struct {
		name string
		fail func(t *testing.T, w http.ResponseWriter)
	}{
		{"500 html", func(t *testing.T, w http.ResponseWriter) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "<html>oops</html>")
		}},
		{"130429", func(t *testing.T, w http.ResponseWriter) { respond(t, w, 400, "error_130429_rate_limit.json") }},
		{"503 code 2", func(t *testing.T, w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"message":"(#2) Service temporarily unavailable","type":"OAuthException","code":2,"is_transient":true}}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fg, clk := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
				assertJSONBody(t, r, "send_text.json") // the same body on every attempt
				if n <= 2 {
					tt.fail(t, w)
					return
				}
				respond(t, w, http.StatusOK, "send_message.json")
			})
			res, err := c.SendMessage(context.Background(), testToken, fxPhoneID, json.RawMessage(readFixture(t, "graph", "requests", "send_text.json")))
			if err != nil {
				t.Fatal(err)
			}
			if res.MessageID() == "" || fg.calls.Load() != 3 {
				t.Errorf("id %q after %d calls", res.MessageID(), fg.calls.Load())
			}
			// Jitter 0 gives half of each exponential step: 100ms, 200ms.
			if got, want := clk.Sleeps(), []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}; !reflect.DeepEqual(got, want) {
				t.Errorf("sleeps = %v, want %v", got, want)
			}
		})
	}
}

func TestNoRetryOnPermanentErrors(t *testing.T) {
	for _, fixture := range []string{"error_131047_reengagement.json", "error_131026_undeliverable.json",
		"error_132001_template_not_found.json", "error_190_token_expired.json", "error_131056_pair_rate_limit.json"} {
		c, fg, clk := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
			respond(t, w, 400, fixture)
		})
		_, err := c.SendMessage(context.Background(), testToken, fxPhoneID, map[string]any{"to": "+16505551234"})
		if err == nil || fg.calls.Load() != 1 || len(clk.Sleeps()) != 0 {
			t.Errorf("%s: err %v after %d calls, sleeps %v", fixture, err, fg.calls.Load(), clk.Sleeps())
		}
	}
	// A permanent code wins over a 5xx status.
	c, fg, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"message":"(#131045) Incorrect certificate","code":131045}}`)
	})
	if _, err := c.SendMessage(context.Background(), testToken, fxPhoneID, map[string]any{}); err == nil || fg.calls.Load() != 1 {
		t.Errorf("131045 retried: %d calls", fg.calls.Load())
	}
}

func TestRetryGivesUp(t *testing.T) {
	c, fg, clk := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(http.StatusBadGateway)
	})
	c.Retry = RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second, MaxBackoff: 1500 * time.Millisecond}
	_, err := c.SendMessage(context.Background(), testToken, fxPhoneID, map[string]any{})
	var ge *GraphError
	if !errors.As(err, &ge) || ge.HTTPStatus != http.StatusBadGateway || !IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
	if fg.calls.Load() != 3 {
		t.Errorf("calls = %d, want 3", fg.calls.Load())
	}
	if got, want := clk.Sleeps(), []time.Duration{500 * time.Millisecond, 750 * time.Millisecond}; !reflect.DeepEqual(got, want) {
		t.Errorf("sleeps = %v, want %v (capped)", got, want)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	c, _, clk := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		respond(t, w, http.StatusOK, "send_message.json")
	})
	c.Retry.MaxBackoff = 10 * time.Second
	if _, err := c.SendMessage(context.Background(), testToken, fxPhoneID, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if got := clk.Sleeps(); !reflect.DeepEqual(got, []time.Duration{3 * time.Second}) {
		t.Errorf("sleeps = %v", got)
	}
}

func TestRetryStopsWhenContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, fg, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		cancel()
		w.WriteHeader(http.StatusInternalServerError)
	})
	_, err := c.SendMessage(ctx, testToken, fxPhoneID, map[string]any{})
	if err == nil || fg.calls.Load() != 1 {
		t.Errorf("err %v after %d calls", err, fg.calls.Load())
	}
}

func TestNetworkErrorsAreTransient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close()
	clk := newFakeClock()
	c := &Client{BaseURL: url, clock: clk, jitter: func() float64 { return 0 },
		Retry: RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}}
	_, err := c.SendMessage(context.Background(), testToken, fxPhoneID, map[string]any{})
	if err == nil || !IsTransient(err) || !IsRetryable(err) {
		t.Fatalf("err = %v, transient %v", err, IsTransient(err))
	}
	if strings.Contains(err.Error(), testToken) {
		t.Error("token leaked into error")
	}
	if len(clk.Sleeps()) != 1 {
		t.Errorf("sleeps = %v, want one retry", clk.Sleeps())
	}
	if IsTransient(context.Canceled) || IsTransient(nil) || IsRetryable(errors.New("x")) {
		t.Error("non-transient errors classified as transient")
	}
}

func TestBackoffGrowthAndJitter(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for _, tt := range []struct {
		jitter   float64
		attempts []time.Duration
	}{
		{0, []time.Duration{50, 100, 200, 400, 500, 500}},
		{0.999999, []time.Duration{100, 200, 400, 800, 1000, 1000}},
	} {
		c := &Client{jitter: func() float64 { return tt.jitter }}
		for i, want := range tt.attempts {
			got := c.backoff(p, i+1, errors.New("x")).Round(time.Millisecond)
			if got != want*time.Millisecond {
				t.Errorf("jitter %v attempt %d: %v, want %v", tt.jitter, i+1, got, want*time.Millisecond)
			}
		}
	}
}
