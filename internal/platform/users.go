package platform

import (
	"net/http"
	"net/mail"
	"regexp"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
)

var emailShape = regexp.MustCompile(`^[^@\s<>",]+@[^@\s<>",]+\.[^@\s<>",]+$`)

// NormalizeEmail returns the stored form of an email address (trimmed,
// lower-cased, so uniqueness is case-insensitive) and whether it is valid.
func NormalizeEmail(s string) (string, bool) {
	e := strings.ToLower(strings.TrimSpace(s))
	if len(e) > 255 || !emailShape.MatchString(e) {
		return e, false
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e {
		return e, false
	}
	return e, true
}

// DecodeUser validates email and name from f and applies them to u. The
// CLI uses it too, so both paths accept the same users.
func DecodeUser(f *api.Fields, u *parley.User, creating bool) error {
	rd := &reader{f: f}
	email := rd.str("email")
	name := rd.str("name")
	if rd.err != nil {
		return rd.err
	}
	var v validation
	if creating || f.Has("email") {
		if e, ok := NormalizeEmail(str(email)); e == "" {
			v.add("Email can't be blank")
		} else if !ok {
			v.add("Email is invalid")
		} else {
			u.Email = e
		}
	}
	if f.Has("name") {
		switch n := str(name); {
		case n == "":
			u.Name = nil
		case len(n) > 255:
			v.add("Name is too long (maximum is 255 characters)")
		default:
			u.Name = &n
		}
	}
	return v.err()
}

func (h *handlers) listUsers(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	var f UserFilter
	f.EmailCont, _ = api.QParam(r, "email_cont")
	p := api.PageOf(r)
	items, total, err := ListUsers(r.Context(), h.s.DB.Read(), a.ProjectID, f, p)
	if err != nil {
		return err
	}
	api.WriteList(w, items, p, total)
	return nil
}

func (h *handlers) getUser(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "User")
	if err != nil {
		return err
	}
	u, err := GetUser(r.Context(), h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, u)
	return nil
}

func (h *handlers) createUser(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "user")
	if err != nil {
		return err
	}
	u := &parley.User{ProjectID: a.ProjectID}
	if err := DecodeUser(f, u, true); err != nil {
		return err
	}
	if err := h.s.DB.Tx(r.Context(), func(tx *store.Conn) error { return CreateUser(r.Context(), tx, u) }); err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, u)
	return nil
}

func (h *handlers) updateUser(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "User")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "user")
	if err != nil {
		return err
	}
	var out *parley.User
	err = h.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		u, err := GetUser(r.Context(), tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		if err := DecodeUser(f, u, false); err != nil {
			return err
		}
		out = u
		return UpdateUser(r.Context(), tx, u)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, out)
	return nil
}

func (h *handlers) deleteUser(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "User")
	if err != nil {
		return err
	}
	if err := DeleteUser(r.Context(), h.s.DB.Write(), a.ProjectID, id); err != nil {
		return err
	}
	api.NoContent(w)
	return nil
}
