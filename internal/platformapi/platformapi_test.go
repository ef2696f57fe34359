package platformapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
)

func TestOpenAPIDocumentServed(t *testing.T) {
	b := apitest.Setup(t)
	res, err := http.Get(b.Srv.URL + "/platform/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]any
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || json.Unmarshal(raw, &doc) != nil {
		t.Fatalf("status %d: %.200s", res.StatusCode, raw)
	}
	paths, _ := doc["paths"].(map[string]any)
	if paths["/whatsapp/phone_numbers/{phone_number_id}"] == nil {
		t.Errorf("document lacks the phone number path")
	}
}

func TestUnknownRouteAndAuth(t *testing.T) {
	b := apitest.Setup(t)
	r := b.P("GET", "/no/such/thing", nil)
	if r.Status != 404 || r.JSON["error"] != "Not found" {
		t.Errorf("unknown route: %d %s", r.Status, r.Body)
	}
	r = b.PKey("", "GET", "/customers", nil)
	if r.Status != 401 || r.JSON["error"] == nil {
		t.Errorf("no key: %d %s", r.Status, r.Body)
	}
	r = b.PKey("nope", "GET", "/customers", nil)
	if r.Status != 401 {
		t.Errorf("bad key: %d %s", r.Status, r.Body)
	}
}

func TestCustomers(t *testing.T) {
	b := apitest.Setup(t)
	c := b.PMust(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Acme", "external_customer_id": "cus_1"}}).Data()
	b.PMust(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Other"}})
	id := c["id"].(string)
	// One store: /api/v1 sees it, and a change there shows here.
	b.Must(200, "PATCH", "/customers/"+id, map[string]any{"customer": map[string]any{"name": "Acme Corp"}})
	if got := b.PMust(200, "GET", "/customers/"+id, nil).Data()["name"]; got != "Acme Corp" {
		t.Errorf("name %v", got)
	}
	l := b.PMust(200, "GET", "/customers?name=acme", nil)
	if len(l.List()) != 1 || l.JSON["meta"].(map[string]any)["total_count"].(float64) != 1 {
		t.Errorf("name filter: %s", l.Body)
	}
	l = b.PMust(200, "GET", "/customers?external_customer_id=cus_1&per_page=1", nil)
	if len(l.List()) != 1 || l.List()[0]["id"] != id {
		t.Errorf("external id filter: %s", l.Body)
	}
	if n := len(b.PMust(200, "GET", "/customers", nil).List()); n != 2 {
		t.Errorf("list: %d", n)
	}
	b.PMust(200, "PATCH", "/customers/"+id, map[string]any{"customer": map[string]any{"external_customer_id": "cus_2"}})
	b.PMust(422, "POST", "/customers", map[string]any{"customer": map[string]any{"name": ""}})
	b.PMust(422, "PATCH", "/customers/"+id, map[string]any{"customer": map[string]any{"name": " "}})
	// Tenancy: the other project sees nothing.
	if r := b.PKey(b.Key2, "GET", "/customers/"+id, nil); r.Status != 404 {
		t.Errorf("other project: %d", r.Status)
	}
	if r := b.PKey(b.Key2, "PATCH", "/customers/"+id, map[string]any{"customer": map[string]any{"name": "x"}}); r.Status != 404 {
		t.Errorf("other project patch: %d", r.Status)
	}
	b.PMust(404, "GET", "/customers/not-a-uuid", nil)
}
