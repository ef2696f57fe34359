package platform

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
)

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// ---- settings: the project's sandbox business account id ----

// sandboxWABA returns the business account id shared by a project's sandbox
// configs, creating it on first use. It lives in the settings table so it
// survives the deletion of every sandbox config.
func sandboxWABA(ctx context.Context, c *store.Conn, projectID string) (string, error) {
	key := "sandbox_business_account_id:" + projectID
	if _, err := c.Exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, randomDigits(15)); err != nil {
		return "", fmt.Errorf("platform: sandbox business account: %w", err)
	}
	var v string
	if err := c.QueryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("platform: sandbox business account: %w", err)
	}
	return v, nil
}

// randomDigits returns n random decimal digits, the first non-zero.
func randomDigits(n int) string {
	b := make([]byte, n)
	for i := range b {
		lo := int64(0)
		if i == 0 {
			lo = 1
		}
		d, err := rand.Int(rand.Reader, big.NewInt(10-lo))
		if err != nil {
			panic(err)
		}
		b[i] = byte('0' + lo + d.Int64())
	}
	return string(b)
}

func phoneNumberIDTaken(ctx context.Context, c *store.Conn, id string) (bool, error) {
	var n int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM whatsapp_configs WHERE phone_number_id = ?`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("platform: check phone number id: %w", err)
	}
	return n > 0, nil
}

func displayNumberTaken(ctx context.Context, c *store.Conn, digits string) (bool, error) {
	var n int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM whatsapp_configs WHERE display_phone_number_normalized = ?`, digits).Scan(&n); err != nil {
		return false, fmt.Errorf("platform: check display number: %w", err)
	}
	return n > 0, nil
}

// ---- setup links ----

const setupLinkCols = `id, project_id, customer_id, token, status, expires_at, success_redirect_url, failure_redirect_url,
	allowed_connection_types, provision_phone_number, phone_number_area_code, phone_number_country_isos, theme_config, language,
	created_at, updated_at`

func scanSetupLink(s store.Scanner) (*parley.SetupLink, error) {
	var l parley.SetupLink
	var succ, fail, area, theme, lang sql.NullString
	var act, isos string
	var exp, ca, ua int64
	if err := s.Scan(&l.ID, &l.ProjectID, &l.CustomerID, &l.Token, &l.Status, &exp, &succ, &fail, &act, &l.ProvisionPhoneNumber,
		&area, &isos, &theme, &lang, &ca, &ua); err != nil {
		return nil, err
	}
	l.ExpiresAt, l.CreatedAt, l.UpdatedAt = store.Time(exp), store.Time(ca), store.Time(ua)
	l.SuccessRedirectURL, l.FailureRedirectURL = store.StrPtr(succ), store.StrPtr(fail)
	l.PhoneNumberAreaCode, l.Language = store.StrPtr(area), store.StrPtr(lang)
	if err := store.FromJSON(act, &l.AllowedConnectionTypes); err != nil {
		return nil, fmt.Errorf("platform: decode allowed_connection_types: %w", err)
	}
	if err := store.FromJSON(isos, &l.PhoneNumberCountryISOs); err != nil {
		return nil, fmt.Errorf("platform: decode phone_number_country_isos: %w", err)
	}
	if theme.Valid {
		if err := store.FromJSON(theme.String, &l.ThemeConfig); err != nil {
			return nil, fmt.Errorf("platform: decode theme_config: %w", err)
		}
	}
	return &l, nil
}

func setupLinkArgs(l *parley.SetupLink) []any {
	var theme sql.NullString
	if l.ThemeConfig != nil {
		theme = sql.NullString{String: store.JSON(l.ThemeConfig), Valid: true}
	}
	act, isos := l.AllowedConnectionTypes, l.PhoneNumberCountryISOs
	if act == nil {
		act = []string{}
	}
	if isos == nil {
		isos = []string{}
	}
	return []any{l.ID, l.ProjectID, l.CustomerID, l.Token, l.Status, store.Micros(l.ExpiresAt), store.NullStr(l.SuccessRedirectURL),
		store.NullStr(l.FailureRedirectURL), store.JSON(act), l.ProvisionPhoneNumber, store.NullStr(l.PhoneNumberAreaCode),
		store.JSON(isos), theme, store.NullStr(l.Language), store.Micros(l.CreatedAt), store.Micros(l.UpdatedAt)}
}

