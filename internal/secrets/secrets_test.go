package secrets

import (
	"strings"
	"testing"
)

func TestRoundTripAndTamper(t *testing.T) {
	b, err := New(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	ct, err := b.Encrypt("EAAG-token")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ct, "EAAG") {
		t.Fatalf("ciphertext leaks plaintext: %s", ct)
	}
	pt, err := b.Decrypt(ct)
	if err != nil || pt != "EAAG-token" {
		t.Fatalf("decrypt = %q, %v", pt, err)
	}
	other, _ := New(GenerateKey())
	if _, err := other.Decrypt(ct); err == nil {
		t.Fatal("decrypt with another key succeeded")
	}
	if _, err := b.Decrypt(ct[:len(ct)-2] + "AA"); err == nil {
		t.Fatal("tampered ciphertext decrypted")
	}
	if _, err := New("short"); err == nil {
		t.Fatal("short key accepted")
	}
	if b.Lookup("x") != b.Lookup("x") || b.Lookup("x") == other.Lookup("x") {
		t.Fatal("lookup hash not deterministic per key")
	}
}
