package apitest

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/internal/openapi"
)

// Validate checks a response against Parley's OpenAPI document and fails the
// test when the status is undocumented or the body breaks the schema.
func Validate(t *testing.T, req *http.Request, status int, h http.Header, body []byte) {
	t.Helper()
	v := openapi.MustValidator()
	if _, err := v.FindRoute(req); err != nil && status == http.StatusNotFound {
		return // an unknown route answering 404 is right
	}
	if err := v.ValidateResponse(req, status, h, body); err != nil {
		t.Errorf("%s %s: response %d does not match the OpenAPI document: %v", req.Method, req.URL.Path, status, err)
	}
}