// ListSetupLinks returns a page of a customer's setup links, newest first.
func ListSetupLinks(ctx context.Context, c *store.Conn, projectID, customerID string, p parley.Page) ([]*parley.SetupLink, int, error) {
	return ListSetupLinksFiltered(ctx, c, projectID, customerID, SetupLinkFilter{}, p)
}

// GetSetupLink returns a customer's setup link.
func GetSetupLink(ctx context.Context, c *store.Conn, projectID, customerID, id string) (*parley.SetupLink, error) {
	l, err := scanSetupLink(c.QueryRow(ctx, `SELECT `+setupLinkCols+` FROM setup_links WHERE project_id = ? AND customer_id = ? AND id = ?`,
		projectID, customerID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Setup link")
	}
	if err != nil {
		return nil, fmt.Errorf("platform: get setup link: %w", err)
	}
	return l, nil
}

// GetSetupLinkByToken returns the setup link of a URL token, in any project
// (the public setup page carries only the token).
func GetSetupLinkByToken(ctx context.Context, c *store.Conn, token string) (*parley.SetupLink, error) {
	l, err := scanSetupLink(c.QueryRow(ctx, `SELECT `+setupLinkCols+` FROM setup_links WHERE token = ?`, token))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Setup link")
	}
	if err != nil {
		return nil, fmt.Errorf("platform: get setup link by token: %w", err)
	}
	return l, nil
}

// CreateSetupLink inserts l (ID, token and timestamps are filled in).
func CreateSetupLink(ctx context.Context, c *store.Conn, l *parley.SetupLink) error {
	t := now()
	l.ID, l.CreatedAt, l.UpdatedAt = store.NewID(), t, t
	if l.Token == "" {
		l.Token = randomToken(24)
	}
	_, err := c.Exec(ctx, `INSERT INTO setup_links (`+setupLinkCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, setupLinkArgs(l)...)
	if store.IsForeignKeyViolation(err) {
		return parley.NotFound("Customer")
	}
	if err != nil {
		return fmt.Errorf("platform: create setup link: %w", err)
	}
	return nil
}

