package whatsapp

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestTokenBucketReservations(t *testing.T) {
	start := time.Unix(0, 0)
	b := newTokenBucket(10, 2, start)
	// Five reservations at the same instant: the burst of two is free, then
	// each further token costs 1/rate more.
	var got []time.Duration
	for range 5 {
		got = append(got, b.reserve(start))
	}
	want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	// After the backlog drains and a full second passes, the bucket is full
	// again but never above its burst.
	later := start.Add(10 * time.Second)
	if b.reserve(later) != 0 || b.reserve(later) != 0 || b.reserve(later) != 100*time.Millisecond {
		t.Error("bucket did not refill to exactly its burst")
	}
}

func TestTokenBucketDefaultBurst(t *testing.T) {
	now := time.Unix(0, 0)
	b := newTokenBucket(DefaultMessagesPerSecond, 0, now)
	free := 0
	for b.reserve(now) == 0 {
		free++
	}
	if free != DefaultMessagesPerSecond {
		t.Errorf("default burst = %d, want %d", free, DefaultMessagesPerSecond)
	}
}

func TestSendMessagePacedPerPhoneNumber(t *testing.T) {
	c, fg, clk := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		respond(t, w, http.StatusOK, "send_message.json")
	})
	c.MessagesPerSecond, c.Burst = 10, 2
	ctx := context.Background()
	for range 5 {
		if _, err := c.SendMessage(ctx, testToken, "phone-a", map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	// Sequential sends on a fake clock: after the burst, each send waits one
	// token interval (the clock does not move between sends otherwise).
	want := []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	if got := clk.Sleeps(); !reflect.DeepEqual(got, want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
	// Another phone number has its own bucket.
	if _, err := c.SendMessage(ctx, testToken, "phone-b", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if got := len(clk.Sleeps()); got != 3 {
		t.Errorf("phone-b waited: %v", clk.Sleeps())
	}
	if fg.calls.Load() != 6 {
		t.Errorf("calls = %d", fg.calls.Load())
	}
	// MarkRead is not paced.
	c.MarkRead(ctx, testToken, "phone-a", "wamid.x", false)
	if got := len(clk.Sleeps()); got != 3 {
		t.Errorf("MarkRead was paced: %v", clk.Sleeps())
	}
}

func TestSendMessagePacingDisabled(t *testing.T) {
	c, _, clk := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		respond(t, w, http.StatusOK, "send_message.json")
	})
	c.MessagesPerSecond = -1
	for range 200 {
		if _, err := c.SendMessage(context.Background(), testToken, fxPhoneID, map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(clk.Sleeps()) != 0 {
		t.Errorf("sleeps = %d", len(clk.Sleeps()))
	}
}

func TestPacingWaitCanceled(t *testing.T) {
	c, fg, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		respond(t, w, http.StatusOK, "send_message.json")
	})
	c.MessagesPerSecond, c.Burst = 1, 1
	if _, err := c.SendMessage(context.Background(), testToken, fxPhoneID, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.SendMessage(ctx, testToken, fxPhoneID, map[string]any{}); err == nil {
		t.Fatal("send with canceled context while waiting for a token succeeded")
	}
	if fg.calls.Load() != 1 {
		t.Errorf("calls = %d", fg.calls.Load())
	}
	// The abandoned reservation was refunded: the next wait is one interval,
	// not two.
	b := c.bucket(fxPhoneID)
	if d := b.reserve(c.clk().Now()); d != time.Second {
		t.Errorf("wait after refund = %v, want 1s", d)
	}
}
