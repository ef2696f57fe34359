// Package broadcasts implements Kapso's WhatsApp broadcasts: a template
// sent to a list of recipients from one config.
//
// A broadcast is created as a draft, recipients are added to it (each with
// its own template parameters), and POST …/send moves it to sending and
// enqueues the broadcast_send job in the same transaction. The job hands
// the recipients to the normal send path (messaging.SendTx) in batches: each
// recipient gets an ordinary outbound message in its conversation, with its
// send job, events and webhooks, and the per-number send rate applies. The
// broadcast's counters are counted from its recipients' messages when it is
// read.
package broadcasts

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/templates"
)

// maxRecipientsPerRequest is Kapso's limit on one POST …/recipients.
const maxRecipientsPerRequest = 1000

// maxNameLen bounds a broadcast's name.
const maxNameLen = 255

type handler struct{ s *api.Server }

// Register registers the broadcast routes.
func Register(s *api.Server) {
	h := &handler{s: s}
	s.Handle("GET /whatsapp_broadcasts", h.list)
	s.Handle("POST /whatsapp_broadcasts", h.create)
	s.Handle("GET /whatsapp_broadcasts/{broadcast_id}", h.get)
	s.Handle("GET /whatsapp_broadcasts/{broadcast_id}/recipients", h.listRecipients)
	s.Handle("POST /whatsapp_broadcasts/{broadcast_id}/recipients", h.addRecipients)
	s.Handle("POST /whatsapp_broadcasts/{broadcast_id}/send", h.send)
}

// now returns the current time at the store's precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func (h *handler) list(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	var f filter
	for name, dst := range map[string]**string{"whatsapp_config_id_eq": &f.ConfigID, "whatsapp_template_id_eq": &f.TemplateID} {
		if v, ok := api.QParam(r, name); ok {
			// An id that is not a UUID matches nothing.
			id := strings.ToLower(v)
			if !api.IsUUID(v) {
				id = ""
			}
			*dst = &id
		}
	}
	p := api.PageOf(r)
	ctx := r.Context()
	c := h.s.DB.Read()
	bs, total, err := listBroadcasts(ctx, c, a.ProjectID, f, p)
	if err != nil {
		return err
	}
	if err := fillCounts(ctx, c, bs...); err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(bs))
	for _, b := range bs {
		out = append(out, render(b))
	}
	api.WriteList(w, out, p, total)
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	b, err := h.load(r, a)
	if err != nil {
		return err
	}
	if err := fillCounts(r.Context(), h.s.DB.Read(), b); err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, render(b))
	return nil
}

// load returns the path's broadcast of the key's project.
func (h *handler) load(r *http.Request, a *api.Auth) (*broadcast, error) {
	id, err := api.PathID(r, "broadcast_id", "Broadcast")
	if err != nil {
		return nil, err
	}
	return getBroadcast(r.Context(), h.s.DB.Read(), a.ProjectID, id)
}

// idField reads a UUID-valued field; ok is false when it is absent or
// blank. A value that is not a UUID is returned as is (it matches nothing).
func idField(f *api.Fields, key string) (string, bool, error) {
	v, _, err := f.String(key)
	if err != nil || v == nil || strings.TrimSpace(*v) == "" {
		return "", false, err
	}
	return strings.ToLower(strings.TrimSpace(*v)), true, nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := h.s.DecodeFields(w, r, "whatsapp_broadcast")
	if err != nil {
		return err
	}
	name, _, err := f.String("name")
	if err != nil {
		return err
	}
	cfgID, hasCfg, err := idField(f, "whatsapp_config_id")
	if err != nil {
		return err
	}
	tplID, hasTpl, err := idField(f, "whatsapp_template_id")
	if err != nil {
		return err
	}
	var errs []string
	if name == nil || strings.TrimSpace(*name) == "" {
		errs = append(errs, "Name can't be blank")
	} else if utf8.RuneCountInString(strings.TrimSpace(*name)) > maxNameLen {
		errs = append(errs, fmt.Sprintf("Name is too long (maximum is %d characters)", maxNameLen))
	}
	if !hasCfg {
		errs = append(errs, "Whatsapp config can't be blank")
	}
	if !hasTpl {
		errs = append(errs, "Whatsapp template can't be blank")
	}
	if len(errs) > 0 {
		return parley.Invalid("Validation failed", errs...)
	}
	ctx := r.Context()
	c := h.s.DB.Read()
	if !api.IsUUID(cfgID) {
		return parley.Invalid("WhatsApp configuration not found")
	}
	cfg, err := store.GetConfig(ctx, c, a.ProjectID, cfgID)
	if parley.IsNotFound(err) {
		return parley.Invalid("WhatsApp configuration not found")
	}
	if err != nil {
		return err
	}
	if !api.IsUUID(tplID) {
		return parley.Invalid("Template not found")
	}
	t, err := templates.GetTemplate(ctx, c, a.ProjectID, tplID)
	if parley.IsNotFound(err) {
		return parley.Invalid("Template not found")
	}
	if err != nil {
		return err
	}
	if !slices.Contains(t.WhatsAppConfigIDs, cfg.ID) {
		return &parley.Error{Code: parley.EINVALID, Title: "Template not linked to config",
			Message: "The template is not linked to the WhatsApp configuration"}
	}
	if t.Status != parley.TemplateApproved {
		return &parley.Error{Code: parley.EINVALID, Title: "Template is not approved",
			Message: fmt.Sprintf("Template status is %s; only approved templates can be broadcast", t.Status)}
	}
	n := now()
	b := &broadcast{ID: store.NewID(), ProjectID: a.ProjectID, ConfigID: cfg.ID, TemplateID: t.ID, Name: strings.TrimSpace(*name),
		Status: statusDraft, CreatedAt: n, UpdatedAt: n, TemplateName: t.Name, TemplateLanguage: t.LanguageCode,
		TemplateCategory: t.Category, TemplateStatus: t.Status}
	if err := insertBroadcast(ctx, h.s.DB.Write(), b); err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, render(b))
	return nil
}

