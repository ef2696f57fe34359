// Package messaging is the heart of Parley: conversations and messages
// (Kapso's /whatsapp_conversations and /whatsapp_messages), the send path
// (validate, store as pending, send through the Graph API from a durable
// job), and the inbound path (Meta's webhooks: messages, echoes, statuses,
// template updates, calls), including the webhook events each change emits.
//
// Every change and the events and jobs it causes commit in one transaction,
// so a crash can delay work but never lose or duplicate it.
package messaging

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// Job kinds this package enqueues. fetch_media is handled by the media
// package.
const (
	JobSendMessage = "send_message"
	JobMarkRead    = "mark_read"
	JobFetchMedia  = "fetch_media"
	JobAutoEnd     = "conversation_auto_end"
)

// Options are the hooks other areas plug into the inbound path. Each runs
// inside the webhook's transaction; an error rolls the whole webhook back
// (Meta then retries it). Nil hooks are skipped.
type Options struct {
	// OnTemplateStatus receives a message_template_status_update, once per
	// config of the WhatsApp Business Account it concerns.
	OnTemplateStatus func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, u whatsapp.TemplateStatusUpdate) error
	// OnCall receives each element of a "calls" webhook.
	OnCall func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, c whatsapp.Call) error
	// OnCallPermission receives a customer's reply to a call permission
	// request (an interactive call_permission_reply message, which is also
	// stored as a message); contactID is the sender's contact.
	OnCallPermission func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, contactID string, m *whatsapp.InboundMessage) error
	// TemplateContent renders a template message's content (the template's
	// body with the request's template_params) when cfg's WhatsApp Business
	// Account has the template; ok is false when it does not. It runs in the
	// send's transaction.
	TemplateContent func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, name, language string, params any) (content string, ok bool, err error)
}

type service struct {
	api  *api.Server
	opts Options
	log  *slog.Logger
}

var services sync.Map // *api.Server → *service

// svc returns the service of s, creating one without hooks when Register
// was not called (so Send and ProcessWebhook work from any package).
func svc(s *api.Server) *service {
	if v, ok := services.Load(s); ok {
		return v.(*service)
	}
	v, _ := services.LoadOrStore(s, &service{api: s, log: s.Log})
	return v.(*service)
}

// Register adds the conversation, message and Meta webhook routes to s.
// The optional Options set the inbound hooks.
func Register(s *api.Server, opts ...Options) {
	sv := &service{api: s, log: s.Log}
	if len(opts) > 0 {
		sv.opts = opts[0]
	}
	services.Store(s, sv)

	s.Handle("GET /whatsapp_conversations", sv.listConversations)
	s.Handle("GET /whatsapp_conversations/{conversation_id}", sv.getConversation)
	s.Handle("PATCH /whatsapp_conversations/{conversation_id}", sv.updateConversation)
	s.Handle("PUT /whatsapp_conversations/{conversation_id}", sv.updateConversation)
	s.Handle("GET /whatsapp_conversations/{conversation_id}/whatsapp_messages", sv.listMessages)
	s.Handle("POST /whatsapp_conversations/{conversation_id}/whatsapp_messages", sv.sendInConversation)
	s.Handle("POST /whatsapp_messages", sv.sendStandalone)
	s.Handle("PATCH /whatsapp_messages/{id}/mark_as_read", sv.markAsRead)
	s.Handle("GET /whatsapp_messages/{id}", sv.getMessage)
	s.Handle("DELETE /whatsapp_messages/{id}", sv.deleteMessage)

	s.HandleRaw("GET /webhooks/whatsapp", InboundHandler(s))
	s.HandleRaw("POST /webhooks/whatsapp", InboundHandler(s))
}

// now returns the current time at the store's precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// afterCommit wakes the workers once a transaction that enqueued jobs or
// wrote events committed.
func (sv *service) afterCommit() {
	sv.api.JobsEnqueued()
	sv.api.EventsWritten()
}

func configNotFound() *parley.Error {
	return &parley.Error{Code: parley.EINVALID, Title: "WhatsApp configuration not found"}
}

// CallPermissionReply adapts a recorder of call permission answers (such as
// contacts.RecordCallPermission) to Options.OnCallPermission: it reads the
// reply's response, source and expiry from the parsed message. A permanent
// permission has no expiry.
func CallPermissionReply(record func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, contactID, status, source string,
	expiresAt *time.Time, messageID string, at time.Time) error) func(context.Context, *store.Conn, *parley.WhatsAppConfig, string, *whatsapp.InboundMessage) error {
	return func(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, contactID string, m *whatsapp.InboundMessage) error {
		d := m.MessageTypeData
		status, _ := d["call_permission_response"].(string)
		if status == "" {
			return nil // nothing to record
		}
		source, _ := d["response_source"].(string)
		var expires *time.Time
		if permanent, _ := d["is_permanent"].(bool); !permanent {
			var secs int64
			switch v := d["expiration_timestamp"].(type) {
			case int64:
				secs = v
			case float64:
				secs = int64(v)
			case int:
				secs = int64(v)
			}
			if secs > 0 {
				t := time.Unix(secs, 0).UTC()
				expires = &t
			}
		}
		at := m.Timestamp
		if at.IsZero() {
			at = now()
		}
		return record(ctx, tx, cfg, contactID, status, source, expires, m.ID, at)
	}
}
