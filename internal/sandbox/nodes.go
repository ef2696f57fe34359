package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/media"
	"github.com/parleyhq/parley/internal/store"
)

// sandboxAppID is the id of the (simulated) Meta app subscribed to sandbox
// WABAs.
const sandboxAppID = "100000000000001"

// wabaConfig resolves the {node} of a WABA route.
func (sim *Simulator) wabaConfig(r *http.Request) (*parley.WhatsAppConfig, string, error) {
	id := r.PathValue("node")
	cfg, err := sandboxConfigByWABA(r.Context(), sim.s.DB.Read(), id)
	if parley.IsNotFound(err) {
		return nil, "", errNoObject(r, id)
	}
	if err != nil {
		return nil, "", err
	}
	if err := sim.ensureWABA(r.Context(), id); err != nil {
		return nil, "", err
	}
	return cfg, id, nil
}

// getNode is GET /{node}: health_status of any sandbox node, or a phone
// number, media, template or WABA node.
func (sim *Simulator) getNode(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("node")
	fields := r.URL.Query().Get("fields")
	db := sim.s.DB.Read()
	if cfg, err := sandboxConfigByPhone(ctx, db, id); err == nil {
		if strings.Contains(fields, "health_status") {
			writeGraphJSON(w, http.StatusOK, healthStatus(id, "PHONE_NUMBER", cfg))
			return nil
		}
		writeGraphJSON(w, http.StatusOK, phoneNode(cfg))
		return nil
	} else if !parley.IsNotFound(err) {
		return err
	}
	if cfg, err := sandboxConfigByWABA(ctx, db, id); err == nil {
		if strings.Contains(fields, "health_status") {
			writeGraphJSON(w, http.StatusOK, healthStatus(id, "WABA", cfg))
			return nil
		}
		writeGraphJSON(w, http.StatusOK, map[string]any{"id": id, "name": "Parley Sandbox", "currency": "USD", "timezone_id": "1",
			"message_template_namespace": "parley_sandbox"})
		return nil
	} else if !parley.IsNotFound(err) {
		return err
	}
	if t, err := getTemplate(ctx, db, id); err == nil {
		if strings.Contains(fields, "health_status") {
			can := "AVAILABLE"
			if t.Status != "APPROVED" {
				can = "BLOCKED"
			}
			writeGraphJSON(w, http.StatusOK, map[string]any{"id": id, "health_status": map[string]any{"can_send_message": can,
				"entities": []map[string]any{{"entity_type": "MESSAGE_TEMPLATE", "id": id, "can_send_message": can}}}})
			return nil
		}
		writeGraphJSON(w, http.StatusOK, t.graph())
		return nil
	} else if !parley.IsNotFound(err) {
		return err
	}
	if m, err := getMedia(ctx, db, id); err == nil {
		u := m.ExternalURL
		if u == "" {
			u = requestBase(r) + MediaPrefix + "/" + m.ID
		}
		writeGraphJSON(w, http.StatusOK, map[string]any{"messaging_product": "whatsapp", "url": u, "mime_type": m.MimeType,
			"sha256": m.SHA256, "file_size": strconv.FormatInt(m.FileSize, 10), "id": m.ID})
		return nil
	} else if !parley.IsNotFound(err) {
		return err
	}
	return errNoObject(r, id)
}

// requestBase is the scheme and host the request reached, so media URLs
// work both in-process (sandbox.local) and over real HTTP.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "sandbox.local"
	}
	return scheme + "://" + host
}

func phoneNode(cfg *parley.WhatsAppConfig) map[string]any {
	name := cfg.Name
	if cfg.DisplayName != nil && *cfg.DisplayName != "" {
		name = *cfg.DisplayName
	}
	disp := ""
	if cfg.DisplayPhoneNumber != nil {
		disp = *cfg.DisplayPhoneNumber
	} else if d := displayPhone(cfg); d != "" {
		disp = "+" + d
	}
	return map[string]any{
		"id": cfg.PhoneNumberID, "display_phone_number": disp, "verified_name": name, "quality_rating": "GREEN",
		"name_status": "APPROVED", "code_verification_status": "VERIFIED", "status": "CONNECTED",
		"messaging_limit_tier": "TIER_UNLIMITED", "platform_type": "CLOUD_API", "throughput": map[string]any{"level": "STANDARD"},
	}
}

// healthStatus is the sandbox's answer to ?fields=health_status: always
// available.
func healthStatus(id, entity string, cfg *parley.WhatsAppConfig) map[string]any {
	entities := []map[string]any{{"entity_type": entity, "id": id, "can_send_message": "AVAILABLE"}}
	if entity == "PHONE_NUMBER" {
		entities = append(entities, map[string]any{"entity_type": "WABA", "id": wabaOf(cfg), "can_send_message": "AVAILABLE"})
	}
	entities = append(entities,
		map[string]any{"entity_type": "BUSINESS", "id": "100000000000002", "can_send_message": "AVAILABLE"},
		map[string]any{"entity_type": "APP", "id": sandboxAppID, "can_send_message": "AVAILABLE"})
	return map[string]any{"health_status": map[string]any{"can_send_message": "AVAILABLE", "entities": entities}, "id": id}
}

