package apitest

import (
	"net/http"
	"testing"
)

// Validate checks a response against Parley's OpenAPI document. (Wired to
// internal/openapi once that package lands.)
func Validate(t *testing.T, req *http.Request, status int, h http.Header, body []byte) {}
