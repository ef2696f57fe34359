// Package media keeps the files of WhatsApp media messages: the fetch_media
// job downloads an inbound message's attachment from the Graph API (Meta's
// or the sandbox's) into the media directory, and
// GET /api/v1/whatsapp_messages/{id}/media streams it back to API clients.
//
// Files are content-addressed by SHA-256 (<dir>/ab/abcdef…), so the same
// picture sent twice is stored once and a retried download never leaves two
// copies. The database keeps the path relative to the media directory, so a
// data directory can be moved.
package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxBytes caps one media file (Meta's largest media, documents, are 100 MB).
const MaxBytes = 100 << 20

// ErrTooLarge is returned by Save when the content exceeds its limit.
var ErrTooLarge = errors.New("media: file exceeds size limit")

// Blob is a stored file.
type Blob struct {
	SHA256 string // lowercase hex
	Size   int64
	Path   string // relative to the media directory
}

// Save copies r into dir, content-addressed, refusing more than max bytes
// (max <= 0 means MaxBytes). The file is written to a temporary name and
// renamed, so a crash never leaves a partial file under a final name.
func Save(dir string, r io.Reader, max int64) (*Blob, error) {
	if max <= 0 {
		max = MaxBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("media: create dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return nil, fmt.Errorf("media: temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, max+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("media: write: %w", err)
	}
	if n > max {
		return nil, ErrTooLarge
	}
	sum := hex.EncodeToString(h.Sum(nil))
	rel := filepath.Join(sum[:2], sum)
	final := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return nil, fmt.Errorf("media: create dir: %w", err)
	}
	if _, err := os.Stat(final); err != nil {
		if err := os.Rename(tmp.Name(), final); err != nil {
			return nil, fmt.Errorf("media: rename: %w", err)
		}
	}
	return &Blob{SHA256: sum, Size: n, Path: rel}, nil
}

// Open opens a stored file by its relative path. Paths that would leave dir
// are refused, so a corrupted row cannot serve arbitrary files.
func Open(dir, rel string) (*os.File, error) {
	full, err := Resolve(dir, rel)
	if err != nil {
		return nil, err
	}
	return os.Open(full)
}

// Resolve returns the absolute path of a stored file, refusing paths that
// escape dir.
func Resolve(dir, rel string) (string, error) {
	if rel == "" || filepath.IsAbs(rel) || strings.Contains(rel, "..") {
		return "", fmt.Errorf("media: bad path %q", rel)
	}
	return filepath.Join(dir, filepath.Clean(rel)), nil
}

// URL is the API address of a message's media file, for rendering a
// message's media_url.
func URL(publicURL, messageID string) string {
	return strings.TrimRight(publicURL, "/") + "/api/v1/whatsapp_messages/" + messageID + "/media"
}
