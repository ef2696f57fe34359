package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Template is a message template as listed by the Graph API. Fields missing
// from the requested "fields" stay empty.
type Template struct {
	// ID is the template ID.
	ID string `json:"id"`
	// Name is the template name.
	Name string `json:"name"`
	// Language is the language code, e.g. "en_US".
	Language string `json:"language"`
	// Status is the review status (APPROVED, PENDING, REJECTED, PAUSED, …).
	Status string `json:"status"`
	// Category is MARKETING, UTILITY or AUTHENTICATION.
	Category string `json:"category"`
	// SubCategory is Meta's sub-category, when set.
	SubCategory string `json:"sub_category,omitempty"`
	// ParameterFormat is NAMED or POSITIONAL.
	ParameterFormat string `json:"parameter_format,omitempty"`
	// RejectedReason is set for rejected templates.
	RejectedReason string `json:"rejected_reason,omitempty"`
	// Components is the components array, verbatim.
	Components json.RawMessage `json:"components,omitempty"`
	// Raw is the whole template object, verbatim.
	Raw json.RawMessage `json:"-"`
}

// ListTemplatesOptions filters and pages ListTemplates.
type ListTemplatesOptions struct {
	// Fields restricts the returned fields (Graph's default set when empty).
	Fields []string
	// Limit is the page size (Graph's default when 0).
	Limit int
	// Status filters by status, e.g. "approved".
	Status string
	// Name filters by template name.
	Name string
	// After is the cursor of the page to fetch (from a previous call).
	After string
}

// CreateTemplateResponse is Meta's answer to a template creation.
type CreateTemplateResponse struct {
	// ID is the new template's ID.
	ID string `json:"id"`
	// Status is the initial status, normally PENDING.
	Status string `json:"status"`
	// Category is the category Meta assigned.
	Category string `json:"category"`
}

// maxTemplatePages bounds ListAllTemplates against a server that never
// stops paging.
const maxTemplatePages = 1000

// ListTemplates fetches one page of the WABA's templates. next is the cursor
// to pass as opts.After for the following page, or "" on the last page
// (Graph keeps returning cursors on the last page; only paging.next says
// whether more exist).
func (c *Client) ListTemplates(ctx context.Context, token, wabaID string, opts ListTemplatesOptions) ([]Template, string, error) {
	if err := requireIDs("WABA ID", wabaID); err != nil {
		return nil, "", err
	}
	q := url.Values{}
	if len(opts.Fields) > 0 {
		q.Set("fields", strings.Join(opts.Fields, ","))
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Status != "" {
		q.Set("status", opts.Status)
	}
	if opts.Name != "" {
		q.Set("name", opts.Name)
	}
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	var res struct {
		Data   []json.RawMessage `json:"data"`
		Paging struct {
			Cursors struct {
				After string `json:"after"`
			} `json:"cursors"`
			Next string `json:"next"`
		} `json:"paging"`
	}
	err := c.doJSON(ctx, request{
		method: http.MethodGet, path: pathOf(wabaID, "message_templates"), query: q, token: token,
	}, &res)
	if err != nil {
		return nil, "", err
	}
	out := make([]Template, 0, len(res.Data))
	for _, raw := range res.Data {
		var t struct {
			Template
			ID flexString `json:"id"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, "", err
		}
		t.Template.ID = string(t.ID)
		t.Template.Raw = raw
		out = append(out, t.Template)
	}
	next := ""
	if res.Paging.Next != "" {
		next = res.Paging.Cursors.After
	}
	return out, next, nil
}

// ListAllTemplates follows the cursors of ListTemplates until the last
// page. opts.After, if set, is the starting cursor.
func (c *Client) ListAllTemplates(ctx context.Context, token, wabaID string, opts ListTemplatesOptions) ([]Template, error) {
	var all []Template
	seen := map[string]bool{}
	for range maxTemplatePages {
		page, next, err := c.ListTemplates(ctx, token, wabaID, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" || len(page) == 0 {
			return all, nil
		}
		if seen[next] {
			return nil, errors.New("whatsapp: template paging cursor repeated")
		}
		seen[next] = true
		opts.After = next
	}
	return nil, errors.New("whatsapp: too many template pages")
}

// CreateTemplate submits a template (body is Meta's creation request) to
// /{wabaID}/message_templates.
func (c *Client) CreateTemplate(ctx context.Context, token, wabaID string, body any) (*CreateTemplateResponse, error) {
	if err := requireIDs("WABA ID", wabaID); err != nil {
		return nil, err
	}
	b, err := jsonBody(body)
	if err != nil {
		return nil, err
	}
	var res struct {
		ID       flexString `json:"id"`
		Status   string     `json:"status"`
		Category string     `json:"category"`
	}
	err = c.doJSON(ctx, request{
		method: http.MethodPost, path: pathOf(wabaID, "message_templates"), body: b, token: token,
	}, &res)
	if err != nil {
		return nil, err
	}
	return &CreateTemplateResponse{ID: string(res.ID), Status: res.Status, Category: res.Category}, nil
}

// EditTemplate posts body (category and/or components) to /{templateID}.
func (c *Client) EditTemplate(ctx context.Context, token, templateID string, body any) error {
	if err := requireIDs("template ID", templateID); err != nil {
		return err
	}
	b, err := jsonBody(body)
	if err != nil {
		return err
	}
	return c.doSuccess(ctx, request{method: http.MethodPost, path: pathOf(templateID), body: b, token: token})
}

// DeleteTemplate deletes the template called name in every language, or
// only the one with ID hsmID when hsmID is not empty.
func (c *Client) DeleteTemplate(ctx context.Context, token, wabaID, name, hsmID string) error {
	if err := requireIDs("WABA ID", wabaID, "template name", name); err != nil {
		return err
	}
	q := url.Values{"name": {name}}
	if hsmID != "" {
		q.Set("hsm_id", hsmID)
	}
	return c.doSuccess(ctx, request{
		method: http.MethodDelete, path: pathOf(wabaID, "message_templates"), query: q, token: token,
	})
}
