package messaging

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// This file holds the package's SQL. Every function takes a *store.Conn so
// callers choose the read pool, the write pool or a transaction.

var convColumns = []string{"id", "project_id", "whatsapp_config_id", "contact_id", "phone_number", "status", "metadata",
	"messages_count", "last_seq", "last_message_id", "last_message_type", "last_message_text", "last_message_at",
	"last_inbound_at", "last_outbound_at", "last_active_at", "ended_at", "created_at", "updated_at"}

var (
	convColsBare = strings.Join(convColumns, ", ")
	convCols     = "c." + strings.Join(convColumns, ", c.")
	// convSelect joins the contact for contact_name.
	convSelect = `SELECT ` + convCols + `, ct.profile_name FROM conversations c LEFT JOIN contacts ct ON ct.id = c.contact_id`
)

func scanConv(s store.Scanner, withName bool) (*parley.Conversation, error) {
	var c parley.Conversation
	var contact, lmid, lmtype, lmtext, name sql.NullString
	var lmat, lin, lout, ended sql.NullInt64
	var meta string
	var active, ca, ua int64
	dest := []any{&c.ID, &c.ProjectID, &c.ConfigID, &contact, &c.PhoneNumber, &c.Status, &meta, &c.MessagesCount, &c.LastSeq,
		&lmid, &lmtype, &lmtext, &lmat, &lin, &lout, &active, &ended, &ca, &ua}
	if withName {
		dest = append(dest, &name)
	}
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	c.ContactID, c.LastMessageID, c.LastMessageType, c.LastMessageText = store.StrPtr(contact), store.StrPtr(lmid), store.StrPtr(lmtype), store.StrPtr(lmtext)
	c.LastMessageAt, c.LastInboundAt, c.LastOutboundAt, c.EndedAt = store.TimePtr(lmat), store.TimePtr(lin), store.TimePtr(lout), store.TimePtr(ended)
	c.LastActiveAt, c.CreatedAt, c.UpdatedAt = store.Time(active), store.Time(ca), store.Time(ua)
	c.ContactName = store.StrPtr(name)
	_ = store.FromJSON(meta, &c.Metadata)
	return &c, nil
}

// ConversationFilter holds the list filters of GET /whatsapp_conversations.
type ConversationFilter struct {
	Status          string
	ActiveGteq      *time.Time
	ActiveLteq      *time.Time
	ConfigID        string
	ConfigCustomer  string
	PhoneNumber     string // digits
	emptyBecauseBad bool   // a filter that can match nothing (non-UUID id)
}

// listConversations returns a page of a project's conversations, most
// recently active first.
func listConversations(ctx context.Context, c *store.Conn, projectID string, f ConversationFilter, p parley.Page) ([]*parley.Conversation, int, error) {
	if f.emptyBecauseBad {
		return []*parley.Conversation{}, 0, nil
	}
	where := ` WHERE project_id = ?`
	args := []any{projectID}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.ActiveGteq != nil {
		where += ` AND last_active_at >= ?`
		args = append(args, store.Micros(*f.ActiveGteq))
	}
	if f.ActiveLteq != nil {
		where += ` AND last_active_at <= ?`
		args = append(args, store.Micros(*f.ActiveLteq))
	}
	if f.ConfigID != "" {
		where += ` AND whatsapp_config_id = ?`
		args = append(args, f.ConfigID)
	}
	if f.ConfigCustomer != "" {
		where += ` AND whatsapp_config_id IN (SELECT id FROM whatsapp_configs WHERE project_id = ? AND customer_id = ?)`
		args = append(args, projectID, f.ConfigCustomer)
	}
	if f.PhoneNumber != "" {
		where += ` AND phone_number = ?`
		args = append(args, f.PhoneNumber)
	}
	total, err := countConversations(ctx, c, projectID, f, where, args)
	if err != nil {
		return nil, 0, err
	}
	if total == 0 || p.Offset() >= total {
		return []*parley.Conversation{}, total, nil
	}
	// The subquery pages over the covering index alone; only the page's
	// rows are read in full. A phone number's few conversations are found
	// by the phone index and sorted (migration 0130).
	from := ` FROM conversations`
	if f.PhoneNumber != "" && !c.Postgres() {
		from += ` INDEXED BY conversations_project_phone`
	}
	out, err := store.QueryAll(ctx, c, func(s store.Scanner) (*parley.Conversation, error) { return scanConv(s, true) },
		convSelect+` WHERE c.id IN (SELECT id`+from+where+
			` ORDER BY last_active_at DESC, id DESC LIMIT ? OFFSET ?) ORDER BY c.last_active_at DESC, c.id DESC`,
		append(args, p.PerPage, p.Offset())...)
	if err != nil {
		return nil, 0, fmt.Errorf("messaging: list conversations: %w", err)
	}
	return out, total, nil
}

