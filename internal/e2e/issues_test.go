package e2e_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// strictEnv makes knownIssue fail the test instead of logging.
const strictEnv = "PARLEY_E2E_STRICT"

// knownIssue records a deviation from the expected behaviour that comes from
// a bug already reported against another package (see the issue name in
// this package's tests) and not fixed yet: it is logged as KNOWN ISSUE, so
// the suite stays green, and fails the test when PARLEY_E2E_STRICT is set.
// Once the bug is fixed, replace the call with t.Errorf.
func knownIssue(t *testing.T, issue, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(strictEnv) != "" {
		t.Errorf("%s: %s", issue, msg)
		return
	}
	t.Logf("KNOWN ISSUE %s (%s=1 fails on it): %s", issue, strictEnv, msg)
}

// Bugs in other packages these scenarios found; see knownIssue.
const (
	// issueSentAfterReceived: a customer message that arrives while the
	// team's earlier reply still waits for its send job is delivered before
	// that reply's whatsapp.message.sent: ordering only holds deliveries
	// back behind deliveries that exist, and the sent delivery is written
	// when the send job finishes (internal/delivery claim,
	// internal/messaging finishSent).
	issueSentAfterReceived = "sent-after-later-received"
)

// outboundDone reports whether an outbound message reached WhatsApp: it
// has a wamid and a status past pending that is not failed.
func outboundDone(m map[string]any) bool {
	switch m["status"] {
	case "sent", "delivered", "read":
		return strings.HasPrefix(gets(m, "whatsapp_message_id"), "wamid.")
	}
	return false
}

// expectRead waits until every message of a conversation picked by pick
// has reached WhatsApp and then for it to show read; a message stuck short
// of read is a lost status update.
func expectRead(t *testing.T, c *client, conv string, want int, pick func(map[string]any) bool) {
	t.Helper()
	picked := func() []map[string]any {
		var out []map[string]any
		for _, m := range c.messages(conv) {
			if pick(m) {
				out = append(out, m)
			}
		}
		return out
	}
	eventually(t, "the messages to reach WhatsApp", 15*time.Second, func() bool {
		l := picked()
		for _, m := range l {
			if m["status"] == "failed" {
				t.Fatalf("message failed: %v", m)
			}
			if !outboundDone(m) {
				return false
			}
		}
		return len(l) == want
	})
	allRead := func() bool {
		for _, m := range picked() {
			if m["status"] != "read" {
				return false
			}
		}
		return true
	}
	if !within(3*time.Second, allRead) {
		for _, m := range picked() {
			if m["status"] != "read" {
				t.Errorf("message %s (%s) stays %v after its read status", m["id"], m["message_type"], m["status"])
			}
		}
	}
}
