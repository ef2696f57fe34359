package displaynames

import (
	"testing"
	"time"
)

// SetPolling shortens the review polling for a test and restores it after.
func SetPolling(t testing.TB, first, maxDelay, horizon time.Duration) {
	f, m, h := firstPoll, maxPoll, pollHorizon
	firstPoll, maxPoll, pollHorizon = first, maxDelay, horizon
	t.Cleanup(func() { firstPoll, maxPoll, pollHorizon = f, m, h })
}

// Outcome exposes outcome for table tests.
var Outcome = outcome

// NewRequest builds a request for Outcome.
func NewRequest(requested string) *Request { return &Request{RequestedName: requested} }
