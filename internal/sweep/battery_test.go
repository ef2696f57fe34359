package sweep_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/parleyhq/parley/internal/openapi"
)

// unknownID is a well-formed UUID no resource has.
const unknownID = "5b0e6a54-9d51-4a39-9f7e-0c2d1f4b8a11"

// opInfo is one documented operation.
type opInfo struct {
	method     string // upper case
	path       string // template relative to /api/v1
	pathParams []string
	query      []*openapi3.Parameter
	body       *prop // the flattened request body schema, nil without one
	public     bool  // documented without security (security: [])
}

func (o *opInfo) route() string { return o.method + " " + o.path }

// prop is a flattened schema: allOf merged, oneOf/anyOf alternatives
// unioned (types and properties), so every documented property and each
// type it may take is known.
type prop struct {
	types    map[string]bool // empty: any type
	enum     []any
	format   string
	props    map[string]*prop
	required map[string]bool
	items    *prop
	anyType  bool // some alternative has no type: anything goes
}

func flatten(s *openapi3.Schema, depth int) *prop {
	p := &prop{types: map[string]bool{}, props: map[string]*prop{}, required: map[string]bool{}}
	if s == nil || depth > 8 {
		p.anyType = true
		return p
	}
	merge(p, s, depth, true)
	return p
}

func merge(p *prop, s *openapi3.Schema, depth int, withRequired bool) {
	if s.Type != nil {
		for _, t := range *s.Type {
			p.types[t] = true
		}
	}
	p.enum = append(p.enum, s.Enum...)
	if s.Format != "" {
		p.format = s.Format
	}
	if withRequired {
		for _, r := range s.Required {
			p.required[r] = true
		}
	}
	for k, v := range s.Properties {
		sub := flatten(v.Value, depth+1)
		if have, ok := p.props[k]; ok {
			unionInto(have, sub)
		} else {
			p.props[k] = sub
		}
	}
	if s.Items != nil {
		sub := flatten(s.Items.Value, depth+1)
		if p.items == nil {
			p.items = sub
		} else {
			unionInto(p.items, sub)
		}
	}
	for _, a := range s.AllOf {
		merge(p, a.Value, depth+1, withRequired)
	}
	alts := append(append(openapi3.SchemaRefs{}, s.OneOf...), s.AnyOf...)
	for _, a := range alts {
		if a.Value.Type == nil && len(a.Value.Properties) == 0 && len(a.Value.AllOf) == 0 && len(a.Value.OneOf) == 0 && len(a.Value.AnyOf) == 0 {
			p.anyType = true
		}
		merge(p, a.Value, depth+1, false)
	}
	if s.Type == nil && len(s.Properties) == 0 && s.Items == nil && len(s.AllOf) == 0 && len(alts) == 0 {
		p.anyType = true
	}
}

func unionInto(dst, src *prop) {
	for t := range src.types {
		dst.types[t] = true
	}
	dst.anyType = dst.anyType || src.anyType
	if len(dst.enum) > 0 && len(src.enum) > 0 {
		dst.enum = append(dst.enum, src.enum...)
	} else {
		dst.enum = nil
	}
	for k, v := range src.props {
		if have, ok := dst.props[k]; ok {
			unionInto(have, v)
		} else {
			dst.props[k] = v
		}
	}
	if src.items != nil {
		if dst.items == nil {
			dst.items = src.items
		} else {
			unionInto(dst.items, src.items)
		}
	}
}

// operations lists every operation of Parley's OpenAPI document, sorted.
func operations(t *testing.T) []*opInfo {
	t.Helper()
	doc, err := openapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	var out []*opInfo
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			o := &opInfo{method: strings.ToUpper(method), path: path}
			o.public = op.Security != nil && len(*op.Security) == 0
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				o.pathParams = append(o.pathParams, m[1])
			}
			for _, pr := range append(append(openapi3.Parameters{}, item.Parameters...), op.Parameters...) {
				if pr.Value != nil && pr.Value.In == "query" {
					o.query = append(o.query, pr.Value)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
					o.body = flatten(mt.Schema.Value, 0)
				}
			}
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].path != out[j].path {
			return out[i].path < out[j].path
		}
		return methodOrder(out[i].method) < methodOrder(out[j].method)
	})
	return out
}

