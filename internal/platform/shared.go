package platform

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
)

// Shared holds the handlers of this package that Kapso's Platform API
// (internal/platformapi) serves as well, so both surfaces decode, check and
// render the same way. Their routes name the path values as /api/v1's do:
// {customer_id} and {id} for setup links.
type Shared struct{ h *handlers }

// NewShared returns the shared handlers on s.
func NewShared(s *api.Server) Shared { return Shared{h: &handlers{s: s}} }

// ListSetupLinks handles GET /customers/{customer_id}/setup_links.
func (x Shared) ListSetupLinks(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	return x.h.listSetupLinks(w, r, a)
}

// CreateSetupLink handles POST /customers/{customer_id}/setup_links.
func (x Shared) CreateSetupLink(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	return x.h.createSetupLink(w, r, a)
}

// UpdateSetupLink handles PATCH /customers/{customer_id}/setup_links/{id}.
func (x Shared) UpdateSetupLink(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	return x.h.updateSetupLink(w, r, a)
}

// setupLinkFilter reads the setup link list filters: status, created_after,
// created_before (plain names, as Kapso's Platform API has them; /api/v1
// accepts them too). A malformed value is a 400.
func setupLinkFilter(r *http.Request) (SetupLinkFilter, error) {
	var f SetupLinkFilter
	q := r.URL.Query()
	if v := strings.ToLower(strings.TrimSpace(q.Get("status"))); v != "" {
		if !slices.Contains([]string{parley.SetupLinkActive, parley.SetupLinkUsed, parley.SetupLinkExpired, parley.SetupLinkRevoked}, v) {
			return f, &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters", Message: "status must be one of active, used, expired, revoked"}
		}
		f.Status = v
	}
	for _, t := range []struct {
		name string
		dst  **time.Time
	}{{"created_after", &f.CreatedAfter}, {"created_before", &f.CreatedBefore}} {
		if v := strings.TrimSpace(q.Get(t.name)); v != "" {
			tm, err := api.ParseTime(v)
			if err != nil {
				return f, &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters", Message: t.name + " must be an ISO 8601 time"}
			}
			*t.dst = &tm
		}
	}
	return f, nil
}