func (h *handler) listRecipients(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	b, err := h.load(r, a)
	if err != nil {
		return err
	}
	p := api.PageOf(r)
	rs, total, err := listRecipients(r.Context(), h.s.DB.Read(), b.ID, p)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(rs))
	for _, rc := range rs {
		out = append(out, renderRecipient(rc))
	}
	api.WriteList(w, out, p, total)
	return nil
}

func notDraft(status string) error {
	return parley.Invalid(fmt.Sprintf("Cannot add recipients to broadcast in %s status", status))
}

// addRecipients is POST …/recipients: up to 1000 recipients, each by phone
// number or contact id, with its template parameters. A recipient whose
// values are of the wrong JSON type fails the whole request (422); one that
// is invalid otherwise (a bad phone number, an unknown contact, parameters
// the template does not accept) is skipped and reported in errors; a number
// the broadcast already has is counted in duplicates.
func (h *handler) addRecipients(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	b, err := h.load(r, a)
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "whatsapp_broadcast")
	if err != nil {
		return err
	}
	if b.Status != statusDraft {
		return notDraft(b.Status)
	}
	// Kapso's body is {"recipients": [...]} at the top level; a
	// whatsapp_broadcast object next to it (Rails parameter wrapping) must
	// not hide it. Inside the wrapper is accepted too.
	raw, ok := f.RootRaw("recipients")
	if !ok {
		raw, _ = f.Raw("recipients")
	}
	var items []json.RawMessage
	if raw == nil || json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return parley.Invalid("Recipients array is required")
	}
	if len(items) > maxRecipientsPerRequest {
		return parley.Invalid(fmt.Sprintf("Cannot add more than %d recipients per request", maxRecipientsPerRequest))
	}
	ins, err := decodeRecipients(items)
	if err != nil {
		return err
	}
	ctx := r.Context()
	c := h.s.DB.Read()
	t, err := templates.GetTemplate(ctx, c, a.ProjectID, b.TemplateID)
	if err != nil {
		return err
	}
	var errs []string
	var valid []newRecipient
	seen := map[string]bool{}
	duplicates := 0
	for i, in := range ins {
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Sprintf("Recipient %d: ", i+1)+fmt.Sprintf(format, args...))
		}
		phone := in.phone
		if phone == "" && in.contactID != "" {
			if !api.IsUUID(in.contactID) {
				fail("contact not found")
				continue
			}
			wa, err := contactPhone(ctx, c, a.ProjectID, strings.ToLower(in.contactID))
			if parley.IsNotFound(err) {
				fail("contact not found")
				continue
			}
			if err != nil {
				return err
			}
			phone = wa
		}
		if phone == "" {
			fail("phone number or whatsapp_contact_id is required")
			continue
		}
		phone = parley.NormalizePhone(phone)
		if !parley.ValidPhone(phone) {
			fail("invalid phone number format")
			continue
		}
		if _, err := templates.RecipientMessage(t, in.params); err != nil {
			fail("template parameters invalid - %s", errText(err))
			continue
		}
		if seen[phone] {
			duplicates++
			continue
		}
		seen[phone] = true
		valid = append(valid, newRecipient{Phone: phone, Params: in.params})
	}
	added := 0
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		added = 0
		n := now()
		ok, err := touchDraft(ctx, tx, b.ID, n)
		if err != nil {
			return err
		}
		if !ok {
			cur, err := getBroadcast(ctx, tx, a.ProjectID, b.ID)
			if err != nil {
				return err
			}
			return notDraft(cur.Status)
		}
		for _, v := range valid {
			ok, err := insertRecipient(ctx, tx, b.ID, v, n)
			if err != nil {
				return err
			}
			if ok {
				added++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	duplicates += len(valid) - added
	if errs == nil {
		errs = []string{}
	}
	api.WriteData(w, http.StatusCreated, map[string]any{"added": added, "duplicates": duplicates, "errors": errs})
	return nil
}

// errText renders a validation error for a recipient's line in errors.
func errText(err error) string {
	if e, ok := err.(*parley.Error); ok {
		parts := []string{}
		if e.Title != "" {
			parts = append(parts, e.Title)
		}
		if e.Message != "" {
			parts = append(parts, e.Message)
		}
		parts = append(parts, e.Details...)
		return strings.Join(parts, ": ")
	}
	return err.Error()
}

// recipientIn is one element of the recipients array, type-checked.
type recipientIn struct {
	phone     string
	contactID string
	params    any // nil, []any of strings, or map[string]any
}

// decodeRecipients type-checks the recipients: each must be an object whose
// phone_number is a string (or a number), whatsapp_contact_id a string and
// template_parameters an array of strings (numbers and booleans are
// written as strings) or an object. Anything else is a 422 for the whole
// request.
func decodeRecipients(items []json.RawMessage) ([]recipientIn, error) {
	out := make([]recipientIn, 0, len(items))
	for i, raw := range items {
		fields, err := api.ParseFields(raw, "")
		if err != nil || !isObject(raw) {
			return nil, parley.Invalid("Invalid parameters", fmt.Sprintf("Recipient %d must be an object", i+1))
		}
		var in recipientIn
		wrap := func(err error) error {
			if e, ok := err.(*parley.Error); ok {
				return parley.Invalid("Invalid parameters", fmt.Sprintf("Recipient %d: %s", i+1, strings.Join(e.Details, ", ")))
			}
			return err
		}
		phone, _, err := fields.String("phone_number")
		if err != nil {
			return nil, wrap(err)
		}
		if phone != nil {
			in.phone = strings.TrimSpace(*phone)
		}
		contact, _, err := fields.String("whatsapp_contact_id")
		if err != nil {
			return nil, wrap(err)
		}
		if contact != nil {
			in.contactID = strings.TrimSpace(*contact)
		}
		if p, ok := fields.Raw("template_parameters"); ok && string(p) != "null" {
			var v any
			if err := json.Unmarshal(p, &v); err != nil {
				return nil, wrap(api.TypeErr("template_parameters", "an array or an object"))
			}
			switch x := v.(type) {
			case []any:
				strs := make([]any, len(x))
				for j, e := range x {
					s, ok := scalarString(e)
					if !ok {
						return nil, wrap(api.TypeErr("template_parameters", "an array of strings or an object"))
					}
					strs[j] = s
				}
				in.params = strs
			case map[string]any:
				in.params = x
			default:
				return nil, wrap(api.TypeErr("template_parameters", "an array or an object"))
			}
		}
		out = append(out, in)
	}
	return out, nil
}

func isObject(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return strings.HasPrefix(s, "{")
}

// scalarString renders a positional parameter; only strings, numbers and
// booleans are allowed.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "", false
		}
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// send is POST …/send: a draft with recipients becomes sending and its job
// is enqueued in the same transaction.
func (h *handler) send(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	b, err := h.load(r, a)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var started time.Time
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		cur, err := getBroadcast(ctx, tx, a.ProjectID, b.ID)
		if err != nil {
			return err
		}
		if err := sendable(cur.Status); err != nil {
			return err
		}
		n, err := countRecipients(ctx, tx, cur.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return parley.Invalid("Broadcast has no recipients")
		}
		started = now()
		ok, err := startSending(ctx, tx, cur.ID, started)
		if err != nil {
			return err
		}
		if !ok {
			// Another request moved it first (PostgreSQL: it committed
			// while this one waited for the row).
			again, err := getBroadcast(ctx, tx, a.ProjectID, b.ID)
			if err != nil {
				return err
			}
			if err := sendable(again.Status); err != nil {
				return err
			}
			return parley.Invalid("Broadcast is already sending")
		}
		_, err = jobs.Enqueue(ctx, tx, JobSend, sendPayload{BroadcastID: cur.ID}, jobs.Options{UniqueKey: jobKey(cur.ID), MaxAttempts: jobAttempts})
		return err
	})
	if err != nil {
		return err
	}
	h.s.JobsEnqueued()
	api.WriteData(w, http.StatusAccepted, map[string]any{"id": b.ID, "status": statusSending, "started_at": started})
	return nil
}

