package api_test

import (
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"net/http"
	"strings"
	"testing"
)

func TestAuthRequired(t *testing.T) {
	b := apitest.Setup(t)
	for _, key := range []string{"", "pk_wrong"} {
		r := b.DoKey(key, "GET", "/customers", nil)
		if r.Status != http.StatusUnauthorized || r.JSON["error"] != "Invalid or missing API key" {
			t.Fatalf("key %q: %d %s", key, r.Status, r.Body)
		}
	}
}

func TestProjectIsTheKeysOwn(t *testing.T) {
	b := apitest.Setup(t)
	r := b.Must(200, "GET", "/projects/"+b.Project, nil)
	if r.Data()["id"] != b.Project || r.Data()["name"] != "Test project" {
		t.Fatalf("project: %s", r.Body)
	}
	b.Must(404, "GET", "/projects/"+b.Project2, nil)
	b.Must(404, "GET", "/projects/not-a-uuid", nil)
}

func TestCustomersCRUD(t *testing.T) {
	b := apitest.Setup(t)
	// Root key and bare attributes are both accepted.
	c1 := b.Must(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Acme", "external_customer_id": "acme-1"}}).Data()
	c2 := b.Must(201, "POST", "/customers", map[string]any{"name": "Globex", "unknown": 1}).Data()
	if c1["name"] != "Acme" || c1["external_customer_id"] != "acme-1" || c2["external_customer_id"] != nil {
		t.Fatalf("created: %v %v", c1, c2)
	}
	id := c1["id"].(string)
	list := b.Must(200, "GET", "/customers?q[name_cont]=acm", nil)
	if len(list.List()) != 1 || list.JSON["meta"].(map[string]any)["total_count"].(float64) != 1 {
		t.Fatalf("filter: %s", list.Body)
	}
	list = b.Must(200, "GET", "/customers?q[external_customer_id_eq]=acme-1&per_page=500", nil)
	if len(list.List()) != 1 || list.JSON["meta"].(map[string]any)["per_page"].(float64) != 100 {
		t.Fatalf("filter ext: %s", list.Body)
	}
	upd := b.Must(200, "PATCH", "/customers/"+id, map[string]any{"customer": map[string]any{"name": "Acme Inc"}}).Data()
	if upd["name"] != "Acme Inc" || upd["external_customer_id"] != "acme-1" {
		t.Fatalf("update: %v", upd)
	}
	// Other project sees nothing.
	if r := b.DoKey(b.Key2, "GET", "/customers/"+id, nil); r.Status != 404 {
		t.Fatalf("other project: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "DELETE", "/customers/"+id, nil); r.Status != 404 {
		t.Fatalf("other project delete: %d", r.Status)
	}
	b.Must(204, "DELETE", "/customers/"+id, nil)
	b.Must(404, "GET", "/customers/"+id, nil)
}

func TestCustomerBadInput(t *testing.T) {
	b := apitest.Setup(t)
	cases := []struct {
		body   any
		status int
	}{
		{`{"customer":`, 400},
		{`[1,2]`, 400},
		{map[string]any{"customer": map[string]any{"name": ""}}, 422},
		{map[string]any{"customer": map[string]any{"name": 12}}, 201}, // Rails casts numbers
		{map[string]any{"customer": map[string]any{"name": []int{1}}}, 422},
		{map[string]any{"customer": "x"}, 422},
		{"{}", 422},
		{`{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413},
	}
	for i, c := range cases {
		r := b.Do("POST", "/customers", c.body)
		if r.Status != c.status {
			t.Errorf("case %d: status %d, want %d: %.200s", i, r.Status, c.status, r.Body)
		}
		if r.Status >= 400 {
			if _, ok := r.JSON["error"].(string); !ok {
				t.Errorf("case %d: no error field: %.200s", i, r.Body)
			}
		}
	}
	list := b.Must(200, "GET", "/customers", nil)
	if n := len(list.List()); n != 1 {
		t.Fatalf("bad requests stored data: %d customers", n)
	}
}

func TestRateLimit(t *testing.T) {
	b := apitest.Setup(t, func(c *config.Config, d *api.Deps) { d.Config.RateLimitPerMinute = 3 })
	for i := 0; i < 3; i++ {
		r := b.Must(200, "GET", "/customers", nil)
		if r.Header.Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("limit header: %q", r.Header.Get("X-RateLimit-Limit"))
		}
	}
	r := b.Do("GET", "/customers", nil)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" || r.JSON["error"] != "Rate limit exceeded" {
		t.Fatalf("4th request: %d %v %s", r.Status, r.Header, r.Body)
	}
	// Another key has its own bucket.
	if r := b.DoKey(b.Key2, "GET", "/customers", nil); r.Status != 200 {
		t.Fatalf("other key limited: %d", r.Status)
	}
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	b := apitest.Setup(t)
	r := b.Do("GET", "/nope", nil)
	if r.Status != 404 || r.JSON["error"] == nil {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}
