package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/store"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxRoute
)

// RequestID returns the request id of ctx, if any.
func RequestID(ctx context.Context) string {
	v, _ := ctx.Value(ctxRequestID).(string)
	return v
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe wraps every request: request id, panic recovery, access log and
// metrics by route pattern.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := r.Header.Get("X-Request-Id")
		if len(rid) == 0 || len(rid) > 128 || strings.ContainsAny(rid, " \t\r\n") {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			rid = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", rid)
		route := new(string)
		ctx := context.WithValue(context.WithValue(r.Context(), ctxRequestID, rid), ctxRoute, route)
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.Log.ErrorContext(ctx, "panic", slog.String("request_id", rid), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				if sw.status == 0 {
					WriteErrorBody(sw, &parley.Error{Code: parley.EINTERNAL, Title: "An unexpected error occurred"})
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			pattern := *route
			if pattern == "" {
				pattern = r.Pattern
			}
			if pattern == "" {
				pattern = "unmatched"
			}
			d := time.Since(start)
			metrics.HTTPRequests.WithLabelValues(pattern, r.Method, strconv.Itoa(status)).Inc()
			metrics.HTTPDuration.WithLabelValues(pattern, r.Method).Observe(d.Seconds())
			lvl := slog.LevelDebug
			if status >= 500 {
				lvl = slog.LevelError
			}
			s.Log.Log(ctx, lvl, "request", slog.String("request_id", rid), slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Int("status", status), slog.Duration("duration", d))
		}()
		next.ServeHTTP(sw, r)
	})
}

// Auth is what an authenticated request carries: the key's project and,
// when the caller authenticated with a WhatsApp config's own access token
// rather than a project key (the WhatsApp API's Bearer form), that config.
type Auth struct {
	ProjectID string
	// KeyID is the id of the API key used, empty for other credentials.
	KeyID string
	// ConfigID, when set, limits the request to one WhatsApp config.
	ConfigID string
	keyHash  string
}

type HandlerFunc func(w http.ResponseWriter, r *http.Request, a *Auth) error

// Surface is one of Parley's API surfaces mounted under a path prefix:
// Kapso's legacy v1 API, its Platform API, its WhatsApp (Graph-shaped) API.
// Each surface authenticates and renders errors its own way; the routes,
// request ids, rate limit, metrics and access log are shared.
type Surface struct {
	// Name labels the surface in logs and metrics ("v1", "platform", "whatsapp").
	Name string
	// Prefix is the path every route of the surface starts with.
	Prefix string
	// Authenticate resolves the caller. Nil means a project key in X-API-Key.
	Authenticate func(s *Server, w http.ResponseWriter, r *http.Request) (*Auth, error)
	// WriteError renders an error in the surface's shape. Nil means Kapso's
	// {"error", "message"} shape (Server.WriteError).
	WriteError func(s *Server, w http.ResponseWriter, r *http.Request, err error)
}

// V1 is Kapso's legacy API, /api/v1.
var V1 = &Surface{Name: "v1", Prefix: "/api/v1"}

// Platform is Kapso's Platform API, /platform/v1: the same project keys and
// error shape as /api/v1.
var Platform = &Surface{Name: "platform", Prefix: "/platform/v1"}

// Handle registers an authenticated /api/v1 route. pattern is "METHOD /path"
// relative to /api/v1.
func (s *Server) Handle(pattern string, h HandlerFunc) { s.HandleOn(V1, pattern, h) }

// HandleOn registers an authenticated route of surface sf. pattern is
// "METHOD /path" relative to the surface's prefix.
func (s *Server) HandleOn(sf *Surface, pattern string, h HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	full := method + " " + sf.Prefix + path
	s.mux.HandleFunc(full, func(w http.ResponseWriter, r *http.Request) {
		if rp, ok := r.Context().Value(ctxRoute).(*string); ok {
			*rp = full
		}
		var a *Auth
		var err error
		if sf.Authenticate != nil {
			a, err = sf.Authenticate(s, w, r)
		} else {
			a, err = s.Authenticate(w, r)
		}
		if err == nil {
			err = checkQuery(r)
		}
		if err == nil {
			err = h(w, r, a)
		}
		if err != nil {
			if sf.WriteError != nil {
				sf.WriteError(s, w, r, err)
			} else {
				s.WriteError(w, r, err)
			}
		}
	})
}

// Authenticate checks the project key in X-API-Key and applies the per-key
// rate limit.
func (s *Server) Authenticate(w http.ResponseWriter, r *http.Request) (*Auth, error) {
	key := strings.TrimSpace(r.Header.Get("X-API-Key"))
	if key == "" || len(key) > 256 {
		return nil, &parley.Error{Code: parley.EUNAUTHORIZED, Title: "Invalid or missing API key"}
	}
	pid, err := s.keyCache(r.Context(), key)
	if err != nil {
		return nil, err
	}
	hash := store.HashAPIKey(key)
	if err := s.RateLimit(w, hash); err != nil {
		return nil, err
	}
	return &Auth{ProjectID: pid, keyHash: hash}, nil
}

// RateLimit spends one request of the caller's per-minute allowance (keyed
// by a hash of its credential), setting the X-RateLimit headers; over the
// limit it sets Retry-After and returns a rate-limit error.
func (s *Server) RateLimit(w http.ResponseWriter, hash string) error {
	if ok, limit, remaining, retry := s.limiter.allow(hash); limit > 0 {
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(limit))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		if !ok {
			metrics.RateLimited.Inc()
			secs := int(retry.Seconds() + 0.999)
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			return &parley.Error{Code: parley.ERATELIMIT, Title: "Rate limit exceeded",
				Message: fmt.Sprintf("Please retry after %d seconds", max(secs, 1))}
		}
	}
	return nil
}

// keyCache resolves an API key to its project, caching hits for a few
// seconds so the hot path does not query the keys table on every request;
// a revoked key stops working within that time.
func (s *Server) keyCache(ctx context.Context, key string) (string, error) {
	hash := store.HashAPIKey(key)
	now := time.Now()
	s.keysMu.Lock()
	if e, ok := s.keys[hash]; ok && now.Before(e.until) {
		s.keysMu.Unlock()
		return e.projectID, nil
	}
	s.keysMu.Unlock()
	pid, err := store.ProjectIDForKey(ctx, s.DB.Read(), key)
	if err != nil {
		return "", err
	}
	s.keysMu.Lock()
	if s.keys == nil || len(s.keys) > 10000 {
		s.keys = map[string]keyEntry{}
	}
	s.keys[hash] = keyEntry{projectID: pid, until: now.Add(5 * time.Second)}
	s.keysMu.Unlock()
	return pid, nil
}

type keyEntry struct {
	projectID string
	until     time.Time
}

// rateLimiter is a token bucket per API key: limit requests per minute,
// refilled continuously, with a burst of the whole minute's allowance.
type rateLimiter struct {
	perMinute int
	mu        sync.Mutex
	buckets   map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(perMinute int) *rateLimiter {
	return &rateLimiter{perMinute: perMinute, buckets: map[string]*bucket{}}
}

func (l *rateLimiter) allow(key string) (ok bool, limit, remaining int, retryAfter time.Duration) {
	if l.perMinute <= 0 {
		return true, 0, 0, 0
	}
	now := time.Now()
	rate := float64(l.perMinute) / 60
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		b = &bucket{tokens: float64(l.perMinute), last: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(l.perMinute), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return false, l.perMinute, 0, time.Duration((1 - b.tokens) / rate * float64(time.Second))
	}
	b.tokens--
	return true, l.perMinute, int(b.tokens), 0
}
