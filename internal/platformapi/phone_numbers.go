package platformapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/displaynames"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/sandbox"
	"github.com/parleyhq/parley/internal/store"
)

func registerPhoneNumbers(s *api.Server) {
	s.HandleOn(api.Platform, "GET /whatsapp/phone_numbers", listPhoneNumbers(s))
	s.HandleOn(api.Platform, "GET /whatsapp/phone_numbers/{phone_number_id}", getPhoneNumber(s))
	s.HandleOn(api.Platform, "PATCH /whatsapp/phone_numbers/{phone_number_id}", updatePhoneNumber(s))
	s.HandleOn(api.Platform, "POST /customers/{customer_id}/whatsapp/phone_numbers", connectPhoneNumber(s))
	s.HandleOn(api.Platform, "GET /whatsapp/phone_numbers/{phone_number_id}/health", phoneNumberHealth(s))

	list, create, get := displaynames.Handlers(s)
	s.HandleOn(api.Platform, "GET /whatsapp/phone_numbers/{phone_number_id}/display_name_requests", ByPhoneNumber(s, list))
	s.HandleOn(api.Platform, "POST /whatsapp/phone_numbers/{phone_number_id}/display_name_requests", ByPhoneNumber(s, create))
	s.HandleOn(api.Platform, "GET /whatsapp/phone_numbers/{phone_number_id}/display_name_requests/{request_id}", ByPhoneNumber(s, get))
}

// PhoneNumber returns the config of Meta's phone_number_id in the caller's
// project; another project's number, or an unknown one, is a 404.
func PhoneNumber(ctx context.Context, c *store.Conn, projectID, phoneNumberID string) (*parley.WhatsAppConfig, error) {
	if phoneNumberID == "" || len(phoneNumberID) > 64 {
		return nil, parley.NotFound("Phone number")
	}
	cfg, err := store.GetConfigByPhoneNumberID(ctx, c, phoneNumberID)
	if err != nil || cfg.ProjectID != projectID {
		if err == nil || parley.ErrorCode(err) == parley.ENOTFOUND {
			return nil, parley.NotFound("Phone number")
		}
		return nil, err
	}
	return cfg, nil
}

// ByPhoneNumber serves a handler written for /api/v1's
// /whatsapp_configs/{id}/... under /whatsapp/phone_numbers/{phone_number_id}/...:
// it resolves the phone number in the caller's project and hands the
// handler the config's id as the {id} path value.
func ByPhoneNumber(s *api.Server, h api.HandlerFunc) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfg, err := PhoneNumber(r.Context(), s.DB.Read(), a.ProjectID, r.PathValue("phone_number_id"))
		if err != nil {
			return err
		}
		r.SetPathValue("id", cfg.ID)
		return h(w, r, a)
	}
}

// phoneNumberView is a config as Kapso's Platform API renders a phone
// number: id is Meta's phone_number_id, internal_id Parley's config id.
// Properties Kapso's schema does not allow to be null are omitted when
// unknown.
type phoneNumberView struct {
	ID                           string     `json:"id"`
	InternalID                   string     `json:"internal_id"`
	PhoneNumberID                string     `json:"phone_number_id"`
	Name                         string     `json:"name"`
	Kind                         string     `json:"kind"`
	BusinessAccountID            *string    `json:"business_account_id,omitempty"`
	IsCoexistence                bool       `json:"is_coexistence"`
	InboundProcessingEnabled     bool       `json:"inbound_processing_enabled"`
	CallsEnabled                 bool       `json:"calls_enabled"`
	WebhookVerifiedAt            *time.Time `json:"webhook_verified_at"`
	CreatedAt                    time.Time  `json:"created_at"`
	UpdatedAt                    time.Time  `json:"updated_at"`
	CustomerID                   *string    `json:"customer_id"`
	DisplayName                  *string    `json:"display_name"`
	DisplayPhoneNumber           *string    `json:"display_phone_number,omitempty"`
	DisplayPhoneNumberNormalized *string    `json:"display_phone_number_normalized,omitempty"`
}

