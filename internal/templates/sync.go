package templates

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// JobTemplateSync is the job kind that imports a WABA's templates from Meta.
const JobTemplateSync = "template_sync"

// syncPayload is the payload of a template_sync job.
type syncPayload struct {
	SyncRunID string `json:"sync_run_id"`
}

// RegisterJobs registers the template_sync job handler.
func RegisterJobs(r *jobs.Runner, s *api.Server) {
	r.Register(JobTemplateSync, func(ctx context.Context, j *jobs.Job) error { return runSync(ctx, s, j) })
}

func (h *handler) sync(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	_, cfgID, custID, err := h.idParams(w, r, "")
	if err != nil {
		return err
	}
	ctx := r.Context()
	read := h.s.DB.Read()
	prod := parley.KindProduction
	var cfgs []*parley.WhatsAppConfig
	switch {
	case cfgID != nil:
		cfg, err := lookupConfig(ctx, read, a.ProjectID, *cfgID, parley.NotFound("Production WhatsApp configuration"))
		if err != nil {
			return err
		}
		cfgs = []*parley.WhatsAppConfig{cfg}
	case custID != nil:
		cid, err := lookupCustomer(ctx, read, a.ProjectID, *custID)
		if err != nil {
			return err
		}
		if cfgs, err = projectConfigs(ctx, read, a.ProjectID, &cid, &prod, nil); err != nil {
			return err
		}
	default:
		if cfgs, err = projectConfigs(ctx, read, a.ProjectID, nil, &prod, nil); err != nil {
			return err
		}
	}
	if len(cfgs) == 0 {
		return parley.Invalid("No production WhatsApp configurations found")
	}
	// Group by WABA, in the order of the configs (oldest first).
	var wabas []string
	anchors := map[string]*parley.WhatsAppConfig{}
	var missing []string
	for _, cfg := range cfgs {
		if cfg.BusinessAccountID == nil || *cfg.BusinessAccountID == "" {
			missing = append(missing, cfg.ID)
			continue
		}
		if _, ok := anchors[*cfg.BusinessAccountID]; !ok {
			wabas = append(wabas, *cfg.BusinessAccountID)
			anchors[*cfg.BusinessAccountID] = cfg
		}
	}
	if len(wabas) == 0 {
		return missingWABA(missing...)
	}
	runs := make([]*parley.TemplateSyncRun, 0, len(wabas))
	enqueued, inProgress := 0, 0
	for _, waba := range wabas {
		run, created, err := h.queueRun(ctx, a.ProjectID, waba, anchors[waba])
		if err != nil {
			return err
		}
		if created {
			enqueued++
		} else {
			inProgress++
		}
		runs = append(runs, run)
	}
	if enqueued > 0 {
		h.s.JobsEnqueued()
	}
	attachAnchors(ctx, read, a.ProjectID, runs)
	api.WriteJSON(w, http.StatusAccepted, map[string]any{
		"status":        parley.SyncQueued,
		"sync_requests": renderRuns(runs),
		"summary":       map[string]int{"total_requests": len(runs), "jobs_enqueued": enqueued, "already_in_progress": inProgress},
	})
	return nil
}

