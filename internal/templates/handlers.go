// Package templates serves Kapso's WhatsApp template endpoints
// (/whatsapp_templates…): drafts, submission to Meta, edits and deletion on
// Meta, sync from Meta (a durable job), sending, and the inbound
// message_template_status_update path (ApplyStatusUpdate).
//
// A template belongs to one WhatsApp Business Account (WABA) and is linked
// to the project's configs on that WABA; every Graph call is made with the
// access token of one of those configs.
package templates

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// handler holds the server the routes run on.
type handler struct{ s *api.Server }

// Register registers the template routes on s.
func Register(s *api.Server) {
	h := &handler{s: s}
	s.Handle("GET /whatsapp_templates", h.list)
	s.Handle("POST /whatsapp_templates", h.create)
	s.Handle("POST /whatsapp_templates/sync", h.sync)
	s.Handle("GET /whatsapp_templates/sync_status", h.syncStatus)
	s.Handle("GET /whatsapp_templates/{template_id}", h.get)
	s.Handle("PATCH /whatsapp_templates/{template_id}", h.update)
	s.Handle("DELETE /whatsapp_templates/{template_id}", h.delete)
	s.Handle("POST /whatsapp_templates/{template_id}/submit", h.submit)
	s.Handle("PATCH /whatsapp_templates/{template_id}/meta", h.editMeta)
	s.Handle("POST /whatsapp_templates/{template_id}/send_template", h.send)
}

// query returns a plain query parameter; ok is false when absent or empty.
func query(r *http.Request, name string) (string, bool) {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	return v, v != ""
}

// eitherParam merges a plain filter and its ransack twin. conflict is true
// when both are given with different values, which matches nothing.
func eitherParam(r *http.Request, plain, ransack string) (v *string, conflict bool) {
	a, aok := query(r, plain)
	b, bok := api.QParam(r, ransack)
	switch {
	case aok && bok && a != b:
		return nil, true
	case aok:
		return &a, false
	case bok:
		return &b, false
	}
	return nil, false
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	var f Filter
	p := api.PageOf(r)
	var c1, c2, c3 bool
	f.CustomerID, c1 = eitherParam(r, "customer_id", "customer_id_eq")
	f.BusinessAccountID, c2 = eitherParam(r, "business_account_id", "business_account_id_eq")
	f.ConfigID, c3 = eitherParam(r, "whatsapp_config_id", "whatsapp_config_id_eq")
	if c1 || c2 || c3 {
		api.WriteList(w, []*parley.Template{}, p, 0)
		return nil
	}
	f.NameCont, _ = api.QParam(r, "name_cont")
	if v, ok := api.QParam(r, "language_code_eq"); ok {
		f.LanguageCode = &v
	}
	if v, ok := api.QParam(r, "category_eq"); ok {
		v = strings.ToUpper(v)
		f.Category = &v
	}
	if v, ok := api.QParam(r, "status_eq"); ok {
		v = strings.ToLower(v)
		f.Status = &v
	}
	items, total, err := ListTemplates(r.Context(), h.s.DB.Read(), a.ProjectID, f, p)
	if err != nil {
		return err
	}
	api.WriteList(w, items, p, total)
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "template_id", "Template")
	if err != nil {
		return err
	}
	t, err := GetTemplate(r.Context(), h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, t)
	return nil
}

// invalidTemplate is the 422 of create and update.
func invalidTemplate(errs validationErrors) error {
	return parley.Invalid("Invalid template", errs...)
}