// deleteNode is DELETE /{media_id}.
func (sim *Simulator) deleteNode(w http.ResponseWriter, r *http.Request) error {
	ok, err := deleteMedia(r.Context(), sim.s.DB.Write(), r.PathValue("node"))
	if err != nil {
		return err
	}
	if !ok {
		return errNoObject(r, r.PathValue("node"))
	}
	writeGraphJSON(w, http.StatusOK, map[string]any{"success": true})
	return nil
}

// phoneNumbers is GET /{waba_id}/phone_numbers: the WABA's sandbox numbers,
// as Meta lists a WABA's numbers (one page).
func (sim *Simulator) phoneNumbers(w http.ResponseWriter, r *http.Request) error {
	_, waba, err := sim.wabaConfig(r)
	if err != nil {
		return err
	}
	cfgs, err := store.ConfigsByWABA(r.Context(), sim.s.DB.Read(), waba, parley.KindSandbox)
	if err != nil {
		return err
	}
	data := make([]map[string]any, len(cfgs))
	for i, cfg := range cfgs {
		data[i] = phoneNode(cfg)
	}
	writeGraphJSON(w, http.StatusOK, map[string]any{"data": data})
	return nil
}

func (sim *Simulator) subscribedApps(w http.ResponseWriter, r *http.Request) error {
	_, waba, err := sim.wabaConfig(r)
	if err != nil {
		return err
	}
	on, err := subscribed(r.Context(), sim.s.DB.Read(), waba)
	if err != nil {
		return err
	}
	data := []map[string]any{}
	if on {
		data = append(data, map[string]any{"whatsapp_business_api_data": map[string]any{
			"id": sandboxAppID, "name": "Parley Sandbox", "link": "https://www.facebook.com/games/?app_id=" + sandboxAppID}})
	}
	writeGraphJSON(w, http.StatusOK, map[string]any{"data": data})
	return nil
}

func (sim *Simulator) subscribe(w http.ResponseWriter, r *http.Request) error {
	return sim.setSubscription(w, r, true)
}

func (sim *Simulator) unsubscribe(w http.ResponseWriter, r *http.Request) error {
	return sim.setSubscription(w, r, false)
}

func (sim *Simulator) setSubscription(w http.ResponseWriter, r *http.Request, on bool) error {
	_, waba, err := sim.wabaConfig(r)
	if err != nil {
		return err
	}
	if err := setSubscribed(r.Context(), sim.s.DB.Write(), waba, on); err != nil {
		return err
	}
	writeGraphJSON(w, http.StatusOK, map[string]any{"success": true})
	return nil
}

// listTemplates is GET /{waba_id}/message_templates with Graph's cursor
// paging (cursors are opaque offsets).
func (sim *Simulator) listTemplates(w http.ResponseWriter, r *http.Request) error {
	_, waba, err := sim.wabaConfig(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := queryInt(r, "limit", 25, 1000)
	offset := 0
	if after := q.Get("after"); after != "" {
		offset, err = decodeCursor(after)
		if err != nil {
			return errInvalidParam("Param after is not a valid cursor.")
		}
	}
	f := templateFilter{Name: q.Get("name"), Status: q.Get("status"), Language: q.Get("language")}
	ts, total, err := listTemplates(r.Context(), sim.s.DB.Read(), waba, f, limit, offset)
	if err != nil {
		return err
	}
	data := make([]map[string]any, 0, len(ts))
	for _, t := range ts {
		data = append(data, t.graph())
	}
	out := map[string]any{"data": data}
	if len(ts) > 0 {
		paging := map[string]any{"cursors": map[string]any{"before": encodeCursor(offset), "after": encodeCursor(offset + len(ts))}}
		if offset+len(ts) < total {
			next := *r.URL
			nq := next.Query()
			nq.Set("after", encodeCursor(offset+len(ts)))
			nq.Del("access_token")
			next.RawQuery = nq.Encode()
			paging["next"] = requestBase(r) + next.RequestURI()
		}
		out["paging"] = paging
	}
	writeGraphJSON(w, http.StatusOK, out)
	return nil
}

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func decodeCursor(c string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
	if err != nil || n < 0 || !strings.HasPrefix(string(b), "offset:") {
		return 0, errors.New("bad cursor")
	}
	return n, nil
}

var templateName = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)

var categories = map[string]bool{"MARKETING": true, "UTILITY": true, "AUTHENTICATION": true}