// methodOrder runs reads first and deletes last on each path.
func methodOrder(m string) int {
	return map[string]int{"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}[m]
}

// resourceFor names the seeded resource a path parameter refers to.
func resourceFor(path, param string) string {
	switch param {
	case "project_id":
		return "project"
	case "customer_id":
		return "customer"
	case "conversation_id":
		return "conversation"
	case "identifier":
		return "contact"
	case "note_id":
		return "note"
	case "webhook_id":
		return "config_webhook"
	case "delivery_id":
		return "delivery"
	case "broadcast_id":
		return "broadcast"
	case "request_id":
		return "display_name_request"
	case "whatsapp_config_id":
		return "prod_config"
	case "template_id":
		if strings.HasSuffix(path, "/meta") || strings.HasSuffix(path, "/send_template") {
			return "approved_template"
		}
		return "template"
	case "id":
		switch {
		case strings.HasPrefix(path, "/users/"):
			return "user"
		case strings.HasPrefix(path, "/customers/{customer_id}/setup_links/"):
			return "setup_link"
		case strings.HasPrefix(path, "/customers/"):
			return "customer"
		case strings.HasPrefix(path, "/whatsapp_configs/{id}/sandbox_messages"):
			return "sandbox_config"
		case strings.HasPrefix(path, "/whatsapp_configs/"):
			return "prod_config"
		case strings.HasPrefix(path, "/webhooks/"):
			return "project_webhook"
		case strings.Contains(path, "/agent_executions/"):
			return "agent_execution"
		case strings.Contains(path, "/conversation_assignments/"):
			return "assignment"
		case strings.HasPrefix(path, "/whatsapp_messages/"):
			return "message"
		case strings.HasPrefix(path, "/whatsapp_calls/"):
			return "call"
		}
	}
	panic("sweep: no resource for " + path + " {" + param + "}")
}

// siblings are other resources of the same kind in the same project: a
// nested route must not find a child under the wrong parent.
var siblings = map[string]string{"prod_config": "sandbox_config", "sandbox_config": "prod_config"}

// fillPath renders o.path with the ids of w, overriding some parameters.
func fillPath(o *opInfo, w *world, override map[string]string) string {
	p := o.path
	for _, name := range o.pathParams {
		v, ok := override[name]
		if !ok {
			res := resourceFor(o.path, name)
			if res == "agent_execution" {
				v = "0190a0b0-0000-7000-8000-000000000001" // none exist
			} else {
				v = w.id(res)
			}
		}
		p = strings.Replace(p, "{"+name+"}", v, 1)
	}
	return p
}

// expectation is what a case's answer must be, on top of the checks every
// answer gets.
type expectation string

const (
	wantAny    expectation = "any"     // < 500, error shape when >= 400
	want400    expectation = "400"     // malformed body
	want401    expectation = "401"     // no or wrong key
	want404    expectation = "404"     // unknown or other project's id
	want413    expectation = "413"     // body over the limit
	wantReject expectation = "4xx"     // invalid input must not succeed
	wantNoLeak expectation = "no-leak" // 4xx, or a list without other projects' rows
)

// tcase is one request of the battery.
type tcase struct {
	op      *opInfo
	kind    string // auth, path, query, body, prop, missing
	label   string
	method  string
	url     string // relative to /api/v1, with query
	key     string
	body    []byte
	hasBody bool
	want    expectation
}

// builder makes the battery of one operation.
type builder struct {
	t     *testing.T
	own   *world
	other *world
	seq   *int
}

func (b *builder) next() int { *b.seq++; return *b.seq }

// baseBody returns a fresh valid body for o, shaped for the property
// about to be altered (group picks e.g. a location message when latitude
// is the property under test). nil means the operation has no body.
func (b *builder) baseBody(o *opInfo, group string) map[string]any {
	w := b.own
	n := b.next()
	switch o.route() {
	case "POST /customers":
		return obj("customer", map[string]any{"name": fmt.Sprintf("Sweep %d", n), "external_customer_id": fmt.Sprintf("sw-%d", n)})
	case "PATCH /customers/{id}":
		return obj("customer", map[string]any{"name": "Acme renamed"})
	case "POST /customers/{customer_id}/setup_links":
		return obj("setup_link", map[string]any{"success_redirect_url": "https://example.com/ok", "failure_redirect_url": "https://example.com/fail",
			"allowed_connection_types": []any{"dedicated"}, "provision_phone_number": false, "phone_number_area_code": "415",
			"phone_number_country_isos": []any{"US"}, "theme_config": map[string]any{"primary_color": "#112233"}})
	case "PATCH /customers/{customer_id}/setup_links/{id}":
		return obj("setup_link", map[string]any{"success_redirect_url": "https://example.com/ok2", "status": "active",
			"expires_at": "2099-01-01T00:00:00Z", "theme_config": map[string]any{"primary_color": "#112233"}})
	case "POST /customers/{customer_id}/whatsapp_configs", "POST /whatsapp_configs":
		return obj("whatsapp_config", map[string]any{"name": fmt.Sprintf("Line %d", n), "kind": "production",
			"phone_number_id": fmt.Sprintf("55500%06d", n), "business_account_id": "98765432109", "access_token": "EAAG-token",
			"webhook_verify_token": fmt.Sprintf("vt-%d", n), "webhook_destination_url": "https://example.com/raw",
			"calls_enabled": false, "inbound_processing_enabled": true})
	case "PATCH /whatsapp_configs/{id}":
		return obj("whatsapp_config", map[string]any{"name": "Main line"})
	case "POST /whatsapp_configs/{id}/display_name_requests":
		return obj("display_name_request", map[string]any{"new_display_name": fmt.Sprintf("Acme Support %d", n)})
	case "POST /whatsapp_configs/{id}/sandbox_messages":
		return map[string]any{"from": w.phone, "profile_name": "Sheena Nelson", "type": "text", "text": map[string]any{"body": "hi"}}
	case "POST /whatsapp_configs/{id}/whatsapp_webhooks":
		return obj("whatsapp_webhook", webhookFields(n, "whatsapp.message.received"))
	case "PATCH /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}":
		return obj("whatsapp_webhook", map[string]any{"active": true, "retry_config": map[string]any{"max_attempts": 4, "backoff_seconds": 10},
			"headers": map[string]any{"X-Env": "test"}, "buffer_events": []any{"whatsapp.message.received"}})
	case "POST /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/test":
		return map[string]any{"event_type": "whatsapp.message.received"}
	case "POST /webhooks":
		return obj("webhook", webhookFields(n, "whatsapp.config.created"))
	case "PATCH /webhooks/{id}":
		return obj("webhook", map[string]any{"active": true, "retry_config": map[string]any{"max_attempts": 4, "backoff_seconds": 10},
			"headers": map[string]any{"X-Env": "test"}})
	case "POST /webhooks/{id}/test":
		return map[string]any{"event_type": "whatsapp.config.created"}
	case "POST /users":
		return obj("user", map[string]any{"email": fmt.Sprintf("sweep%d@example.com", n), "name": "Sweep"})
	case "PATCH /users/{id}":
		return obj("user", map[string]any{"name": "Agent renamed"})
	case "POST /whatsapp_contacts":
		return obj("contact", map[string]any{"wa_id": fmt.Sprintf("1415555%04d", n%10000), "profile_name": "New contact",
			"customer_id": w.id("customer"), "metadata": map[string]any{"k": "v"}})
	case "PATCH /whatsapp_contacts/{identifier}":
		return obj("contact", map[string]any{"profile_name": "Sheena N.", "metadata": map[string]any{"tier": "gold"}})
	case "POST /whatsapp_contacts/{identifier}/notes":
		return obj("note", map[string]any{"content": "Called back", "name": "call", "metadata": map[string]any{"k": "v"}})
	case "PATCH /whatsapp_contacts/{identifier}/notes/{note_id}":
		return obj("note", map[string]any{"content": "Prefers mornings"})
	case "PATCH /whatsapp_conversations/{conversation_id}":
		return obj("whatsapp_conversation", map[string]any{"status": "active"})
	case "POST /whatsapp_conversations/{conversation_id}/conversation_assignments":
		return obj("conversation_assignment", map[string]any{"user_id": w.id("user2"), "notes": "take it"})
	case "PATCH /whatsapp_conversations/{conversation_id}/conversation_assignments/{id}":
		return obj("conversation_assignment", map[string]any{"notes": "still VIP", "active": true, "user_id": w.id("user")})
	case "POST /whatsapp_conversations/{conversation_id}/whatsapp_messages":
		return obj("message", messageFields(group, w))
	case "POST /whatsapp_messages":
		m := messageFields(group, w)
		m["phone_number"] = w.phone
		body := obj("message", m)
		body["whatsapp_config_id"] = w.id("prod_config")
		return body
	case "POST /whatsapp_templates":
		body := templateBody(fmt.Sprintf("sweep_tpl_%d", n), w.id("prod_config"))
		body["template"].(map[string]any)["components"] = templateComponents(group)
		return body
	case "PATCH /whatsapp_templates/{template_id}":
		return obj("template", map[string]any{"category": "UTILITY", "components": templateComponents(group)})
	case "PATCH /whatsapp_templates/{template_id}/meta":
		return obj("template", map[string]any{"components": templateComponents(group)})
	case "POST /whatsapp_templates/{template_id}/send_template":
		return obj("template", map[string]any{"phone_number": w.phone, "template_parameters": []any{"Ana", "A-17"},
			"whatsapp_config_id": w.id("prod_config")})
	case "POST /whatsapp_templates/{template_id}/submit", "POST /whatsapp_templates/sync":
		return map[string]any{"whatsapp_config_id": w.id("prod_config")}
	case "POST /whatsapp_broadcasts":
		return obj("whatsapp_broadcast", map[string]any{"name": fmt.Sprintf("Sweep broadcast %d", n),
			"whatsapp_config_id": w.id("prod_config"), "whatsapp_template_id": w.id("approved_template")})
	case "POST /whatsapp_broadcasts/{broadcast_id}/recipients":
		return map[string]any{"recipients": []any{map[string]any{"phone_number": fmt.Sprintf("+1415556%04d", n%10000),
			"template_parameters": []any{"Ana", "A-17"}}}}
	}
	if o.body == nil {
		return nil
	}
	b.t.Fatalf("sweep: no base body for %s", o.route())
	return nil
}

func obj(root string, fields map[string]any) map[string]any { return map[string]any{root: fields} }

func webhookFields(n int, event string) map[string]any {
	return map[string]any{"url": fmt.Sprintf("https://hooks.example.com/sweep/%d", n), "secret_key": "whsec-0123456789",
		"events": []any{event}, "active": true, "payload_version": "v2", "headers": map[string]any{"X-Env": "test"},
		"buffer_enabled": false, "buffer_window_seconds": 5, "max_buffer_size": 50, "buffer_events": []any{"whatsapp.message.received"},
		"inactivity_minutes": 60, "retry_config": map[string]any{"max_attempts": 4, "backoff_seconds": 10}}
}

func bodyComponents() []any {
	return []any{map[string]any{"type": "BODY", "text": "Hello {{1}}, your order {{2}} shipped.",
		"example": map[string]any{"body_text": []any{[]any{"Ana", "A-17"}}}}}
}

// templateComponents puts first (where a property under test lands) the
// component the property belongs to: buttons on a BUTTONS component,
// format and header examples on a media HEADER, the rest on the BODY.
func templateComponents(group string) []any {
	switch group {
	case "buttons":
		return append([]any{map[string]any{"type": "BUTTONS", "buttons": []any{map[string]any{"type": "URL", "text": "Track", "url": "https://example.com/track"}}}},
			bodyComponents()...)
	case "header":
		return append([]any{map[string]any{"type": "HEADER", "format": "IMAGE", "example": map[string]any{"header_handle": []any{"4::aW1hZ2UvanBlZw==:ARb"}}}},
			bodyComponents()...)
	}
	return bodyComponents()
}

// templateGroup picks the component a template property belongs to.
func templateGroup(prop string) string {
	switch {
	case strings.Contains(prop, "components[].buttons"):
		return "buttons"
	case strings.Contains(prop, "components[].format"), strings.Contains(prop, "components[].example.header_"):
		return "header"
	}
	return ""
}

// messageGroup picks the kind of message a property belongs to.
func messageGroup(prop string) string {
	switch {
	case strings.HasPrefix(prop, "message.latitude"), strings.HasPrefix(prop, "message.longitude"), strings.HasPrefix(prop, "message.location"):
		return "location"
	case strings.HasPrefix(prop, "message.sections"), strings.HasPrefix(prop, "message.list_button_text"):
		return "list"
	case strings.HasPrefix(prop, "message.header_text"):
		return "buttons"
	case strings.HasPrefix(prop, "message.interactive_type"), strings.HasPrefix(prop, "message.buttons"), strings.HasPrefix(prop, "message.body_text"),
		strings.HasPrefix(prop, "message.footer_text"):
		return "buttons"
	case strings.HasPrefix(prop, "message.template_"), strings.HasPrefix(prop, "message.header_"):
		return "template"
	case strings.HasPrefix(prop, "message.reac"):
		return "reaction"
	case strings.HasPrefix(prop, "message.contacts"):
		return "contacts"
	case strings.HasPrefix(prop, "message.filename"):
		return "document"
	case strings.HasPrefix(prop, "message.media_"), strings.HasPrefix(prop, "message.caption"):
		return "image"
	}
	return "text"
}

func messageFields(group string, w *world) map[string]any {
	switch group {
	case "location":
		return map[string]any{"message_type": "location", "latitude": 37.4848, "longitude": -122.1484, "location_name": "HQ", "location_address": "1 Hacker Way"}
	case "list":
		return map[string]any{"message_type": "interactive", "interactive_type": "list", "body_text": "Pick one", "list_button_text": "Open",
			"sections": []any{map[string]any{"title": "Sizes", "rows": []any{map[string]any{"id": "s", "title": "Small"}}}}}
	case "buttons":
		return map[string]any{"message_type": "interactive", "interactive_type": "button", "body_text": "Pick one", "header_type": "text",
			"header_text": "Menu", "footer_text": "Thanks", "buttons": []any{map[string]any{"id": "yes", "title": "Yes"}}}
	case "template":
		return map[string]any{"message_type": "template", "template_name": "order_ready_1", "template_language": "en_US", "template_params": []any{"Ana", "A-17"},
			"header_type": "document", "header_params": "https://example.com/a.pdf", "header_filename": "a.pdf"}
	case "reaction":
		return map[string]any{"message_type": "reaction", "reacted_to_message_id": w.id("inbound_wamid"), "reaction_emoji": "👍"}
	case "contacts":
		return map[string]any{"message_type": "contacts", "contacts": []any{map[string]any{"name": map[string]any{"formatted_name": "Ana Diaz", "first_name": "Ana"},
			"phones": []any{map[string]any{"phone": "+16505550000", "type": "CELL"}}}}}
	case "document":
		return map[string]any{"message_type": "document", "media_url": "https://example.com/a.pdf", "filename": "a.pdf", "caption": "Invoice"}
	case "image":
		return map[string]any{"message_type": "image", "media_url": "https://example.com/a.jpg", "caption": "Look"}
	}
	return map[string]any{"message_type": "text", "content": "Hello from the sweep"}
}

// propPath is a property's place in a body: "message.contacts[].name".
type propPath struct {
	path     string
	p        *prop
	required bool // required by its parent
}

func collect(prefix string, p *prop, depth int, out *[]propPath) {
	if depth > 5 {
		return
	}
	keys := make([]string, 0, len(p.props))
	for k := range p.props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		sub := p.props[k]
		*out = append(*out, propPath{path: path, p: sub, required: p.required[k]})
		collect(path, sub, depth+1, out)
		if sub.items != nil && len(sub.items.props) > 0 {
			collect(path+"[]", sub.items, depth+1, out)
		}
	}
}

