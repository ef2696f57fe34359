package sandbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// newNumericID returns a 16-digit id shaped like Meta's node ids.
func newNumericID() string {
	n, err := rand.Int(rand.Reader, big.NewInt(9e15))
	if err != nil {
		return fmt.Sprint(time.Now().UnixNano())
	}
	return fmt.Sprint(n.Int64() + 1e15)
}

// sandboxConfigByPhone returns the sandbox config of a phone_number_id.
func sandboxConfigByPhone(ctx context.Context, c *store.Conn, phoneNumberID string) (*parley.WhatsAppConfig, error) {
	cfg, err := store.GetConfigByPhoneNumberID(ctx, c, phoneNumberID)
	if err != nil {
		return nil, err
	}
	if !cfg.IsSandbox() {
		return nil, parley.NotFound("Sandbox config")
	}
	return cfg, nil
}

// sandboxConfigByWABA returns the oldest sandbox config of a WABA.
func sandboxConfigByWABA(ctx context.Context, c *store.Conn, wabaID string) (*parley.WhatsAppConfig, error) {
	var id string
	err := c.QueryRow(ctx, `SELECT id FROM whatsapp_configs WHERE kind = ? AND business_account_id = ? ORDER BY created_at, id LIMIT 1`,
		parley.KindSandbox, wabaID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Sandbox config")
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: config by waba: %w", err)
	}
	return store.GetConfigByID(ctx, c, id)
}

// lastInbound returns when the customer last wrote to the config, or nil.
// Stored phone numbers are digits; a leading '+' is tolerated.
func lastInbound(ctx context.Context, c *store.Conn, configID, phone string) (*time.Time, error) {
	var at sql.NullInt64
	err := c.QueryRow(ctx, `SELECT MAX(created_at) FROM messages WHERE whatsapp_config_id = ? AND phone_number IN (?, ?) AND direction = 'inbound'`,
		configID, phone, "+"+phone).Scan(&at)
	if err != nil {
		return nil, fmt.Errorf("sandbox: last inbound: %w", err)
	}
	return store.TimePtr(at), nil
}

// ensureWABA is ensureWABA in a transaction of its own (after a read that
// finds most WABAs already recorded): the WABA row and its hello_world
// commit together, so concurrent first sends to a new WABA (a broadcast's)
// never see the WABA without its template.
func (sim *Simulator) ensureWABA(ctx context.Context, wabaID string) error {
	var one int
	err := sim.s.DB.Read().QueryRow(ctx, `SELECT 1 FROM sandbox_wabas WHERE waba_id = ?`, wabaID).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sandbox: find waba: %w", err)
	}
	return sim.s.DB.Tx(ctx, func(tx *store.Conn) error { return ensureWABA(ctx, tx, wabaID) })
}

