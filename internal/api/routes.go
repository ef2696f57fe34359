package api

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/openapi"
)

// routes registers every route. Each area keeps its table in its own file
// (routesPlatform in platform.go and so on); this is the index.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DB.Ping(r.Context()); err != nil {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "store unreachable"})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.JSON())
	})
	s.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		WriteErrorBody(w, &parley.Error{Code: parley.ENOTFOUND, Title: "Not found", Message: "No route matches " + r.Method + " " + r.URL.Path})
	})

	s.routesPlatform()
	s.routesIndex()
}

// jsonErrors rewrites the standard mux's plain-text 404 and 405 answers into
// Kapso's JSON error shape.
type jsonErrors struct {
	http.ResponseWriter
	swallow bool
}

func (w *jsonErrors) WriteHeader(code int) {
	if (code == http.StatusMethodNotAllowed || code == http.StatusNotFound) &&
		strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.swallow = true
		w.Header().Del("X-Content-Type-Options")
		title := "Not found"
		if code == http.StatusMethodNotAllowed {
			title = "Method not allowed"
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.ResponseWriter.WriteHeader(code)
		_, _ = w.ResponseWriter.Write([]byte(`{"error":"` + title + `"}`))
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrors) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *jsonErrors) Unwrap() http.ResponseWriter { return w.ResponseWriter }
