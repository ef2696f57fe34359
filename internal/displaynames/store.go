package displaynames

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Statuses of a display-name request (Kapso's enum).
const (
	StatusSubmitted              = "submitted"
	StatusPendingReview          = "pending_review"
	StatusApproved               = "approved"
	StatusAvailableWithoutReview = "available_without_review"
	StatusDeferred               = "deferred"
	StatusDeclined               = "declined"
	StatusExpired                = "expired"
	StatusNoReview               = "no_review"
	StatusFailed                 = "failed"
	StatusApplied                = "applied"
	StatusCancelled              = "cancelled"
)

// activeStatuses are the statuses of the one request a config may have in
// flight (the partial unique index display_name_requests_active).
const activeSQL = `('submitted', 'pending_review')`

// Request is a display-name request.
type Request struct {
	ID               string
	ProjectID        string
	ConfigID         string
	PhoneNumberID    string // the number the name was requested for
	RequestedName    string
	PreviousName     *string
	Status           string
	MetaStatus       *string // Meta's last new_name_status
	MetaErrorCode    *int
	MetaErrorSubcode *int
	MetaErrorType    *string
	MetaErrorMessage *string
	SubmittedAt      time.Time
	ReviewedAt       *time.Time
	AppliedAt        *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Active reports whether the request is still submitted or in review.
func (r *Request) Active() bool {
	return r.Status == StatusSubmitted || r.Status == StatusPendingReview
}

const cols = `id, project_id, whatsapp_config_id, phone_number_id, requested_display_name, previous_display_name, status,
	meta_status, meta_error_code, meta_error_subcode, meta_error_type, meta_error_message, submitted_at, reviewed_at,
	applied_at, created_at, updated_at`

func scan(s store.Scanner) (*Request, error) {
	var r Request
	var prev, metaStatus, errType, errMsg sql.NullString
	var code, subcode, reviewed, applied sql.NullInt64
	var submitted, created, updated int64
	if err := s.Scan(&r.ID, &r.ProjectID, &r.ConfigID, &r.PhoneNumberID, &r.RequestedName, &prev, &r.Status,
		&metaStatus, &code, &subcode, &errType, &errMsg, &submitted, &reviewed, &applied, &created, &updated); err != nil {
		return nil, err
	}
	r.PreviousName, r.MetaStatus, r.MetaErrorType, r.MetaErrorMessage = store.StrPtr(prev), store.StrPtr(metaStatus), store.StrPtr(errType), store.StrPtr(errMsg)
	r.MetaErrorCode, r.MetaErrorSubcode = intPtr(code), intPtr(subcode)
	r.SubmittedAt, r.ReviewedAt, r.AppliedAt = store.Time(submitted), store.TimePtr(reviewed), store.TimePtr(applied)
	r.CreatedAt, r.UpdatedAt = store.Time(created), store.Time(updated)
	return &r, nil
}

func intPtr(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	n := int(v.Int64)
	return &n
}

func nullInt(p *int) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*p), Valid: true}
}

// errAlreadyActive is the one-active-request rule's 422.
var errAlreadyActive = parley.Invalid("Validation failed",
	"Another display name request is already submitted or pending review for this WhatsApp configuration")

// insertRequest stores a new request. A second active request for the
// config (a race the caller's check did not see) is errAlreadyActive.
func insertRequest(ctx context.Context, c *store.Conn, r *Request) error {
	_, err := c.Exec(ctx, `INSERT INTO display_name_requests (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ProjectID, r.ConfigID, r.PhoneNumberID, r.RequestedName, store.NullStr(r.PreviousName), r.Status,
		store.NullStr(r.MetaStatus), nullInt(r.MetaErrorCode), nullInt(r.MetaErrorSubcode), store.NullStr(r.MetaErrorType),
		store.NullStr(r.MetaErrorMessage), store.Micros(r.SubmittedAt), store.NullMicros(r.ReviewedAt), store.NullMicros(r.AppliedAt),
		store.Micros(r.CreatedAt), store.Micros(r.UpdatedAt))
	if store.IsUniqueViolation(err) {
		return errAlreadyActive
	}
	if err != nil {
		return fmt.Errorf("displaynames: insert request: %w", err)
	}
	return nil
}

// activeRequest returns the config's active request, or nil.
func activeRequest(ctx context.Context, c *store.Conn, configID string) (*Request, error) {
	r, err := scan(c.QueryRow(ctx, `SELECT `+cols+` FROM display_name_requests WHERE whatsapp_config_id = ? AND status IN `+activeSQL,
		configID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("displaynames: active request: %w", err)
	}
	return r, nil
}

// listRequests returns a page of a config's requests, newest first.
func listRequests(ctx context.Context, c *store.Conn, projectID, configID string, p parley.Page) ([]*Request, int, error) {
	out, total, err := store.QueryPage(ctx, c, scan, `SELECT COUNT(*) FROM display_name_requests WHERE project_id = ? AND whatsapp_config_id = ?`,
		`SELECT `+cols+` FROM display_name_requests WHERE project_id = ? AND whatsapp_config_id = ?
		ORDER BY created_at DESC, id DESC`, []any{projectID, configID}, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("displaynames: list requests: %w", err)
	}
	return out, total, nil
}

// getRequest returns one request of a project's config.
func getRequest(ctx context.Context, c *store.Conn, projectID, configID, id string) (*Request, error) {
	return getWhere(ctx, c, `id = ? AND project_id = ? AND whatsapp_config_id = ?`, id, projectID, configID)
}

// getRequestByID returns a request of any project (for the jobs, which
// carry ids checked when they were enqueued).
func getRequestByID(ctx context.Context, c *store.Conn, id string) (*Request, error) {
	return getWhere(ctx, c, `id = ?`, id)
}

func getWhere(ctx context.Context, c *store.Conn, where string, args ...any) (*Request, error) {
	r, err := scan(c.QueryRow(ctx, `SELECT `+cols+` FROM display_name_requests WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Display name request")
	}
	if err != nil {
		return nil, fmt.Errorf("displaynames: get request: %w", err)
	}
	return r, nil
}

// updateActive saves the mutable columns of r, provided the stored request
// is still active: a job run twice (a lost lease) or racing a cancellation
// changes nothing the second time. It reports whether the row changed.
func updateActive(ctx context.Context, c *store.Conn, r *Request) (bool, error) {
	r.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	res, err := c.Exec(ctx, `UPDATE display_name_requests SET status = ?, meta_status = ?, meta_error_code = ?, meta_error_subcode = ?,
		meta_error_type = ?, meta_error_message = ?, reviewed_at = ?, applied_at = ?, updated_at = ?
		WHERE id = ? AND status IN `+activeSQL,
		r.Status, store.NullStr(r.MetaStatus), nullInt(r.MetaErrorCode), nullInt(r.MetaErrorSubcode), store.NullStr(r.MetaErrorType),
		store.NullStr(r.MetaErrorMessage), store.NullMicros(r.ReviewedAt), store.NullMicros(r.AppliedAt), store.Micros(r.UpdatedAt), r.ID)
	if err != nil {
		return false, fmt.Errorf("displaynames: update request: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// setConfigDisplayName records an approved name on its config.
func setConfigDisplayName(ctx context.Context, c *store.Conn, configID, name string, at time.Time) error {
	_, err := c.Exec(ctx, `UPDATE whatsapp_configs SET display_name = ?, updated_at = ? WHERE id = ?`, name, store.Micros(at), configID)
	if err != nil {
		return fmt.Errorf("displaynames: set config display name: %w", err)
	}
	return nil
}
