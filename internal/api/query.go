package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/parleyhq/parley"
)

// Pagination defaults and limits (README decision 3).
const (
	defaultPerPage = 20
	maxPerPage     = 100
)

// PageOf reads page and per_page. Bad values fall back to the defaults and
// per_page is clamped to [1, 100], as Kapso does.
func PageOf(r *http.Request) parley.Page {
	q := r.URL.Query()
	p := parley.Page{Page: 1, PerPage: defaultPerPage}
	if n, err := strconv.Atoi(strings.TrimSpace(q.Get("page"))); err == nil && n >= 1 {
		p.Page = min(n, 1_000_000)
	}
	if n, err := strconv.Atoi(strings.TrimSpace(q.Get("per_page"))); err == nil {
		p.PerPage = max(1, min(n, maxPerPage))
	}
	return p
}

// checkQuery refuses query parameters that no column can hold: text with
// a NUL character or invalid UTF-8 (PostgreSQL rejects both, which would
// surface as a 500). Such a request is a 400 naming the parameter.
func checkQuery(r *http.Request) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	for k, vs := range r.URL.Query() {
		bad := !validText(k)
		for _, v := range vs {
			bad = bad || !validText(v)
		}
		if bad {
			name := k
			if !validText(name) {
				name = strconv.QuoteToASCII(k)
			}
			return &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters",
				Message: "Query parameter " + name + " must be valid UTF-8 without null characters"}
		}
	}
	return nil
}

// validText reports whether s can be stored and compared as text on both
// engines: valid UTF-8 without NUL.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// QParam returns a ransack filter value q[name]; ok is false when absent or empty.
func QParam(r *http.Request, name string) (string, bool) {
	v := strings.TrimSpace(r.URL.Query().Get("q[" + name + "]"))
	return v, v != ""
}

// QBool returns a ransack boolean filter (true/false/1/0); ok is false when
// absent or unparsable (an unparsable filter is ignored, as ransack does).
func QBool(r *http.Request, name string) (bool, bool) {
	v, ok := QParam(r, name)
	if !ok {
		return false, false
	}
	b, err := strconv.ParseBool(v)
	return b, err == nil
}

// QTime returns a ransack time filter; a malformed value is a 400.
func QTime(r *http.Request, name string) (*time.Time, error) {
	v, ok := QParam(r, name)
	if !ok {
		return nil, nil
	}
	t, err := ParseTime(v)
	if err != nil {
		return nil, &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid parameters", Message: "q[" + name + "] must be an ISO 8601 time"}
	}
	return &t, nil
}

// IsUUID reports whether s is a UUID. Path ids that are not UUIDs cannot
// exist, so handlers answer 404 without a query.
func IsUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// PathID returns the path value name when it is a UUID, else a not-found
// error for what.
func PathID(r *http.Request, name, what string) (string, error) {
	id := r.PathValue(name)
	if !IsUUID(id) {
		return "", parley.NotFound(what)
	}
	return strings.ToLower(id), nil
}
