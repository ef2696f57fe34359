package messaging

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
)

// Outbound is a validated message to send: Kapso's rendering of it (type,
// content, message_type_data, metadata) and the type-specific part of the
// Graph API request (Body: "type", the type object and optionally
// "context"; Send adds messaging_product, recipient_type and to).
//
// ParseMessage builds one from Kapso's request fields; other packages (the
// templates' send_template) may build one directly.
type Outbound struct {
	MessageType     string
	Content         *string
	Body            map[string]any
	MessageTypeData map[string]any
	Metadata        map[string]any
	MediaID         *string
	MediaURL        *string
	MediaFilename   *string
	MediaMimeType   *string
	// reactTo is a Parley message id given as reacted_to_message_id; Send
	// replaces it with that message's wamid.
	reactTo string
}

// MessageTypes are the message_type values Kapso's send endpoints accept.
var MessageTypes = []string{"text", "image", "video", "audio", "document", "template", "location", "interactive", "reaction", "contacts"}

// WhatsApp's documented limits.
const (
	maxTextLen       = 4096
	maxCaptionLen    = 1024
	maxBodyTextLen   = 1024
	maxHeaderTextLen = 60
	maxFooterTextLen = 60
	maxButtons       = 3
	maxButtonTitle   = 20
	maxButtonID      = 256
	maxListButton    = 20
	maxSections      = 10
	maxRows          = 10
	maxSectionTitle  = 24
	maxRowID         = 200
	maxRowTitle      = 24
	maxRowDesc       = 72
	maxContacts      = 257
)

type validator struct {
	f    *api.Fields
	errs []string
	err  error // a type error, reported alone
}

func (v *validator) str(key string) *string {
	s, _, err := v.f.String(key)
	if err != nil && v.err == nil {
		v.err = err
	}
	if s != nil {
		t := strings.TrimSpace(*s)
		if t == "" {
			return nil
		}
	}
	return s
}

func (v *validator) float(key string) *float64 {
	x, _, err := v.f.Float(key)
	if err != nil && v.err == nil {
		v.err = err
	}
	return x
}

func (v *validator) raw(key string, dst any, want string) bool {
	raw, ok := v.f.Raw(key)
	if !ok || string(raw) == "null" {
		return false
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		if v.err == nil {
			v.err = api.TypeErr(key, want)
		}
		return false
	}
	return true
}

func (v *validator) add(format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf(format, args...))
}

func (v *validator) maxLen(label string, s *string, n int) {
	if s != nil && utf8.RuneCountInString(*s) > n {
		v.add("%s is too long (maximum is %d characters)", label, n)
	}
}

// ParseMessage validates Kapso's message fields (the "message" object of
// the send endpoints) into an Outbound. Problems are a 422 listing every
// failed rule.
func ParseMessage(f *api.Fields) (*Outbound, error) {
	v := &validator{f: f}
	mt := "text"
	if s := v.str("message_type"); s != nil {
		mt = strings.ToLower(strings.TrimSpace(*s))
	}
	if v.err != nil {
		return nil, v.err
	}
	if !slices.Contains(MessageTypes, mt) {
		return nil, parley.Invalid("Validation failed", "Message type is not included in the list")
	}
	o := &Outbound{MessageType: mt, Metadata: map[string]any{}}
	content := v.str("content")
	switch mt {
	case "text":
		v.text(o, content)
	case "image", "video", "audio", "document":
		v.media(o, mt, content)
	case "location":
		v.location(o, content)
	case "interactive":
		v.interactive(o, content)
	case "template":
		v.template(o, content)
	case "reaction":
		v.reaction(o)
	case "contacts":
		v.contacts(o, content)
	}
	if v.err != nil {
		return nil, v.err
	}
	if len(v.errs) > 0 {
		return nil, parley.Invalid("Validation failed", v.errs...)
	}
	return o, nil
}