// sendable refuses to send a broadcast that is not a draft.
func sendable(status string) error {
	switch status {
	case statusDraft:
		return nil
	case statusSending:
		return parley.Invalid("Broadcast is already sending")
	case statusFailed:
		return &parley.Error{Code: parley.EINVALID, Title: "Broadcast already completed",
			Message: "The broadcast has finished (status failed); create a new broadcast to send again"}
	default:
		return parley.Invalid("Broadcast already completed")
	}
}

// templateStatus maps a template status onto the enum of Kapso's
// BasicWhatsappTemplate (approved, pending, rejected).
func templateStatus(s string) string {
	switch s {
	case parley.TemplateApproved:
		return "approved"
	case parley.TemplateDraft, parley.TemplateSubmitted:
		return "pending"
	default: // rejected, disabled, removed: not sendable
		return "rejected"
	}
}

// render renders a broadcast as Kapso's WhatsappBroadcast.
func render(b *broadcast) map[string]any {
	k := b.counts
	pending := max(k.Total-k.Sent-k.Failed, 0)
	rate := 0.0
	if k.Sent > 0 {
		rate = math.Round(float64(k.Responded)*1000/float64(k.Sent)) / 10
	}
	tpl := map[string]any{"id": b.TemplateID, "name": b.TemplateName, "language_code": b.TemplateLanguage,
		"status": templateStatus(b.TemplateStatus)}
	switch b.TemplateCategory {
	case parley.CategoryMarketing, parley.CategoryUtility, parley.CategoryAuthentication:
		tpl["category"] = b.TemplateCategory
	}
	return map[string]any{
		"id": b.ID, "name": b.Name, "status": b.Status, "started_at": b.StartedAt, "completed_at": b.CompletedAt,
		"created_at": b.CreatedAt, "updated_at": b.UpdatedAt, "whatsapp_config_id": b.ConfigID, "whatsapp_template": tpl,
		"total_recipients": k.Total, "sent_count": k.Sent, "failed_count": k.Failed, "delivered_count": k.Delivered,
		"read_count": k.Read, "responded_count": k.Responded, "pending_count": pending, "response_rate": rate,
		"stats": map[string]any{"total": k.Total, "sent": k.Sent, "failed": k.Failed, "delivered": k.Delivered,
			"read": k.Read, "responded": k.Responded, "pending": pending},
	}
}

