package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// JobFetch is the job kind that downloads an inbound message's media.
const JobFetch = "fetch_media"

// FetchPayload is the payload of a fetch_media job.
type FetchPayload struct {
	MessageID string `json:"message_id"`
}

// EnqueueFetch enqueues the download of a message's media in tx, once per
// message.
func EnqueueFetch(ctx context.Context, tx *store.Conn, messageID string) error {
	_, err := jobs.Enqueue(ctx, tx, JobFetch, FetchPayload{MessageID: messageID}, jobs.Options{UniqueKey: JobFetch + ":" + messageID})
	return err
}

// RegisterJobs registers the fetch_media handler.
func RegisterJobs(r *jobs.Runner, s *api.Server) {
	r.Register(JobFetch, func(ctx context.Context, j *jobs.Job) error {
		var p FetchPayload
		if err := json.Unmarshal(j.Payload, &p); err != nil || p.MessageID == "" {
			return jobs.Permanent(fmt.Errorf("fetch_media: bad payload"))
		}
		return Fetch(ctx, s, p.MessageID)
	})
}

// Fetch downloads the media of a message unless it is already stored. It is
// idempotent: a second run finds media_path set (and the file present) and
// does nothing. Failures Meta will not fix by itself (unknown media id,
// expired token, too large) are permanent.
func Fetch(ctx context.Context, s *api.Server, messageID string) error {
	f, err := GetFileByID(ctx, s.DB.Read(), messageID)
	if parley.IsNotFound(err) {
		return nil // the message was deleted meanwhile
	}
	if err != nil {
		return err
	}
	dir := s.Config.MediaDir()
	if f.Path != "" {
		if full, err := Resolve(dir, f.Path); err == nil {
			if _, err := os.Stat(full); err == nil {
				return nil
			}
		}
	}
	if f.MediaID == "" {
		return jobs.Permanent(fmt.Errorf("fetch_media: message %s has no media id", messageID))
	}
	cfg, err := store.GetConfigByID(ctx, s.DB.Read(), f.ConfigID)
	if parley.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	token, err := s.Box.Decrypt(cfg.AccessTokenEnc)
	if err != nil {
		return jobs.Permanent(fmt.Errorf("fetch_media: access token: %w", err))
	}
	if token == "" && cfg.IsSandbox() {
		token = "sandbox"
	}
	if s.Graph == nil {
		return errors.New("fetch_media: no Graph client configured")
	}
	client := s.Graph(cfg)
	m, err := client.GetMedia(ctx, token, f.MediaID)
	if err != nil {
		return classify(err)
	}
	if m.FileSize > MaxBytes {
		return jobs.Permanent(fmt.Errorf("fetch_media: media is %d bytes, over the %d limit", m.FileSize, MaxBytes))
	}
	pr, pw := io.Pipe()
	type result struct {
		b   *Blob
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := Save(dir, pr, MaxBytes)
		pr.CloseWithError(err)
		done <- result{b, err}
	}()
	_, derr := client.DownloadMedia(ctx, token, m.URL, pw, MaxBytes)
	pw.CloseWithError(derr)
	res := <-done
	if derr != nil {
		return classify(derr)
	}
	if res.err != nil {
		if errors.Is(res.err, ErrTooLarge) {
			return jobs.Permanent(res.err)
		}
		return res.err
	}
	if err := SetFile(ctx, s.DB.Write(), messageID, res.b, m.MimeType); err != nil {
		return err
	}
	return nil
}

// classify turns Graph failures Meta will not fix by itself into permanent
// job errors; the rest are retried with backoff.
func classify(err error) error {
	if errors.Is(err, whatsapp.ErrMediaTooLarge) {
		return jobs.Permanent(err)
	}
	var ge *whatsapp.GraphError
	if errors.As(err, &ge) && !whatsapp.IsRetryable(err) {
		return jobs.Permanent(err)
	}
	return err
}

// serve streams a message's media file with its content type (404 until
// the fetch_media job has stored it).
func (h *handlers) serve(w http.ResponseWriter, r *http.Request, a *api.Auth) error {
	id, err := api.PathID(r, "id", "WhatsApp message")
	if err != nil {
		return err
	}
	f, err := GetFile(r.Context(), h.s.DB.Read(), a.ProjectID, id)
	if err != nil {
		return err
	}
	if f.Path == "" {
		return &parley.Error{Code: parley.ENOTFOUND, Title: "Media not found", Message: "This message's media has not been downloaded (yet)"}
	}
	file, err := Open(h.s.Config.MediaDir(), f.Path)
	if err != nil {
		return &parley.Error{Code: parley.ENOTFOUND, Title: "Media not found", Message: "The media file is missing from the media directory"}
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return err
	}
	ct := f.MimeType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Header().Set("ETag", strconv.Quote(f.SHA256))
	if f.Filename != "" {
		w.Header().Set("Content-Disposition", mimeDisposition(f.Filename))
	}
	// ServeContent handles Range and conditional requests.
	http.ServeContent(w, r, "", st.ModTime(), file)
	return nil
}
