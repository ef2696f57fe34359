package contacts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// now is the clock of every write, truncated to what the store keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// lower returns the lower-cased copy of an optional profile name kept in
// profile_name_lc, so both engines search it the same way (Go lower-cases,
// not the database).
func lower(s *string) sql.NullString {
	if s == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: strings.ToLower(*s), Valid: true}
}

// ---- contacts ----

const contactCols = `id, project_id, customer_id, wa_id, profile_name, metadata, created_at, updated_at`

func scanContact(s store.Scanner) (*parley.Contact, error) {
	var c parley.Contact
	var cust, name sql.NullString
	var meta string
	var ca, ua int64
	if err := s.Scan(&c.ID, &c.ProjectID, &cust, &c.WaID, &name, &meta, &ca, &ua); err != nil {
		return nil, err
	}
	c.CustomerID, c.ProfileName, c.CreatedAt, c.UpdatedAt = store.StrPtr(cust), store.StrPtr(name), store.Time(ca), store.Time(ua)
	if err := store.FromJSON(meta, &c.Metadata); err != nil {
		c.Metadata = nil
	}
	return &c, nil
}

// ContactFilter holds the list filters of GET /whatsapp_contacts.
type ContactFilter struct {
	CustomerIDEq         *string
	CustomerExternalIDEq *string
	// CustomerIDNull: true = only contacts without customer, false = only with.
	CustomerIDNull  *bool
	ProfileNameCont string
	// WaIDCont is matched against the stored digits.
	WaIDCont      string
	CreatedAtGteq *time.Time
	CreatedAtLteq *time.Time
	// NoMatch short-circuits a filter that cannot match anything.
	NoMatch bool
}

// ListContacts returns a page of a project's contacts, newest first.
func ListContacts(ctx context.Context, c *store.Conn, projectID string, f ContactFilter, p parley.Page) ([]*parley.Contact, int, error) {
	if f.NoMatch {
		return []*parley.Contact{}, 0, nil
	}
	where := ` WHERE project_id = ?`
	args := []any{projectID}
	if f.CustomerIDEq != nil {
		where += ` AND customer_id = ?`
		args = append(args, *f.CustomerIDEq)
	}
	if f.CustomerExternalIDEq != nil {
		where += ` AND customer_id IN (SELECT id FROM customers WHERE project_id = ? AND external_customer_id = ?)`
		args = append(args, projectID, *f.CustomerExternalIDEq)
	}
	if f.CustomerIDNull != nil {
		if *f.CustomerIDNull {
			where += ` AND customer_id IS NULL`
		} else {
			where += ` AND customer_id IS NOT NULL`
		}
	}
	// Substring filters can seek no b-tree: every candidate entry is
	// tested, except on PostgreSQL with pg_trgm (see nameCond).
	if f.ProfileNameCont != "" {
		if c.Postgres() {
			cond, ok := nameCondPG(strings.ToLower(f.ProfileNameCont))
			if !ok {
				return []*parley.Contact{}, 0, nil
			}
			where += ` AND ` + cond
		} else {
			where += ` AND ` + containsCond(c, "profile_name_lc")
			args = append(args, containsArg(c, strings.ToLower(f.ProfileNameCont)))
		}
	}
	if f.WaIDCont != "" {
		where += ` AND ` + containsCond(c, "wa_id")
		args = append(args, containsArg(c, f.WaIDCont))
	}
	if f.CreatedAtGteq != nil {
		where += ` AND created_at >= ?`
		args = append(args, store.Micros(*f.CreatedAtGteq))
	}
	if f.CreatedAtLteq != nil {
		where += ` AND created_at <= ?`
		args = append(args, store.Micros(*f.CreatedAtLteq))
	}
	// On SQLite a name search alone is answered from the gram index of
	// migration 0090 when that costs less than the scan (searchByGrams).
	// PostgreSQL reads the pg_trgm index of migration 0110 when it has one
	// (nameCondPG).
	if f.ProfileNameCont != "" && !c.Postgres() && f.onlyName() {
		out, total, ok, err := searchByGrams(ctx, c, projectID, strings.ToLower(f.ProfileNameCont), p)
		if err != nil || ok {
			return out, total, err
		}
	}
	return listContactsPage(ctx, c, where, args, p, -1)
}

