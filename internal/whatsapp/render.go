package whatsapp

import (
	"encoding/json"
	"math"
	"strings"
)

// unsupportedContent is the Content of messages Parley cannot render.
const unsupportedContent = "[Unsupported message]"

// render fills m's Kapso fields (MessageType, Content, MessageTypeData,
// Media) from the decoded Meta message.
func render(w *wireMessage, m *InboundMessage) {
	d := map[string]any{}
	switch w.Type {
	case "text":
		m.MessageType = MessageTypeText
		if w.Text != nil {
			m.Content = w.Text.Body
		}
		d["text"] = m.Content
	case "image", "video", "audio", "document", "sticker":
		renderMedia(w, m, d)
	case "location":
		renderLocation(w, m, d)
	case "contacts":
		m.MessageType = MessageTypeContacts
		m.Content = contactsContent(w.Contacts)
		contacts := w.Contacts
		if contacts == nil {
			contacts = []map[string]any{}
		}
		d["contacts"] = contacts
	case "button":
		m.MessageType = MessageTypeInteractive
		d["interactive_type"] = "button"
		if b := w.Button; b != nil {
			m.Content = firstNonEmpty(b.Text, b.Payload)
			putString(d, "reply_option_id", b.Payload)
			putString(d, "reply_option_title", b.Text)
		}
	case "interactive":
		renderInteractive(w.Interactive, m, d)
	case "reaction":
		m.MessageType = MessageTypeReaction
		var emoji, target string
		if r := w.Reaction; r != nil {
			emoji, target = r.Emoji, r.MessageID
		}
		d["reaction_emoji"] = emoji
		d["reacted_to_message_id"] = target
		m.Content = emoji
		if emoji == "" {
			m.Content = "[Reaction removed]"
		}
	case "order":
		renderOrder(w, m, d)
	case "system":
		m.MessageType = MessageTypeText
		m.Content = "[System message]"
		if s := w.System; s != nil {
			m.Content = firstNonEmpty(s.Body, m.Content)
			putString(d, "system_type", s.Type)
			putString(d, "body", s.Body)
			putString(d, "wa_id", string(s.WaID))
			putString(d, "customer", string(s.Customer))
			putString(d, "identity", s.Identity)
		}
	case "unsupported":
		m.MessageType = MessageTypeText
		m.Content = unsupportedContent
		if u := w.Unsupported; u != nil {
			putString(d, "unsupported_type", u.Type)
		}
	default:
		m.MessageType = MessageTypeText
		m.Content = unsupportedContent
	}
	if m.MessageType != w.Type && w.Type != "" {
		d["meta_type"] = w.Type
	}
	m.MessageTypeData = d
}

func renderMedia(w *wireMessage, m *InboundMessage, d map[string]any) {
	var media *wireMedia
	label := ""
	switch w.Type {
	case "image":
		media, label, m.MessageType = w.Image, "Image", MessageTypeImage
	case "video":
		media, label, m.MessageType = w.Video, "Video", MessageTypeVideo
	case "audio":
		media, label, m.MessageType = w.Audio, "Audio", MessageTypeAudio
	case "document":
		media, label, m.MessageType = w.Document, "Document", MessageTypeDocument
	case "sticker":
		// Kapso's enum has no sticker: it is an image to Kapso clients.
		media, label, m.MessageType = w.Sticker, "Sticker", MessageTypeImage
	}
	content := label + " attached"
	if media == nil {
		m.Content = content
		return
	}
	m.Media = &MediaRef{
		ID: string(media.ID), MimeType: media.MimeType, SHA256: media.SHA256,
		Filename: media.Filename, Caption: media.Caption, URL: media.URL,
		Voice: media.Voice, Animated: media.Animated,
	}
	putString(d, "media_id", string(media.ID))
	putString(d, "mime_type", media.MimeType)
	if w.Type != "audio" && w.Type != "sticker" {
		putString(d, "caption", media.Caption)
	}
	if w.Type == "document" {
		putString(d, "filename", media.Filename)
	}
	if media.Voice {
		d["voice"] = true
	}
	if media.Animated {
		d["animated"] = true
	}
	switch {
	case media.Filename != "" && media.Caption != "":
		content += " (" + media.Filename + "): " + media.Caption
	case media.Filename != "":
		content += " (" + media.Filename + ")"
	case media.Caption != "":
		content += " (" + media.Caption + ")"
	}
	m.Content = content
}

func renderLocation(w *wireMessage, m *InboundMessage, d map[string]any) {
	m.MessageType = MessageTypeLocation
	loc := w.Location
	if loc == nil {
		m.Content = "Location"
		return
	}
	lat, long := float64(loc.Latitude), float64(loc.Longitude)
	d["latitude"] = lat
	d["longitude"] = long
	putString(d, "location_name", loc.Name)
	putString(d, "location_address", loc.Address)
	putString(d, "url", loc.URL)
	var parts []string
	for _, p := range []string{loc.Name, loc.Address} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	coords := "(" + formatFloat(lat) + ", " + formatFloat(long) + ")"
	if len(parts) == 0 {
		m.Content = "Location: " + coords
		return
	}
	m.Content = "Location: " + strings.Join(parts, ", ") + " " + coords
}

