package parley

import "strings"

// NormalizePhone returns the digits of a phone number, the form WhatsApp ids
// (wa_id) and Parley's stored phone numbers use: "+56 9 1111-2222" →
// "56911112222". A leading "00" international prefix is dropped.
func NormalizePhone(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	out := b.String()
	if strings.HasPrefix(strings.TrimSpace(s), "00") {
		out = strings.TrimPrefix(out, "00")
	}
	return out
}

// ValidPhone reports whether a normalized phone number is plausible (E.164
// allows at most 15 digits; the shortest real numbers have 7).
func ValidPhone(digits string) bool { return len(digits) >= 7 && len(digits) <= 15 }
