package platform

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
)

// SetupLinkLanguages are the setup page languages Kapso offers.
var SetupLinkLanguages = []string{"en", "es", "pt", "hi", "id", "ar"}

var (
	hexColor = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)
	isoCode  = regexp.MustCompile(`^[A-Za-z]{2}$`)
	areaCode = regexp.MustCompile(`^[0-9]{1,6}$`)
)

// SetupLinkView is a setup link as the API renders it (Kapso's SetupLink).
type SetupLinkView struct {
	ID                     string            `json:"id"`
	CustomerID             string            `json:"customer_id"`
	Status                 string            `json:"status"`
	ExpiresAt              time.Time         `json:"expires_at"`
	URL                    string            `json:"url"`
	SuccessRedirectURL     *string           `json:"success_redirect_url"`
	FailureRedirectURL     *string           `json:"failure_redirect_url"`
	AllowedConnectionTypes []string          `json:"allowed_connection_types"`
	ProvisionPhoneNumber   bool              `json:"provision_phone_number"`
	PhoneNumberAreaCode    *string           `json:"phone_number_area_code"`
	PhoneNumberCountryISOs []string          `json:"phone_number_country_isos"`
	ProvisionedPhoneNumber *struct{}         `json:"provisioned_phone_number"`
	ThemeConfig            map[string]string `json:"theme_config"`
	Language               *string           `json:"language"`
	CreatedAt              time.Time         `json:"created_at"`
	UpdatedAt              time.Time         `json:"updated_at"`
}

// SetupLinkURL returns the public URL of a setup link token.
func SetupLinkURL(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + "/whatsapp/setup/" + token
}

func (h *handlers) renderSetupLink(l *parley.SetupLink, at time.Time) SetupLinkView {
	theme := l.ThemeConfig
	if theme == nil {
		theme = map[string]string{}
	}
	act, isos := l.AllowedConnectionTypes, l.PhoneNumberCountryISOs
	if act == nil {
		act = []string{}
	}
	if isos == nil {
		isos = []string{}
	}
	return SetupLinkView{
		ID: l.ID, CustomerID: l.CustomerID, Status: l.EffectiveStatus(at), ExpiresAt: l.ExpiresAt,
		URL: SetupLinkURL(h.s.Config.PublicURL, l.Token), SuccessRedirectURL: l.SuccessRedirectURL,
		FailureRedirectURL: l.FailureRedirectURL, AllowedConnectionTypes: act, ProvisionPhoneNumber: l.ProvisionPhoneNumber,
		PhoneNumberAreaCode: l.PhoneNumberAreaCode, PhoneNumberCountryISOs: isos, ThemeConfig: theme, Language: l.Language,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt,
	}
}