// RenderPhoneNumber renders a config as a Platform API phone number.
func RenderPhoneNumber(cfg *parley.WhatsAppConfig) any {
	return phoneNumberView{
		ID: cfg.PhoneNumberID, InternalID: cfg.ID, PhoneNumberID: cfg.PhoneNumberID, Name: cfg.Name, Kind: cfg.Kind,
		BusinessAccountID: cfg.BusinessAccountID, IsCoexistence: cfg.IsCoexistence,
		InboundProcessingEnabled: cfg.InboundProcessingEnabled, CallsEnabled: cfg.CallsEnabled,
		WebhookVerifiedAt: cfg.WebhookVerifiedAt, CreatedAt: cfg.CreatedAt, UpdatedAt: cfg.UpdatedAt,
		CustomerID: cfg.CustomerID, DisplayName: cfg.DisplayName, DisplayPhoneNumber: cfg.DisplayPhoneNumber,
		DisplayPhoneNumberNormalized: cfg.DisplayPhoneNumberNormalized,
	}
}

// listPhoneNumbers filters by phone_number_id, business_account_id and
// customer_id (an unknown or malformed customer id matches nothing).
func listPhoneNumbers(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		q := r.URL.Query()
		var f store.ConfigFilter
		if v := strings.TrimSpace(q.Get("phone_number_id")); v != "" {
			f.PhoneNumberIDEq = &v
		}
		if v := strings.TrimSpace(q.Get("business_account_id")); v != "" {
			f.BusinessAccountIDEq = &v
		}
		if v := strings.ToLower(strings.TrimSpace(q.Get("customer_id"))); v != "" {
			f.CustomerID = &v
		}
		p := api.PageOf(r)
		items, total, err := store.ListConfigs(r.Context(), s.DB.Read(), a.ProjectID, f, p)
		if err != nil {
			return err
		}
		out := make([]any, len(items))
		for i, cfg := range items {
			out[i] = RenderPhoneNumber(cfg)
		}
		WriteOffsetList(w, out, p, total)
		return nil
	}
}

func getPhoneNumber(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfg, err := PhoneNumber(r.Context(), s.DB.Read(), a.ProjectID, r.PathValue("phone_number_id"))
		if err != nil {
			return err
		}
		api.WriteData(w, http.StatusOK, RenderPhoneNumber(cfg))
		return nil
	}
}

func updatePhoneNumber(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfg, err := PhoneNumber(r.Context(), s.DB.Read(), a.ProjectID, r.PathValue("phone_number_id"))
		if err != nil {
			return err
		}
		f, err := s.DecodeFields(w, r, "whatsapp_phone_number")
		if err != nil {
			return err
		}
		cfg, err = platform.UpdateConfig(r.Context(), s, a.ProjectID, cfg.ID, f)
		if err != nil {
			return err
		}
		api.WriteData(w, http.StatusOK, RenderPhoneNumber(cfg))
		return nil
	}
}

// connectPhoneNumber connects a number under a customer. Kapso makes the
// name optional: it defaults to the phone_number_id.
func connectPhoneNumber(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cid, err := api.PathID(r, "customer_id", "Customer")
		if err != nil {
			return err
		}
		f, err := s.DecodeFields(w, r, "whatsapp_phone_number")
		if err != nil {
			return err
		}
		if pid, _, _ := f.String("phone_number_id"); pid != nil && strings.TrimSpace(*pid) != "" {
			f.Default("name", strings.TrimSpace(*pid))
		}
		cfg, err := platform.CreateConfig(r.Context(), s, a.ProjectID, &cid, f)
		if err != nil {
			return err
		}
		api.WriteData(w, http.StatusCreated, RenderPhoneNumber(cfg))
		return nil
	}
}

// phoneNumberHealth runs the live checks and returns the report unwrapped,
// as Kapso does; a report whose checks could not run has empty checks.
func phoneNumberHealth(s *api.Server) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
		cfg, err := PhoneNumber(r.Context(), s.DB.Read(), a.ProjectID, r.PathValue("phone_number_id"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		rep := sandbox.CheckHealth(ctx, s, cfg)
		if rep.Checks == nil {
			api.WriteJSON(w, http.StatusOK, map[string]any{"status": rep.Status, "checks": map[string]any{}, "timestamp": rep.Timestamp, "error": rep.Error})
			return nil
		}
		api.WriteJSON(w, http.StatusOK, rep)
		return nil
	}
}
