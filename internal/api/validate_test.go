package api_test

import (
	"net/http"
	"testing"
)

// validate checks a response against Parley's OpenAPI document. (Wired to
// internal/openapi once that package lands.)
func validate(t *testing.T, req *http.Request, status int, h http.Header, body []byte) {}
