package media

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// File is the media of a message as the database knows it.
type File struct {
	MessageID string
	ProjectID string
	ConfigID  string
	MediaID   string // Meta media id; empty when the message has none
	MimeType  string
	Filename  string
	SHA256    string
	Size      int64
	Path      string // empty until fetched
}

const fileCols = `id, project_id, whatsapp_config_id, media_id, media_mime_type, media_filename, media_sha256, media_size, media_path`

func scanFile(s store.Scanner) (*File, error) {
	var f File
	var mid, mime, name, sum, path sql.NullString
	var size sql.NullInt64
	if err := s.Scan(&f.MessageID, &f.ProjectID, &f.ConfigID, &mid, &mime, &name, &sum, &size, &path); err != nil {
		return nil, err
	}
	f.MediaID, f.MimeType, f.Filename, f.SHA256, f.Size, f.Path = mid.String, mime.String, name.String, sum.String, size.Int64, path.String
	return &f, nil
}

// GetFile returns a project's message media record.
func GetFile(ctx context.Context, c *store.Conn, projectID, messageID string) (*File, error) {
	f, err := scanFile(c.QueryRow(ctx, `SELECT `+fileCols+` FROM messages WHERE project_id = ? AND id = ?`, projectID, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("WhatsApp message")
	}
	if err != nil {
		return nil, fmt.Errorf("media: get message: %w", err)
	}
	return f, nil
}

// GetFileByID returns a message's media record in any project (for the job,
// whose payload was checked when it was enqueued).
func GetFileByID(ctx context.Context, c *store.Conn, messageID string) (*File, error) {
	f, err := scanFile(c.QueryRow(ctx, `SELECT `+fileCols+` FROM messages WHERE id = ?`, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("WhatsApp message")
	}
	if err != nil {
		return nil, fmt.Errorf("media: get message: %w", err)
	}
	return f, nil
}

// SetFile records a fetched file on its message. A MIME type or file name
// already known from the webhook is kept.
func SetFile(ctx context.Context, c *store.Conn, messageID string, b *Blob, mimeType string) error {
	_, err := c.Exec(ctx, `UPDATE messages SET media_path = ?, media_size = ?, media_sha256 = ?,
		media_mime_type = COALESCE(media_mime_type, ?), updated_at = ? WHERE id = ?`,
		b.Path, b.Size, b.SHA256, sql.NullString{String: mimeType, Valid: mimeType != ""}, store.Micros(time.Now()), messageID)
	if err != nil {
		return fmt.Errorf("media: record file: %w", err)
	}
	return nil
}