// queueRun returns the WABA's active sync run, or creates one with its job.
// The unique index on active runs settles concurrent requests: the loser
// returns the winner's run.
func (h *handler) queueRun(ctx context.Context, projectID, waba string, anchor *parley.WhatsAppConfig) (*parley.TemplateSyncRun, bool, error) {
	var run *parley.TemplateSyncRun
	created := false
	err := h.s.DB.Tx(ctx, func(tx *store.Conn) error {
		created = false
		cur, err := activeRun(ctx, tx, projectID, waba)
		if err != nil || cur != nil {
			run = cur
			return err
		}
		kind := anchor.Kind
		group, err := projectConfigs(ctx, tx, projectID, nil, &kind, &waba)
		if err != nil {
			return err
		}
		affected := make([]string, 0, len(group))
		for _, c := range group {
			affected = append(affected, c.ID)
		}
		anchorID := anchor.ID
		r := &parley.TemplateSyncRun{ProjectID: projectID, BusinessAccountID: waba, AnchorWhatsAppConfigID: &anchorID,
			AffectedWhatsAppConfigIDs: affected}
		if err := insertRun(ctx, tx, r); err != nil {
			return err
		}
		jobID, err := jobs.Enqueue(ctx, tx, JobTemplateSync, syncPayload{SyncRunID: r.ID}, jobs.Options{MaxAttempts: 5})
		if err != nil {
			return err
		}
		r.JobID = &jobID
		if err := updateRun(ctx, tx, r); err != nil {
			return err
		}
		run, created = r, true
		return nil
	})
	if errors.Is(err, errActiveRunExists) {
		run, err = activeRun(ctx, h.s.DB.Write(), projectID, waba)
		if err == nil && run == nil {
			err = errors.New("templates: active sync run vanished")
		}
		return run, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return run, created, nil
}

// syncRunView is a sync run as the API renders it (Kapso's
// WhatsappTemplateSyncRun).
type syncRunView struct {
	*parley.TemplateSyncRun
	AnchorWhatsAppConfig *syncAnchorView `json:"anchor_whatsapp_config,omitempty"`
}

// syncAnchorView is the anchor config of a sync run (Kapso's WhatsappConfig):
// the fields that schema does not allow to be null are omitted when unknown.
type syncAnchorView struct {
	*parley.SyncAnchorConfig
	BusinessAccountID            *string `json:"business_account_id,omitempty"`
	DisplayPhoneNumber           *string `json:"display_phone_number,omitempty"`
	DisplayPhoneNumberNormalized *string `json:"display_phone_number_normalized,omitempty"`
	CustomerID                   *string `json:"customer_id,omitempty"`
}

// renderRuns returns the API views of runs (never nil).
func renderRuns(runs []*parley.TemplateSyncRun) []syncRunView {
	out := make([]syncRunView, len(runs))
	for i, r := range runs {
		out[i] = syncRunView{TemplateSyncRun: r}
		if a := r.AnchorWhatsAppConfig; a != nil {
			out[i].AnchorWhatsAppConfig = &syncAnchorView{SyncAnchorConfig: a, BusinessAccountID: a.BusinessAccountID,
				DisplayPhoneNumber: a.DisplayPhoneNumber, DisplayPhoneNumberNormalized: a.DisplayPhoneNumberNormalized,
				CustomerID: a.CustomerID}
		}
	}
	return out
}

// attachAnchors fills each run's anchor summary (when the config still exists).
func attachAnchors(ctx context.Context, c *store.Conn, projectID string, runs []*parley.TemplateSyncRun) {
	for _, r := range runs {
		if r.AnchorWhatsAppConfigID == nil {
			continue
		}
		if cfg, err := store.GetConfig(ctx, c, projectID, *r.AnchorWhatsAppConfigID); err == nil {
			r.AnchorWhatsAppConfig = parley.NewSyncAnchorConfig(cfg)
		}
	}
}

func (h *handler) syncStatus(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	ctx := r.Context()
	read := h.s.DB.Read()
	q := r.URL.Query()
	var ids []string
	if raw := append(q["sync_request_ids"], q["sync_request_ids[]"]...); len(raw) > 0 {
		ids = []string{}
		for _, part := range raw {
			for _, id := range strings.Split(part, ",") {
				if id = strings.TrimSpace(id); api.IsUUID(id) {
					ids = append(ids, strings.ToLower(id))
				}
			}
		}
		if len(ids) > 1000 {
			ids = ids[:1000]
		}
	}
	var wabas []string
	restrict := func(set []string) {
		if wabas == nil {
			wabas = set
			return
		}
		wabas = slices.DeleteFunc(wabas, func(w string) bool { return !slices.Contains(set, w) })
	}
	if v, ok := query(r, "business_account_id"); ok {
		restrict([]string{v})
	}
	if v, ok := query(r, "whatsapp_config_id"); ok {
		cfg, err := lookupConfig(ctx, read, a.ProjectID, v, parley.NotFound("WhatsApp configuration"))
		if err != nil {
			return err
		}
		set := []string{}
		if cfg.BusinessAccountID != nil {
			set = append(set, *cfg.BusinessAccountID)
		}
		restrict(set)
	}
	if v, ok := query(r, "customer_id"); ok {
		cid, err := lookupCustomer(ctx, read, a.ProjectID, v)
		if err != nil {
			return err
		}
		prod := parley.KindProduction
		cfgs, err := projectConfigs(ctx, read, a.ProjectID, &cid, &prod, nil)
		if err != nil {
			return err
		}
		set := []string{}
		for _, c := range cfgs {
			if c.BusinessAccountID != nil && !slices.Contains(set, *c.BusinessAccountID) {
				set = append(set, *c.BusinessAccountID)
			}
		}
		restrict(set)
	}
	runs, err := listRuns(ctx, read, a.ProjectID, ids, wabas)
	if err != nil {
		return err
	}
	attachAnchors(ctx, read, a.ProjectID, runs)
	counts := map[string]int{}
	removed := 0
	var last *time.Time
	for _, run := range runs {
		counts[run.Status]++
		removed += run.Removed
		if run.FinishedAt != nil && (last == nil || run.FinishedAt.After(*last)) {
			last = run.FinishedAt
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"sync_requests": renderRuns(runs),
		"summary": map[string]any{
			"total_requests": len(runs), "queued": counts[parley.SyncQueued], "running": counts[parley.SyncRunning],
			"succeeded": counts[parley.SyncSucceeded], "failed": counts[parley.SyncFailed],
			"last_finished_at": last, "templates_removed": removed,
		},
	})
	return nil
}

// runSync is the template_sync job: it imports the WABA's templates from
// Meta, creating and updating local rows and marking those Meta no longer
// has as removed. It is idempotent: a finished run is left alone.
func runSync(ctx context.Context, s *api.Server, j *jobs.Job) error {
	var p syncPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.SyncRunID == "" {
		return jobs.Permanent(fmt.Errorf("templates: bad sync payload: %s", j.Payload))
	}
	run, err := getRunByID(ctx, s.DB.Write(), p.SyncRunID)
	if parley.IsNotFound(err) {
		return nil // the project was deleted
	}
	if err != nil {
		return err
	}
	if run.Status == parley.SyncSucceeded || run.Status == parley.SyncFailed {
		return nil
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	run.Status = parley.SyncRunning
	if run.StartedAt == nil {
		run.StartedAt = &now
	}
	if err := updateRun(ctx, s.DB.Write(), run); err != nil {
		return err
	}
	fail := func(class, msg string) error {
		t := time.Now().UTC().Truncate(time.Microsecond)
		run.Status, run.FinishedAt, run.ErrorClass, run.ErrorMessage = parley.SyncFailed, &t, &class, &msg
		return updateRun(ctx, s.DB.Write(), run)
	}
	cfg, group, err := syncConfigs(ctx, s.DB.Write(), run)
	if err != nil {
		return err
	}
	if cfg == nil {
		return fail("WhatsappConfigNotFound", "No WhatsApp configuration found for business account "+run.BusinessAccountID)
	}
	token := ""
	if cfg.AccessTokenEnc != "" {
		if token, err = s.Box.Decrypt(cfg.AccessTokenEnc); err != nil {
			return fail("SecretError", "The access token of the WhatsApp configuration cannot be decrypted")
		}
	}
	list, err := graphFor(s, cfg).ListAllTemplates(ctx, sandboxToken(cfg, token), run.BusinessAccountID, whatsapp.ListTemplatesOptions{})
	if err != nil {
		if whatsapp.IsRetryable(err) && !j.LastAttempt() && ctx.Err() == nil {
			return err
		}
		msg := err.Error()
		var ge *whatsapp.GraphError
		if errors.As(err, &ge) {
			msg = firstNonEmpty(ge.Details, ge.Title, ge.Message)
		}
		return fail("WhatsappApiError", msg)
	}
	return s.DB.Tx(ctx, func(tx *store.Conn) error {
		counts, err := importTemplates(ctx, tx, run, list, group)
		if err != nil {
			return err
		}
		t := time.Now().UTC().Truncate(time.Microsecond)
		run.SyncCounts, run.Status, run.FinishedAt = counts, parley.SyncSucceeded, &t
		run.Results = map[string]parley.SyncCounts{}
		for _, id := range group {
			run.Results[id] = counts
		}
		return updateRun(ctx, tx, run)
	})
}

// syncConfigs returns the config whose token a sync uses (the anchor, else
// another config on the WABA) and the ids of the configs imported templates
// are linked to.
func syncConfigs(ctx context.Context, c *store.Conn, run *parley.TemplateSyncRun) (*parley.WhatsAppConfig, []string, error) {
	waba := run.BusinessAccountID
	all, err := projectConfigs(ctx, c, run.ProjectID, nil, nil, &waba)
	if err != nil || len(all) == 0 {
		return nil, nil, err
	}
	var anchor *parley.WhatsAppConfig
	for _, cfg := range all {
		if run.AnchorWhatsAppConfigID != nil && cfg.ID == *run.AnchorWhatsAppConfigID {
			anchor = cfg
		}
	}
	if anchor == nil {
		anchor = all[0]
	}
	var group []string
	for _, cfg := range all {
		if cfg.Kind == anchor.Kind {
			group = append(group, cfg.ID)
		}
	}
	return anchor, group, nil
}

func compactJSON(raw []byte) string {
	var b bytes.Buffer
	if len(raw) == 0 || json.Compact(&b, raw) != nil {
		return "[]"
	}
	return b.String()
}

func eqPtr(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// importTemplates applies Meta's list to the WABA's local templates.
func importTemplates(ctx context.Context, tx *store.Conn, run *parley.TemplateSyncRun, list []whatsapp.Template, group []string) (parley.SyncCounts, error) {
	var counts parley.SyncCounts
	existing, err := WABATemplates(ctx, tx, run.ProjectID, run.BusinessAccountID)
	if err != nil {
		return counts, err
	}
	byMeta := map[string]*parley.Template{}
	byKey := map[string]*parley.Template{}
	for _, t := range existing {
		if t.MetaTemplateID != nil {
			byMeta[*t.MetaTemplateID] = t
		}
		byKey[t.Name+"\x00"+t.LanguageCode] = t
	}
	seen := map[string]bool{}
	waba := run.BusinessAccountID
	for _, mt := range list {
		if mt.Name == "" || mt.Language == "" {
			continue
		}
		counts.Synced++
		t := byMeta[mt.ID]
		if t == nil {
			t = byKey[mt.Name+"\x00"+mt.Language]
		}
		comps := compactJSON(mt.Components)
		parsed := decodeComponents([]byte(comps))
		metaStatus := strings.ToUpper(mt.Status)
		pf := strings.ToUpper(mt.ParameterFormat)
		if pf != parley.ParamsNamed {
			pf = parley.ParamsPositional
		}
		var metaID *string
		if mt.ID != "" {
			id := mt.ID
			metaID = &id
		}
		if t == nil {
			status := MapStatus(metaStatus)
			if status == "" {
				status = parley.TemplateSubmitted
			}
			nt := &parley.Template{
				ProjectID: run.ProjectID, Name: mt.Name, LanguageCode: mt.Language, Category: mapCategory(mt.Category, ""),
				Status: status, Content: bodyText(parsed), ParameterCount: parameterCount(parsed), ParameterFormat: pf,
				BusinessAccountID: &waba, Components: json.RawMessage(comps), Metadata: parley.JSONObject{},
				MetaTemplateID: metaID, MetaStatus: &metaStatus, RejectedReason: reasonOf(mt.RejectedReason),
				WhatsAppConfigIDs: group,
			}
			if mt.SubCategory != "" {
				nt.Metadata["sub_category"] = mt.SubCategory
			}
			if err := InsertTemplate(ctx, tx, nt); err != nil {
				return counts, err
			}
			byKey[nt.Name+"\x00"+nt.LanguageCode] = nt
			seen[nt.ID] = true
			counts.Created++
			continue
		}
		seen[t.ID] = true
		before := *t
		if s := MapStatus(metaStatus); s != "" {
			t.Status = s
		}
		t.MetaStatus, t.MetaTemplateID = &metaStatus, metaID
		t.Category = mapCategory(mt.Category, t.Category)
		t.ParameterFormat = pf
		if len(mt.Components) > 0 {
			t.Components, t.Content, t.ParameterCount = json.RawMessage(comps), bodyText(parsed), parameterCount(parsed)
		}
		if t.Status == parley.TemplateRejected {
			t.RejectedReason = reasonOf(mt.RejectedReason)
		} else {
			t.RejectedReason = nil
		}
		if mt.SubCategory != "" {
			if t.Metadata == nil {
				t.Metadata = parley.JSONObject{}
			}
			t.Metadata["sub_category"] = mt.SubCategory
		}
		changed := before.Status != t.Status || before.Category != t.Category || before.ParameterFormat != t.ParameterFormat ||
			compactJSON(before.Components) != compactJSON(t.Components) || !eqPtr(before.MetaTemplateID, t.MetaTemplateID) ||
			!eqPtr(before.MetaStatus, t.MetaStatus) || !eqPtr(before.RejectedReason, t.RejectedReason)
		if changed {
			if err := UpdateTemplate(ctx, tx, t, false); err != nil {
				return counts, err
			}
			counts.Updated++
		}
		if err := linkConfigs(ctx, tx, t.ID, group); err != nil {
			return counts, err
		}
	}
	for _, t := range existing {
		// Drafts never reached Meta; everything else Meta no longer lists
		// was deleted there.
		if seen[t.ID] || t.MetaTemplateID == nil || t.Status == parley.TemplateRemoved {
			continue
		}
		t.Status = parley.TemplateRemoved
		if err := UpdateTemplate(ctx, tx, t, false); err != nil {
			return counts, err
		}
		counts.Removed++
	}
	return counts, nil
}
