package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestLoadValidates(t *testing.T) {
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != BasePath {
		t.Errorf("servers = %+v, want one server %q", doc.Servers, BasePath)
	}
	again, _ := Load()
	if again != doc {
		t.Error("Load does not cache the document")
	}
	// Validate again with every check kin-openapi offers that the document can satisfy.
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatal(err)
	}
}

func TestJSON(t *testing.T) {
	b := JSON()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JSON() is not JSON: %v", err)
	}
	if m["openapi"] != "3.0.3" {
		t.Errorf("openapi = %v", m["openapi"])
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("JSON() does not load back: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("JSON() does not validate: %v", err)
	}
	orig, _ := Load()
	if doc.Paths.Len() != orig.Paths.Len() {
		t.Errorf("JSON round trip has %d paths, want %d", doc.Paths.Len(), orig.Paths.Len())
	}
	if !bytes.Equal(JSON(), b) {
		t.Error("JSON() is not stable")
	}
	// The JSON document itself conforms to the openapi.json operation.
	req := httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil)
	if err := MustValidator().ValidateResponse(req, 200, jsonHeader(), b); err != nil {
		t.Error(err)
	}
}

// kapsoRoute maps a Kapso operation to the Parley path serving it.
type kapsoRoute struct {
	file, path, method, parleyPath string
}

const (
	waFile  = KapsoWhatsApp
	plFile  = KapsoPlatform
	oldFile = KapsoOlder
)

