package templates

import (
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/messaging"
)

// RecipientMessage builds the message of template t for one broadcast
// recipient from Kapso's per-recipient template_parameters, checking them
// against the template as send_template does:
//
//   - an array (or nil) is the body's positional parameters;
//   - an object holds the body's named parameters (or "1", "2", … for a
//     positional template) by name; "header_url" (a media link or id) and
//     "header_filename" fill a media header, "header_text" or the header
//     variable's own name a text header; "button_url_params",
//     "button_quick_reply_payloads", "button_copy_code_params" and
//     "location_params" are send_template's objects of the same names.
//     Other keys are ignored.
//
// The error is a *parley.Error describing the first problem.
func RecipientMessage(t *parley.Template, params any) (*messaging.Outbound, error) {
	sf := &sendFields{}
	switch p := params.(type) {
	case nil:
	case []any:
		sf.Params = p
	case map[string]any:
		comps := decodeComponents(t.Components)
		body := map[string]any{}
		for _, n := range placeholders(bodyText(comps)) {
			if v, ok := p[n]; ok {
				body[n] = v
			}
		}
		sf.Params = body
		header := componentOf(comps, "HEADER")
		format, _ := str(header, "format")
		switch {
		case header == nil:
		case !strings.EqualFold(format, "TEXT"):
			if u, ok := scalarString(p["header_url"]); ok {
				sf.HeaderParams = u
			}
		default:
			if s, ok := scalarString(p["header_text"]); ok {
				sf.HeaderParams = s
			} else if ps := placeholders(fmtText(header)); len(ps) > 0 {
				if s, ok := scalarString(p[ps[0]]); ok {
					sf.HeaderParams = s
				}
			}
		}
		if s, ok := scalarString(p["header_filename"]); ok {
			sf.HeaderFilename = &s
		}
		for key, dst := range map[string]*map[string]any{"button_url_params": &sf.URLParams,
			"button_quick_reply_payloads": &sf.QuickReplies, "button_copy_code_params": &sf.CopyCodes, "location_params": &sf.Location} {
			if m, ok := p[key].(map[string]any); ok {
				*dst = m
			}
		}
	default:
		return nil, parley.Invalid("Template parameters must be an array or an object")
	}
	o, err := buildMessage(t, sf)
	if err != nil {
		return nil, err
	}
	// Kapso's message_type_data keeps the recipient's parameters as given.
	if params != nil {
		o.MessageTypeData["template_params"], o.Metadata["template_params"] = params, params
	}
	return o, nil
}

// fmtText returns a component's text ("" when it has none).
func fmtText(c component) string {
	s, _ := str(c, "text")
	return s
}
