package whatsapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const (
	fxWABA        = "102290129340398"
	fxPhoneID     = "106540352242922"
	fxDisplay     = "15550783881"
	fxCustomer    = "16505551234"
	fxProfileName = "Sheena Nelson"
)

func readFixture(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"testdata"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseFixture(t *testing.T, name string) *Webhook {
	t.Helper()
	w, err := ParseWebhook(readFixture(t, "webhooks", name))
	if err != nil {
		t.Fatalf("ParseWebhook(%s): %v", name, err)
	}
	return w
}

// onlyChange returns the single change of a single-entry webhook and checks
// the envelope fields every fixture shares.
func onlyChange(t *testing.T, w *Webhook, field string) *Change {
	t.Helper()
	if w.Object != ObjectWhatsAppBusinessAccount {
		t.Errorf("Object = %q", w.Object)
	}
	changes := w.Changes()
	if len(w.Entries) != 1 || len(changes) != 1 {
		t.Fatalf("got %d entries / %d changes, want 1/1", len(w.Entries), len(changes))
	}
	c := changes[0]
	if c.Field != field {
		t.Errorf("Field = %q, want %q", c.Field, field)
	}
	if c.WABAID != fxWABA || w.Entries[0].ID != fxWABA {
		t.Errorf("WABAID = %q", c.WABAID)
	}
	if len(c.Value) == 0 || !json.Valid(c.Value) {
		t.Errorf("Value not kept: %q", c.Value)
	}
	return c
}

// onlyMessage returns the single customer message of a "messages" fixture.
func onlyMessage(t *testing.T, name string) *InboundMessage {
	t.Helper()
	c := onlyChange(t, parseFixture(t, name), FieldMessages)
	if c.PhoneNumberID != fxPhoneID || c.DisplayPhoneNumber != fxDisplay {
		t.Errorf("metadata = %q/%q", c.PhoneNumberID, c.DisplayPhoneNumber)
	}
	if len(c.Messages) != 1 || len(c.Statuses) != 0 || len(c.Echoes) != 0 {
		t.Fatalf("messages/statuses/echoes = %d/%d/%d", len(c.Messages), len(c.Statuses), len(c.Echoes))
	}
	m := &c.Messages[0]
	if m.From != fxCustomer {
		t.Errorf("From = %q", m.From)
	}
	if m.IsEcho || m.Origin != OriginCloudAPI || m.Direction != DirectionInbound {
		t.Errorf("echo/origin/direction = %v/%q/%q", m.IsEcho, m.Origin, m.Direction)
	}
	var raw map[string]any
	if err := json.Unmarshal(m.Raw, &raw); err != nil || raw["id"] != m.ID {
		t.Errorf("Raw does not hold the message: %v %s", err, m.Raw)
	}
	return m
}

func unix(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func wantMessage(t *testing.T, m *InboundMessage, id string, ts int64, metaType, kapsoType, content string) {
	t.Helper()
	if m.ID != id {
		t.Errorf("ID = %q, want %q", m.ID, id)
	}
	if !m.Timestamp.Equal(unix(ts)) || m.Timestamp.Location() != time.UTC {
		t.Errorf("Timestamp = %v, want %v", m.Timestamp, unix(ts))
	}
	if m.Type != metaType {
		t.Errorf("Type = %q, want %q", m.Type, metaType)
	}
	if m.MessageType != kapsoType {
		t.Errorf("MessageType = %q, want %q", m.MessageType, kapsoType)
	}
	if m.Content != content {
		t.Errorf("Content = %q, want %q", m.Content, content)
	}
}

func wantData(t *testing.T, m *InboundMessage, want map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(m.MessageTypeData, want) {
		t.Errorf("MessageTypeData =\n  %#v\nwant\n  %#v", m.MessageTypeData, want)
	}
}

func wantProfile(t *testing.T, m *InboundMessage) {
	t.Helper()
	if m.ProfileName != fxProfileName {
		t.Errorf("ProfileName = %q", m.ProfileName)
	}
}

var webhookFixtureTests = map[string]func(t *testing.T){
	"text.json": func(t *testing.T) {
		m := onlyMessage(t, "text.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", 1749416383, "text", MessageTypeText, "Does it come in another color?")
		wantData(t, m, map[string]any{"text": "Does it come in another color?"})
		wantProfile(t, m)
		if m.Media != nil || m.Context != nil || m.Referral != nil || m.Errors != nil {
			t.Errorf("unexpected extras: %+v", m)
		}
	},
	"text_product_inquiry.json": func(t *testing.T) {
		m := onlyMessage(t, "text_product_inquiry.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTA2NTUwRkNEMDdFQjJCRUU0NQA=", 1750016800, "text", MessageTypeText, "Is this still available?")
		want := &MessageContext{
			From: fxDisplay, ID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA",
			ReferredProduct: &ReferredProduct{CatalogID: "194836987003835", ProductRetailerID: "di9ozbzfi4"},
		}
		if !reflect.DeepEqual(m.Context, want) {
			t.Errorf("Context = %+v", m.Context)
		}
		if m.ReplyToID() != want.ID {
			t.Errorf("ReplyToID = %q", m.ReplyToID())
		}
	},
	"text_ctwa_referral.json": func(t *testing.T) {
		m := onlyMessage(t, "text_ctwa_referral.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUQ0N0VFMDA2MTQ0RkJFNkNDNAA=", 1750275992, "text", MessageTypeText, "Can I get more info about this?")
		r := m.Referral
		if r == nil {
			t.Fatal("Referral missing")
		}
		if r.SourceURL != "https://fb.me/3cr4Wqqkv" || r.SourceID != "120226305854810726" || r.SourceType != "ad" ||
			r.Body != "Summer Succulents are here!" || r.Headline != "Chat with us" || r.MediaType != "image" ||
			r.ImageURL != "https://scontent.xx.fbcdn.net/v/t45.1..." || !strings.HasPrefix(r.CTWAClickID, "Aff-n8ZTODiE79d22") ||
			r.WelcomeMessage != "Hi there! Let us know how we can help!" {
			t.Errorf("Referral = %+v", r)
		}
	},
	"image.json": func(t *testing.T) {
		m := onlyMessage(t, "image.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", 1744344496, "image", MessageTypeImage, "Image attached (Taj Mahal)")
		wantData(t, m, map[string]any{"caption": "Taj Mahal", "media_id": "1003383421387256", "mime_type": "image/jpeg"})
		want := &MediaRef{ID: "1003383421387256", MimeType: "image/jpeg", SHA256: "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
			Caption: "Taj Mahal", URL: "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=133..."}
		if !reflect.DeepEqual(m.Media, want) {
			t.Errorf("Media = %+v", m.Media)
		}
		wantProfile(t, m)
	},
	"audio.json": func(t *testing.T) {
		m := onlyMessage(t, "audio.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", 1744344496, "audio", MessageTypeAudio, "Audio attached")
		wantData(t, m, map[string]any{"media_id": "1908647269898587", "mime_type": "audio/ogg; codecs=opus", "voice": true})
		if m.Media == nil || !m.Media.Voice || m.Media.SHA256 != "wvqXMe6n7n1W0zphvLPoLj+s/NtKqmr3zZ7YzTP7xFI=" {
			t.Errorf("Media = %+v", m.Media)
		}
	},
	"video.json": func(t *testing.T) {
		m := onlyMessage(t, "video.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", 1744344496, "video", MessageTypeVideo, "Video attached (Timelapse of growth)")
		wantData(t, m, map[string]any{"caption": "Timelapse of growth", "media_id": "731675419373506", "mime_type": "video/mp4"})
		if m.Media == nil || m.Media.ID != "731675419373506" || m.Media.SHA256 != "vdGU5X4caz12KwFgYwpljlUNqMt1YnkH+5GkPc3mMnc=" {
			t.Errorf("Media = %+v", m.Media)
		}
	},
	"document.json": func(t *testing.T) {
		m := onlyMessage(t, "document.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", 1744344496, "document", MessageTypeDocument, "Document attached (receipt.pdf): my receipt")
		wantData(t, m, map[string]any{"caption": "my receipt", "media_id": "622684793477189", "mime_type": "application/pdf", "filename": "receipt.pdf"})
		if m.Media == nil || m.Media.Filename != "receipt.pdf" || m.Media.Caption != "my receipt" || m.Media.MimeType != "application/pdf" {
			t.Errorf("Media = %+v", m.Media)
		}
	},
	"sticker.json": func(t *testing.T) {
		m := onlyMessage(t, "sticker.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", 1744344496, "sticker", MessageTypeImage, "Sticker attached")
		wantData(t, m, map[string]any{"media_id": "1908647269898587", "mime_type": "image/webp", "animated": true, "meta_type": "sticker"})
		if m.Media == nil || !m.Media.Animated || m.Media.MimeType != "image/webp" {
			t.Errorf("Media = %+v", m.Media)
		}
	},
	"location.json": func(t *testing.T) {
		m := onlyMessage(t, "location.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", 1744344496, "location", MessageTypeLocation,
			"Location: Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301 (37.44221496582, -122.16165924072)")
		wantData(t, m, map[string]any{
			"latitude": 37.44221496582, "longitude": -122.16165924072,
			"location_name": "Philz Coffee", "location_address": "101 Forest Ave, Palo Alto, CA 94301", "url": "https://philzcoffee.com/",
		})
	},
	"contacts.json": func(t *testing.T) {
		m := onlyMessage(t, "contacts.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", 1744344496, "contacts", MessageTypeContacts, "Contact: Barbara J. Johnson")
		cards, ok := m.MessageTypeData["contacts"].([]map[string]any)
		if !ok || len(cards) != 1 {
			t.Fatalf("contacts data = %#v", m.MessageTypeData["contacts"])
		}
		phones := cards[0]["phones"].([]any)
		if phones[0].(map[string]any)["wa_id"] != "14125550829" {
			t.Errorf("shared contact phone = %#v", phones)
		}
		wantProfile(t, m) // the sender's name, not the shared card's
	},
	"button.json": func(t *testing.T) {
		m := onlyMessage(t, "button.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", 1750091045, "button", MessageTypeInteractive, "Unsubscribe")
		wantData(t, m, map[string]any{"interactive_type": "button", "reply_option_id": "Unsubscribe", "reply_option_title": "Unsubscribe", "meta_type": "button"})
		if m.ReplyToID() != "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=" || m.Context.From != fxDisplay {
			t.Errorf("Context = %+v", m.Context)
		}
	},
	"interactive_button_reply.json": func(t *testing.T) {
		m := onlyMessage(t, "interactive_button_reply.json")
		wantMessage(t, m, "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQThBREYwNzc2RDc2QjA1QTIwMgA=", 1714510003, "interactive", MessageTypeInteractive, "Change")
		wantData(t, m, map[string]any{"interactive_type": "button", "reply_option_id": "change-button", "reply_option_title": "Change"})
		if m.ReplyToID() != "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJBM0Y4RUU0RUNFQkFDMjYzQUMA" {
			t.Errorf("ReplyToID = %q", m.ReplyToID())
		}
		wantProfile(t, m)
	},
	"interactive_list_reply.json": func(t *testing.T) {
		m := onlyMessage(t, "interactive_list_reply.json")
		wantMessage(t, m, "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQTZDMzFGRUFBQjlDMzIzMzlEQwA=", 1712595443, "interactive", MessageTypeInteractive, "Priority Mail Express")
		wantData(t, m, map[string]any{"interactive_type": "list", "reply_option_id": "priority_express",
			"reply_option_title": "Priority Mail Express", "reply_option_description": "Next Day to 2 Days"})
	},
	"interactive_nfm_reply.json": func(t *testing.T) {
		m := onlyMessage(t, "interactive_nfm_reply.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUI3RjQ1MUE0NDBGMjc5QjQ0OQA=", 1750276100, "interactive", MessageTypeInteractive, "Sent")
		const respJSON = `{"flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s.", "optional_param1": "value1", "optional_param2": "value2"}`
		wantData(t, m, map[string]any{
			"interactive_type": "nfm_reply", "flow_name": "flow", "body_text": "Sent",
			"flow_response_json": respJSON, "flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s.",
			"flow_response": map[string]any{"flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s.", "optional_param1": "value1", "optional_param2": "value2"},
		})
		if m.ReplyToID() != "gBGGEiRVVgBPAgm7FUgc73noXjo" {
			t.Errorf("ReplyToID = %q", m.ReplyToID())
		}
	},
	"interactive_call_permission_reply.json": func(t *testing.T) {
		m := onlyMessage(t, "interactive_call_permission_reply.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUNBTExQRVJNSVNTSU9OAA==", 1750276200, "interactive", MessageTypeInteractive, "Call permission accepted")
		wantData(t, m, map[string]any{"interactive_type": "call_permission_reply", "call_permission_response": "accept",
			"is_permanent": false, "expiration_timestamp": int64(1750881000), "response_source": "user_action"})
	},
	"reaction.json": func(t *testing.T) {
		m := onlyMessage(t, "reaction.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUY1NDE2QjA3OTg4RkI5RkEyMQA=", 1750263900, "reaction", MessageTypeReaction, "😀")
		wantData(t, m, map[string]any{"reaction_emoji": "😀", "reacted_to_message_id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA"})
	},
	"order.json": func(t *testing.T) {
		m := onlyMessage(t, "order.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", 1750096325, "order", MessageTypeText,
			"Order: 2 x di9ozbzfi4, 1 x nqryix03ez (total 85 USD) - Love these!")
		wantData(t, m, map[string]any{
			"meta_type": "order", "catalog_id": "194836987003835", "order_text": "Love these!", "total": 85.0, "currency": "USD",
			"product_items": []map[string]any{
				{"product_retailer_id": "di9ozbzfi4", "quantity": 2.0, "item_price": 30.0, "currency": "USD"},
				{"product_retailer_id": "nqryix03ez", "quantity": 1.0, "item_price": 25.0, "currency": "USD"},
			},
		})
	},
	"system.json": func(t *testing.T) {
		c := onlyChange(t, parseFixture(t, "system.json"), FieldMessages)
		if len(c.Contacts) != 0 || len(c.Messages) != 1 {
			t.Fatalf("contacts/messages = %d/%d", len(c.Contacts), len(c.Messages))
		}
		m := &c.Messages[0]
		wantMessage(t, m, "wamid.HBgLMTk4MzU1NTE5NzQVAgASGAoxMTgyMDg2MjY3AA==", 1750269342, "system", MessageTypeText,
			"User Sheena Nelson changed from 16505551234 to 12195555358")
		wantData(t, m, map[string]any{"meta_type": "system", "system_type": "user_changed_number",
			"body": "User Sheena Nelson changed from 16505551234 to 12195555358", "wa_id": "12195555358"})
		if m.ProfileName != "" {
			t.Errorf("ProfileName = %q, want empty (no contacts)", m.ProfileName)
		}
	},
	"unsupported.json": func(t *testing.T) {
		m := onlyMessage(t, "unsupported.json")
		wantMessage(t, m, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", 1750090702, "unsupported", MessageTypeText, "[Unsupported message]")
		wantData(t, m, map[string]any{"meta_type": "unsupported", "unsupported_type": "edit"})
		want := []Error{{Code: 131051, Title: "Message type unknown", Message: "Message type unknown", Details: "Message type is currently not supported."}}
		if !reflect.DeepEqual(m.Errors, want) {
			t.Errorf("Errors = %+v", m.Errors)
		}
	},
	"errors.json": func(t *testing.T) {
		c := onlyChange(t, parseFixture(t, "errors.json"), FieldMessages)
		if len(c.Messages)+len(c.Statuses) != 0 || c.PhoneNumberID != fxPhoneID {
			t.Errorf("unexpected content: %+v", c)
		}
		want := []Error{{Code: 130429, Title: "Rate limit hit", Message: "Rate limit hit",
			Details: "Message failed to send because there were too many messages sent from this phone number in a short period of time",
			Href:    "/documentation/business-messaging/whatsapp/support/error-codes"}}
		if !reflect.DeepEqual(c.Errors, want) {
			t.Errorf("Errors = %+v", c.Errors)
		}
	},
	"smb_message_echoes.json": func(t *testing.T) {
		c := onlyChange(t, parseFixture(t, "smb_message_echoes.json"), FieldMessageEchoes)
		if len(c.Messages) != 0 || len(c.Echoes) != 1 {
			t.Fatalf("messages/echoes = %d/%d", len(c.Messages), len(c.Echoes))
		}
		m := &c.Echoes[0]
		wantMessage(t, m, "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA", 1739321024, "text", MessageTypeText,
			"Here's the info you requested! https://www.meta.com/quest/quest-3/")
		if m.From != fxDisplay || m.To != fxCustomer || !m.IsEcho || m.Origin != OriginBusinessApp || m.Direction != DirectionOutbound {
			t.Errorf("echo = from %q to %q echo %v origin %q direction %q", m.From, m.To, m.IsEcho, m.Origin, m.Direction)
		}
	},
	"status_sent.json": func(t *testing.T) {
		s := onlyStatus(t, "status_sent.json")
		wantStatus(t, s, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", StatusSent, 1750030073)
		if !reflect.DeepEqual(s.Conversation, &Conversation{ID: "72b14d6bd5407799e66f64d1b338e567", ExpiresAt: unix(1750116480), OriginType: "marketing"}) {
			t.Errorf("Conversation = %+v", s.Conversation)
		}
		if !reflect.DeepEqual(s.Pricing, &Pricing{Billable: true, PricingModel: "PMP", Type: "regular", Category: "marketing"}) {
			t.Errorf("Pricing = %+v", s.Pricing)
		}
	},
	"status_delivered.json": func(t *testing.T) {
		s := onlyStatus(t, "status_delivered.json")
		wantStatus(t, s, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA", StatusDelivered, 1750263773)
		if !reflect.DeepEqual(s.Pricing, &Pricing{Billable: true, PricingModel: "CBP", Category: "service"}) {
			t.Errorf("Pricing = %+v", s.Pricing)
		}
		if s.Conversation == nil || s.Conversation.OriginType != "service" || !s.Conversation.ExpiresAt.IsZero() {
			t.Errorf("Conversation = %+v", s.Conversation)
		}
	},
	"status_read.json": func(t *testing.T) {
		s := onlyStatus(t, "status_read.json")
		wantStatus(t, s, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", StatusRead, 1750030201)
		if s.Pricing != nil || s.Conversation != nil || s.Errors != nil {
			t.Errorf("unexpected extras: %+v", s)
		}
	},
	"status_failed.json": func(t *testing.T) {
		s := onlyStatus(t, "status_failed.json")
		wantStatus(t, s, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA", StatusFailed, 1751142888)
		want := []Error{{Code: 131049, Title: "This message was not delivered to maintain healthy ecosystem engagement.",
			Message: "This message was not delivered to maintain healthy ecosystem engagement.",
			Details: "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
			Href:    "/documentation/business-messaging/whatsapp/support/error-codes"}}
		if !reflect.DeepEqual(s.Errors, want) {
			t.Errorf("Errors = %+v", s.Errors)
		}
	},
	"status_failed_131047.json": func(t *testing.T) {
		s := onlyStatus(t, "status_failed_131047.json")
		wantStatus(t, s, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA", StatusFailed, 1751142888)
		if len(s.Errors) != 1 || s.Errors[0].Code != CodeReengagementMessage || s.Errors[0].Title != "Re-engagement message" ||
			s.Errors[0].Details != "More than 24 hours have passed since the recipient last replied to the sender number." {
			t.Errorf("Errors = %+v", s.Errors)
		}
	},
	"message_template_status_update_approved.json": func(t *testing.T) {
		u := onlyTemplateUpdate(t, "message_template_status_update_approved.json")
		want := TemplateStatusUpdate{Event: "APPROVED", TemplateID: "1689556908129832", Name: "order_confirmation",
			Language: "en-US", Reason: "NONE", Category: "UTILITY", Time: unix(1751247548), Raw: u.Raw}
		if !reflect.DeepEqual(u, want) {
			t.Errorf("update = %+v", u)
		}
	},
	"message_template_status_update_rejected.json": func(t *testing.T) {
		u := onlyTemplateUpdate(t, "message_template_status_update_rejected.json")
		want := TemplateStatusUpdate{Event: "REJECTED", TemplateID: "1689556908129835", Name: "abandoned_cart",
			Language: "en", Reason: "INVALID_FORMAT", Category: "MARKETING", Time: unix(1751247548), Raw: u.Raw,
			RejectionReason:         "Your template has parameters placed next to each other (like {{1}}{{2}}) without text or punctuation between them.",
			RejectionRecommendation: "Separate parameters with descriptive text and ensure each parameter is clearly contextualized."}
		if !reflect.DeepEqual(u, want) {
			t.Errorf("update = %+v", u)
		}
	},
	"calls_connect.json": func(t *testing.T) {
		c := onlyChange(t, parseFixture(t, "calls_connect.json"), FieldCalls)
		if len(c.Calls) != 1 || len(c.Contacts) != 1 {
			t.Fatalf("calls/contacts = %d/%d", len(c.Calls), len(c.Contacts))
		}
		call := c.Calls[0]
		if call.ID != "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh" || call.Event != "connect" || call.From != fxCustomer ||
			call.To != fxDisplay || call.Direction != "USER_INITIATED" || !call.Timestamp.Equal(unix(1671644824)) ||
			call.SDPType != "offer" || !strings.HasPrefix(call.SDP, "v=0\r\n") || call.Duration != 0 {
			t.Errorf("call = %+v", call)
		}
	},
	"calls_terminate.json": func(t *testing.T) {
		c := onlyChange(t, parseFixture(t, "calls_terminate.json"), FieldCalls)
		if len(c.Calls) != 1 {
			t.Fatalf("calls = %d", len(c.Calls))
		}
		call := c.Calls[0]
		if call.Event != "terminate" || call.Status != "COMPLETED" || call.Duration != 120*time.Second ||
			!call.StartTime.Equal(unix(1671644824)) || !call.EndTime.Equal(unix(1671644944)) || !call.Timestamp.Equal(unix(1671644944)) {
			t.Errorf("call = %+v", call)
		}
	},
}

func onlyStatus(t *testing.T, name string) *Status {
	t.Helper()
	c := onlyChange(t, parseFixture(t, name), FieldMessages)
	if len(c.Statuses) != 1 || len(c.Messages) != 0 {
		t.Fatalf("statuses/messages = %d/%d", len(c.Statuses), len(c.Messages))
	}
	s := &c.Statuses[0]
	if s.RecipientID != fxCustomer {
		t.Errorf("RecipientID = %q", s.RecipientID)
	}
	if !json.Valid(s.Raw) || !strings.Contains(string(s.Raw), s.ID) {
		t.Errorf("Raw = %s", s.Raw)
	}
	return s
}

func wantStatus(t *testing.T, s *Status, id, status string, ts int64) {
	t.Helper()
	if s.ID != id || s.Status != status || !s.Timestamp.Equal(unix(ts)) {
		t.Errorf("status = %q %q %v, want %q %q %v", s.ID, s.Status, s.Timestamp, id, status, unix(ts))
	}
}

func onlyTemplateUpdate(t *testing.T, name string) TemplateStatusUpdate {
	t.Helper()
	c := onlyChange(t, parseFixture(t, name), FieldMessageTemplateStatusUpdate)
	if len(c.TemplateUpdates) != 1 || c.PhoneNumberID != "" {
		t.Fatalf("updates = %d, phone %q", len(c.TemplateUpdates), c.PhoneNumberID)
	}
	u := c.TemplateUpdates[0]
	if !json.Valid(u.Raw) {
		t.Errorf("Raw = %s", u.Raw)
	}
	return u
}

func TestParseWebhookFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		check, ok := webhookFixtureTests[name]
		if !ok {
			t.Errorf("fixture %s has no assertions", name)
			continue
		}
		t.Run(strings.TrimSuffix(name, ".json"), check)
	}
	if len(files) != len(webhookFixtureTests) {
		t.Errorf("%d fixtures, %d tests", len(files), len(webhookFixtureTests))
	}
}

func TestParseWebhookRawIsVerbatim(t *testing.T) {
	body := readFixture(t, "webhooks", "location.json")
	w, err := ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	raw := w.Entries[0].Changes[0].Messages[0].Raw
	if !strings.Contains(string(body), string(raw)) {
		t.Errorf("Raw is not a verbatim slice of the body:\n%s", raw)
	}
}

func TestParseWebhookRejects(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		notWA   bool
		wantErr bool
	}{
		{"empty", ``, false, true},
		{"not json", `hello`, false, true},
		{"array", `[]`, false, true},
		{"missing object", `{"entry":[]}`, true, true},
		{"wrong object", `{"object":"page","entry":[]}`, true, true},
		{"entry not array", `{"object":"whatsapp_business_account","entry":{}}`, false, true},
		{"messages not array", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":"x"}}]}]}`, false, true},
		{"truncated", `{"object":"whatsapp_business_account","entry":[`, false, true},
		{"minimal", `{"object":"whatsapp_business_account"}`, false, false},
		{"unknown fields", `{"object":"whatsapp_business_account","new":1,"entry":[{"id":"1","changes":[{"field":"account_update","value":{"event":"X"}}]}]}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWebhook([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrNotWhatsAppWebhook) != tt.notWA {
				t.Errorf("errors.Is(ErrNotWhatsAppWebhook) = %v", !tt.notWA)
			}
			if err == nil && w == nil {
				t.Error("nil webhook without error")
			}
		})
	}
}

func TestParseWebhookUnknownField(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"42","time":1751247548,"changes":[{"field":"account_update","value":{"event":"VERIFIED_ACCOUNT"}}]}]}`
	w, err := ParseWebhook([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	c := w.Changes()[0]
	if c.Field != "account_update" || c.WABAID != "42" || string(c.Value) != `{"event":"VERIFIED_ACCOUNT"}` {
		t.Errorf("change = %+v", c)
	}
	if !w.Entries[0].Time.Equal(unix(1751247548)) {
		t.Errorf("entry time = %v", w.Entries[0].Time)
	}
}

func TestParseWebhookLenientValues(t *testing.T) {
	// Numbers where strings are usual, bad timestamps, unknown message types,
	// a status/array call status and a numeric-string location.
	body := `{"object":"whatsapp_business_account","entry":[{"id":102290129340398,"changes":[
	 {"field":"messages","value":{"metadata":{"phone_number_id":106540352242922},
	  "contacts":[{"profile":{"name":"A"},"wa_id":16505551234}],
	  "messages":[
	   {"from":16505551234,"id":"m1","timestamp":"not-a-time","type":"request_welcome"},
	   {"from":"16505551234","id":"m2","timestamp":1750000000,"type":"location","location":{"latitude":"1.5","longitude":"-2"}},
	   {"from":"16505551234","id":"m3","timestamp":"1750000000","type":"reaction","reaction":{"message_id":"x","emoji":""}},
	   {"from":"16505551234","id":"m4","timestamp":"1750000000","type":"image"}
	  ]}},
	 {"field":"calls","value":{"calls":[{"id":"c","status":["FAILED","COMPLETED"],"duration":"7"}]}}]}]}`
	w, err := ParseWebhook([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	ch := w.Changes()
	if ch[0].WABAID != "102290129340398" || ch[0].PhoneNumberID != "106540352242922" {
		t.Errorf("ids = %q %q", ch[0].WABAID, ch[0].PhoneNumberID)
	}
	msgs := ch[0].Messages
	if m := msgs[0]; m.From != "16505551234" || !m.Timestamp.IsZero() || m.MessageType != MessageTypeText ||
		m.Content != "[Unsupported message]" || m.MessageTypeData["meta_type"] != "request_welcome" || m.ProfileName != "A" {
		t.Errorf("unknown type = %+v", m)
	}
	if m := msgs[1]; m.Content != "Location: (1.5, -2)" || !m.Timestamp.Equal(unix(1750000000)) {
		t.Errorf("location = %q %v", m.Content, m.Timestamp)
	}
	if m := msgs[2]; m.Content != "[Reaction removed]" || m.MessageTypeData["reaction_emoji"] != "" {
		t.Errorf("reaction removal = %+v", m)
	}
	if m := msgs[3]; m.Content != "Image attached" || m.Media != nil {
		t.Errorf("image without object = %+v", m)
	}
	if c := ch[1].Calls[0]; c.Status != "FAILED" || c.Duration != 7*time.Second {
		t.Errorf("call = %+v", c)
	}
}

func TestStatusRank(t *testing.T) {
	order := []string{"", StatusPending, StatusSent, StatusDelivered, StatusFailed, StatusRead, StatusPlayed, StatusDeleted}
	for i := 1; i < len(order); i++ {
		if StatusRank(order[i-1]) >= StatusRank(order[i]) {
			t.Errorf("StatusRank(%q) >= StatusRank(%q)", order[i-1], order[i])
		}
	}
	if StatusRank("READ") != StatusRank(StatusRead) || StatusRank("warning") != 0 {
		t.Error("case-insensitivity or unknown rank wrong")
	}
	// A late "delivered" must not override "failed".
	if StatusRank(StatusDelivered) > StatusRank(StatusFailed) {
		t.Error("delivered outranks failed")
	}
}

func FuzzParseWebhook(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		f.Add(readFixture(f, "webhooks", filepath.Base(file)))
	}
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"type":"interactive","interactive":{"type":"nfm_reply","nfm_reply":{"response_json":"{"}}}]}}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"timestamp":"1e308"}]}}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"m","type":"text","text":{"body":"a\u0000b"}}]}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := ParseWebhook(body)
		if err != nil {
			if w != nil {
				t.Fatal("webhook returned with error")
			}
			return
		}
		if w.Object != ObjectWhatsAppBusinessAccount {
			t.Fatalf("accepted object %q", w.Object)
		}
		for _, c := range w.Changes() {
			for _, m := range append(append([]InboundMessage{}, c.Messages...), c.Echoes...) {
				if !json.Valid(m.Raw) {
					t.Fatalf("invalid Raw %q", m.Raw)
				}
				// What is stored must be storable on PostgreSQL: valid
				// UTF-8 without NUL, escaped or not.
				var raw any
				_ = json.Unmarshal(m.Raw, &raw)
				for _, s := range []string{string(m.Raw), m.Content, m.ProfileName} {
					if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || hasNUL(raw) {
						t.Fatalf("unstorable text %q", s)
					}
				}
				if m.MessageTypeData == nil {
					t.Fatalf("bad rendering %+v", m)
				}
				if _, err := json.Marshal(m.MessageTypeData); err != nil {
					t.Fatalf("MessageTypeData not encodable: %v", err)
				}
				if !kapsoTypes[m.MessageType] {
					t.Fatalf("MessageType %q outside Kapso's enum", m.MessageType)
				}
			}
		}
	})
}