// countConversations is meta.total_count of a conversation list. On SQLite
// a list filtered by status alone (or not at all) reads the counts that
// migration 0120 keeps by triggers instead of stepping through every
// matching index entry.
func countConversations(ctx context.Context, c *store.Conn, projectID string, f ConversationFilter, where string, args []any) (int, error) {
	var total int
	var err error
	byStatusOnly := f.ActiveGteq == nil && f.ActiveLteq == nil && f.ConfigID == "" && f.ConfigCustomer == "" && f.PhoneNumber == ""
	switch {
	case c.Postgres() || !byStatusOnly:
		err = c.QueryRow(ctx, `SELECT COUNT(*) FROM conversations`+where, args...).Scan(&total)
	case f.Status != "":
		err = c.QueryRow(ctx, `SELECT COALESCE(SUM(n), 0) FROM conversation_status_counts WHERE project_id = ? AND status = ?`,
			projectID, f.Status).Scan(&total)
	default:
		err = c.QueryRow(ctx, `SELECT COALESCE(SUM(n), 0) FROM conversation_status_counts WHERE project_id = ?`, projectID).Scan(&total)
	}
	if err != nil {
		return 0, fmt.Errorf("messaging: count conversations: %w", err)
	}
	return total, nil
}

// getConversation returns a project's conversation.
func getConversation(ctx context.Context, c *store.Conn, projectID, id string) (*parley.Conversation, error) {
	cv, err := scanConv(c.QueryRow(ctx, convSelect+` WHERE c.project_id = ? AND c.id = ?`, projectID, id), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Conversation")
	}
	if err != nil {
		return nil, fmt.Errorf("messaging: get conversation: %w", err)
	}
	return cv, nil
}

// getConversationByID returns a conversation of any project (workers).
func getConversationByID(ctx context.Context, c *store.Conn, id string) (*parley.Conversation, error) {
	cv, err := scanConv(c.QueryRow(ctx, convSelect+` WHERE c.id = ?`, id), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Conversation")
	}
	if err != nil {
		return nil, fmt.Errorf("messaging: get conversation: %w", err)
	}
	return cv, nil
}

// activeConversation returns the active conversation of (config, phone), or
// nil when there is none.
func activeConversation(ctx context.Context, c *store.Conn, configID, phone string) (*parley.Conversation, error) {
	cv, err := scanConv(c.QueryRow(ctx, convSelect+` WHERE c.whatsapp_config_id = ? AND c.phone_number = ? AND c.status = 'active'`,
		configID, phone), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("messaging: active conversation: %w", err)
	}
	return cv, nil
}