func (v *validator) text(o *Outbound, content *string) {
	if content == nil {
		v.add("Content can't be blank")
		return
	}
	v.maxLen("Content", content, maxTextLen)
	text := map[string]any{"body": *content}
	if strings.Contains(*content, "http://") || strings.Contains(*content, "https://") {
		text["preview_url"] = true
	}
	o.Content = content
	o.Body = map[string]any{"type": "text", "text": text}
	o.MessageTypeData = map[string]any{"text": *content}
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (v *validator) media(o *Outbound, mt string, content *string) {
	mediaURL, mediaID := v.str("media_url"), v.str("media_id")
	caption, filename := v.str("caption"), v.str("filename")
	if v.err != nil {
		return
	}
	switch {
	case mediaURL == nil && mediaID == nil:
		v.add("Media url or media id is required for %s messages", mt)
	case mediaURL != nil && !validURL(*mediaURL):
		v.add("Media url must be a valid http(s) URL")
	}
	if caption == nil && mt != "audio" {
		caption = content // Kapso's quickstart puts the caption in content
	}
	if mt != "audio" {
		v.maxLen("Caption", caption, maxCaptionLen)
	}
	v.maxLen("Filename", filename, 240)
	obj := map[string]any{}
	data := map[string]any{}
	if mediaID != nil {
		obj["id"] = *mediaID
		data["media_id"] = *mediaID
	} else if mediaURL != nil {
		obj["link"] = *mediaURL
	}
	if caption != nil && mt != "audio" {
		obj["caption"] = *caption
		data["caption"] = *caption
	}
	if mt == "document" && filename != nil {
		obj["filename"] = *filename
		data["filename"] = *filename
	}
	o.Body = map[string]any{"type": mt, mt: obj}
	o.MessageTypeData = data
	o.MediaID, o.MediaURL = mediaID, mediaURL
	if mt == "document" {
		o.MediaFilename = filename
	}
	switch {
	case content != nil:
		o.Content = content
	case caption != nil:
		o.Content = caption
	default:
		label := strings.ToUpper(mt[:1]) + mt[1:] + " attached"
		if filename != nil {
			label += " (" + *filename + ")"
		}
		o.Content = &label
	}
}

func (v *validator) location(o *Outbound, content *string) {
	lat, lng := v.float("latitude"), v.float("longitude")
	name, addr := v.str("location_name"), v.str("location_address")
	if name == nil {
		name = v.str("name")
	}
	if addr == nil {
		addr = v.str("address")
	}
	if v.err != nil {
		return
	}
	if lat == nil {
		v.add("Latitude can't be blank")
	} else if *lat < -90 || *lat > 90 {
		v.add("Latitude must be between -90 and 90")
	}
	if lng == nil {
		v.add("Longitude can't be blank")
	} else if *lng < -180 || *lng > 180 {
		v.add("Longitude must be between -180 and 180")
	}
	v.maxLen("Location name", name, 1000)
	v.maxLen("Location address", addr, 1000)
	if lat == nil || lng == nil {
		return
	}
	loc := map[string]any{"latitude": *lat, "longitude": *lng}
	data := map[string]any{"latitude": *lat, "longitude": *lng}
	var parts []string
	if name != nil {
		loc["name"], data["location_name"] = *name, *name
		parts = append(parts, *name)
	}
	if addr != nil {
		loc["address"], data["location_address"] = *addr, *addr
		parts = append(parts, *addr)
	}
	o.Body = map[string]any{"type": "location", "location": loc}
	o.MessageTypeData = data
	if content != nil {
		o.Content = content
	} else {
		coords := "(" + strconv.FormatFloat(*lat, 'f', -1, 64) + ", " + strconv.FormatFloat(*lng, 'f', -1, 64) + ")"
		c := "Location: " + coords
		if len(parts) > 0 {
			c = "Location: " + strings.Join(parts, ", ") + " " + coords
		}
		o.Content = &c
	}
}

type optionIn struct {
	ID          any `json:"id"`
	Title       any `json:"title"`
	Description any `json:"description"`
}

// scalar renders a JSON scalar as a string (Rails casts numbers); ok is
// false for booleans, objects and arrays (decision: only numbers stand in
// for strings).
func scalar(x any) (string, bool) {
	switch t := x.(type) {
	case nil:
		return "", true
	case string:
		return strings.TrimSpace(t), true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	}
	return "", false
}

func (v *validator) interactive(o *Outbound, content *string) {
	itype := v.str("interactive_type")
	body, header, footer, listButton := v.str("body_text"), v.str("header_text"), v.str("footer_text"), v.str("list_button_text")
	var buttons []optionIn
	var sections []struct {
		Title any        `json:"title"`
		Rows  []optionIn `json:"rows"`
	}
	hasButtons := v.raw("buttons", &buttons, "an array of buttons")
	hasSections := v.raw("sections", &sections, "an array of sections")
	if v.err != nil {
		return
	}
	kind := ""
	switch {
	case itype != nil:
		kind = strings.ToLower(*itype)
	case hasSections && !hasButtons:
		kind = "list"
	default:
		kind = "button"
	}
	if kind != "button" && kind != "list" {
		v.add("Interactive type is not included in the list")
		return
	}
	if body == nil {
		body = content
	}
	if body == nil {
		v.add("Body text can't be blank")
	}
	v.maxLen("Body text", body, maxBodyTextLen)
	v.maxLen("Header text", header, maxHeaderTextLen)
	v.maxLen("Footer text", footer, maxFooterTextLen)
	inter := map[string]any{"type": kind}
	data := map[string]any{"interactive_type": kind}
	if body != nil {
		inter["body"] = map[string]any{"text": *body}
		data["body_text"] = *body
	}
	if header != nil {
		inter["header"] = map[string]any{"type": "text", "text": *header}
		data["header_text"] = *header
	}
	if footer != nil {
		inter["footer"] = map[string]any{"text": *footer}
		data["footer_text"] = *footer
	}
	if kind == "button" {
		if len(buttons) < 1 || len(buttons) > maxButtons {
			v.add("Buttons must have between 1 and %d items", maxButtons)
		}
		seen := map[string]bool{}
		var metaButtons, dataButtons []any
		for i, b := range buttons {
			id, okID := scalar(b.ID)
			title, okT := scalar(b.Title)
			if !okID || !okT {
				v.add("Button %d must have a string id and title", i+1)
				continue
			}
			switch {
			case id == "":
				v.add("Button %d id can't be blank", i+1)
			case utf8.RuneCountInString(id) > maxButtonID:
				v.add("Button %d id is too long (maximum is %d characters)", i+1, maxButtonID)
			case seen[id]:
				v.add("Button %d id must be unique", i+1)
			}
			seen[id] = true
			switch {
			case title == "":
				v.add("Button %d title can't be blank", i+1)
			case utf8.RuneCountInString(title) > maxButtonTitle:
				v.add("Button %d title is too long (maximum is %d characters)", i+1, maxButtonTitle)
			}
			metaButtons = append(metaButtons, map[string]any{"type": "reply", "reply": map[string]any{"id": id, "title": title}})
			dataButtons = append(dataButtons, map[string]any{"id": id, "title": title})
		}
		inter["action"] = map[string]any{"buttons": metaButtons}
		data["buttons"] = dataButtons
	} else {
		if listButton == nil {
			v.add("List button text can't be blank")
		}
		v.maxLen("List button text", listButton, maxListButton)
		if len(sections) < 1 || len(sections) > maxSections {
			v.add("Sections must have between 1 and %d items", maxSections)
		}
		rows := 0
		seen := map[string]bool{}
		var metaSections, dataSections []any
		for i, s := range sections {
			title, ok := scalar(s.Title)
			if !ok {
				v.add("Section %d title must be a string", i+1)
			}
			if title == "" && len(sections) > 1 {
				v.add("Section %d title can't be blank when there are several sections", i+1)
			}
			if utf8.RuneCountInString(title) > maxSectionTitle {
				v.add("Section %d title is too long (maximum is %d characters)", i+1, maxSectionTitle)
			}
			if len(s.Rows) == 0 {
				v.add("Section %d must have at least one row", i+1)
			}
			var metaRows, dataRows []any
			for j, r := range s.Rows {
				rows++
				id, okID := scalar(r.ID)
				rt, okT := scalar(r.Title)
				desc, okD := scalar(r.Description)
				if !okID || !okT || !okD {
					v.add("Section %d row %d must have string fields", i+1, j+1)
					continue
				}
				switch {
				case id == "":
					v.add("Section %d row %d id can't be blank", i+1, j+1)
				case utf8.RuneCountInString(id) > maxRowID:
					v.add("Section %d row %d id is too long (maximum is %d characters)", i+1, j+1, maxRowID)
				case seen[id]:
					v.add("Section %d row %d id must be unique", i+1, j+1)
				}
				seen[id] = true
				switch {
				case rt == "":
					v.add("Section %d row %d title can't be blank", i+1, j+1)
				case utf8.RuneCountInString(rt) > maxRowTitle:
					v.add("Section %d row %d title is too long (maximum is %d characters)", i+1, j+1, maxRowTitle)
				}
				if utf8.RuneCountInString(desc) > maxRowDesc {
					v.add("Section %d row %d description is too long (maximum is %d characters)", i+1, j+1, maxRowDesc)
				}
				row := map[string]any{"id": id, "title": rt}
				if desc != "" {
					row["description"] = desc
				}
				metaRows = append(metaRows, row)
				dataRows = append(dataRows, row)
			}
			sec := map[string]any{"rows": metaRows}
			dsec := map[string]any{"rows": dataRows}
			if title != "" {
				sec["title"], dsec["title"] = title, title
			}
			metaSections = append(metaSections, sec)
			dataSections = append(dataSections, dsec)
		}
		if rows > maxRows {
			v.add("Sections must have at most %d rows in total", maxRows)
		}
		action := map[string]any{"sections": metaSections}
		if listButton != nil {
			action["button"] = *listButton
			data["list_button_text"] = *listButton
		}
		inter["action"] = action
		data["sections"] = dataSections
	}
	o.Body = map[string]any{"type": "interactive", "interactive": inter}
	o.MessageTypeData = data
	if content != nil {
		o.Content = content
	} else {
		o.Content = body
	}
}

func (v *validator) template(o *Outbound, content *string) {
	name, lang := v.str("template_name"), v.str("template_language")
	headerType, headerParams, headerFilename := v.str("header_type"), v.str("header_params"), v.str("header_filename")
	var params any
	hasParams := v.raw("template_params", &params, "an array or an object")
	if v.err != nil {
		return
	}
	if name == nil {
		v.add("Template name can't be blank")
		return
	}
	language := "en_US"
	if lang != nil {
		language = *lang
	}
	var components []any
	data := map[string]any{"template_name": *name, "template_language": language}
	// Header media or text given with header_type/header_params.
	if headerType != nil {
		ht := strings.ToLower(*headerType)
		switch ht {
		case "text", "image", "video", "document":
		default:
			v.add("Header type is not included in the list")
			return
		}
		if headerParams == nil {
			v.add("Header params can't be blank when header type is given")
			return
		}
		var p map[string]any
		if ht == "text" {
			p = map[string]any{"type": "text", "text": *headerParams}
		} else {
			media := map[string]any{}
			if validURL(*headerParams) {
				media["link"] = *headerParams
			} else {
				media["id"] = *headerParams
			}
			if ht == "document" && headerFilename != nil {
				media["filename"] = *headerFilename
			}
			p = map[string]any{"type": ht, ht: media}
		}
		components = append(components, map[string]any{"type": "header", "parameters": []any{p}})
		data["header_type"] = ht
		data["header_params"] = *headerParams
		if headerFilename != nil {
			data["header_filename"] = *headerFilename
		}
	}
	if hasParams {
		switch t := params.(type) {
		case []any:
			if len(t) > 0 {
				ps := make([]any, 0, len(t))
				for i, x := range t {
					s, ok := scalar(x)
					if !ok {
						v.add("Template params %d must be a string", i+1)
						continue
					}
					ps = append(ps, map[string]any{"type": "text", "text": s})
				}
				components = append(components, map[string]any{"type": "body", "parameters": ps})
			}
		case map[string]any:
			h, hok := t["header"].(map[string]any)
			b, bok := t["body"].(map[string]any)
			if hok || bok {
				if hok && len(h) > 0 {
					components = append([]any{map[string]any{"type": "header", "parameters": v.named(h)}}, components...)
				}
				if bok && len(b) > 0 {
					components = append(components, map[string]any{"type": "body", "parameters": v.named(b)})
				}
			} else if len(t) > 0 {
				components = append(components, map[string]any{"type": "body", "parameters": v.named(t)})
			}
		default:
			v.add("Template params must be an array or an object")
		}
		data["template_params"] = params
		o.Metadata["template_params"] = params
	}
	tpl := map[string]any{"name": *name, "language": map[string]any{"code": language}}
	if len(components) > 0 {
		tpl["components"] = components
	}
	o.Body = map[string]any{"type": "template", "template": tpl}
	o.MessageTypeData = data
	o.Metadata["template_name"] = *name
	o.Metadata["template_language"] = language
	if content != nil {
		o.Content = content
	} else {
		c := "Template: " + *name
		o.Content = &c
	}
}

// named renders named template parameters, sorted by name (Meta matches
// them by parameter_name, so order is irrelevant; sorting keeps bodies
// deterministic).
func (v *validator) named(m map[string]any) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, len(keys))
	for _, k := range keys {
		s, ok := scalar(m[k])
		if !ok {
			v.add("Template param %s must be a string", k)
			continue
		}
		out = append(out, map[string]any{"type": "text", "parameter_name": k, "text": s})
	}
	return out
}