// kapsoRoutes lists every Kapso operation Parley serves. Where Kapso's two
// files name a path parameter differently, Parley uses one name per template
// position (see the parleyPath column).
var kapsoRoutes = []kapsoRoute{
	{oldFile, "/projects/{project_id}", "GET", "/projects/{project_id}"},

	{plFile, "/customers", "GET", "/customers"},
	{plFile, "/customers", "POST", "/customers"}, // after the erratum fix
	{plFile, "/customers/{id}", "GET", "/customers/{id}"},
	{plFile, "/customers/{id}", "PATCH", "/customers/{id}"},
	{plFile, "/customers/{id}", "DELETE", "/customers/{id}"},
	{plFile, "/customers/{customer_id}/setup_links", "GET", "/customers/{customer_id}/setup_links"},
	{plFile, "/customers/{customer_id}/setup_links", "POST", "/customers/{customer_id}/setup_links"},
	{plFile, "/customers/{customer_id}/setup_links/{id}", "PATCH", "/customers/{customer_id}/setup_links/{id}"},
	{plFile, "/customers/{customer_id}/whatsapp_configs", "GET", "/customers/{customer_id}/whatsapp_configs"},
	{plFile, "/customers/{customer_id}/whatsapp_configs", "POST", "/customers/{customer_id}/whatsapp_configs"},

	{waFile, "/whatsapp_configs", "GET", "/whatsapp_configs"},
	{waFile, "/whatsapp_configs/{id}", "GET", "/whatsapp_configs/{id}"},
	{waFile, "/whatsapp_configs/{id}", "PATCH", "/whatsapp_configs/{id}"},
	{waFile, "/whatsapp_configs/{id}", "DELETE", "/whatsapp_configs/{id}"},
	{waFile, "/whatsapp_configs/{id}/health", "GET", "/whatsapp_configs/{id}/health"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}", "GET", "/whatsapp_configs/{id}"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}", "PATCH", "/whatsapp_configs/{id}"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}", "DELETE", "/whatsapp_configs/{id}"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/health", "GET", "/whatsapp_configs/{id}/health"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/whatsapp_webhooks", "GET", "/whatsapp_configs/{id}/whatsapp_webhooks"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/whatsapp_webhooks", "POST", "/whatsapp_configs/{id}/whatsapp_webhooks"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/whatsapp_webhooks/{id}", "GET", "/whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/whatsapp_webhooks/{id}", "PATCH", "/whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/whatsapp_webhooks/{id}", "DELETE", "/whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/display_name_requests", "GET", "/whatsapp_configs/{id}/display_name_requests"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/display_name_requests", "POST", "/whatsapp_configs/{id}/display_name_requests"},
	{plFile, "/whatsapp_configs/{whatsapp_config_id}/display_name_requests/{id}", "GET", "/whatsapp_configs/{id}/display_name_requests/{request_id}"},

	{waFile, "/whatsapp_conversations", "GET", "/whatsapp_conversations"},
	{waFile, "/whatsapp_conversations/{conversation_id}", "GET", "/whatsapp_conversations/{conversation_id}"},
	{waFile, "/whatsapp_conversations/{conversation_id}", "PATCH", "/whatsapp_conversations/{conversation_id}"},
	{waFile, "/whatsapp_conversations/{conversation_id}/whatsapp_messages", "GET", "/whatsapp_conversations/{conversation_id}/whatsapp_messages"},
	{waFile, "/whatsapp_conversations/{conversation_id}/whatsapp_messages", "POST", "/whatsapp_conversations/{conversation_id}/whatsapp_messages"},
	{waFile, "/whatsapp_conversations/{conversation_id}/agent_executions", "GET", "/whatsapp_conversations/{conversation_id}/agent_executions"},
	{waFile, "/whatsapp_conversations/{conversation_id}/agent_executions/{id}", "GET", "/whatsapp_conversations/{conversation_id}/agent_executions/{id}"},
	{waFile, "/whatsapp_conversations/{whatsapp_conversation_id}/conversation_assignments", "GET", "/whatsapp_conversations/{conversation_id}/conversation_assignments"},
	{waFile, "/whatsapp_conversations/{whatsapp_conversation_id}/conversation_assignments", "POST", "/whatsapp_conversations/{conversation_id}/conversation_assignments"},
	{waFile, "/whatsapp_conversations/{whatsapp_conversation_id}/conversation_assignments/{id}", "PATCH", "/whatsapp_conversations/{conversation_id}/conversation_assignments/{id}"},

	{waFile, "/whatsapp_messages", "POST", "/whatsapp_messages"},
	{waFile, "/whatsapp_messages/{id}", "DELETE", "/whatsapp_messages/{id}"},
	{waFile, "/whatsapp_messages/{id}/mark_as_read", "PATCH", "/whatsapp_messages/{id}/mark_as_read"},

	{waFile, "/whatsapp_templates", "GET", "/whatsapp_templates"},
	{waFile, "/whatsapp_templates", "POST", "/whatsapp_templates"},
	{waFile, "/whatsapp_templates/{template_id}", "GET", "/whatsapp_templates/{template_id}"},
	{waFile, "/whatsapp_templates/{template_id}", "PATCH", "/whatsapp_templates/{template_id}"},
	{waFile, "/whatsapp_templates/{template_id}", "DELETE", "/whatsapp_templates/{template_id}"},
	{waFile, "/whatsapp_templates/{template_id}/send_template", "POST", "/whatsapp_templates/{template_id}/send_template"},
	{waFile, "/whatsapp_templates/{template_id}/submit", "POST", "/whatsapp_templates/{template_id}/submit"},
	{waFile, "/whatsapp_templates/{template_id}/meta", "PATCH", "/whatsapp_templates/{template_id}/meta"},
	{waFile, "/whatsapp_templates/sync", "POST", "/whatsapp_templates/sync"},
	{waFile, "/whatsapp_templates/sync_status", "GET", "/whatsapp_templates/sync_status"},

	{waFile, "/whatsapp_contacts", "GET", "/whatsapp_contacts"},
	{waFile, "/whatsapp_contacts", "POST", "/whatsapp_contacts"},
	{waFile, "/whatsapp_contacts/{identifier}", "GET", "/whatsapp_contacts/{identifier}"},
	{waFile, "/whatsapp_contacts/{identifier}", "PATCH", "/whatsapp_contacts/{identifier}"},
	{waFile, "/whatsapp_contacts/{identifier}/notes", "GET", "/whatsapp_contacts/{identifier}/notes"},
	{waFile, "/whatsapp_contacts/{identifier}/notes", "POST", "/whatsapp_contacts/{identifier}/notes"},
	{waFile, "/whatsapp_contacts/{identifier}/notes/{note_id}", "GET", "/whatsapp_contacts/{identifier}/notes/{note_id}"},
	{waFile, "/whatsapp_contacts/{identifier}/notes/{note_id}", "PATCH", "/whatsapp_contacts/{identifier}/notes/{note_id}"},
	{waFile, "/whatsapp_contacts/{identifier}/notes/{note_id}", "DELETE", "/whatsapp_contacts/{identifier}/notes/{note_id}"},
	{waFile, "/whatsapp_contacts/{identifier}/call_permissions", "GET", "/whatsapp_contacts/{identifier}/call_permissions"},
	{waFile, "/whatsapp_contacts/{identifier}/call_permissions/{whatsapp_config_id}", "GET", "/whatsapp_contacts/{identifier}/call_permissions/{whatsapp_config_id}"},

	{waFile, "/whatsapp_calls", "GET", "/whatsapp_calls"},
	{waFile, "/whatsapp_calls/{id}", "GET", "/whatsapp_calls/{id}"},

	{plFile, "/whatsapp_broadcasts", "GET", "/whatsapp_broadcasts"},
	{plFile, "/whatsapp_broadcasts", "POST", "/whatsapp_broadcasts"},
	{plFile, "/whatsapp_broadcasts/{broadcast_id}", "GET", "/whatsapp_broadcasts/{broadcast_id}"},
	{plFile, "/whatsapp_broadcasts/{broadcast_id}/recipients", "GET", "/whatsapp_broadcasts/{broadcast_id}/recipients"},
	{plFile, "/whatsapp_broadcasts/{broadcast_id}/recipients", "POST", "/whatsapp_broadcasts/{broadcast_id}/recipients"},
	{plFile, "/whatsapp_broadcasts/{broadcast_id}/send", "POST", "/whatsapp_broadcasts/{broadcast_id}/send"},
}

