// Package api serves Kapso's v1 REST API (/api/v1, X-API-Key) and Parley's
// extensions. Handlers decode, validate, call the store and render; they never
// write SQL. Errors are rendered in exactly one place (writeError).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
)

// Deps are the collaborators the API needs. Optional hooks may be nil.
type Deps struct {
	DB     *store.DB
	Box    *secrets.Box
	Log    *slog.Logger
	Config config.Config
	// Extra lets other packages (inbound webhooks, the sandbox, media) mount
	// their own routes on the same mux.
	Extra []func(mux *http.ServeMux)
	// Hooks into the background machinery; nil hooks are skipped.
	Hooks Hooks
}

// Hooks wake background workers after a commit, so work starts at once
// instead of at the next poll. They never carry data: the database does.
type Hooks struct {
	JobsEnqueued   func()
	EventsWritten  func()
	SandboxInbound func(ctx context.Context, configID string, msg []byte) (wamid string, err error)
	ConfigHealth   func(ctx context.Context, configID string) (any, error)
	Redeliver      func(ctx context.Context, projectID, deliveryID string) error
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
	for _, f := range d.Extra {
		f(s.mux)
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.observe(s.mux).ServeHTTP(&jsonErrors{ResponseWriter: w}, r)
}

func (s *Server) jobsEnqueued() {
	if s.Hooks.JobsEnqueued != nil {
		s.Hooks.JobsEnqueued()
	}
}

func (s *Server) eventsWritten() {
	if s.Hooks.EventsWritten != nil {
		s.Hooks.EventsWritten()
	}
}
