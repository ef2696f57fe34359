// Package api serves Kapso's v1 REST API (/api/v1, X-API-Key) and Parley's
// extensions. Handlers decode, validate, call the store and render; they never
// write SQL. Errors are rendered in exactly one place (writeError).
package api

import (
	"log/slog"
	"net/http"
	"sync"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// Deps are the collaborators the API needs. Optional hooks may be nil.
type Deps struct {
	DB     *store.DB
	Box    *secrets.Box
	Log    *slog.Logger
	Config config.Config
	// Hooks into the background machinery; nil hooks are skipped.
	Hooks Hooks
	// Graph returns the Graph API client for a config: Meta's for production
	// configs, the built-in simulator's for sandbox configs. Set by the app.
	Graph func(cfg *parley.WhatsAppConfig) *whatsapp.Client
}

// Hooks wake background workers after a commit, so work starts at once
// instead of at the next poll. They never carry data: the database does.
type Hooks struct {
	JobsEnqueued  func()
	EventsWritten func()
}

// Server is the HTTP API.
type Server struct {
	Deps
	mux     *http.ServeMux
	limiter *rateLimiter

	keysMu sync.Mutex
	keys   map[string]keyEntry
}

// New builds the API server.
func New(d Deps) *Server {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Server{Deps: d, mux: http.NewServeMux()}
	s.limiter = newRateLimiter(d.Config.RateLimitPerMinute)
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.observe(s.mux).ServeHTTP(&jsonErrors{ResponseWriter: w}, r)
}

// HandleRaw registers a route outside /api/v1 (no API key, no rate limit),
// such as Meta's webhook endpoint or the sandbox's Graph routes.
func (s *Server) HandleRaw(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// JobsEnqueued wakes the job runner after a commit that enqueued jobs.
func (s *Server) JobsEnqueued() {
	if s.Hooks.JobsEnqueued != nil {
		s.Hooks.JobsEnqueued()
	}
}

// EventsWritten wakes the delivery workers after a commit that wrote events.
func (s *Server) EventsWritten() {
	if s.Hooks.EventsWritten != nil {
		s.Hooks.EventsWritten()
	}
}
