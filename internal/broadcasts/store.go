package broadcasts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// This file holds the package's SQL.

// Broadcast statuses (Kapso's WhatsappBroadcast.status enum).
const (
	statusDraft     = "draft"
	statusSending   = "sending"
	statusCompleted = "completed"
	statusFailed    = "failed"
)

// Recipient states as stored. Kapso's recipient status (pending, sent,
// failed) is derived from them and the message's status.
const (
	recipientPending = "pending" // not handed to the send path yet
	recipientQueued  = "queued"  // its message exists (message_id)
	recipientFailed  = "failed"  // no message could be built
)

// broadcast is a stored broadcast with its template's basic fields.
type broadcast struct {
	ID          string
	ProjectID   string
	ConfigID    string
	TemplateID  string
	Name        string
	Status      string
	StartedAt   *time.Time
	CompletedAt *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time

	TemplateName     string
	TemplateLanguage string
	TemplateCategory string
	TemplateStatus   string

	counts counts
}

// counts are a broadcast's counters, counted from its recipients and their
// messages.
type counts struct {
	Total, Sent, Failed, Delivered, Read, Responded int
}

const broadcastCols = `b.id, b.project_id, b.whatsapp_config_id, b.template_id, b.name, b.status, b.started_at, b.completed_at,
	b.created_at, b.updated_at, t.name, t.language_code, t.category, t.status`

const broadcastFrom = ` FROM broadcasts b JOIN templates t ON t.id = b.template_id`

func scanBroadcast(s store.Scanner) (*broadcast, error) {
	var b broadcast
	var started, completed sql.NullInt64
	var ca, ua int64
	if err := s.Scan(&b.ID, &b.ProjectID, &b.ConfigID, &b.TemplateID, &b.Name, &b.Status, &started, &completed, &ca, &ua,
		&b.TemplateName, &b.TemplateLanguage, &b.TemplateCategory, &b.TemplateStatus); err != nil {
		return nil, err
	}
	b.StartedAt, b.CompletedAt = store.TimePtr(started), store.TimePtr(completed)
	b.CreatedAt, b.UpdatedAt = store.Time(ca), store.Time(ua)
	return &b, nil
}

