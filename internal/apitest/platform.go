package apitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/openapi"
)

// P sends a request to Kapso's Platform API (/platform/v1) with the
// bundle's key. body is as for Do. Every response is checked against
// Parley's Platform API document and Kapso's by ValidatePlatform.
func (b *Bundle) P(method, path string, body any) *Resp {
	b.T.Helper()
	return b.PKey(b.Key, method, path, body)
}

// PKey is P with another key ("" sends none).
func (b *Bundle) PKey(key, method, path string, body any) *Resp {
	b.T.Helper()
	return b.send(openapi.PlatformBasePath, key, method, path, body, ValidatePlatform)
}

// PMust asserts the status of a Platform API request and returns the response.
func (b *Bundle) PMust(status int, method, path string, body any) *Resp {
	b.T.Helper()
	r := b.P(method, path, body)
	if r.Status != status {
		b.T.Fatalf("%s /platform/v1%s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	return r
}

// send is the request machinery of Do and P: prefix is the surface's path
// prefix and validate checks every response.
func (b *Bundle) send(prefix, key, method, path string, body any, validate func(*testing.T, *http.Request, int, http.Header, []byte)) *Resp {
	b.T.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		j, _ := json.Marshal(v)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.Srv.URL+prefix+path, rd)
	if err != nil {
		b.T.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.T.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := &Resp{Status: res.StatusCode, Header: res.Header, Body: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.JSON)
	}
	if res.StatusCode >= 500 {
		b.T.Errorf("%s %s: server error %d: %s", method, path, res.StatusCode, raw)
	}
	validate(b.T, req, res.StatusCode, res.Header, raw)
	return out
}

// ValidatePlatform checks a /platform/v1 response against Parley's Platform
// API document and Kapso's Platform API reference (errata applied). An
// unknown route must answer 404 in Kapso's error shape. Statuses Kapso does
// not document are accepted when not 2xx (Parley's document has them).
func ValidatePlatform(t *testing.T, req *http.Request, status int, h http.Header, body []byte) {
	t.Helper()
	v := openapi.MustPlatformValidator()
	if _, err := v.FindRoute(req); err != nil {
		if status != http.StatusNotFound {
			t.Errorf("%s %s: undocumented route answered %d", req.Method, req.URL.Path, status)
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: 404 body is not Kapso's error shape: %s", req.Method, req.URL.Path, body)
		}
		return
	}
	if err := v.ValidateResponse(req, status, h, body); err != nil {
		t.Errorf("%s %s: response %d does not match Parley's Platform API document: %v", req.Method, req.URL.Path, status, err)
	}
	err := openapi.MustKapsoPlatformValidator().ValidateResponse(req, status, h, body)
	switch {
	case err == nil, errors.Is(err, openapi.ErrStatusNotKapso):
	case errors.Is(err, openapi.ErrNotKapso):
		route, _ := v.FindRoute(req)
		if route == nil || !route.Extension {
			t.Errorf("%s %s: not an extension but Kapso's Platform API document does not have it", req.Method, req.URL.Path)
		}
	default:
		t.Errorf("%s %s: response %d does not match Kapso's Platform API document: %v", req.Method, req.URL.Path, status, err)
	}
}
