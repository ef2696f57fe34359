package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
)

// Window is the customer-service window: free-form messages may be sent
// only this long after the customer's last message.
const Window = 24 * time.Hour

// outboundTypes are the message types the send endpoint accepts.
var outboundTypes = map[string]bool{
	"text": true, "image": true, "audio": true, "video": true, "document": true, "sticker": true,
	"location": true, "contacts": true, "interactive": true, "template": true, "reaction": true,
}

var mediaTypes = map[string]bool{"image": true, "audio": true, "video": true, "document": true, "sticker": true}

// NewWAMID returns a new WhatsApp message id shaped like Meta's
// ("wamid." + base64), unique with overwhelming probability.
func NewWAMID(phone string) string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	head := []byte{0x15, 0x02, 0x00, 0x11, 0x18, 0x12}
	raw := append(append(append([]byte("\x18\x0b"), []byte(phone)...), head...), b...)
	return "wamid." + base64.StdEncoding.EncodeToString(raw)
}

// phoneConfig resolves the {node} of a phone-number route to a sandbox
// config, or answers like Graph does for an unknown object.
func (sim *Simulator) phoneConfig(r *http.Request) (*parley.WhatsAppConfig, error) {
	id := r.PathValue("node")
	cfg, err := sandboxConfigByPhone(r.Context(), sim.s.DB.Read(), id)
	if parley.IsNotFound(err) {
		return nil, errNoObject(r, id)
	}
	return cfg, err
}

// sendMessage is POST /{phone_number_id}/messages: a send, or a mark-as-read.
func (sim *Simulator) sendMessage(w http.ResponseWriter, r *http.Request) error {
	cfg, err := sim.phoneConfig(r)
	if err != nil {
		return err
	}
	body, err := sim.readJSON(w, r)
	if err != nil {
		return err
	}
	if mp, _ := str(body, "messaging_product"); mp != "whatsapp" {
		return errInvalidParam("The parameter messaging_product is required and must be \"whatsapp\".")
	}
	if status, _ := str(body, "status"); status != "" {
		if status != "read" {
			return errInvalidParam("Param status must be \"read\".")
		}
		if id, ok := str(body, "message_id"); !ok || id == "" {
			return errInvalidParam("The parameter message_id is required.")
		}
		writeGraphJSON(w, http.StatusOK, map[string]any{"success": true})
		return nil
	}
	to, ok := str(body, "to")
	if !ok || strings.TrimSpace(to) == "" {
		return errInvalidParam("The parameter to is required.")
	}
	waID := parley.NormalizePhone(to)
	if !plausible(to, waID) || strings.HasPrefix(waID, ReservedPrefix) {
		return errUndeliverable
	}
	if rt, _ := str(body, "recipient_type"); rt != "" && rt != "individual" {
		return errInvalidParam("Param recipient_type must be \"individual\" in the sandbox.")
	}
	typ, _ := str(body, "type")
	if typ == "" {
		typ = "text"
	}
	if !outboundTypes[typ] {
		return errInvalidParam("Param type must be one of {AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO}.")
	}
	if err := sim.checkPayload(r.Context(), cfg, typ, body); err != nil {
		return err
	}
	category := "service"
	if typ == "template" {
		t, err := sim.checkTemplate(r.Context(), cfg, obj(body, "template"))
		if err != nil {
			return err
		}
		category = strings.ToLower(t.Category)
	} else {
		last, err := lastInbound(r.Context(), sim.s.DB.Read(), cfg.ID, waID)
		if err != nil {
			return err
		}
		if last == nil || time.Since(*last) > Window {
			return errWindow
		}
	}
	wamid := NewWAMID(waID)
	if err := sim.scheduleStatuses(r.Context(), cfg, wamid, waID, category); err != nil {
		return err
	}
	msg := map[string]any{"id": wamid}
	if typ == "template" {
		msg["message_status"] = "accepted"
	}
	writeGraphJSON(w, http.StatusOK, map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []map[string]any{{"input": to, "wa_id": waID}},
		"messages":          []map[string]any{msg},
	})
	return nil
}

// plausible reports whether a "to" value looks like a phone number: only
// digits and the usual separators, 7 to 15 digits.
func plausible(raw, digits string) bool {
	for _, r := range raw {
		if !(r >= '0' && r <= '9') && !strings.ContainsRune("+ -().", r) {
			return false
		}
	}
	return parley.ValidPhone(digits)
}