var kapsoTypes = map[string]bool{
	MessageTypeText: true, MessageTypeImage: true, MessageTypeVideo: true, MessageTypeAudio: true,
	MessageTypeDocument: true, MessageTypeTemplate: true, MessageTypeLocation: true,
	MessageTypeInteractive: true, MessageTypeReaction: true, MessageTypeContacts: true,
}

// NUL characters and invalid UTF-8 (PostgreSQL text cannot hold them) are
// read as U+FFFD, so a customer's message cannot make a whole webhook
// unstorable; an escaped backslash followed by "u0000" is plain text.
func TestParseWebhookUnstorableText(t *testing.T) {
	body := []byte("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"messages\",\"value\":{" +
		"\"metadata\":{\"phone_number_id\":\"2\"},\"contacts\":[{\"wa_id\":\"16505551234\",\"profile\":{\"name\":\"A\\u0000B\"}}]," +
		"\"messages\":[{\"from\":\"16505551234\",\"id\":\"m1\",\"type\":\"text\",\"text\":{\"body\":\"x\\u0000y \\\\u0000 \xff z\"}}]}}]}]}")
	w, err := ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	m := w.Changes()[0].Messages[0]
	if want := "x\uFFFDy \\u0000 \uFFFD z"; m.Content != want {
		t.Errorf("content = %q, want %q", m.Content, want)
	}
	if m.ProfileName != "A\uFFFDB" {
		t.Errorf("profile name = %q", m.ProfileName)
	}
	if bytes.Contains(m.Raw, []byte(`"x\u0000`)) || !utf8.Valid(m.Raw) || !json.Valid(m.Raw) {
		t.Errorf("raw = %s", m.Raw)
	}
}

// hasNUL reports whether a decoded JSON value holds a NUL character in a
// string or a key.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		return slices.ContainsFunc(v, hasNUL)
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	}
	return false
}
