package platform

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/netguard"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
)

// ConfigView is a WhatsApp config as the API renders it (Kapso's
// WhatsappConfig schema): secrets are absent, and the fields the schema does
// not allow to be null (display_name, business_account_id, the display phone
// numbers, customer_id) are omitted when unknown — a project-level config has
// no customer_id, a sandbox config no business account.
type ConfigView struct {
	ID                           string     `json:"id"`
	Name                         string     `json:"name"`
	DisplayName                  *string    `json:"display_name,omitempty"`
	PhoneNumberID                string     `json:"phone_number_id"`
	BusinessAccountID            *string    `json:"business_account_id,omitempty"`
	Kind                         string     `json:"kind"`
	DisplayPhoneNumber           *string    `json:"display_phone_number,omitempty"`
	DisplayPhoneNumberNormalized *string    `json:"display_phone_number_normalized,omitempty"`
	IsCoexistence                bool       `json:"is_coexistence"`
	WebhookVerifiedAt            *time.Time `json:"webhook_verified_at"`
	CustomerID                   *string    `json:"customer_id,omitempty"`
	InboundProcessingEnabled     bool       `json:"inbound_processing_enabled"`
	CallsEnabled                 bool       `json:"calls_enabled"`
	CreatedAt                    time.Time  `json:"created_at"`
	UpdatedAt                    time.Time  `json:"updated_at"`
}

// RenderConfig returns the API view of cfg.
func RenderConfig(cfg *parley.WhatsAppConfig) ConfigView {
	return ConfigView{
		ID: cfg.ID, Name: cfg.Name, DisplayName: cfg.DisplayName, PhoneNumberID: cfg.PhoneNumberID,
		BusinessAccountID: cfg.BusinessAccountID, Kind: cfg.Kind, DisplayPhoneNumber: cfg.DisplayPhoneNumber,
		DisplayPhoneNumberNormalized: cfg.DisplayPhoneNumberNormalized, IsCoexistence: cfg.IsCoexistence,
		WebhookVerifiedAt: cfg.WebhookVerifiedAt, CustomerID: cfg.CustomerID,
		InboundProcessingEnabled: cfg.InboundProcessingEnabled, CallsEnabled: cfg.CallsEnabled,
		CreatedAt: cfg.CreatedAt, UpdatedAt: cfg.UpdatedAt,
	}
}

func renderConfigs(cfgs []*parley.WhatsAppConfig) []ConfigView {
	out := make([]ConfigView, len(cfgs))
	for i, c := range cfgs {
		out[i] = RenderConfig(c)
	}
	return out
}

// ---- lists and reads ----

func configFilter(r *http.Request) (store.ConfigFilter, error) {
	var f store.ConfigFilter
	q := r.URL.Query()
	if v := strings.TrimSpace(q.Get("business_account_id")); v != "" {
		f.BusinessAccountIDEq = &v
	}
	if v, ok := api.QParam(r, "business_account_id_eq"); ok {
		f.BusinessAccountIDEq = &v
	}
	f.NameCont, _ = api.QParam(r, "name_cont")
	var err error
	if f.CreatedAtGteq, err = api.QTime(r, "created_at_gteq"); err != nil {
		return f, err
	}
	if f.CreatedAtLteq, err = api.QTime(r, "created_at_lteq"); err != nil {
		return f, err
	}
	if v := strings.TrimSpace(q.Get("customer_id")); v != "" {
		v = strings.ToLower(v)
		f.CustomerID = &v
	}
	if v, ok := api.QParam(r, "customer_id_eq"); ok {
		v = strings.ToLower(v)
		f.CustomerID = &v
	}
	if v, ok := api.QParam(r, "kind_eq"); ok {
		f.Kind = &v
	}
	if v, ok := api.QParam(r, "phone_number_id_eq"); ok {
		f.PhoneNumberIDEq = &v
	}
	return f, nil
}

