// Package contacts serves Kapso's WhatsApp contacts, contact notes,
// conversation assignments, calls and call permissions, and the (always
// empty) agent executions of a conversation. It also exports what the
// inbound path and the message sender need: Upsert and Resolve for
// contacts, RecordCall and RecordCallPermission for Meta's calling webhooks.
// SQL lives in store.go; handlers only decode, validate, call it and render.
package contacts

import (
	"context"
	"net/http"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
)

// Register adds the package's routes to the API server.
func Register(s *api.Server) {
	h := &handlers{s: s}
	s.Handle("GET /whatsapp_contacts", h.listContacts)
	s.Handle("POST /whatsapp_contacts", h.createContact)
	s.Handle("GET /whatsapp_contacts/{identifier}", h.getContact)
	s.Handle("PATCH /whatsapp_contacts/{identifier}", h.updateContact)

	s.Handle("GET /whatsapp_contacts/{identifier}/notes", h.listNotes)
	s.Handle("POST /whatsapp_contacts/{identifier}/notes", h.createNote)
	s.Handle("GET /whatsapp_contacts/{identifier}/notes/{note_id}", h.getNote)
	s.Handle("PATCH /whatsapp_contacts/{identifier}/notes/{note_id}", h.updateNote)
	s.Handle("DELETE /whatsapp_contacts/{identifier}/notes/{note_id}", h.deleteNote)

	s.Handle("GET /whatsapp_contacts/{identifier}/call_permissions", h.listCallPermissions)
	s.Handle("GET /whatsapp_contacts/{identifier}/call_permissions/{whatsapp_config_id}", h.getCallPermission)
	s.Handle("GET /whatsapp_calls", h.listCalls)
	s.Handle("GET /whatsapp_calls/{id}", h.getCall)

	s.Handle("GET /whatsapp_conversations/{conversation_id}/conversation_assignments", h.listAssignments)
	s.Handle("POST /whatsapp_conversations/{conversation_id}/conversation_assignments", h.createAssignment)
	s.Handle("PATCH /whatsapp_conversations/{conversation_id}/conversation_assignments/{id}", h.updateAssignment)

	s.Handle("GET /whatsapp_conversations/{conversation_id}/agent_executions", h.listAgentExecutions)
	s.Handle("GET /whatsapp_conversations/{conversation_id}/agent_executions/{id}", h.getAgentExecution)
}

type handlers struct{ s *api.Server }

// Resolve finds a project's contact by identifier: its UUID, or a phone
// number in any format ("+56 9 1111 2222" and "56911112222" are the same
// contact). An unknown identifier is a 404 "Contact not found".
func Resolve(ctx context.Context, c *store.Conn, projectID, identifier string) (*parley.Contact, error) {
	identifier = strings.TrimSpace(identifier)
	if api.IsUUID(identifier) {
		return GetContact(ctx, c, projectID, strings.ToLower(identifier))
	}
	wa := parley.NormalizePhone(identifier)
	if !parley.ValidPhone(wa) {
		return nil, parley.NotFound("Contact")
	}
	return GetContactByWaID(ctx, c, projectID, wa)
}

func (h *handlers) resolve(r *http.Request, c *store.Conn, a *api.Auth) (*parley.Contact, error) {
	return Resolve(r.Context(), c, a.ProjectID, r.PathValue("identifier"))
}

// contactView is a contact as the API renders it (Kapso's WhatsappContact):
// profile_name, which the schema does not allow to be null, is omitted until
// known.
type contactView struct {
	*parley.Contact
	ProfileName *string `json:"profile_name,omitempty"`
}

func renderContact(ct *parley.Contact) contactView {
	return contactView{Contact: ct, ProfileName: ct.ProfileName}
}

func renderContacts(cs []*parley.Contact) []contactView {
	out := make([]contactView, len(cs))
	for i, ct := range cs {
		out[i] = renderContact(ct)
	}
	return out
}

