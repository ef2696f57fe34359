package whatsapp

import (
	"encoding/json"
	"time"
)

// Kapso message_type values (the WhatsappMessage.message_type enum of
// Kapso's v1 API). Meta types outside this enum are mapped onto the nearest
// value by [ParseWebhook]; see [InboundMessage.MessageType].
const (
	MessageTypeText        = "text"
	MessageTypeImage       = "image"
	MessageTypeVideo       = "video"
	MessageTypeAudio       = "audio"
	MessageTypeDocument    = "document"
	MessageTypeTemplate    = "template"
	MessageTypeLocation    = "location"
	MessageTypeInteractive = "interactive"
	MessageTypeReaction    = "reaction"
	MessageTypeContacts    = "contacts"
)

// InboundMessage is one message from a webhook: a customer message (field
// "messages") or an echo of a message the business sent from the WhatsApp
// Business app (field "smb_message_echoes").
type InboundMessage struct {
	// ID is the WhatsApp message ID (wamid.…).
	ID string
	// From is the sender: the customer's wa_id for customer messages, the
	// business display number for echoes.
	From string
	// To is the recipient. Meta sets it only on echoes (the customer).
	To string
	// IsEcho reports that the business sent this message from the WhatsApp
	// Business app; it is outbound and From is the business.
	IsEcho bool
	// Origin is OriginCloudAPI for customer messages and
	// OriginBusinessApp for echoes (Kapso's kapso.origin).
	Origin string
	// Direction is DirectionInbound, or DirectionOutbound for echoes.
	Direction string
	// Timestamp is the message time (Meta's Unix-seconds string) in UTC;
	// zero when absent or malformed.
	Timestamp time.Time
	// Type is Meta's message type ("text", "sticker", "button", "order",
	// "system", "unsupported", ...).
	Type string
	// Context is set when the message replies to, or was sent from, another
	// message (quoted reply, button tap, product inquiry, forwards).
	Context *MessageContext
	// Referral is set for messages started from a Click-to-WhatsApp ad or
	// post.
	Referral *Referral
	// Errors holds messages[].errors (e.g. 131051 for unsupported types).
	Errors []Error
	// Raw is the whole Meta message object, byte for byte as received
	// (except for NUL escapes and invalid UTF-8; see [ParseWebhook]).
	Raw json.RawMessage
	// ProfileName is the customer's profile name, resolved from the
	// change's contacts (for echoes: the recipient's name, when given).
	ProfileName string

	// MessageType is Kapso's message_type, always one of the MessageType*
	// constants. Meta types without a Kapso equivalent are mapped:
	//
	//	sticker                          -> image       (media kept in Media)
	//	button (template quick reply)    -> interactive (interactive_type "button")
	//	order, system, unsupported,
	//	and any unknown type             -> text
	//
	// Whenever MessageType differs from Type, MessageTypeData["meta_type"]
	// holds the Meta type, so nothing is lost.
	MessageType string
	// Content is Kapso's human-readable rendering (kapso.content): the text
	// body, "Image attached (caption)", "Location: name, address (lat,
	// long)", the tapped button/row title, the reaction emoji, contact
	// names, an order summary, a system notice, or "[Unsupported message]".
	Content string
	// MessageTypeData is Kapso's message_type_data for this message, e.g.
	// {"caption","media_id","mime_type"} for images or
	// {"interactive_type","reply_option_id","reply_option_title"} for
	// interactive replies. Empty optional values are omitted.
	MessageTypeData map[string]any
	// Media describes the attachment of image, audio, video, document and
	// sticker messages; nil otherwise.
	Media *MediaRef
}

// ReplyToID returns the ID of the message this one replies to, or "".
func (m *InboundMessage) ReplyToID() string {
	if m == nil || m.Context == nil {
		return ""
	}
	return m.Context.ID
}