// setPath sets path in body, creating what is missing ("a[]" descends
// into the first element of array a).
func setPath(body map[string]any, path string, v any) {
	segs := strings.Split(path, ".")
	cur := body
	for i, s := range segs {
		last := i == len(segs)-1
		arr := strings.HasSuffix(s, "[]")
		key := strings.TrimSuffix(s, "[]")
		if last && !arr {
			cur[key] = v
			return
		}
		if arr {
			list, _ := cur[key].([]any)
			if len(list) == 0 {
				list = []any{map[string]any{}}
			}
			el, ok := list[0].(map[string]any)
			if !ok {
				el = map[string]any{}
				list[0] = el
			}
			cur[key] = list
			cur = el
			continue
		}
		next, ok := cur[key].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[key] = next
		}
		cur = next
	}
}

// deletePath removes path from body; false when it was not there.
func deletePath(body map[string]any, path string) bool {
	segs := strings.Split(path, ".")
	cur := body
	for i, s := range segs {
		key := strings.TrimSuffix(s, "[]")
		if i == len(segs)-1 {
			if _, ok := cur[key]; !ok {
				return false
			}
			delete(cur, key)
			return true
		}
		var next any = cur[key]
		if strings.HasSuffix(s, "[]") {
			list, _ := next.([]any)
			if len(list) == 0 {
				return false
			}
			next = list[0]
		}
		m, ok := next.(map[string]any)
		if !ok {
			return false
		}
		cur = m
	}
	return false
}