func (h *handlers) listConfigs(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	f, err := configFilter(r)
	if err != nil {
		return err
	}
	p := api.PageOf(r)
	items, total, err := store.ListConfigs(r.Context(), h.s.DB.Read(), a.ProjectID, f, p)
	if err != nil {
		return err
	}
	api.WriteList(w, renderConfigs(items), p, total)
	return nil
}

func (h *handlers) listCustomerConfigs(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	cid, err := api.PathID(r, "customer_id", "Customer")
	if err != nil {
		return err
	}
	f, err := configFilter(r)
	if err != nil {
		return err
	}
	f.CustomerID = &cid
	c := h.s.DB.Read()
	if _, err := store.GetCustomer(r.Context(), c, a.ProjectID, cid); err != nil {
		return err
	}
	p := api.PageOf(r)
	items, total, err := store.ListConfigs(r.Context(), c, a.ProjectID, f, p)
	if err != nil {
		return err
	}
	api.WriteList(w, renderConfigs(items), p, total)
	return nil
}

func (h *handlers) getConfig(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return err
	}
	cfg, err := store.GetConfig(r.Context(), h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, RenderConfig(cfg))
	return nil
}

// ---- decoding ----

// configInput is a decoded config body; nil pointers were not sent (or were
// null, which the has* flags tell apart where it matters).
type configInput struct {
	f                                                   *api.Fields
	name, kind, phoneNumberID, waba, accessToken        *string
	verifyToken, destURL, appSecret, displayName, phone *string
	inbound, calls                                      *bool
	cfg                                                 config.Config // the address policy for destURL
}

func readConfigInput(f *api.Fields, cfg config.Config) (*configInput, error) {
	in := &configInput{f: f, cfg: cfg}
	rd := &reader{f: f}
	in.name = rd.str("name")
	in.kind = rd.str("kind")
	in.phoneNumberID = rd.str("phone_number_id")
	in.waba = rd.str("business_account_id")
	in.accessToken = rd.str("access_token")
	in.verifyToken = rd.str("webhook_verify_token")
	in.destURL = rd.str("webhook_destination_url")
	in.appSecret = rd.str("app_secret")
	in.displayName = rd.str("display_name")
	in.phone = rd.str("display_phone_number")
	in.inbound = rd.bool("inbound_processing_enabled")
	in.calls = rd.bool("calls_enabled")
	return in, rd.err
}

// reader reads typed fields, keeping the first type error (a 422).
type reader struct {
	f   *api.Fields
	err error
}

func (r *reader) set(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) str(key string) *string {
	v, _, err := r.f.String(key)
	r.set(err)
	return v
}

func (r *reader) bool(key string) *bool {
	v, _, err := r.f.Bool(key)
	r.set(err)
	return v
}

func (r *reader) int(key string) *int {
	v, _, err := r.f.Int(key)
	r.set(err)
	return v
}

// metaID matches Meta's numeric ids; letters, '_' and '-' are tolerated so
// test fixtures and other simulators work, but nothing that would break a
// Graph URL path.
var metaID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// validation accumulates Rails-style full messages.
type validation []string

func (v *validation) add(format string, args ...any) { *v = append(*v, fmt.Sprintf(format, args...)) }

func (v validation) err() error {
	if len(v) == 0 {
		return nil
	}
	return parley.Invalid("Validation failed", v...)
}

// secretUpdate says what to do with an encrypted column: keep, set or clear.
type secretUpdate struct {
	set   bool
	value string // "" clears
}

