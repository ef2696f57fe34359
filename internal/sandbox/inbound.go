package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// inboundTypes are the customer message types the sandbox can inject.
var inboundTypes = map[string]bool{
	"text": true, "image": true, "audio": true, "video": true, "document": true, "sticker": true,
	"location": true, "contacts": true, "interactive": true, "button": true, "reaction": true,
	"order": true, "system": true, "unsupported": true,
}

// defaultMIME is used for media given by link without a mime_type.
var defaultMIME = map[string]string{
	"image": "image/jpeg", "audio": "audio/ogg", "video": "video/mp4", "document": "application/pdf", "sticker": "image/webp",
}

// Inbound is a validated customer message to inject: a Meta message object
// without id and timestamp, and the sender's profile name.
type Inbound struct {
	From        string
	ProfileName string
	Message     map[string]any
}

// ParseInbound validates a sandbox_messages body (with or without the
// "message" root key). Problems are 422s with Rails-style messages.
func ParseInbound(body []byte) (*Inbound, error) {
	f, err := api.ParseFields(body, "message")
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := f.Into(&m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	var errs []string
	from, _ := m["from"].(string)
	if n, ok := m["from"].(float64); ok {
		from = strconv.FormatFloat(n, 'f', -1, 64)
	}
	digits := parley.NormalizePhone(from)
	switch {
	case strings.TrimSpace(from) == "":
		errs = append(errs, "From can't be blank")
	case !plausible(from, digits):
		errs = append(errs, "From is not a valid phone number")
	}
	name := ""
	if v, ok := m["profile_name"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			errs = append(errs, "Profile name must be a string")
		} else if len(s) > 256 {
			errs = append(errs, "Profile name is too long (maximum is 256 characters)")
		}
		name = strings.TrimSpace(s)
	}
	typ := "text"
	switch v := m["type"].(type) {
	case nil:
	case string:
		if v != "" {
			typ = v
		}
	default:
		errs = append(errs, "Type must be a string")
		typ = ""
	}
	if typ != "" {
		if !inboundTypes[typ] {
			errs = append(errs, "Type is not included in the list")
		} else if msg := checkInbound(typ, m); msg != "" {
			errs = append(errs, msg)
		}
	}
	if c, ok := m["context"]; ok && c != nil {
		if _, ok := c.(map[string]any); !ok {
			errs = append(errs, "Context must be an object")
		}
	}
	if len(errs) > 0 {
		return nil, parley.Invalid("Validation failed", errs...)
	}
	out := map[string]any{"from": digits, "type": typ}
	if typ == "contacts" {
		out["contacts"] = m["contacts"]
	} else if v, ok := m[typ]; ok {
		out[typ] = v
	}
	if c, ok := m["context"].(map[string]any); ok {
		out["context"] = c
	}
	if ref, ok := m["referral"].(map[string]any); ok {
		out["referral"] = ref
	}
	return &Inbound{From: digits, ProfileName: name, Message: out}, nil
}

// checkInbound validates the type's object; it returns a full message or "".
func checkInbound(typ string, m map[string]any) string {
	if typ == "contacts" {
		list, ok := m["contacts"].([]any)
		if !ok || len(list) == 0 || len(list) > 257 {
			return "Contacts must be an array of 1 to 257 contact cards"
		}
		for _, c := range list {
			if _, ok := c.(map[string]any); !ok {
				return "Contacts must be an array of 1 to 257 contact cards"
			}
		}
		return ""
	}
	o, ok := m[typ].(map[string]any)
	if !ok {
		if typ == "unsupported" || typ == "system" {
			return ""
		}
		return fmt.Sprintf("%s must be an object", api.HumanKey(typ))
	}
	s := func(k string) string { v, _ := o[k].(string); return strings.TrimSpace(v) }
	switch typ {
	case "text":
		if s("body") == "" {
			return "Text body can't be blank"
		}
		if len([]rune(s("body"))) > 4096 {
			return "Text body is too long (maximum is 4096 characters)"
		}
	case "image", "audio", "video", "document", "sticker":
		id, link := s("id"), s("link")
		if n, ok := o["id"].(float64); ok {
			id = strconv.FormatFloat(n, 'f', -1, 64)
			o["id"] = id
		}
		if id == "" && link == "" {
			return fmt.Sprintf("%s needs an id (uploaded to the sandbox) or a link", api.HumanKey(typ))
		}
		if id == "" && !strings.HasPrefix(link, "http://") && !strings.HasPrefix(link, "https://") {
			return fmt.Sprintf("%s link must be an http(s) URL", api.HumanKey(typ))
		}
	case "location":
		lat, ok1 := o["latitude"].(float64)
		lng, ok2 := o["longitude"].(float64)
		if !ok1 || !ok2 || lat < -90 || lat > 90 || lng < -180 || lng > 180 {
			return "Location needs a latitude (-90..90) and a longitude (-180..180)"
		}
	case "interactive":
		switch it, _ := o["type"].(string); it {
		case "button_reply", "list_reply":
			r, ok := o[it].(map[string]any)
			if !ok {
				return "Interactive " + it + " must be an object"
			}
			if id, _ := r["id"].(string); id == "" {
				return "Interactive " + it + " id can't be blank"
			}
			if t, _ := r["title"].(string); t == "" {
				return "Interactive " + it + " title can't be blank"
			}
		case "nfm_reply":
			if _, ok := o["nfm_reply"].(map[string]any); !ok {
				return "Interactive nfm_reply must be an object"
			}
		default:
			return "Interactive type must be button_reply, list_reply or nfm_reply"
		}
	case "button":
		if s("text") == "" {
			return "Button text can't be blank"
		}
	case "reaction":
		if s("message_id") == "" {
			return "Reaction message id can't be blank"
		}
	}
	return ""
}