// decodeSetupLink validates the setup link fields of f and applies them to
// l. Kapso answers these 422s with the message itself as the error title.
func decodeSetupLink(f *api.Fields, l *parley.SetupLink, creating bool, at time.Time) error {
	rd := &reader{f: f}
	succ := rd.str("success_redirect_url")
	fail := rd.str("failure_redirect_url")
	prov := rd.bool("provision_phone_number")
	area := rd.str("phone_number_area_code")
	lang := rd.str("language")
	status := rd.str("status")
	act, _, err := f.Strings("allowed_connection_types")
	rd.set(err)
	isos, _, err := f.Strings("phone_number_country_isos")
	rd.set(err)
	theme, _, err := f.Object("theme_config")
	rd.set(err)
	expires, _, err := f.Time("expires_at")
	rd.set(err)
	if rd.err != nil {
		return rd.err
	}
	out := *l
	var v validation
	redirect := func(key string, val *string, dst **string) {
		if !f.Has(key) {
			return
		}
		u := str(val)
		switch {
		case u == "":
			*dst = nil
		case len(u) > 2048 || !ValidHTTPURL(u):
			v.add("%s must be a valid URL", api.HumanKey(key))
		default:
			*dst = &u
		}
	}
	redirect("success_redirect_url", succ, &out.SuccessRedirectURL)
	redirect("failure_redirect_url", fail, &out.FailureRedirectURL)
	if f.Has("allowed_connection_types") {
		var bad, clean []string
		for _, t := range act {
			t = strings.TrimSpace(t)
			switch {
			case t != parley.ConnectionCoexistence && t != parley.ConnectionDedicated:
				bad = append(bad, t)
			case !slices.Contains(clean, t):
				clean = append(clean, t)
			}
		}
		switch {
		case len(bad) > 0:
			v.add("Allowed connection types contains invalid types: %s", strings.Join(bad, ", "))
		case len(clean) == 0:
			v.add("Allowed connection types can't be blank")
		default:
			out.AllowedConnectionTypes = clean
		}
	}
	if f.Has("provision_phone_number") {
		if prov == nil {
			v.add("Provision phone number must be true or false")
		} else {
			out.ProvisionPhoneNumber = *prov
		}
	}
	if f.Has("phone_number_area_code") {
		switch a := str(area); {
		case a == "":
			out.PhoneNumberAreaCode = nil
		case !areaCode.MatchString(a):
			v.add("Phone number area code must be 1 to 6 digits")
		default:
			out.PhoneNumberAreaCode = &a
		}
	}
	if f.Has("phone_number_country_isos") {
		if isos == nil {
			out.PhoneNumberCountryISOs = []string{"US"}
		} else {
			var bad []string
			clean := []string{}
			for _, c := range isos {
				c = strings.ToUpper(strings.TrimSpace(c))
				switch {
				case !isoCode.MatchString(c):
					bad = append(bad, c)
				case !slices.Contains(clean, c):
					clean = append(clean, c)
				}
			}
			if len(bad) > 0 {
				v.add("Phone number country isos contains invalid codes: %s", strings.Join(bad, ", "))
			} else {
				out.PhoneNumberCountryISOs = clean
			}
		}
	}
	if f.Has("theme_config") {
		if theme == nil {
			out.ThemeConfig = nil
		} else {
			clean := map[string]string{}
			for _, k := range parley.SetupLinkThemeKeys {
				raw, ok := theme[k]
				if !ok || raw == nil {
					continue
				}
				s, isStr := raw.(string)
				if !isStr || !hexColor.MatchString(s) {
					v.add("Theme config %s must be a hex colour like #3b82f6", k)
					continue
				}
				clean[k] = strings.ToLower(s)
			}
			out.ThemeConfig = clean
		}
	}
	if f.Has("language") {
		switch lg := strings.ToLower(str(lang)); {
		case lg == "":
			out.Language = nil
		case !slices.Contains(SetupLinkLanguages, lg):
			v.add("Language is not included in the list")
		default:
			out.Language = &lg
		}
	}
	if f.Has("expires_at") {
		switch {
		case expires == nil:
			v.add("Expires at can't be blank")
		case !expires.After(at):
			v.add("Expires at must be in the future")
		default:
			out.ExpiresAt = expires.UTC().Truncate(time.Microsecond)
		}
	}
	if !creating && f.Has("status") {
		switch s := strings.ToLower(str(status)); {
		case l.Status == parley.SetupLinkUsed:
			v.add("Setup link has already been used")
		case s == parley.SetupLinkUsed:
			v.add("Status cannot be set to used")
		case s == parley.SetupLinkActive || s == parley.SetupLinkExpired || s == parley.SetupLinkRevoked:
			out.Status = s
		default:
			v.add("Status is not included in the list")
		}
	}
	if len(v) > 0 {
		return parley.Invalid(v[0], v...)
	}
	*l = out
	return nil
}

func (h *handlers) listSetupLinks(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	cid, err := api.PathID(r, "customer_id", "Customer")
	if err != nil {
		return err
	}
	c := h.s.DB.Read()
	if _, err := store.GetCustomer(r.Context(), c, a.ProjectID, cid); err != nil {
		return err
	}
	sf, err := setupLinkFilter(r)
	if err != nil {
		return err
	}
	p := api.PageOf(r)
	items, total, err := ListSetupLinksFiltered(r.Context(), c, a.ProjectID, cid, sf, p)
	if err != nil {
		return err
	}
	at := time.Now()
	views := make([]SetupLinkView, len(items))
	for i, l := range items {
		views[i] = h.renderSetupLink(l, at)
	}
	api.WriteList(w, views, p, total)
	return nil
}

