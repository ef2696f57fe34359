package templates

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/messaging"
)

// sendFields are the attributes of send_template's "template" object.
type sendFields struct {
	Phone          string
	Params         any // []any, map[string]any or nil
	HeaderType     *string
	HeaderParams   any // string or map[string]any
	HeaderFilename *string
	URLParams      map[string]any
	QuickReplies   map[string]any
	CopyCodes      map[string]any
	Location       map[string]any
}

// readSendFields decodes and type-checks the request.
func readSendFields(f *api.Fields) (*sendFields, error) {
	v, err := readStrings(f, "phone_number", "header_type", "header_filename")
	if err != nil {
		return nil, err
	}
	sf := &sendFields{HeaderType: v[1], HeaderFilename: v[2]}
	if v[0] == nil || strings.TrimSpace(*v[0]) == "" {
		return nil, parley.Invalid("Phone number can't be blank")
	}
	sf.Phone = strings.TrimSpace(*v[0])
	if !parley.ValidPhone(parley.NormalizePhone(sf.Phone)) {
		return nil, parley.Invalid("Phone number is invalid")
	}
	decode := func(key string, dst any, want string) error {
		raw, ok := f.Raw(key)
		if !ok || string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return api.TypeErr(key, want)
		}
		return nil
	}
	if err := decode("template_parameters", &sf.Params, "an array or an object"); err != nil {
		return nil, err
	}
	switch sf.Params.(type) {
	case nil, []any, map[string]any:
	default:
		return nil, api.TypeErr("template_parameters", "an array or an object")
	}
	if err := decode("header_params", &sf.HeaderParams, "a string or an object"); err != nil {
		return nil, err
	}
	switch hp := sf.HeaderParams.(type) {
	case nil, string, map[string]any:
	case float64, bool:
		sf.HeaderParams = fmt.Sprint(hp)
	default:
		return nil, api.TypeErr("header_params", "a string or an object")
	}
	for key, dst := range map[string]*map[string]any{"button_url_params": &sf.URLParams,
		"button_quick_reply_payloads": &sf.QuickReplies, "button_copy_code_params": &sf.CopyCodes, "location_params": &sf.Location} {
		if err := decode(key, dst, "an object"); err != nil {
			return nil, err
		}
	}
	return sf, nil
}

// scalarString renders a parameter value; only strings, numbers and
// booleans are allowed.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// bodyParams validates template_parameters against the body's variables
// and returns Meta's parameter objects and the value of each variable.
func bodyParams(t *parley.Template, names []string, params any) ([]any, map[string]string, error) {
	values := map[string]string{}
	named := t.ParameterFormat == parley.ParamsNamed
	countErr := func(got int) error {
		return parley.Invalid(fmt.Sprintf("Template requires %d parameters, but %d were provided", len(names), got))
	}
	switch p := params.(type) {
	case nil:
		if len(names) > 0 {
			return nil, nil, countErr(0)
		}
	case []any:
		if len(p) != len(names) {
			return nil, nil, countErr(len(p))
		}
		for i, x := range p {
			s, ok := scalarString(x)
			if !ok {
				return nil, nil, parley.Invalid(fmt.Sprintf("Template parameter %d must be a string", i+1))
			}
			values[names[i]] = s
		}
	case map[string]any:
		if !named && len(names) > 0 {
			// Positional templates accept {"1": "a", "2": "b"} too.
			for _, n := range names {
				if _, ok := p[n]; !ok {
					return nil, nil, parley.Invalid("Template uses positional parameters: send template_parameters as an array")
				}
			}
		}
		if len(p) != len(names) {
			return nil, nil, countErr(len(p))
		}
		for _, n := range names {
			x, ok := p[n]
			if !ok {
				return nil, nil, parley.Invalid(fmt.Sprintf("Missing template parameter: %s", n))
			}
			s, ok := scalarString(x)
			if !ok {
				return nil, nil, parley.Invalid(fmt.Sprintf("Template parameter %s must be a string", n))
			}
			values[n] = s
		}
	}
	out := make([]any, 0, len(names))
	for _, n := range names {
		p := map[string]any{"type": "text", "text": values[n]}
		if named {
			p["parameter_name"] = n
		}
		out = append(out, p)
	}
	return out, values, nil
}

