// Package secrets encrypts values kept at rest (Meta access tokens, webhook
// signing secrets, verify tokens) with AES-256-GCM under the operator's
// PARLEY_SECRET_KEY.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// version prefixes every ciphertext so the scheme can change later.
const version = "v1:"

// Box encrypts and decrypts with one key.
type Box struct {
	aead cipher.AEAD
	mac  []byte
}

// New derives the encryption key from secret (any length; hex, base64 or a
// passphrase all work because it is hashed first).
func New(secret string) (*Box, error) {
	if len(secret) < 16 {
		return nil, errors.New("secrets: key must be at least 16 characters")
	}
	k := sha256.Sum256([]byte("parley-encryption:" + secret))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m := sha256.Sum256([]byte("parley-lookup:" + secret))
	return &Box{aead: aead, mac: m[:]}, nil
}

// GenerateKey returns a new random key suitable for PARLEY_SECRET_KEY.
func GenerateKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Encrypt returns the ciphertext of plaintext, base64-encoded with a version
// prefix. The empty string encrypts to the empty string.
func (b *Box) Encrypt(plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := b.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return version + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Decrypt reverses Encrypt.
func (b *Box) Decrypt(ciphertext string) (string, error) {
	if ciphertext == "" {
		return "", nil
	}
	if !strings.HasPrefix(ciphertext, version) {
		return "", errors.New("secrets: unknown ciphertext version")
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(ciphertext, version))
	if err != nil {
		return "", fmt.Errorf("secrets: decode: %w", err)
	}
	n := b.aead.NonceSize()
	if len(raw) < n {
		return "", errors.New("secrets: ciphertext too short")
	}
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return "", errors.New("secrets: decrypt failed (wrong PARLEY_SECRET_KEY?)")
	}
	return string(pt), nil
}

// Lookup returns a keyed hash of v, for finding a row by a secret value
// (such as a webhook verify token) without storing the value in clear.
func (b *Box) Lookup(v string) string {
	m := hmac.New(sha256.New, b.mac)
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}
