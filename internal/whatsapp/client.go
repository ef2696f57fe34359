package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client defaults.
const (
	DefaultBaseURL           = "https://graph.facebook.com"
	DefaultVersion           = "v24.0"
	DefaultMessagesPerSecond = 80
	DefaultMaxAttempts       = 4
	DefaultInitialBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff        = 10 * time.Second
	defaultUserAgent         = "parley-whatsapp/1"
	defaultTimeout           = 30 * time.Second
	maxResponseBody          = 16 << 20
)

// ErrMissingToken is returned when a call is made with an empty access
// token.
var ErrMissingToken = errors.New("whatsapp: missing access token")

// Client calls Meta's Graph API. The zero value is ready to use with the
// defaults; set fields before the first call and do not copy a Client after
// use. A Client is safe for concurrent use.
//
// Every method takes the access token of the WhatsApp config it acts for;
// the token is sent as "Authorization: Bearer <token>" and never appears in
// errors.
type Client struct {
	// BaseURL is the Graph API root (DefaultBaseURL when empty); point it
	// at a fake Graph server in tests and in the sandbox.
	BaseURL string
	// Version is the Graph API version path segment (DefaultVersion when
	// empty).
	Version string
	// HTTPClient performs requests; when nil a shared client with a 30 s
	// timeout is used. That timeout covers reading the body, so set a
	// client with a longer (or no) timeout plus context deadlines when
	// downloading large media.
	HTTPClient *http.Client
	// UserAgent is sent with every request (a package default when empty).
	UserAgent string
	// MessagesPerSecond caps SendMessage per phone number ID (a token
	// bucket; sends wait for a token rather than provoking 130429).
	// 0 means DefaultMessagesPerSecond; a negative value disables pacing.
	MessagesPerSecond float64
	// Burst is the bucket size; 0 means one second's worth of messages.
	Burst int
	// Retry controls retries of transient failures.
	Retry RetryPolicy

	clock  clock          // nil: real time
	jitter func() float64 // nil: math/rand/v2

	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

// RetryPolicy bounds the retries of transient failures (see [IsTransient]).
// Delays grow exponentially from InitialBackoff, are capped at MaxBackoff,
// are randomized ("equal jitter": between half and all of the step), and
// honour a Retry-After header when Meta sends one. Waiting stops as soon as
// the context is done.
//
// Message sends are not idempotent at Meta: a retry after a timeout whose
// request did reach Meta can deliver the message twice. Set MaxAttempts to 1
// to disable retries where that matters more than availability.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, first included
	// (DefaultMaxAttempts when 0; 1 disables retries).
	MaxAttempts int
	// InitialBackoff is the first delay (DefaultInitialBackoff when 0).
	InitialBackoff time.Duration
	// MaxBackoff caps each delay (DefaultMaxBackoff when 0).
	MaxBackoff time.Duration
}

func (c *Client) clk() clock {
	if c.clock != nil {
		return c.clock
	}
	return realClock{}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return defaultHTTPClient
}

var defaultHTTPClient = &http.Client{Timeout: defaultTimeout}

func (c *Client) endpoint(path string) string {
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	version := strings.Trim(c.Version, "/")
	if version == "" {
		version = DefaultVersion
	}
	return base + "/" + version + "/" + strings.TrimLeft(path, "/")
}

// errNotReplayable reports that a request body cannot be produced again
// for a retry.
var errNotReplayable = errors.New("whatsapp: request body cannot be replayed")

// request describes one Graph call.
type request struct {
	method string
	path   string // relative to BaseURL/Version; ignored when rawURL is set
	rawURL string // absolute URL (media downloads)
	query  url.Values
	// body returns a fresh body and its content type for each attempt;
	// nil means no body.
	body  func(attempt int) (io.Reader, string, error)
	token string
	// pace names the phone number whose send budget each attempt uses;
	// empty means no pacing.
	pace string
}

