package whatsapp

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// Test vector from the fixture set's README: text.json as stored (985 bytes).
const (
	vectorSecret = "0123456789abcdef0123456789abcdef"
	vectorHeader = "sha256=b7edbc92d5227c36ddf894643f3b69f7758dc739f63a162f04ad8c6e2a8059e5"
)

func TestSignatureVector(t *testing.T) {
	body := readFixture(t, "webhooks", "text.json")
	if len(body) != 985 {
		t.Fatalf("text.json is %d bytes, want 985 (fixture altered?)", len(body))
	}
	if got := Sign([]byte(vectorSecret), body); got != vectorHeader {
		t.Errorf("Sign = %s", got)
	}
	if !VerifySignature([]byte(vectorSecret), body, vectorHeader) {
		t.Error("VerifySignature rejected the test vector")
	}
}

func TestVerifySignatureRejects(t *testing.T) {
	body := readFixture(t, "webhooks", "text.json")
	secret := []byte(vectorSecret)
	hexPart := strings.TrimPrefix(vectorHeader, "sha256=")
	tests := map[string]struct {
		secret []byte
		body   []byte
		header string
	}{
		"missing header":  {secret, body, ""},
		"no prefix":       {secret, body, hexPart},
		"sha1 prefix":     {secret, body, "sha1=" + hexPart},
		"not hex":         {secret, body, "sha256=" + strings.Repeat("zz", 32)},
		"short":           {secret, body, vectorHeader[:len(vectorHeader)-2]},
		"long":            {secret, body, vectorHeader + "00"},
		"wrong secret":    {[]byte("other"), body, vectorHeader},
		"empty secret":    {nil, body, Sign(nil, body)},
		"body changed":    {secret, append([]byte(" "), body...), vectorHeader},
		"re-encoded body": {secret, []byte(strings.Join(strings.Fields(string(body)), "")), vectorHeader},
	}
	for name, tt := range tests {
		if VerifySignature(tt.secret, tt.body, tt.header) {
			t.Errorf("%s: accepted", name)
		}
	}
	// Uppercase hex is still the same digest.
	if !VerifySignature(secret, body, "sha256="+strings.ToUpper(hexPart)) {
		t.Error("uppercase hex rejected")
	}
}

func TestBuildersRoundTrip(t *testing.T) {
	secret := []byte("sandbox-secret")
	at := time.Unix(1750000000, 0).UTC()

	body, err := BuildMessageWebhook(fxWABA, fxPhoneID, fxDisplay, Contact{WaID: fxCustomer, ProfileName: fxProfileName},
		NewTextMessage(fxCustomer, "wamid.sim1", at, "hola"))
	if err != nil {
		t.Fatal(err)
	}
	if !VerifySignature(secret, body, Sign(secret, body)) {
		t.Fatal("signed body does not verify")
	}
	w, err := ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	c := w.Changes()[0]
	m := c.Messages[0]
	if c.Field != FieldMessages || c.WABAID != fxWABA || c.PhoneNumberID != fxPhoneID || c.DisplayPhoneNumber != fxDisplay ||
		m.ID != "wamid.sim1" || m.From != fxCustomer || m.Content != "hola" || !m.Timestamp.Equal(at) || m.ProfileName != fxProfileName {
		t.Errorf("message round trip: %+v / %+v", c, m)
	}

	// Raw JSON is embedded verbatim, e.g. a fixture message.
	raw := []byte(`{"from":"16505551234","id":"wamid.sim2","timestamp":"1750000000","type":"reaction","reaction":{"message_id":"wamid.x","emoji":"👍"}}`)
	body, err = BuildMessageWebhook(fxWABA, fxPhoneID, fxDisplay, Contact{WaID: fxCustomer}, raw)
	if err != nil {
		t.Fatal(err)
	}
	if w, err = ParseWebhook(body); err != nil || string(w.Changes()[0].Messages[0].Raw) != string(raw) {
		t.Errorf("raw message not kept: %v", err)
	}
	if _, err := BuildMessageWebhook(fxWABA, fxPhoneID, fxDisplay, Contact{}, []byte(`{nope`)); err == nil {
		t.Error("invalid raw JSON accepted")
	}

	body, err = BuildStatusWebhook(fxWABA, fxPhoneID, fxDisplay,
		NewStatus("wamid.out1", StatusFailed, fxCustomer, at, Error{Code: 131047, Title: "Re-engagement message", Details: "More than 24 hours"}))
	if err != nil {
		t.Fatal(err)
	}
	w, err = ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	s := w.Changes()[0].Statuses[0]
	if s.ID != "wamid.out1" || s.Status != StatusFailed || s.RecipientID != fxCustomer || !s.Timestamp.Equal(at) ||
		len(s.Errors) != 1 || s.Errors[0] != (Error{Code: 131047, Title: "Re-engagement message", Message: "Re-engagement message", Details: "More than 24 hours"}) {
		t.Errorf("status round trip: %+v", s)
	}

	body, err = BuildEchoWebhook(fxWABA, fxPhoneID, fxDisplay, map[string]any{
		"from": fxDisplay, "to": fxCustomer, "id": "wamid.echo", "timestamp": "1750000000", "type": "text", "text": map[string]any{"body": "from the app"},
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err = ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	if e := w.Changes()[0].Echoes[0]; !e.IsEcho || e.To != fxCustomer || e.Content != "from the app" || e.Origin != OriginBusinessApp {
		t.Errorf("echo round trip: %+v", e)
	}

	body, err = BuildTemplateStatusWebhook(fxWABA, TemplateStatusUpdate{
		Event: "REJECTED", TemplateID: "1689556908129835", Name: "abandoned_cart", Language: "en",
		Reason: "INVALID_FORMAT", Category: "MARKETING", RejectionReason: "bad", Time: at,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"message_template_id":1689556908129835`) {
		t.Errorf("template id not emitted as integer: %s", body)
	}
	w, err = ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	u := w.Changes()[0].TemplateUpdates[0]
	if u.Event != "REJECTED" || u.TemplateID != "1689556908129835" || u.Name != "abandoned_cart" || u.Reason != "INVALID_FORMAT" ||
		u.RejectionReason != "bad" || !u.Time.Equal(at) || !w.Entries[0].Time.Equal(at) {
		t.Errorf("template update round trip: %+v", u)
	}
}

func TestVerifyChallenge(t *testing.T) {
	q := url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {"1158201444"}, "hub.verify_token": {"vibecoding"}}
	if c, ok := VerifyChallenge(q, "vibecoding"); !ok || c != "1158201444" {
		t.Errorf("valid handshake: %q %v", c, ok)
	}
	if _, ok := VerifyChallenge(q, "other"); ok {
		t.Error("wrong token accepted")
	}
	if _, ok := VerifyChallenge(q, ""); ok {
		t.Error("empty configured token accepted")
	}
	q.Set("hub.mode", "unsubscribe")
	if _, ok := VerifyChallenge(q, "vibecoding"); ok {
		t.Error("wrong mode accepted")
	}
}