// ensureWABA records a sandbox WABA on first use and seeds it with Meta's
// default hello_world template, as every new WABA has.
func ensureWABA(ctx context.Context, c *store.Conn, wabaID string) error {
	now := store.Micros(time.Now())
	res, err := c.Exec(ctx, `INSERT INTO sandbox_wabas (waba_id, subscribed, created_at) VALUES (?, ?, ?) ON CONFLICT (waba_id) DO NOTHING`,
		wabaID, true, now)
	if err != nil {
		return fmt.Errorf("sandbox: ensure waba: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	hello := []map[string]any{
		{"type": "HEADER", "format": "TEXT", "text": "Hello World"},
		{"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us."},
		{"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
	}
	_, err = c.Exec(ctx, `INSERT INTO sandbox_templates (id, waba_id, name, language, category, status, parameter_format, components, created_at, updated_at)
		VALUES (?, ?, 'hello_world', 'en_US', 'UTILITY', 'APPROVED', 'POSITIONAL', ?, ?, ?) ON CONFLICT (waba_id, name, language) DO NOTHING`,
		newNumericID(), wabaID, store.JSON(hello), now, now)
	if err != nil {
		return fmt.Errorf("sandbox: seed templates: %w", err)
	}
	return nil
}

// subscribed reports whether the WABA's webhooks are subscribed.
func subscribed(ctx context.Context, c *store.Conn, wabaID string) (bool, error) {
	var on bool
	err := c.QueryRow(ctx, `SELECT subscribed FROM sandbox_wabas WHERE waba_id = ?`, wabaID).Scan(&on)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	return on, err
}

func setSubscribed(ctx context.Context, c *store.Conn, wabaID string, on bool) error {
	if err := ensureWABA(ctx, c, wabaID); err != nil {
		return err
	}
	_, err := c.Exec(ctx, `UPDATE sandbox_wabas SET subscribed = ? WHERE waba_id = ?`, on, wabaID)
	return err
}

// template is a sandbox message template.
type template struct {
	ID              string
	WABAID          string
	Name            string
	Language        string
	Category        string
	Status          string
	ParameterFormat string
	Components      json.RawMessage
	CreatedAt       time.Time
}

// graph renders the template as Meta's template node.
func (t *template) graph() map[string]any {
	comps := t.Components
	if len(comps) == 0 {
		comps = json.RawMessage("[]")
	}
	return map[string]any{
		"name": t.Name, "parameter_format": t.ParameterFormat, "components": comps,
		"language": t.Language, "status": t.Status, "category": t.Category, "id": t.ID,
	}
}

const templateCols = `id, waba_id, name, language, category, status, parameter_format, components, created_at`

func scanTemplate(s store.Scanner) (*template, error) {
	var t template
	var comps string
	var ca int64
	if err := s.Scan(&t.ID, &t.WABAID, &t.Name, &t.Language, &t.Category, &t.Status, &t.ParameterFormat, &comps, &ca); err != nil {
		return nil, err
	}
	t.Components, t.CreatedAt = json.RawMessage(comps), store.Time(ca)
	return &t, nil
}

func getTemplate(ctx context.Context, c *store.Conn, id string) (*template, error) {
	t, err := scanTemplate(c.QueryRow(ctx, `SELECT `+templateCols+` FROM sandbox_templates WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Template")
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: get template: %w", err)
	}
	return t, nil
}

func findTemplate(ctx context.Context, c *store.Conn, wabaID, name, language string) (*template, error) {
	t, err := scanTemplate(c.QueryRow(ctx, `SELECT `+templateCols+` FROM sandbox_templates WHERE waba_id = ? AND name = ? AND language = ?`,
		wabaID, name, language))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Template")
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: find template: %w", err)
	}
	return t, nil
}

type templateFilter struct {
	Name     string
	Status   string
	Language string
}

func listTemplates(ctx context.Context, c *store.Conn, wabaID string, f templateFilter, limit, offset int) ([]*template, int, error) {
	where := ` WHERE waba_id = ?`
	args := []any{wabaID}
	if f.Name != "" {
		where += ` AND name ` + c.ILike() + ` ? ESCAPE '\'`
		args = append(args, "%"+store.EscapeLike(f.Name)+"%")
	}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, strings.ToUpper(f.Status))
	}
	if f.Language != "" {
		where += ` AND language = ?`
		args = append(args, f.Language)
	}
	out, total, err := store.QueryPage(ctx, c, scanTemplate, `SELECT COUNT(*) FROM sandbox_templates`+where,
		`SELECT `+templateCols+` FROM sandbox_templates`+where+` ORDER BY created_at DESC, id DESC`, args, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("sandbox: list templates: %w", err)
	}
	return out, total, nil
}

// insertTemplate stores a new template; a taken (name, language) is reported
// as errDuplicate.
func insertTemplate(ctx context.Context, c *store.Conn, t *template) error {
	now := time.Now()
	t.ID, t.CreatedAt = newNumericID(), now.UTC()
	_, err := c.Exec(ctx, `INSERT INTO sandbox_templates (`+templateCols+`, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.WABAID, t.Name, t.Language, t.Category, t.Status, t.ParameterFormat, string(t.Components), store.Micros(now), store.Micros(now))
	if store.IsUniqueViolation(err) {
		return errDuplicate
	}
	if err != nil {
		return fmt.Errorf("sandbox: insert template: %w", err)
	}
	return nil
}

var errDuplicate = errors.New("sandbox: duplicate template")

func updateTemplate(ctx context.Context, c *store.Conn, t *template) error {
	_, err := c.Exec(ctx, `UPDATE sandbox_templates SET category = ?, status = ?, components = ?, updated_at = ? WHERE id = ?`,
		t.Category, t.Status, string(t.Components), store.Micros(time.Now()), t.ID)
	if err != nil {
		return fmt.Errorf("sandbox: update template: %w", err)
	}
	return nil
}

// setTemplateStatus moves a template from one status to another; it reports
// false when the template was not in status from (already reviewed, edited
// or deleted), which makes the review job idempotent.
func setTemplateStatus(ctx context.Context, c *store.Conn, id, from, to string) (bool, error) {
	res, err := c.Exec(ctx, `UPDATE sandbox_templates SET status = ?, updated_at = ? WHERE id = ? AND status = ?`,
		to, store.Micros(time.Now()), id, from)
	if err != nil {
		return false, fmt.Errorf("sandbox: set template status: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func deleteTemplates(ctx context.Context, c *store.Conn, wabaID, name, hsmID string) (int64, error) {
	q := `DELETE FROM sandbox_templates WHERE waba_id = ? AND name = ?`
	args := []any{wabaID, name}
	if hsmID != "" {
		q += ` AND id = ?`
		args = append(args, hsmID)
	}
	res, err := c.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("sandbox: delete templates: %w", err)
	}
	return res.RowsAffected()
}

// mediaRow is an uploaded sandbox media object.
type mediaRow struct {
	ID            string
	PhoneNumberID string
	MimeType      string
	SHA256        string // hex
	FileSize      int64
	Filename      string
	Path          string // relative to the media directory
	ExternalURL   string
}

func insertMedia(ctx context.Context, c *store.Conn, m *mediaRow) error {
	m.ID = newNumericID()
	ns := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
	_, err := c.Exec(ctx, `INSERT INTO sandbox_media (id, phone_number_id, mime_type, sha256, file_size, filename, path, external_url, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.ID, m.PhoneNumberID, m.MimeType, m.SHA256, m.FileSize, ns(m.Filename), ns(m.Path),
		ns(m.ExternalURL), store.Micros(time.Now()))
	if err != nil {
		return fmt.Errorf("sandbox: insert media: %w", err)
	}
	return nil
}

func getMedia(ctx context.Context, c *store.Conn, id string) (*mediaRow, error) {
	var m mediaRow
	var name, path, ext sql.NullString
	err := c.QueryRow(ctx, `SELECT id, phone_number_id, mime_type, sha256, file_size, filename, path, external_url FROM sandbox_media WHERE id = ?`, id).
		Scan(&m.ID, &m.PhoneNumberID, &m.MimeType, &m.SHA256, &m.FileSize, &name, &path, &ext)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Media")
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: get media: %w", err)
	}
	m.Filename, m.Path, m.ExternalURL = name.String, path.String, ext.String
	return &m, nil
}

func deleteMedia(ctx context.Context, c *store.Conn, id string) (bool, error) {
	res, err := c.Exec(ctx, `DELETE FROM sandbox_media WHERE id = ?`, id)
	if err != nil {
		return false, fmt.Errorf("sandbox: delete media: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