func (h *handlers) listContacts(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	var f ContactFilter
	if v, ok := api.QParam(r, "customer_id_eq"); ok {
		v = strings.ToLower(v)
		f.CustomerIDEq = &v
		f.NoMatch = f.NoMatch || !api.IsUUID(v)
	}
	if v, ok := api.QParam(r, "customer_external_customer_id_eq"); ok {
		f.CustomerExternalIDEq = &v
	}
	// Ransack: _null=false means "not null", _not_null=false means "null".
	if v, ok := api.QBool(r, "customer_id_null"); ok {
		f.CustomerIDNull = &v
	}
	if v, ok := api.QBool(r, "customer_id_not_null"); ok {
		isNull := !v
		if f.CustomerIDNull != nil && *f.CustomerIDNull != isNull {
			f.NoMatch = true
		}
		f.CustomerIDNull = &isNull
	}
	if v, ok := api.QParam(r, "profile_name_cont"); ok {
		f.ProfileNameCont = v
	}
	if v, ok := api.QParam(r, "wa_id_cont"); ok {
		// wa_ids are digits: "+56 9" searches "569"; a value without
		// digits cannot match any.
		f.WaIDCont = parley.NormalizePhone(v)
		f.NoMatch = f.NoMatch || f.WaIDCont == ""
	}
	var err error
	if f.CreatedAtGteq, err = api.QTime(r, "created_at_gteq"); err != nil {
		return err
	}
	if f.CreatedAtLteq, err = api.QTime(r, "created_at_lteq"); err != nil {
		return err
	}
	p := api.PageOf(r)
	list, total, err := ListContacts(r.Context(), h.s.DB.Read(), a.ProjectID, f, p)
	if err != nil {
		return err
	}
	api.WriteList(w, renderContacts(list), p, total)
	return nil
}

// objectField reads an optional JSON object field; null means empty.
func objectField(f *api.Fields, key string) (parley.JSONObject, bool, error) {
	m, ok, err := f.Object(key)
	if err != nil || !ok {
		return nil, ok, err
	}
	if m == nil {
		return parley.JSONObject{}, true, nil
	}
	return parley.JSONObject(m), true, nil
}

// optText reads an optional string; blank and null both mean "no value".
func optText(f *api.Fields, key string) (*string, bool, error) {
	v, ok, err := f.String(key)
	if err != nil || v == nil {
		return nil, ok, err
	}
	t := strings.TrimSpace(*v)
	if t == "" {
		return nil, ok, nil
	}
	return &t, ok, nil
}

func (h *handlers) createContact(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "contact")
	if err != nil {
		return err
	}
	ct := &parley.Contact{ProjectID: a.ProjectID, Metadata: parley.JSONObject{}}
	raw, _, err := f.String("wa_id")
	if err != nil {
		return err
	}
	if raw == nil || strings.TrimSpace(*raw) == "" {
		return parley.Invalid("Validation failed", "Wa_id can't be blank")
	}
	ct.WaID = parley.NormalizePhone(*raw)
	if !parley.ValidPhone(ct.WaID) {
		return parley.Invalid("Validation failed", "Wa_id is invalid")
	}
	if ct.ProfileName, _, err = optText(f, "profile_name"); err != nil {
		return err
	}
	if m, ok, err := objectField(f, "metadata"); err != nil {
		return err
	} else if ok {
		ct.Metadata = m
	}
	cust, _, err := f.String("customer_id")
	if err != nil {
		return err
	}
	if cust != nil && strings.TrimSpace(*cust) != "" {
		id := strings.ToLower(strings.TrimSpace(*cust))
		if !api.IsUUID(id) {
			return errCustomerMissing()
		}
		ct.CustomerID = &id
	}
	err = h.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		if ct.CustomerID != nil {
			ok, err := CustomerExists(r.Context(), tx, a.ProjectID, *ct.CustomerID)
			if err != nil {
				return err
			}
			if !ok {
				return errCustomerMissing()
			}
		}
		// Checked before inserting so PostgreSQL's transaction is not
		// aborted by the violation; the unique index still guards races.
		if _, err := GetContactByWaID(r.Context(), tx, a.ProjectID, ct.WaID); err == nil {
			return errWaIDTaken()
		} else if !parley.IsNotFound(err) {
			return err
		}
		return CreateContact(r.Context(), tx, ct)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, renderContact(ct))
	return nil
}

