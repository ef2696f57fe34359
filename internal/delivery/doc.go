// Package delivery sends webhook deliveries: the events that internal/events
// records are claimed from the deliveries table by a pool of workers, signed
// and POSTed to the subscribers' URLs, retried on failure, batched when the
// webhook buffers them, kept in conversation order for message events, and
// recorded attempt by attempt for the delivery log API.
//
// Guarantees: at-least-once delivery (a claim is a lease, renewed while the
// request runs; when a process dies mid-request its deliveries are claimed
// again once the lease ends, DefaultLease, and receivers dedupe by
// X-Idempotency-Key / webhook-id); one endpoint's slowness never delays
// another (per-endpoint concurrency limits are applied in the claim);
// requests never reach loopback, private, link-local or metadata addresses
// unless the operator allows them.
//
// Throughput: a claim is one transaction of a few statements however many
// deliveries it takes (the payload and the webhook row come with the
// deliveries; webhook rows and decrypted secrets are cached, checked by
// version); attempt outcomes are recorded in batches, one transaction for
// all the outcomes that finished while the previous one committed, and that
// transaction also claims the next deliveries. A worker's slot is freed when
// its request ends, its delivery released when its outcome is committed.
//
// Ordering: message events of a conversation reach each webhook in order; a
// delivery waits for the earlier ones (at most OrderingTimeout after its
// creation). One waiting behind a delivery that is due for a retry shows
// that retry's time as its next_attempt_at, the earliest it can go.
//
// Wake-ups: the API wakes the workers after a commit that wrote events. On
// PostgreSQL, Wake also sends NOTIFY and every Service LISTENs on a
// dedicated connection, so a delivery written by one process is picked up
// at once by any; polling remains the fallback.
//
// Pausing rule: a webhook is paused (active=false, paused_at, paused_reason)
// when an attempt fails and no attempt has succeeded since its first failure
// PARLEY_WEBHOOK_PAUSE_AFTER ago (72 h by default). Any 2xx ends the failure
// streak. Setting active back to true resumes it (see Resume).
package delivery