func (v *validator) reaction(o *Outbound) {
	target := v.str("reacted_to_message_id")
	if target == nil {
		target = v.str("message_id")
	}
	emoji, _, err := v.f.String("reaction_emoji")
	if err == nil && emoji == nil {
		emoji, _, err = v.f.String("emoji")
	}
	if err != nil {
		v.err = err
		return
	}
	if v.err != nil {
		return
	}
	if target == nil {
		v.add("Reacted to message id can't be blank")
	}
	if emoji == nil {
		v.add("Reaction emoji can't be blank")
	} else if utf8.RuneCountInString(*emoji) > 16 {
		v.add("Reaction emoji is too long (maximum is 16 characters)")
	}
	if target == nil || emoji == nil {
		return
	}
	id := strings.TrimSpace(*target)
	if api.IsUUID(id) {
		o.reactTo = strings.ToLower(id)
	}
	o.Body = map[string]any{"type": "reaction", "reaction": map[string]any{"message_id": id, "emoji": *emoji}}
	o.MessageTypeData = map[string]any{"reaction_emoji": *emoji, "reacted_to_message_id": id}
	e := *emoji
	o.Content = &e
}

// legacyNameKeys are the flattened name keys Kapso still accepts on a
// contact card.
var legacyNameKeys = []string{"formatted_name", "first_name", "last_name", "middle_name", "prefix", "suffix"}

