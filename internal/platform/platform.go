// Package platform serves Parley's platform resources: WhatsApp configs
// (production and sandbox), customers' setup links, config webhooks and
// project users. Handlers decode and validate with api.Fields, keep SQL in
// store.go and render Kapso's shapes; lifecycle events are emitted in the
// same transaction as the change that causes them.
package platform

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/internal/api"
)

// Register adds the platform routes to s.
func Register(s *api.Server) {
	h := &handlers{s: s}
	s.Handle("GET /whatsapp_configs", h.listConfigs)
	s.Handle("POST /whatsapp_configs", h.createProjectConfig)
	s.Handle("GET /whatsapp_configs/{id}", h.getConfig)
	s.Handle("PATCH /whatsapp_configs/{id}", h.updateConfig)
	s.Handle("PUT /whatsapp_configs/{id}", h.updateConfig)
	s.Handle("DELETE /whatsapp_configs/{id}", h.deleteConfig)
	s.Handle("DELETE /customers/{id}", h.deleteCustomer)
	s.Handle("GET /customers/{customer_id}/whatsapp_configs", h.listCustomerConfigs)
	s.Handle("POST /customers/{customer_id}/whatsapp_configs", h.createCustomerConfig)

	s.Handle("GET /customers/{customer_id}/setup_links", h.listSetupLinks)
	s.Handle("POST /customers/{customer_id}/setup_links", h.createSetupLink)
	s.Handle("PATCH /customers/{customer_id}/setup_links/{id}", h.updateSetupLink)
	s.Handle("PUT /customers/{customer_id}/setup_links/{id}", h.updateSetupLink)
	s.HandleRaw("GET /whatsapp/setup/{token}", h.setupPage())

	s.Handle("GET /whatsapp_configs/{id}/whatsapp_webhooks", h.listWebhooks)
	s.Handle("POST /whatsapp_configs/{id}/whatsapp_webhooks", h.createWebhook)
	s.Handle("GET /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}", h.getWebhook)
	s.Handle("PATCH /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}", h.updateWebhook)
	s.Handle("PUT /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}", h.updateWebhook)
	s.Handle("DELETE /whatsapp_configs/{id}/whatsapp_webhooks/{webhook_id}", h.deleteWebhook)

	s.Handle("GET /users", h.listUsers)
	s.Handle("POST /users", h.createUser)
	s.Handle("GET /users/{id}", h.getUser)
	s.Handle("PATCH /users/{id}", h.updateUser)
	s.Handle("PUT /users/{id}", h.updateUser)
	s.Handle("DELETE /users/{id}", h.deleteUser)
}

type handlers struct{ s *api.Server }

// randomToken returns n random bytes, URL-safe base64 encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomHex returns n random bytes, hex encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ValidHTTPURL reports whether s is an absolute http or https URL with a
// host. Private and loopback hosts are allowed here: whether Parley may call
// them is decided at delivery time by the operator's settings.
func ValidHTTPURL(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// str returns the trimmed value of an optional string.
func str(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}