// Inject delivers a customer message to a sandbox config through Parley's
// real inbound path (a signed Meta webhook posted to the inbound handler)
// and returns its new wamid. Media given by link is registered as sandbox
// media, so the fetch job downloads it like any other.
func (sim *Simulator) Inject(ctx context.Context, cfg *parley.WhatsAppConfig, in *Inbound) (string, error) {
	if !cfg.IsSandbox() {
		return "", &parley.Error{Code: parley.EINVALID, Title: "Config is not a sandbox config",
			Message: "Simulated inbound messages can only be sent to sandbox configs"}
	}
	msg := make(map[string]any, len(in.Message)+2)
	for k, v := range in.Message {
		msg[k] = v
	}
	typ, _ := msg["type"].(string)
	if mediaTypes[typ] {
		o, err := sim.inboundMedia(ctx, cfg, typ, msg[typ].(map[string]any))
		if err != nil {
			return "", err
		}
		msg[typ] = o
	}
	if c, ok := msg["context"].(map[string]any); ok {
		if _, has := c["from"]; !has {
			c = copyMap(c)
			c["from"] = displayPhone(cfg)
			msg["context"] = c
		}
	}
	wamid := NewWAMID(in.From)
	msg["id"] = wamid
	msg["timestamp"] = strconv.FormatInt(time.Now().Unix(), 10)
	body, err := whatsapp.BuildMessageWebhook(wabaOf(cfg), cfg.PhoneNumberID, displayPhone(cfg),
		whatsapp.Contact{WaID: in.From, ProfileName: in.ProfileName}, msg)
	if err != nil {
		return "", err
	}
	if err := sim.deliver(ctx, cfg, body); err != nil {
		return "", &parley.Error{Code: parley.EUNAVAILABLE, Title: "Inbound processing unavailable", Message: err.Error()}
	}
	return wamid, nil
}

// inboundMedia turns a media object into what Meta sends: an id with its
// mime_type and sha256 (links become sandbox media that point at the link).
func (sim *Simulator) inboundMedia(ctx context.Context, cfg *parley.WhatsAppConfig, typ string, o map[string]any) (map[string]any, error) {
	out := map[string]any{}
	id, _ := o["id"].(string)
	if id != "" {
		mo, err := mediaObject(ctx, sim.s.DB.Read(), id)
		if parley.IsNotFound(err) {
			return nil, parley.Invalid("Validation failed", api.HumanKey(typ)+" id is not a sandbox media id (upload it with POST /sandbox/graph/{version}/{phone_number_id}/media)")
		}
		if err != nil {
			return nil, err
		}
		out = mo
	} else {
		link, _ := o["link"].(string)
		mt, _ := o["mime_type"].(string)
		if mt == "" {
			mt = mime.TypeByExtension(path.Ext(strings.SplitN(link, "?", 2)[0]))
		}
		if mt == "" {
			mt = defaultMIME[typ]
		}
		m := &mediaRow{PhoneNumberID: cfg.PhoneNumberID, MimeType: mt, ExternalURL: link}
		if err := insertMedia(ctx, sim.s.DB.Write(), m); err != nil {
			return nil, err
		}
		out["id"], out["mime_type"] = m.ID, mt
	}
	for _, k := range []string{"caption", "filename", "voice", "animated"} {
		if v, ok := o[k]; ok {
			out[k] = v
		}
	}
	if mt, ok := o["mime_type"].(string); ok && mt != "" {
		out["mime_type"] = mt
	}
	return out, nil
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// createSandboxMessage is POST /api/v1/whatsapp_configs/{id}/sandbox_messages.
func (sim *Simulator) createSandboxMessage(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp config")
	if err != nil {
		return err
	}
	cfg, err := store.GetConfig(r.Context(), sim.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	body, err := sim.s.ReadBody(w, r)
	if err != nil {
		return err
	}
	if !cfg.IsSandbox() {
		return &parley.Error{Code: parley.EINVALID, Title: "Config is not a sandbox config",
			Message: "Simulated inbound messages can only be sent to sandbox configs"}
	}
	in, err := ParseInbound(body)
	if err != nil {
		return err
	}
	wamid, err := sim.Inject(r.Context(), cfg, in)
	if err != nil {
		return err
	}
	api.WriteData(w, http.StatusAccepted, map[string]any{"whatsapp_message_id": wamid, "whatsapp_config_id": cfg.ID})
	return nil
}

// InjectByConfigID is Inject for the CLI: it loads the config (of any
// project) by id and parses a sandbox_messages body.
func (sim *Simulator) InjectByConfigID(ctx context.Context, configID string, body []byte) (string, error) {
	if !api.IsUUID(configID) {
		return "", parley.NotFound("WhatsApp config")
	}
	cfg, err := store.GetConfigByID(ctx, sim.s.DB.Read(), strings.ToLower(configID))
	if err != nil {
		return "", err
	}
	in, err := ParseInbound(body)
	if err != nil {
		return "", err
	}
	return sim.Inject(ctx, cfg, in)
}

// TextBody renders a sandbox_messages body for a text message (used by the
// CLI).
func TextBody(from, name, text string) []byte {
	b, _ := json.Marshal(map[string]any{"from": from, "profile_name": name, "type": "text", "text": map[string]any{"body": text}})
	return b
}
