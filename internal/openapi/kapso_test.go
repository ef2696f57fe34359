package openapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestKapsoErrataApply(t *testing.T) {
	for _, f := range KapsoFiles {
		if _, err := LoadKapso(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := LoadKapso("nope.yaml"); err == nil {
		t.Error("unknown file loaded")
	}
	for _, e := range KapsoErrata {
		if !slices.Contains(KapsoFiles, e.File) || e.Where == "" || e.Why == "" || (e.raw == nil) == (e.doc == nil) {
			t.Errorf("erratum %+v: needs a known file, where, why and exactly one fix", e)
		}
	}
	pl, _ := LoadKapso(KapsoPlatform)
	if op := pl.Paths.Value("/customers").Post; op == nil || op.OperationID != "createPlatformCustomer" {
		t.Error("platform: POST /customers not restored")
	}
	old, _ := LoadKapso(KapsoOlder)
	if old.Components.Schemas["Project"] == nil || old.Components.Schemas["PaginationMeta"] == nil {
		t.Error("older: Project or PaginationMeta missing")
	}
	for _, doc := range []string{KapsoWhatsApp, KapsoOlder} {
		d, _ := LoadKapso(doc)
		mtd := d.Components.Schemas["WhatsappMessage"].Value.Properties["message_type_data"].Value
		if len(mtd.OneOf) != 0 || len(mtd.AnyOf) != 10 {
			t.Errorf("%s: message_type_data oneOf %d, anyOf %d; want 0, 10", doc, len(mtd.OneOf), len(mtd.AnyOf))
		}
	}
	// Every call returns a fresh document.
	a, _ := LoadKapso(KapsoWhatsApp)
	b, _ := LoadKapso(KapsoWhatsApp)
	if a == b {
		t.Error("LoadKapso shares documents")
	}
}

func TestKapsoFindRoute(t *testing.T) {
	k := MustKapsoValidator()
	if k != MustKapsoValidator() {
		t.Error("MustKapsoValidator does not share its validator")
	}
	id := "3c90c3cc-0d44-4b50-8888-8dd25736052a"
	cases := []struct {
		method, path string
		want         map[string]string // file -> template
	}{
		{"GET", "/api/v1/whatsapp_configs", map[string]string{KapsoWhatsApp: "/whatsapp_configs"}},
		{"GET", "/api/v1/whatsapp_configs/" + id, map[string]string{KapsoWhatsApp: "/whatsapp_configs/{id}",
			KapsoPlatform: "/whatsapp_configs/{whatsapp_config_id}", KapsoOlder: "/whatsapp_configs/{config_id}"}},
		{"GET", "/api/v1/whatsapp_configs/" + id + "/whatsapp_webhooks/" + id, map[string]string{
			KapsoPlatform: "/whatsapp_configs/{whatsapp_config_id}/whatsapp_webhooks/{id}"}},
		{"GET", "/api/v1/customers/" + id, map[string]string{KapsoPlatform: "/customers/{id}", KapsoOlder: "/customers/{customer_id}"}},
		{"GET", "/api/v1/projects/" + id, map[string]string{KapsoOlder: "/projects/{project_id}"}},
		{"POST", "/api/v1/whatsapp_configs/" + id + "/sandbox_messages", map[string]string{}},
	}
	for _, c := range cases {
		got := k.FindRoute(httptest.NewRequest(c.method, c.path, nil))
		paths := map[string]string{}
		for f, r := range got {
			paths[f] = r.Path
		}
		if len(paths) != len(c.want) {
			t.Errorf("%s %s: routes %v, want %v", c.method, c.path, paths, c.want)
			continue
		}
		for f, p := range c.want {
			if paths[f] != p {
				t.Errorf("%s %s: %s route %q, want %q", c.method, c.path, f, paths[f], p)
			}
		}
	}
}

func TestKapsoValidateResponse(t *testing.T) {
	k := MustKapsoValidator()
	cfgID := "0b6e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
	get := func(path string) *http.Request { return httptest.NewRequest(http.MethodGet, "/api/v1"+path, nil) }
	customer := get("/customers/" + custID)
	config := get("/whatsapp_configs/" + cfgID)
	cfg := `{"data":{"id":"` + cfgID + `","name":"Main","kind":"sandbox","phone_number_id":"100000000000001",` +
		`"webhook_verified_at":null,"created_at":"` + ts + `","updated_at":"` + ts + `"}}`
	msg := func(mtd string) []byte {
		return []byte(`{"data":{"id":"` + custID + `","message_type":"text","direction":"inbound","metadata":{},` +
			`"message_type_data":` + mtd + `,"created_at":"` + ts + `","updated_at":"` + ts + `"}}`)
	}
	msgReq := httptest.NewRequest(http.MethodPost, "/api/v1/whatsapp_messages", nil)
	template := `{"data":{"id":"` + custID + `","name":"t","status":"removed","components":[{"type":"BODY","text":"hi"}],` +
		`"metadata":{},"created_at":"` + ts + `","updated_at":"` + ts + `"}}`

	cases := []struct {
		name    string
		req     *http.Request
		status  int
		header  http.Header
		body    []byte
		wantErr string // "" = passes; else a substring of the error
		is      error  // when set, the error must wrap it
	}{
		{"conforming customer", customer, 200, jsonHeader(), customerBody(nil), "", nil},
		{"customer without external id", customer, 200, jsonHeader(), customerBody(func(m map[string]any) { delete(m, "external_customer_id") }), "", nil},
		{"external id null", customer, 200, jsonHeader(), customerBody(func(m map[string]any) { m["external_customer_id"] = nil }), KapsoPlatform, nil},
		{"project-level config", config, 200, jsonHeader(), []byte(cfg), "", nil},
		{"config with customer_id null", config, 200, jsonHeader(), []byte(strings.Replace(cfg, `"kind"`, `"customer_id":null,"kind"`, 1)), "customer_id", nil},
		{"undocumented 429", customer, 429, jsonHeader(), []byte(`{"error":"Rate limit exceeded"}`), "", ErrStatusNotKapso},
		{"undocumented 2xx checks the body", customer, 201, jsonHeader(), customerBody(func(m map[string]any) { m["name"] = 1 }), "name", nil},
		{"undocumented 2xx, conforming", customer, 201, jsonHeader(), customerBody(nil), "", nil},
		{"documented 404", customer, 404, jsonHeader(), []byte(`{"error":"Not found"}`), "", nil},
		{"extension", httptest.NewRequest(http.MethodPost, "/api/v1/whatsapp_configs/"+cfgID+"/sandbox_messages", nil), 202, jsonHeader(), []byte(`{}`), "", ErrNotKapso},
		{"unknown route", get("/nope"), 200, jsonHeader(), []byte(`{}`), "", ErrNotKapso},
		{"message_type_data {} (erratum)", msgReq, 201, jsonHeader(), msg(`{}`), "", nil},
		{"message_type_data text (erratum)", msgReq, 201, jsonHeader(), msg(`{"text":"hola"}`), "", nil},
		{"message_type_data null", msgReq, 201, jsonHeader(), msg(`null`), "message_type_data", nil},
		{"message_type_data of the wrong shape", msgReq, 201, jsonHeader(), msg(`{"text":1,"caption":1,"media_id":1,"latitude":"x","template_name":1,"interactive_type":1,"reaction_emoji":1,"contacts":[]}`), "message_type_data", nil},
		// The older document's template (components an object, no "removed") is superseded.
		{"template: current documents only", get("/whatsapp_templates/" + custID), 200, jsonHeader(), []byte(template), "", nil},
		{"project: older document", get("/projects/" + custID), 200, jsonHeader(), []byte(`{"data":{"id":"` + custID + `","name":"P","description":null,"created_at":"` + ts + `","updated_at":"` + ts + `"}}`), "", nil},
		{"project: bad id", get("/projects/" + custID), 200, jsonHeader(), []byte(`{"data":{"id":"p-1","name":"P"}}`), KapsoOlder, nil},
		{"health: subscribed_fields null", get("/whatsapp_configs/" + cfgID + "/health"), 200, jsonHeader(),
			[]byte(`{"status":"healthy","checks":{"webhook_subscription":{"passed":true,"details":{"subscribed":true,"subscribed_fields":null}}},"timestamp":"` + ts + `"}`), "subscribed_fields", nil},
		{"not JSON", customer, 200, http.Header{"Content-Type": {"text/plain"}}, customerBody(nil), "Content-Type", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := k.ValidateResponse(c.req, c.status, c.header, c.body)
			switch {
			case c.is != nil:
				if !errors.Is(err, c.is) {
					t.Fatalf("error %v, want %v", err, c.is)
				}
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

// BenchmarkValidateResponse compares the cost per response of Parley's
// validator and of the Kapso validator that apitest runs after it.
func BenchmarkValidateResponse(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, "/api/v1/customers/"+custID, nil)
	body := customerBody(nil)
	b.Run("parley", func(b *testing.B) {
		v := MustValidator()
		for b.Loop() {
			if err := v.ValidateResponse(req, 200, jsonHeader(), body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kapso", func(b *testing.B) {
		k := MustKapsoValidator()
		for b.Loop() {
			if err := k.ValidateResponse(req, 200, jsonHeader(), body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkNewKapsoValidator(b *testing.B) {
	for b.Loop() {
		if _, err := NewKapsoValidator(); err != nil {
			b.Fatal(err)
		}
	}
}
