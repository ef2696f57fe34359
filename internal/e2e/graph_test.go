package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// graphVersion is the Graph API version Parley calls by default.
const graphVersion = "v24.0"

// graphReq is one request the fake Graph API received.
type graphReq struct {
	Method string
	Path   string // without the version prefix, e.g. "/106540352242922/messages"
	Query  url.Values
	Auth   string
	Body   map[string]any
}

// fakeGraph is Meta's Graph API for one phone number and WABA, answering
// with the fixtures under testdata/graph and recording every request. A
// wrong bearer token is refused with Meta's error 190.
type fakeGraph struct {
	*httptest.Server
	t                 *testing.T
	token, pnid, waba string
	media             []byte

	mu    sync.Mutex
	reqs  []graphReq
	sends int
}

func newFakeGraph(t *testing.T, token, pnid, waba string) *fakeGraph {
	g := &fakeGraph{t: t, token: token, pnid: pnid, waba: waba, media: []byte(strings.Repeat("\xff\xd8JPEG", 512))}
	phone := fixture(t, "graph/phone_number_get.json")
	health := fixture(t, "graph/health_status.json")
	apps := fixture(t, "graph/subscribed_apps_get.json")
	mediaMeta := fixture(t, "graph/media_get.json")
	sendRes := fixture(t, "graph/send_message.json")
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		req := graphReq{Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, "/"+graphVersion), Query: r.URL.Query(), Auth: r.Header.Get("Authorization")}
		_ = json.Unmarshal(raw, &req.Body)
		g.mu.Lock()
		g.reqs = append(g.reqs, req)
		g.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+g.token {
			graphJSON(w, 401, map[string]any{"error": map[string]any{"message": "Error validating access token: Session has expired",
				"type": "OAuthException", "code": 190, "fbtrace_id": "AbCdEf"}})
			return
		}
		if strings.HasPrefix(r.URL.Path, "/media/") && r.Method == "GET" {
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write(g.media)
			return
		}
		parts := strings.Split(strings.Trim(req.Path, "/"), "/")
		switch {
		case r.Method == "POST" && len(parts) == 2 && parts[0] == g.pnid && parts[1] == "messages":
			if req.Body["status"] == "read" {
				graphJSON(w, 200, map[string]any{"success": true})
				return
			}
			to, _ := req.Body["to"].(string)
			g.mu.Lock()
			g.sends++
			wamid := fmt.Sprintf("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI%05dE2EFAKE", g.sends)
			g.mu.Unlock()
			res := clone(sendRes)
			res["contacts"] = []any{map[string]any{"input": to, "wa_id": strings.TrimPrefix(to, "+")}}
			res["messages"] = []any{map[string]any{"id": wamid}}
			graphJSON(w, 200, res)
		case r.Method == "GET" && len(parts) == 1 && parts[0] == g.pnid && req.Query.Get("fields") == "health_status":
			graphJSON(w, 200, health)
		case r.Method == "GET" && len(parts) == 1 && parts[0] == g.pnid:
			graphJSON(w, 200, phone)
		case r.Method == "GET" && len(parts) == 2 && parts[0] == g.waba && parts[1] == "subscribed_apps":
			graphJSON(w, 200, apps)
		case r.Method == "GET" && len(parts) == 1 && parts[0] != "":
			m := clone(mediaMeta)
			sum := sha256.Sum256(g.media)
			m["id"], m["url"], m["file_size"], m["sha256"] = parts[0], g.URL+"/media/"+parts[0], fmt.Sprint(len(g.media)), hex.EncodeToString(sum[:])
			graphJSON(w, 200, m)
		default:
			graphJSON(w, 400, map[string]any{"error": map[string]any{"message": "Unsupported request", "type": "GraphMethodException",
				"code": 100, "fbtrace_id": "AbCdEf"}})
		}
	}))
	t.Cleanup(g.Close)
	return g
}

func graphJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// requests returns the requests so far matching method and path.
func (g *fakeGraph) requests(method, path string) []graphReq {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []graphReq
	for _, r := range g.reqs {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// clone deep-copies a JSON object.
func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}
