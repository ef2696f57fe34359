package contacts

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
)

// conversation returns the conversation id of the path after checking it is
// the project's; anything else is a 404 "Conversation not found".
func (h *handlers) conversation(r *http.Request, c *store.Conn, a *api.Auth) (string, error) {
	id, err := api.PathID(r, "conversation_id", "Conversation")
	if err != nil {
		return "", err
	}
	ok, err := ConversationExists(r.Context(), c, a.ProjectID, id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", parley.NotFound("Conversation")
	}
	return id, nil
}

// userField reads user_id and checks it is one of the project's users. A
// user of another project is a plain 404, like any other foreign id.
func userField(r *http.Request, c *store.Conn, a *api.Auth, f *api.Fields) (string, error) {
	v, _, err := f.String("user_id")
	if err != nil {
		return "", err
	}
	if v == nil || strings.TrimSpace(*v) == "" {
		return "", parley.Invalid("Validation failed", "User can't be blank")
	}
	id := strings.ToLower(strings.TrimSpace(*v))
	if !api.IsUUID(id) {
		return "", parley.NotFound("User")
	}
	ok, err := UserExists(r.Context(), c, a.ProjectID, id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", parley.NotFound("User")
	}
	return id, nil
}

func (h *handlers) listAssignments(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	c := h.s.DB.Read()
	conv, err := h.conversation(r, c, a)
	if err != nil {
		return err
	}
	p := api.PageOf(r)
	list, total, err := ListAssignments(r.Context(), c, a.ProjectID, conv, p)
	if err != nil {
		return err
	}
	h.paginationHeaders(w, r, p, total)
	api.WriteList(w, list, p, total)
	return nil
}

// paginationHeaders sets the headers Kapso documents on the assignments
// list (those of Rails' api-pagination): Total, Total-Pages, Per-Page, Page
// and an RFC 8288 Link with first/prev/next/last.
func (h *handlers) paginationHeaders(w http.ResponseWriter, r *http.Request, p parley.Page, total int) {
	meta := parley.NewPageMeta(p, total)
	hd := w.Header()
	hd.Set("Total", strconv.Itoa(total))
	hd.Set("Total-Pages", strconv.Itoa(meta.TotalPages))
	hd.Set("Per-Page", strconv.Itoa(p.PerPage))
	hd.Set("Page", strconv.Itoa(p.Page))
	link := func(page int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page))
		q.Set("per_page", strconv.Itoa(p.PerPage))
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s%s>; rel=\"%s\"", h.s.Config.PublicURL, u.String(), rel)
	}
	last := max(meta.TotalPages, 1)
	var links []string
	if p.Page > 1 {
		links = append(links, link(1, "first"), link(min(p.Page-1, last), "prev"))
	}
	if p.Page < meta.TotalPages {
		links = append(links, link(p.Page+1, "next"), link(last, "last"))
	}
	if len(links) > 0 {
		hd.Set("Link", strings.Join(links, ", "))
	}
}

func (h *handlers) createAssignment(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "conversation_assignment")
	if err != nil {
		return err
	}
	out := &parley.ConversationAssignment{ProjectID: a.ProjectID, Active: true}
	err = h.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		conv, err := h.conversation(r, tx, a)
		if err != nil {
			return err
		}
		if out.UserID, err = userField(r, tx, a, f); err != nil {
			return err
		}
		if out.Notes, _, err = f.String("notes"); err != nil {
			return err
		}
		if active, err := ActiveAssignmentID(r.Context(), tx, conv); err != nil {
			return err
		} else if active != "" {
			return errAlreadyAssigned()
		}
		out.ConversationID = conv
		return CreateAssignment(r.Context(), tx, out)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, out)
	return nil
}

func (h *handlers) updateAssignment(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "conversation_assignment")
	if err != nil {
		return err
	}
	var out *parley.ConversationAssignment
	err = h.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		conv, err := h.conversation(r, tx, a)
		if err != nil {
			return err
		}
		id, err := api.PathID(r, "id", "Conversation assignment")
		if err != nil {
			return err
		}
		as, err := GetAssignment(r.Context(), tx, a.ProjectID, conv, id)
		if err != nil {
			return err
		}
		if f.Has("user_id") {
			if as.UserID, err = userField(r, tx, a, f); err != nil {
				return err
			}
		}
		if notes, ok, err := f.String("notes"); err != nil {
			return err
		} else if ok {
			as.Notes = notes
		}
		active, ok, err := f.Bool("active")
		if err != nil {
			return err
		}
		if ok {
			if active == nil {
				return parley.Invalid("Validation failed", "Active must be true or false")
			}
			if *active && !as.Active {
				// Reactivating must respect the one-active rule.
				if cur, err := ActiveAssignmentID(r.Context(), tx, conv); err != nil {
					return err
				} else if cur != "" && cur != as.ID {
					return errAlreadyAssigned()
				}
			}
			as.Active = *active
		}
		out = as
		return UpdateAssignment(r.Context(), tx, as)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, out)
	return nil
}

// ---- agent executions ----

// Agent executions belong to Kapso's AI agents, which Parley does not run:
// a conversation never has any, but the routes answer as Kapso's do.

func (h *handlers) listAgentExecutions(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	if _, err := h.conversation(r, h.s.DB.Read(), a); err != nil {
		return err
	}
	api.WriteList(w, []struct{}{}, api.PageOf(r), 0)
	return nil
}

func (h *handlers) getAgentExecution(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	if _, err := h.conversation(r, h.s.DB.Read(), a); err != nil {
		return err
	}
	return parley.NotFound("Agent execution")
}
