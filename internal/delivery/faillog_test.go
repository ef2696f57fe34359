package delivery

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
)

// syncBuffer is a log sink the workers may write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.b.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// Failed attempts are logged at warn, one line per webhook per minute with
// the count of those left out, and without the URL's query or the secret.
func TestDeliveryFailuresAreLoggedRateLimited(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { return 500 })
	wh := e.addWebhook(rc.URL+"/hook?token=supersecret", hookOpts{secret: "whsec-topsecret"})
	var logs syncBuffer
	s := New(e.db, e.box, slog.New(slog.NewTextHandler(&logs, nil)), e.cfg)
	s.Jitter = func() float64 { return 0 }
	clk := &clock{t: time.Now().Add(time.Second)}
	s.Now = clk.Now
	for i := range 3 {
		e.emit(msgEvent(parley.EventMessageReceived, "", 0, "m"+string(rune('a'+i))))
	}
	step(t, s)
	if n := len(rc.got()); n != 3 {
		t.Fatalf("attempts: %d", n)
	}
	got := logs.lines("webhook delivery failed")
	if len(got) != 1 || !strings.Contains(got[0], "level=WARN") || !strings.Contains(got[0], "webhook="+wh) ||
		!strings.Contains(got[0], "HTTP 500") || !strings.Contains(got[0], "/hook") {
		t.Fatalf("first minute: %q", got)
	}
	clk.Add(61 * time.Second) // the three retries are due
	step(t, s)
	got = logs.lines("webhook delivery failed")
	if len(got) != 2 || !strings.Contains(got[1], "suppressed=2") {
		t.Fatalf("after a minute: %q", got)
	}
	for _, l := range got {
		if strings.Contains(l, "supersecret") || strings.Contains(l, "topsecret") {
			t.Fatalf("secret logged: %s", l)
		}
	}
}

func TestFailureLogWindowIsPerWebhook(t *testing.T) {
	var l failureLog
	now := time.Now()
	if ok, _ := l.allow("a", now); !ok {
		t.Fatal("first failure of a")
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Fatal("first failure of b is not a's")
	}
	if ok, _ := l.allow("a", now.Add(59*time.Second)); ok {
		t.Fatal("a twice in a minute")
	}
	if ok, n := l.allow("a", now.Add(60*time.Second)); !ok || n != 1 {
		t.Fatalf("a after a minute: %v %d", ok, n)
	}
}