// MessageContext is a message's "context" object.
type MessageContext struct {
	// ID is the wamid of the message being replied to (or whose button was
	// tapped).
	ID string
	// From is the sender of the referenced message.
	From string
	// Forwarded reports a forwarded message.
	Forwarded bool
	// FrequentlyForwarded reports a message forwarded more than five times.
	FrequentlyForwarded bool
	// ReferredProduct is set when the customer asked about a catalog
	// product.
	ReferredProduct *ReferredProduct
}

// ReferredProduct identifies a catalog product a message refers to.
type ReferredProduct struct {
	// CatalogID is the catalog's ID.
	CatalogID string
	// ProductRetailerID is the product's retailer ID (SKU).
	ProductRetailerID string
}

// Referral describes the ad or post a conversation was started from.
type Referral struct {
	// SourceURL is the URL of the ad or post.
	SourceURL string
	// SourceID is the ad or post ID.
	SourceID string
	// SourceType is "ad" or "post".
	SourceType string
	// Body is the ad's body text.
	Body string
	// Headline is the ad's headline.
	Headline string
	// MediaType is "image" or "video".
	MediaType string
	// ImageURL is the ad image URL, when MediaType is "image".
	ImageURL string
	// VideoURL is the ad video URL, when MediaType is "video".
	VideoURL string
	// ThumbnailURL is the video thumbnail URL.
	ThumbnailURL string
	// CTWAClickID is the Click-to-WhatsApp click ID (ctwa_clid).
	CTWAClickID string
	// WelcomeMessage is the ad's welcome message text, when set.
	WelcomeMessage string
}

// MediaRef describes a media attachment. Fetch the bytes with
// [Client.GetMedia] (for a fresh URL) and [Client.DownloadMedia].
type MediaRef struct {
	// ID is the Meta media ID.
	ID string
	// MimeType is the attachment's MIME type.
	MimeType string
	// SHA256 is the checksum Meta reports (base64 in webhooks).
	SHA256 string
	// Filename is the original file name (documents only).
	Filename string
	// Caption is the media caption, when any.
	Caption string
	// URL is the download URL Meta included, if any; it needs the access
	// token and expires quickly.
	URL string
	// Voice reports a voice note (audio recorded in WhatsApp).
	Voice bool
	// Animated reports an animated sticker.
	Animated bool
}

// wireMessage is the Meta message object as far as this package reads it.
type wireMessage struct {
	From      flexString `json:"from"`
	To        flexString `json:"to"`
	ID        string     `json:"id"`
	Timestamp flexString `json:"timestamp"`
	Type      string     `json:"type"`
	Context   *struct {
		From                string `json:"from"`
		ID                  string `json:"id"`
		Forwarded           bool   `json:"forwarded"`
		FrequentlyForwarded bool   `json:"frequently_forwarded"`
		ReferredProduct     *struct {
			CatalogID         flexString `json:"catalog_id"`
			ProductRetailerID flexString `json:"product_retailer_id"`
		} `json:"referred_product"`
	} `json:"context"`
	Referral *struct {
		SourceURL      string `json:"source_url"`
		SourceID       string `json:"source_id"`
		SourceType     string `json:"source_type"`
		Body           string `json:"body"`
		Headline       string `json:"headline"`
		MediaType      string `json:"media_type"`
		ImageURL       string `json:"image_url"`
		VideoURL       string `json:"video_url"`
		ThumbnailURL   string `json:"thumbnail_url"`
		CTWAClid       string `json:"ctwa_clid"`
		WelcomeMessage *struct {
			Text string `json:"text"`
		} `json:"welcome_message"`
	} `json:"referral"`
	Errors []wireError `json:"errors"`

	Text *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *wireMedia `json:"image"`
	Video    *wireMedia `json:"video"`
	Audio    *wireMedia `json:"audio"`
	Document *wireMedia `json:"document"`
	Sticker  *wireMedia `json:"sticker"`
	Location *struct {
		Latitude  flexFloat `json:"latitude"`
		Longitude flexFloat `json:"longitude"`
		Name      string    `json:"name"`
		Address   string    `json:"address"`
		URL       string    `json:"url"`
	} `json:"location"`
	Contacts []map[string]any `json:"contacts"`
	Button   *struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
	Interactive *wireInteractive `json:"interactive"`
	Reaction    *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	Order *struct {
		CatalogID    flexString `json:"catalog_id"`
		Text         string     `json:"text"`
		ProductItems []struct {
			ProductRetailerID flexString `json:"product_retailer_id"`
			Quantity          flexFloat  `json:"quantity"`
			ItemPrice         flexFloat  `json:"item_price"`
			Currency          string     `json:"currency"`
		} `json:"product_items"`
	} `json:"order"`
	System *struct {
		Body     string     `json:"body"`
		Type     string     `json:"type"`
		WaID     flexString `json:"wa_id"`
		Customer flexString `json:"customer"`
		Identity string     `json:"identity"`
	} `json:"system"`
	Unsupported *struct {
		Type string `json:"type"`
	} `json:"unsupported"`
}

