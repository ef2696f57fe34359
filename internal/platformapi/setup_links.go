package platformapi

import (
	"net/http"
	"time"

	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/platform"
)

// registerSetupLinks serves a customer's setup links with /api/v1's
// handlers: the same validation, the same rule that a new active link
// revokes the previous one, the same rendering (Kapso's SetupLink).
func registerSetupLinks(s *api.Server) {
	sh := platform.NewShared(s)
	s.HandleOn(api.Platform, "GET /customers/{customer_id}/setup_links", sh.ListSetupLinks)
	s.HandleOn(api.Platform, "POST /customers/{customer_id}/setup_links", sh.CreateSetupLink)
	s.HandleOn(api.Platform, "PATCH /customers/{customer_id}/setup_links/{id}", sh.UpdateSetupLink)
}

func registerUsers(s *api.Server) {
	s.HandleOn(api.Platform, "GET /users", listUsers(s))
}

// userView is a project member as the Platform API renders it; a member
// without a name has none rendered (Kapso's name is not nullable).
type userView struct {
	ID        string    `json:"id"`
	Name      *string   `json:"name,omitempty"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func listUsers(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		p := api.PageOf(r)
		items, total, err := platform.ListUsers(r.Context(), s.DB.Read(), a.ProjectID, platform.UserFilter{}, p)
		if err != nil {
			return err
		}
		out := make([]userView, len(items))
		for i, u := range items {
			out[i] = userView{ID: u.ID, Name: u.Name, Email: u.Email, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
		}
		WriteOffsetList(w, out, p, total)
		return nil
	}
}