// applyFields validates the writable attributes in f onto t. On create the
// name, language, category and components are required.
func applyFields(f *api.Fields, t *parley.Template, creating bool) error {
	v, err := readStrings(f, "name", "language_code", "category", "parameter_format")
	if err != nil {
		return err
	}
	name, lang, cat, pf := v[0], v[1], v[2], v[3]
	var errs validationErrors
	if creating || f.Has("name") {
		if name == nil {
			errs.add("Name can't be blank")
		} else {
			t.Name = strings.TrimSpace(*name)
			validateName(t.Name, &errs)
		}
	}
	if creating || f.Has("language_code") {
		if lang == nil {
			errs.add("Language code can't be blank")
		} else {
			t.LanguageCode = strings.TrimSpace(*lang)
			validateLanguage(t.LanguageCode, &errs)
		}
	}
	if creating || f.Has("category") {
		switch {
		case cat == nil || strings.TrimSpace(*cat) == "":
			errs.add("Category can't be blank")
		case !validCategory(strings.ToUpper(strings.TrimSpace(*cat))):
			errs.add("Category must be one of MARKETING, UTILITY, AUTHENTICATION")
		default:
			t.Category = strings.ToUpper(strings.TrimSpace(*cat))
		}
	}
	if pf != nil {
		switch v := strings.ToUpper(strings.TrimSpace(*pf)); v {
		case parley.ParamsNamed, parley.ParamsPositional:
			t.ParameterFormat = v
		default:
			errs.add("Parameter format must be one of NAMED, POSITIONAL")
		}
	}
	raw, hasComps := f.Raw("components")
	if hasComps && string(raw) == "null" {
		hasComps, raw = false, nil
		if creating {
			errs.add("Components can't be blank")
		}
	} else if !hasComps && creating {
		errs.add("Components can't be blank")
	}
	if len(errs) > 0 {
		return invalidTemplate(errs)
	}
	if !hasComps {
		// A new parameter format or category must still fit the components.
		raw = t.Components
	}
	if len(raw) > 0 {
		comps, cerrs := normalizeComponents(raw, t.ParameterFormat, t.Category)
		if len(cerrs) > 0 {
			return invalidTemplate(cerrs)
		}
		setComponents(t, comps)
	}
	return nil
}