func (v *validator) contacts(o *Outbound, content *string) {
	var cards []map[string]any
	if !v.raw("contacts", &cards, "an array of contact objects") {
		if v.err == nil {
			v.add("Contacts can't be blank")
		}
		return
	}
	if len(cards) < 1 || len(cards) > maxContacts {
		v.add("Contacts must have between 1 and %d items", maxContacts)
		return
	}
	var names []string
	for i, c := range cards {
		if c == nil {
			v.add("Contact %d must be an object", i+1)
			continue
		}
		name, _ := c["name"].(map[string]any)
		if name == nil {
			if _, isStr := c["name"].(string); isStr {
				name = map[string]any{"formatted_name": c["name"]}
			} else {
				name = map[string]any{}
			}
		}
		for _, k := range legacyNameKeys {
			if x, ok := c[k]; ok {
				if _, set := name[k]; !set {
					name[k] = x
				}
				delete(c, k)
			}
		}
		if k := textFields(name, legacyNameKeys...); k != "" {
			v.add("Contact %d name %s must be a string", i+1, k)
			continue
		}
		formatted, _ := name["formatted_name"].(string)
		first, _ := name["first_name"].(string)
		if strings.TrimSpace(formatted) == "" && strings.TrimSpace(first) == "" {
			v.add("Contact %d name must have a formatted name or a first name", i+1)
			continue
		}
		if strings.TrimSpace(formatted) == "" {
			// Meta requires formatted_name; build it from the parts.
			var parts []string
			for _, k := range []string{"prefix", "first_name", "middle_name", "last_name", "suffix"} {
				if s, _ := name[k].(string); strings.TrimSpace(s) != "" {
					parts = append(parts, strings.TrimSpace(s))
				}
			}
			formatted = strings.Join(parts, " ")
			name["formatted_name"] = formatted
		}
		c["name"] = name
		if b, ok := c["birthday"]; ok && b != nil {
			if s, _ := b.(string); !validDate(s) {
				v.add("Contact %d birthday must be a date (YYYY-MM-DD)", i+1)
			}
		}
		if x, ok := c["org"]; ok && x != nil {
			org, isObj := x.(map[string]any)
			if !isObj {
				v.add("Contact %d org must be an object", i+1)
			} else if k := textFields(org, "company", "department", "title"); k != "" {
				v.add("Contact %d org %s must be a string", i+1, k)
			}
		}
		for _, list := range []struct {
			key, field string // field is required
			fields     []string
		}{
			{"phones", "phone", []string{"phone", "type", "wa_id"}},
			{"emails", "email", []string{"email", "type"}},
			{"urls", "url", []string{"url", "type"}},
			{"addresses", "", []string{"street", "city", "state", "zip", "country", "country_code", "type"}},
		} {
			x, ok := c[list.key]
			if !ok || x == nil {
				continue
			}
			arr, ok := x.([]any)
			if !ok {
				v.add("Contact %d %s must be an array", i+1, list.key)
				continue
			}
			for j, e := range arr {
				m, isObj := e.(map[string]any)
				if !isObj {
					v.add("Contact %d %s %d must be an object", i+1, list.key, j+1)
					continue
				}
				if k := textFields(m, list.fields...); k != "" {
					v.add("Contact %d %s %d %s must be a string", i+1, list.key, j+1, k)
					continue
				}
				if s, _ := m[list.field].(string); list.field != "" && strings.TrimSpace(s) == "" {
					v.add("Contact %d %s %d must have a %s", i+1, list.key, j+1, list.field)
				}
			}
		}
		names = append(names, formatted)
	}
	if len(v.errs) > 0 {
		return
	}
	list := make([]any, len(cards))
	for i, c := range cards {
		list[i] = c
	}
	o.Body = map[string]any{"type": "contacts", "contacts": list}
	o.MessageTypeData = map[string]any{"contacts": list}
	o.Metadata["contacts_data"] = list
	if content != nil {
		o.Content = content
	} else {
		c := "Contact: " + strings.Join(names, ", ")
		o.Content = &c
	}
}

// textFields checks that the keys of m that are set hold text: numbers
// become strings (Rails casts them), nulls are dropped; it returns the
// first key holding anything else, or "".
func textFields(m map[string]any, keys ...string) string {
	for _, k := range keys {
		x, ok := m[k]
		if !ok {
			continue
		}
		switch t := x.(type) {
		case nil:
			delete(m, k)
		case string:
		case float64:
			m[k] = strconv.FormatFloat(t, 'f', -1, 64)
		default:
			return k
		}
	}
	return ""
}

func validDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	y, e1 := strconv.Atoi(s[:4])
	m, e2 := strconv.Atoi(s[5:7])
	d, e3 := strconv.Atoi(s[8:])
	return e1 == nil && e2 == nil && e3 == nil && y > 0 && m >= 1 && m <= 12 && d >= 1 && d <= 31
}