// variant is one bad value for a property and whether the API must
// refuse it.
type variant struct {
	label  string
	value  any
	reject bool
}

var (
	hugeInt   = json.Number("99999999999999999999999")
	longText  = strings.Repeat("x", 10_000)
	deepValue = nestedObject(200)
)

func nestedObject(depth int) any {
	var v any = "bottom"
	for i := 0; i < depth; i++ {
		v = map[string]any{"n": v}
	}
	return v
}

// accepts reports whether a value of JSON kind k is acceptable for p,
// with Rails' casts (numbers for strings, numeric strings for numbers,
// "true"/"false" for booleans).
func (p *prop) accepts(k string) bool {
	if p.anyType || len(p.types) == 0 {
		return true
	}
	switch k {
	case "number":
		return p.types["number"] || p.types["string"]
	case "integer":
		return p.types["integer"] || p.types["number"] || p.types["string"]
	case "bool":
		return p.types["boolean"]
	case "boolstring":
		return p.types["string"] || p.types["boolean"]
	case "numstring":
		return p.types["string"] || p.types["integer"] || p.types["number"]
	case "string":
		return p.types["string"]
	case "object":
		return p.types["object"]
	case "array":
		return p.types["array"]
	}
	return true
}

func isURLField(name string) bool {
	return strings.HasSuffix(name, "_url") || name == "url"
}

