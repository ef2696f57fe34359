// Package delivery sends webhook deliveries: the events that internal/events
// records are claimed from the deliveries table by a pool of workers, signed
// and POSTed to the subscribers' URLs, retried on failure, batched when the
// webhook buffers them, kept in conversation order for message events, and
// recorded attempt by attempt for the delivery log API.
//
// Guarantees: at-least-once delivery (a claim is a lease; a worker that dies
// mid-request leaves the delivery to be claimed again when the lease ends,
// and receivers dedupe by X-Idempotency-Key / webhook-id); one endpoint's
// slowness never delays another (per-endpoint concurrency limits are applied
// in the claim); requests never reach loopback, private, link-local or
// metadata addresses unless the operator allows them.
//
// Pausing rule: a webhook is paused (active=false, paused_at, paused_reason)
// when an attempt fails and no attempt has succeeded since its first failure
// PARLEY_WEBHOOK_PAUSE_AFTER ago (72 h by default). Any 2xx ends the failure
// streak. Setting active back to true resumes it (see Resume).
package delivery
