package media

import (
	"mime"

	"github.com/parleyhq/parley/internal/api"
)

type handlers struct{ s *api.Server }

// Register adds GET /api/v1/whatsapp_messages/{id}/media.
func Register(s *api.Server) {
	h := &handlers{s: s}
	s.Handle("GET /whatsapp_messages/{id}/media", h.serve)
}

// mimeDisposition renders an inline Content-Disposition keeping the
// original file name (RFC 6266 encoding for non-ASCII names).
func mimeDisposition(filename string) string {
	if v := mime.FormatMediaType("inline", map[string]string{"filename": filename}); v != "" {
		return v
	}
	return "inline"
}
