package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/delivery"
)

// TestVerifyAgainstParleySignatures checks the example's verification
// against the signatures Parley's delivery workers compute.
func TestVerifyAgainstParleySignatures(t *testing.T) {
	secret := "4f1c0a9e7d2b"
	body := []byte(`{"message":{"id":"wamid.X","text":{"body":"hola"}},"phone_number_id":"100"}`)
	sig := delivery.Sign(secret, body)
	if !Verify(secret, body, sig) {
		t.Fatal("a Parley signature did not verify")
	}
	if !Verify(secret, body, strings.ToUpper(sig)) {
		t.Error("hex case should not matter")
	}
	for name, c := range map[string]struct {
		secret, sig string
		body        []byte
	}{
		"tampered body":   {secret, sig, append(bytes.Clone(body), ' ')},
		"other secret":    {"other", sig, body},
		"missing header":  {secret, "", body},
		"not hex":         {secret, "sha256=" + sig, body},
		"truncated":       {secret, sig[:32], body},
		"re-encoded JSON": {secret, sig, []byte(`{"message": {"id": "wamid.X", "text": {"body": "hola"}}, "phone_number_id": "100"}`)},
	} {
		if Verify(c.secret, c.body, c.sig) {
			t.Errorf("%s: verified", name)
		}
	}
}

// TestHandler posts deliveries as Parley signs them and checks the answers.
func TestHandler(t *testing.T) {
	secret := "s3cret"
	var out bytes.Buffer
	srv := httptest.NewServer(NewHandler(secret, &out))
	defer srv.Close()
	post := func(body, sig, key string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Webhook-Event", "whatsapp.message.received")
		req.Header.Set("X-Webhook-Payload-Version", "v2")
		req.Header.Set("X-Webhook-Signature", sig)
		req.Header.Set("X-Idempotency-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	body := `{"message":{"id":"wamid.1"}}`
	if code := post(body, delivery.Sign(secret, []byte(body)), "k1"); code != 200 {
		t.Fatalf("signed delivery: %d", code)
	}
	if code := post(body, delivery.Sign(secret, []byte(body)), "k1"); code != 200 {
		t.Fatalf("retried delivery: %d", code)
	}
	if code := post(body, delivery.Sign("wrong", []byte(body)), "k2"); code != 401 {
		t.Fatalf("badly signed delivery: %d", code)
	}
	got := out.String()
	if strings.Count(got, "whatsapp.message.received (payload v2, key k1)") != 1 ||
		!strings.Contains(got, "duplicate delivery k1 ignored") || !strings.Contains(got, `"id": "wamid.1"`) ||
		!strings.Contains(got, "refused a delivery with a bad signature") {
		t.Errorf("output:\n%s", got)
	}
}
