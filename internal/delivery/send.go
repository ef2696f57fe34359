package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/netguard"
	"github.com/parleyhq/parley/internal/secrets"
)

// SnippetLimit is how much of a receiver's response body an attempt keeps.
const SnippetLimit = 1024

// result is the outcome of one HTTP attempt.
type result struct {
	ok         bool
	status     int // 0 when no response was received
	started    time.Time
	latency    time.Duration
	err        string
	snippet    string
	retryAfter time.Duration
	outcome    string // metrics label
}

// Sign returns the X-Webhook-Signature value of body: lowercase hex
// HMAC-SHA256 keyed by the webhook's secret (README decision 6).
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// StandardSignature returns the Standard Webhooks "webhook-signature" value:
// "v1," + base64 HMAC-SHA256 of "<id>.<timestamp>.<body>", keyed by the
// webhook secret's bytes, so generic receivers can verify deliveries too.
func StandardSignature(secret, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%s.%d.", id, timestamp)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// secretTTL is how long a decrypted webhook secret is kept in memory.
const secretTTL = time.Minute

// secretCache keeps decrypted webhook secrets briefly, keyed by their
// ciphertext: a changed secret has a new ciphertext, so the cache is never
// stale, only spared an AES-GCM open per request.
type secretCache struct {
	mu sync.Mutex
	m  map[string]cachedSecret
}

type cachedSecret struct {
	secret  string
	expires time.Time
}

func (c *secretCache) get(box *secrets.Box, enc string, now time.Time) (string, error) {
	c.mu.Lock()
	e, ok := c.m[enc]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.secret, nil
	}
	secret, err := box.Decrypt(enc)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 4096 {
		c.m = map[string]cachedSecret{}
	}
	c.m[enc] = cachedSecret{secret: secret, expires: now.Add(secretTTL)}
	c.mu.Unlock()
	return secret, nil
}

// protectedHeaders are set by Parley and cannot be overridden by a webhook's
// custom headers (a custom header must never forge a signature).
var protectedHeaders = map[string]bool{
	"Content-Type": true, "X-Webhook-Event": true, "X-Webhook-Signature": true, "X-Idempotency-Key": true,
	"X-Webhook-Payload-Version": true, "X-Webhook-Batch": true, "X-Batch-Size": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true, "Content-Length": true, "Host": true,
}

// buildRequest returns the signed delivery request of j.
func (s *Service) buildRequest(ctx context.Context, j *job, body []byte, at time.Time) (*http.Request, error) {
	secret, err := s.secrets.get(s.box, j.Webhook.SecretEnc, s.Now())
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt the webhook secret: %w", err)
	}
	u, err := url.Parse(j.Webhook.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid webhook URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := req.Header
	for k, v := range j.Webhook.Headers {
		ck := http.CanonicalHeaderKey(k)
		if protectedHeaders[ck] || !validHeader(ck, v) {
			continue
		}
		h.Set(ck, v)
	}
	version := j.Webhook.PayloadVersion
	if version != "v1" {
		version = "v2"
	}
	ts := at.Unix()
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Parley-Webhooks/1")
	// The name the delivery log shows (parley.EventName for the webhook's
	// version when the event was written), so header and log agree.
	h.Set("X-Webhook-Event", j.Event)
	h.Set("X-Webhook-Signature", Sign(secret, body))
	// Set under its lowercase name (header names are case-insensitive):
	// net/http treats a POST with an "X-Idempotency-Key" entry as
	// replayable and, when a reused connection breaks after the request
	// was written, sends it again at once on every idle connection it
	// finds, so one attempt would reach the receiver several times.
	h["x-idempotency-key"] = []string{j.IdempotencyKey}
	h.Set("X-Webhook-Payload-Version", version)
	if j.IsBatch {
		h.Set("X-Webhook-Batch", "true")
		h.Set("X-Batch-Size", strconv.Itoa(batchSize(body)))
	}
	h.Set("Webhook-Id", j.IdempotencyKey)
	h.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("Webhook-Signature", StandardSignature(secret, j.IdempotencyKey, ts, body))
	return req, nil
}

func validHeader(k, v string) bool {
	if k == "" || strings.ContainsAny(k, " \t\r\n:") || strings.ContainsAny(v, "\r\n\x00") || !utf8.ValidString(v) {
		return false
	}
	return true
}

