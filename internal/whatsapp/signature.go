package whatsapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"strings"
)

// SignatureHeader is the header Meta signs webhook POSTs with.
const SignatureHeader = "X-Hub-Signature-256"

const signaturePrefix = "sha256="

// VerifySignature reports whether header (the X-Hub-Signature-256 value,
// "sha256=<hex>") is the HMAC-SHA256 of the raw body under appSecret. The
// comparison is constant-time. It returns false for an empty secret, a
// missing or malformed header, or a mismatch. Always verify the bytes as
// received, never a re-encoded copy.
func VerifySignature(appSecret, body []byte, header string) bool {
	if len(appSecret) == 0 {
		return false
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok || len(hexSig) != sha256.Size*2 {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(appSecret, body))
}

// Sign returns the X-Hub-Signature-256 value for body: "sha256=" followed by
// the lowercase hex HMAC-SHA256 of body under appSecret.
func Sign(appSecret, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(appSecret, body))
}

func mac(secret, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return h.Sum(nil)
}

// VerifyChallenge answers Meta's GET verification handshake
// (?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…). It returns the
// challenge to echo with a 200 and true when the mode is "subscribe" and the
// token matches verifyToken (compared in constant time); otherwise the
// handler should reply 403. An empty verifyToken never matches.
func VerifyChallenge(query url.Values, verifyToken string) (string, bool) {
	if verifyToken == "" || query.Get("hub.mode") != "subscribe" {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(query.Get("hub.verify_token")), []byte(verifyToken)) != 1 {
		return "", false
	}
	return query.Get("hub.challenge"), true
}