func (h *handlers) getContact(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	ct, err := h.resolve(r, h.s.DB.Read(), a)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, renderContact(ct))
	return nil
}

func (h *handlers) updateContact(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "contact")
	if err != nil {
		return err
	}
	name, nameSet, err := optText(f, "profile_name")
	if err != nil {
		return err
	}
	meta, metaSet, err := objectField(f, "metadata")
	if err != nil {
		return err
	}
	var out *parley.Contact
	err = h.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		ct, err := h.resolve(r, tx, a)
		if err != nil {
			return err
		}
		if nameSet {
			ct.ProfileName = name
		}
		if metaSet {
			ct.Metadata = meta
		}
		out = ct
		return UpdateContact(r.Context(), tx, ct)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, renderContact(out))
	return nil
}

// ---- notes ----

func (h *handlers) listNotes(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	c := h.s.DB.Read()
	ct, err := h.resolve(r, c, a)
	if err != nil {
		return err
	}
	p := api.PageOf(r)
	list, total, err := ListNotes(r.Context(), c, a.ProjectID, ct.ID, p)
	if err != nil {
		return err
	}
	api.WriteList(w, list, p, total)
	return nil
}

// noteFields applies a note body; create requires content.
func noteFields(f *api.Fields, n *parley.ContactNote, create bool) error {
	content, ok, err := f.String("content")
	if err != nil {
		return err
	}
	if ok || create {
		if content == nil || strings.TrimSpace(*content) == "" {
			return parley.Invalid("Validation failed", "Content can't be blank")
		}
		n.Content = *content
	}
	name, ok, err := optText(f, "name")
	if err != nil {
		return err
	}
	if ok {
		n.Name = name
	}
	meta, ok, err := objectField(f, "metadata")
	if err != nil {
		return err
	}
	if ok {
		n.Metadata = meta
	}
	return nil
}

func (h *handlers) createNote(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "note")
	if err != nil {
		return err
	}
	n := &parley.ContactNote{ProjectID: a.ProjectID, Metadata: parley.JSONObject{}}
	err = h.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		ct, err := h.resolve(r, tx, a)
		if err != nil {
			return err
		}
		if err := noteFields(f, n, true); err != nil {
			return err
		}
		n.ContactID = ct.ID
		return CreateNote(r.Context(), tx, n)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, n)
	return nil
}

func (h *handlers) getNote(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	c := h.s.DB.Read()
	ct, err := h.resolve(r, c, a)
	if err != nil {
		return err
	}
	id, err := api.PathID(r, "note_id", "Note")
	if err != nil {
		return err
	}
	n, err := GetNote(r.Context(), c, a.ProjectID, ct.ID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, n)
	return nil
}

func (h *handlers) updateNote(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "note")
	if err != nil {
		return err
	}
	var out *parley.ContactNote
	err = h.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		ct, err := h.resolve(r, tx, a)
		if err != nil {
			return err
		}
		id, err := api.PathID(r, "note_id", "Note")
		if err != nil {
			return err
		}
		n, err := GetNote(r.Context(), tx, a.ProjectID, ct.ID, id)
		if err != nil {
			return err
		}
		if err := noteFields(f, n, false); err != nil {
			return err
		}
		out = n
		return UpdateNote(r.Context(), tx, n)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, out)
	return nil
}

func (h *handlers) deleteNote(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	err := h.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		ct, err := h.resolve(r, tx, a)
		if err != nil {
			return err
		}
		id, err := api.PathID(r, "note_id", "Note")
		if err != nil {
			return err
		}
		return DeleteNote(r.Context(), tx, a.ProjectID, ct.ID, id)
	})
	if err != nil {
		return err
	}
	api.NoContent(w)
	return nil
}
