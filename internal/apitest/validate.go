package apitest

import (
	"errors"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/internal/openapi"
)

// Validate checks a response against Parley's OpenAPI document and against
// Kapso's own documents (ValidateKapso), and fails the test when the status
// is undocumented or the body breaks a schema.
func Validate(t *testing.T, req *http.Request, status int, h http.Header, body []byte) {
	t.Helper()
	v := openapi.MustValidator()
	route, err := v.FindRoute(req)
	if err != nil && status == http.StatusNotFound {
		return // an unknown route answering 404 is right
	}
	if err := v.ValidateResponse(req, status, h, body); err != nil {
		t.Errorf("%s %s: response %d does not match the OpenAPI document: %v", req.Method, req.URL.Path, status, err)
	}
	if route != nil {
		ValidateKapso(t, route, req, status, h, body)
	}
}

// ValidateKapso checks a response to a Kapso operation against Kapso's
// original documents (openapi.KapsoValidator, errata applied), as an
// independent client holding those documents would. Parley's extensions are
// skipped. A status Kapso does not document for the operation is accepted
// when it is not 2xx (Parley's own document, checked by Validate, documents
// it: 413, 429, …); a 2xx body is always checked against Kapso's 2xx schema.
func ValidateKapso(t *testing.T, route *openapi.Route, req *http.Request, status int, h http.Header, body []byte) {
	t.Helper()
	err := openapi.MustKapsoValidator().ValidateResponse(req, status, h, body)
	switch {
	case err == nil, errors.Is(err, openapi.ErrStatusNotKapso):
	case errors.Is(err, openapi.ErrNotKapso):
		if !route.Extension {
			t.Errorf("%s %s: %s %s is not an extension but no Kapso document has it", req.Method, req.URL.Path, route.Method, route.Path)
		}
	default:
		t.Errorf("%s %s: response %d does not match Kapso's documents: %v", req.Method, req.URL.Path, status, err)
	}
}
