package contacts

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// badParam is the 400 for a query parameter outside its documented values.
func badParam(name, want string) error {
	return &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters", Message: name + " must be " + want}
}

// callPeriod turns period/start_date/end_date into a created_at range. The
// named periods start at the beginning of the current UTC day, ISO week
// (Monday) or month, as Rails' beginning_of_* do; "custom" uses the dates,
// a date-only end_date covering that whole day. The dates are only used
// with "custom", but a malformed one is a 400 whatever the period.
func callPeriod(r *http.Request, at time.Time) (from, to *time.Time, err error) {
	q := r.URL.Query()
	parse := func(name string, end bool) (*time.Time, error) {
		v := strings.TrimSpace(q.Get(name))
		if v == "" {
			return nil, nil
		}
		t, err := api.ParseTime(v)
		if err != nil {
			return nil, badParam(name, "an ISO 8601 date or time")
		}
		if end && len(v) == len("2006-01-02") {
			t = t.Add(24*time.Hour - time.Microsecond)
		}
		return &t, nil
	}
	start, err := parse("start_date", false)
	if err != nil {
		return nil, nil, err
	}
	end, err := parse("end_date", true)
	if err != nil {
		return nil, nil, err
	}
	period := strings.TrimSpace(q.Get("period"))
	day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	switch period {
	case "":
		return nil, nil, nil
	case "today":
		return &day, nil, nil
	case "week":
		wd := (int(day.Weekday()) + 6) % 7 // Monday = 0
		t := day.AddDate(0, 0, -wd)
		return &t, nil, nil
	case "month":
		t := time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
		return &t, nil, nil
	case "custom":
		return start, end, nil
	default:
		return nil, nil, badParam("period", "one of today, week, month, custom")
	}
}

func (h *handlers) listCalls(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	q := r.URL.Query()
	var f CallFilter
	if v := strings.TrimSpace(q.Get("status")); v != "" {
		f.Status = &v
	}
	if v := strings.TrimSpace(q.Get("direction")); v != "" {
		if v != parley.CallInbound && v != parley.CallOutbound {
			return badParam("direction", "inbound or outbound")
		}
		f.Direction = &v
	}
	if v := strings.TrimSpace(q.Get("whatsapp_config_id")); v != "" {
		v = strings.ToLower(v)
		f.ConfigID = &v
		f.NoMatch = f.NoMatch || !api.IsUUID(v)
	}
	// Parley has no voice agents: no call was handled by one.
	if strings.TrimSpace(q.Get("voice_agent_id")) != "" {
		f.NoMatch = true
	}
	var err error
	if f.From, f.To, err = callPeriod(r, time.Now().UTC()); err != nil {
		return err
	}
	p := api.PageOf(r)
	list, total, err := ListCalls(r.Context(), h.s.DB.Read(), a.ProjectID, f, p)
	if err != nil {
		return err
	}
	api.WriteList(w, list, p, total)
	return nil
}

func (h *handlers) getCall(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "Call")
	if err != nil {
		return err
	}
	k, err := GetCall(r.Context(), h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, k)
	return nil
}

// permissionContact resolves the path's contact with the 404 title Kapso
// documents on the call-permission routes.
func (h *handlers) permissionContact(r *http.Request, c *store.Conn, a *api.Auth) (*parley.Contact, error) {
	ct, err := h.resolve(r, c, a)
	if parley.IsNotFound(err) {
		return nil, parley.NotFound("WhatsApp contact")
	}
	return ct, err
}

func (h *handlers) listCallPermissions(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	c := h.s.DB.Read()
	ct, err := h.permissionContact(r, c, a)
	if err != nil {
		return err
	}
	// Kapso's document shows no meta here, but every Parley list carries
	// one (README decision 3); extra keys break no Kapso client.
	p := api.PageOf(r)
	list, total, err := ListCallPermissions(r.Context(), c, a.ProjectID, ct.ID, p)
	if err != nil {
		return err
	}
	api.WriteList(w, list, p, total)
	return nil
}

func (h *handlers) getCallPermission(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	c := h.s.DB.Read()
	ct, err := h.permissionContact(r, c, a)
	if err != nil {
		return err
	}
	cfg, err := api.PathID(r, "whatsapp_config_id", "Call permission")
	if err != nil {
		return err
	}
	p, err := GetCallPermission(r.Context(), c, a.ProjectID, ct.ID, cfg)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, p)
	return nil
}

