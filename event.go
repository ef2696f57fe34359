package parley

// Webhook event names (README decision 4, semantics.md §2.3).
const (
	EventMessageReceived      = "whatsapp.message.received"
	EventMessageSent          = "whatsapp.message.sent"
	EventMessageDelivered     = "whatsapp.message.delivered"
	EventMessageRead          = "whatsapp.message.read"
	EventMessageFailed        = "whatsapp.message.failed"
	EventConversationCreated  = "whatsapp.conversation.created"
	EventConversationEnded    = "whatsapp.conversation.ended"
	EventConversationInactive = "whatsapp.conversation.inactive"
	// EventTemplateStatus is Parley's name for a template status change
	// (Meta's message_template_status_update), delivered to the configs that
	// use the template.
	EventTemplateStatus = "whatsapp.template.status_updated"

	// Project lifecycle events: v1 names and their v2 equivalents.
	EventConfigCreated      = "whatsapp.config.created"
	EventConfigDeleted      = "whatsapp.config.deleted"
	EventPhoneNumberCreated = "whatsapp.phone_number.created"
	EventPhoneNumberDeleted = "whatsapp.phone_number.deleted"
	// EventWebhookPaused is a Parley project event: a webhook that failed for
	// too long was paused.
	EventWebhookPaused = "parley.webhook.paused"
)

// ConfigEvents are the events a phone-number (config) webhook may subscribe to.
var ConfigEvents = []string{
	EventMessageReceived, EventMessageSent, EventMessageDelivered, EventMessageRead, EventMessageFailed,
	EventConversationCreated, EventConversationEnded, EventConversationInactive, EventTemplateStatus,
}

// ProjectEvents are the events a project webhook may subscribe to.
var ProjectEvents = []string{
	EventConfigCreated, EventConfigDeleted, EventPhoneNumberCreated, EventPhoneNumberDeleted, EventWebhookPaused,
}

// EventAliases are Kapso's old event names, kept as written on the webhook
// and expanded when matching (README decision 4).
var EventAliases = map[string][]string{
	"messages":       {EventMessageReceived, EventMessageSent},
	"status_updates": {EventMessageDelivered, EventMessageRead, EventMessageFailed},
	"templates":      {EventTemplateStatus},
}

// EventName returns the one name an event has for a webhook of the given
// payload version: the name in its X-Webhook-Event header and in its
// delivery log. Lifecycle events carry Kapso's current names
// (whatsapp.phone_number.created, .deleted) for v2 webhooks and Kapso's
// legacy names (whatsapp.config.created, .deleted) for v1 webhooks, as
// Kapso sends them; every other event has one name in both versions.
func EventName(event, payloadVersion string) string {
	v1 := payloadVersion == PayloadV1
	switch event {
	case EventConfigCreated, EventPhoneNumberCreated:
		if v1 {
			return EventConfigCreated
		}
		return EventPhoneNumberCreated
	case EventConfigDeleted, EventPhoneNumberDeleted:
		if v1 {
			return EventConfigDeleted
		}
		return EventPhoneNumberDeleted
	}
	return event
}

// EventNames returns event and its other name, if it has one: a filter on
// either name of a lifecycle event finds both.
func EventNames(event string) []string {
	if v1 := EventName(event, PayloadV1); v1 != event {
		return []string{event, v1}
	}
	if v2 := EventName(event, PayloadV2); v2 != event {
		return []string{event, v2}
	}
	return []string{event}
}

// Subscribed reports whether a webhook subscribed to events (names or
// aliases) receives event. A subscription to either the v1 or v2 name of a
// lifecycle event receives it.
func Subscribed(events []string, event string) bool {
	for _, e := range events {
		if e == event {
			return true
		}
		for _, x := range EventAliases[e] {
			if x == event {
				return true
			}
		}
		switch {
		case e == EventPhoneNumberCreated && event == EventConfigCreated,
			e == EventPhoneNumberDeleted && event == EventConfigDeleted,
			e == EventConfigCreated && event == EventPhoneNumberCreated,
			e == EventConfigDeleted && event == EventPhoneNumberDeleted:
			return true
		}
	}
	return false
}

// ValidEvent reports whether name may appear in a webhook's events list for
// a config webhook (project=false) or a project webhook (project=true).
func ValidEvent(name string, project bool) bool {
	list := ConfigEvents
	if project {
		list = ProjectEvents
	} else if _, ok := EventAliases[name]; ok {
		return true
	}
	for _, e := range list {
		if e == name {
			return true
		}
	}
	return false
}