// openConversation returns the active conversation of (config, phone),
// opening one when there is none; created reports which. The partial unique
// index makes a concurrent open lose cleanly: its insert does nothing and
// the winner's row is read back.
func openConversation(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, phone string, contactID *string, contactName *string, now time.Time) (*parley.Conversation, bool, error) {
	cv, err := activeConversation(ctx, tx, cfg.ID, phone)
	if err != nil || cv != nil {
		if cv != nil && cv.ContactID == nil && contactID != nil {
			if _, err := tx.Exec(ctx, `UPDATE conversations SET contact_id = ? WHERE id = ?`, *contactID, cv.ID); err != nil {
				return nil, false, fmt.Errorf("messaging: link contact: %w", err)
			}
			cv.ContactID, cv.ContactName = contactID, contactName
		}
		return cv, false, err
	}
	us := store.Micros(now)
	cv = &parley.Conversation{ID: store.NewID(), ProjectID: cfg.ProjectID, ConfigID: cfg.ID, ContactID: contactID, PhoneNumber: phone,
		Status: parley.ConversationActive, Metadata: parley.JSONObject{}, ContactName: contactName,
		LastActiveAt: store.Time(us), CreatedAt: store.Time(us), UpdatedAt: store.Time(us)}
	res, err := tx.Exec(ctx, `INSERT INTO conversations (id, project_id, whatsapp_config_id, contact_id, phone_number, status, metadata,
		last_active_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'active', '{}', ?, ?, ?)
		ON CONFLICT (whatsapp_config_id, phone_number) WHERE status = 'active' DO NOTHING`,
		cv.ID, cv.ProjectID, cv.ConfigID, store.NullStr(contactID), phone, us, us, us)
	if err != nil {
		return nil, false, fmt.Errorf("messaging: open conversation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		cv, err = activeConversation(ctx, tx, cfg.ID, phone)
		if err == nil && cv == nil {
			err = errors.New("messaging: active conversation vanished")
		}
		return cv, false, err
	}
	return cv, true, nil
}

// messageActivity is what a new message changes on its conversation.
type messageActivity struct {
	MessageID string
	Type      string
	Text      *string
	At        time.Time
	Inbound   bool
}

// columns returns what a stores on its conversation: its time in
// microseconds, as last_inbound_at or last_outbound_at (the other one
// null), and its text cut to 1,000 characters.
func (a messageActivity) columns() (us int64, in, out sql.NullInt64, text *string) {
	us = store.Micros(a.At)
	if a.Inbound {
		in = sql.NullInt64{Int64: us, Valid: true}
	} else {
		out = sql.NullInt64{Int64: us, Valid: true}
	}
	text = a.Text
	if text != nil && len(*text) > 1000 {
		t := truncateRunes(*text, 1000)
		text = &t
	}
	return us, in, out, text
}

// touchConversation records a new message on its conversation and returns
// the conversation as updated, with the message's sequence number in
// LastSeq.
func touchConversation(ctx context.Context, tx *store.Conn, cv *parley.Conversation, a messageActivity) (*parley.Conversation, error) {
	us, in, out, text := a.columns()
	upd, err := scanConv(tx.QueryRow(ctx, `UPDATE conversations SET messages_count = messages_count + 1, last_seq = last_seq + 1,
		last_message_id = ?, last_message_type = ?, last_message_text = ?, last_message_at = ?,
		last_inbound_at = COALESCE(?, last_inbound_at), last_outbound_at = COALESCE(?, last_outbound_at),
		last_active_at = ?, updated_at = ? WHERE id = ? RETURNING `+convColsBare,
		a.MessageID, a.Type, store.NullStr(text), us, in, out, us, us, cv.ID), false)
	if err != nil {
		return nil, fmt.Errorf("messaging: touch conversation: %w", err)
	}
	upd.ContactName = cv.ContactName
	return upd, nil
}

// setConversationStatus ends or reopens a conversation. Reopening while
// another conversation of the same config and phone is active is a 422.
func setConversationStatus(ctx context.Context, tx *store.Conn, cv *parley.Conversation, status string, now time.Time) error {
	us := store.Micros(now)
	var ended any
	if status == parley.ConversationEnded {
		ended = us
	}
	_, err := tx.Exec(ctx, `UPDATE conversations SET status = ?, ended_at = ?, updated_at = ? WHERE id = ?`, status, ended, us, cv.ID)
	if store.IsUniqueViolation(err) {
		return parley.Invalid("Validation failed", "Another conversation with this phone number is already active")
	}
	if err != nil {
		return fmt.Errorf("messaging: set conversation status: %w", err)
	}
	cv.Status, cv.UpdatedAt = status, store.Time(us)
	cv.EndedAt = nil
	if status == parley.ConversationEnded {
		t := store.Time(us)
		cv.EndedAt = &t
	}
	return nil
}

// upsertContact finds or creates the project's contact for waID, refreshing
// its profile name when one is given, and returns its id and name.
func upsertContact(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, waID, profileName string, now time.Time) (string, *string, error) {
	us := store.Micros(now)
	var name, lc any
	if profileName != "" {
		name, lc = profileName, strings.ToLower(profileName)
	}
	var id string
	var got sql.NullString
	err := tx.QueryRow(ctx, `INSERT INTO contacts (id, project_id, customer_id, wa_id, profile_name, profile_name_lc, metadata, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?)
		ON CONFLICT (project_id, wa_id) DO UPDATE SET profile_name = COALESCE(excluded.profile_name, contacts.profile_name),
			profile_name_lc = COALESCE(excluded.profile_name_lc, contacts.profile_name_lc),
			customer_id = COALESCE(contacts.customer_id, excluded.customer_id),
			updated_at = CASE WHEN excluded.profile_name IS NULL OR excluded.profile_name = contacts.profile_name THEN contacts.updated_at ELSE excluded.updated_at END
		RETURNING id, profile_name`,
		store.NewID(), cfg.ProjectID, store.NullStr(cfg.CustomerID), waID, name, lc, us, us).Scan(&id, &got)
	if err != nil {
		return "", nil, fmt.Errorf("messaging: upsert contact: %w", err)
	}
	return id, store.StrPtr(got), nil
}

var msgColumns = []string{"id", "project_id", "conversation_id", "whatsapp_config_id", "phone_number", "direction", "origin", "message_type",
	"content", "status", "processing_status", "whatsapp_message_id", "seq", "metadata", "message_type_data", "meta_payload", "statuses",
	"reply_to_id", "media_id", "media_mime_type", "media_filename", "media_sha256", "media_size", "media_path", "media_url_external",
	"error_code", "error_title", "error_message", "sent_at", "delivered_at", "read_at", "failed_at", "created_at", "updated_at"}

var (
	msgCols         = strings.Join(msgColumns, ", ")
	msgPlaceholders = strings.TrimSuffix(strings.Repeat("?, ", len(msgColumns)), ", ")
)

func scanMessage(s store.Scanner) (*parley.Message, error) {
	var m parley.Message
	var content, wamid, mtd, payload, reply, mid, mime, fname, sha, path, ext, etitle, emsg sql.NullString
	var size, ecode, sent, deliv, read, failed sql.NullInt64
	var meta, statuses string
	var ca, ua int64
	if err := s.Scan(&m.ID, &m.ProjectID, &m.ConversationID, &m.ConfigID, &m.PhoneNumber, &m.Direction, &m.Origin, &m.MessageType,
		&content, &m.Status, &m.ProcessingStatus, &wamid, &m.Seq, &meta, &mtd, &payload, &statuses,
		&reply, &mid, &mime, &fname, &sha, &size, &path, &ext, &ecode, &etitle, &emsg, &sent, &deliv, &read, &failed, &ca, &ua); err != nil {
		return nil, err
	}
	m.Content, m.WhatsAppMessageID, m.ReplyToID = store.StrPtr(content), store.StrPtr(wamid), store.StrPtr(reply)
	m.MediaID, m.MediaMimeType, m.MediaFilename, m.MediaSHA256 = store.StrPtr(mid), store.StrPtr(mime), store.StrPtr(fname), store.StrPtr(sha)
	m.MediaPath, m.MediaURLExternal, m.ErrorTitle, m.ErrorMessage = store.StrPtr(path), store.StrPtr(ext), store.StrPtr(etitle), store.StrPtr(emsg)
	if size.Valid {
		v := size.Int64
		m.MediaSize = &v
	}
	if ecode.Valid {
		v := int(ecode.Int64)
		m.ErrorCode = &v
	}
	m.SentAt, m.DeliveredAt, m.ReadAt, m.FailedAt = store.TimePtr(sent), store.TimePtr(deliv), store.TimePtr(read), store.TimePtr(failed)
	m.CreatedAt, m.UpdatedAt = store.Time(ca), store.Time(ua)
	_ = store.FromJSON(meta, &m.Metadata)
	if mtd.Valid && mtd.String != "" && mtd.String != "null" {
		_ = store.FromJSON(mtd.String, &m.MessageTypeData)
	}
	if payload.Valid {
		m.MetaPayload = json.RawMessage(payload.String)
	}
	_ = store.FromJSON(statuses, &m.Statuses)
	return &m, nil
}

func nullJSON(v map[string]any) sql.NullString {
	if v == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: store.JSON(v), Valid: true}
}