// createTemplate is POST /{waba_id}/message_templates: the template starts
// PENDING and a durable job reviews it after a short delay.
func (sim *Simulator) createTemplate(w http.ResponseWriter, r *http.Request) error {
	_, waba, err := sim.wabaConfig(r)
	if err != nil {
		return err
	}
	body, err := sim.readJSON(w, r)
	if err != nil {
		return err
	}
	name, _ := str(body, "name")
	lang, _ := str(body, "language")
	cat, _ := str(body, "category")
	pf, _ := str(body, "parameter_format")
	cat, pf = strings.ToUpper(cat), strings.ToUpper(pf)
	switch {
	case !templateName.MatchString(name):
		return errInvalidParam("Param name must be 1 to 512 lowercase letters, digits or underscores.")
	case lang == "":
		return errInvalidParam("The parameter language is required.")
	case !categories[cat]:
		return errInvalidParam("Param category must be one of {AUTHENTICATION, MARKETING, UTILITY}.")
	case pf != "" && pf != "NAMED" && pf != "POSITIONAL":
		return errInvalidParam("Param parameter_format must be one of {NAMED, POSITIONAL}.")
	}
	if pf == "" {
		pf = "POSITIONAL"
	}
	comps, err := components(body)
	if err != nil {
		return err
	}
	t := &template{WABAID: waba, Name: name, Language: lang, Category: cat, Status: "PENDING", ParameterFormat: pf, Components: comps}
	err = sim.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		if err := insertTemplate(r.Context(), tx, t); err != nil {
			return err
		}
		return enqueue(r.Context(), tx, jobReview, reviewPayload{TemplateID: t.ID}, time.Now().Add(2*sim.s.Config.SandboxStatusDelay))
	})
	if errors.Is(err, errDuplicate) {
		return &graphError{HTTPStatus: 400, Code: 100, Subcode: 2388024, Title: "Invalid parameter",
			Details: "Message template \"" + name + "\" already has content in " + lang + "."}
	}
	if err != nil {
		return err
	}
	sim.s.JobsEnqueued()
	writeGraphJSON(w, http.StatusOK, map[string]any{"id": t.ID, "status": t.Status, "category": t.Category})
	return nil
}

// components validates a components array: a list of objects, each with a
// type, including a BODY.
func components(body map[string]json.RawMessage) (json.RawMessage, error) {
	raw, ok := body["components"]
	var list []map[string]any
	if !ok || json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return nil, errInvalidParam("The parameter components is required and must be a non-empty array.")
	}
	hasBody := false
	for _, c := range list {
		t, _ := c["type"].(string)
		switch strings.ToUpper(t) {
		case "BODY":
			hasBody = true
		case "HEADER", "FOOTER", "BUTTONS":
		default:
			return nil, errInvalidParam("Each component needs a type among HEADER, BODY, FOOTER, BUTTONS.")
		}
	}
	if !hasBody {
		return nil, errInvalidParam("A template needs a BODY component.")
	}
	b, _ := json.Marshal(list)
	return b, nil
}