// onlyName reports whether the filter is a name search and nothing else.
func (f ContactFilter) onlyName() bool {
	return f.CustomerIDEq == nil && f.CustomerExternalIDEq == nil && f.CustomerIDNull == nil && f.WaIDCont == "" &&
		f.CreatedAtGteq == nil && f.CreatedAtLteq == nil
}

// listContactsPage reads a page of contacts matching where. total, when not
// negative, is the known meta.total_count; otherwise it is counted.
func listContactsPage(ctx context.Context, c *store.Conn, where string, args []any, p parley.Page, total int) ([]*parley.Contact, int, error) {
	// The page is read first, over the covering index contacts_list
	// (project_id, created_at, id, profile_name_lc) alone: a name search
	// tests each entry without reading the table and stops as soon as the
	// page is full. Only the page's rows are then read in full.
	out, err := store.QueryAll(ctx, c, scanContact, `SELECT `+contactCols+` FROM contacts WHERE id IN (SELECT id FROM contacts`+where+
		` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?) ORDER BY created_at DESC, id DESC`,
		append(args, p.PerPage, p.Offset())...)
	if err != nil {
		return nil, 0, fmt.Errorf("contacts: list: %w", err)
	}
	// meta.total_count stays exact, but a page that is not full is the
	// last one and gives it without counting. That spares the COUNT exactly
	// when the page took a long scan: a rare name fragment reads every
	// entry to fill its page. A full page, or an empty one past the first,
	// needs the COUNT, which both engines answer for a name search from
	// the narrow index contacts_name (project_id, profile_name_lc).
	if total >= 0 {
		return out, total, nil
	}
	if n := len(out); n < p.PerPage && (n > 0 || p.Offset() == 0) {
		return out, p.Offset() + n, nil
	}
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM contacts`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("contacts: count: %w", err)
	}
	return out, total, nil
}

// nameCondPG is the PostgreSQL condition "the lower-cased name contains
// fragment", with the pattern written into the statement rather than bound:
// planned for the pattern itself, a fragment of three characters or more
// reads the trigram index of migration 0110 (contacts_name_trgm, when
// pg_trgm is installed) and a shorter one, which has no trigram, scans
// contacts_name. A bound pattern gets one generic plan for every fragment
// after a few executions, wrong for one kind or the other (twice the time
// measured for frequent fragments). ok is false when fragment cannot match
// a stored name (a NUL byte or invalid UTF-8, which PostgreSQL text cannot
// hold). The literal is safe: standard_conforming_strings is on (pgx
// requires it), so only the quote needs doubling.
func nameCondPG(fragment string) (cond string, ok bool) {
	if strings.IndexByte(fragment, 0) >= 0 || !utf8.ValidString(fragment) {
		return "", false
	}
	pattern := "%" + store.EscapeLike(fragment) + "%"
	return `profile_name_lc LIKE '` + strings.ReplaceAll(pattern, "'", "''") + `' ESCAPE '\'`, true
}

// containsCond is the condition "column contains the next argument" (see
// containsArg). SQLite's instr() is a plain byte search, a third cheaper per
// entry than LIKE '%…%' (which decodes and case-folds the pattern for every
// entry); PostgreSQL's LIKE is no slower than its strpos(). Both columns are
// searched in the form they are stored (lower-cased name, digits), so the
// two conditions match the same rows.
func containsCond(c *store.Conn, column string) string {
	if c.Postgres() {
		return column + ` LIKE ? ESCAPE '\'`
	}
	return `instr(` + column + `, ?) > 0`
}

// containsArg is the argument of containsCond for fragment.
func containsArg(c *store.Conn, fragment string) string {
	if c.Postgres() {
		return "%" + store.EscapeLike(fragment) + "%"
	}
	return fragment
}

// GetContact returns a project's contact by id.
func GetContact(ctx context.Context, c *store.Conn, projectID, id string) (*parley.Contact, error) {
	return getContact(ctx, c, `SELECT `+contactCols+` FROM contacts WHERE project_id = ? AND id = ?`, projectID, id)
}