// callDirection maps Meta's direction to Kapso's. Without one, a call from
// the config's own number is outbound.
func callDirection(cfg *parley.WhatsAppConfig, c whatsapp.Call) string {
	switch strings.ToUpper(c.Direction) {
	case "USER_INITIATED":
		return parley.CallInbound
	case "BUSINESS_INITIATED":
		return parley.CallOutbound
	}
	if cfg.DisplayPhoneNumberNormalized != nil && *cfg.DisplayPhoneNumberNormalized != "" &&
		parley.NormalizePhone(c.From) == *cfg.DisplayPhoneNumberNormalized {
		return parley.CallOutbound
	}
	return parley.CallInbound
}

// callStatus is Kapso's lower-case status: Meta's own status when it sends
// one (completed, failed, ringing, accepted, rejected), else "ringing" for
// a connect (the call is being offered) and "ended" for a terminate.
func callStatus(c whatsapp.Call) string {
	if s := strings.ToLower(strings.TrimSpace(c.Status)); s != "" {
		return s
	}
	switch strings.ToLower(c.Event) {
	case "connect":
		return "ringing"
	case "terminate":
		return "ended"
	}
	return ""
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// RecordCall applies one element of Meta's "calls" webhook to the calls
// table, inside the caller's transaction: the first event creates the row,
// later ones (terminate after connect, or out of order) fill it in. The
// customer's contact is created if needed and the call is linked to the
// latest conversation with that number.
//
// Times: session_started_at is when the call was first offered (the
// connect event), started_at when it was connected (Meta's start_time),
// ended_at when it ended.
func RecordCall(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, call whatsapp.Call) error {
	if strings.TrimSpace(call.ID) == "" {
		return parley.Invalid("Validation failed", "Call id can't be blank")
	}
	e := callEvent{ProjectID: cfg.ProjectID, ConfigID: cfg.ID, CallID: call.ID}
	dir := callDirection(cfg, call)
	e.Direction = &dir
	if st := callStatus(call); st != "" {
		e.Status = &st
	}
	user := call.From
	if dir == parley.CallOutbound {
		user = call.To
	}
	if wa := parley.NormalizePhone(user); parley.ValidPhone(wa) {
		e.UserWaID = &wa
		ct, err := Upsert(ctx, tx, cfg.ProjectID, cfg.CustomerID, wa, "")
		if err != nil {
			return err
		}
		e.ContactID = &ct.ID
		if e.ConversationID, err = LatestConversationID(ctx, tx, cfg.ID, wa); err != nil {
			return err
		}
	}
	if strings.EqualFold(call.Event, "connect") {
		e.Session = timePtr(call.Timestamp)
	}
	e.Started = timePtr(call.StartTime)
	e.Ended = timePtr(call.EndTime)
	if e.Ended == nil && strings.EqualFold(call.Event, "terminate") {
		e.Ended = timePtr(call.Timestamp)
	}
	if call.Duration > 0 {
		d := int(call.Duration / time.Second)
		e.Duration = &d
	} else if e.Started != nil && e.Ended != nil && e.Ended.After(*e.Started) {
		d := int(e.Ended.Sub(*e.Started) / time.Second)
		e.Duration = &d
	}
	return mergeCall(ctx, tx, e)
}

// RecordCallPermission stores a contact's answer to a config's call
// permission request (Meta's call_permission_reply interactive message),
// inside the caller's transaction. status is Meta's response ("accept" /
// "reject") or Kapso's ("accepted" / "rejected"); source is Meta's
// response_source; expiresAt is nil for a permanent permission; messageID
// is the wamid of the reply and at its time. A reply older than the one
// already recorded is ignored.
func RecordCallPermission(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, contactID, status, source string,
	expiresAt *time.Time, messageID string, at time.Time) error {
	var st string
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "accept", "accepted":
		st = parley.CallPermissionAccepted
	case "reject", "rejected":
		st = parley.CallPermissionRejected
	default:
		return parley.Invalid("Validation failed", "Status is not included in the list")
	}
	p := &parley.CallPermission{ProjectID: cfg.ProjectID, ContactID: contactID, WhatsAppConfigID: cfg.ID, Status: st,
		ExpiresAt: expiresAt, LastEventAt: timePtr(at)}
	if s := strings.TrimSpace(source); s != "" {
		p.Source = &s
	}
	if m := strings.TrimSpace(messageID); m != "" {
		p.LastEventMessageID = &m
	}
	if p.ExpiresAt != nil {
		t := p.ExpiresAt.UTC()
		p.ExpiresAt = &t
	}
	return upsertPermission(ctx, tx, p)
}
