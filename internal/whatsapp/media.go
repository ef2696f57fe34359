package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
)

// ErrMediaTooLarge is returned by DownloadMedia when the media exceeds
// maxBytes.
var ErrMediaTooLarge = errors.New("whatsapp: media exceeds size limit")

// Media is the Graph media node returned by GetMedia.
type Media struct {
	// ID is the media ID.
	ID string
	// URL is the download URL; it needs the access token and expires after
	// about five minutes.
	URL string
	// MimeType is the media's MIME type.
	MimeType string
	// SHA256 is the media checksum reported by Meta.
	SHA256 string
	// FileSize is the size in bytes (Meta sends it as a string).
	FileSize int64
}

// UploadMedia uploads r as multipart form data to /{phoneNumberID}/media and
// returns the new media ID. r is retried only when it is an io.ReadSeeker
// (it is rewound); other readers get a single attempt.
func (c *Client) UploadMedia(ctx context.Context, token, phoneNumberID, filename, mimeType string, r io.Reader) (string, error) {
	if err := requireIDs("phone number ID", phoneNumberID, "MIME type", mimeType); err != nil {
		return "", err
	}
	if r == nil {
		return "", errors.New("whatsapp: nil media reader")
	}
	if filename == "" {
		filename = "file"
	}
	seeker, _ := r.(io.ReadSeeker)
	var start int64
	if seeker != nil {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}
	body := func(attempt int) (io.Reader, string, error) {
		if attempt > 1 {
			if seeker == nil {
				return nil, "", errNotReplayable
			}
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return nil, "", errNotReplayable
			}
		}
		return multipartBody(ctx, filename, mimeType, r)
	}
	var res struct {
		ID string `json:"id"`
	}
	err := c.doJSON(ctx, request{
		method: http.MethodPost, path: pathOf(phoneNumberID, "media"), body: body, token: token,
	}, &res)
	if err != nil {
		return "", err
	}
	if res.ID == "" {
		return "", errors.New("whatsapp: upload response has no media id")
	}
	return res.ID, nil
}

// multipartBody streams the upload form through a pipe.
func multipartBody(ctx context.Context, filename, mimeType string, r io.Reader) (io.Reader, string, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if err := mw.WriteField("messaging_product", "whatsapp"); err != nil {
				return err
			}
			if err := mw.WriteField("type", mimeType); err != nil {
				return err
			}
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", multipart.FileContentDisposition("file", filename))
			h.Set("Content-Type", mimeType)
			part, err := mw.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, contextReader{ctx, r}); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType(), nil
}

// contextReader stops a long copy once ctx is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// GetMedia looks up a media ID and returns its (short-lived) download URL
// and metadata.
func (c *Client) GetMedia(ctx context.Context, token, mediaID string) (*Media, error) {
	if err := requireIDs("media ID", mediaID); err != nil {
		return nil, err
	}
	var res struct {
		ID       string  `json:"id"`
		URL      string  `json:"url"`
		MimeType string  `json:"mime_type"`
		SHA256   string  `json:"sha256"`
		FileSize flexInt `json:"file_size"`
	}
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: pathOf(mediaID), token: token}, &res); err != nil {
		return nil, err
	}
	return &Media{ID: res.ID, URL: res.URL, MimeType: res.MimeType, SHA256: res.SHA256, FileSize: int64(res.FileSize)}, nil
}

// DeleteMedia deletes an uploaded media ID.
func (c *Client) DeleteMedia(ctx context.Context, token, mediaID string) error {
	if err := requireIDs("media ID", mediaID); err != nil {
		return err
	}
	return c.doSuccess(ctx, request{method: http.MethodDelete, path: pathOf(mediaID), token: token})
}

// DownloadMedia fetches a media URL obtained from GetMedia (with the bearer
// token) and copies the bytes to w, returning how many were written. When
// maxBytes > 0 and the media is larger, it stops and returns
// ErrMediaTooLarge. Failures before the first byte is written are retried
// like any other call; once copying has started, no retry happens.
func (c *Client) DownloadMedia(ctx context.Context, token, mediaURL string, w io.Writer, maxBytes int64) (int64, error) {
	u, err := url.Parse(mediaURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return 0, fmt.Errorf("whatsapp: invalid media URL")
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, rawURL: u.String(), token: token})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if maxBytes > 0 && resp.ContentLength > maxBytes {
		return 0, ErrMediaTooLarge
	}
	src := io.Reader(resp.Body)
	if maxBytes > 0 {
		src = io.LimitReader(resp.Body, maxBytes)
	}
	n, err := io.Copy(w, src)
	if err != nil {
		return n, fmt.Errorf("whatsapp: download media: %w", err)
	}
	if maxBytes > 0 {
		var probe [1]byte
		if k, _ := io.ReadFull(resp.Body, probe[:]); k > 0 {
			return n, ErrMediaTooLarge
		}
	}
	return n, nil
}
