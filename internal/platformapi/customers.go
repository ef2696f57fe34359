package platformapi

import (
	"net/http"
	"strings"

	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
)

func registerCustomers(s *api.Server) {
	s.HandleOn(api.Platform, "GET /customers", listCustomers(s))
	s.HandleOn(api.Platform, "POST /customers", s.CreateCustomer)
	s.HandleOn(api.Platform, "GET /customers/{id}", s.GetCustomer)
	s.HandleOn(api.Platform, "PATCH /customers/{id}", s.UpdateCustomer)
}

// listCustomers filters by name (substring, case-insensitive) and
// external_customer_id (exact), newest first.
func listCustomers(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		q := r.URL.Query()
		f := store.CustomerFilter{NameCont: strings.TrimSpace(q.Get("name"))}
		if v := strings.TrimSpace(q.Get("external_customer_id")); v != "" {
			f.ExternalCustomerIDEq = &v
		}
		p := api.PageOf(r)
		items, total, err := store.ListCustomers(r.Context(), s.DB.Read(), a.ProjectID, f, p)
		if err != nil {
			return err
		}
		WriteOffsetList(w, api.RenderCustomers(items), p, total)
		return nil
	}
}