func insertBroadcast(ctx context.Context, c *store.Conn, b *broadcast) error {
	_, err := c.Exec(ctx, `INSERT INTO broadcasts (id, project_id, whatsapp_config_id, template_id, name, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, b.ID, b.ProjectID, b.ConfigID, b.TemplateID, b.Name, b.Status,
		store.Micros(b.CreatedAt), store.Micros(b.UpdatedAt))
	if err != nil {
		return fmt.Errorf("broadcasts: insert: %w", err)
	}
	return nil
}

// getBroadcast returns a project's broadcast; projectID "" finds any
// project's (for the send job).
func getBroadcast(ctx context.Context, c *store.Conn, projectID, id string) (*broadcast, error) {
	q := `SELECT ` + broadcastCols + broadcastFrom + ` WHERE b.id = ?`
	args := []any{id}
	if projectID != "" {
		q += ` AND b.project_id = ?`
		args = append(args, projectID)
	}
	b, err := scanBroadcast(c.QueryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Broadcast")
	}
	if err != nil {
		return nil, fmt.Errorf("broadcasts: get: %w", err)
	}
	return b, nil
}

// filter holds the list filters; nil means "not filtered".
type filter struct {
	ConfigID   *string
	TemplateID *string
}

// listBroadcasts returns a page of a project's broadcasts, newest first.
func listBroadcasts(ctx context.Context, c *store.Conn, projectID string, f filter, p parley.Page) ([]*broadcast, int, error) {
	where := ` WHERE b.project_id = ?`
	args := []any{projectID}
	if f.ConfigID != nil {
		where += ` AND b.whatsapp_config_id = ?`
		args = append(args, *f.ConfigID)
	}
	if f.TemplateID != nil {
		where += ` AND b.template_id = ?`
		args = append(args, *f.TemplateID)
	}
	out, total, err := store.QueryPage(ctx, c, scanBroadcast, `SELECT COUNT(*) FROM broadcasts b`+where,
		`SELECT `+broadcastCols+broadcastFrom+where+` ORDER BY b.created_at DESC, b.id DESC`, args, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("broadcasts: list: %w", err)
	}
	return out, total, nil
}

// fillCounts counts the recipients of bs by state, in one query. A
// recipient is sent once Meta accepted its message (sent, delivered or
// read; a message deleted after it was queued counts as sent), failed when
// its message failed or none could be built; it responded when its message
// was accepted and an inbound message reached the message's conversation
// after it (a reply to a message that never left cannot answer it, and
// would let responded exceed sent and response_rate exceed 100).
func fillCounts(ctx context.Context, c *store.Conn, bs ...*broadcast) error {
	if len(bs) == 0 {
		return nil
	}
	byID := map[string]*broadcast{}
	args := make([]any, 0, len(bs))
	for _, b := range bs {
		b.counts = counts{}
		byID[b.ID] = b
		args = append(args, b.ID)
	}
	rows, err := c.Query(ctx, `SELECT r.broadcast_id, COUNT(*),
		SUM(CASE WHEN m.status IN ('sent', 'delivered', 'read') OR (r.status = 'queued' AND m.id IS NULL) THEN 1 ELSE 0 END),
		SUM(CASE WHEN r.status = 'failed' OR m.status = 'failed' THEN 1 ELSE 0 END),
		SUM(CASE WHEN m.status IN ('delivered', 'read') THEN 1 ELSE 0 END),
		SUM(CASE WHEN m.status = 'read' THEN 1 ELSE 0 END),
		SUM(CASE WHEN m.status IN ('sent', 'delivered', 'read') AND EXISTS (SELECT 1 FROM messages i
			WHERE i.conversation_id = m.conversation_id AND i.created_at > m.created_at AND i.direction = 'inbound') THEN 1 ELSE 0 END)
		FROM broadcast_recipients r LEFT JOIN messages m ON m.id = r.message_id
		WHERE r.broadcast_id IN (`+store.Placeholders(len(args))+`) GROUP BY r.broadcast_id`, args...)
	if err != nil {
		return fmt.Errorf("broadcasts: counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var k counts
		if err := rows.Scan(&id, &k.Total, &k.Sent, &k.Failed, &k.Delivered, &k.Read, &k.Responded); err != nil {
			return fmt.Errorf("broadcasts: counts: %w", err)
		}
		if b := byID[id]; b != nil {
			b.counts = k
		}
	}
	return rows.Err()
}

// recipient is a stored recipient with its message's state.
type recipient struct {
	ID           string
	PhoneNumber  string
	Params       json.RawMessage // nil when none were given
	Status       string
	MessageID    *string
	ErrorMessage *string
	FailedAt     *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time

	// The message's side; MsgStatus is "" when there is no message.
	MsgStatus      string
	MsgSentAt      *time.Time
	MsgDeliveredAt *time.Time
	MsgReadAt      *time.Time
	MsgFailedAt    *time.Time
	MsgErrorCode   *int64
	MsgErrorTitle  *string
	MsgErrorText   *string
	MsgUpdatedAt   *time.Time
	RespondedAt    *time.Time
}

// listRecipients returns a page of a broadcast's recipients in the order
// they were added.
func listRecipients(ctx context.Context, c *store.Conn, broadcastID string, p parley.Page) ([]*recipient, int, error) {
	var total int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM broadcast_recipients WHERE broadcast_id = ?`, broadcastID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("broadcasts: count recipients: %w", err)
	}
	if total == 0 || p.Offset() >= total {
		return nil, total, nil
	}
	rows, err := c.Query(ctx, `SELECT r.id, r.phone_number, r.template_parameters, r.status, r.message_id, r.error_message, r.failed_at,
		r.created_at, r.updated_at, m.status, m.sent_at, m.delivered_at, m.read_at, m.failed_at, m.error_code, m.error_title,
		m.error_message, m.updated_at,
		CASE WHEN m.status IN ('sent', 'delivered', 'read') THEN (SELECT MIN(i.created_at) FROM messages i
			WHERE i.conversation_id = m.conversation_id AND i.created_at > m.created_at AND i.direction = 'inbound') END
		FROM broadcast_recipients r LEFT JOIN messages m ON m.id = r.message_id
		WHERE r.broadcast_id = ? ORDER BY r.id LIMIT ? OFFSET ?`, broadcastID, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("broadcasts: list recipients: %w", err)
	}
	defer rows.Close()
	var out []*recipient
	for rows.Next() {
		var r recipient
		var params, msgID, errMsg, mStatus, mTitle, mText sql.NullString
		var failed, mSent, mDelivered, mRead, mFailed, mCode, mUpdated, responded sql.NullInt64
		var ca, ua int64
		if err := rows.Scan(&r.ID, &r.PhoneNumber, &params, &r.Status, &msgID, &errMsg, &failed, &ca, &ua,
			&mStatus, &mSent, &mDelivered, &mRead, &mFailed, &mCode, &mTitle, &mText, &mUpdated, &responded); err != nil {
			return nil, 0, fmt.Errorf("broadcasts: list recipients: %w", err)
		}
		if params.Valid {
			r.Params = json.RawMessage(params.String)
		}
		r.MessageID, r.ErrorMessage, r.FailedAt = store.StrPtr(msgID), store.StrPtr(errMsg), store.TimePtr(failed)
		r.CreatedAt, r.UpdatedAt = store.Time(ca), store.Time(ua)
		r.MsgStatus = mStatus.String
		r.MsgSentAt, r.MsgDeliveredAt, r.MsgReadAt, r.MsgFailedAt = store.TimePtr(mSent), store.TimePtr(mDelivered), store.TimePtr(mRead), store.TimePtr(mFailed)
		if mCode.Valid {
			r.MsgErrorCode = &mCode.Int64
		}
		r.MsgErrorTitle, r.MsgErrorText = store.StrPtr(mTitle), store.StrPtr(mText)
		r.MsgUpdatedAt, r.RespondedAt = store.TimePtr(mUpdated), store.TimePtr(responded)
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("broadcasts: list recipients: %w", err)
	}
	return out, total, nil
}

