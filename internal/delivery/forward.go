package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/netguard"
)

// RegisterForwarding registers the job that forwards a Meta webhook, byte
// for byte with Meta's X-Hub-Signature-256, to a config's
// webhook_destination_url and to its meta-kind webhooks. It goes through the deliveries' client, so the
// same private-network rules apply; the job runner retries failures with
// its backoff (429 and 503 after their Retry-After).
func RegisterForwarding(r *jobs.Runner, cfg config.Config) {
	client := newClient(cfg)
	timeout := cfg.WebhookTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	r.Register(parley.JobForwardMetaWebhook, func(ctx context.Context, j *jobs.Job) error {
		var p parley.MetaWebhookForward
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return jobs.Permanent(fmt.Errorf("forward: payload: %w", err))
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
		if err != nil {
			return jobs.Permanent(fmt.Errorf("forward to %s: %w", p.URL, err))
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Parley-Webhooks/1")
		// Kapso's idempotency key for raw forwards: SHA-256 of the body.
		sum := sha256.Sum256(p.Body)
		req.Header.Set("X-Idempotency-Key", hex.EncodeToString(sum[:]))
		if p.Signature != "" {
			req.Header.Set("X-Hub-Signature-256", p.Signature)
		}
		res, err := client.Do(req)
		if err != nil {
			var refused *netguard.RefusedError
			if errors.As(err, &refused) {
				return jobs.Permanent(fmt.Errorf("forward to %s: %w", p.URL, err))
			}
			return fmt.Errorf("forward to %s: %s", p.URL, unwrapURLError(err))
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			return nil
		}
		err = fmt.Errorf("forward to %s: HTTP %d", p.URL, res.StatusCode)
		if res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable {
			if d := parseRetryAfter(res.Header.Get("Retry-After"), time.Now()); d > 0 {
				return jobs.RetryAfter(d, err)
			}
		}
		return err
	})
}