// readStrings reads several optional string fields, failing on the first
// of the wrong type.
func readStrings(f *api.Fields, keys ...string) ([]*string, error) {
	out := make([]*string, len(keys))
	for i, k := range keys {
		v, _, err := f.String(k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// setComponents stores comps on t with the values derived from them.
func setComponents(t *parley.Template, comps []component) {
	b, _ := json.Marshal(comps)
	t.Components = b
	t.Content = bodyText(comps)
	t.ParameterCount = parameterCount(comps)
}

// stringParam reads an optional id at the body's root (outside the root key).
func rootString(f *api.Fields, key string) (*string, error) {
	v, _, err := f.RootString(key)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v, _, err = f.String(key)
		if err != nil {
			return nil, err
		}
	}
	if v != nil && strings.TrimSpace(*v) == "" {
		return nil, nil
	}
	return v, nil
}

// errConfigNotFound is the 404 of an unknown whatsapp_config_id.
var errConfigNotFound = parley.NotFound("WhatsApp config")

// lookupConfig returns a project's config, a 404 for unknown or malformed ids.
func lookupConfig(ctx context.Context, c *store.Conn, projectID, id string, notFound *parley.Error) (*parley.WhatsAppConfig, error) {
	if !api.IsUUID(id) {
		return nil, notFound
	}
	cfg, err := store.GetConfig(ctx, c, projectID, strings.ToLower(id))
	if parley.IsNotFound(err) {
		return nil, notFound
	}
	return cfg, err
}

// lookupCustomer checks a customer id belongs to the project.
func lookupCustomer(ctx context.Context, c *store.Conn, projectID, id string) (string, error) {
	if !api.IsUUID(id) {
		return "", parley.NotFound("Customer")
	}
	cu, err := store.GetCustomer(ctx, c, projectID, strings.ToLower(id))
	if err != nil {
		return "", err
	}
	return cu.ID, nil
}

func missingWABA(ids ...string) error {
	return &parley.Error{Code: parley.EINVALID, Title: "WhatsApp configuration missing business account id",
		Extra: map[string]any{"whatsapp_config_ids": ids}}
}

// resolveAssociation decides which configs a new (or re-associated) draft
// is linked to: the given config, else the customer's production configs,
// else the project's production configs; always expanded to every config of
// the same kind on the same WABA. Several WABAs are a 422. No config at all
// leaves the draft unlinked (business_account_id null).
func resolveAssociation(ctx context.Context, c *store.Conn, projectID string, cfgID, custID *string) ([]string, *string, error) {
	prod := parley.KindProduction
	var candidates []*parley.WhatsAppConfig
	kind := prod
	switch {
	case cfgID != nil:
		cfg, err := lookupConfig(ctx, c, projectID, *cfgID, errConfigNotFound)
		if err != nil {
			return nil, nil, err
		}
		if cfg.BusinessAccountID == nil || *cfg.BusinessAccountID == "" {
			return nil, nil, missingWABA(cfg.ID)
		}
		candidates, kind = []*parley.WhatsAppConfig{cfg}, cfg.Kind
	case custID != nil:
		cid, err := lookupCustomer(ctx, c, projectID, *custID)
		if err != nil {
			return nil, nil, err
		}
		if candidates, err = projectConfigs(ctx, c, projectID, &cid, &prod, nil); err != nil {
			return nil, nil, err
		}
	default:
		var err error
		if candidates, err = projectConfigs(ctx, c, projectID, nil, &prod, nil); err != nil {
			return nil, nil, err
		}
	}
	var wabas []string
	for _, cfg := range candidates {
		if cfg.BusinessAccountID != nil && *cfg.BusinessAccountID != "" && !slices.Contains(wabas, *cfg.BusinessAccountID) {
			wabas = append(wabas, *cfg.BusinessAccountID)
		}
	}
	switch len(wabas) {
	case 0:
		return []string{}, nil, nil
	case 1:
	default:
		return nil, nil, parley.Invalid("Invalid template",
			"Cannot associate a template with WhatsApp configs from different business accounts; pass whatsapp_config_id to choose one")
	}
	group, err := projectConfigs(ctx, c, projectID, nil, &kind, &wabas[0])
	if err != nil {
		return nil, nil, err
	}
	ids := make([]string, 0, len(group))
	for _, cfg := range group {
		ids = append(ids, cfg.ID)
	}
	return ids, &wabas[0], nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "template")
	if err != nil {
		return err
	}
	t := &parley.Template{ProjectID: a.ProjectID, Status: parley.TemplateDraft, ParameterFormat: parley.ParamsPositional,
		Metadata: parley.JSONObject{}}
	if err := applyFields(f, t, true); err != nil {
		return err
	}
	cfgID, err := rootString(f, "whatsapp_config_id")
	if err != nil {
		return err
	}
	custID, err := rootString(f, "customer_id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		ids, waba, err := resolveAssociation(ctx, tx, a.ProjectID, cfgID, custID)
		var nf *parley.Error
		if errors.As(err, &nf) && nf.Code == parley.ENOTFOUND {
			// POST /whatsapp_templates documents no 404 (Kapso: 201,
			// 401, 422, 500): an unknown whatsapp_config_id or
			// customer_id in the body is a validation error.
			return parley.Invalid("Invalid template", nf.Title)
		}
		if err != nil {
			return err
		}
		t.WhatsAppConfigIDs, t.BusinessAccountID = ids, waba
		return InsertTemplate(ctx, tx, t)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, t)
	return nil
}

func (h *handler) update(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "template_id", "Template")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "template")
	if err != nil {
		return err
	}
	cfgID, err := rootString(f, "whatsapp_config_id")
	if err != nil {
		return err
	}
	custID, err := rootString(f, "customer_id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	var out *parley.Template
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		t, err := GetTemplate(ctx, tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		if t.Status != parley.TemplateDraft {
			return parley.Invalid("Only draft templates can be updated")
		}
		if err := applyFields(f, t, false); err != nil {
			return err
		}
		relink := cfgID != nil || custID != nil
		if relink {
			if t.WhatsAppConfigIDs, t.BusinessAccountID, err = resolveAssociation(ctx, tx, a.ProjectID, cfgID, custID); err != nil {
				return err
			}
		}
		out = t
		return UpdateTemplate(ctx, tx, t, relink)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, out)
	return nil
}

// errNoGraphConfig is the 422 when no config can speak for a template.
var errNoGraphConfig = parley.Invalid("Production WhatsApp configuration not found for template")

