// Package parley holds Parley's domain vocabulary: the error type every layer
// returns and the small value types shared by the API, the store and the
// workers. It imports only the standard library.
package parley

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status in internal/api.
const (
	EINVALID      = "invalid"        // 422: validation failed
	EBADREQUEST   = "bad_request"    // 400: malformed request
	ENOTFOUND     = "not_found"      // 404
	ECONFLICT     = "conflict"       // 409
	EFORBIDDEN    = "forbidden"      // 403
	EUNAUTHORIZED = "unauthorized"   // 401
	ETOOLARGE     = "too_large"      // 413
	ERATELIMIT    = "rate_limited"   // 429
	EUNAVAILABLE  = "unavailable"    // 503
	EINTERNAL     = "internal"       // 500
	EUPSTREAM     = "upstream_error" // 502: Meta answered with an error
)

// Error is an error a client may see. Title becomes Kapso's "error" field,
// Message its "message" and Details its "errors" array.
type Error struct {
	Code    string
	Title   string
	Message string
	Details []string
	// Extra holds additional top-level keys some Kapso endpoints return with
	// an error (for example "whatsapp_config_ids" or "meta").
	Extra map[string]any
}

func (e *Error) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Title, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Title)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, title, format string, args ...any) *Error {
	return &Error{Code: code, Title: title, Message: fmt.Sprintf(format, args...)}
}

// NotFound returns the 404 error Kapso uses for a resource, e.g. "Customer not found".
func NotFound(what string) *Error {
	return &Error{Code: ENOTFOUND, Title: what + " not found"}
}

// Invalid returns a 422 validation error with Rails-style full messages.
func Invalid(title string, details ...string) *Error {
	return &Error{Code: EINVALID, Title: title, Details: details}
}

// ErrorCode returns the code of err, or EINTERNAL when err is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// IsNotFound reports whether err is a not-found error.
func IsNotFound(err error) bool { return ErrorCode(err) == ENOTFOUND }