// editTemplate is POST /{template_id}: category and/or components, only
// for APPROVED, REJECTED and PAUSED templates; no category change once
// approved. An edited rejected template goes back to review.
func (sim *Simulator) editTemplate(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("node")
	t, err := getTemplate(r.Context(), sim.s.DB.Read(), id)
	if parley.IsNotFound(err) {
		return errNoObject(r, id)
	}
	if err != nil {
		return err
	}
	body, err := sim.readJSON(w, r)
	if err != nil {
		return err
	}
	_, hasCat := body["category"]
	_, hasComps := body["components"]
	if !hasCat && !hasComps {
		return errInvalidParam("Nothing to edit: send category and/or components.")
	}
	switch t.Status {
	case "APPROVED", "REJECTED", "PAUSED":
	default:
		return errInvalidParam("Only APPROVED, REJECTED or PAUSED templates can be edited.")
	}
	if hasCat {
		cat, _ := str(body, "category")
		cat = strings.ToUpper(cat)
		if !categories[cat] {
			return errInvalidParam("Param category must be one of {AUTHENTICATION, MARKETING, UTILITY}.")
		}
		if cat != t.Category && t.Status == "APPROVED" {
			return errInvalidParam("The category of an approved template cannot be changed.")
		}
		t.Category = cat
	}
	if hasComps {
		if t.Components, err = components(body); err != nil {
			return err
		}
	}
	review := t.Status == "REJECTED"
	if review {
		t.Status = "PENDING"
	}
	err = sim.s.DB.Tx(r.Context(), func(tx *store.Conn) error {
		if err := updateTemplate(r.Context(), tx, t); err != nil {
			return err
		}
		if review {
			return enqueue(r.Context(), tx, jobReview, reviewPayload{TemplateID: t.ID}, time.Now().Add(2*sim.s.Config.SandboxStatusDelay))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if review {
		sim.s.JobsEnqueued()
	}
	writeGraphJSON(w, http.StatusOK, map[string]any{"success": true})
	return nil
}

// deleteTemplate is DELETE /{waba_id}/message_templates?name=[&hsm_id=].
func (sim *Simulator) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	_, waba, err := sim.wabaConfig(r)
	if err != nil {
		return err
	}
	name, hsm := r.URL.Query().Get("name"), r.URL.Query().Get("hsm_id")
	if name == "" {
		return errInvalidParam("The parameter name is required.")
	}
	n, err := deleteTemplates(r.Context(), sim.s.DB.Write(), waba, name, hsm)
	if err != nil {
		return err
	}
	if n == 0 {
		return &graphError{HTTPStatus: 400, Code: 100, Subcode: 2593002, Title: "Invalid parameter",
			Details: "Message template \"" + name + "\" was not found."}
	}
	writeGraphJSON(w, http.StatusOK, map[string]any{"success": true})
	return nil
}

// uploadMedia is POST /{phone_number_id}/media (multipart: messaging_product,
// type, file).
func (sim *Simulator) uploadMedia(w http.ResponseWriter, r *http.Request) error {
	cfg, err := sim.phoneConfig(r)
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, media.MaxBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return errInvalidParam("The request must be multipart/form-data with a file part.")
	}
	var typ, product, partType, filename string
	var blob *media.Blob
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errInvalidParam("The multipart body could not be read.")
		}
		switch part.FormName() {
		case "file":
			if blob != nil {
				return errInvalidParam("Only one file may be uploaded.")
			}
			filename, partType = part.FileName(), part.Header.Get("Content-Type")
			if !storableText(filename) { // PostgreSQL text holds neither NUL nor invalid UTF-8
				filename = strings.ToValidUTF8(strings.ReplaceAll(filename, "\x00", ""), "\uFFFD")
			}
			blob, err = media.Save(sim.s.Config.MediaDir(), part, media.MaxBytes)
			if errors.Is(err, media.ErrTooLarge) {
				return errInvalidParam("The file exceeds the 100 MB limit.")
			}
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return errInvalidParam("The file exceeds the 100 MB limit.")
				}
				return err
			}
		case "type":
			b, _ := io.ReadAll(io.LimitReader(part, 256))
			typ = strings.TrimSpace(string(b))
		case "messaging_product":
			b, _ := io.ReadAll(io.LimitReader(part, 64))
			product = strings.TrimSpace(string(b))
		}
		part.Close()
	}
	if product != "whatsapp" {
		return errInvalidParam("The parameter messaging_product is required and must be \"whatsapp\".")
	}
	if blob == nil {
		return errInvalidParam("The parameter file is required.")
	}
	if typ == "" {
		typ = partType
	}
	if mt, _, err := mime.ParseMediaType(typ); err != nil || !strings.Contains(mt, "/") {
		return errInvalidParam("Param type must be the file's MIME type.")
	}
	m := &mediaRow{PhoneNumberID: cfg.PhoneNumberID, MimeType: typ, SHA256: blob.SHA256, FileSize: blob.Size, Filename: filename, Path: blob.Path}
	if err := insertMedia(r.Context(), sim.s.DB.Write(), m); err != nil {
		return err
	}
	writeGraphJSON(w, http.StatusOK, map[string]any{"id": m.ID})
	return nil
}

// downloadMedia serves an uploaded file (the URL GET /{media_id} returns).
func (sim *Simulator) downloadMedia(w http.ResponseWriter, r *http.Request) error {
	m, err := getMedia(r.Context(), sim.s.DB.Read(), r.PathValue("media_id"))
	if parley.IsNotFound(err) || (err == nil && m.Path == "") {
		return &graphError{HTTPStatus: 404, Code: 100, Title: "Media not found"}
	}
	if err != nil {
		return err
	}
	f, err := media.Open(sim.s.Config.MediaDir(), m.Path)
	if err != nil {
		return &graphError{HTTPStatus: 404, Code: 100, Title: "Media not found"}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", m.MimeType)
	http.ServeContent(w, r, "", st.ModTime(), f)
	return nil
}

// mediaObject completes an inbound media object from an uploaded media id:
// Meta's webhooks carry mime_type and a base64 sha256.
func mediaObject(ctx context.Context, c *store.Conn, id string) (map[string]any, error) {
	m, err := getMedia(ctx, c, id)
	if err != nil {
		return nil, err
	}
	o := map[string]any{"id": m.ID, "mime_type": m.MimeType}
	if raw, err := hex.DecodeString(m.SHA256); err == nil && len(raw) == sha256.Size {
		o["sha256"] = base64.StdEncoding.EncodeToString(raw)
	}
	return o, nil
}