// loadKapso loads one of Kapso's specs from testdata with the errata applied.
func loadKapso(t *testing.T, file string) *openapi3.T {
	t.Helper()
	doc, err := LoadKapso(file)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestKapsoOperationsServed(t *testing.T) {
	parley, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	kapso := map[string]*openapi3.T{}
	for _, f := range []string{waFile, plFile, oldFile} {
		kapso[f] = loadKapso(t, f)
	}
	served := map[string]bool{}
	for _, r := range kapsoRoutes {
		name := fmt.Sprintf("%s %s (%s)", r.method, r.path, r.file)
		served[r.method+" "+r.parleyPath] = true
		kItem := kapso[r.file].Paths.Value(r.path)
		if kItem == nil || kItem.GetOperation(r.method) == nil {
			t.Errorf("%s: not in Kapso's spec (table is wrong)", name)
			continue
		}
		kOp := kItem.GetOperation(r.method)
		pItem := parley.Paths.Value(r.parleyPath)
		if pItem == nil || pItem.GetOperation(r.method) == nil {
			t.Errorf("%s: Parley does not document %s %s", name, r.method, r.parleyPath)
			continue
		}
		pOp := pItem.GetOperation(r.method)
		if pOp.Extensions["x-parley-extension"] != nil {
			t.Errorf("%s: Kapso operation marked as a Parley extension", name)
		}
		for code, kResp := range kOp.Responses.Map() {
			pResp := pOp.Responses.Value(code)
			if pResp == nil {
				t.Errorf("%s: Kapso documents status %s, Parley does not", name, code)
				continue
			}
			if !strings.HasPrefix(code, "2") {
				continue
			}
			kMT := kResp.Value.Content.Get("application/json")
			pMT := pResp.Value.Content.Get("application/json")
			switch {
			case kMT == nil && pMT == nil:
			case kMT == nil || pMT == nil:
				t.Errorf("%s %s: JSON content differs (Kapso %v, Parley %v)", name, code, kMT != nil, pMT != nil)
			default:
				for _, p := range compareSchema(kMT.Schema, pMT.Schema, "", 0) {
					t.Errorf("%s %s: %s", name, code, p)
				}
			}
		}
		// Path parameters: the Parley template declares exactly its own names.
		for _, p := range pOp.Parameters {
			if p.Value.In == "path" && !strings.Contains(r.parleyPath, "{"+p.Value.Name+"}") {
				t.Errorf("%s: path parameter %q not in %s", name, p.Value.Name, r.parleyPath)
			}
		}
	}
	// Every non-extension operation in Parley's document comes from Kapso.
	for path, item := range parley.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Extensions["x-parley-extension"] == true {
				continue
			}
			if !served[method+" "+path] {
				t.Errorf("%s %s: neither a Kapso operation nor marked x-parley-extension", method, path)
			}
		}
	}
}

