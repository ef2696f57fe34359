package templates

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Filter holds the list filters of GET /whatsapp_templates. Nil means "not
// filtered".
type Filter struct {
	CustomerID        *string
	NameCont          string
	LanguageCode      *string
	Category          *string
	Status            *string
	BusinessAccountID *string
	ConfigID          *string
}

const templateCols = `id, project_id, name, language_code, category, status, content, parameter_count, parameter_format,
	business_account_id, components, metadata, meta_template_id, meta_status, rejected_reason, created_at, updated_at`

func scanTemplate(s store.Scanner) (*parley.Template, error) {
	var t parley.Template
	var content, waba, metaID, metaStatus, reason sql.NullString
	var comps, meta string
	var ca, ua int64
	if err := s.Scan(&t.ID, &t.ProjectID, &t.Name, &t.LanguageCode, &t.Category, &t.Status, &content, &t.ParameterCount,
		&t.ParameterFormat, &waba, &comps, &meta, &metaID, &metaStatus, &reason, &ca, &ua); err != nil {
		return nil, err
	}
	t.Content = content.String
	t.BusinessAccountID, t.MetaTemplateID, t.MetaStatus, t.RejectedReason = store.StrPtr(waba), store.StrPtr(metaID), store.StrPtr(metaStatus), store.StrPtr(reason)
	t.Components = json.RawMessage(comps)
	if !json.Valid(t.Components) {
		t.Components = json.RawMessage("[]")
	}
	_ = store.FromJSON(meta, &t.Metadata)
	t.CreatedAt, t.UpdatedAt = store.Time(ca), store.Time(ua)
	return &t, nil
}

func queryTemplates(ctx context.Context, c *store.Conn, query string, args ...any) ([]*parley.Template, error) {
	out, err := store.QueryAll(ctx, c, scanTemplate, query, args...)
	if err != nil {
		return nil, fmt.Errorf("templates: query: %w", err)
	}
	return out, loadConfigIDs(ctx, c, out)
}

