package templates

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley"
)

// Meta's limits on template content (WhatsApp Cloud API template rules).
const (
	maxNameLen       = 512
	maxBodyLen       = 1024
	maxHeaderTextLen = 60
	maxFooterLen     = 60
	maxButtons       = 10
	maxButtonTextLen = 25
	maxURLLen        = 2000
)

var (
	nameRe     = regexp.MustCompile(`^[a-z0-9_]+$`)
	languageRe = regexp.MustCompile(`^[a-z]{2,3}(_[A-Za-z]{2,4})?$`)
	// placeholderRe matches {{1}} and {{name}} with optional inner spaces.
	placeholderRe = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}`)
	namedParamRe  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// component is one element of a template's components array, kept as a
// generic object so keys Parley does not know (Meta adds new ones) survive.
type component = map[string]any

// placeholders returns the distinct placeholder names of text, in order of
// first appearance.
func placeholders(text string) []string {
	var out []string
	for _, m := range placeholderRe.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// str returns c[key] as a string; ok is false when it is absent or not a string.
func str(c component, key string) (string, bool) {
	s, ok := c[key].(string)
	return s, ok
}

// componentOf returns the first component of type typ (upper case), or nil.
func componentOf(comps []component, typ string) component {
	for _, c := range comps {
		if t, _ := str(c, "type"); t == typ {
			return c
		}
	}
	return nil
}

// bodyText returns the BODY component's text ("" when there is none).
func bodyText(comps []component) string {
	if b := componentOf(comps, "BODY"); b != nil {
		s, _ := str(b, "text")
		return s
	}
	return ""
}

// parameterCount is the number of distinct placeholders in the body text;
// Kapso's send_template checks template_parameters against it.
func parameterCount(comps []component) int { return len(placeholders(bodyText(comps))) }

// decodeComponents parses a stored or Meta-provided components array,
// tolerating garbage (an empty list) since it was validated on the way in.
func decodeComponents(raw []byte) []component {
	var out []component
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil
	}
	return out
}

// validationErrors collects Rails-style full messages.
type validationErrors []string

func (v *validationErrors) add(format string, args ...any) {
	*v = append(*v, fmt.Sprintf(format, args...))
}

// validateName checks Meta's name rules.
func validateName(name string, errs *validationErrors) {
	switch {
	case strings.TrimSpace(name) == "":
		errs.add("Name can't be blank")
	case len(name) > maxNameLen:
		errs.add("Name is too long (maximum is %d characters)", maxNameLen)
	case !nameRe.MatchString(name):
		errs.add("Name can only contain lowercase letters, numbers and underscores")
	}
}

// validateLanguage checks the shape of a Meta language code (en, en_US, zh_HK).
func validateLanguage(code string, errs *validationErrors) {
	switch {
	case strings.TrimSpace(code) == "":
		errs.add("Language code can't be blank")
	case !languageRe.MatchString(code):
		errs.add("Language code is not valid")
	}
}

// validCategory reports whether c is one of Kapso's categories.
func validCategory(c string) bool {
	return c == parley.CategoryMarketing || c == parley.CategoryUtility || c == parley.CategoryAuthentication
}

// normalizeComponents parses raw (a JSON array of component objects),
// upper-cases the enum values Meta accepts in either case, and validates the
// result against Meta's rules for the given parameter format and category.
// It returns the normalised components and the validation messages.
func normalizeComponents(raw json.RawMessage, format, category string) ([]component, validationErrors) {
	var errs validationErrors
	var items []any
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		errs.add("Components must be an array of component objects")
		return nil, errs
	}
	if len(items) == 0 {
		errs.add("Components can't be empty")
		return nil, errs
	}
	comps := make([]component, 0, len(items))
	seen := map[string]bool{}
	for i, it := range items {
		c, ok := it.(map[string]any)
		if !ok {
			errs.add("Component %d must be an object", i+1)
			continue
		}
		typ, ok := str(c, "type")
		typ = strings.ToUpper(strings.TrimSpace(typ))
		if !ok || !slices.Contains([]string{"HEADER", "BODY", "FOOTER", "BUTTONS"}, typ) {
			errs.add("Component %d type must be one of HEADER, BODY, FOOTER, BUTTONS", i+1)
			continue
		}
		if seen[typ] {
			errs.add("Components can include only one %s", typ)
			continue
		}
		seen[typ] = true
		c["type"] = typ
		for _, k := range []string{"text", "format", "example", "buttons"} {
			if v, present := c[k]; present && v == nil {
				delete(c, k) // null is "not given", and renders as absent
			}
		}
		for _, k := range []string{"text", "format"} {
			if v, present := c[k]; present && v != nil {
				if _, isStr := v.(string); !isStr {
					errs.add("%s %s must be a string", humanType(typ), k)
				}
			}
		}
		if ex, present := c["example"]; present && ex != nil {
			if exm, isObj := ex.(map[string]any); !isObj {
				errs.add("%s example must be an object", humanType(typ))
			} else {
				checkExampleTypes(typ, exm, &errs)
			}
		}
		// The documented keys keep their documented types on every
		// component, so what is stored renders as documented.
		if f, isStr := c["format"].(string); isStr {
			f = strings.ToUpper(strings.TrimSpace(f))
			if !slices.Contains(headerFormats, f) {
				errs.add("%s format must be one of %s", humanType(typ), strings.Join(headerFormats, ", "))
			} else {
				c["format"] = f
			}
		}
		if b, present := c["buttons"]; present && b != nil && typ != "BUTTONS" {
			list, isList := b.([]any)
			for _, it := range list {
				if _, isObj := it.(map[string]any); !isObj {
					isList = false
				}
			}
			if !isList {
				errs.add("%s buttons must be an array of button objects", humanType(typ))
			}
		}
		if len(errs) > 0 {
			continue
		}
		switch typ {
		case "HEADER":
			validateHeader(c, format, &errs)
		case "BODY":
			validateBody(c, format, category, &errs)
		case "FOOTER":
			validateFooter(c, &errs)
		case "BUTTONS":
			validateButtons(c, &errs)
		}
		comps = append(comps, c)
	}
	if len(errs) == 0 && !seen["BODY"] {
		errs.add("Components must include a BODY component")
	}
	// Meta wants components in a fixed order: header, body, footer, buttons.
	order := map[string]int{"HEADER": 0, "BODY": 1, "FOOTER": 2, "BUTTONS": 3}
	slices.SortStableFunc(comps, func(a, b component) int {
		ta, _ := str(a, "type")
		tb, _ := str(b, "type")
		return order[ta] - order[tb]
	})
	return comps, errs
}

func humanType(typ string) string { return strings.ToUpper(typ[:1]) + strings.ToLower(typ[1:]) }

// headerFormats are the formats of a HEADER component.
var headerFormats = []string{"TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION"}

// checkExampleTypes checks the shape of the example keys Meta defines,
// whatever the component: header_handle and header_text are lists of
// strings, body_text a list of lists of strings, the *_named_params lists
// of objects.
func checkExampleTypes(typ string, ex map[string]any, errs *validationErrors) {
	for _, k := range []string{"header_handle", "header_text"} {
		if x, ok := ex[k]; ok && x != nil {
			if _, ok := stringList(x); !ok {
				errs.add("%s example %s must be an array of strings", humanType(typ), k)
			}
		}
	}
	if x, ok := ex["body_text"]; ok && x != nil {
		rows, ok := x.([]any)
		for _, r := range rows {
			if _, isList := stringList(r); !isList {
				ok = false
			}
		}
		if !ok {
			errs.add("%s example body_text must be an array of arrays of strings", humanType(typ))
		}
	}
	for _, k := range []string{"header_text_named_params", "body_text_named_params"} {
		if x, ok := ex[k]; ok && x != nil {
			list, ok := x.([]any)
			for _, it := range list {
				if _, isObj := it.(map[string]any); !isObj {
					ok = false
				}
			}
			if !ok {
				errs.add("%s example %s must be an array of objects", humanType(typ), k)
			}
		}
	}
}

// checkPlaceholders validates the variables of text for the parameter
// format: positional ones must be {{1}}..{{n}} without gaps, named ones
// lowercase identifiers; the two never mix.
func checkPlaceholders(what, text, format string, errs *validationErrors) []string {
	ps := placeholders(text)
	if strings.Count(text, "{{") != len(placeholderRe.FindAllString(text, -1)) {
		errs.add("%s text has a malformed variable (use {{1}} or {{name}})", what)
		return ps
	}
	for i, p := range ps {
		_, numErr := strconv.Atoi(p)
		if format == parley.ParamsPositional {
			if numErr != nil {
				errs.add("%s text uses named variable {{%s}} but parameter_format is POSITIONAL", what, p)
				return ps
			}
			if p != strconv.Itoa(i+1) {
				errs.add("%s variables must be numbered sequentially starting at {{1}}", what)
				return ps
			}
		} else {
			if numErr == nil {
				errs.add("%s text uses positional variable {{%s}} but parameter_format is NAMED", what, p)
				return ps
			}
			if !namedParamRe.MatchString(p) {
				errs.add("%s variable {{%s}} must be lowercase letters, numbers and underscores", what, p)
				return ps
			}
		}
	}
	return ps
}

// checkNamedExamples validates [{param_name, example}] against names.
func checkNamedExamples(what, key string, ex map[string]any, names []string, errs *validationErrors) {
	list, ok := ex[key].([]any)
	if !ok {
		errs.add("%s example %s is required for named variables", what, key)
		return
	}
	got := map[string]bool{}
	for _, it := range list {
		m, ok := it.(map[string]any)
		n, nok := m["param_name"].(string)
		_, eok := m["example"].(string)
		if !ok || !nok || !eok {
			errs.add("%s example %s must be a list of {param_name, example} strings", what, key)
			return
		}
		got[n] = true
	}
	for _, n := range names {
		if !got[n] {
			errs.add("%s example is missing a value for {{%s}}", what, n)
		}
	}
}

func stringList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, it := range list {
		s, ok := it.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func validateHeader(c component, format string, errs *validationErrors) {
	f, _ := str(c, "format")
	f = strings.ToUpper(f)
	if !slices.Contains(headerFormats, f) {
		errs.add("Header format must be one of TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION")
		return
	}
	c["format"] = f
	ex, _ := c["example"].(map[string]any)
	switch f {
	case "TEXT":
		text, _ := str(c, "text")
		if strings.TrimSpace(text) == "" {
			errs.add("Header text can't be blank")
			return
		}
		if utf8.RuneCountInString(text) > maxHeaderTextLen {
			errs.add("Header text is too long (maximum is %d characters)", maxHeaderTextLen)
		}
		ps := checkPlaceholders("Header", text, format, errs)
		if len(ps) > 1 {
			errs.add("Header text can have at most one variable")
		}
		if len(ps) == 1 {
			if format == parley.ParamsNamed {
				checkNamedExamples("Header", "header_text_named_params", ex, ps, errs)
			} else if l, ok := stringList(ex["header_text"]); !ok || len(l) != 1 {
				errs.add("Header example header_text must hold one value for the header variable")
			}
		}
	case "IMAGE", "VIDEO", "DOCUMENT":
		if l, ok := stringList(ex["header_handle"]); !ok || len(l) == 0 || l[0] == "" {
			errs.add("Header example header_handle is required for %s headers", strings.ToLower(f))
		}
	}
}

func validateBody(c component, format, category string, errs *validationErrors) {
	text, _ := str(c, "text")
	if strings.TrimSpace(text) == "" {
		// Meta builds authentication bodies itself from the OTP preset.
		if category != parley.CategoryAuthentication {
			errs.add("Body text can't be blank")
		}
		return
	}
	if utf8.RuneCountInString(text) > maxBodyLen {
		errs.add("Body text is too long (maximum is %d characters)", maxBodyLen)
	}
	ps := checkPlaceholders("Body", text, format, errs)
	if len(ps) == 0 {
		return
	}
	ex, _ := c["example"].(map[string]any)
	if format == parley.ParamsNamed {
		checkNamedExamples("Body", "body_text_named_params", ex, ps, errs)
		return
	}
	rows, ok := ex["body_text"].([]any)
	if !ok || len(rows) == 0 {
		errs.add("Body example body_text is required when the body has variables")
		return
	}
	row, ok := stringList(rows[0])
	if !ok || len(row) != len(ps) {
		errs.add("Body example body_text must hold %d values, one per variable", len(ps))
	}
}

func validateFooter(c component, errs *validationErrors) {
	text, _ := str(c, "text")
	switch {
	case strings.TrimSpace(text) == "":
		errs.add("Footer text can't be blank")
	case utf8.RuneCountInString(text) > maxFooterLen:
		errs.add("Footer text is too long (maximum is %d characters)", maxFooterLen)
	case len(placeholders(text)) > 0:
		errs.add("Footer text can't have variables")
	}
}

// buttonTypes are the button types Meta accepts in a BUTTONS component.
var buttonTypes = []string{"QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP", "FLOW", "VOICE_CALL", "CATALOG", "MPM"}

func validateButtons(c component, errs *validationErrors) {
	list, ok := c["buttons"].([]any)
	if !ok || len(list) == 0 {
		errs.add("Buttons component must have a non-empty buttons array")
		return
	}
	if len(list) > maxButtons {
		errs.add("Buttons component can have at most %d buttons", maxButtons)
		return
	}
	for i, it := range list {
		b, ok := it.(map[string]any)
		if !ok {
			errs.add("Button %d must be an object", i+1)
			continue
		}
		typ, _ := str(b, "type")
		typ = strings.ToUpper(typ)
		if !slices.Contains(buttonTypes, typ) {
			errs.add("Button %d type must be one of %s", i+1, strings.Join(buttonTypes, ", "))
			continue
		}
		b["type"] = typ
		if k := nonString(b, "text", "url", "phone_number"); k != "" {
			errs.add("Button %d %s must be a string", i+1, k)
			continue
		}
		text, _ := str(b, "text")
		if typ != "OTP" && typ != "COPY_CODE" {
			if strings.TrimSpace(text) == "" {
				errs.add("Button %d text can't be blank", i+1)
			} else if utf8.RuneCountInString(text) > maxButtonTextLen {
				errs.add("Button %d text is too long (maximum is %d characters)", i+1, maxButtonTextLen)
			}
		}
		switch typ {
		case "URL":
			u, _ := str(b, "url")
			if !httpURL(u) || len(u) > maxURLLen {
				errs.add("Button %d url must be an http(s) URL", i+1)
				continue
			}
			if ps := placeholders(u); len(ps) > 0 {
				if len(ps) > 1 || !strings.HasSuffix(strings.TrimSpace(u), "}}") {
					errs.add("Button %d url can have one variable, at the end", i+1)
				} else if l, ok := stringList(b["example"]); !ok || len(l) == 0 {
					errs.add("Button %d example is required for a url with a variable", i+1)
				}
			}
		case "PHONE_NUMBER":
			p, _ := str(b, "phone_number")
			if !parley.ValidPhone(parley.NormalizePhone(p)) {
				errs.add("Button %d phone_number is not a valid phone number", i+1)
			}
		}
	}
}

// nonString returns the first of keys that c holds with a value other than
// a string or null, or "".
func nonString(c component, keys ...string) string {
	for _, k := range keys {
		if x, ok := c[k]; ok && x != nil {
			if _, isStr := x.(string); !isStr {
				return k
			}
		}
	}
	return ""
}

// httpURL reports whether s is an absolute http(s) URL with a host (a
// trailing {{1}} variable is fine).
func httpURL(s string) bool {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Host != ""
}
