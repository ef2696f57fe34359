package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
)

const configCols = `id, project_id, customer_id, name, kind, phone_number_id, business_account_id, display_name,
	display_phone_number, display_phone_number_normalized, is_coexistence, inbound_processing_enabled, calls_enabled,
	webhook_verified_at, created_at, updated_at, access_token_enc, webhook_verify_token_enc, app_secret_enc, webhook_destination_url`

func scanConfig(s Scanner) (*parley.WhatsAppConfig, error) {
	var c parley.WhatsAppConfig
	var cust, waba, dn, dpn, dpnn, tok, vt, as, wdu sql.NullString
	var verified sql.NullInt64
	var ca, ua int64
	if err := s.Scan(&c.ID, &c.ProjectID, &cust, &c.Name, &c.Kind, &c.PhoneNumberID, &waba, &dn, &dpn, &dpnn,
		&c.IsCoexistence, &c.InboundProcessingEnabled, &c.CallsEnabled, &verified, &ca, &ua, &tok, &vt, &as, &wdu); err != nil {
		return nil, err
	}
	c.CustomerID, c.BusinessAccountID, c.DisplayName = StrPtr(cust), StrPtr(waba), StrPtr(dn)
	c.DisplayPhoneNumber, c.DisplayPhoneNumberNormalized = StrPtr(dpn), StrPtr(dpnn)
	c.WebhookVerifiedAt, c.CreatedAt, c.UpdatedAt = TimePtr(verified), Time(ca), Time(ua)
	c.AccessTokenEnc, c.WebhookVerifyTokenEnc, c.AppSecretEnc, c.WebhookDestinationURL = tok.String, vt.String, as.String, StrPtr(wdu)
	return &c, nil
}

// ConfigFilter holds the list filters of GET /whatsapp_configs.
type ConfigFilter struct {
	CustomerID          *string
	BusinessAccountIDEq *string
	NameCont            string
	CreatedAtGteq       *time.Time
	CreatedAtLteq       *time.Time
	Kind                *string
	PhoneNumberIDEq     *string
}

// ListConfigs returns a page of a project's configs, newest first.
func ListConfigs(ctx context.Context, c *Conn, projectID string, f ConfigFilter, p parley.Page) ([]*parley.WhatsAppConfig, int, error) {
	where := ` WHERE project_id = ?`
	args := []any{projectID}
	if f.CustomerID != nil {
		where += ` AND customer_id = ?`
		args = append(args, *f.CustomerID)
	}
	if f.BusinessAccountIDEq != nil {
		where += ` AND business_account_id = ?`
		args = append(args, *f.BusinessAccountIDEq)
	}
	if f.NameCont != "" {
		where += ` AND name ` + c.ILike() + ` ? ESCAPE '\'`
		args = append(args, "%"+EscapeLike(f.NameCont)+"%")
	}
	if f.CreatedAtGteq != nil {
		where += ` AND created_at >= ?`
		args = append(args, Micros(*f.CreatedAtGteq))
	}
	if f.CreatedAtLteq != nil {
		where += ` AND created_at <= ?`
		args = append(args, Micros(*f.CreatedAtLteq))
	}
	if f.Kind != nil {
		where += ` AND kind = ?`
		args = append(args, *f.Kind)
	}
	if f.PhoneNumberIDEq != nil {
		where += ` AND phone_number_id = ?`
		args = append(args, *f.PhoneNumberIDEq)
	}
	out, total, err := QueryPage(ctx, c, scanConfig, `SELECT COUNT(*) FROM whatsapp_configs`+where,
		`SELECT `+configCols+` FROM whatsapp_configs`+where+` ORDER BY created_at DESC, id DESC`, args, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list configs: %w", err)
	}
	return out, total, nil
}