// headerParam builds the header component's parameter, or nil when the
// template's header needs none.
func headerParam(t *parley.Template, header component, sf *sendFields) (map[string]any, error) {
	if header == nil {
		return nil, nil
	}
	format, _ := str(header, "format")
	format = strings.ToUpper(format)
	if sf.HeaderType != nil && !strings.EqualFold(*sf.HeaderType, format) {
		return nil, parley.Invalid(fmt.Sprintf("Header type must be %s for this template", strings.ToLower(format)))
	}
	switch format {
	case "TEXT":
		text, _ := str(header, "text")
		ps := placeholders(text)
		if len(ps) == 0 {
			return nil, nil
		}
		var value string
		switch hp := sf.HeaderParams.(type) {
		case string:
			value = hp
		case map[string]any:
			s, ok := scalarString(hp[ps[0]])
			if !ok {
				return nil, parley.Invalid(fmt.Sprintf("Header params must include %s", ps[0]))
			}
			value = s
		}
		if strings.TrimSpace(value) == "" {
			return nil, parley.Invalid("Header params can't be blank: the template header has a variable")
		}
		p := map[string]any{"type": "text", "text": value}
		if t.ParameterFormat == parley.ParamsNamed {
			p["parameter_name"] = ps[0]
		}
		return p, nil
	case "IMAGE", "VIDEO", "DOCUMENT":
		hp, _ := sf.HeaderParams.(string)
		hp = strings.TrimSpace(hp)
		if hp == "" {
			return nil, parley.Invalid(fmt.Sprintf("Header params can't be blank: the template has a %s header", strings.ToLower(format)))
		}
		kind := strings.ToLower(format)
		media := map[string]any{}
		if u, err := url.Parse(hp); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			media["link"] = hp
		} else {
			media["id"] = hp
		}
		if kind == "document" && sf.HeaderFilename != nil && *sf.HeaderFilename != "" {
			media["filename"] = *sf.HeaderFilename
		}
		return map[string]any{"type": kind, kind: media}, nil
	case "LOCATION":
		lat, lok := sf.Location["latitude"].(float64)
		lng, gok := sf.Location["longitude"].(float64)
		if !lok || !gok || lat < -90 || lat > 90 || lng < -180 || lng > 180 {
			return nil, parley.Invalid("Location params must include a numeric latitude and longitude")
		}
		loc := map[string]any{"latitude": lat, "longitude": lng}
		for _, k := range []string{"name", "address"} {
			if s, ok := sf.Location[k].(string); ok && s != "" {
				loc[k] = s
			}
		}
		return map[string]any{"type": "location", "location": loc}, nil
	}
	return nil, nil
}

// buttonComponents builds the button components from the per-index params.
func buttonComponents(comps []component, sf *sendFields, values map[string]string, names []string) ([]any, error) {
	bc := componentOf(comps, "BUTTONS")
	if bc == nil {
		return nil, nil
	}
	list, _ := bc["buttons"].([]any)
	var out []any
	param := func(m map[string]any, i int) (string, bool, error) {
		v, ok := m[strconv.Itoa(i)]
		if !ok || v == nil {
			return "", false, nil
		}
		s, sok := scalarString(v)
		if !sok {
			return "", false, parley.Invalid(fmt.Sprintf("Button %d parameter must be a string", i))
		}
		return s, true, nil
	}
	for i, it := range list {
		b, _ := it.(map[string]any)
		typ, _ := str(b, "type")
		idx := strconv.Itoa(i)
		switch strings.ToUpper(typ) {
		case "URL":
			u, _ := str(b, "url")
			if len(placeholders(u)) == 0 {
				continue
			}
			s, ok, err := param(sf.URLParams, i)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, parley.Invalid(fmt.Sprintf("Button url params must include a value for button %d", i))
			}
			out = append(out, map[string]any{"type": "button", "sub_type": "url", "index": idx,
				"parameters": []any{map[string]any{"type": "text", "text": s}}})
		case "OTP":
			// Authentication templates: the code goes in the button too;
			// it defaults to the body's (only) parameter.
			s, ok, err := param(sf.URLParams, i)
			if err != nil {
				return nil, err
			}
			if !ok && len(names) > 0 {
				s, ok = values[names[0]], true
			}
			if !ok {
				return nil, parley.Invalid(fmt.Sprintf("Button url params must include the code for button %d", i))
			}
			out = append(out, map[string]any{"type": "button", "sub_type": "url", "index": idx,
				"parameters": []any{map[string]any{"type": "text", "text": s}}})
		case "COPY_CODE":
			s, ok, err := param(sf.CopyCodes, i)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, parley.Invalid(fmt.Sprintf("Button copy code params must include a value for button %d", i))
			}
			out = append(out, map[string]any{"type": "button", "sub_type": "copy_code", "index": idx,
				"parameters": []any{map[string]any{"type": "coupon_code", "coupon_code": s}}})
		case "QUICK_REPLY":
			s, ok, err := param(sf.QuickReplies, i)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, map[string]any{"type": "button", "sub_type": "quick_reply", "index": idx,
					"parameters": []any{map[string]any{"type": "payload", "payload": s}}})
			}
		}
	}
	return out, nil
}