func (h *handlers) createSetupLink(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	cid, err := api.PathID(r, "customer_id", "Customer")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "setup_link")
	if err != nil {
		return err
	}
	ctx := r.Context()
	at := now()
	l := &parley.SetupLink{
		ProjectID: a.ProjectID, CustomerID: cid, Status: parley.SetupLinkActive, ExpiresAt: at.Add(parley.SetupLinkTTL),
		AllowedConnectionTypes: []string{parley.ConnectionCoexistence, parley.ConnectionDedicated},
		PhoneNumberCountryISOs: []string{"US"},
	}
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := store.GetCustomer(ctx, tx, a.ProjectID, cid); err != nil {
			return err
		}
		if err := decodeSetupLink(f, l, true, at); err != nil {
			return err
		}
		if err := CreateSetupLink(ctx, tx, l); err != nil {
			return err
		}
		// One active link per customer: the new one replaces the others.
		return RevokeActiveSetupLinks(ctx, tx, a.ProjectID, cid, l.ID)
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusCreated, h.renderSetupLink(l, time.Now()))
	return nil
}

func (h *handlers) updateSetupLink(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	cid, err := api.PathID(r, "customer_id", "Customer")
	if err != nil {
		return err
	}
	id, err := api.PathID(r, "id", "Setup link")
	if err != nil {
		return err
	}
	f, err := h.s.DecodeFields(w, r, "setup_link")
	if err != nil {
		return err
	}
	ctx := r.Context()
	var out *parley.SetupLink
	err = h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := store.GetCustomer(ctx, tx, a.ProjectID, cid); err != nil {
			return err
		}
		l, err := GetSetupLink(ctx, tx, a.ProjectID, cid, id)
		if err != nil {
			return err
		}
		wasActive := l.Status == parley.SetupLinkActive
		if err := decodeSetupLink(f, l, false, now()); err != nil {
			return err
		}
		if err := UpdateSetupLink(ctx, tx, l); err != nil {
			return err
		}
		out = l
		if l.Status == parley.SetupLinkActive && !wasActive {
			return RevokeActiveSetupLinks(ctx, tx, a.ProjectID, cid, l.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusOK, h.renderSetupLink(out, time.Now()))
	return nil
}

// setupPage serves the public page a setup link's URL opens. Completing the
// onboarding needs Meta's embedded signup, which this version does not
// offer, so the page only tells the customer what state the link is in.
func (h *handlers) setupPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.PathValue("token")
		var l *parley.SetupLink
		var err error
		if len(token) > 0 && len(token) <= 128 {
			l, err = GetSetupLinkByToken(r.Context(), h.s.DB.Read(), token)
		} else {
			err = parley.NotFound("Setup link")
		}
		status, title, body := http.StatusOK, "", ""
		switch {
		case parley.IsNotFound(err):
			status, title, body = http.StatusNotFound, "Link not found", "This setup link does not exist. Ask for a new link."
		case err != nil:
			h.s.Log.ErrorContext(r.Context(), "setup page", "error", err.Error())
			status, title, body = http.StatusInternalServerError, "Something went wrong", "Please try again later."
		default:
			switch l.EffectiveStatus(time.Now()) {
			case parley.SetupLinkActive:
				title = "Connect your WhatsApp number"
				body = "This setup link is valid. Completing the connection through Meta's embedded signup is not available in this version of Parley; " +
					"please contact the business that sent you this link to connect your number."
			case parley.SetupLinkUsed:
				title, body = "Link already used", "This setup link has already been used to connect a WhatsApp number."
			case parley.SetupLinkExpired:
				title, body = "Link expired", "This setup link has expired. Ask for a new link."
			default:
				title, body = "Link revoked", "This setup link is no longer valid. Ask for a new link."
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.WriteHeader(status)
		// title and body are constants above, never request data.
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
			`<title>` + title + `</title><style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#0f172a}` +
			`p{color:#475569;line-height:1.5}</style></head><body><h1>` + title + `</h1><p>` + body + `</p></body></html>`))
	})
}
