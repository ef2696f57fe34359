package whatsapp

import (
	"context"
	"math"
	"sync"
	"time"
)

// clock abstracts time so tests can drive the rate limiter and backoff
// deterministically.
type clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, returning ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tokenBucket is a reservation-based token bucket: reserve always takes a
// token, possibly driving the balance negative, and returns how long the
// caller must wait before using it. Waiting callers are thus served in
// reservation order without a background goroutine.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	b := float64(burst)
	if b < 1 {
		b = math.Max(1, math.Ceil(rate))
	}
	return &tokenBucket{rate: rate, burst: b, tokens: b, last: now}
}

// reserve takes one token and returns the wait before it may be used.
func (b *tokenBucket) reserve(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-b.tokens / b.rate * float64(time.Second)))
}

// cancel returns a token whose reservation was abandoned.
func (b *tokenBucket) cancel() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = math.Min(b.burst, b.tokens+1)
}

// waitForToken blocks until the phone number's bucket grants a send.
func (c *Client) waitForToken(ctx context.Context, phoneNumberID string) error {
	b := c.bucket(phoneNumberID)
	if b == nil {
		return nil
	}
	clk := c.clk()
	d := b.reserve(clk.Now())
	if d <= 0 {
		return nil
	}
	if err := clk.Sleep(ctx, d); err != nil {
		b.cancel()
		return err
	}
	return nil
}

func (c *Client) bucket(phoneNumberID string) *tokenBucket {
	rate := c.MessagesPerSecond
	if rate == 0 {
		rate = DefaultMessagesPerSecond
	}
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buckets == nil {
		c.buckets = make(map[string]*tokenBucket)
	}
	b, ok := c.buckets[phoneNumberID]
	if !ok {
		b = newTokenBucket(rate, c.Burst, c.clk().Now())
		c.buckets[phoneNumberID] = b
	}
	return b
}
