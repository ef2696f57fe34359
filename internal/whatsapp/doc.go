// Package whatsapp speaks Meta's WhatsApp Cloud API on behalf of Parley.
//
// It has two halves:
//
//   - Inbound: [VerifyChallenge] answers the GET verification handshake,
//     [VerifySignature] checks the X-Hub-Signature-256 header of a
//     webhook POST and [ParseWebhook] turns the body into a normalized
//     [Webhook]. Inbound messages carry both the verbatim Meta object
//     ([InboundMessage.Raw]) and Kapso's rendering of it (message_type,
//     content and message_type_data, see [InboundMessage]). [Sign] and the
//     Build* helpers produce signed, Meta-shaped webhook bodies so the
//     sandbox simulator can exercise the real inbound path.
//
//   - Outbound: [Client] calls the Graph API (messages, media, templates,
//     phone numbers, health, webhook subscriptions). Access tokens are
//     passed per call and never logged or embedded in errors. Sends are
//     paced by a per-phone-number token bucket, transient failures are
//     retried with exponential backoff and jitter, and Graph failures are
//     returned as [*GraphError].
//
// The package only depends on the standard library.
package whatsapp
