package delivery

import (
	"net/http"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/store"
)

// registerProjectWebhooks adds the project webhook CRUD (/webhooks): project
// webhooks receive lifecycle events only. Validation, rendering and SQL are
// the platform package's, shared with config webhooks.
func registerProjectWebhooks(s *api.Server, h *handlers) {
	s.Handle("GET /webhooks", h.listProjectWebhooks)
	s.Handle("POST /webhooks", h.createProjectWebhook)
	s.Handle("GET /webhooks/{id}", h.getProjectWebhook)
	s.Handle("PATCH /webhooks/{id}", h.updateProjectWebhook)
	s.Handle("PUT /webhooks/{id}", h.updateProjectWebhook)
	s.Handle("DELETE /webhooks/{id}", h.deleteProjectWebhook)
}

func (h *handlers) writeWebhook(w http.ResponseWriter, status int, wh *parley.Webhook) error {
	v, err := platform.RenderWebhook(h.s.Box, wh)
	if err != nil {
		return err
	}
	api.WriteData(w, status, v)
	return nil
}

func (h *handlers) listProjectWebhooks(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	var f platform.WebhookFilter
	f.URLCont, _ = api.QParam(r, "url_cont")
	if b, ok := api.QBool(r, "active_eq"); ok {
		f.ActiveEq = &b
	}
	p := api.PageOf(r)
	items, total, err := platform.ListWebhooks(r.Context(), h.s.DB.Read(), a.ProjectID, nil, f, p)
	if err != nil {
		return err
	}
	views, err := platform.RenderWebhooks(h.s.Box, items)
	if err != nil {
		return err
	}
	api.WriteList(w, views, p, total)
	return nil
}

func (h *handlers) getProjectWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "Webhook")
	if err != nil {
		return err
	}
	wh, err := platform.GetWebhook(r.Context(), h.s.DB.Read(), a.ProjectID, nil, id)
	if err != nil {
		return err
	}
	return h.writeWebhook(w, http.StatusOK, wh)
}

func (h *handlers) createProjectWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "webhook")
	if err != nil {
		return err
	}
	wh := platform.NewWebhook(a.ProjectID, nil)
	if err := platform.DecodeWebhook(f, wh, true, true); err != nil {
		return err
	}
	if err := platform.CheckWebhookTarget(h.s.Config, "url", wh.URL); err != nil {
		return err
	}
	if err := platform.CreateWebhook(r.Context(), h.s.DB.Write(), h.s.Box, wh); err != nil {
		return err
	}
	return h.writeWebhook(w, http.StatusCreated, wh)
}

func (h *handlers) updateProjectWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "Webhook")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "webhook")
	if err != nil {
		return err
	}
	ctx := r.Context()
	var out *parley.Webhook
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		wh, err := platform.GetWebhook(ctx, tx, a.ProjectID, nil, id)
		if err != nil {
			return err
		}
		if err := platform.DecodeWebhook(f, wh, false, true); err != nil {
			return err
		}
		if f.Has("url") {
			if err := platform.CheckWebhookTarget(h.s.Config, "url", wh.URL); err != nil {
				return err
			}
		}
		out = wh
		return platform.UpdateWebhook(ctx, tx, h.s.Box, wh)
	})
	if err != nil {
		return err
	}
	return h.writeWebhook(w, http.StatusOK, out)
}

func (h *handlers) deleteProjectWebhook(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "Webhook")
	if err != nil {
		return err
	}
	if err := platform.DeleteWebhook(r.Context(), h.s.DB.Write(), a.ProjectID, nil, id); err != nil {
		return err
	}
	api.NoContent(w)
	return nil
}
