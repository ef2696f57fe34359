package parley

import (
	"encoding/json"
	"time"
)

// Project is a tenant: every API key, config, contact and message belongs to
// exactly one project.
type Project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// APIKey is a project's credential. Only a hash of the secret is stored.
type APIKey struct {
	ID         string     `json:"id"`
	ProjectID  string     `json:"project_id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Customer is one of a project's end customers (a business using the
// project's SaaS), owner of WhatsApp configs and setup links.
type Customer struct {
	ID                 string    `json:"id"`
	ProjectID          string    `json:"-"`
	Name               string    `json:"name"`
	ExternalCustomerID *string   `json:"external_customer_id"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// User is a member of a project's team, who can be assigned conversations
// (a Parley extension: Kapso's API has no users endpoint).
type User struct {
	ID        string    `json:"id"`
	ProjectID string    `json:"-"`
	Email     string    `json:"email"`
	Name      *string   `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Page selects a page of a list. Page starts at 1.
type Page struct {
	Page    int
	PerPage int
}

// Offset returns the number of rows to skip.
func (p Page) Offset() int { return (p.Page - 1) * p.PerPage }

// PageMeta is Kapso's pagination block.
type PageMeta struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	TotalPages int `json:"total_pages"`
	TotalCount int `json:"total_count"`
}

// NewPageMeta computes the meta block of a page given the total row count.
func NewPageMeta(p Page, total int) PageMeta {
	pages := 0
	if p.PerPage > 0 {
		pages = (total + p.PerPage - 1) / p.PerPage
	}
	return PageMeta{Page: p.Page, PerPage: p.PerPage, TotalPages: pages, TotalCount: total}
}

// JSONObject is a free-form JSON object such as a contact's metadata. It
// marshals as {} when empty, never null.
type JSONObject map[string]any

// MarshalJSON implements json.Marshaler.
func (o JSONObject) MarshalJSON() ([]byte, error) {
	if o == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]any(o))
}
