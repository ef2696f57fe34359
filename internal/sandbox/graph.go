package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/api"
)

// graphError is a Graph API error answer.
type graphError struct {
	HTTPStatus int
	Code       int
	Subcode    int
	Type       string
	Title      string // becomes "(#code) Title"
	Details    string
}

func (e *graphError) Error() string { return fmt.Sprintf("(#%d) %s", e.Code, e.Title) }

// Meta's errors, as the simulator answers them.
func errInvalidParam(details string) *graphError {
	return &graphError{HTTPStatus: 400, Code: 100, Title: "Invalid parameter", Details: details}
}

// errNoObject is Graph's answer for an id that is not a node the caller
// may use (here: not a sandbox phone number, WABA, template or media).
func errNoObject(r *http.Request, id string) *graphError {
	return &graphError{HTTPStatus: 400, Code: 100, Subcode: 33, Type: "GraphMethodException",
		Title: fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation", strings.ToLower(r.Method), id)}
}

var (
	errToken  = &graphError{HTTPStatus: 401, Code: 190, Title: "Invalid OAuth access token - Cannot parse access token"}
	errWindow = &graphError{HTTPStatus: 400, Code: 131047, Title: "Re-engagement message",
		Details: "More than 24 hours have passed since the recipient last replied to the sender number."}
	errUndeliverable = &graphError{HTTPStatus: 400, Code: 131026, Title: "Message Undeliverable",
		Details: "Unable to deliver message."}
	errTemplateMissing = &graphError{HTTPStatus: 404, Code: 132001, Title: "Template does not exist",
		Details: "The template does not exist in the specified language or the template has not been approved."}
)

// writeGraphError renders err in Meta's error shape; errors that are not
// graph errors are logged and answered as Meta's generic code 1.
func (sim *Simulator) writeGraphError(w http.ResponseWriter, r *http.Request, err error) {
	var ge *graphError
	if !errors.As(err, &ge) {
		sim.s.Log.ErrorContext(r.Context(), "sandbox: internal error", slog.String("error", err.Error()), slog.String("path", r.URL.Path))
		ge = &graphError{HTTPStatus: 500, Code: 1, Title: "An unknown error occurred"}
	}
	typ := ge.Type
	if typ == "" {
		typ = "OAuthException"
	}
	obj := map[string]any{
		"message":    fmt.Sprintf("(#%d) %s", ge.Code, ge.Title),
		"type":       typ,
		"code":       ge.Code,
		"fbtrace_id": traceID(),
	}
	if ge.Subcode != 0 {
		obj["error_subcode"] = ge.Subcode
	}
	if ge.Details != "" {
		obj["error_data"] = map[string]any{"messaging_product": "whatsapp", "details": ge.Details}
	}
	writeGraphJSON(w, ge.HTTPStatus, map[string]any{"error": obj})
}

func writeGraphJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":{"message":"(#1) An unknown error occurred","type":"OAuthException","code":1}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func traceID() string {
	b := make([]byte, 17)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:23]
}

type graphHandler func(w http.ResponseWriter, r *http.Request) error

// graph wraps a Graph route: bearer token required (any value), errors in
// Meta's shape.
func (sim *Simulator) graph(h graphHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := strings.TrimSpace(r.Header.Get("Authorization"))
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || strings.TrimSpace(tok) == "" {
			tok = r.URL.Query().Get("access_token")
		}
		var err error
		switch {
		case strings.TrimSpace(tok) == "":
			err = errToken
		case !storableRequest(r):
			err = errInvalidParam("The path and parameters must be valid UTF-8 without null characters.")
		default:
			err = h(w, r)
		}
		if err != nil {
			sim.writeGraphError(w, r, err)
		}
	})
}