// apply validates in against cfg (a new config when creating) and applies
// it. Sandbox identities are generated here, hence the transaction. It
// returns the change to the verify token for the lookup hash.
func (in *configInput) apply(ctx context.Context, tx *store.Conn, box *secrets.Box, cfg *parley.WhatsAppConfig, creating bool) (secretUpdate, error) {
	var v validation
	var vt secretUpdate
	f := in.f
	if creating || f.Has("name") {
		switch n := str(in.name); {
		case n == "":
			v.add("Name can't be blank")
		case len(n) > 255:
			v.add("Name is too long (maximum is 255 characters)")
		default:
			cfg.Name = n
		}
	}
	kind := cfg.Kind
	if creating {
		kind = parley.KindProduction
	}
	if in.kind != nil {
		switch k := strings.ToLower(str(in.kind)); k {
		case parley.KindProduction, parley.KindSandbox:
			kind = k
		default:
			v.add("Kind is not included in the list")
		}
	} else if f.Has("kind") && !creating {
		v.add("Kind is not included in the list")
	}
	becomesSandbox := kind == parley.KindSandbox && (creating || cfg.Kind != parley.KindSandbox)
	becomesProduction := kind == parley.KindProduction && !creating && cfg.Kind != parley.KindProduction
	if kind == parley.KindProduction {
		// A config switching from sandbox must name its real number: the
		// generated sandbox identity is no use against Meta.
		pid, waba := cfg.PhoneNumberID, str(cfg.BusinessAccountID)
		if creating || becomesProduction {
			pid, waba = "", ""
		}
		if f.Has("phone_number_id") {
			pid = str(in.phoneNumberID)
		}
		if f.Has("business_account_id") {
			waba = str(in.waba)
		}
		switch {
		case pid == "":
			v.add("Phone number id can't be blank")
		case !metaID.MatchString(pid):
			v.add("Phone number id is invalid")
		default:
			cfg.PhoneNumberID = pid
		}
		switch {
		case waba == "":
			v.add("Business account id can't be blank")
		case !metaID.MatchString(waba):
			v.add("Business account id is invalid")
		default:
			cfg.BusinessAccountID = &waba
		}
		hasToken := cfg.AccessTokenEnc != "" && !creating && !becomesProduction
		if f.Has("access_token") {
			hasToken = false
			switch t := str(in.accessToken); {
			case t == "":
			case len(t) > 4096:
				v.add("Access token is too long (maximum is 4096 characters)")
				hasToken = true
			default:
				enc, err := box.Encrypt(t)
				if err != nil {
					return vt, err
				}
				cfg.AccessTokenEnc, hasToken = enc, true
			}
		}
		if !hasToken {
			v.add("Access token can't be blank")
		}
		if becomesProduction {
			// Drop the sandbox's generated secret and number.
			cfg.AppSecretEnc, cfg.DisplayPhoneNumber, cfg.DisplayPhoneNumberNormalized = "", nil, nil
		}
		if f.Has("app_secret") {
			switch s := str(in.appSecret); {
			case s == "":
				cfg.AppSecretEnc = ""
			case len(s) > 255:
				v.add("App secret is too long (maximum is 255 characters)")
			default:
				enc, err := box.Encrypt(s)
				if err != nil {
					return vt, err
				}
				cfg.AppSecretEnc = enc
			}
		}
		if f.Has("display_phone_number") {
			if p := str(in.phone); p == "" {
				cfg.DisplayPhoneNumber, cfg.DisplayPhoneNumberNormalized = nil, nil
			} else if d := parley.NormalizePhone(p); !parley.ValidPhone(d) || len(p) > 32 {
				v.add("Display phone number is invalid")
			} else {
				cfg.DisplayPhoneNumber, cfg.DisplayPhoneNumberNormalized = &p, &d
			}
		}
		if f.Has("display_name") {
			if d := str(in.displayName); d == "" {
				cfg.DisplayName = nil
			} else if len(d) > 255 {
				v.add("Display name is too long (maximum is 255 characters)")
			} else {
				cfg.DisplayName = &d
			}
		}
	}
	if f.Has("webhook_verify_token") {
		switch t := str(in.verifyToken); {
		case len(t) > 255:
			v.add("Webhook verify token is too long (maximum is 255 characters)")
		case t == "":
			cfg.WebhookVerifyTokenEnc, vt = "", secretUpdate{set: true}
		default:
			enc, err := box.Encrypt(t)
			if err != nil {
				return vt, err
			}
			cfg.WebhookVerifyTokenEnc, vt = enc, secretUpdate{set: true, value: t}
		}
	}
	if f.Has("webhook_destination_url") {
		switch u := str(in.destURL); {
		case u == "":
			cfg.WebhookDestinationURL = nil
		case len(u) > 2048 || !ValidHTTPURL(u):
			v.add("Webhook destination url must be a valid URL")
		case netguard.PolicyFor(in.cfg).CheckURL(u) != nil:
			// Forwards go through the deliveries' client: refuse what it
			// would refuse on every attempt.
			v.add("Webhook destination url %s", netguard.PolicyFor(in.cfg).CheckURL(u))
		default:
			cfg.WebhookDestinationURL = &u
		}
	}
	if in.inbound != nil {
		cfg.InboundProcessingEnabled = *in.inbound
	} else if f.Has("inbound_processing_enabled") {
		v.add("Inbound processing enabled must be true or false")
	}
	if in.calls != nil {
		cfg.CallsEnabled = *in.calls
	} else if f.Has("calls_enabled") {
		v.add("Calls enabled must be true or false")
	}
	if err := v.err(); err != nil {
		return vt, err
	}
	if kind == parley.KindProduction {
		taken, err := phoneNumberIDTakenExcept(ctx, tx, cfg.PhoneNumberID, cfg.ID)
		if err != nil {
			return vt, err
		}
		if taken {
			return vt, parley.Invalid("Validation failed", "Phone number has already been taken")
		}
	}
	cfg.Kind = kind
	if becomesSandbox {
		if err := assignSandboxIdentity(ctx, tx, box, cfg); err != nil {
			return vt, err
		}
	}
	return vt, nil
}