// GetContactByWaID returns a project's contact by normalized phone number.
func GetContactByWaID(ctx context.Context, c *store.Conn, projectID, waID string) (*parley.Contact, error) {
	return getContact(ctx, c, `SELECT `+contactCols+` FROM contacts WHERE project_id = ? AND wa_id = ?`, projectID, waID)
}

func getContact(ctx context.Context, c *store.Conn, q string, args ...any) (*parley.Contact, error) {
	ct, err := scanContact(c.QueryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Contact")
	}
	if err != nil {
		return nil, fmt.Errorf("contacts: get: %w", err)
	}
	return ct, nil
}

// errWaIDTaken is Kapso's documented answer to a duplicate wa_id.
func errWaIDTaken() error {
	return parley.Invalid("Validation failed", "Wa_id has already been taken")
}

// errCustomerMissing answers a customer_id that is not one of the project's
// customers: POST /whatsapp_contacts documents no 404 (Kapso: 201, 401, 422),
// so it is a validation error, as Rails' belongs_to reports it.
func errCustomerMissing() error {
	return parley.Invalid("Validation failed", "Customer must exist")
}

// CreateContact inserts a contact. A wa_id already in the project is a 422.
func CreateContact(ctx context.Context, c *store.Conn, ct *parley.Contact) error {
	t := now()
	ct.ID, ct.CreatedAt, ct.UpdatedAt = store.NewID(), t, t
	if ct.Metadata == nil {
		ct.Metadata = parley.JSONObject{}
	}
	_, err := c.Exec(ctx, `INSERT INTO contacts (id, project_id, customer_id, wa_id, profile_name, profile_name_lc, metadata, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ct.ID, ct.ProjectID, store.NullStr(ct.CustomerID), ct.WaID, store.NullStr(ct.ProfileName), lower(ct.ProfileName),
		store.JSON(ct.Metadata), store.Micros(t), store.Micros(t))
	if store.IsUniqueViolation(err) {
		return errWaIDTaken()
	}
	if store.IsForeignKeyViolation(err) {
		return errCustomerMissing()
	}
	if err != nil {
		return fmt.Errorf("contacts: create: %w", err)
	}
	return nil
}

// UpdateContact saves a contact's profile name and metadata, the only
// fields the API may change.
func UpdateContact(ctx context.Context, c *store.Conn, ct *parley.Contact) error {
	ct.UpdatedAt = now()
	if ct.Metadata == nil {
		ct.Metadata = parley.JSONObject{}
	}
	res, err := c.Exec(ctx, `UPDATE contacts SET profile_name = ?, profile_name_lc = ?, metadata = ?, updated_at = ? WHERE project_id = ? AND id = ?`,
		store.NullStr(ct.ProfileName), lower(ct.ProfileName), store.JSON(ct.Metadata), store.Micros(ct.UpdatedAt), ct.ProjectID, ct.ID)
	if err != nil {
		return fmt.Errorf("contacts: update: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("Contact")
	}
	return nil
}

// Upsert returns the project's contact for waID, creating it when missing.
// A non-empty profileName replaces the stored one (WhatsApp users rename
// themselves); an empty one keeps it. customerID fills a contact that has
// none yet and never moves a contact to another customer. It is what the
// inbound path and the message sender call, inside their transaction; the
// single INSERT … ON CONFLICT makes concurrent first messages from the same
// number safe on both engines.
func Upsert(ctx context.Context, tx *store.Conn, projectID string, customerID *string, waID, profileName string) (*parley.Contact, error) {
	waID = parley.NormalizePhone(waID)
	if !parley.ValidPhone(waID) {
		return nil, parley.Invalid("Validation failed", "Wa_id is invalid")
	}
	var name *string
	if pn := strings.TrimSpace(profileName); pn != "" {
		name = &pn
	}
	t := store.Micros(now())
	_, err := tx.Exec(ctx, `INSERT INTO contacts (id, project_id, customer_id, wa_id, profile_name, profile_name_lc, metadata, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?)
		ON CONFLICT (project_id, wa_id) DO UPDATE SET
			profile_name = COALESCE(excluded.profile_name, contacts.profile_name),
			profile_name_lc = COALESCE(excluded.profile_name_lc, contacts.profile_name_lc),
			customer_id = COALESCE(contacts.customer_id, excluded.customer_id),
			updated_at = CASE
				WHEN (excluded.profile_name IS NOT NULL AND (contacts.profile_name IS NULL OR contacts.profile_name <> excluded.profile_name))
					OR (contacts.customer_id IS NULL AND excluded.customer_id IS NOT NULL)
				THEN excluded.updated_at ELSE contacts.updated_at END`,
		store.NewID(), projectID, store.NullStr(customerID), waID, store.NullStr(name), lower(name), t, t)
	if err != nil {
		return nil, fmt.Errorf("contacts: upsert: %w", err)
	}
	return GetContactByWaID(ctx, tx, projectID, waID)
}

// CustomerExists reports whether id is one of the project's customers.
func CustomerExists(ctx context.Context, c *store.Conn, projectID, id string) (bool, error) {
	return exists(ctx, c, `SELECT 1 FROM customers WHERE project_id = ? AND id = ?`, projectID, id)
}

func exists(ctx context.Context, c *store.Conn, q string, args ...any) (bool, error) {
	var one int
	err := c.QueryRow(ctx, q, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("contacts: exists: %w", err)
	}
	return true, nil
}

// ---- notes ----

const noteCols = `id, project_id, contact_id, name, content, metadata, created_at, updated_at`

func scanNote(s store.Scanner) (*parley.ContactNote, error) {
	var n parley.ContactNote
	var name sql.NullString
	var meta string
	var ca, ua int64
	if err := s.Scan(&n.ID, &n.ProjectID, &n.ContactID, &name, &n.Content, &meta, &ca, &ua); err != nil {
		return nil, err
	}
	n.Name, n.CreatedAt, n.UpdatedAt = store.StrPtr(name), store.Time(ca), store.Time(ua)
	if err := store.FromJSON(meta, &n.Metadata); err != nil {
		n.Metadata = nil
	}
	return &n, nil
}

// ListNotes returns a page of a contact's notes, newest first.
func ListNotes(ctx context.Context, c *store.Conn, projectID, contactID string, p parley.Page) ([]*parley.ContactNote, int, error) {
	out, total, err := store.QueryPage(ctx, c, scanNote, `SELECT COUNT(*) FROM contact_notes WHERE project_id = ? AND contact_id = ?`,
		`SELECT `+noteCols+` FROM contact_notes WHERE project_id = ? AND contact_id = ?
		ORDER BY created_at DESC, id DESC`, []any{projectID, contactID}, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("contacts: list notes: %w", err)
	}
	return out, total, nil
}

// GetNote returns a note of a contact.
func GetNote(ctx context.Context, c *store.Conn, projectID, contactID, id string) (*parley.ContactNote, error) {
	n, err := scanNote(c.QueryRow(ctx, `SELECT `+noteCols+` FROM contact_notes WHERE project_id = ? AND contact_id = ? AND id = ?`,
		projectID, contactID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Note")
	}
	if err != nil {
		return nil, fmt.Errorf("contacts: get note: %w", err)
	}
	return n, nil
}

// CreateNote inserts a note.
func CreateNote(ctx context.Context, c *store.Conn, n *parley.ContactNote) error {
	t := now()
	n.ID, n.CreatedAt, n.UpdatedAt = store.NewID(), t, t
	if n.Metadata == nil {
		n.Metadata = parley.JSONObject{}
	}
	_, err := c.Exec(ctx, `INSERT INTO contact_notes (`+noteCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		n.ID, n.ProjectID, n.ContactID, store.NullStr(n.Name), n.Content, store.JSON(n.Metadata), store.Micros(t), store.Micros(t))
	if store.IsForeignKeyViolation(err) {
		return parley.NotFound("Contact")
	}
	if err != nil {
		return fmt.Errorf("contacts: create note: %w", err)
	}
	return nil
}

// UpdateNote saves a note's name, content and metadata.
func UpdateNote(ctx context.Context, c *store.Conn, n *parley.ContactNote) error {
	n.UpdatedAt = now()
	if n.Metadata == nil {
		n.Metadata = parley.JSONObject{}
	}
	res, err := c.Exec(ctx, `UPDATE contact_notes SET name = ?, content = ?, metadata = ?, updated_at = ? WHERE project_id = ? AND contact_id = ? AND id = ?`,
		store.NullStr(n.Name), n.Content, store.JSON(n.Metadata), store.Micros(n.UpdatedAt), n.ProjectID, n.ContactID, n.ID)
	if err != nil {
		return fmt.Errorf("contacts: update note: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return parley.NotFound("Note")
	}
	return nil
}

// DeleteNote deletes a note of a contact.
func DeleteNote(ctx context.Context, c *store.Conn, projectID, contactID, id string) error {
	res, err := c.Exec(ctx, `DELETE FROM contact_notes WHERE project_id = ? AND contact_id = ? AND id = ?`, projectID, contactID, id)
	if err != nil {
		return fmt.Errorf("contacts: delete note: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return parley.NotFound("Note")
	}
	return nil
}

// ---- conversations and users (read-only checks) ----

// ConversationExists reports whether id is one of the project's conversations.
func ConversationExists(ctx context.Context, c *store.Conn, projectID, id string) (bool, error) {
	return exists(ctx, c, `SELECT 1 FROM conversations WHERE project_id = ? AND id = ?`, projectID, id)
}

// UserExists reports whether id is one of the project's users.
func UserExists(ctx context.Context, c *store.Conn, projectID, id string) (bool, error) {
	return exists(ctx, c, `SELECT 1 FROM users WHERE project_id = ? AND id = ?`, projectID, id)
}

// ---- assignments ----

const assignmentCols = `id, project_id, conversation_id, user_id, active, notes, created_by_user_id, created_at, updated_at`

func scanAssignment(s store.Scanner) (*parley.ConversationAssignment, error) {
	var a parley.ConversationAssignment
	var notes, by sql.NullString
	var ca, ua int64
	if err := s.Scan(&a.ID, &a.ProjectID, &a.ConversationID, &a.UserID, &a.Active, &notes, &by, &ca, &ua); err != nil {
		return nil, err
	}
	a.Notes, a.CreatedByUserID, a.CreatedAt, a.UpdatedAt = store.StrPtr(notes), store.StrPtr(by), store.Time(ca), store.Time(ua)
	return &a, nil
}

// ListAssignments returns a page of a conversation's assignments, newest first.
func ListAssignments(ctx context.Context, c *store.Conn, projectID, conversationID string, p parley.Page) ([]*parley.ConversationAssignment, int, error) {
	out, total, err := store.QueryPage(ctx, c, scanAssignment, `SELECT COUNT(*) FROM conversation_assignments WHERE project_id = ? AND conversation_id = ?`,
		`SELECT `+assignmentCols+` FROM conversation_assignments WHERE project_id = ? AND conversation_id = ?
		ORDER BY created_at DESC, id DESC`, []any{projectID, conversationID}, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("contacts: list assignments: %w", err)
	}
	return out, total, nil
}

// GetAssignment returns an assignment of a conversation.
func GetAssignment(ctx context.Context, c *store.Conn, projectID, conversationID, id string) (*parley.ConversationAssignment, error) {
	a, err := scanAssignment(c.QueryRow(ctx, `SELECT `+assignmentCols+` FROM conversation_assignments
		WHERE project_id = ? AND conversation_id = ? AND id = ?`, projectID, conversationID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Conversation assignment")
	}
	if err != nil {
		return nil, fmt.Errorf("contacts: get assignment: %w", err)
	}
	return a, nil
}

// ActiveAssignmentID returns the id of the conversation's active assignment,
// or "" when it has none.
func ActiveAssignmentID(ctx context.Context, c *store.Conn, conversationID string) (string, error) {
	var id string
	err := c.QueryRow(ctx, `SELECT id FROM conversation_assignments WHERE conversation_id = ? AND active`, conversationID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("contacts: active assignment: %w", err)
	}
	return id, nil
}

// errAlreadyAssigned is the 422 of the one-active-assignment rule.
func errAlreadyAssigned() error {
	return &parley.Error{Code: parley.EINVALID, Title: "Validation failed", Message: "Conversation is already assigned",
		Details: []string{"Conversation is already assigned"}}
}

// CreateAssignment inserts an assignment. The partial unique index backs the
// one-active rule when two requests race.
func CreateAssignment(ctx context.Context, c *store.Conn, a *parley.ConversationAssignment) error {
	t := now()
	a.ID, a.CreatedAt, a.UpdatedAt = store.NewID(), t, t
	_, err := c.Exec(ctx, `INSERT INTO conversation_assignments (`+assignmentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.ProjectID, a.ConversationID, a.UserID, a.Active, store.NullStr(a.Notes), store.NullStr(a.CreatedByUserID),
		store.Micros(t), store.Micros(t))
	if store.IsUniqueViolation(err) {
		return errAlreadyAssigned()
	}
	if err != nil {
		return fmt.Errorf("contacts: create assignment: %w", err)
	}
	return nil
}

// UpdateAssignment saves an assignment's user, notes and active flag.
func UpdateAssignment(ctx context.Context, c *store.Conn, a *parley.ConversationAssignment) error {
	a.UpdatedAt = now()
	res, err := c.Exec(ctx, `UPDATE conversation_assignments SET user_id = ?, active = ?, notes = ?, updated_at = ?
		WHERE project_id = ? AND conversation_id = ? AND id = ?`,
		a.UserID, a.Active, store.NullStr(a.Notes), store.Micros(a.UpdatedAt), a.ProjectID, a.ConversationID, a.ID)
	if store.IsUniqueViolation(err) {
		return errAlreadyAssigned()
	}
	if err != nil {
		return fmt.Errorf("contacts: update assignment: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return parley.NotFound("Conversation assignment")
	}
	return nil
}

// ---- calls ----

// callCols joins the config for its display fields, which Kapso renders on
// every call and which follow the config when it is renamed.
const callCols = `k.id, k.project_id, k.whatsapp_config_id, COALESCE(w.display_name, w.name), w.display_phone_number, k.call_id,
	k.direction, k.status, k.duration_seconds, k.started_at, k.ended_at, k.session_started_at, k.user_wa_id, k.contact_id,
	k.conversation_id, k.created_at, k.updated_at`

const callFrom = ` FROM calls k JOIN whatsapp_configs w ON w.id = k.whatsapp_config_id`

func scanCall(s store.Scanner) (*parley.Call, error) {
	var k parley.Call
	var dpn, dir, status, user, contact, conv sql.NullString
	var dur, started, ended, session sql.NullInt64
	var ca, ua int64
	if err := s.Scan(&k.ID, &k.ProjectID, &k.WhatsAppConfigID, &k.ConfigDisplayName, &dpn, &k.CallID, &dir, &status, &dur,
		&started, &ended, &session, &user, &contact, &conv, &ca, &ua); err != nil {
		return nil, err
	}
	k.ConfigDisplayPhoneNumber, k.Direction, k.Status, k.UserWaID = dpn.String, dir.String, status.String, user.String
	if dur.Valid {
		d := int(dur.Int64)
		k.DurationSeconds = &d
	}
	k.StartedAt, k.EndedAt, k.SessionStartedAt = store.TimePtr(started), store.TimePtr(ended), store.TimePtr(session)
	k.ContactID, k.ConversationID = store.StrPtr(contact), store.StrPtr(conv)
	k.CreatedAt, k.UpdatedAt = store.Time(ca), store.Time(ua)
	return &k, nil
}

// CallFilter holds the filters of GET /whatsapp_calls.
type CallFilter struct {
	Status    *string
	Direction *string
	ConfigID  *string
	From, To  *time.Time
	NoMatch   bool
}

// ListCalls returns a page of a project's calls, newest first.
func ListCalls(ctx context.Context, c *store.Conn, projectID string, f CallFilter, p parley.Page) ([]*parley.Call, int, error) {
	out := []*parley.Call{}
	if f.NoMatch {
		return out, 0, nil
	}
	where := ` WHERE k.project_id = ?`
	args := []any{projectID}
	if f.Status != nil {
		where += ` AND k.status = ?`
		args = append(args, strings.ToLower(*f.Status))
	}
	if f.Direction != nil {
		where += ` AND k.direction = ?`
		args = append(args, *f.Direction)
	}
	if f.ConfigID != nil {
		where += ` AND k.whatsapp_config_id = ?`
		args = append(args, *f.ConfigID)
	}
	if f.From != nil {
		where += ` AND k.created_at >= ?`
		args = append(args, store.Micros(*f.From))
	}
	if f.To != nil {
		where += ` AND k.created_at <= ?`
		args = append(args, store.Micros(*f.To))
	}
	out, total, err := store.QueryPage(ctx, c, scanCall, `SELECT COUNT(*)`+callFrom+where,
		`SELECT `+callCols+callFrom+where+` ORDER BY k.created_at DESC, k.id DESC`, args, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("contacts: list calls: %w", err)
	}
	return out, total, nil
}

// GetCall returns a project's call.
func GetCall(ctx context.Context, c *store.Conn, projectID, id string) (*parley.Call, error) {
	k, err := scanCall(c.QueryRow(ctx, `SELECT `+callCols+callFrom+` WHERE k.project_id = ? AND k.id = ?`, projectID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Call")
	}
	if err != nil {
		return nil, fmt.Errorf("contacts: get call: %w", err)
	}
	return k, nil
}

// GetCallByCallID returns the call a config recorded under Meta's call id.
func GetCallByCallID(ctx context.Context, c *store.Conn, configID, callID string) (*parley.Call, error) {
	k, err := scanCall(c.QueryRow(ctx, `SELECT `+callCols+callFrom+` WHERE k.whatsapp_config_id = ? AND k.call_id = ?`, configID, callID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Call")
	}
	if err != nil {
		return nil, fmt.Errorf("contacts: get call: %w", err)
	}
	return k, nil
}

// callEvent is what one Meta calls webhook element contributes to a call row.
type callEvent struct {
	ProjectID, ConfigID, CallID string
	Direction, Status, UserWaID *string
	Duration                    *int
	Started, Ended, Session     *time.Time
	ContactID, ConversationID   *string
}

// mergeCall inserts the call or merges the event into it: set fields win,
// unset ones keep what earlier events recorded, so events applied in any
// order (Meta does not guarantee it) end with the same row, except that
// the last status seen wins.
func mergeCall(ctx context.Context, tx *store.Conn, e callEvent) error {
	t := store.Micros(now())
	ni := func(v *int) sql.NullInt64 {
		if v == nil {
			return sql.NullInt64{}
		}
		return sql.NullInt64{Int64: int64(*v), Valid: true}
	}
	_, err := tx.Exec(ctx, `INSERT INTO calls (id, project_id, whatsapp_config_id, call_id, direction, status, duration_seconds,
			started_at, ended_at, session_started_at, user_wa_id, contact_id, conversation_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (whatsapp_config_id, call_id) DO UPDATE SET
			direction = COALESCE(calls.direction, excluded.direction),
			status = COALESCE(excluded.status, calls.status),
			duration_seconds = COALESCE(excluded.duration_seconds, calls.duration_seconds),
			started_at = COALESCE(excluded.started_at, calls.started_at),
			ended_at = COALESCE(excluded.ended_at, calls.ended_at),
			session_started_at = COALESCE(calls.session_started_at, excluded.session_started_at),
			user_wa_id = COALESCE(calls.user_wa_id, excluded.user_wa_id),
			contact_id = COALESCE(calls.contact_id, excluded.contact_id),
			conversation_id = COALESCE(calls.conversation_id, excluded.conversation_id),
			updated_at = excluded.updated_at`,
		store.NewID(), e.ProjectID, e.ConfigID, e.CallID, store.NullStr(e.Direction), store.NullStr(e.Status), ni(e.Duration),
		store.NullMicros(e.Started), store.NullMicros(e.Ended), store.NullMicros(e.Session), store.NullStr(e.UserWaID),
		store.NullStr(e.ContactID), store.NullStr(e.ConversationID), t, t)
	if err != nil {
		return fmt.Errorf("contacts: record call: %w", err)
	}
	return nil
}

// LatestConversationID returns the most recently active conversation of a
// config with a phone number, or nil.
func LatestConversationID(ctx context.Context, c *store.Conn, configID, phone string) (*string, error) {
	var id string
	from := `conversations`
	if !c.Postgres() {
		from += ` INDEXED BY conversations_config_phone` // migration 0130
	}
	err := c.QueryRow(ctx, `SELECT id FROM `+from+` WHERE whatsapp_config_id = ? AND phone_number = ?
		ORDER BY last_active_at DESC, id DESC LIMIT 1`, configID, phone).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("contacts: conversation of call: %w", err)
	}
	return &id, nil
}

// ---- call permissions ----

const permCols = `p.id, p.project_id, p.contact_id, p.whatsapp_config_id, COALESCE(w.display_name, w.name), p.status, p.source,
	p.expires_at, p.last_event_message_id, p.last_event_at, p.created_at, p.updated_at`

const permFrom = ` FROM call_permissions p JOIN whatsapp_configs w ON w.id = p.whatsapp_config_id`

func scanPermission(s store.Scanner, at time.Time) (*parley.CallPermission, error) {
	var p parley.CallPermission
	var source, msg sql.NullString
	var exp, last sql.NullInt64
	var ca, ua int64
	if err := s.Scan(&p.ID, &p.ProjectID, &p.ContactID, &p.WhatsAppConfigID, &p.ConfigDisplayName, &p.Status, &source,
		&exp, &msg, &last, &ca, &ua); err != nil {
		return nil, err
	}
	p.Source, p.ExpiresAt, p.LastEventMessageID, p.LastEventAt = store.StrPtr(source), store.TimePtr(exp), store.StrPtr(msg), store.TimePtr(last)
	p.CreatedAt, p.UpdatedAt = store.Time(ca), store.Time(ua)
	p.Allowed = p.Status == parley.CallPermissionAccepted && (p.ExpiresAt == nil || p.ExpiresAt.After(at))
	return &p, nil
}

// ListCallPermissions returns a page of a contact's call permissions (one
// per config at most), newest first.
func ListCallPermissions(ctx context.Context, c *store.Conn, projectID, contactID string, pg parley.Page) ([]*parley.CallPermission, int, error) {
	at := time.Now()
	scan := func(s store.Scanner) (*parley.CallPermission, error) { return scanPermission(s, at) }
	out, total, err := store.QueryPage(ctx, c, scan, `SELECT COUNT(*) FROM call_permissions WHERE project_id = ? AND contact_id = ?`,
		`SELECT `+permCols+permFrom+` WHERE p.project_id = ? AND p.contact_id = ?
		ORDER BY p.created_at DESC, p.id DESC`, []any{projectID, contactID}, pg.PerPage, pg.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("contacts: list call permissions: %w", err)
	}
	return out, total, nil
}

// GetCallPermission returns a contact's permission for a config.
func GetCallPermission(ctx context.Context, c *store.Conn, projectID, contactID, configID string) (*parley.CallPermission, error) {
	p, err := scanPermission(c.QueryRow(ctx, `SELECT `+permCols+permFrom+` WHERE p.project_id = ? AND p.contact_id = ? AND p.whatsapp_config_id = ?`,
		projectID, contactID, configID), time.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Call permission")
	}
	if err != nil {
		return nil, fmt.Errorf("contacts: get call permission: %w", err)
	}
	return p, nil
}

// upsertPermission records the latest answer of a contact for a config. An
// older event than the one already recorded is ignored, so replies applied
// out of order keep the newest answer.
func upsertPermission(ctx context.Context, tx *store.Conn, p *parley.CallPermission) error {
	t := store.Micros(now())
	_, err := tx.Exec(ctx, `INSERT INTO call_permissions (id, project_id, contact_id, whatsapp_config_id, status, source, expires_at,
			last_event_message_id, last_event_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (contact_id, whatsapp_config_id) DO UPDATE SET
			status = excluded.status, source = excluded.source, expires_at = excluded.expires_at,
			last_event_message_id = excluded.last_event_message_id, last_event_at = excluded.last_event_at,
			updated_at = excluded.updated_at
		WHERE call_permissions.last_event_at IS NULL OR excluded.last_event_at IS NULL
			OR excluded.last_event_at >= call_permissions.last_event_at`,
		store.NewID(), p.ProjectID, p.ContactID, p.WhatsAppConfigID, p.Status, store.NullStr(p.Source), store.NullMicros(p.ExpiresAt),
		store.NullStr(p.LastEventMessageID), store.NullMicros(p.LastEventAt), t, t)
	if err != nil {
		return fmt.Errorf("contacts: record call permission: %w", err)
	}
	return nil
}