// compareSchema reports where Parley's schema p fails to cover Kapso's
// schema k: every Kapso property must exist, Parley's required list must be
// a superset of Kapso's, types must agree, and Parley may not allow null
// where Kapso does not (a client validating against Kapso's document would
// reject it), recursively.
func compareSchema(k, p *openapi3.SchemaRef, at string, depth int) []string {
	if k == nil || k.Value == nil || depth > 12 {
		return nil
	}
	if p == nil || p.Value == nil {
		return []string{at + ": missing in Parley"}
	}
	ks, ps := k.Value, p.Value
	if alts := append(slices.Clone(ps.OneOf), ps.AnyOf...); len(alts) > 0 && len(ks.OneOf)+len(ks.AnyOf) == 0 {
		// Parley widened the schema: one alternative must cover Kapso's.
		for _, alt := range alts {
			if len(compareSchema(k, alt, at, depth+1)) == 0 {
				return nil
			}
		}
		return []string{at + ": no oneOf/anyOf alternative covers Kapso's schema"}
	}
	var out []string
	if ks.Type != nil && ps.Type != nil && !slices.Equal(ks.Type.Slice(), ps.Type.Slice()) {
		out = append(out, fmt.Sprintf("%s: type %v, Kapso %v", at, ps.Type.Slice(), ks.Type.Slice()))
	}
	if ps.Nullable && !ks.Nullable {
		out = append(out, at+": nullable in Parley, not in Kapso")
	}
	if ks.Format != "" && ks.Format != ps.Format {
		out = append(out, fmt.Sprintf("%s: format %q, Kapso %q", at, ps.Format, ks.Format))
	}
	for _, r := range ks.Required {
		if !slices.Contains(ps.Required, r) {
			out = append(out, fmt.Sprintf("%s: %q required by Kapso, not by Parley", at, r))
		}
	}
	if len(ks.Enum) > 0 {
		for _, e := range ks.Enum {
			if len(ps.Enum) > 0 && !slices.ContainsFunc(ps.Enum, func(x any) bool { return fmt.Sprint(x) == fmt.Sprint(e) }) {
				out = append(out, fmt.Sprintf("%s: enum value %v missing", at, e))
			}
		}
	}
	names := make([]string, 0, len(ks.Properties))
	for n := range ks.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		pp, ok := ps.Properties[n]
		if !ok {
			out = append(out, fmt.Sprintf("%s/%s: property missing in Parley", at, n))
			continue
		}
		out = append(out, compareSchema(ks.Properties[n], pp, at+"/"+n, depth+1)...)
	}
	if ks.Items != nil {
		out = append(out, compareSchema(ks.Items, ps.Items, at+"/items", depth+1)...)
	}
	return out
}

var parleyErrorStatuses = []string{"400", "401", "404", "413", "422", "429"}

func TestEveryOperationDocumentsErrorsAndPagination(t *testing.T) {
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			}
			for _, code := range parleyErrorStatuses {
				r := op.Responses.Value(code)
				if r == nil || r.Value.Content.Get("application/json") == nil {
					t.Errorf("%s: error status %s not documented as JSON", name, code)
				}
			}
			if op.Extensions["x-parley-extension"] == true && !slices.Contains(op.Tags, "Parley extensions") {
				t.Errorf("%s: extension not tagged \"Parley extensions\"", name)
			}
			for code, r := range op.Responses.Map() {
				mt := r.Value.Content.Get("application/json")
				if !strings.HasPrefix(code, "2") || mt == nil {
					continue
				}
				s := mt.Schema.Value
				data := s.Properties["data"]
				if data == nil || !data.Value.Type.Is("array") {
					continue
				}
				meta := s.Properties["meta"]
				if meta == nil || meta.Ref != "#/components/schemas/PaginationMeta" || !slices.Contains(s.Required, "meta") {
					t.Errorf("%s %s: list without required PaginationMeta", name, code)
				}
			}
		}
	}
	meta := doc.Components.Schemas["PaginationMeta"].Value
	for _, f := range []string{"page", "per_page", "total_pages", "total_count"} {
		if !slices.Contains(meta.Required, f) {
			t.Errorf("PaginationMeta.%s not required", f)
		}
	}
}

func TestExtensions(t *testing.T) {
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /openapi.json",
		"POST /whatsapp_configs",
		"GET /users", "POST /users", "GET /users/{id}", "PATCH /users/{id}", "DELETE /users/{id}",
		"POST /whatsapp_configs/{id}/sandbox_messages",
		"GET /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/deliveries",
		"GET /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/deliveries/{delivery_id}",
		"POST /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
		"POST /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/test",
		"GET /webhooks", "POST /webhooks", "GET /webhooks/{id}", "PATCH /webhooks/{id}", "DELETE /webhooks/{id}",
		"GET /webhooks/{id}/deliveries", "POST /webhooks/{id}/test",
	}
	for _, w := range want {
		method, path, _ := strings.Cut(w, " ")
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("%s: missing", w)
			continue
		}
		if item.GetOperation(method).Extensions["x-parley-extension"] != true {
			t.Errorf("%s: not marked x-parley-extension", w)
		}
	}
	wh := doc.Components.Schemas["WhatsappWebhook"].Value
	for _, f := range []string{"inactivity_minutes", "retry_config", "payload_version", "buffer_events", "headers", "secret_key"} {
		if wh.Properties[f] == nil {
			t.Errorf("WhatsappWebhook.%s missing", f)
		}
	}
}