func nullRaw(b json.RawMessage) sql.NullString {
	if len(b) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

func nullInt(p *int) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*p), Valid: true}
}

func nullInt64(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

func statusesJSON(s []json.RawMessage) string {
	if len(s) == 0 {
		return "[]"
	}
	return store.JSON(s)
}

// insertMessage inserts m. With a wamid that the config already has, it
// inserts nothing and returns false (a duplicate delivery from Meta).
func insertMessage(ctx context.Context, tx *store.Conn, m *parley.Message) (bool, error) {
	meta := m.Metadata
	if meta == nil {
		meta = parley.JSONObject{}
	}
	res, err := tx.Exec(ctx, `INSERT INTO messages (`+msgCols+`) VALUES (`+msgPlaceholders+`)
		ON CONFLICT (whatsapp_config_id, whatsapp_message_id) WHERE whatsapp_message_id IS NOT NULL DO NOTHING`,
		m.ID, m.ProjectID, m.ConversationID, m.ConfigID, m.PhoneNumber, m.Direction, m.Origin, m.MessageType,
		store.NullStr(m.Content), m.Status, m.ProcessingStatus, store.NullStr(m.WhatsAppMessageID), m.Seq, store.JSON(meta),
		nullJSON(m.MessageTypeData), nullRaw(m.MetaPayload), statusesJSON(m.Statuses), store.NullStr(m.ReplyToID),
		store.NullStr(m.MediaID), store.NullStr(m.MediaMimeType), store.NullStr(m.MediaFilename), store.NullStr(m.MediaSHA256),
		nullInt64(m.MediaSize), store.NullStr(m.MediaPath), store.NullStr(m.MediaURLExternal), nullInt(m.ErrorCode),
		store.NullStr(m.ErrorTitle), store.NullStr(m.ErrorMessage), store.NullMicros(m.SentAt), store.NullMicros(m.DeliveredAt),
		store.NullMicros(m.ReadAt), store.NullMicros(m.FailedAt), store.Micros(m.CreatedAt), store.Micros(m.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("messaging: insert message: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// saveMessageState writes the mutable columns of m: status, wamid, statuses
// history, errors and timestamps.
func saveMessageState(ctx context.Context, tx *store.Conn, m *parley.Message) error {
	_, err := tx.Exec(ctx, `UPDATE messages SET status = ?, processing_status = ?, whatsapp_message_id = ?, statuses = ?,
		error_code = ?, error_title = ?, error_message = ?, sent_at = ?, delivered_at = ?, read_at = ?, failed_at = ?, updated_at = ?
		WHERE id = ?`,
		m.Status, m.ProcessingStatus, store.NullStr(m.WhatsAppMessageID), statusesJSON(m.Statuses), nullInt(m.ErrorCode),
		store.NullStr(m.ErrorTitle), store.NullStr(m.ErrorMessage), store.NullMicros(m.SentAt), store.NullMicros(m.DeliveredAt),
		store.NullMicros(m.ReadAt), store.NullMicros(m.FailedAt), store.Micros(m.UpdatedAt), m.ID)
	if err != nil {
		return fmt.Errorf("messaging: save message: %w", err)
	}
	return nil
}

// listMessages returns a page of a conversation's messages, newest first.
func listMessages(ctx context.Context, c *store.Conn, conversationID string, p parley.Page) ([]*parley.Message, int, error) {
	var total int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM messages WHERE conversation_id = ?`, conversationID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("messaging: count messages: %w", err)
	}
	if total == 0 || p.Offset() >= total {
		return []*parley.Message{}, total, nil
	}
	// Page over the (conversation_id, created_at, id) index alone, then
	// read the page's rows.
	out, err := store.QueryAll(ctx, c, scanMessage, `SELECT `+msgCols+` FROM messages WHERE id IN (SELECT id FROM messages WHERE conversation_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?) ORDER BY created_at DESC, id DESC`, conversationID, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("messaging: list messages: %w", err)
	}
	return out, total, nil
}

// getMessage returns a project's message.
func getMessage(ctx context.Context, c *store.Conn, projectID, id string) (*parley.Message, error) {
	m, err := scanMessage(c.QueryRow(ctx, `SELECT `+msgCols+` FROM messages WHERE project_id = ? AND id = ?`, projectID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("WhatsApp message")
	}
	if err != nil {
		return nil, fmt.Errorf("messaging: get message: %w", err)
	}
	return m, nil
}

// getMessageByID returns a message of any project (workers).
func getMessageByID(ctx context.Context, c *store.Conn, id string) (*parley.Message, error) {
	m, err := scanMessage(c.QueryRow(ctx, `SELECT `+msgCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("WhatsApp message")
	}
	if err != nil {
		return nil, fmt.Errorf("messaging: get message: %w", err)
	}
	return m, nil
}

// deleteMessage deletes a project's message (Parley's copy only).
func deleteMessage(ctx context.Context, c *store.Conn, projectID, id string) error {
	res, err := c.Exec(ctx, `DELETE FROM messages WHERE project_id = ? AND id = ?`, projectID, id)
	if err != nil {
		return fmt.Errorf("messaging: delete message: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("WhatsApp message")
	}
	return nil
}

// markMessageRead sets an inbound message's status to read.
func markMessageRead(ctx context.Context, c *store.Conn, m *parley.Message, now time.Time) error {
	m.Status, m.ProcessingStatus, m.UpdatedAt = parley.MessageRead, parley.ProcessingProcessed, now
	if m.ReadAt == nil {
		m.ReadAt = &now
	}
	_, err := c.Exec(ctx, `UPDATE messages SET status = ?, processing_status = ?, read_at = ?, updated_at = ? WHERE id = ?`,
		m.Status, m.ProcessingStatus, store.NullMicros(m.ReadAt), store.Micros(now), m.ID)
	if err != nil {
		return fmt.Errorf("messaging: mark read: %w", err)
	}
	return nil
}

// lockWamids serialises, on PostgreSQL, the statuses of a config's wamids
// with the send that records one of them (finishSent). Without it a status
// webhook whose lookup ran before the send committed would not see the
// wamid and park the status, after the send had already taken the parked
// ones: the status would never be applied. SQLite's single writer already
// runs them one after the other. The keys are locked in order in one
// statement, so two status webhooks never deadlock; a hash collision only
// makes two unrelated webhooks wait for each other.
func lockWamids(ctx context.Context, tx *store.Conn, configID string, wamids []string) error {
	if !tx.Postgres() || len(wamids) == 0 {
		return nil
	}
	keys := make([]string, len(wamids))
	for i, w := range wamids {
		keys[i] = configID + " " + w
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (SELECT unnest(CAST(? AS TEXT[])) AS k ORDER BY 1) AS l`,
		keys); err != nil {
		return fmt.Errorf("messaging: lock wamids: %w", err)
	}
	return nil
}

// takePendingStatuses removes and returns the statuses kept for wamid, in
// arrival order.
func takePendingStatuses(ctx context.Context, tx *store.Conn, configID, wamid string) ([]json.RawMessage, error) {
	rows, err := tx.Query(ctx, `SELECT payload FROM pending_statuses WHERE whatsapp_config_id = ? AND whatsapp_message_id = ? ORDER BY created_at, id`,
		configID, wamid)
	if err != nil {
		return nil, fmt.Errorf("messaging: pending statuses: %w", err)
	}
	var out []json.RawMessage
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, json.RawMessage(p))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM pending_statuses WHERE whatsapp_config_id = ? AND whatsapp_message_id = ?`, configID, wamid); err != nil {
			return nil, fmt.Errorf("messaging: delete pending statuses: %w", err)
		}
	}
	return out, nil
}

// insertReceipt records a webhook body's hash; false means it was already
// processed (a replay).
func insertReceipt(ctx context.Context, tx *store.Conn, sha string, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `INSERT INTO meta_webhook_receipts (body_sha256, received_at) VALUES (?, ?) ON CONFLICT (body_sha256) DO NOTHING`,
		sha, store.Micros(now))
	if err != nil {
		return false, fmt.Errorf("messaging: webhook receipt: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// firstConfig returns the project's oldest config, optionally of a customer.
func firstConfig(ctx context.Context, c *store.Conn, projectID string, customerID *string) (*parley.WhatsAppConfig, error) {
	var id string
	var err error
	if customerID != nil {
		err = c.QueryRow(ctx, `SELECT id FROM whatsapp_configs WHERE project_id = ? AND customer_id = ? ORDER BY created_at, id LIMIT 1`,
			projectID, *customerID).Scan(&id)
	} else {
		err = c.QueryRow(ctx, `SELECT id FROM whatsapp_configs WHERE project_id = ? ORDER BY created_at, id LIMIT 1`, projectID).Scan(&id)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, configNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("messaging: first config: %w", err)
	}
	return store.GetConfig(ctx, c, projectID, id)
}

// configsByWABA returns the configs of a WhatsApp Business Account, in any
// project (template status updates carry only the WABA id).
func configsByWABA(ctx context.Context, c *store.Conn, wabaID string) ([]*parley.WhatsAppConfig, error) {
	return store.ConfigsByWABA(ctx, c, wabaID, "")
}

// endIfIdle ends an active conversation whose last activity is older than
// cutoff; it reports whether it ended it.
func endIfIdle(ctx context.Context, tx *store.Conn, id string, cutoff, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE conversations SET status = 'ended', ended_at = ?, updated_at = ?
		WHERE id = ? AND status = 'active' AND last_active_at <= ?`, store.Micros(now), store.Micros(now), id, store.Micros(cutoff))
	if err != nil {
		return false, fmt.Errorf("messaging: auto-end: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// touchActive marks activity on a conversation without a message (a reopen).
func touchActive(ctx context.Context, tx *store.Conn, cv *parley.Conversation, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE conversations SET last_active_at = ?, updated_at = ? WHERE id = ?`, store.Micros(at), store.Micros(at), cv.ID)
	if err != nil {
		return fmt.Errorf("messaging: touch conversation: %w", err)
	}
	cv.LastActiveAt, cv.UpdatedAt = at, at
	return nil
}

// ---- the inbound path: few statements per webhook ----

// upsertInboundContact finds or creates the project's contact for waID,
// refreshing its profile name when one is given, and returns its id and
// name, unless the config already has a message with wamid: then it
// changes nothing and reports dup (a duplicate delivery from Meta). The
// common case, a known contact whose name did not change, is one read
// (which also tells a duplicate apart) and no write.
func upsertInboundContact(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, waID, profileName, wamid string, now time.Time) (string, *string, bool, error) {
	var id, got, cust sql.NullString
	var dup bool
	err := tx.QueryRow(ctx, `SELECT id, profile_name, customer_id,
		EXISTS (SELECT 1 FROM messages WHERE whatsapp_config_id = ? AND whatsapp_message_id = ?)
		FROM contacts WHERE project_id = ? AND wa_id = ?`, cfg.ID, wamid, cfg.ProjectID, waID).Scan(&id, &got, &cust, &dup)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return "", nil, false, fmt.Errorf("messaging: find contact: %w", err)
	case dup:
		return "", nil, true, nil
	case (profileName == "" || (got.Valid && got.String == profileName)) && (cust.Valid || cfg.CustomerID == nil):
		return id.String, store.StrPtr(got), false, nil
	}
	us := store.Micros(now)
	var name, lc any
	if profileName != "" {
		name, lc = profileName, strings.ToLower(profileName)
	}
	var rid string
	err = tx.QueryRow(ctx, `INSERT INTO contacts (id, project_id, customer_id, wa_id, profile_name, profile_name_lc, metadata, created_at, updated_at)
		SELECT ?, ?, ?, ?, ?, ?, '{}', ?, ?
		WHERE NOT EXISTS (SELECT 1 FROM messages WHERE whatsapp_config_id = ? AND whatsapp_message_id = ?)
		ON CONFLICT (project_id, wa_id) DO UPDATE SET profile_name = COALESCE(excluded.profile_name, contacts.profile_name),
			profile_name_lc = COALESCE(excluded.profile_name_lc, contacts.profile_name_lc),
			customer_id = COALESCE(contacts.customer_id, excluded.customer_id),
			updated_at = CASE WHEN excluded.profile_name IS NULL OR excluded.profile_name = contacts.profile_name THEN contacts.updated_at ELSE excluded.updated_at END
		RETURNING id, profile_name`,
		store.NewID(), cfg.ProjectID, store.NullStr(cfg.CustomerID), waID, name, lc, us, us, cfg.ID, wamid).Scan(&rid, &got)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, true, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("messaging: upsert contact: %w", err)
	}
	return rid, store.StrPtr(got), false, nil
}

// recordMessage records a new message on the active conversation of
// (config, phone) and returns the conversation as updated, with the
// message's sequence number in LastSeq. When there is no active
// conversation it opens one that already counts the message (created is
// then true): the same row an insert followed by the update would leave.
// The contact is linked when the conversation has none. The partial unique
// index makes a concurrent open lose cleanly: its insert does nothing and
// the update runs again on the winner's row.
func recordMessage(ctx context.Context, tx *store.Conn, cfg *parley.WhatsAppConfig, phone, contactID string, contactName *string, a messageActivity) (*parley.Conversation, bool, error) {
	us, in, out, text := a.columns()
	t := store.Time(us)
	for try := 0; try < 2; try++ {
		// Only what the update does not set is read back; the rest of the
		// conversation is known.
		upd := &parley.Conversation{ConfigID: cfg.ID, PhoneNumber: phone, Status: parley.ConversationActive,
			LastMessageID: &a.MessageID, LastMessageType: &a.Type, LastMessageText: text, LastMessageAt: &t, LastActiveAt: t, UpdatedAt: t}
		var contact sql.NullString
		var lin, lout, ended sql.NullInt64
		var meta string
		var ca int64
		err := tx.QueryRow(ctx, `UPDATE conversations SET messages_count = messages_count + 1, last_seq = last_seq + 1,
			contact_id = COALESCE(contact_id, ?), last_message_id = ?, last_message_type = ?, last_message_text = ?, last_message_at = ?,
			last_inbound_at = COALESCE(?, last_inbound_at), last_outbound_at = COALESCE(?, last_outbound_at),
			last_active_at = ?, updated_at = ? WHERE whatsapp_config_id = ? AND phone_number = ? AND status = 'active'
			RETURNING id, project_id, contact_id, metadata, messages_count, last_seq, last_inbound_at, last_outbound_at, ended_at, created_at`,
			contactID, a.MessageID, a.Type, store.NullStr(text), us, in, out, us, us, cfg.ID, phone).
			Scan(&upd.ID, &upd.ProjectID, &contact, &meta, &upd.MessagesCount, &upd.LastSeq, &lin, &lout, &ended, &ca)
		if err == nil {
			upd.ContactID, upd.LastInboundAt, upd.LastOutboundAt, upd.EndedAt = store.StrPtr(contact), store.TimePtr(lin), store.TimePtr(lout), store.TimePtr(ended)
			upd.CreatedAt = store.Time(ca)
			if meta == "{}" {
				upd.Metadata = parley.JSONObject{}
			} else {
				_ = store.FromJSON(meta, &upd.Metadata)
			}
			switch {
			case upd.ContactID == nil:
			case *upd.ContactID == contactID:
				upd.ContactName = contactName
			default: // linked to another contact of the same number
				var n sql.NullString
				if err := tx.QueryRow(ctx, `SELECT profile_name FROM contacts WHERE id = ?`, *upd.ContactID).Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
					return nil, false, fmt.Errorf("messaging: contact name: %w", err)
				}
				upd.ContactName = store.StrPtr(n)
			}
			return upd, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("messaging: touch conversation: %w", err)
		}
		cid := contactID
		cv := &parley.Conversation{ID: store.NewID(), ProjectID: cfg.ProjectID, ConfigID: cfg.ID, ContactID: &cid, PhoneNumber: phone,
			Status: parley.ConversationActive, Metadata: parley.JSONObject{}, MessagesCount: 1, LastSeq: 1,
			LastMessageID: &a.MessageID, LastMessageType: &a.Type, LastMessageText: text, LastMessageAt: &t,
			LastActiveAt: t, CreatedAt: t, UpdatedAt: t, ContactName: contactName}
		if a.Inbound {
			cv.LastInboundAt = &t
		} else {
			cv.LastOutboundAt = &t
		}
		res, err := tx.Exec(ctx, `INSERT INTO conversations (id, project_id, whatsapp_config_id, contact_id, phone_number, status, metadata,
			messages_count, last_seq, last_message_id, last_message_type, last_message_text, last_message_at, last_inbound_at, last_outbound_at,
			last_active_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'active', '{}', 1, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (whatsapp_config_id, phone_number) WHERE status = 'active' DO NOTHING`,
			cv.ID, cv.ProjectID, cv.ConfigID, contactID, phone, a.MessageID, a.Type, store.NullStr(text), us, in, out, us, us, us)
		if err != nil {
			return nil, false, fmt.Errorf("messaging: open conversation: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return cv, true, nil
		}
	}
	return nil, false, errors.New("messaging: active conversation vanished")
}

// maxInList bounds the values of one IN list; lists are padded to a power
// of two (repeating the last value) so few distinct statements are
// prepared.
const maxInList = 64

var inLists = func() map[int]string {
	m := map[int]string{}
	for n := 1; n <= maxInList; n <<= 1 {
		m[n] = store.Placeholders(n)
	}
	return m
}()

// messagesByWamids returns the config's messages with the given wamids, by
// wamid; unknown wamids are absent.
func messagesByWamids(ctx context.Context, c *store.Conn, configID string, wamids []string) (map[string]*parley.Message, error) {
	out := make(map[string]*parley.Message, len(wamids))
	for len(wamids) > 0 {
		n := min(len(wamids), maxInList)
		chunk := wamids[:n]
		wamids = wamids[n:]
		size := 1
		for size < n {
			size <<= 1
		}
		args := make([]any, 0, size+1)
		args = append(args, configID)
		for i := 0; i < size; i++ {
			args = append(args, chunk[min(i, n-1)])
		}
		// On PostgreSQL the rows are locked (in id order, so two webhooks
		// never deadlock) because the caller read-modify-writes their
		// status: without the lock two status webhooks of one message
		// processed at once could overwrite each other (read demoted to
		// delivered). SQLite's single writer already serialises them.
		lock := ""
		if c.Postgres() {
			lock = " ORDER BY id FOR UPDATE"
		}
		rows, err := c.Query(ctx, `SELECT `+msgCols+` FROM messages WHERE whatsapp_config_id = ? AND whatsapp_message_id IN (`+inLists[size]+`)`+lock, args...)
		if err != nil {
			return nil, fmt.Errorf("messaging: messages by wamid: %w", err)
		}
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			if m.WhatsAppMessageID != nil {
				out[*m.WhatsAppMessageID] = m
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pendingStatus is a status whose wamid is not known yet.
type pendingStatus struct {
	wamid   string
	payload json.RawMessage
	at      time.Time
}

// maxInsertRows bounds the rows of one multi-row insert; batches are split into
// power-of-two chunks so few distinct statements are prepared.
const maxInsertRows = 32

var pendingInserts = func() map[int]string {
	m := map[int]string{}
	for n := 1; n <= maxInsertRows; n <<= 1 {
		m[n] = `INSERT INTO pending_statuses (id, whatsapp_config_id, whatsapp_message_id, payload, created_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", n), ", ")
	}
	return m
}()

// addPendingStatuses keeps statuses whose wamid is not known yet, in
// order (ids are time-ordered, so takePendingStatuses returns them in
// arrival order).
func addPendingStatuses(ctx context.Context, tx *store.Conn, configID string, ps []pendingStatus) error {
	for len(ps) > 0 {
		n := maxInsertRows
		for n > len(ps) {
			n >>= 1
		}
		args := make([]any, 0, 5*n)
		for _, p := range ps[:n] {
			args = append(args, store.NewID(), configID, p.wamid, string(p.payload), store.Micros(p.at))
		}
		ps = ps[n:]
		if _, err := tx.Exec(ctx, pendingInserts[n], args...); err != nil {
			return fmt.Errorf("messaging: pending status: %w", err)
		}
	}
	return nil
}
