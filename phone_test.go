package parley

import "testing"

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{
		"+56 9 1111-2222": "56911112222",
		"0056911112222":   "56911112222",
		"(415) 555-0123":  "4155550123",
		"abc":             "",
	} {
		if got := NormalizePhone(in); got != want {
			t.Errorf("NormalizePhone(%q) = %q, want %q", in, got, want)
		}
	}
	if ValidPhone("123") || !ValidPhone("56911112222") || ValidPhone("1234567890123456") {
		t.Error("ValidPhone bounds")
	}
}

func TestSubscribedAliases(t *testing.T) {
	if !Subscribed([]string{"messages"}, EventMessageSent) || Subscribed([]string{"messages"}, EventMessageRead) {
		t.Error("messages alias")
	}
	if !Subscribed([]string{"status_updates"}, EventMessageFailed) {
		t.Error("status_updates alias")
	}
	if !Subscribed([]string{EventPhoneNumberCreated}, EventConfigCreated) {
		t.Error("v2 lifecycle name")
	}
	if ValidEvent("whatsapp.nope", false) || !ValidEvent("templates", false) || ValidEvent(EventMessageReceived, true) {
		t.Error("ValidEvent")
	}
}