// renderRecipient renders a recipient as Kapso's WhatsappBroadcastRecipient:
// pending until its message is accepted by Meta, then sent (delivered and
// read are the message's later timestamps), or failed.
func renderRecipient(r *recipient) map[string]any {
	status := "pending"
	var errMsg *string
	var errDetails map[string]any
	failedAt := r.FailedAt
	updated := r.UpdatedAt
	switch {
	case r.Status == recipientFailed:
		status, errMsg = "failed", r.ErrorMessage
	case r.Status == recipientQueued && r.MsgStatus == "":
		status = "sent" // the message was deleted after it was handed over
	case r.MsgStatus == parley.MessageFailed:
		status, failedAt = "failed", r.MsgFailedAt
		errMsg = r.MsgErrorText
		if errMsg == nil {
			errMsg = r.MsgErrorTitle
		}
		if r.MsgErrorCode != nil {
			errDetails = map[string]any{"error_code": fmt.Sprint(*r.MsgErrorCode)}
			if r.MsgErrorTitle != nil {
				errDetails["error_title"] = *r.MsgErrorTitle
			}
		}
	case r.MsgStatus == parley.MessageSent || r.MsgStatus == parley.MessageDelivered || r.MsgStatus == parley.MessageRead:
		status = "sent"
	}
	if r.MsgUpdatedAt != nil && r.MsgUpdatedAt.After(updated) {
		updated = *r.MsgUpdatedAt
	}
	out := map[string]any{
		"id": r.ID, "phone_number": r.PhoneNumber, "status": status, "sent_at": r.MsgSentAt, "failed_at": failedAt,
		"delivered_at": r.MsgDeliveredAt, "read_at": r.MsgReadAt, "responded_at": r.RespondedAt,
		"error_message": errMsg, "error_details": errDetails, "created_at": r.CreatedAt, "updated_at": updated,
	}
	if r.Params != nil {
		out["template_parameters"] = r.Params
	}
	return out
}
