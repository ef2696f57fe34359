package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GraphError is a failed Graph API call: Meta's error object plus the HTTP
// status. Bodies that are not Graph errors (a proxy's HTML page, say) still
// produce a GraphError with Code 0 and a short excerpt in Message.
type GraphError struct {
	// HTTPStatus is the HTTP status code of the response.
	HTTPStatus int
	// Code is error.code, e.g. 131047.
	Code int
	// Subcode is error.error_subcode (deprecated by Meta, often absent).
	Subcode int
	// Type is error.type, e.g. "OAuthException".
	Type string
	// Message is error.message, e.g. "(#131047) Re-engagement message".
	Message string
	// Title is error.error_user_title, or Message without its "(#code) "
	// prefix.
	Title string
	// Details is error.error_data.details (or error_user_msg).
	Details string
	// FBTraceID is error.fbtrace_id, for Meta support requests.
	FBTraceID string
	// Transient is error.is_transient as reported by Graph.
	Transient bool
	// RetryAfter is the Retry-After header, when the response had one.
	RetryAfter time.Duration
}

// Error implements error. It never includes request data such as tokens.
func (e *GraphError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "whatsapp: graph API error (HTTP %d", e.HTTPStatus)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", code %d", e.Code)
	}
	if e.Subcode != 0 {
		fmt.Fprintf(&b, ", subcode %d", e.Subcode)
	}
	b.WriteString(")")
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Details != "" && e.Details != e.Message {
		b.WriteString(": " + e.Details)
	}
	if e.FBTraceID != "" {
		b.WriteString(" (fbtrace_id " + e.FBTraceID + ")")
	}
	return b.String()
}

// Well-known WhatsApp error codes.
const (
	CodeAccessTokenExpired    = 190
	CodeRateLimitHit          = 130429
	CodeSpamRateLimitHit      = 131048
	CodePairRateLimitHit      = 131056
	CodeReengagementMessage   = 131047
	CodeMessageUndeliverable  = 131026
	CodeEcosystemEngagement   = 131049
	CodeUnsupportedMessage    = 131051
	CodeTemplateParamMismatch = 132000
	CodeTemplateNotFound      = 132001
)

// transientCodes are failures on Meta's side or throughput limits: the same
// request retried after a short backoff can succeed.
var transientCodes = map[int]bool{
	1:      true, // API Unknown
	2:      true, // API Service
	4:      true, // API Too Many Calls
	80007:  true, // Rate limit issues
	130429: true, // Cloud API throughput reached
	131000: true, // Something went wrong
	131016: true, // Service unavailable
	131057: true, // Account in maintenance mode
	133004: true, // Server temporarily unavailable
}

// laterCodes can succeed unchanged, but only after a wait much longer than
// an in-request backoff (pair rate limit, registration throttles, ...).
var laterCodes = map[int]bool{
	131056:  true, // pair rate limit: wait before messaging the same user
	133008:  true, // too many two-step PIN guesses
	133009:  true, // two-step PIN guessed too fast
	133015:  true, // number recently deleted
	133016:  true, // register/deregister rate limit
	134101:  true, // template still syncing (MM API)
	2494100: true, // account in maintenance mode
}

// permanentCodes are never retried, even when Meta answers them with a 5xx
// status: the request, account, template or user state must change first.
var permanentCodes = map[int]bool{
	3: true, 10: true, 33: true, 100: true, 190: true, 368: true,
	130472: true, 130497: true, 131005: true, 131008: true, 131009: true,
	131021: true, 131026: true, 131031: true, 131037: true, 131042: true,
	131045: true, 131047: true, 131048: true, 131049: true, 131050: true,
	131051: true, 131052: true, 131053: true, 132000: true, 132001: true,
	132005: true, 132007: true, 132012: true, 132015: true, 132016: true,
	132068: true, 132069: true, 133000: true, 134102: true,
}

// IsTransient reports whether err is a temporary failure that the same
// request may overcome after a short backoff: network errors and timeouts,
// HTTP 5xx without a permanent WhatsApp code, and the codes 1, 2, 4, 80007,
// 130429, 131000, 131016, 131057 and 133004 (or Graph's is_transient flag).
// Context cancellation is not transient. [Client] retries exactly these.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ge *GraphError
	if errors.As(err, &ge) {
		switch {
		case transientCodes[ge.Code]:
			return true
		case permanentCodes[ge.Code], laterCodes[ge.Code]:
			return false
		case ge.Transient:
			return true
		case ge.HTTPStatus == http.StatusTooManyRequests:
			return true
		default:
			return ge.HTTPStatus >= 500
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// IsRetryable reports whether the same request may succeed later without
// any change: every transient error plus throttles that need a longer wait
// (e.g. 131056 pair rate limit). Callers that queue work use it to decide
// between "retry later" and "mark failed". Codes such as 131047 (outside
// the 24 h window), 131026, 132001 and 190 are never retryable.
func IsRetryable(err error) bool {
	if IsTransient(err) {
		return true
	}
	var ge *GraphError
	return errors.As(err, &ge) && laterCodes[ge.Code]
}

// ErrorCode returns the WhatsApp error code of a *GraphError in err's
// chain, or 0.
func ErrorCode(err error) int {
	var ge *GraphError
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// newGraphError builds a GraphError from a non-2xx response and closes its
// body.
func newGraphError(resp *http.Response) *GraphError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ge := parseGraphError(resp.StatusCode, body)
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && secs > 0 {
			ge.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return ge
}

// parseGraphError decodes a Graph error body; status is the HTTP status.
func parseGraphError(status int, body []byte) *GraphError {
	ge := &GraphError{HTTPStatus: status}
	var env struct {
		Error *struct {
			Message        string    `json:"message"`
			Type           string    `json:"type"`
			Code           flexInt   `json:"code"`
			Subcode        flexInt   `json:"error_subcode"`
			UserTitle      string    `json:"error_user_title"`
			UserMsg        string    `json:"error_user_msg"`
			ErrorData      errorData `json:"error_data"`
			FBTraceID      string    `json:"fbtrace_id"`
			IsTransient    bool      `json:"is_transient"`
			WhatsAppTitle  string    `json:"title"`
			WhatsAppDetail string    `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		ge.Message = excerpt(body)
		if ge.Message == "" {
			ge.Message = http.StatusText(status)
		}
		return ge
	}
	e := env.Error
	ge.Code, ge.Subcode = int(e.Code), int(e.Subcode)
	ge.Type, ge.Message, ge.FBTraceID, ge.Transient = e.Type, e.Message, e.FBTraceID, e.IsTransient
	ge.Title = firstNonEmpty(e.UserTitle, e.WhatsAppTitle, stripCodePrefix(e.Message))
	ge.Details = firstNonEmpty(e.ErrorData.Details, e.UserMsg, e.WhatsAppDetail)
	return ge
}

// stripCodePrefix turns "(#131047) Re-engagement message" into
// "Re-engagement message".
func stripCodePrefix(msg string) string {
	if strings.HasPrefix(msg, "(#") {
		if i := strings.Index(msg, ") "); i > 0 {
			return msg[i+2:]
		}
	}
	return msg
}

func excerpt(body []byte) string {
	s := strings.TrimSpace(string(body))
	const limit = 200
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strings.ToValidUTF8(s, "")
}
