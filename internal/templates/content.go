package templates

import (
	"context"
	"strconv"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// MessageContent renders the body of the template a message sent through
// /whatsapp_messages names, with its template_params, as the message's
// content (Kapso's listings show the rendered body). params is the request's
// template_params: an array (positional), an object of named values, or
// {"header": {...}, "body": {...}}. ok is false when cfg's WhatsApp Business
// Account has no such template or it has no body text; a variable without a
// value stays as {{name}}.
func MessageContent(ctx context.Context, c *store.Conn, cfg *parley.WhatsAppConfig, name, language string, params any) (string, bool, error) {
	if cfg.BusinessAccountID == nil {
		return "", false, nil
	}
	t, err := FindTemplate(ctx, c, cfg.ProjectID, "", *cfg.BusinessAccountID, name, language)
	if err != nil || t == nil || t.Content == "" {
		return "", false, err
	}
	values := map[string]string{}
	switch p := params.(type) {
	case []any:
		for i, x := range p {
			if s, ok := scalarString(x); ok {
				values[strconv.Itoa(i+1)] = s
			}
		}
	case map[string]any:
		if b, ok := p["body"].(map[string]any); ok {
			p = b
		}
		for k, x := range p {
			if s, ok := scalarString(x); ok {
				values[k] = s
			}
		}
	}
	return render(t.Content, values), true, nil
}
