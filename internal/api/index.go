package api

import (
	"html/template"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/internal/openapi"
)

// The entry points: GET / and GET /api/v1 answer a small index of the API
// surfaces and their documents (JSON for clients, HTML for browsers), and
// GET /docs/api the reference page rendered from those documents. The web
// console will take GET / over for browsers; routesIndex keeps these routes
// in one place so it can be replaced whole.

// DocsPath is where the HTML API reference is served.
const DocsPath = "/docs/api"

// indexSurface is one surface in the index.
type indexSurface struct {
	Name      string `json:"name"`
	Prefix    string `json:"prefix"`
	Auth      string `json:"auth,omitempty"`
	OpenAPI   string `json:"openapi"`
	Reference string `json:"reference"`
}

// indexBody is the JSON index.
type indexBody struct {
	Name          string         `json:"name"`
	Description   string         `json:"description"`
	Documentation string         `json:"documentation"`
	Surfaces      []indexSurface `json:"surfaces"`
	Endpoints     map[string]any `json:"endpoints"`
}

func (s *Server) routesIndex() {
	s.mux.HandleFunc("GET /{$}", s.serveIndex)
	s.mux.HandleFunc("GET /api/v1", s.serveIndex)
	s.mux.HandleFunc("GET /api/v1/{$}", s.serveIndex)
	s.mux.HandleFunc("GET "+DocsPath, func(w http.ResponseWriter, r *http.Request) {
		page, err := openapi.Reference()
		if err != nil {
			s.Log.Error("api: reference page", "error", err)
			http.Error(w, "The API reference could not be rendered", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
}

func index() indexBody {
	b := indexBody{
		Name:          "Parley",
		Description:   "Self-hostable WhatsApp Business platform speaking Kapso's APIs",
		Documentation: DocsPath,
		Endpoints: map[string]any{
			"health": "/healthz", "ready": "/readyz", "metrics": "/metrics",
			"meta_webhook": "/webhooks/whatsapp", "sandbox_graph": "/sandbox/graph/{version}",
		},
	}
	for _, d := range openapi.Documents() {
		b.Surfaces = append(b.Surfaces, indexSurface{Name: d.Name, Prefix: d.Prefix, Auth: d.Auth, OpenAPI: d.URL,
			Reference: DocsPath + "#" + openapi.Anchor(d.Prefix)})
	}
	return b
}

// serveIndex answers the index, as HTML when the client prefers it (a
// browser) and as JSON otherwise.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	if !prefersHTML(r.Header.Get("Accept")) {
		WriteJSON(w, http.StatusOK, index())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := indexTmpl.Execute(w, index()); err != nil {
		s.Log.Warn("api: index page", "error", err)
	}
}

// prefersHTML reports whether an Accept header ranks text/html above
// application/json (a browser's does; curl's */* does not).
func prefersHTML(accept string) bool {
	var html, json float64 = -1, -1
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			html = max(html, q)
		case "application/json":
			json = max(json, q)
		}
	}
	return html > 0 && html > json
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1d2330}code{font-family:ui-monospace,monospace}td{padding:.2rem .6rem .2rem 0}</style>
</head><body>
<h1>{{.Name}}</h1>
<p>{{.Description}}. The <a href="{{.Documentation}}">API reference</a> lists every operation.</p>
<h2>API surfaces</h2>
<table>{{range .Surfaces}}<tr><td><a href="{{.Reference}}">{{.Name}}</a></td><td><code>{{.Prefix}}</code></td><td>{{.Auth}}</td><td><a href="{{.OpenAPI}}">OpenAPI</a></td></tr>{{end}}</table>
<h2>Other endpoints</h2>
<ul><li><code>GET /healthz</code>, <code>GET /readyz</code>, <code>GET /metrics</code></li>
<li><code>/webhooks/whatsapp</code>: Meta's webhook callback</li>
<li><code>/sandbox/graph/{version}/…</code>: the Cloud API simulator</li></ul>
</body></html>
`))