func phoneNumberIDTakenExcept(ctx context.Context, c *store.Conn, pid, exceptID string) (bool, error) {
	var n int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM whatsapp_configs WHERE phone_number_id = ? AND id <> ?`, pid, exceptID).Scan(&n); err != nil {
		return false, fmt.Errorf("platform: check phone number id: %w", err)
	}
	return n > 0, nil
}

// anyDigits returns n random decimal digits, leading zeros allowed.
func anyDigits(n int) string { return randomDigits(n + 1)[1:] }

// assignSandboxIdentity gives cfg a simulated number: a unique 15-digit
// phone_number_id, the project's sandbox business account, a fictional
// +1 555 01XX number, and fresh per-config secrets (the app secret signs the
// simulator's Meta-style webhooks; the token authenticates its Graph calls).
func assignSandboxIdentity(ctx context.Context, tx *store.Conn, box *secrets.Box, cfg *parley.WhatsAppConfig) error {
	var pid string
	for i := 0; ; i++ {
		pid = randomDigits(15)
		taken, err := phoneNumberIDTaken(ctx, tx, pid)
		if err != nil {
			return err
		}
		if !taken {
			break
		}
		if i > 10 {
			return fmt.Errorf("platform: no free sandbox phone number id")
		}
	}
	waba, err := sandboxWABA(ctx, tx, cfg.ProjectID)
	if err != nil {
		return err
	}
	var display, digits string
	for i := 0; i < 20; i++ {
		xx, rest := anyDigits(2), anyDigits(4)
		display, digits = "+1 555 0"+xx+" "+rest, "15550"+xx+rest
		taken, err := displayNumberTaken(ctx, tx, digits)
		if err != nil {
			return err
		}
		if !taken {
			break
		}
	}
	secret, err := box.Encrypt(randomHex(32))
	if err != nil {
		return err
	}
	token, err := box.Encrypt("sandbox_" + randomHex(24))
	if err != nil {
		return err
	}
	name := cfg.Name
	cfg.PhoneNumberID, cfg.BusinessAccountID = pid, &waba
	cfg.DisplayPhoneNumber, cfg.DisplayPhoneNumberNormalized, cfg.DisplayName = &display, &digits, &name
	cfg.AppSecretEnc, cfg.AccessTokenEnc, cfg.IsCoexistence = secret, token, false
	return nil
}

// ---- writes ----

// CreateSandboxConfig creates a project-level sandbox config named name in
// tx and emits whatsapp.config.created, as POST /whatsapp_configs with
// kind "sandbox" does. The app's bootstrap uses it to give a fresh install a
// working simulated number.
func CreateSandboxConfig(ctx context.Context, tx *store.Conn, box *secrets.Box, projectID, name string) (*parley.WhatsAppConfig, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Sandbox"
	}
	cfg := &parley.WhatsAppConfig{ProjectID: projectID, Name: name, Kind: parley.KindSandbox, InboundProcessingEnabled: true}
	if err := assignSandboxIdentity(ctx, tx, box, cfg); err != nil {
		return nil, err
	}
	if err := insertConfig(ctx, tx, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// insertConfig stores a new config and its created event together.
func insertConfig(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig) error {
	if err := store.CreateConfig(ctx, tx, cfg); err != nil {
		return err
	}
	return emitConfigEvent(ctx, tx, cfg, parley.EventConfigCreated)
}

// emitConfigEvent records a project lifecycle event about cfg
// (semantics.md §2.11): v1 carries the config, project and customer; v2
// names the phone number.
func emitConfigEvent(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, typ string) error {
	p, err := store.GetProject(ctx, tx, cfg.ProjectID)
	if err != nil {
		return err
	}
	var cust, custRef any
	if cfg.CustomerID != nil {
		c, err := store.GetCustomer(ctx, tx, cfg.ProjectID, *cfg.CustomerID)
		if err != nil {
			return err
		}
		cust, custRef = c, map[string]any{"id": c.ID}
	}
	v1 := map[string]any{
		"whatsapp_config": map[string]any{
			"id": cfg.ID, "name": cfg.Name, "phone_number_id": cfg.PhoneNumberID, "business_account_id": cfg.BusinessAccountID,
			"is_coexistence": cfg.IsCoexistence, "inbound_processing_enabled": cfg.InboundProcessingEnabled,
			"calls_enabled": cfg.CallsEnabled, "webhook_verified_at": cfg.WebhookVerifiedAt, "created_at": cfg.CreatedAt,
			"updated_at": cfg.UpdatedAt, "customer_id": cfg.CustomerID, "display_name": cfg.DisplayName,
			"display_phone_number": cfg.DisplayPhoneNumber, "display_phone_number_normalized": cfg.DisplayPhoneNumberNormalized,
		},
		"project":  p,
		"customer": cust,
	}
	v2 := map[string]any{
		"phone_number_id":    cfg.PhoneNumberID,
		"project":            map[string]any{"id": p.ID},
		"customer":           custRef,
		"whatsapp_config_id": cfg.ID,
	}
	_, err = events.Emit(ctx, tx, events.Event{ProjectID: cfg.ProjectID, ConfigID: cfg.ID, Type: typ, V2: v2, V1: v1})
	return err
}

func setVerifyHash(ctx context.Context, tx *store.Conn, box *secrets.Box, id string, vt secretUpdate) error {
	if !vt.set {
		return nil
	}
	var hash *string
	if vt.value != "" {
		h := box.Lookup(vt.value)
		hash = &h
	}
	return store.SetConfigVerifyTokenHash(ctx, tx, id, hash)
}

func (h *handlers) createConfig(w http.ResponseWriter, r *http.Request, a *api.Auth, customerID *string) error {
	f, err := h.s.DecodeFields(w, r, "whatsapp_config")
	if err != nil {
		return err
	}
	cfg, err := CreateConfig(r.Context(), h.s, a.ProjectID, customerID, f)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, RenderConfig(cfg))
	return nil
}

// CreateConfig creates a WhatsApp config of projectID (of customerID when
// set) from the attributes of a request body, as /api/v1's whatsapp_config
// and /platform/v1's whatsapp_phone_number both carry them.
func CreateConfig(ctx context.Context, s *api.Server, projectID string, customerID *string, f *api.Fields) (*parley.WhatsAppConfig, error) {
	in, err := readConfigInput(f, s.Config)
	if err != nil {
		return nil, err
	}
	cfg := &parley.WhatsAppConfig{ID: store.NewID(), ProjectID: projectID, CustomerID: customerID, InboundProcessingEnabled: true}
	err = s.DB.Tx(ctx, func(tx *store.Conn) error {
		if customerID != nil {
			if _, err := store.GetCustomer(ctx, tx, projectID, *customerID); err != nil {
				return err
			}
		}
		vt, err := in.apply(ctx, tx, s.Box, cfg, true)
		if err != nil {
			return err
		}
		if err := insertConfig(ctx, tx, cfg); err != nil {
			return err
		}
		return setVerifyHash(ctx, tx, s.Box, cfg.ID, vt)
	})
	if err != nil {
		return nil, err
	}
	s.EventsWritten()
	return cfg, nil
}

func (h *handlers) createProjectConfig(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	return h.createConfig(w, r, a, nil)
}

func (h *handlers) createCustomerConfig(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	cid, err := api.PathID(r, "customer_id", "Customer")
	if err != nil {
		return err
	}
	return h.createConfig(w, r, a, &cid)
}

func (h *handlers) updateConfig(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "whatsapp_config")
	if err != nil {
		return err
	}
	cfg, err := UpdateConfig(r.Context(), h.s, a.ProjectID, id, f)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, RenderConfig(cfg))
	return nil
}

// UpdateConfig applies the attributes of a request body to the config id of
// projectID, as both API surfaces do.
func UpdateConfig(ctx context.Context, s *api.Server, projectID, id string, f *api.Fields) (*parley.WhatsAppConfig, error) {
	in, err := readConfigInput(f, s.Config)
	if err != nil {
		return nil, err
	}
	var out *parley.WhatsAppConfig
	err = s.DB.Tx(ctx, func(tx *store.Conn) error {
		cfg, err := store.GetConfig(ctx, tx, projectID, id)
		if err != nil {
			return err
		}
		vt, err := in.apply(ctx, tx, s.Box, cfg, false)
		if err != nil {
			return err
		}
		if err := store.UpdateConfig(ctx, tx, cfg); err != nil {
			return err
		}
		out = cfg
		return setVerifyHash(ctx, tx, s.Box, cfg.ID, vt)
	})
	return out, err
}

// deleteCustomer deletes a customer and, through foreign keys, its configs
// and their data; each config's deletion is announced to project webhooks
// (whatsapp.config.deleted) as when the config is deleted on its own.
func (h *handlers) deleteCustomer(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "Customer")
	if err != nil {
		return err
	}
	ctx := r.Context()
	emitted := false
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := store.GetCustomer(ctx, tx, a.ProjectID, id); err != nil {
			return err
		}
		for page := 1; ; page++ {
			cfgs, _, err := store.ListConfigs(ctx, tx, a.ProjectID, store.ConfigFilter{CustomerID: &id}, parley.Page{Page: page, PerPage: 100})
			if err != nil {
				return err
			}
			for _, cfg := range cfgs {
				if err := emitConfigEvent(ctx, tx, cfg, parley.EventConfigDeleted); err != nil {
					return err
				}
				emitted = true
			}
			if len(cfgs) < 100 {
				break
			}
		}
		return store.DeleteCustomer(ctx, tx, a.ProjectID, id)
	})
	if err != nil {
		return err
	}
	if emitted {
		h.s.EventsWritten()
	}
	api.NoContent(w)
	return nil
}

func (h *handlers) deleteConfig(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		cfg, err := store.GetConfig(ctx, tx, a.ProjectID, id)
		if err != nil {
			return err
		}
		// The event is written first: its payload needs the config, and
		// events have no foreign key to it, so the row outlives the delete.
		if err := emitConfigEvent(ctx, tx, cfg, parley.EventConfigDeleted); err != nil {
			return err
		}
		return store.DeleteConfig(ctx, tx, a.ProjectID, id)
	})
	if err != nil {
		return err
	}
	h.s.EventsWritten()
	api.NoContent(w)
	return nil
}