// loadConfigIDs fills WhatsAppConfigIDs of ts with one query.
func loadConfigIDs(ctx context.Context, c *store.Conn, ts []*parley.Template) error {
	if len(ts) == 0 {
		return nil
	}
	byID := map[string]*parley.Template{}
	args := make([]any, 0, len(ts))
	for _, t := range ts {
		byID[t.ID] = t
		t.WhatsAppConfigIDs = []string{}
		args = append(args, t.ID)
	}
	rows, err := c.Query(ctx, `SELECT tc.template_id, tc.whatsapp_config_id FROM template_configs tc
		JOIN whatsapp_configs wc ON wc.id = tc.whatsapp_config_id
		WHERE tc.template_id IN (`+store.Placeholders(len(args))+`) ORDER BY wc.created_at, wc.id`, args...)
	if err != nil {
		return fmt.Errorf("templates: load configs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tid, cid string
		if err := rows.Scan(&tid, &cid); err != nil {
			return err
		}
		byID[tid].WhatsAppConfigIDs = append(byID[tid].WhatsAppConfigIDs, cid)
	}
	return rows.Err()
}

// ListTemplates returns a page of a project's templates, newest first.
func ListTemplates(ctx context.Context, c *store.Conn, projectID string, f Filter, p parley.Page) ([]*parley.Template, int, error) {
	where := ` WHERE t.project_id = ?`
	args := []any{projectID}
	if f.NameCont != "" {
		where += ` AND t.name ` + c.ILike() + ` ? ESCAPE '\'`
		args = append(args, "%"+store.EscapeLike(f.NameCont)+"%")
	}
	for _, eq := range []struct {
		col string
		v   *string
	}{{"language_code", f.LanguageCode}, {"category", f.Category}, {"status", f.Status}, {"business_account_id", f.BusinessAccountID}} {
		if eq.v != nil {
			where += ` AND t.` + eq.col + ` = ?`
			args = append(args, *eq.v)
		}
	}
	if f.ConfigID != nil {
		where += ` AND EXISTS (SELECT 1 FROM template_configs tc WHERE tc.template_id = t.id AND tc.whatsapp_config_id = ?)`
		args = append(args, *f.ConfigID)
	}
	if f.CustomerID != nil {
		where += ` AND EXISTS (SELECT 1 FROM template_configs tc JOIN whatsapp_configs wc ON wc.id = tc.whatsapp_config_id
			WHERE tc.template_id = t.id AND wc.customer_id = ?)`
		args = append(args, *f.CustomerID)
	}
	var total int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM templates t`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("templates: count: %w", err)
	}
	out, err := queryTemplates(ctx, c, `SELECT `+prefixed("t.", templateCols)+` FROM templates t`+where+
		` ORDER BY t.created_at DESC, t.id DESC LIMIT ? OFFSET ?`, append(args, p.PerPage, p.Offset())...)
	return out, total, err
}

func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// GetTemplate returns a project's template.
func GetTemplate(ctx context.Context, c *store.Conn, projectID, id string) (*parley.Template, error) {
	ts, err := queryTemplates(ctx, c, `SELECT `+templateCols+` FROM templates WHERE project_id = ? AND id = ?`, projectID, id)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, parley.NotFound("Template")
	}
	return ts[0], nil
}

// FindTemplate finds a project's template by Meta's id, else by (WABA, name,
// language). It returns nil, nil when there is none.
func FindTemplate(ctx context.Context, c *store.Conn, projectID, metaID, waba, name, language string) (*parley.Template, error) {
	if metaID != "" {
		ts, err := queryTemplates(ctx, c, `SELECT `+templateCols+` FROM templates WHERE project_id = ? AND meta_template_id = ?
			ORDER BY created_at LIMIT 1`, projectID, metaID)
		if err != nil || len(ts) > 0 {
			return first(ts), err
		}
	}
	if waba == "" || name == "" || language == "" {
		return nil, nil
	}
	ts, err := queryTemplates(ctx, c, `SELECT `+templateCols+` FROM templates WHERE project_id = ? AND business_account_id = ?
		AND name = ? AND language_code = ?`, projectID, waba, name, language)
	return first(ts), err
}

func first(ts []*parley.Template) *parley.Template {
	if len(ts) == 0 {
		return nil
	}
	return ts[0]
}

// WABATemplates returns every template of a project's WABA.
func WABATemplates(ctx context.Context, c *store.Conn, projectID, waba string) ([]*parley.Template, error) {
	return queryTemplates(ctx, c, `SELECT `+templateCols+` FROM templates WHERE project_id = ? AND business_account_id = ?
		ORDER BY created_at, id`, projectID, waba)
}

func templateArgs(t *parley.Template) []any {
	meta := t.Metadata
	if meta == nil {
		meta = parley.JSONObject{}
	}
	comps := string(t.Components)
	if comps == "" {
		comps = "[]"
	}
	return []any{t.Name, t.LanguageCode, t.Category, t.Status, t.Content, t.ParameterCount, t.ParameterFormat,
		store.NullStr(t.BusinessAccountID), comps, store.JSON(map[string]any(meta)), store.NullStr(t.MetaTemplateID),
		store.NullStr(t.MetaStatus), store.NullStr(t.RejectedReason)}
}

var errNameTaken = parley.Invalid("Invalid template", "Name has already been taken for this language")

// InsertTemplate inserts t and links it to t.WhatsAppConfigIDs. A taken
// (WABA, name, language) is a 422.
func InsertTemplate(ctx context.Context, c *store.Conn, t *parley.Template) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	if t.ID == "" {
		t.ID = store.NewID()
	}
	t.CreatedAt, t.UpdatedAt = now, now
	args := append([]any{t.ID, t.ProjectID}, templateArgs(t)...)
	args = append(args, store.Micros(now), store.Micros(now))
	_, err := c.Exec(ctx, `INSERT INTO templates (`+templateCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if store.IsUniqueViolation(err) {
		return errNameTaken
	}
	if err != nil {
		return fmt.Errorf("templates: insert: %w", err)
	}
	return linkConfigs(ctx, c, t.ID, t.WhatsAppConfigIDs)
}

// UpdateTemplate saves every column of t and, when relink is set, replaces
// its config links with t.WhatsAppConfigIDs.
func UpdateTemplate(ctx context.Context, c *store.Conn, t *parley.Template, relink bool) error {
	t.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	args := append(templateArgs(t), store.Micros(t.UpdatedAt), t.ProjectID, t.ID)
	res, err := c.Exec(ctx, `UPDATE templates SET name = ?, language_code = ?, category = ?, status = ?, content = ?, parameter_count = ?,
		parameter_format = ?, business_account_id = ?, components = ?, metadata = ?, meta_template_id = ?, meta_status = ?,
		rejected_reason = ?, updated_at = ? WHERE project_id = ? AND id = ?`, args...)
	if store.IsUniqueViolation(err) {
		return errNameTaken
	}
	if err != nil {
		return fmt.Errorf("templates: update: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("Template")
	}
	if !relink {
		return nil
	}
	if _, err := c.Exec(ctx, `DELETE FROM template_configs WHERE template_id = ?`, t.ID); err != nil {
		return fmt.Errorf("templates: unlink: %w", err)
	}
	return linkConfigs(ctx, c, t.ID, t.WhatsAppConfigIDs)
}

func linkConfigs(ctx context.Context, c *store.Conn, templateID string, configIDs []string) error {
	for _, id := range configIDs {
		if _, err := c.Exec(ctx, `INSERT INTO template_configs (template_id, whatsapp_config_id) VALUES (?, ?)
			ON CONFLICT (template_id, whatsapp_config_id) DO NOTHING`, templateID, id); err != nil {
			return fmt.Errorf("templates: link config: %w", err)
		}
	}
	return nil
}

// projectConfigs returns a project's configs, oldest first, optionally only
// those of a customer, a kind or a WABA.
func projectConfigs(ctx context.Context, c *store.Conn, projectID string, customerID, kind, waba *string) ([]*parley.WhatsAppConfig, error) {
	var all []*parley.WhatsAppConfig
	f := store.ConfigFilter{CustomerID: customerID, Kind: kind, BusinessAccountIDEq: waba}
	for page := 1; ; page++ {
		items, total, err := store.ListConfigs(ctx, c, projectID, f, parley.Page{Page: page, PerPage: 1000})
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if len(all) >= total || len(items) == 0 {
			break
		}
	}
	// ListConfigs is newest first; "first config" means the oldest.
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all, nil
}

// ---- sync runs ----

const runCols = `id, project_id, business_account_id, anchor_whatsapp_config_id, status, templates_synced, templates_created,
	templates_updated, templates_removed, job_id, error_class, error_message, results, affected_whatsapp_config_ids,
	queued_at, started_at, finished_at, created_at, updated_at`

func scanRun(s store.Scanner) (*parley.TemplateSyncRun, error) {
	var r parley.TemplateSyncRun
	var anchor, job, ec, em sql.NullString
	var results, affected string
	var started, finished sql.NullInt64
	var qa, ca, ua int64
	if err := s.Scan(&r.ID, &r.ProjectID, &r.BusinessAccountID, &anchor, &r.Status, &r.Synced, &r.Created, &r.Updated, &r.Removed,
		&job, &ec, &em, &results, &affected, &qa, &started, &finished, &ca, &ua); err != nil {
		return nil, err
	}
	r.AnchorWhatsAppConfigID, r.JobID, r.ErrorClass, r.ErrorMessage = store.StrPtr(anchor), store.StrPtr(job), store.StrPtr(ec), store.StrPtr(em)
	r.Results = map[string]parley.SyncCounts{}
	_ = store.FromJSON(results, &r.Results)
	_ = store.FromJSON(affected, &r.AffectedWhatsAppConfigIDs)
	if r.AffectedWhatsAppConfigIDs == nil {
		r.AffectedWhatsAppConfigIDs = []string{}
	}
	r.QueuedAt, r.StartedAt, r.FinishedAt = store.Time(qa), store.TimePtr(started), store.TimePtr(finished)
	r.CreatedAt, r.UpdatedAt = store.Time(ca), store.Time(ua)
	return &r, nil
}

func queryRuns(ctx context.Context, c *store.Conn, query string, args ...any) ([]*parley.TemplateSyncRun, error) {
	out, err := store.QueryAll(ctx, c, scanRun, query, args...)
	if err != nil {
		return nil, fmt.Errorf("templates: query sync runs: %w", err)
	}
	return out, nil
}

// activeRun returns the queued or running sync of a WABA, or nil.
func activeRun(ctx context.Context, c *store.Conn, projectID, waba string) (*parley.TemplateSyncRun, error) {
	rs, err := queryRuns(ctx, c, `SELECT `+runCols+` FROM template_sync_runs WHERE project_id = ? AND business_account_id = ?
		AND status IN ('queued', 'running') ORDER BY created_at DESC LIMIT 1`, projectID, waba)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return rs[0], nil
}

// getRunByID returns a sync run of any project (for the job, which carries
// an id checked when it was enqueued).
func getRunByID(ctx context.Context, c *store.Conn, id string) (*parley.TemplateSyncRun, error) {
	rs, err := queryRuns(ctx, c, `SELECT `+runCols+` FROM template_sync_runs WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, parley.NotFound("Sync request")
	}
	return rs[0], nil
}

// errActiveRunExists reports the unique index on active runs refusing a
// second one.
var errActiveRunExists = errors.New("templates: an active sync run exists")

// insertRun inserts a queued run.
func insertRun(ctx context.Context, c *store.Conn, r *parley.TemplateSyncRun) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	r.ID, r.Status, r.QueuedAt, r.CreatedAt, r.UpdatedAt = store.NewID(), parley.SyncQueued, now, now, now
	if r.Results == nil {
		r.Results = map[string]parley.SyncCounts{}
	}
	_, err := c.Exec(ctx, `INSERT INTO template_sync_runs (`+runCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ProjectID, r.BusinessAccountID, store.NullStr(r.AnchorWhatsAppConfigID), r.Status, r.Synced, r.Created, r.Updated, r.Removed,
		store.NullStr(r.JobID), store.NullStr(r.ErrorClass), store.NullStr(r.ErrorMessage), store.JSON(r.Results),
		store.JSON(r.AffectedWhatsAppConfigIDs), store.Micros(r.QueuedAt), store.NullMicros(r.StartedAt), store.NullMicros(r.FinishedAt),
		store.Micros(now), store.Micros(now))
	if store.IsUniqueViolation(err) {
		return errActiveRunExists
	}
	if err != nil {
		return fmt.Errorf("templates: insert sync run: %w", err)
	}
	return nil
}