// send makes one attempt.
func (s *Service) send(ctx context.Context, j *job) result {
	body := j.Body()
	started := s.Now()
	res := result{started: started}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := s.buildRequest(rctx, j, body, started)
	if err != nil {
		res.err, res.outcome = err.Error(), "error"
		return res
	}
	t0 := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		res.latency = time.Since(t0)
		var ref *netguard.RefusedError
		switch {
		case errors.As(err, &ref):
			res.err, res.outcome = ref.Error(), "refused"
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			res.err, res.outcome = fmt.Sprintf("timeout: no response within %s", s.cfg.WebhookTimeout), "timeout"
		default:
			res.err, res.outcome = "request failed: "+unwrapURLError(err), "network_error"
		}
		return res
	}
	snip, _ := io.ReadAll(io.LimitReader(resp.Body, SnippetLimit))
	// Drain a little more so the connection can be reused, but never wait
	// long on a receiver that streams.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	res.latency = time.Since(t0)
	res.status = resp.StatusCode
	res.snippet = strings.ToValidUTF8(string(snip), "")
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		res.ok, res.outcome = true, "success"
		deliveryLatency.Observe(s.Now().Sub(j.CreatedAt).Seconds())
		return res
	}
	res.err, res.outcome = fmt.Sprintf("HTTP %d", resp.StatusCode), "http_error"
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.Now())
	}
	return res
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func unwrapURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// parseRetryAfter reads delta-seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, maxBackoff)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxBackoff)
	}
	return 0
}

// maxBackoff caps every wait between attempts.
const maxBackoff = time.Hour

// defaultSchedule is the wait after each failed attempt of the default
// policy: attempts at +0, +10 s, +40 s and +90 s after the previous one
// (README decision 5).
var defaultSchedule = []time.Duration{10 * time.Second, 40 * time.Second, 90 * time.Second}

func defaultJitter() float64 { return rand.Float64() }

// RetryDelay returns the wait after failed attempt n (1-based, within the
// current attempt cycle) for a webhook's retry settings. jitter is a number
// in [0, 1); custom backoffs add up to 10 % of themselves.
func RetryDelay(custom bool, backoffSeconds, n int, jitter float64) time.Duration {
	n = max(n, 1)
	if !custom {
		return defaultSchedule[min(n, len(defaultSchedule))-1]
	}
	base := time.Duration(max(backoffSeconds, 1)) * time.Second
	d := base << min(n-1, 20)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	d += time.Duration(float64(d) * 0.1 * jitter)
	return min(d, maxBackoff)
}

// retryDelay is the wait before the next attempt of j after res: the
// receiver's Retry-After on 429/503 when given, else the webhook's policy.
func (s *Service) retryDelay(j *job, res result) time.Duration {
	if res.retryAfter > 0 {
		return res.retryAfter
	}
	w := j.Webhook
	cycle := maxAttemptsFor(w.RetryCustom, w.RetryMaxAttempts)
	// Attempt number within the current cycle (a redelivery starts a new
	// cycle on top of the earlier attempts).
	n := cycle - (j.MaxAttempts - j.AttemptsCount)
	return RetryDelay(w.RetryCustom, w.RetryBackoffSeconds, n, s.Jitter())
}

// newClient returns the HTTP client of the workers: the address check runs
// on the IP actually dialed (so DNS rebinding cannot slip past it), no proxy,
// no redirects.
func newClient(cfg config.Config) *http.Client {
	policy := netguard.PolicyFor(cfg)
	dialer := &net.Dialer{
		Timeout:   cfg.WebhookTimeout,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &netguard.RefusedError{Reason: "unparsable"}
			}
			return policy.Check(ap.Addr())
		},
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   max(cfg.PerEndpointLimit, 2),
		MaxConnsPerHost:       0,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.WebhookTimeout,
		ResponseHeaderTimeout: cfg.WebhookTimeout,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// batchSize reads the number of items of a batch body.
func batchSize(body []byte) int {
	var b struct {
		BatchInfo struct {
			Size int `json:"size"`
		} `json:"batch_info"`
	}
	_ = jsonUnmarshal(body, &b)
	return b.BatchInfo.Size
}