type wireMedia struct {
	ID       flexString `json:"id"`
	MimeType string     `json:"mime_type"`
	SHA256   string     `json:"sha256"`
	Caption  string     `json:"caption"`
	Filename string     `json:"filename"`
	URL      string     `json:"url"`
	Voice    bool       `json:"voice"`
	Animated bool       `json:"animated"`
}

type wireInteractive struct {
	Type        string `json:"type"`
	ButtonReply *struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"button_reply"`
	ListReply *struct {
		ID          string `json:"id"`
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"list_reply"`
	NfmReply *struct {
		Name         string `json:"name"`
		Body         string `json:"body"`
		ResponseJSON string `json:"response_json"`
	} `json:"nfm_reply"`
	CallPermissionReply *struct {
		Response            string     `json:"response"`
		IsPermanent         bool       `json:"is_permanent"`
		ExpirationTimestamp flexString `json:"expiration_timestamp"`
		ResponseSource      string     `json:"response_source"`
	} `json:"call_permission_reply"`
}

func parseMessage(raw json.RawMessage, echo bool) (InboundMessage, error) {
	var w wireMessage
	if err := json.Unmarshal(raw, &w); err != nil {
		return InboundMessage{}, err
	}
	m := InboundMessage{
		ID:        w.ID,
		From:      string(w.From),
		To:        string(w.To),
		IsEcho:    echo,
		Origin:    OriginCloudAPI,
		Direction: DirectionInbound,
		Timestamp: unixTime(w.Timestamp),
		Type:      w.Type,
		Errors:    convertErrors(w.Errors),
		Raw:       raw,
	}
	if echo {
		m.Origin = OriginBusinessApp
		m.Direction = DirectionOutbound
	}
	if c := w.Context; c != nil {
		m.Context = &MessageContext{ID: c.ID, From: c.From, Forwarded: c.Forwarded, FrequentlyForwarded: c.FrequentlyForwarded}
		if p := c.ReferredProduct; p != nil {
			m.Context.ReferredProduct = &ReferredProduct{CatalogID: string(p.CatalogID), ProductRetailerID: string(p.ProductRetailerID)}
		}
	}
	if r := w.Referral; r != nil {
		m.Referral = &Referral{
			SourceURL: r.SourceURL, SourceID: r.SourceID, SourceType: r.SourceType,
			Body: r.Body, Headline: r.Headline, MediaType: r.MediaType,
			ImageURL: r.ImageURL, VideoURL: r.VideoURL, ThumbnailURL: r.ThumbnailURL,
			CTWAClickID: r.CTWAClid,
		}
		if r.WelcomeMessage != nil {
			m.Referral.WelcomeMessage = r.WelcomeMessage.Text
		}
	}
	render(&w, &m)
	return m, nil
}