func renderInteractive(in *wireInteractive, m *InboundMessage, d map[string]any) {
	m.MessageType = MessageTypeInteractive
	if in == nil {
		m.Content = unsupportedContent
		return
	}
	switch {
	case in.Type == "button_reply" || (in.Type == "" && in.ButtonReply != nil):
		d["interactive_type"] = "button"
		if r := in.ButtonReply; r != nil {
			putString(d, "reply_option_id", r.ID)
			putString(d, "reply_option_title", r.Title)
			m.Content = r.Title
		}
	case in.Type == "list_reply" || (in.Type == "" && in.ListReply != nil):
		d["interactive_type"] = "list"
		if r := in.ListReply; r != nil {
			putString(d, "reply_option_id", r.ID)
			putString(d, "reply_option_title", r.Title)
			putString(d, "reply_option_description", r.Description)
			m.Content = r.Title
		}
	case in.Type == "nfm_reply":
		d["interactive_type"] = "nfm_reply"
		m.Content = "[Flow response]"
		if r := in.NfmReply; r != nil {
			putString(d, "flow_name", r.Name)
			putString(d, "body_text", r.Body)
			putString(d, "flow_response_json", r.ResponseJSON)
			var resp map[string]any
			if json.Unmarshal([]byte(r.ResponseJSON), &resp) == nil && resp != nil {
				d["flow_response"] = resp
				if tok, ok := resp["flow_token"].(string); ok {
					putString(d, "flow_token", tok)
				}
			}
			m.Content = firstNonEmpty(r.Body, m.Content)
		}
	case in.Type == "call_permission_reply":
		d["interactive_type"] = "call_permission_reply"
		m.Content = "Call permission reply"
		if r := in.CallPermissionReply; r != nil {
			putString(d, "call_permission_response", r.Response)
			d["is_permanent"] = r.IsPermanent
			putString(d, "response_source", r.ResponseSource)
			if t := unixTime(r.ExpirationTimestamp); !t.IsZero() {
				d["expiration_timestamp"] = t.Unix()
			}
			switch strings.ToLower(r.Response) {
			case "accept":
				m.Content = "Call permission accepted"
			case "reject":
				m.Content = "Call permission rejected"
			}
			if r.IsPermanent {
				m.Content += " (permanent)"
			}
		}
	default:
		putString(d, "interactive_type", in.Type)
		m.Content = unsupportedContent
	}
}

func renderOrder(w *wireMessage, m *InboundMessage, d map[string]any) {
	// Kapso's enum has no order type; the summary is readable text.
	m.MessageType = MessageTypeText
	o := w.Order
	if o == nil {
		m.Content = "Order"
		return
	}
	putString(d, "catalog_id", string(o.CatalogID))
	putString(d, "order_text", o.Text)
	items := make([]map[string]any, 0, len(o.ProductItems))
	lines := make([]string, 0, len(o.ProductItems))
	total, currency, mixed := 0.0, "", false
	for _, it := range o.ProductItems {
		qty, price := float64(it.Quantity), float64(it.ItemPrice)
		items = append(items, map[string]any{
			"product_retailer_id": string(it.ProductRetailerID),
			"quantity":            qty,
			"item_price":          price,
			"currency":            it.Currency,
		})
		lines = append(lines, formatFloat(qty)+" x "+string(it.ProductRetailerID))
		total += qty * price
		if currency == "" {
			currency = it.Currency
		} else if it.Currency != currency {
			mixed = true
		}
	}
	d["product_items"] = items
	content := "Order"
	if len(lines) > 0 {
		content += ": " + strings.Join(lines, ", ")
	}
	if len(items) > 0 && !mixed && currency != "" {
		total = math.Round(total*100) / 100
		d["total"] = total
		d["currency"] = currency
		content += " (total " + formatFloat(total) + " " + currency + ")"
	}
	if o.Text != "" {
		content += " - " + o.Text
	}
	m.Content = content
}

func contactsContent(cards []map[string]any) string {
	names := make([]string, 0, len(cards))
	for _, c := range cards {
		if n := contactCardName(c); n != "" {
			names = append(names, n)
		}
	}
	switch {
	case len(names) == 0:
		return "Contact shared"
	case len(names) == 1:
		return "Contact: " + names[0]
	default:
		return "Contacts: " + strings.Join(names, ", ")
	}
}

func contactCardName(c map[string]any) string {
	if name, ok := c["name"].(map[string]any); ok {
		if s, _ := name["formatted_name"].(string); s != "" {
			return s
		}
		first, _ := name["first_name"].(string)
		last, _ := name["last_name"].(string)
		if s := strings.TrimSpace(first + " " + last); s != "" {
			return s
		}
	}
	if phones, ok := c["phones"].([]any); ok {
		for _, p := range phones {
			if pm, ok := p.(map[string]any); ok {
				if s, _ := pm["phone"].(string); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

func putString(d map[string]any, key, value string) {
	if value != "" {
		d[key] = value
	}
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
