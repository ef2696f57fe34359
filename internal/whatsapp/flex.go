package whatsapp

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// flexString decodes a JSON string or number into its text form. Meta sends
// some identifiers and timestamps as strings in one webhook and as numbers in
// another (e.g. message_template_id, entry.time). Other JSON kinds (bool,
// object, array) decode to the empty string instead of failing the payload.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		*f = ""
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		*f = flexString(b)
	default:
		*f = ""
	}
	return nil
}

// flexFloat decodes a JSON number or a numeric string (outbound location
// messages carry latitude/longitude as strings, inbound ones as numbers).
type flexFloat float64

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	*f = flexFloat(v)
	return nil
}

// flexInt decodes a JSON integer or a numeric string; anything else is 0.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if v, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		*f = flexInt(v)
		return nil
	}
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsNaN(v) || v > math.MaxInt64 || v < math.MinInt64 {
		*f = 0
		return nil
	}
	*f = flexInt(v)
	return nil
}

// flexFirst decodes either a string or an array of strings, keeping the first
// element. The calling docs show call "status" both ways.
type flexFirst string

func (f *flexFirst) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var list []flexString
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		if len(list) > 0 {
			*f = flexFirst(list[0])
		} else {
			*f = ""
		}
		return nil
	}
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	*f = flexFirst(s)
	return nil
}

// unixTime converts a Unix-seconds string ("1749416383") into a UTC time.
// Empty or malformed input yields the zero time.
func unixTime(s flexString) time.Time {
	if s == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		if n <= 0 || n > maxUnixSeconds {
			return time.Time{}
		}
		return time.Unix(n, 0).UTC()
	}
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v > maxUnixSeconds {
		return time.Time{}
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// maxUnixSeconds bounds accepted timestamps (year 9999) so hostile input
// cannot produce times that overflow formatting or arithmetic.
const maxUnixSeconds = 253402300799

// formatFloat renders a float without trailing zeros or exponent noise.
func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