// checkPayload validates the type's object the way Meta does.
func (sim *Simulator) checkPayload(ctx context.Context, cfg *parley.WhatsAppConfig, typ string, body map[string]json.RawMessage) error {
	if typ == "contacts" {
		var cards []map[string]any
		if json.Unmarshal(body["contacts"], &cards) != nil || len(cards) == 0 {
			return errInvalidParam("The parameter contacts is required and must be a non-empty array.")
		}
		return nil
	}
	o := obj(body, typ)
	if o == nil {
		return errInvalidParam("The parameter " + typ + " is required.")
	}
	switch {
	case typ == "text":
		if b, _ := str(o, "body"); strings.TrimSpace(b) == "" {
			return errInvalidParam("The parameter text['body'] is required.")
		} else if len([]rune(b)) > 4096 {
			return errInvalidParam("Param text['body'] must be at most 4096 characters long.")
		}
	case mediaTypes[typ]:
		id, _ := str(o, "id")
		link, _ := str(o, "link")
		switch {
		case id != "":
			if _, err := getMedia(ctx, sim.s.DB.Read(), id); err != nil {
				if parley.IsNotFound(err) {
					return errInvalidParam("Param " + typ + "['id'] is not a valid media id.")
				}
				return err
			}
		case link != "":
			if !strings.HasPrefix(link, "http://") && !strings.HasPrefix(link, "https://") {
				return errInvalidParam("Param " + typ + "['link'] must be an http(s) URL.")
			}
		default:
			return errInvalidParam("The parameter " + typ + "['id'] or " + typ + "['link'] is required.")
		}
	case typ == "location":
		// Meta's own examples send the coordinates as strings
		// ("37.44216251868683"); numbers are accepted too.
		lat, okLat := coordinate(o, "latitude")
		long, okLong := coordinate(o, "longitude")
		if !okLat || !okLong || lat < -90 || lat > 90 || long < -180 || long > 180 {
			return errInvalidParam("The parameters location['latitude'] and location['longitude'] are required numbers.")
		}
	case typ == "interactive":
		if t, _ := str(o, "type"); t == "" {
			return errInvalidParam("The parameter interactive['type'] is required.")
		}
		if obj(o, "action") == nil {
			return errInvalidParam("The parameter interactive['action'] is required.")
		}
	case typ == "reaction":
		if id, _ := str(o, "message_id"); id == "" {
			return errInvalidParam("The parameter reaction['message_id'] is required.")
		}
	}
	return nil
}

// coordinate reads a location coordinate given as a JSON number or a
// numeric string.
func coordinate(o map[string]json.RawMessage, key string) (float64, bool) {
	v, ok := str(o, key)
	if !ok || strings.TrimSpace(v) == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// checkTemplate finds the approved template a template send names.
func (sim *Simulator) checkTemplate(ctx context.Context, cfg *parley.WhatsAppConfig, o map[string]json.RawMessage) (*template, error) {
	if o == nil {
		return nil, errInvalidParam("The parameter template is required.")
	}
	name, _ := str(o, "name")
	lang := obj(o, "language")
	code, _ := str(lang, "code")
	if name == "" || code == "" {
		return nil, errInvalidParam("The parameters template['name'] and template['language']['code'] are required.")
	}
	if cfg.BusinessAccountID == nil {
		return nil, errTemplateMissing
	}
	if err := sim.ensureWABA(ctx, *cfg.BusinessAccountID); err != nil {
		return nil, err
	}
	t, err := findTemplate(ctx, sim.s.DB.Read(), *cfg.BusinessAccountID, name, code)
	if parley.IsNotFound(err) || (err == nil && t.Status != "APPROVED") {
		return nil, errTemplateMissing
	}
	return t, err
}

// scheduleStatuses enqueues the sent webhook of a new message as a durable
// job; each status job enqueues the next (delivered, then read) after it
// has been applied, SandboxStatusDelay apart.
func (sim *Simulator) scheduleStatuses(ctx context.Context, cfg *parley.WhatsAppConfig, wamid, waID, category string) error {
	delay := sim.s.Config.SandboxStatusDelay
	now := time.Now()
	p := statusPayload{ConfigID: cfg.ID, WAMID: wamid, Recipient: waID, Status: "sent", Category: category, Next: []string{"delivered", "read"}}
	err := enqueue(ctx, sim.s.DB.Write(), jobStatus, p, now.Add(delay))
	if err != nil {
		return err
	}
	sim.s.JobsEnqueued()
	return nil
}
