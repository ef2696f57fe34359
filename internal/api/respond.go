package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// StatusOf maps an error code to its HTTP status: the one place that does.
func StatusOf(code string) int {
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

// WriteError renders err in Kapso's error shape. Errors that are not
// *parley.Error are logged and hidden behind a generic 500.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e *parley.Error
	if !errors.As(err, &e) && store.IsUnavailable(err) {
		s.Log.WarnContext(r.Context(), "database unavailable", slog.String("error", err.Error()),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		e = &parley.Error{Code: parley.EUNAVAILABLE, Title: "Service unavailable", Message: "The database is unavailable; retry the request"}
	}
	if e == nil {
		s.Log.ErrorContext(r.Context(), "internal error", slog.String("error", err.Error()),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		e = &parley.Error{Code: parley.EINTERNAL, Title: "An unexpected error occurred", Message: "Internal server error"}
	}
	WriteErrorBody(w, e)
}

func WriteErrorBody(w http.ResponseWriter, e *parley.Error) {
	body := map[string]any{}
	for k, v := range e.Extra {
		body[k] = v
	}
	if e.Title != "" {
		body["error"] = e.Title
	}
	// Every error carries a message (README decision 2): the detail, else
	// the validation errors joined as Rails words them, else the title.
	switch {
	case e.Message != "":
		body["message"] = e.Message
	case len(e.Details) > 0:
		body["message"] = strings.Join(e.Details, ", ")
	case e.Title != "":
		body["message"] = e.Title
	}
	if len(e.Details) > 0 {
		body["errors"] = e.Details
	}
	WriteJSON(w, StatusOf(e.Code), body)
}

// WriteJSON writes v as the JSON response body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"An unexpected error occurred"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteData writes {"data": v}.
func WriteData(w http.ResponseWriter, status int, v any) {
	WriteJSON(w, status, map[string]any{"data": v})
}

// WriteList writes {"data": items, "meta": {...}}.
func WriteList[T any](w http.ResponseWriter, items []T, p parley.Page, total int) {
	if items == nil {
		items = []T{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"data": items, "meta": parley.NewPageMeta(p, total)})
}

// NoContent writes 204.
func NoContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
