package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
)

// Fields is a decoded request body: the attributes of the resource, whether
// they came wrapped in the root key ({"customer": {...}}) or bare, as Rails
// parameter wrapping allows. Unknown keys are ignored by the handlers.
type Fields struct {
	m    map[string]json.RawMessage
	root map[string]json.RawMessage // the whole body, for keys outside the root key
}

// ReadBody reads the body, refusing more than the configured limit.
func (s *Server) ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.Config.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &parley.Error{Code: parley.ETOOLARGE, Title: "Request body too large",
				Message: fmt.Sprintf("The request body must not exceed %d bytes", s.Config.MaxBodyBytes)}
		}
		return nil, &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid request body", Message: "The request body could not be read"}
	}
	if err := checkNUL(body); err != nil {
		return nil, err
	}
	return body, nil
}

// checkNUL refuses a JSON body with a NUL character ("\u0000") in a string
// or key: PostgreSQL text cannot hold it, so storing it would be a 500.
// Bodies without the escape (nearly all) cost one scan; a body that is not
// JSON is left to the parser's 400.
func checkNUL(body []byte) error {
	if !bytes.Contains(body, []byte(`\u0000`)) {
		return nil
	}
	var v any
	if json.Unmarshal(body, &v) != nil || !HasNUL(v) {
		return nil
	}
	return parley.Invalid("Invalid parameters", "Strings must not contain null characters (\\u0000)")
}

// HasNUL reports whether a decoded JSON value holds a NUL character in a
// string or a key (text PostgreSQL cannot store).
func HasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.ContainsRune(x, 0)
	case []any:
		for _, e := range x {
			if HasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || HasNUL(e) {
				return true
			}
		}
	}
	return false
}

// DecodeFields decodes a JSON object body. root is the documented root key;
// when the body has that key holding an object, its contents are the fields.
func (s *Server) DecodeFields(w http.ResponseWriter, r *http.Request, root string) (*Fields, error) {
	body, err := s.ReadBody(w, r)
	if err != nil {
		return nil, err
	}
	return ParseFields(body, root)
}

