package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

func (s *Server) routesPlatform() {
	s.Handle("GET /projects/{project_id}", s.getProject)
	s.Handle("GET /customers", s.listCustomers)
	s.Handle("POST /customers", s.createCustomer)
	s.Handle("GET /customers/{id}", s.getCustomer)
	s.Handle("PATCH /customers/{id}", s.updateCustomer)
	s.Handle("PUT /customers/{id}", s.updateCustomer)
	// DELETE /customers/{id} is registered by internal/platform, which
	// announces the deletion of the customer's configs.
}

// customerView is a customer as the API renders it (Kapso's Customer):
// external_customer_id, which the schema does not allow to be null, is
// omitted when unset.
type customerView struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	ExternalCustomerID *string   `json:"external_customer_id,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

func renderCustomer(c *parley.Customer) customerView {
	return customerView{ID: c.ID, Name: c.Name, ExternalCustomerID: c.ExternalCustomerID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func renderCustomers(cs []*parley.Customer) []customerView {
	out := make([]customerView, len(cs))
	for i, c := range cs {
		out[i] = renderCustomer(c)
	}
	return out
}

// getProject returns the key's own project; any other id is a 404.
func (s *Server) getProject(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := PathID(r, "project_id", "Project")
	if err != nil {
		return err
	}
	if id != a.ProjectID {
		return parley.NotFound("Project")
	}
	p, err := store.GetProject(r.Context(), s.DB.Read(), id)
	if err != nil {
		return err
	}
	WriteData(w, http.StatusOK, p)
	return nil
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request, a *Auth) error {
	var f store.CustomerFilter
	f.NameCont, _ = QParam(r, "name_cont")
	if v, ok := QParam(r, "external_customer_id_eq"); ok {
		f.ExternalCustomerIDEq = &v
	}
	p := PageOf(r)
	items, total, err := store.ListCustomers(r.Context(), s.DB.Read(), a.ProjectID, f, p)
	if err != nil {
		return err
	}
	WriteList(w, renderCustomers(items), p, total)
	return nil
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := PathID(r, "id", "Customer")
	if err != nil {
		return err
	}
	c, err := store.GetCustomer(r.Context(), s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	WriteData(w, http.StatusOK, renderCustomer(c))
	return nil
}

// customerFields validates name and external_customer_id.
func customerFields(f *Fields, c *parley.Customer, creating bool) error {
	var col Collect
	name := col.Str(f, "name")
	ext := col.Str(f, "external_customer_id")
	if col.err != nil {
		return col.err
	}
	var errs []string
	if name != nil || creating || f.Has("name") {
		if name == nil || strings.TrimSpace(*name) == "" {
			errs = append(errs, "Name can't be blank")
		} else if len(*name) > 255 {
			errs = append(errs, "Name is too long (maximum is 255 characters)")
		} else {
			c.Name = strings.TrimSpace(*name)
		}
	}
	if f.Has("external_customer_id") {
		if ext != nil && len(*ext) > 255 {
			errs = append(errs, "External customer id is too long (maximum is 255 characters)")
		}
		c.ExternalCustomerID = ext
	}
	if len(errs) > 0 {
		return parley.Invalid("Validation failed", errs...)
	}
	return nil
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request, a *Auth) error {
	f, err := s.DecodeFields(w, r, "customer")
	if err != nil {
		return err
	}
	c := &parley.Customer{ProjectID: a.ProjectID}
	if err := customerFields(f, c, true); err != nil {
		return err
	}
	if err := store.CreateCustomer(r.Context(), s.DB.Write(), c); err != nil {
		return err
	}
	WriteData(w, http.StatusCreated, renderCustomer(c))
	return nil
}

func (s *Server) updateCustomer(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := PathID(r, "id", "Customer")
	if err != nil {
		return err
	}
	f, err := s.DecodeFields(w, r, "customer")
	if err != nil {
		return err
	}
	var out *parley.Customer
	err = s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		c, err := store.GetCustomer(r.Context(), tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		if err := customerFields(f, c, false); err != nil {
			return err
		}
		out = c
		return store.UpdateCustomer(r.Context(), tx, c)
	})
	if err != nil {
		return err
	}
	WriteData(w, http.StatusOK, renderCustomer(out))
	return nil
}

// The customer handlers below serve /platform/v1 too (its routes name the
// customer {id} as well), so both surfaces apply the same rules.

// CreateCustomer handles POST /customers.
func (s *Server) CreateCustomer(w http.ResponseWriter, r *http.Request, a *Auth) error {
	return s.createCustomer(w, r, a)
}

// GetCustomer handles GET /customers/{id}.
func (s *Server) GetCustomer(w http.ResponseWriter, r *http.Request, a *Auth) error {
	return s.getCustomer(w, r, a)
}

// UpdateCustomer handles PATCH /customers/{id}.
func (s *Server) UpdateCustomer(w http.ResponseWriter, r *http.Request, a *Auth) error {
	return s.updateCustomer(w, r, a)
}

// RenderCustomers renders customers as both surfaces do.
func RenderCustomers(cs []*parley.Customer) any { return renderCustomers(cs) }
