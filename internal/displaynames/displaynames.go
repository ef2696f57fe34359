// Package displaynames implements Kapso's display-name requests: asking
// Meta to change a phone number's display name, and following the review.
//
// POST /whatsapp_configs/{id}/display_name_requests stores the request as
// "submitted" with a durable job that submits the name to Meta's Graph API
// (see jobs.go); a poll job then follows Meta's review until the name is
// approved (and written to the config: "applied"), refused or abandoned.
// Sandbox configs go through the same jobs against a review simulated here.
package displaynames

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
)

// Display name length bounds, in characters. Meta's display name
// guidelines refuse names under three characters; 512 bounds what is
// stored (Meta refuses longer names itself).
const (
	minNameLength = 3
	maxNameLength = 512
)

type handler struct{ s *api.Server }

// Register registers the display-name request routes.
func Register(s *api.Server) {
	h := &handler{s: s}
	s.Handle("GET /whatsapp_configs/{id}/display_name_requests", h.list)
	s.Handle("POST /whatsapp_configs/{id}/display_name_requests", h.create)
	s.Handle("GET /whatsapp_configs/{id}/display_name_requests/{request_id}", h.get)
}

// view is a request as the API renders it (Kapso's WhatsappDisplayNameRequest).
type view struct {
	ID                   string     `json:"id"`
	WhatsAppConfigID     string     `json:"whatsapp_config_id"`
	RequestedDisplayName string     `json:"requested_display_name"`
	PreviousDisplayName  *string    `json:"previous_display_name"`
	Status               string     `json:"status"`
	MetaErrorCode        *int       `json:"meta_error_code"`
	MetaErrorSubcode     *int       `json:"meta_error_subcode"`
	MetaErrorType        *string    `json:"meta_error_type"`
	MetaErrorMessage     *string    `json:"meta_error_message"`
	SubmittedAt          time.Time  `json:"submitted_at"`
	ReviewedAt           *time.Time `json:"reviewed_at"`
	AppliedAt            *time.Time `json:"applied_at"`
}

func render(r *Request) view {
	return view{
		ID: r.ID, WhatsAppConfigID: r.ConfigID, RequestedDisplayName: r.RequestedName, PreviousDisplayName: r.PreviousName,
		Status: r.Status, MetaErrorCode: r.MetaErrorCode, MetaErrorSubcode: r.MetaErrorSubcode, MetaErrorType: r.MetaErrorType,
		MetaErrorMessage: r.MetaErrorMessage, SubmittedAt: r.SubmittedAt, ReviewedAt: r.ReviewedAt, AppliedAt: r.AppliedAt,
	}
}

// config returns the key's project's config named by the path, or 404.
func (h *handler) config(ctx context.Context, c *store.Conn, r *http.Request, a *api.Auth) (*parley.WhatsAppConfig, error) {
	id, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return nil, err
	}
	return store.GetConfig(ctx, c, a.ProjectID, id)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	ctx := r.Context()
	read := h.s.DB.Read()
	cfg, err := h.config(ctx, read, r, a)
	if err != nil {
		return err
	}
	p := api.PageOf(r)
	items, total, err := listRequests(ctx, read, a.ProjectID, cfg.ID, p)
	if err != nil {
		return err
	}
	out := make([]view, len(items))
	for i, it := range items {
		out[i] = render(it)
	}
	api.WriteList(w, out, p, total)
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	ctx := r.Context()
	read := h.s.DB.Read()
	cfg, err := h.config(ctx, read, r, a)
	if err != nil {
		return err
	}
	id, err := api.PathID(r, "request_id", "Display name request")
	if err != nil {
		return err
	}
	req, err := getRequest(ctx, read, a.ProjectID, cfg.ID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, render(req))
	return nil
}

// validName checks new_display_name and returns it trimmed.
func validName(f *api.Fields) (string, error) {
	v, _, err := f.String("new_display_name")
	if err != nil {
		return "", err
	}
	if v == nil || strings.TrimSpace(*v) == "" {
		return "", parley.Invalid("Validation failed", "New display name can't be blank")
	}
	name := strings.TrimSpace(*v)
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", parley.Invalid("Validation failed", "New display name must not contain line breaks or control characters")
	}
	switch n := utf8.RuneCountInString(name); {
	case n < minNameLength:
		return "", parley.Invalid("Validation failed", "New display name is too short (minimum is 3 characters)")
	case n > maxNameLength:
		return "", parley.Invalid("Validation failed", "New display name is too long (maximum is 512 characters)")
	}
	return name, nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	ctx := r.Context()
	cfg, err := h.config(ctx, h.s.DB.Read(), r, a)
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "display_name_request")
	if err != nil {
		return err
	}
	name, err := validName(f)
	if err != nil {
		return err
	}
	var out *Request
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		// Read again in the transaction: the config may have changed
		// number or been deleted since.
		cfg, err = store.GetConfig(ctx, tx, a.ProjectID, cfg.ID)
		if err != nil {
			return err
		}
		if !cfg.IsSandbox() && cfg.AccessTokenEnc == "" {
			return parley.Invalid("Validation failed", "Access token must be present on the WhatsApp configuration")
		}
		cur, err := activeRequest(ctx, tx, cfg.ID)
		if err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if cur != nil {
			switch {
			case cur.PhoneNumberID != cfg.PhoneNumberID:
				// Left behind by a change of number: it no longer
				// concerns this config's number.
				cur.Status = StatusCancelled
			case now.Sub(cur.SubmittedAt) >= pollHorizon:
				// Past the review horizon (its poll job lost): given
				// up, as the poll would have.
				cur.Status = StatusNoReview
			default:
				return errAlreadyActive
			}
			if _, err := updateActive(ctx, tx, cur); err != nil {
				return err
			}
		}
		out = &Request{ID: store.NewID(), ProjectID: a.ProjectID, ConfigID: cfg.ID, PhoneNumberID: cfg.PhoneNumberID,
			RequestedName: name, PreviousName: cfg.DisplayName, Status: StatusSubmitted, SubmittedAt: now, CreatedAt: now, UpdatedAt: now}
		if err := insertRequest(ctx, tx, out); err != nil {
			return err
		}
		_, err = jobs.Enqueue(ctx, tx, jobSubmit, jobPayload{RequestID: out.ID},
			jobs.Options{UniqueKey: submitKey(out.ID), MaxAttempts: submitAttempts})
		return err
	})
	if err != nil {
		return err
	}
	h.s.JobsEnqueued()
	api.WriteData(w, http.StatusCreated, render(out))
	return nil
}

// Handlers returns the handlers of the display-name routes (list, create,
// get), for Kapso's Platform API to serve with the same rules; they read the
// config id from the {id} path value and the request id from {request_id}.
func Handlers(s *api.Server) (list, create, get api.HandlerFunc) {
	h := &handler{s: s}
	return h.list, h.create, h.get
}