// graphConfig picks the config whose token is used for a template's Graph
// calls: the explicit config (which must be on the template's WABA), else
// the customer's first config on that WABA, else the template's first linked
// config, else any project config on the WABA; production configs first.
// A template without a WABA takes the explicit config's (or the customer's
// first production config's) WABA.
func graphConfig(ctx context.Context, c *store.Conn, t *parley.Template, cfgID, custID *string) (*parley.WhatsAppConfig, error) {
	if cfgID != nil {
		cfg, err := lookupConfig(ctx, c, t.ProjectID, *cfgID, errConfigNotFound)
		if err != nil {
			return nil, err
		}
		if cfg.BusinessAccountID == nil || *cfg.BusinessAccountID == "" {
			return nil, missingWABA(cfg.ID)
		}
		if t.BusinessAccountID != nil && *t.BusinessAccountID != *cfg.BusinessAccountID {
			return nil, parley.Invalid("WhatsApp config does not belong to the template's business account")
		}
		return cfg, nil
	}
	var custPtr *string
	if custID != nil {
		cid, err := lookupCustomer(ctx, c, t.ProjectID, *custID)
		if err != nil {
			return nil, err
		}
		custPtr = &cid
	}
	var kind *string
	if t.BusinessAccountID == nil {
		prod := parley.KindProduction
		kind = &prod
	}
	cands, err := projectConfigs(ctx, c, t.ProjectID, custPtr, kind, t.BusinessAccountID)
	if err != nil {
		return nil, err
	}
	cands = slices.DeleteFunc(cands, func(cfg *parley.WhatsAppConfig) bool {
		return cfg.BusinessAccountID == nil || *cfg.BusinessAccountID == ""
	})
	rank := func(cfg *parley.WhatsAppConfig) int {
		n := 0
		if cfg.Kind != parley.KindProduction {
			n += 2
		}
		if custPtr == nil && !slices.Contains(t.WhatsAppConfigIDs, cfg.ID) {
			n++
		}
		return n
	}
	slices.SortStableFunc(cands, func(a, b *parley.WhatsAppConfig) int { return rank(a) - rank(b) })
	if len(cands) == 0 {
		return nil, errNoGraphConfig
	}
	return cands[0], nil
}

// graphClient returns the Graph client and decrypted token for cfg.
func (h *handler) graphClient(cfg *parley.WhatsAppConfig) (*whatsapp.Client, string, error) {
	token := ""
	if cfg.AccessTokenEnc != "" {
		var err error
		if token, err = h.s.Box.Decrypt(cfg.AccessTokenEnc); err != nil {
			return nil, "", parley.Invalid("The access token of the WhatsApp configuration cannot be decrypted")
		}
	}
	return graphFor(h.s, cfg), sandboxToken(cfg, token), nil
}

// graphFor returns the Graph client of cfg, falling back to Meta's at the
// configured URL when the server has no client factory.
func graphFor(s *api.Server, cfg *parley.WhatsAppConfig) *whatsapp.Client {
	if s.Graph != nil {
		if g := s.Graph(cfg); g != nil {
			return g
		}
	}
	return &whatsapp.Client{BaseURL: s.Config.MetaGraphURL, Version: s.Config.MetaGraphVersion}
}

// sandboxToken gives sandbox configs, which may have no token, the
// placeholder the simulator accepts (the client refuses an empty token).
func sandboxToken(cfg *parley.WhatsAppConfig, token string) string {
	if token == "" && cfg.IsSandbox() {
		return "sandbox"
	}
	return token
}