// updateRun saves a run's progress columns.
func updateRun(ctx context.Context, c *store.Conn, r *parley.TemplateSyncRun) error {
	r.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	_, err := c.Exec(ctx, `UPDATE template_sync_runs SET status = ?, templates_synced = ?, templates_created = ?, templates_updated = ?,
		templates_removed = ?, job_id = ?, error_class = ?, error_message = ?, results = ?, started_at = ?, finished_at = ?, updated_at = ?
		WHERE id = ?`, r.Status, r.Synced, r.Created, r.Updated, r.Removed, store.NullStr(r.JobID), store.NullStr(r.ErrorClass),
		store.NullStr(r.ErrorMessage), store.JSON(r.Results), store.NullMicros(r.StartedAt), store.NullMicros(r.FinishedAt),
		store.Micros(r.UpdatedAt), r.ID)
	if err != nil {
		return fmt.Errorf("templates: update sync run: %w", err)
	}
	return nil
}

// listRuns returns a project's sync runs, newest first: those with the given
// ids when ids is not nil, else the latest per WABA. wabas, when not nil,
// restricts the WABAs.
func listRuns(ctx context.Context, c *store.Conn, projectID string, ids, wabas []string) ([]*parley.TemplateSyncRun, error) {
	where := ` WHERE r.project_id = ?`
	args := []any{projectID}
	if ids != nil {
		if len(ids) == 0 {
			return []*parley.TemplateSyncRun{}, nil
		}
		where += ` AND r.id IN (` + store.Placeholders(len(ids)) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	} else {
		where += ` AND r.created_at = (SELECT MAX(r2.created_at) FROM template_sync_runs r2
			WHERE r2.project_id = r.project_id AND r2.business_account_id = r.business_account_id)`
	}
	if wabas != nil {
		if len(wabas) == 0 {
			return []*parley.TemplateSyncRun{}, nil
		}
		where += ` AND r.business_account_id IN (` + store.Placeholders(len(wabas)) + `)`
		for _, w := range wabas {
			args = append(args, w)
		}
	}
	rs, err := queryRuns(ctx, c, `SELECT `+prefixed("r.", runCols)+` FROM template_sync_runs r`+where+
		` ORDER BY r.created_at DESC, r.id DESC LIMIT 1000`, args...)
	if err != nil || ids != nil {
		return rs, err
	}
	// Two runs of a WABA created in the same microsecond: keep one.
	seen := map[string]bool{}
	out := rs[:0]
	for _, r := range rs {
		if !seen[r.BusinessAccountID] {
			seen[r.BusinessAccountID] = true
			out = append(out, r)
		}
	}
	return out, nil
}