// jsonBody returns a body factory for v, marshalled once. json.RawMessage
// and []byte values are sent as they are after validation.
func jsonBody(v any) (func(int) (io.Reader, string, error), error) {
	var b []byte
	switch t := v.(type) {
	case nil:
		return nil, errors.New("whatsapp: nil request body")
	case json.RawMessage:
		b = t
	case []byte:
		b = t
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("whatsapp: encode request body: %w", err)
		}
	}
	if !json.Valid(b) {
		return nil, errors.New("whatsapp: request body is not valid JSON")
	}
	return func(int) (io.Reader, string, error) {
		return bytes.NewReader(b), "application/json", nil
	}, nil
}

// send performs r with pacing and retries and returns the successful (2xx)
// response; its body must be closed by the caller. Failures are
// *GraphError or transport errors.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	if r.token == "" {
		return nil, ErrMissingToken
	}
	policy := c.Retry
	if policy.MaxAttempts <= 0 {
		policy.MaxAttempts = DefaultMaxAttempts
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		if r.pace != "" {
			if err := c.waitForToken(ctx, r.pace); err != nil {
				return nil, errors.Join(err, lastErr)
			}
		}
		resp, err := c.attempt(ctx, r, attempt)
		if err == nil {
			return resp, nil
		}
		if errors.Is(err, errNotReplayable) {
			return nil, lastErr
		}
		lastErr = err
		if attempt >= policy.MaxAttempts || ctx.Err() != nil || !IsTransient(err) {
			return nil, err
		}
		if werr := c.clk().Sleep(ctx, c.backoff(policy, attempt, err)); werr != nil {
			return nil, errors.Join(err, werr)
		}
	}
}

func (c *Client) attempt(ctx context.Context, r request, attempt int) (*http.Response, error) {
	target := r.rawURL
	if target == "" {
		target = c.endpoint(r.path)
	}
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	contentType := ""
	if r.body != nil {
		var err error
		if body, contentType, err = r.body(attempt); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", firstNonEmpty(c.UserAgent, defaultUserAgent))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err // *url.Error: method and URL only, never headers
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newGraphError(resp)
	}
	return resp, nil
}

// backoff returns the delay before attempt+1.
func (c *Client) backoff(p RetryPolicy, attempt int, err error) time.Duration {
	initial, maxDelay := p.InitialBackoff, p.MaxBackoff
	if initial <= 0 {
		initial = DefaultInitialBackoff
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMaxBackoff
	}
	step := initial
	for i := 1; i < attempt && step < maxDelay; i++ {
		step *= 2
	}
	step = min(step, maxDelay)
	r := rand.Float64
	if c.jitter != nil {
		r = c.jitter
	}
	d := step/2 + time.Duration(r()*float64(step/2))
	var ge *GraphError
	if errors.As(err, &ge) && ge.RetryAfter > d {
		d = min(ge.RetryAfter, maxDelay)
	}
	return d
}

// doJSON performs r and decodes the JSON response into out (when non-nil).
func (c *Client) doJSON(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return fmt.Errorf("whatsapp: read %s response: %w", r.method, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("whatsapp: decode response: %w", err)
	}
	return nil
}

// successResponse is Graph's {"success": true} answer.
type successResponse struct {
	Success bool `json:"success"`
}

// doSuccess performs r and requires {"success": true}.
func (c *Client) doSuccess(ctx context.Context, r request) error {
	var res successResponse
	if err := c.doJSON(ctx, r, &res); err != nil {
		return err
	}
	if !res.Success {
		return fmt.Errorf("whatsapp: %s %s: graph API did not report success", r.method, r.path)
	}
	return nil
}

// pathOf joins escaped path segments.
func pathOf(segments ...string) string {
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return strings.Join(segments, "/")
}

// requireIDs fails when any named identifier is empty, so a missing ID
// cannot turn into a request against the wrong Graph node.
func requireIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return fmt.Errorf("whatsapp: missing %s", pairs[i])
		}
	}
	return nil
}