// newRecipient is a validated recipient to add.
type newRecipient struct {
	Phone  string
	Params any // nil, []any of strings or map[string]any
}

// touchDraft bumps a draft broadcast's updated_at and reports whether it is
// still a draft. On PostgreSQL the row stays locked until the transaction
// ends, so a concurrent send waits for recipients being added (and an add
// behind a send sees it is no longer a draft).
func touchDraft(ctx context.Context, tx *store.Conn, id string, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE broadcasts SET updated_at = ? WHERE id = ? AND status = 'draft'`, store.Micros(now), id)
	if err != nil {
		return false, fmt.Errorf("broadcasts: touch: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// insertRecipient adds a recipient; false when the broadcast already has
// the phone number.
func insertRecipient(ctx context.Context, tx *store.Conn, broadcastID string, r newRecipient, now time.Time) (bool, error) {
	var params sql.NullString
	if r.Params != nil {
		params = sql.NullString{String: store.JSON(r.Params), Valid: true}
	}
	res, err := tx.Exec(ctx, `INSERT INTO broadcast_recipients (id, broadcast_id, phone_number, template_parameters, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (broadcast_id, phone_number) DO NOTHING`,
		store.NewID(), broadcastID, r.Phone, params, store.Micros(now), store.Micros(now))
	if err != nil {
		return false, fmt.Errorf("broadcasts: insert recipient: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// contactPhone returns the wa_id of a project's contact.
func contactPhone(ctx context.Context, c *store.Conn, projectID, id string) (string, error) {
	var waID string
	err := c.QueryRow(ctx, `SELECT wa_id FROM contacts WHERE project_id = ? AND id = ?`, projectID, id).Scan(&waID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", parley.NotFound("Contact")
	}
	if err != nil {
		return "", fmt.Errorf("broadcasts: contact: %w", err)
	}
	return waID, nil
}

func countRecipients(ctx context.Context, c *store.Conn, broadcastID string) (int, error) {
	var n int
	err := c.QueryRow(ctx, `SELECT COUNT(*) FROM broadcast_recipients WHERE broadcast_id = ?`, broadcastID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("broadcasts: count recipients: %w", err)
	}
	return n, nil
}

// startSending moves a draft to sending; false when it is not a draft.
func startSending(ctx context.Context, tx *store.Conn, id string, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE broadcasts SET status = 'sending', started_at = ?, updated_at = ? WHERE id = ? AND status = 'draft'`,
		store.Micros(now), store.Micros(now), id)
	if err != nil {
		return false, fmt.Errorf("broadcasts: start: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// pendingRecipient is a recipient the send job is about to hand over.
type pendingRecipient struct {
	ID     string
	Phone  string
	Params any
}

// claimPending returns up to n pending recipients in id order, locked on
// PostgreSQL (rows another process holds are skipped).
func claimPending(ctx context.Context, tx *store.Conn, broadcastID string, n int) ([]pendingRecipient, error) {
	rows, err := tx.Query(ctx, `SELECT id, phone_number, template_parameters FROM broadcast_recipients
		WHERE broadcast_id = ? AND status = 'pending' ORDER BY id LIMIT ?`+tx.ForUpdateSkipLocked(), broadcastID, n)
	if err != nil {
		return nil, fmt.Errorf("broadcasts: claim: %w", err)
	}
	defer rows.Close()
	var out []pendingRecipient
	for rows.Next() {
		var r pendingRecipient
		var params sql.NullString
		if err := rows.Scan(&r.ID, &r.Phone, &params); err != nil {
			return nil, fmt.Errorf("broadcasts: claim: %w", err)
		}
		if params.Valid {
			if err := json.Unmarshal([]byte(params.String), &r.Params); err != nil {
				return nil, fmt.Errorf("broadcasts: recipient %s parameters: %w", r.ID, err)
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// markQueued records the message of a pending recipient; false when it is
// no longer pending (another run handed it over).
func markQueued(ctx context.Context, tx *store.Conn, id, messageID string, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE broadcast_recipients SET status = 'queued', message_id = ?, updated_at = ? WHERE id = ? AND status = 'pending'`,
		messageID, store.Micros(now), id)
	if err != nil {
		return false, fmt.Errorf("broadcasts: mark queued: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// markFailed fails a pending recipient no message could be built for.
func markFailed(ctx context.Context, tx *store.Conn, id, reason string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE broadcast_recipients SET status = 'failed', error_message = ?, failed_at = ?, updated_at = ?
		WHERE id = ? AND status = 'pending'`, reason, store.Micros(now), store.Micros(now), id)
	if err != nil {
		return fmt.Errorf("broadcasts: mark failed: %w", err)
	}
	return nil
}

// inFlight counts, among the last n recipients handed over, those whose
// message still waits for its send job. Recipients are handed over in id
// order and sends leave in about that order, so the most recent ones are
// where unsent messages are.
func inFlight(ctx context.Context, c *store.Conn, broadcastID string, n int) (int, error) {
	var k int
	err := c.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT message_id FROM broadcast_recipients
		WHERE broadcast_id = ? AND status = 'queued' ORDER BY id DESC LIMIT ?) r
		JOIN messages m ON m.id = r.message_id WHERE m.status = 'pending'`, broadcastID, n).Scan(&k)
	if err != nil {
		return 0, fmt.Errorf("broadcasts: in flight: %w", err)
	}
	return k, nil
}

// unsent counts the broadcast's messages still waiting for their send job.
func unsent(ctx context.Context, c *store.Conn, broadcastID string) (int, error) {
	var k int
	err := c.QueryRow(ctx, `SELECT COUNT(*) FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id
		WHERE r.broadcast_id = ? AND r.status = 'queued' AND m.status = 'pending'`, broadcastID).Scan(&k)
	if err != nil {
		return 0, fmt.Errorf("broadcasts: unsent: %w", err)
	}
	return k, nil
}

// finish ends a sending broadcast: failed when no recipient's message was
// accepted, else completed.
func finish(ctx context.Context, tx *store.Conn, id string, now time.Time) error {
	var delivered int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM broadcast_recipients r LEFT JOIN messages m ON m.id = r.message_id
		WHERE r.broadcast_id = ? AND r.status = 'queued' AND (m.id IS NULL OR m.status <> 'failed')`, id).Scan(&delivered); err != nil {
		return fmt.Errorf("broadcasts: finish: %w", err)
	}
	status := statusCompleted
	if delivered == 0 {
		status = statusFailed
	}
	_, err := tx.Exec(ctx, `UPDATE broadcasts SET status = ?, completed_at = ?, updated_at = ? WHERE id = ? AND status = 'sending'`,
		status, store.Micros(now), store.Micros(now), id)
	if err != nil {
		return fmt.Errorf("broadcasts: finish: %w", err)
	}
	return nil
}

// failPending fails every recipient of a broadcast not handed over yet.
func failPending(ctx context.Context, tx *store.Conn, broadcastID, reason string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE broadcast_recipients SET status = 'failed', error_message = ?, failed_at = ?, updated_at = ?
		WHERE broadcast_id = ? AND status = 'pending'`, reason, store.Micros(now), store.Micros(now), broadcastID)
	if err != nil {
		return fmt.Errorf("broadcasts: fail pending: %w", err)
	}
	return nil
}
