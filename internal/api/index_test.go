package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/openapi"
)

func get(t *testing.T, url, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// GET / and GET /api/v1 point to the documentation, without a key: JSON for
// clients, HTML for browsers.
func TestIndexPointsToTheDocumentation(t *testing.T) {
	b := apitest.Setup(t)
	for _, path := range []string{"/", "/api/v1", "/api/v1/"} {
		for _, accept := range []string{"", "*/*", "application/json"} {
			res, body := get(t, b.Srv.URL+path, accept)
			var idx struct {
				Documentation string `json:"documentation"`
				Surfaces      []struct {
					Prefix, OpenAPI, Reference string
				} `json:"surfaces"`
			}
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
				json.Unmarshal([]byte(body), &idx) != nil {
				t.Fatalf("%s (Accept %q): %d %s %s", path, accept, res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			if idx.Documentation != "/docs/api" || len(idx.Surfaces) == 0 || idx.Surfaces[0].Prefix != "/api/v1" ||
				idx.Surfaces[0].OpenAPI != "/api/v1/openapi.json" {
				t.Fatalf("%s: index %s", path, body)
			}
		}
		res, body := get(t, b.Srv.URL+path, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, `href="/docs/api"`) || !strings.Contains(body, `href="/api/v1/openapi.json"`) {
			t.Fatalf("%s as a browser: %d %s", path, res.StatusCode, body)
		}
	}
	// Other unknown paths are still 404s in Kapso's shape.
	if res, body := get(t, b.Srv.URL+"/api/v1/nope", ""); res.StatusCode != 404 || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown route: %d %s", res.StatusCode, body)
	}
}

// The reference page lists every operation of the served document with its
// parameters and schemas, with no script or CDN.
func TestReferencePage(t *testing.T) {
	b := apitest.Setup(t)
	res, body := get(t, b.Srv.URL+"/docs/api", "text/html")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("reference: %d", res.StatusCode)
	}
	doc, err := openapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			n++
			if !strings.Contains(body, `<span class="path">/api/v1`+path+`</span>`) {
				t.Errorf("%s %s missing", method, path)
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d operations in the document", n)
	}
	for _, want := range []string{"<code>per_page</code>", `id="api-v1-schema-whatsappmessage"`, "error_details", "Parley extension"} {
		if !strings.Contains(body, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "https://cdn", "unpkg.com", "jsdelivr"} {
		if strings.Contains(body, bad) {
			t.Errorf("reference contains %q", bad)
		}
	}
}

// A registered document joins the index and the reference page.
func TestRegisteredDocumentIsListed(t *testing.T) {
	spec := []byte(`{"openapi":"3.0.3","info":{"title":"Example","version":"1"},"paths":{"/things/{id}":{"get":{"summary":"Get a thing","parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"string"}}],"responses":{"200":{"description":"ok"}}}}}}`)
	openapi.Register(openapi.Document{Name: "Example API", Prefix: "/example/v1", URL: "/example/v1/openapi.json", JSON: func() []byte { return spec }})
	t.Cleanup(func() { openapi.Unregister("/example/v1") })
	b := apitest.Setup(t)
	_, idx := get(t, b.Srv.URL+"/", "")
	if !strings.Contains(idx, `"prefix":"/example/v1"`) {
		t.Fatalf("index: %s", idx)
	}
	_, page := get(t, b.Srv.URL+"/docs/api", "")
	if !strings.Contains(page, `<span class="path">/example/v1/things/{id}</span>`) || !strings.Contains(page, "Get a thing") {
		t.Fatal("registered operation not on the reference page")
	}
}