// TestExamplesConform checks every example in the document against its
// schema with the formats the Validator enforces (uuid, email, uri,
// date-time), so no example carries a placeholder id.
func TestExamplesConform(t *testing.T) {
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(formatOptions(), openapi3.MultiErrors())
	check := func(where string, s *openapi3.SchemaRef, v any) {
		if s == nil || s.Value == nil || v == nil {
			return
		}
		if err := s.Value.VisitJSON(v, opts...); err != nil {
			t.Errorf("%s: example does not conform: %v", where, err)
		}
	}
	var walk func(where string, s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool)
	walk = func(where string, s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
		if s == nil || s.Value == nil || seen[s.Value] {
			return
		}
		seen[s.Value] = true
		check(where, s, s.Value.Example)
		for n, p := range s.Value.Properties {
			walk(where+"/"+n, p, seen)
		}
		walk(where+"/items", s.Value.Items, seen)
		for i, alt := range append(append(slices.Clone(s.Value.OneOf), s.Value.AnyOf...), s.Value.AllOf...) {
			walk(fmt.Sprintf("%s/alt%d", where, i), alt, seen)
		}
	}
	seen := map[*openapi3.Schema]bool{}
	for n, s := range doc.Components.Schemas {
		walk("#/components/schemas/"+n, s, seen)
	}
	media := func(where string, mt *openapi3.MediaType) {
		if mt == nil {
			return
		}
		walk(where, mt.Schema, seen)
		check(where+" example", mt.Schema, mt.Example)
		for n, ex := range mt.Examples {
			check(where+" examples/"+n, mt.Schema, ex.Value.Value)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			at := method + " " + path
			for _, p := range op.Parameters {
				walk(at+" param "+p.Value.Name, p.Value.Schema, seen)
				check(at+" param "+p.Value.Name, p.Value.Schema, p.Value.Example)
			}
			if op.RequestBody != nil {
				media(at+" request", op.RequestBody.Value.Content.Get("application/json"))
			}
			for code, r := range op.Responses.Map() {
				media(at+" "+code, r.Value.Content.Get("application/json"))
			}
		}
	}
}

func jsonHeader() http.Header {
	return http.Header{"Content-Type": []string{"application/json; charset=utf-8"}}
}

const (
	custID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
	ts     = "2026-01-02T03:04:05.123456Z"
)

func customerObj() map[string]any {
	return map[string]any{
		"id":                   custID,
		"name":                 "Acme",
		"external_customer_id": "CUS-1",
		"created_at":           ts,
		"updated_at":           ts,
	}
}

func customerBody(mutate func(m map[string]any)) []byte {
	c := customerObj()
	if mutate != nil {
		mutate(c)
	}
	b, _ := json.Marshal(map[string]any{"data": c})
	return b
}

