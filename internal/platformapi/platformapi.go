// Package platformapi serves Kapso's Platform API at /platform/v1: customers,
// setup links, phone numbers (addressed by Meta's phone_number_id), webhooks
// and their deliveries, broadcasts, display names, users and the rest of
// Kapso's current API around the messages.
//
// It is a thin adapter: every handler decodes, validates, calls an existing
// domain operation (internal/platform, internal/broadcasts, internal/delivery,
// …) and renders; nothing here writes SQL, so what /api/v1 creates is read
// and changed here and the other way round.
//
// Conventions shared by every file of the package:
//   - routes are registered with s.HandleOn(api.Platform, "METHOD /path", h);
//     each file has its own registerX(s) called from Register;
//   - success bodies are {"data": ...} (api.WriteData); offset-paged lists
//     use api.PageOf and api.WriteList ({data, meta}); cursor-paged lists use
//     CursorOf and WriteCursorList ({data, paging});
//   - errors are *parley.Error, rendered in Kapso's {"error","message"} shape.
package platformapi

import (
	"net/http"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/openapi"
)

// Register adds every /platform/v1 route to s.
func Register(s *api.Server) {
	s.HandleRaw("GET "+api.Platform.Prefix+"/openapi.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.PlatformJSON())
	}))
	// Any other path under the prefix is a 404 in Kapso's shape (the mux
	// prefers every longer pattern registered below).
	s.HandleRaw(api.Platform.Prefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteErrorBody(w, &parley.Error{Code: parley.ENOTFOUND, Title: "Not found", Message: "No route matches " + r.Method + " " + r.URL.Path})
	}))
	registerCustomers(s)
	registerSetupLinks(s)
	registerPhoneNumbers(s)
	registerUsers(s)
	registerWebhooks(s)
}