func ParseFields(body []byte, root string) (*Fields, error) {
	f := &Fields{m: map[string]json.RawMessage{}, root: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(body)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(body, &f.root); err != nil || f.root == nil {
		return nil, &parley.Error{Code: parley.EBADREQUEST, Title: "Invalid JSON", Message: "The request body must be a JSON object"}
	}
	if raw, ok := f.root[root]; ok && root != "" {
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(raw, &inner); err == nil && inner != nil {
			f.m = inner
			return f, nil
		}
		if !isNull(raw) {
			return nil, parley.Invalid("Invalid parameters", fmt.Sprintf("%s must be an object", root))
		}
	}
	f.m = f.root
	return f, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// Has reports whether key was sent (even as null).
func (f *Fields) Has(key string) bool { _, ok := f.m[key]; return ok }

// Raw returns the raw JSON of key.
func (f *Fields) Raw(key string) (json.RawMessage, bool) { v, ok := f.m[key]; return v, ok }

// RootRaw returns the raw JSON of a key at the body's top level (outside the
// root key), e.g. whatsapp_config_id next to "template".
func (f *Fields) RootRaw(key string) (json.RawMessage, bool) { v, ok := f.root[key]; return v, ok }

func TypeErr(key, want string) error {
	return parley.Invalid("Invalid parameters", fmt.Sprintf("%s must be %s", HumanKey(key), want))
}

// HumanKey renders a key the way Rails full messages do: "external_customer_id" → "External customer id".
func HumanKey(key string) string {
	s := strings.ReplaceAll(key, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// String returns key as a string. ok is false when absent; v is nil for null.
func (f *Fields) String(key string) (v *string, ok bool, err error) {
	raw, ok := f.m[key]
	return decodeString(raw, ok, key)
}

// RootString is String for a top-level key outside the root key.
func (f *Fields) RootString(key string) (v *string, ok bool, err error) {
	raw, ok := f.root[key]
	return decodeString(raw, ok, key)
}

func decodeString(raw json.RawMessage, ok bool, key string) (*string, bool, error) {
	if !ok || isNull(raw) {
		return nil, ok, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		// Rails casts numbers to strings; so do we.
		var n json.Number
		if err2 := json.Unmarshal(raw, &n); err2 == nil {
			s = n.String()
			return &s, true, nil
		}
		return nil, true, TypeErr(key, "a string")
	}
	return &s, true, nil
}

// Bool returns key as a boolean; "true"/"false" strings are accepted.
func (f *Fields) Bool(key string) (v *bool, ok bool, err error) {
	raw, ok := f.m[key]
	if !ok || isNull(raw) {
		return nil, ok, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if pb, perr := strconv.ParseBool(s); perr == nil {
				return &pb, true, nil
			}
		}
		return nil, true, TypeErr(key, "a boolean")
	}
	return &b, true, nil
}

// Int returns key as an integer; numeric strings are accepted.
func (f *Fields) Int(key string) (v *int, ok bool, err error) {
	raw, ok := f.m[key]
	if !ok || isNull(raw) {
		return nil, ok, nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, true, TypeErr(key, "an integer")
	}
	switch t := x.(type) {
	case json.Number:
		n = t
	case string:
		n = json.Number(strings.TrimSpace(t))
	default:
		return nil, true, TypeErr(key, "an integer")
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		fl, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || fl != float64(int64(fl)) {
			return nil, true, TypeErr(key, "an integer")
		}
		i = int64(fl)
	}
	if i > 1<<31-1 || i < -(1<<31) {
		return nil, true, TypeErr(key, "an integer in range")
	}
	iv := int(i)
	return &iv, true, nil
}

// Float returns key as a number; numeric strings are accepted.
func (f *Fields) Float(key string) (v *float64, ok bool, err error) {
	raw, ok := f.m[key]
	if !ok || isNull(raw) {
		return nil, ok, nil
	}
	var fl float64
	if err := json.Unmarshal(raw, &fl); err != nil {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if p, perr := strconv.ParseFloat(strings.TrimSpace(s), 64); perr == nil {
				return &p, true, nil
			}
		}
		return nil, true, TypeErr(key, "a number")
	}
	return &fl, true, nil
}

// Strings returns key as an array of strings.
func (f *Fields) Strings(key string) (v []string, ok bool, err error) {
	raw, ok := f.m[key]
	if !ok || isNull(raw) {
		return nil, ok, nil
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, true, TypeErr(key, "an array of strings")
	}
	return out, true, nil
}

// Object returns key as a JSON object.
func (f *Fields) Object(key string) (v map[string]any, ok bool, err error) {
	raw, ok := f.m[key]
	if !ok || isNull(raw) {
		return nil, ok, nil
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || out == nil {
		return nil, true, TypeErr(key, "an object")
	}
	return out, true, nil
}

// StringMap returns key as an object of string values.
func (f *Fields) StringMap(key string) (v map[string]string, ok bool, err error) {
	raw, ok := f.m[key]
	if !ok || isNull(raw) {
		return nil, ok, nil
	}
	var out map[string]string
	if err := json.Unmarshal(raw, &out); err != nil || out == nil {
		return nil, true, TypeErr(key, "an object of strings")
	}
	return out, true, nil
}

// Time returns key as an RFC 3339 time.
func (f *Fields) Time(key string) (v *time.Time, ok bool, err error) {
	s, ok, err := f.String(key)
	if err != nil || s == nil {
		return nil, ok, err
	}
	t, err := ParseTime(*s)
	if err != nil {
		return nil, true, TypeErr(key, "an ISO 8601 time")
	}
	return &t, true, nil
}

// Into decodes the fields into dst (a struct with json tags), for bodies with
// many nested fields. Type errors become 422.
func (f *Fields) Into(dst any) error {
	b, _ := json.Marshal(f.m)
	if err := json.Unmarshal(b, dst); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return TypeErr(ute.Field, "a "+ute.Type.String())
		}
		return parley.Invalid("Invalid parameters", "The request body has fields of the wrong type")
	}
	return nil
}

func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

// Collect gathers the first error of several field reads.
type Collect struct{ err error }

func (c *Collect) Str(f *Fields, key string) *string {
	v, _, err := f.String(key)
	c.Set(err)
	return v
}

func (c *Collect) Set(err error) {
	if c.err == nil && err != nil {
		c.err = err
	}
}

// Default sets key to v when the body did not send it, so a surface whose
// contract makes the attribute optional can supply its value.
func (f *Fields) Default(key string, v any) {
	if _, ok := f.m[key]; ok {
		return
	}
	if b, err := json.Marshal(v); err == nil {
		f.m[key] = b
	}
}