// UpdateSetupLink saves every writable column of l.
func UpdateSetupLink(ctx context.Context, c *store.Conn, l *parley.SetupLink) error {
	l.UpdatedAt = now()
	a := setupLinkArgs(l)
	res, err := c.Exec(ctx, `UPDATE setup_links SET status = ?, expires_at = ?, success_redirect_url = ?, failure_redirect_url = ?,
		allowed_connection_types = ?, provision_phone_number = ?, phone_number_area_code = ?, phone_number_country_isos = ?,
		theme_config = ?, language = ?, updated_at = ? WHERE project_id = ? AND id = ?`,
		a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[15], l.ProjectID, l.ID)
	if err != nil {
		return fmt.Errorf("platform: update setup link: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("Setup link")
	}
	return nil
}

// RevokeActiveSetupLinks revokes a customer's active links other than
// exceptID, keeping at most one active link per customer.
func RevokeActiveSetupLinks(ctx context.Context, c *store.Conn, projectID, customerID, exceptID string) error {
	t := now()
	if _, err := c.Exec(ctx, `UPDATE setup_links SET status = ?, updated_at = ? WHERE project_id = ? AND customer_id = ? AND status = ? AND id <> ?`,
		parley.SetupLinkRevoked, store.Micros(t), projectID, customerID, parley.SetupLinkActive, exceptID); err != nil {
		return fmt.Errorf("platform: revoke setup links: %w", err)
	}
	return nil
}

// ---- webhooks ----

// WebhookFilter holds the list filters of the webhook lists.
type WebhookFilter struct {
	URLCont  string
	ActiveEq *bool
}

const webhookCols = `id, project_id, whatsapp_config_id, url, secret_key_enc, events, active, headers, buffer_enabled,
	buffer_window_seconds, max_buffer_size, buffer_events, inactivity_minutes, retry_max_attempts, retry_backoff_seconds,
	retry_custom, payload_version, kind, failing_since, paused_at, paused_reason, created_at, updated_at`

func scanWebhook(s store.Scanner) (*parley.Webhook, error) {
	var w parley.Webhook
	var cfg, headers, reason sql.NullString
	var evs, bufEvs string
	var failing, paused sql.NullInt64
	var ca, ua int64
	if err := s.Scan(&w.ID, &w.ProjectID, &cfg, &w.URL, &w.SecretKeyEnc, &evs, &w.Active, &headers, &w.BufferEnabled,
		&w.BufferWindowSeconds, &w.MaxBufferSize, &bufEvs, &w.InactivityMinutes, &w.RetryMaxAttempts, &w.RetryBackoffSeconds,
		&w.RetryCustom, &w.PayloadVersion, &w.Kind, &failing, &paused, &reason, &ca, &ua); err != nil {
		return nil, err
	}
	w.ConfigID, w.PausedReason = store.StrPtr(cfg), store.StrPtr(reason)
	w.FailingSince, w.PausedAt = store.TimePtr(failing), store.TimePtr(paused)
	w.CreatedAt, w.UpdatedAt = store.Time(ca), store.Time(ua)
	if err := store.FromJSON(evs, &w.Events); err != nil {
		return nil, fmt.Errorf("platform: decode webhook events: %w", err)
	}
	if err := store.FromJSON(bufEvs, &w.BufferEvents); err != nil {
		return nil, fmt.Errorf("platform: decode webhook buffer events: %w", err)
	}
	if headers.Valid {
		if err := store.FromJSON(headers.String, &w.Headers); err != nil {
			return nil, fmt.Errorf("platform: decode webhook headers: %w", err)
		}
	}
	return &w, nil
}

// scope returns the WHERE clause selecting a config's webhooks, or the
// project's own webhooks when configID is nil.
func scope(projectID string, configID *string) (string, []any) {
	if configID == nil {
		return ` WHERE project_id = ? AND whatsapp_config_id IS NULL`, []any{projectID}
	}
	return ` WHERE project_id = ? AND whatsapp_config_id = ?`, []any{projectID, *configID}
}

// ListWebhooks returns a page of a config's webhooks (configID nil: the
// project's webhooks), newest first.
func ListWebhooks(ctx context.Context, c *store.Conn, projectID string, configID *string, f WebhookFilter, p parley.Page) ([]*parley.Webhook, int, error) {
	where, args := scope(projectID, configID)
	if f.URLCont != "" {
		where += ` AND url ` + c.ILike() + ` ? ESCAPE '\'`
		args = append(args, "%"+store.EscapeLike(f.URLCont)+"%")
	}
	if f.ActiveEq != nil {
		where += ` AND active = ?`
		args = append(args, *f.ActiveEq)
	}
	out, total, err := store.QueryPage(ctx, c, scanWebhook, `SELECT COUNT(*) FROM whatsapp_webhooks`+where,
		`SELECT `+webhookCols+` FROM whatsapp_webhooks`+where+` ORDER BY created_at DESC, id DESC`, args, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("platform: list webhooks: %w", err)
	}
	return out, total, nil
}

// GetWebhook returns one of a config's webhooks (configID nil: a project webhook).
func GetWebhook(ctx context.Context, c *store.Conn, projectID string, configID *string, id string) (*parley.Webhook, error) {
	where, args := scope(projectID, configID)
	w, err := scanWebhook(c.QueryRow(ctx, `SELECT `+webhookCols+` FROM whatsapp_webhooks`+where+` AND id = ?`, append(args, id)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Webhook")
	}
	if err != nil {
		return nil, fmt.Errorf("platform: get webhook: %w", err)
	}
	return w, nil
}

// seal encrypts a plaintext secret set on w during this request.
func seal(box *secrets.Box, w *parley.Webhook) error {
	if w.SecretKey == "" {
		if w.SecretKeyEnc == "" {
			return errors.New("platform: webhook without a secret key")
		}
		return nil
	}
	enc, err := box.Encrypt(w.SecretKey)
	if err != nil {
		return fmt.Errorf("platform: encrypt webhook secret: %w", err)
	}
	w.SecretKeyEnc = enc
	return nil
}

func webhookArgs(w *parley.Webhook) []any {
	var headers sql.NullString
	if w.Headers != nil {
		headers = sql.NullString{String: store.JSON(w.Headers), Valid: true}
	}
	evs, bufEvs := w.Events, w.BufferEvents
	if evs == nil {
		evs = []string{}
	}
	if bufEvs == nil {
		bufEvs = []string{}
	}
	return []any{w.ID, w.ProjectID, store.NullStr(w.ConfigID), w.URL, w.SecretKeyEnc, store.JSON(evs), w.Active, headers, w.BufferEnabled,
		w.BufferWindowSeconds, w.MaxBufferSize, store.JSON(bufEvs), w.InactivityMinutes, w.RetryMaxAttempts, w.RetryBackoffSeconds,
		w.RetryCustom, w.PayloadVersion, w.Kind, store.NullMicros(w.FailingSince), store.NullMicros(w.PausedAt), store.NullStr(w.PausedReason),
		store.Micros(w.CreatedAt), store.Micros(w.UpdatedAt)}
}

// CreateWebhook inserts w, encrypting its plaintext SecretKey with box.
// w.ConfigID nil makes a project webhook.
func CreateWebhook(ctx context.Context, c *store.Conn, box *secrets.Box, w *parley.Webhook) error {
	if err := checkMetaWebhook(ctx, c, w); err != nil {
		return err
	}
	if err := seal(box, w); err != nil {
		return err
	}
	t := now()
	w.ID, w.CreatedAt, w.UpdatedAt = store.NewID(), t, t
	_, err := c.Exec(ctx, `INSERT INTO whatsapp_webhooks (`+webhookCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		webhookArgs(w)...)
	if store.IsForeignKeyViolation(err) {
		return parley.NotFound("WhatsApp config")
	}
	if err != nil {
		return fmt.Errorf("platform: create webhook: %w", err)
	}
	return nil
}

// UpdateWebhook saves the writable columns of w; a plaintext SecretKey set
// on w replaces the stored secret.
func UpdateWebhook(ctx context.Context, c *store.Conn, box *secrets.Box, w *parley.Webhook) error {
	if err := checkMetaWebhook(ctx, c, w); err != nil {
		return err
	}
	if err := seal(box, w); err != nil {
		return err
	}
	w.UpdatedAt = now()
	a := webhookArgs(w)
	where, args := scope(w.ProjectID, w.ConfigID)
	res, err := c.Exec(ctx, `UPDATE whatsapp_webhooks SET url = ?, secret_key_enc = ?, events = ?, active = ?, headers = ?, buffer_enabled = ?,
		buffer_window_seconds = ?, max_buffer_size = ?, buffer_events = ?, inactivity_minutes = ?, retry_max_attempts = ?,
		retry_backoff_seconds = ?, retry_custom = ?, payload_version = ?, kind = ?, failing_since = ?, paused_at = ?, paused_reason = ?,
		updated_at = ?`+where+` AND id = ?`, append(append(append([]any{}, a[3:21]...), a[22]), append(args, w.ID)...)...)
	if err != nil {
		return fmt.Errorf("platform: update webhook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("Webhook")
	}
	return nil
}

// DeleteWebhook deletes a webhook; its deliveries cascade.
func DeleteWebhook(ctx context.Context, c *store.Conn, projectID string, configID *string, id string) error {
	where, args := scope(projectID, configID)
	res, err := c.Exec(ctx, `DELETE FROM whatsapp_webhooks`+where+` AND id = ?`, append(args, id)...)
	if err != nil {
		return fmt.Errorf("platform: delete webhook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("Webhook")
	}
	return nil
}

// ---- users ----

// UserFilter holds the list filters of GET /users.
type UserFilter struct {
	EmailCont string
}

const userCols = `id, project_id, email, name, created_at, updated_at`

func scanUser(s store.Scanner) (*parley.User, error) {
	var u parley.User
	var name sql.NullString
	var ca, ua int64
	if err := s.Scan(&u.ID, &u.ProjectID, &u.Email, &name, &ca, &ua); err != nil {
		return nil, err
	}
	u.Name, u.CreatedAt, u.UpdatedAt = store.StrPtr(name), store.Time(ca), store.Time(ua)
	return &u, nil
}

// ListUsers returns a page of a project's users, newest first.
func ListUsers(ctx context.Context, c *store.Conn, projectID string, f UserFilter, p parley.Page) ([]*parley.User, int, error) {
	where := ` WHERE project_id = ?`
	args := []any{projectID}
	if f.EmailCont != "" {
		where += ` AND email ` + c.ILike() + ` ? ESCAPE '\'`
		args = append(args, "%"+store.EscapeLike(f.EmailCont)+"%")
	}
	out, total, err := store.QueryPage(ctx, c, scanUser, `SELECT COUNT(*) FROM users`+where,
		`SELECT `+userCols+` FROM users`+where+` ORDER BY created_at DESC, id DESC`, args, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("platform: list users: %w", err)
	}
	return out, total, nil
}

// GetUser returns a project's user.
func GetUser(ctx context.Context, c *store.Conn, projectID, id string) (*parley.User, error) {
	u, err := scanUser(c.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE project_id = ? AND id = ?`, projectID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("User")
	}
	if err != nil {
		return nil, fmt.Errorf("platform: get user: %w", err)
	}
	return u, nil
}

// emailTaken reports whether another user of the project has email. It is
// checked before writing because on PostgreSQL a unique violation aborts the
// whole transaction.
func emailTaken(ctx context.Context, c *store.Conn, projectID, email, exceptID string) (bool, error) {
	var n int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE project_id = ? AND email = ? AND id <> ?`, projectID, email, exceptID).Scan(&n); err != nil {
		return false, fmt.Errorf("platform: check email: %w", err)
	}
	return n > 0, nil
}

var errEmailTaken = parley.Invalid("Validation failed", "Email has already been taken")

// CreateUser inserts a user; a taken email is a 422.
func CreateUser(ctx context.Context, c *store.Conn, u *parley.User) error {
	if taken, err := emailTaken(ctx, c, u.ProjectID, u.Email, ""); err != nil {
		return err
	} else if taken {
		return errEmailTaken
	}
	t := now()
	u.ID, u.CreatedAt, u.UpdatedAt = store.NewID(), t, t
	_, err := c.Exec(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.ProjectID, u.Email, store.NullStr(u.Name), store.Micros(t), store.Micros(t))
	if store.IsUniqueViolation(err) {
		return errEmailTaken
	}
	if store.IsForeignKeyViolation(err) {
		return parley.NotFound("Project")
	}
	if err != nil {
		return fmt.Errorf("platform: create user: %w", err)
	}
	return nil
}

// UpdateUser saves a user's email and name.
func UpdateUser(ctx context.Context, c *store.Conn, u *parley.User) error {
	if taken, err := emailTaken(ctx, c, u.ProjectID, u.Email, u.ID); err != nil {
		return err
	} else if taken {
		return errEmailTaken
	}
	u.UpdatedAt = now()
	res, err := c.Exec(ctx, `UPDATE users SET email = ?, name = ?, updated_at = ? WHERE project_id = ? AND id = ?`,
		u.Email, store.NullStr(u.Name), store.Micros(u.UpdatedAt), u.ProjectID, u.ID)
	if store.IsUniqueViolation(err) {
		return errEmailTaken
	}
	if err != nil {
		return fmt.Errorf("platform: update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("User")
	}
	return nil
}

// DeleteUser deletes a user; its conversation assignments cascade.
func DeleteUser(ctx context.Context, c *store.Conn, projectID, id string) error {
	res, err := c.Exec(ctx, `DELETE FROM users WHERE project_id = ? AND id = ?`, projectID, id)
	if err != nil {
		return fmt.Errorf("platform: delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("User")
	}
	return nil
}