func TestValidateResponse(t *testing.T) {
	v := MustValidator()
	if v != MustValidator() {
		t.Error("MustValidator does not share its Validator")
	}
	// A client-side request (absolute URL, as against an httptest.Server) and
	// a server-side one (path only) must both resolve.
	clientGet, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:54321/api/v1/customers/"+custID+"?x=1", nil)
	serverGet := httptest.NewRequest(http.MethodGet, "/api/v1/customers/"+custID, nil)
	list, _ := json.Marshal(map[string]any{
		"data": []any{customerObj()},
		"meta": map[string]any{"page": 1, "per_page": 20, "total_pages": 1, "total_count": 1},
	})
	listReq, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:54321/api/v1/customers?page=1", nil)
	del := httptest.NewRequest(http.MethodDelete, "/api/v1/customers/"+custID, nil)

	cases := []struct {
		name    string
		req     *http.Request
		status  int
		header  http.Header
		body    []byte
		wantErr string // "" = must pass; otherwise a substring of the error
	}{
		{"conforming (client URL)", clientGet, 200, jsonHeader(), customerBody(nil), ""},
		{"conforming (server URL)", serverGet, 200, jsonHeader(), customerBody(nil), ""},
		{"conforming list", listReq, 200, jsonHeader(), list, ""},
		{"nullable-free extra field is fine", serverGet, 200, jsonHeader(), customerBody(func(m map[string]any) { m["extra"] = true }), ""},
		{"wrong type", serverGet, 200, jsonHeader(), customerBody(func(m map[string]any) { m["name"] = 42 }), "name"},
		{"missing required id", serverGet, 200, jsonHeader(), customerBody(func(m map[string]any) { delete(m, "id") }), "id"},
		{"missing data envelope", serverGet, 200, jsonHeader(), []byte(`{"id":"` + custID + `"}`), "data"},
		{"bad uuid", serverGet, 200, jsonHeader(), customerBody(func(m map[string]any) { m["id"] = "customer-123" }), "uuid"},
		{"bad date-time", serverGet, 200, jsonHeader(), customerBody(func(m map[string]any) { m["created_at"] = "2026-01-02 03:04:05" }), "date-time"},
		{"null in non-nullable field", serverGet, 200, jsonHeader(), customerBody(func(m map[string]any) { m["name"] = nil }), "name"},
		{"list without meta", listReq, 200, jsonHeader(), []byte(`{"data":[]}`), "meta"},
		{"undocumented status", serverGet, 418, jsonHeader(), customerBody(nil), "not documented"},
		{"undocumented 201 on GET", serverGet, 201, jsonHeader(), customerBody(nil), "not documented"},
		{"not JSON content type", serverGet, 200, http.Header{"Content-Type": {"text/plain"}}, customerBody(nil), "Content-Type"},
		{"no content type", serverGet, 200, nil, customerBody(nil), "Content-Type"},
		{"invalid JSON", serverGet, 200, jsonHeader(), []byte(`{"data":`), "data"},
		{"401 error body", serverGet, 401, jsonHeader(), []byte(`{"error":"Invalid or missing API key"}`), ""},
		{"404 error body", serverGet, 404, jsonHeader(), []byte(`{"error":"Not found","message":"Customer not found"}`), ""},
		{"422 error body with errors", serverGet, 422, jsonHeader(), []byte(`{"error":"Validation failed","errors":["Name can't be blank"],"status":422}`), ""},
		{"429 error body", serverGet, 429, jsonHeader(), []byte(`{"error":"Rate limit exceeded","message":"retry later"}`), ""},
		{"error body without error", serverGet, 404, jsonHeader(), []byte(`{"message":"nope"}`), "error"},
		{"error with wrong errors type", serverGet, 422, jsonHeader(), []byte(`{"error":"x","errors":"bad"}`), "errors"},
		{"204 without body", del, 204, http.Header{}, nil, ""},
		{"204 with body", del, 204, jsonHeader(), []byte(`{"ok":true}`), "without a body"},
		{"unknown route", httptest.NewRequest(http.MethodGet, "/api/v1/nope", nil), 200, jsonHeader(), []byte(`{}`), "not a documented operation"},
		{"unknown method", httptest.NewRequest(http.MethodPut, "/api/v1/customers", nil), 200, jsonHeader(), []byte(`{}`), "not a documented operation"},
		{"outside base path", httptest.NewRequest(http.MethodGet, "/customers", nil), 200, jsonHeader(), customerBody(nil), "not a documented operation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.ValidateResponse(c.req, c.status, c.header, c.body)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("accepted, want an error mentioning %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("error %q does not mention %q", err, c.wantErr)
			}
		})
	}
}

