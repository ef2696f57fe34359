package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/parleyhq/parley"
)

// statusOf maps an error code to its HTTP status: the one place that does.
func statusOf(code string) int {
	switch code {
	case parley.EINVALID:
		return http.StatusUnprocessableEntity
	case parley.EBADREQUEST:
		return http.StatusBadRequest
	case parley.ENOTFOUND:
		return http.StatusNotFound
	case parley.ECONFLICT:
		return http.StatusConflict
	case parley.EFORBIDDEN:
		return http.StatusForbidden
	case parley.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case parley.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case parley.ERATELIMIT:
		return http.StatusTooManyRequests
	case parley.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case parley.EUPSTREAM:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// writeError renders err in Kapso's error shape. Errors that are not
// *parley.Error are logged and hidden behind a generic 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *parley.Error
	if !errors.As(err, &e) {
		s.Log.ErrorContext(r.Context(), "internal error", slog.String("error", err.Error()),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		e = &parley.Error{Code: parley.EINTERNAL, Title: "An unexpected error occurred", Message: "Internal server error"}
	}
	writeErrorBody(w, e)
}

func writeErrorBody(w http.ResponseWriter, e *parley.Error) {
	body := map[string]any{}
	for k, v := range e.Extra {
		body[k] = v
	}
	if e.Title != "" {
		body["error"] = e.Title
	}
	if e.Message != "" {
		body["message"] = e.Message
	}
	if len(e.Details) > 0 {
		body["errors"] = e.Details
	}
	writeJSON(w, statusOf(e.Code), body)
}

// writeJSON writes v as the JSON response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"An unexpected error occurred"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeData writes {"data": v}.
func writeData(w http.ResponseWriter, status int, v any) {
	writeJSON(w, status, map[string]any{"data": v})
}

// writeList writes {"data": items, "meta": {...}}.
func writeList[T any](w http.ResponseWriter, items []T, p parley.Page, total int) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": items, "meta": parley.NewPageMeta(p, total)})
}

// noContent writes 204.
func noContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