// graphFailure renders a failed Graph call as Kapso's 422 with Meta's codes
// under "meta".
func (h *handler) graphFailure(ctx context.Context, title string, err error, extra map[string]any) error {
	e := &parley.Error{Code: parley.EINVALID, Title: title, Extra: map[string]any{}}
	for k, v := range extra {
		e.Extra[k] = v
	}
	var ge *whatsapp.GraphError
	switch {
	case errors.As(err, &ge):
		e.Message = firstNonEmpty(ge.Details, ge.Title, ge.Message)
		e.Extra["meta"] = map[string]any{"error_code": ge.Code, "error_subcode": ge.Subcode, "http_status": ge.HTTPStatus}
	case errors.Is(err, whatsapp.ErrMissingToken):
		e.Message = "The WhatsApp configuration has no access token"
	default:
		h.s.Log.WarnContext(ctx, "templates: graph call failed", slog.String("error", err.Error()))
		e.Message = "WhatsApp could not be reached"
	}
	return e
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// idParams reads whatsapp_config_id and customer_id from an optional body
// (root key "template" or bare).
func (h *handler) idParams(w http.ResponseWriter, r *http.Request, root string) (*api.Fields, *string, *string, error) {
	f, err := h.s.DecodeFields(w, r, root)
	if err != nil {
		return nil, nil, nil, err
	}
	cfgID, err := rootString(f, "whatsapp_config_id")
	if err != nil {
		return nil, nil, nil, err
	}
	custID, err := rootString(f, "customer_id")
	if err != nil {
		return nil, nil, nil, err
	}
	return f, cfgID, custID, nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "template_id", "Template")
	if err != nil {
		return err
	}
	ctx := r.Context()
	t, err := GetTemplate(ctx, h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	if t.Status == parley.TemplateRemoved {
		api.WriteData(w, http.StatusOK, t)
		return nil
	}
	// A draft never submitted exists only here: nothing to delete on Meta.
	if t.MetaTemplateID != nil && t.BusinessAccountID != nil {
		cfg, err := graphConfig(ctx, h.s.DB.Read(), t, nil, nil)
		if err != nil {
			return err
		}
		g, token, err := h.graphClient(cfg)
		if err != nil {
			return err
		}
		if err := g.DeleteTemplate(ctx, token, *t.BusinessAccountID, t.Name, *t.MetaTemplateID); err != nil {
			return h.graphFailure(ctx, "Failed to delete template from WhatsApp", err, nil)
		}
	}
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		cur, err := GetTemplate(ctx, tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		cur.Status = parley.TemplateRemoved
		t = cur
		return UpdateTemplate(ctx, tx, cur, false)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, t)
	return nil
}

// metaCreateBody is Meta's template creation request for t.
func metaCreateBody(t *parley.Template) map[string]any {
	return map[string]any{
		"name":             t.Name,
		"language":         t.LanguageCode,
		"category":         t.Category,
		"parameter_format": t.ParameterFormat,
		"components":       t.Components,
	}
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "template_id", "Template")
	if err != nil {
		return err
	}
	_, cfgID, custID, err := h.idParams(w, r, "template")
	if err != nil {
		return err
	}
	ctx := r.Context()
	t, err := GetTemplate(ctx, h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	failed := map[string]any{"status": "error"}
	if t.Status != parley.TemplateDraft {
		return &parley.Error{Code: parley.EINVALID, Title: "Only draft templates can be submitted", Message: "Failed to submit template", Extra: failed}
	}
	cfg, err := graphConfig(ctx, h.s.DB.Read(), t, cfgID, custID)
	if err != nil {
		return err
	}
	g, token, err := h.graphClient(cfg)
	if err != nil {
		return err
	}
	res, err := g.CreateTemplate(ctx, token, *cfg.BusinessAccountID, metaCreateBody(t))
	if err != nil {
		return h.graphFailure(ctx, "Failed to submit template to WhatsApp", err, failed)
	}
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		cur, err := GetTemplate(ctx, tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		if cur.Status != parley.TemplateDraft {
			return &parley.Error{Code: parley.EINVALID, Title: "Only draft templates can be submitted", Message: "Failed to submit template", Extra: failed}
		}
		metaID, metaStatus := res.ID, strings.ToUpper(res.Status)
		cur.MetaTemplateID = &metaID
		cur.Status = parley.TemplateSubmitted
		if metaStatus != "" {
			cur.MetaStatus = &metaStatus
			if s := MapStatus(metaStatus); s != "" && s != parley.TemplateRemoved {
				cur.Status = s
			}
		}
		if c := strings.ToUpper(res.Category); validCategory(c) {
			cur.Category = c // Meta may re-categorise on creation
		}
		relink := false
		if cur.BusinessAccountID == nil {
			kind := cfg.Kind
			group, err := projectConfigs(ctx, tx, a.ProjectID, nil, &kind, cfg.BusinessAccountID)
			if err != nil {
				return err
			}
			cur.BusinessAccountID, cur.WhatsAppConfigIDs, relink = cfg.BusinessAccountID, nil, true
			for _, c := range group {
				cur.WhatsAppConfigIDs = append(cur.WhatsAppConfigIDs, c.ID)
			}
		}
		t = cur
		return UpdateTemplate(ctx, tx, cur, relink)
	})
	if err != nil {
		return err
	}
	if t.WhatsAppConfigIDs == nil {
		_ = loadConfigIDs(ctx, h.s.DB.Read(), []*parley.Template{t})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"status": "success", "message": "Template submitted successfully", "template_id": t.ID,
		"template_name": t.Name, "submission_id": res.ID, "data": t,
	})
	return nil
}

