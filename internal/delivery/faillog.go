package delivery

import (
	"log/slog"
	"net/url"
	"sync"
	"time"
)

// failureLogEvery is how often a failing webhook may write a warn line: a
// receiver that is down fails every attempt of every event, and one line a
// minute (with how many were left out) says as much as a thousand.
const failureLogEvery = time.Minute

// failureLog rate-limits the warn lines of failed attempts per webhook.
type failureLog struct {
	mu   sync.Mutex
	last map[string]*failureWindow
}

type failureWindow struct {
	at         time.Time
	suppressed int
}

// allow reports whether a failure of webhook at now may be logged, and how
// many failures of that webhook were suppressed since the last line.
func (l *failureLog) allow(webhook string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]*failureWindow{}
	}
	w := l.last[webhook]
	if w != nil && now.Sub(w.at) < failureLogEvery && now.Sub(w.at) >= 0 {
		w.suppressed++
		return false, 0
	}
	if w == nil {
		// Forget webhooks that have not failed for a while, so the map
		// stays as small as the set of currently failing webhooks.
		if len(l.last) > 1024 {
			for id, o := range l.last {
				if now.Sub(o.at) >= failureLogEvery {
					delete(l.last, id)
				}
			}
		}
		w = &failureWindow{}
		l.last[webhook] = w
	}
	suppressed, w.at, w.suppressed = w.suppressed, now, 0
	return true, suppressed
}

// logFailure writes a failed attempt at warn, at most once a minute per
// webhook. Only the URL's scheme, host and path are logged: a query or
// user info may hold a receiver's token.
func (s *Service) logFailure(j *job, res result) {
	ok, suppressed := s.failures.allow(j.WebhookID, s.Now())
	if !ok {
		return
	}
	attrs := []any{
		slog.String("webhook", j.WebhookID),
		slog.String("delivery", j.ID),
		slog.String("event", j.Event),
		slog.String("error", res.err),
		slog.Int("attempt", j.AttemptsCount),
	}
	if j.Webhook != nil {
		attrs = append(attrs, slog.String("url", redactURL(j.Webhook.URL)))
	}
	if res.status != 0 {
		attrs = append(attrs, slog.Int("status", res.status))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	s.log.Warn("webhook delivery failed", attrs...)
}

// redactURL drops user info, query and fragment from a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