// render fills the body text with the parameter values, for the message's
// content.
func render(text string, values map[string]string) string {
	return placeholderRe.ReplaceAllStringFunc(text, func(m string) string {
		name := placeholderRe.FindStringSubmatch(m)[1]
		if v, ok := values[name]; ok {
			return v
		}
		return m
	})
}

func (h *handler) send(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "template_id", "Template")
	if err != nil {
		return err
	}
	f, cfgID, custID, err := h.idParams(w, r, "template")
	if err != nil {
		return err
	}
	ctx := r.Context()
	t, err := GetTemplate(ctx, h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	sf, err := readSendFields(f)
	if err != nil {
		return err
	}
	if t.Status != parley.TemplateApproved {
		return parley.Invalid("Template is not approved", fmt.Sprintf("Template status is %s; only approved templates can be sent", t.Status))
	}
	o, err := buildMessage(t, sf)
	if err != nil {
		return err
	}
	cfg, err := graphConfig(ctx, h.s.DB.Read(), t, cfgID, custID)
	if err != nil {
		return err
	}
	msg, err := messaging.Send(ctx, h.s, a.ProjectID, cfg, messaging.SendRequest{PhoneNumber: sf.Phone, Message: o})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"status": "success", "message": "Template message sent successfully", "template_id": t.ID, "template_name": t.Name,
		"message_id": msg.ID,
		// The Graph call happens in the send job; this is Meta's acceptance
		// shape with Parley's message id (the wamid lands on the message).
		"response": map[string]any{
			"messaging_product": "whatsapp",
			"contacts":          []any{map[string]any{"input": sf.Phone, "wa_id": parley.NormalizePhone(sf.Phone)}},
			"messages":          []any{map[string]any{"id": msg.ID, "message_status": "accepted"}},
		},
	})
	return nil
}

// buildMessage checks sf's parameters against template t and builds the
// template message (Meta's components, Kapso's message_type_data and
// metadata, the rendered body as content).
func buildMessage(t *parley.Template, sf *sendFields) (*messaging.Outbound, error) {
	comps := decodeComponents(t.Components)
	names := placeholders(bodyText(comps))
	bodyPs, values, err := bodyParams(t, names, sf.Params)
	if err != nil {
		return nil, err
	}
	hp, err := headerParam(t, componentOf(comps, "HEADER"), sf)
	if err != nil {
		return nil, err
	}
	buttons, err := buttonComponents(comps, sf, values, names)
	if err != nil {
		return nil, err
	}
	var components []any
	if hp != nil {
		components = append(components, map[string]any{"type": "header", "parameters": []any{hp}})
	}
	if len(bodyPs) > 0 {
		components = append(components, map[string]any{"type": "body", "parameters": bodyPs})
	}
	components = append(components, buttons...)
	tpl := map[string]any{"name": t.Name, "language": map[string]any{"code": t.LanguageCode}}
	if len(components) > 0 {
		tpl["components"] = components
	}
	content := render(t.Content, values)
	data := map[string]any{"template_id": t.ID, "template_name": t.Name, "template_language": t.LanguageCode}
	meta := map[string]any{"template_id": t.ID, "template_name": t.Name, "template_language": t.LanguageCode}
	if sf.Params != nil {
		data["template_params"], meta["template_params"] = sf.Params, sf.Params
	}
	if sf.HeaderType != nil {
		data["header_type"] = strings.ToLower(*sf.HeaderType)
	}
	if sf.HeaderParams != nil {
		data["header_params"] = sf.HeaderParams
	}
	if sf.HeaderFilename != nil {
		data["header_filename"] = *sf.HeaderFilename
	}
	return &messaging.Outbound{MessageType: "template", Content: &content, MessageTypeData: data, Metadata: meta,
		Body: map[string]any{"type": "template", "template": tpl}}, nil
}