// variants lists the bad values tried for property pp.
func (b *builder) variants(o *opInfo, pp propPath) []variant {
	p := pp.p
	name := pp.path[strings.LastIndex(pp.path, ".")+1:]
	// Strings with an enum or a format (URL, id, email, date) take no
	// arbitrary text.
	constrained := len(p.enum) > 0 || p.format == "uri" || p.format == "uuid" || p.format == "email" ||
		p.format == "date-time" || p.format == "date" || isURLField(name)
	vs := []variant{
		{"number for " + typeNames(p), 12345, !p.accepts("integer") || (constrained && !p.types["integer"] && !p.types["number"])},
		{"object", map[string]any{"k": "v"}, !p.accepts("object")},
		{"array", []any{"x"}, !p.accepts("array")},
		{"boolean", true, !p.accepts("bool")},
		{"non-numeric, non-boolean string", "abc", !p.accepts("string") || constrained},
		{"null", nil, false},
	}
	if p.types["string"] || p.anyType {
		vs = append(vs,
			variant{"empty string", "", false},
			variant{"10k-char string", longText, false},
			variant{"string with NUL byte", "a\x00b", true}, // no column can hold it
		)
	}
	if p.types["integer"] || p.types["number"] {
		vs = append(vs,
			variant{"huge integer", hugeInt, p.types["integer"]},
			variant{"negative number", -1, p.types["integer"]},
			variant{"1e308", 1e308, true},
		)
		if p.types["integer"] {
			vs = append(vs, variant{"fraction", 1.5, true})
		}
	}
	if p.types["boolean"] {
		vs = append(vs, variant{"number 2 for boolean", 2, true}, variant{"string 'yes please'", "yes please", true})
	}
	if p.types["object"] {
		vs = append(vs, variant{"200-deep object", deepValue, false})
	}
	if p.types["array"] && p.items != nil {
		it := p.items
		vs = append(vs,
			variant{"array of objects", []any{map[string]any{"k": "v"}}, !it.accepts("object")},
			variant{"array of arrays", []any{[]any{"x"}}, !it.accepts("array")},
			variant{"array of 10k items", manyStrings(10_000), false},
		)
		if len(it.enum) > 0 {
			vs = append(vs, variant{"array with invalid enum", []any{"not_a_valid_value"}, true})
		}
	}
	if len(p.enum) > 0 && !p.anyType {
		vs = append(vs, variant{"invalid enum", "not_a_valid_value", true})
	}
	switch {
	case p.format == "date-time" || p.format == "date":
		vs = append(vs, variant{"invalid date", "not-a-date", true}, variant{"impossible date", "2024-02-30T25:61:00Z", true})
	case p.format == "uri" || isURLField(name):
		vs = append(vs, variant{"invalid URL", "not a url", true}, variant{"javascript: URL", "javascript:alert(1)", true},
			variant{"URL without host", "https://", true})
	case p.format == "email":
		vs = append(vs, variant{"invalid email", "not-an-email", true})
	case p.format == "uuid":
		vs = append(vs, variant{"non-UUID id", "not-a-uuid", true}, variant{"random UUID", unknownID, true})
		if res := bodyResource(name); res != "" {
			vs = append(vs, variant{"other project's " + res, b.other.id(res), true})
		}
	}
	return vs
}