func TestValidateResponseResources(t *testing.T) {
	v := MustValidator()
	cfgID := "0b6e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
	whID := "9e8d7c6b-5a4f-4e2d-9c0b-9a8f7e6d5c4b"
	webhook := map[string]any{
		"id": whID, "url": "https://example.com/hook", "secret_key": "s3cret",
		"events": []string{"whatsapp.message.received", "messages"}, "active": true, "headers": nil,
		"buffer_enabled": false, "buffer_window_seconds": 5, "max_buffer_size": 50,
		"buffer_events":      []string{"whatsapp.message.received"},
		"inactivity_minutes": 60, "retry_config": map[string]any{"max_attempts": 3, "backoff_seconds": 60},
		"payload_version": "v2", "created_at": ts, "updated_at": ts,
	}
	body := func(v any) []byte { b, _ := json.Marshal(map[string]any{"data": v}); return b }
	whReq := httptest.NewRequest(http.MethodGet, "/api/v1/whatsapp_configs/"+cfgID+"/whatsapp_webhooks/"+whID, nil)
	if err := v.ValidateResponse(whReq, 200, jsonHeader(), body(webhook)); err != nil {
		t.Errorf("webhook: %v", err)
	}
	webhook["events"] = []string{"not.an.event"}
	if err := v.ValidateResponse(whReq, 200, jsonHeader(), body(webhook)); err == nil {
		t.Error("webhook with unknown event accepted")
	}
	webhook["events"] = []string{"whatsapp.message.received"}
	webhook["payload_version"] = "v3"
	if err := v.ValidateResponse(whReq, 200, jsonHeader(), body(webhook)); err == nil {
		t.Error("webhook with payload_version v3 accepted")
	}

	// Project webhooks only take lifecycle events.
	pwReq := httptest.NewRequest(http.MethodGet, "/api/v1/webhooks/"+whID, nil)
	webhook["payload_version"] = "v2"
	if err := v.ValidateResponse(pwReq, 200, jsonHeader(), body(webhook)); err == nil {
		t.Error("project webhook with a message event accepted")
	}
	webhook["events"] = []string{"whatsapp.config.created"}
	if err := v.ValidateResponse(pwReq, 200, jsonHeader(), body(webhook)); err != nil {
		t.Errorf("project webhook: %v", err)
	}

	// Sandbox message: 202 with the documented envelope.
	sbReq, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/v1/whatsapp_configs/"+cfgID+"/sandbox_messages", strings.NewReader(`{"from":"56911112222","type":"text","text":{"body":"hola"}}`))
	if err := v.ValidateResponse(sbReq, 202, jsonHeader(), body(map[string]any{"whatsapp_message_id": "wamid.X", "whatsapp_config_id": cfgID})); err != nil {
		t.Errorf("sandbox: %v", err)
	}
	if err := v.ValidateResponse(sbReq, 201, jsonHeader(), body(map[string]any{"whatsapp_message_id": "wamid.X", "whatsapp_config_id": cfgID})); err == nil {
		t.Error("sandbox 201 accepted")
	}

	// Deliveries.
	delivery := map[string]any{
		"id": "0f8e2c1a-7b3d-4e5f-9a6b-8c7d6e5f4a3b", "webhook_id": whID, "event": "whatsapp.message.received",
		"status": "failed", "attempts_count": 1, "idempotency_key": "k", "next_attempt_at": nil, "last_attempt_at": ts,
		"created_at": ts, "updated_at": ts, "batch": false,
		"attempts": []any{map[string]any{"number": 1, "started_at": ts, "status_code": nil, "latency_ms": 10000,
			"error": "timeout", "response_snippet": nil}},
	}
	dlReq := httptest.NewRequest(http.MethodGet, "/api/v1/whatsapp_configs/"+cfgID+"/whatsapp_webhooks/"+whID+"/deliveries", nil)
	list, _ := json.Marshal(map[string]any{"data": []any{delivery}, "meta": map[string]any{"page": 1, "per_page": 20, "total_pages": 1, "total_count": 1}})
	if err := v.ValidateResponse(dlReq, 200, jsonHeader(), list); err != nil {
		t.Errorf("deliveries: %v", err)
	}
	delivery["status"] = "done"
	list, _ = json.Marshal(map[string]any{"data": []any{delivery}, "meta": map[string]any{"page": 1, "per_page": 20, "total_pages": 1, "total_count": 1}})
	if err := v.ValidateResponse(dlReq, 200, jsonHeader(), list); err == nil {
		t.Error("delivery with status done accepted")
	}

	// Template DELETE answers 200 with the template, not 204.
	tplReq := httptest.NewRequest(http.MethodDelete, "/api/v1/whatsapp_templates/"+cfgID, nil)
	if err := v.ValidateResponse(tplReq, 204, http.Header{}, nil); err == nil {
		t.Error("template DELETE 204 accepted")
	}

	// A project-level config (Parley extension) has no customer_id: it is
	// omitted, since Kapso's WhatsappConfig does not allow null.
	cfg := map[string]any{"id": cfgID, "name": "Main", "kind": "sandbox", "phone_number_id": "100000000000001",
		"webhook_verified_at": nil, "created_at": ts, "updated_at": ts}
	cfgReq := httptest.NewRequest(http.MethodPost, "/api/v1/whatsapp_configs", nil)
	if err := v.ValidateResponse(cfgReq, 201, jsonHeader(), body(cfg)); err != nil {
		t.Errorf("project config: %v", err)
	}
	cfg["customer_id"] = nil
	if err := v.ValidateResponse(cfgReq, 201, jsonHeader(), body(cfg)); err == nil {
		t.Error("config with customer_id null accepted")
	}
	delete(cfg, "customer_id")
	cfg["kind"] = "staging"
	if err := v.ValidateResponse(cfgReq, 201, jsonHeader(), body(cfg)); err == nil {
		t.Error("config with kind staging accepted")
	}
	cfg["kind"] = "sandbox"
	cfg["webhook_verify_token"] = "secret"
	if err := v.ValidateResponse(cfgReq, 201, jsonHeader(), body(cfg)); err == nil {
		t.Error("config echoing write-only webhook_verify_token accepted")
	}

	// Health is not enveloped.
	hReq := httptest.NewRequest(http.MethodGet, "/api/v1/whatsapp_configs/"+cfgID+"/health", nil)
	if err := v.ValidateResponse(hReq, 200, jsonHeader(), []byte(`{"status":"healthy","checks":{},"timestamp":"`+ts+`"}`)); err != nil {
		t.Errorf("health: %v", err)
	}
	if err := v.ValidateResponse(hReq, 200, jsonHeader(), []byte(`{"status":"fine"}`)); err == nil {
		t.Error("health with unknown status accepted")
	}
}