// storableRequest reports whether the request's path and query hold only
// text the store can compare and keep: valid UTF-8 without NUL (PostgreSQL
// rejects both, which would answer Meta's code 1 with a 500 instead of a
// code 100).
func storableRequest(r *http.Request) bool {
	if !storableText(r.URL.Path) {
		return false
	}
	for k, vs := range r.URL.Query() {
		if !storableText(k) {
			return false
		}
		for _, v := range vs {
			if !storableText(v) {
				return false
			}
		}
	}
	return true
}

func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// routes registers the simulator's routes on its server.
func (sim *Simulator) routes() {
	s := sim.s
	g := GraphPrefix + "/{version}"
	s.HandleRaw("POST "+g+"/{node}/messages", sim.graph(sim.sendMessage))
	s.HandleRaw("POST "+g+"/{node}/media", sim.graph(sim.uploadMedia))
	s.HandleRaw("GET "+g+"/{node}", sim.graph(sim.getNode))
	s.HandleRaw("POST "+g+"/{node}", sim.graph(sim.editTemplate))
	s.HandleRaw("DELETE "+g+"/{node}", sim.graph(sim.deleteNode))
	s.HandleRaw("GET "+g+"/{node}/phone_numbers", sim.graph(sim.phoneNumbers))
	s.HandleRaw("GET "+g+"/{node}/subscribed_apps", sim.graph(sim.subscribedApps))
	s.HandleRaw("POST "+g+"/{node}/subscribed_apps", sim.graph(sim.subscribe))
	s.HandleRaw("DELETE "+g+"/{node}/subscribed_apps", sim.graph(sim.unsubscribe))
	s.HandleRaw("GET "+g+"/{node}/message_templates", sim.graph(sim.listTemplates))
	s.HandleRaw("POST "+g+"/{node}/message_templates", sim.graph(sim.createTemplate))
	s.HandleRaw("DELETE "+g+"/{node}/message_templates", sim.graph(sim.deleteTemplate))
	s.HandleRaw(GraphPrefix+"/", sim.graph(func(w http.ResponseWriter, r *http.Request) error {
		return &graphError{HTTPStatus: 400, Code: 100, Title: "Unknown path components: " + r.URL.Path}
	}))
	s.HandleRaw("GET "+MediaPrefix+"/{media_id}", sim.graph(sim.downloadMedia))

	s.Handle("POST /whatsapp_configs/{id}/sandbox_messages", sim.createSandboxMessage)
	s.Handle("GET /whatsapp_configs/{id}/health", sim.health)
}

// readJSON reads a Graph JSON body into a map.
func (sim *Simulator) readJSON(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sim.s.Config.MaxBodyBytes))
	if err != nil {
		return nil, errInvalidParam("The request body could not be read or is too large.")
	}
	m := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(body))) == 0 {
		return m, nil
	}
	if bytes.Contains(body, []byte(`\u0000`)) {
		var v any
		if json.Unmarshal(body, &v) == nil && api.HasNUL(v) {
			return nil, errInvalidParam("Parameters must not contain null characters (\\u0000).")
		}
	}
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		// Graph also accepts form-encoded parameters.
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			if vals, perr := parseForm(string(body)); perr == nil {
				return vals, nil
			}
		}
		return nil, errInvalidParam("The request body is not a JSON object.")
	}
	return m, nil
}

func parseForm(s string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for _, kv := range strings.Split(s, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			continue
		}
		b, _ := json.Marshal(v)
		out[k] = b
	}
	return out, nil
}

// str returns key as a string ("" when absent, null or not a string; ok
// false when present but not a string).
func str(m map[string]json.RawMessage, key string) (string, bool) {
	raw, has := m[key]
	if !has || string(raw) == "null" {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String(), true
		}
		return "", false
	}
	return s, true
}

// obj decodes key into an object, or nil.
func obj(m map[string]json.RawMessage, key string) map[string]json.RawMessage {
	raw, ok := m[key]
	if !ok {
		return nil
	}
	var out map[string]json.RawMessage
	if json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
}

// queryInt reads a positive integer query parameter.
func queryInt(r *http.Request, key string, def, max int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(key))
	if err != nil || n <= 0 {
		return def
	}
	return min(n, max)
}
