// Package openapi holds Parley's OpenAPI 3.0.3 document (parley.yaml, embedded
// in the binary) and validates HTTP exchanges against it.
//
// The document describes the Kapso-compatible v1 REST API served under
// /api/v1 plus Parley's own extensions (operations marked
// "x-parley-extension: true"). The API serves it at GET /api/v1/openapi.json
// (see JSON), and tests use a Validator to check every response the server
// produces:
//
//	resp, body := doRequest(t, req)
//	if err := openapi.MustValidator().ValidateResponse(req, resp.StatusCode, resp.Header, body); err != nil {
//		t.Fatal(err)
//	}
package openapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// BasePath is the path prefix under which every operation of the document
// is served (the document's only server URL).
const BasePath = "/api/v1"

//go:embed parley.yaml
var specYAML []byte

// YAML returns the embedded OpenAPI document exactly as written (parley.yaml).
// The returned slice must not be modified.
func YAML() []byte { return specYAML }

var loadOnce = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(specYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi: loading parley.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: parley.yaml is invalid: %w", err)
	}
	return doc, nil
})

// Load parses and validates the embedded document. It does the work once and
// returns the same *openapi3.T on every call, so callers must treat the
// result as read-only.
func Load() (*openapi3.T, error) { return loadOnce() }

var jsonOnce = sync.OnceValue(func() []byte {
	doc, err := Load()
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Errorf("openapi: encoding document as JSON: %w", err))
	}
	return b
})

// JSON returns the document encoded as JSON, as served at
// GET /api/v1/openapi.json. The encoding is computed once; the returned slice
// must not be modified. JSON panics if the embedded document does not load,
// which the package's tests rule out.
func JSON() []byte { return jsonOnce() }

// uuidPattern accepts any RFC 9562 textual UUID (any version, any case).
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// formatOptions enables checking of the string formats the document uses,
// scoped to this package's validations (no global kin-openapi state is
// changed). "date-time" and "date" are checked by kin-openapi itself.
func formatOptions() []openapi3.SchemaValidationOption {
	return []openapi3.SchemaValidationOption{
		openapi3.WithStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(s string) error {
			if !uuidPattern.MatchString(s) {
				return errors.New("not a UUID")
			}
			return nil
		})),
		openapi3.WithStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail)),
		openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
			u, err := url.Parse(s)
			if err != nil {
				return err
			}
			if u.Scheme == "" {
				return errors.New("not an absolute URI")
			}
			return nil
		})),
	}
}

// Validator checks requests and responses against the document. It is safe
// for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// NewValidator builds a Validator from the embedded document.
func NewValidator() (*Validator, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: building router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

var validatorOnce = sync.OnceValues(NewValidator)

// MustValidator returns a shared Validator built from the embedded document,
// panicking if the document cannot be loaded. It is meant for tests.
func MustValidator() *Validator {
	v, err := validatorOnce()
	if err != nil {
		panic(err)
	}
	return v
}

// Route is the documented operation a request maps to.
type Route struct {
	// Path is the path template relative to BasePath, e.g. "/customers/{id}".
	Path string
	// Method is the upper-case HTTP method.
	Method string
	// OperationID is the operation's operationId.
	OperationID string
	// PathParams holds the values of the template's parameters.
	PathParams map[string]string
	// Extension reports whether the operation is marked
	// "x-parley-extension: true" (a Parley operation Kapso does not have).
	Extension bool
}

// FindRoute returns the documented operation for req. The request URL may be
// absolute ("http://127.0.0.1:8080/api/v1/customers", as on the client side)
// or just a path ("/api/v1/customers", as on the server side); only its path
// is used.
func (v *Validator) FindRoute(req *http.Request) (*Route, error) {
	route, params, err := v.findRoute(req)
	if err != nil {
		return nil, err
	}
	return &Route{
		Path:        route.Path,
		Method:      route.Method,
		OperationID: route.Operation.OperationID,
		PathParams:  params,
		Extension:   route.Operation.Extensions["x-parley-extension"] == true,
	}, nil
}

func (v *Validator) findRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	if req == nil || req.URL == nil {
		return nil, nil, errors.New("openapi: request without URL")
	}
	// The document's server is the relative URL /api/v1, which kin-openapi
	// matches against the whole URL string: strip scheme, host and query.
	u := &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath}
	r := req.Clone(req.Context())
	r.URL = u
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		return nil, nil, fmt.Errorf("openapi: %s %s is not a documented operation: %w", req.Method, req.URL.Path, err)
	}
	// kin-openapi's legacy router lets a template's last parameter match an
	// empty segment ("/whatsapp_configs" matches "/whatsapp_configs/{id}"
	// when the document has no "/whatsapp_configs"): that is no match.
	for name, value := range params {
		if value == "" {
			return nil, nil, fmt.Errorf("openapi: %s %s is not a documented operation: empty path parameter %q of %s", req.Method, req.URL.Path, name, route.Path)
		}
	}
	return route, params, nil
}

// ValidateResponse checks a response the API produced for req: the route must
// be documented, status must be one of the operation's documented statuses,
// and the body must match the documented media type and schema (JSON only;
// a response documented without content, such as 204, must have an empty
// body). header must carry the response's Content-Type. The error describes
// every problem found.
func (v *Validator) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	return v.validateResponse(req, status, status, header, body)
}

// validateResponse checks the response as ValidateResponse does, against the
// operation's response documented for docStatus (normally status itself).
func (v *Validator) validateResponse(req *http.Request, status, docStatus int, header http.Header, body []byte) error {
	route, params, err := v.findRoute(req)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("%s %s -> %d", req.Method, req.URL.Path, status)
	resp := route.Operation.Responses.Status(docStatus)
	if resp == nil || resp.Value == nil {
		if route.Operation.Responses.Default() == nil {
			return fmt.Errorf("openapi: %s: status %d is not documented for %s %s%s", where, docStatus, route.Method, BasePath, route.Path)
		}
		resp = route.Operation.Responses.Default()
	}
	if len(resp.Value.Content) == 0 {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("openapi: %s: response is documented without a body but has %d bytes: %s", where, len(body), snippet(body))
		}
		return nil
	}
	if header == nil {
		header = http.Header{}
	}
	mt, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("openapi: %s: Content-Type is %q, want application/json", where, header.Get("Content-Type"))
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      route,
		},
		Status: docStatus,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus:   true,
			MultiError:              true,
			SchemaValidationOptions: formatOptions(),
		},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), input); err != nil {
		return fmt.Errorf("openapi: %s: %w\nbody: %s", where, err, snippet(body))
	}
	return nil
}

// ValidateRequest checks req against its documented operation: path and
// query parameters and, when present, the JSON body. The body is read and
// then restored, so req can still be sent. Authentication is not checked.
//
// Note that the document describes write bodies in their documented,
// root-key-wrapped form ({"customer": {...}}); the server also accepts bare
// attributes, which ValidateRequest reports as invalid.
func (v *Validator) ValidateRequest(req *http.Request) error {
	route, params, err := v.findRoute(req)
	if err != nil {
		return err
	}
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return fmt.Errorf("openapi: reading request body: %w", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		defer func() { req.Body = io.NopCloser(bytes.NewReader(b)) }()
		if len(b) == 0 {
			req.Body = http.NoBody
		}
	}
	input := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:              true,
			AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
			SkipSettingDefaults:     true,
			SchemaValidationOptions: formatOptions(),
		},
	}
	if err := openapi3filter.ValidateRequest(req.Context(), input); err != nil {
		return fmt.Errorf("openapi: %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

func snippet(b []byte) string {
	const max = 2000
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