// GetConfig returns a project's config.
func GetConfig(ctx context.Context, c *Conn, projectID, id string) (*parley.WhatsAppConfig, error) {
	cfg, err := scanConfig(c.QueryRow(ctx, `SELECT `+configCols+` FROM whatsapp_configs WHERE project_id = ? AND id = ?`, projectID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("WhatsApp config")
	}
	if err != nil {
		return nil, fmt.Errorf("store: get config: %w", err)
	}
	return cfg, nil
}

// ConfigsByWABA returns the configs of a WhatsApp Business Account in any
// project (template status updates carry only the WABA id), oldest first;
// kind, when not empty, keeps only the configs of that kind.
func ConfigsByWABA(ctx context.Context, c *Conn, wabaID, kind string) ([]*parley.WhatsAppConfig, error) {
	q, args := `SELECT `+configCols+` FROM whatsapp_configs WHERE business_account_id = ?`, []any{wabaID}
	if kind != "" {
		q, args = q+` AND kind = ?`, append(args, kind)
	}
	out, err := QueryAll(ctx, c, scanConfig, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: configs by waba: %w", err)
	}
	return out, nil
}

// GetConfigByID returns a config of any project (for workers, which carry
// ids that were checked when the work was enqueued).
func GetConfigByID(ctx context.Context, c *Conn, id string) (*parley.WhatsAppConfig, error) {
	cfg, err := scanConfig(c.QueryRow(ctx, `SELECT `+configCols+` FROM whatsapp_configs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("WhatsApp config")
	}
	if err != nil {
		return nil, fmt.Errorf("store: get config: %w", err)
	}
	return cfg, nil
}

// GetConfigByPhoneNumberID finds the config of a Meta phone_number_id, in
// any project (inbound webhooks carry only that id).
func GetConfigByPhoneNumberID(ctx context.Context, c *Conn, phoneNumberID string) (*parley.WhatsAppConfig, error) {
	cfg, err := scanConfig(c.QueryRow(ctx, `SELECT `+configCols+` FROM whatsapp_configs WHERE phone_number_id = ?`, phoneNumberID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("WhatsApp config")
	}
	if err != nil {
		return nil, fmt.Errorf("store: get config by phone number id: %w", err)
	}
	return cfg, nil
}

// CreateConfig inserts a config. A taken phone_number_id is a 422.
func CreateConfig(ctx context.Context, c *Conn, cfg *parley.WhatsAppConfig) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	if cfg.ID == "" {
		cfg.ID = NewID()
	}
	cfg.CreatedAt, cfg.UpdatedAt = now, now
	_, err := c.Exec(ctx, `INSERT INTO whatsapp_configs (`+configCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		configArgs(cfg)...)
	if IsUniqueViolation(err) {
		return parley.Invalid("Validation failed", "Phone number has already been taken")
	}
	if IsForeignKeyViolation(err) {
		return parley.NotFound("Customer")
	}
	if err != nil {
		return fmt.Errorf("store: create config: %w", err)
	}
	return nil
}

func configArgs(cfg *parley.WhatsAppConfig) []any {
	ns := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
	return []any{cfg.ID, cfg.ProjectID, NullStr(cfg.CustomerID), cfg.Name, cfg.Kind, cfg.PhoneNumberID, NullStr(cfg.BusinessAccountID),
		NullStr(cfg.DisplayName), NullStr(cfg.DisplayPhoneNumber), NullStr(cfg.DisplayPhoneNumberNormalized), cfg.IsCoexistence,
		cfg.InboundProcessingEnabled, cfg.CallsEnabled, NullMicros(cfg.WebhookVerifiedAt), Micros(cfg.CreatedAt), Micros(cfg.UpdatedAt),
		ns(cfg.AccessTokenEnc), ns(cfg.WebhookVerifyTokenEnc), ns(cfg.AppSecretEnc), NullStr(cfg.WebhookDestinationURL)}
}

// UpdateConfig saves every column of cfg.
func UpdateConfig(ctx context.Context, c *Conn, cfg *parley.WhatsAppConfig) error {
	cfg.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	args := configArgs(cfg)
	res, err := c.Exec(ctx, `UPDATE whatsapp_configs SET customer_id = ?, name = ?, kind = ?, phone_number_id = ?, business_account_id = ?,
		display_name = ?, display_phone_number = ?, display_phone_number_normalized = ?, is_coexistence = ?, inbound_processing_enabled = ?,
		calls_enabled = ?, webhook_verified_at = ?, created_at = ?, updated_at = ?, access_token_enc = ?, webhook_verify_token_enc = ?,
		app_secret_enc = ?, webhook_destination_url = ? WHERE id = ? AND project_id = ?`, append(args[2:], cfg.ID, cfg.ProjectID)...)
	if IsUniqueViolation(err) {
		return parley.Invalid("Validation failed", "Phone number has already been taken")
	}
	if err != nil {
		return fmt.Errorf("store: update config: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("WhatsApp config")
	}
	return nil
}

// DeleteConfig deletes a config; its webhooks, conversations and messages
// cascade.
func DeleteConfig(ctx context.Context, c *Conn, projectID, id string) error {
	res, err := c.Exec(ctx, `DELETE FROM whatsapp_configs WHERE project_id = ? AND id = ?`, projectID, id)
	if err != nil {
		return fmt.Errorf("store: delete config: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("WhatsApp config")
	}
	return nil
}

// MarkConfigVerified records the time Meta verified the webhook.
func MarkConfigVerified(ctx context.Context, c *Conn, id string, at time.Time) error {
	_, err := c.Exec(ctx, `UPDATE whatsapp_configs SET webhook_verified_at = ?, updated_at = ? WHERE id = ?`, Micros(at), Micros(at), id)
	return err
}

// SetConfigVerifyTokenHash stores the lookup hash of a config's webhook
// verify token (nil clears it). It is kept apart from the config row's other
// columns because only the inbound handshake reads it.
func SetConfigVerifyTokenHash(ctx context.Context, c *Conn, id string, hash *string) error {
	if _, err := c.Exec(ctx, `UPDATE whatsapp_configs SET webhook_verify_token_hash = ? WHERE id = ?`, NullStr(hash), id); err != nil {
		return fmt.Errorf("store: set verify token hash: %w", err)
	}
	return nil
}

// GetConfigByVerifyToken finds a config, in any project, whose webhook verify
// token has the lookup hash hash (secrets.Box.Lookup of the token Meta sends
// in hub.verify_token). When several configs share a token the oldest wins.
func GetConfigByVerifyToken(ctx context.Context, c *Conn, hash string) (*parley.WhatsAppConfig, error) {
	if hash == "" {
		return nil, parley.NotFound("WhatsApp config")
	}
	cfg, err := scanConfig(c.QueryRow(ctx, `SELECT `+configCols+` FROM whatsapp_configs WHERE webhook_verify_token_hash = ?
		ORDER BY created_at, id LIMIT 1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("WhatsApp config")
	}
	if err != nil {
		return nil, fmt.Errorf("store: get config by verify token: %w", err)
	}
	return cfg, nil
}