// bodyResource names the resource a body id property refers to.
func bodyResource(name string) string {
	switch name {
	case "whatsapp_config_id":
		return "prod_config"
	case "customer_id":
		return "customer"
	case "user_id":
		return "user"
	}
	return ""
}

func typeNames(p *prop) string {
	if p.anyType || len(p.types) == 0 {
		return "any"
	}
	var ts []string
	for t := range p.types {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return strings.Join(ts, "|")
}

func manyStrings(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = "x"
	}
	return out
}

// cases builds the whole battery of o.
func (b *builder) cases(o *opInfo) []tcase {
	var out []tcase
	own := b.own
	add := func(c tcase) {
		c.op = o
		if c.method == "" {
			c.method = o.method
		}
		if c.key == "" {
			c.key = own.key
		}
		out = append(out, c)
	}
	withBody := func(c tcase, body map[string]any) tcase {
		if body != nil {
			c.body, c.hasBody = jsonOf(b.t, body), true
		}
		return c
	}
	path := fillPath(o, own, nil)

	// Authentication.
	authWant := want401
	if o.public {
		authWant = wantAny
	}
	add(withBody(tcase{kind: "auth", label: "no API key", url: path, key: "-", want: authWant}, b.baseBody(o, "")))
	add(withBody(tcase{kind: "auth", label: "wrong API key", url: path, key: "pk_live_0000000000000000000000000000000000000000", want: authWant}, b.baseBody(o, "")))
	add(withBody(tcase{kind: "auth", label: "300-char API key", url: path, key: strings.Repeat("k", 300), want: authWant}, b.baseBody(o, "")))

	// Path parameters.
	for _, name := range o.pathParams {
		res := resourceFor(o.path, name)
		type pv struct {
			label string
			value string
			want  expectation
		}
		var pvs []pv
		if res != "agent_execution" {
			pvs = append(pvs, pv{"other project's " + res, b.other.id(res), want404})
			if res == "contact" {
				pvs = append(pvs, pv{"other project's contact wa_id", b.other.phone, want404})
			}
			if s, ok := siblings[res]; ok && name != o.pathParams[len(o.pathParams)-1] {
				pvs = append(pvs, pv{"same project's " + s + " as parent", own.id(s), want404})
			}
		}
		pvs = append(pvs,
			pv{"random UUID", unknownID, want404},
			pv{"non-UUID", "not-a-uuid", wantReject},
			pv{"zero", "0", wantReject},
			pv{"SQL-ish", url.PathEscape("1' OR '1'='1"), wantReject},
			pv{"NUL byte", "%00", wantReject},
			pv{"1000 chars", strings.Repeat("9", 1000), wantReject},
		)
		for _, v := range pvs {
			add(withBody(tcase{kind: "path", label: fmt.Sprintf("{%s} = %s", name, v.label), url: fillPath(o, own, map[string]string{name: v.value}), want: v.want}, b.baseBody(o, "")))
		}
	}

	// Query parameters.
	if len(o.query) > 0 {
		base := b.baseBody(o, "")
		for _, q := range []string{"page=-1", "page=abc", "page=99999999999999999999", "per_page=abc", "per_page=0", "per_page=-5", "per_page=1000000", "page=1&page=2"} {
			add(withBody(tcase{kind: "query", label: q, url: path + "?" + q, want: wantAny}, base))
		}
		for _, qp := range o.query {
			if qp.Name == "page" || qp.Name == "per_page" {
				continue
			}
			for _, v := range b.queryValues(qp) {
				add(withBody(tcase{kind: "query", label: qp.Name + " = " + v.label, url: path + "?" + url.QueryEscape(qp.Name) + "=" + url.QueryEscape(v.value), want: v.want}, b.baseBody(o, "")))
			}
		}
	}

	if o.body == nil {
		return out
	}

	// Whole bodies.
	root := rootKey(o)
	raw := func(label, body string, want expectation) {
		add(tcase{kind: "body", label: label, url: path, body: []byte(body), hasBody: true, want: want})
	}
	raw("not JSON", `this is not json`, want400)
	raw("truncated JSON", `{"`+root+`": {"name": "x"`, want400)
	raw("JSON array", `[1, 2, 3]`, want400)
	raw("JSON string", `"hello"`, want400)
	raw("JSON number", `42`, want400)
	raw("JSON null", `null`, want400)
	raw("trailing garbage", string(jsonOf(b.t, b.baseBody(o, "")))+` garbage`, want400)
	raw("20000-deep JSON", `{"`+root+`": `+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}`, want400)
	{
		body := b.baseBody(o, "")
		body["padding"] = strings.Repeat("p", 2<<20)
		add(tcase{kind: "body", label: "2 MiB body", url: path, body: jsonOf(b.t, body), hasBody: true, want: want413})
	}
	{
		body := b.baseBody(o, "")
		body["deep_unknown"] = nestedObject(2000)
		add(withBody(tcase{kind: "body", label: "2000-deep unknown key", url: path, want: wantAny}, body))
	}
	emptyWant := wantAny
	if o.method == "POST" && len(o.body.required) > 0 {
		emptyWant = wantReject
	}
	raw("empty body", ``, emptyWant)
	raw("empty object", `{}`, emptyWant)

	// Each documented property, with wrong values.
	var props []propPath
	collect("", o.body, 0, &props)
	for _, pp := range props {
		group := ""
		if strings.HasPrefix(pp.path, "message.") {
			group = messageGroup(pp.path)
		}
		if strings.HasPrefix(pp.path, "template.components") {
			group = templateGroup(pp.path)
		}
		groups := []string{group}
		if strings.HasSuffix(pp.path, "components[].format") || strings.HasSuffix(pp.path, "components[].buttons") {
			// Also on the BODY component, where the key does not belong
			// but must still be of its documented type.
			groups = append(groups, "")
		}
		for _, group := range groups {
			for _, v := range b.variants(o, pp) {
				out = append(out, b.propCase(o, pp, group, v, path))
			}
		}
		if pp.required {
			body := b.baseBody(o, group)
			if deletePath(body, pp.path) {
				want := wantReject
				if !strings.Contains(pp.path, ".") && o.method != "POST" || lenient(o, pp.path, "missing") {
					// A PATCH without the root key changes nothing; the
					// leniencies default what is missing.
					want = wantAny
				}
				add(withBody(tcase{kind: "missing", label: "without " + pp.path, url: path, want: want}, body))
			}
		}
	}
	return out
}

// propCase is property pp of o's body set to v, on the base body of group.
func (b *builder) propCase(o *opInfo, pp propPath, group string, v variant, path string) tcase {
	body := b.baseBody(o, group)
	if strings.HasSuffix(pp.path, "customer_id") {
		// customer_id is the alternative to whatsapp_config_id: test it
		// alone, or the config would win.
		deletePath(body, strings.TrimSuffix(pp.path, "customer_id")+"whatsapp_config_id")
	}
	setPath(body, pp.path, v.value)
	want := wantAny
	if v.reject && !lenient(o, pp.path, v.label) {
		want = wantReject
	}
	label := pp.path + " = " + v.label
	if group == "" && templateGroup(pp.path) != "" {
		label += " (on the BODY component)"
	}
	return tcase{op: o, kind: "prop", label: label, method: o.method, url: path, key: b.own.key,
		body: jsonOf(b.t, body), hasBody: true, want: want}
}

type qv struct {
	label string
	value string
	want  expectation
}

// queryValues lists bad values for query parameter qp.
func (b *builder) queryValues(qp *openapi3.Parameter) []qv {
	s := qp.Schema.Value
	out := []qv{
		{"SQL-ish garbage", `%' OR 1=1; --`, wantAny},
		{"LIKE wildcards", `%_%\`, wantAny},
		{"10k chars", longText, wantAny},
		{"NUL byte", "a\x00b", want400}, // no column can hold it
		{"invalid UTF-8", "\xff\xfe", want400},
	}
	switch {
	case s.Format == "date-time" || s.Format == "date":
		out = append(out, qv{"invalid date", "not-a-date", wantReject}, qv{"impossible date", "2024-02-30T25:61:00Z", wantReject})
	case s.Format == "uuid":
		out = append(out, qv{"non-UUID", "not-a-uuid", wantAny}, qv{"random UUID", unknownID, wantAny})
		if res := bodyResource(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(qp.Name, "]"), "q["), "_eq")); res != "" {
			out = append(out, qv{"other project's " + res, b.other.id(res), wantNoLeak})
		}
	case len(s.Enum) > 0:
		out = append(out, qv{"invalid enum", "not_a_valid_value", wantAny})
	}
	if s.Type != nil && s.Type.Is("boolean") {
		out = append(out, qv{"not a boolean", "maybe", wantAny})
	}
	if s.Type != nil && s.Type.Is("array") {
		out = append(out, qv{"comma list of garbage", "a,b,not-a-uuid", wantAny})
	}
	return out
}

// rootKey is the documented root key of o's body ("customer"), or "".
func rootKey(o *opInfo) string {
	if o.body == nil || len(o.body.props) != 1 {
		for k, p := range o.body.props {
			if p.types["object"] && o.body.required[k] {
				return k
			}
		}
		return "x"
	}
	for k := range o.body.props {
		return k
	}
	return "x"
}

// leniencies are deliberate departures from the document's schemas: the
// server accepts these values on purpose, as the comment of each says.
var leniencies = []struct {
	route, prop, variant string // variants separated by "|"; "" matches every variant
	why                  string
}{
	{"POST /webhooks", "webhook.secret_key", "missing", "a missing secret is generated (platform.DecodeWebhook)"},
	{"POST /whatsapp_configs/{id}/whatsapp_webhooks", "whatsapp_webhook.secret_key", "missing", "a missing secret is generated (platform.DecodeWebhook)"},
	{"POST /whatsapp_configs/{id}/sandbox_messages", "type", "missing", "type defaults to text (sandbox.ParseInbound)"},
	{"*", "message.contacts[].name", "non-numeric, non-boolean string", "a string name is Kapso's shorthand for formatted_name"},
	{"*", "message.contacts[].emails[].email", "non-numeric, non-boolean string|invalid email|number for string",
		"contact cards are Meta's free text: only types are checked"},
	{"*", "message.contacts[].urls[].url", "non-numeric, non-boolean string|invalid URL|javascript: URL|URL without host|number for string",
		"contact cards are Meta's free text: only types are checked"},
	{"*", "message.media_file", "", "media_file is a multipart upload field; JSON bodies ignore it"},
	{"POST /whatsapp_broadcasts/{broadcast_id}/recipients", "recipients[].whatsapp_contact_id",
		"number for string|non-numeric, non-boolean string|non-UUID id|random UUID",
		"a contact that does not exist is one recipient's error in Kapso's 201 RecipientBatchResponse, as a bad phone number is"},
}

func lenient(o *opInfo, prop, variant string) bool {
	for _, l := range leniencies {
		if (l.route == "*" || l.route == o.route()) && l.prop == prop && (l.variant == "" || slices.Contains(strings.Split(l.variant, "|"), variant)) {
			return true
		}
	}
	return false
}