func TestFindRoute(t *testing.T) {
	v := MustValidator()
	id := "3c90c3cc-0d44-4b50-8888-8dd25736052a"
	cases := []struct{ method, url, path, op string }{
		{"GET", "/api/v1/whatsapp_templates/sync_status", "/whatsapp_templates/sync_status", "getWhatsappTemplateSyncStatus"},
		{"POST", "/api/v1/whatsapp_templates/sync", "/whatsapp_templates/sync", ""},
		{"GET", "/api/v1/whatsapp_templates/" + id, "/whatsapp_templates/{template_id}", ""},
		{"GET", "http://localhost:9/api/v1/whatsapp_conversations/" + id + "/conversation_assignments", "/whatsapp_conversations/{conversation_id}/conversation_assignments", ""},
		{"GET", "/api/v1/whatsapp_configs/" + id + "/whatsapp_webhooks/" + id + "/deliveries", "/whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}/deliveries", ""},
		{"GET", "/api/v1/whatsapp_contacts/56911112222/call_permissions/" + id, "/whatsapp_contacts/{identifier}/call_permissions/{whatsapp_config_id}", ""},
		{"GET", "/api/v1/openapi.json", "/openapi.json", "getOpenAPIDocument"},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, "/", nil)
		req.URL, _ = req.URL.Parse(c.url)
		r, err := v.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: %v", c.method, c.url, err)
			continue
		}
		if r.Path != c.path {
			t.Errorf("%s %s: route %s, want %s", c.method, c.url, r.Path, c.path)
		}
		if c.op != "" && r.OperationID != c.op {
			t.Errorf("%s %s: operation %s, want %s", c.method, c.url, r.OperationID, c.op)
		}
	}
	r, err := v.FindRoute(httptest.NewRequest("GET", "/api/v1/whatsapp_configs/"+id+"/whatsapp_webhooks/abc", nil))
	if err != nil || r.PathParams["id"] != id || r.PathParams["webhook_id"] != "abc" {
		t.Errorf("path params = %+v, %v", r, err)
	}
}

func TestValidateRequest(t *testing.T) {
	v := MustValidator()
	body := `{"customer":{"name":"Acme","external_customer_id":"CUS-1"}}`
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/v1/customers", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := v.ValidateRequest(req); err != nil {
		t.Fatal(err)
	}
	// The body is still readable afterwards.
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(req.Body); err != nil || buf.String() != body {
		t.Fatalf("body after validation = %q, %v", buf.String(), err)
	}
	bad, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/v1/customers", strings.NewReader(`{"customer":{"external_customer_id":"CUS-1"}}`))
	bad.Header.Set("Content-Type", "application/json")
	if err := v.ValidateRequest(bad); err == nil {
		t.Error("create customer without name accepted")
	}
	badQuery := httptest.NewRequest(http.MethodGet, "/api/v1/customers?page=zero", nil)
	if err := v.ValidateRequest(badQuery); err == nil {
		t.Error("page=zero accepted")
	}
	get := httptest.NewRequest(http.MethodGet, "/api/v1/customers?page=2&per_page=50&unknown=1", nil)
	if err := v.ValidateRequest(get); err != nil {
		t.Errorf("list with unknown query param: %v", err)
	}
}