// editableOnMeta are the statuses Meta lets a template be edited in.
var editableOnMeta = []string{parley.TemplateApproved, parley.TemplateRejected, parley.TemplateDisabled}

// maxTTL bounds time_to_live (Meta's longest template TTL is 30 days).
const maxTTL = 30 * 24 * 3600

func (h *handler) editMeta(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "template_id", "Template")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "template")
	if err != nil {
		return err
	}
	ctx := r.Context()
	t, err := GetTemplate(ctx, h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	if !slices.Contains(editableOnMeta, t.Status) {
		return parley.Invalid("Only approved, rejected or disabled templates can be edited")
	}
	v, err := readStrings(f, "category")
	if err != nil {
		return err
	}
	cat := v[0]
	ttl, _, err := f.Int("time_to_live")
	if err != nil {
		return err
	}
	body := map[string]any{}
	var errs validationErrors
	newCat := t.Category
	if cat != nil {
		c := strings.ToUpper(strings.TrimSpace(*cat))
		if !validCategory(c) {
			errs.add("Category must be one of MARKETING, UTILITY, AUTHENTICATION")
		} else if c != t.Category {
			if t.Status == parley.TemplateApproved {
				return parley.Invalid("Cannot edit the category of an approved template")
			}
			body["category"], newCat = c, c
		}
	}
	if ttl != nil {
		if *ttl < 30 || *ttl > maxTTL {
			errs.add("Time to live must be between 30 and 2592000 seconds")
		} else {
			body["message_send_ttl_seconds"] = *ttl
		}
	}
	var comps []component
	if raw, ok := f.Raw("components"); ok && string(raw) != "null" {
		var cerrs validationErrors
		comps, cerrs = normalizeComponents(raw, t.ParameterFormat, newCat)
		errs = append(errs, cerrs...)
		body["components"] = comps
	}
	if len(errs) > 0 {
		return invalidTemplate(errs)
	}
	if len(body) == 0 {
		return parley.Invalid("Invalid template", "Provide category, components or time_to_live to edit")
	}
	if t.MetaTemplateID == nil {
		return parley.Invalid("Template has not been submitted to WhatsApp")
	}
	cfg, err := graphConfig(ctx, h.s.DB.Read(), t, nil, nil)
	if err != nil {
		return err
	}
	g, token, err := h.graphClient(cfg)
	if err != nil {
		return err
	}
	if err := g.EditTemplate(ctx, token, *t.MetaTemplateID, body); err != nil {
		return h.graphFailure(ctx, "Failed to edit template on WhatsApp", err, nil)
	}
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		cur, err := GetTemplate(ctx, tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		cur.Category = newCat
		if comps != nil {
			setComponents(cur, comps)
		}
		if ttl != nil {
			if cur.Metadata == nil {
				cur.Metadata = parley.JSONObject{}
			}
			cur.Metadata["time_to_live"] = *ttl
		}
		// Meta reviews every edit again; its status webhook (or a sync)
		// brings the template back to approved or rejected.
		pending := "PENDING"
		cur.Status, cur.MetaStatus, cur.RejectedReason = parley.TemplateSubmitted, &pending, nil
		t = cur
		return UpdateTemplate(ctx, tx, cur, false)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, t)
	return nil
}
