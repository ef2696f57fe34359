package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

func TestUploadMedia(t *testing.T) {
	content := bytes.Repeat([]byte("video-bytes-"), 1000)
	c, fg, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		d := assertDescriptor(t, r, "media_upload.json")
		mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mediaType != d.ContentType {
			t.Fatalf("Content-Type = %q", r.Header.Get("Content-Type"))
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		fields := map[string]string{}
		var gotFile []byte
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			if p.FormName() == "file" {
				want := d.Files["file"]
				if p.FileName() != want.Filename || p.Header.Get("Content-Type") != want.ContentType {
					t.Errorf("file part = %q %q, want %+v", p.FileName(), p.Header.Get("Content-Type"), want)
				}
				gotFile = b
				continue
			}
			fields[p.FormName()] = string(b)
		}
		for k, v := range d.Form {
			if fields[k] != v {
				t.Errorf("form %s = %q, want %q", k, fields[k], v)
			}
		}
		if fields["type"] != "video/mp4" {
			t.Errorf("form type = %q", fields["type"])
		}
		if !bytes.Equal(gotFile, content) {
			t.Errorf("attempt %d: file content differs (%d bytes)", n, len(gotFile))
		}
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError) // a seekable reader is replayed
			return
		}
		respond(t, w, http.StatusOK, "media_upload.json")
	})
	id, err := c.UploadMedia(context.Background(), testToken, fxPhoneID, "black_friday_2025.mp4", "video/mp4", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if id != "1037543291543636" || fg.calls.Load() != 2 {
		t.Errorf("id %q after %d calls", id, fg.calls.Load())
	}
}

func TestUploadMediaNonSeekableIsNotRetried(t *testing.T) {
	c, fg, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
	})
	_, err := c.UploadMedia(context.Background(), testToken, fxPhoneID, "a.jpg", "image/jpeg", io.MultiReader(strings.NewReader("jpeg")))
	var ge *GraphError
	if !errors.As(err, &ge) || ge.HTTPStatus != 500 {
		t.Fatalf("err = %v", err)
	}
	if fg.calls.Load() != 1 {
		t.Errorf("calls = %d, want 1", fg.calls.Load())
	}
}

func TestGetMedia(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		assertPath(t, r, http.MethodGet, "/2621233374848975")
		respond(t, w, http.StatusOK, "media_get.json")
	})
	m, err := c.GetMedia(context.Background(), testToken, "2621233374848975")
	if err != nil {
		t.Fatal(err)
	}
	want := Media{ID: "2621233374848975", MimeType: "image/jpeg", FileSize: 303833,
		SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		URL:    "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=2621233374848975&ext=1750263773&hash=ATtZ1oDqT1Wm"}
	if *m != want {
		t.Errorf("media = %+v", *m)
	}
}

func TestDeleteMedia(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		assertPath(t, r, http.MethodDelete, "/1037543291543636")
		respond(t, w, http.StatusOK, "media_delete.json")
	})
	if err := c.DeleteMedia(context.Background(), testToken, "1037543291543636"); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadMedia(t *testing.T) {
	payload := bytes.Repeat([]byte{0xff, 0xd8}, 512)
	c, fg, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path != "/whatsapp_business/attachments/" || r.URL.Query().Get("mid") != "2621233374848975" {
			http.NotFound(w, r)
			return
		}
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(payload)
	})
	mediaURL := fg.URL + "/whatsapp_business/attachments/?mid=2621233374848975&ext=1750263773"
	var buf bytes.Buffer
	n, err := c.DownloadMedia(context.Background(), testToken, mediaURL, &buf, int64(len(payload)))
	if err != nil || n != int64(len(payload)) || !bytes.Equal(buf.Bytes(), payload) {
		t.Fatalf("n = %d, err = %v", n, err)
	}

	buf.Reset()
	n, err = c.DownloadMedia(context.Background(), testToken, mediaURL, &buf, 100)
	if !errors.Is(err, ErrMediaTooLarge) || buf.Len() > 100 {
		t.Errorf("oversized: n = %d, buffered %d, err = %v", n, buf.Len(), err)
	}

	_, err = c.DownloadMedia(context.Background(), testToken, fg.URL+"/missing", io.Discard, 0)
	var ge *GraphError
	if !errors.As(err, &ge) || ge.HTTPStatus != http.StatusNotFound {
		t.Errorf("missing media: %v", err)
	}
	if _, err := c.DownloadMedia(context.Background(), testToken, "file:///etc/passwd", io.Discard, 0); err == nil {
		t.Error("non-HTTP URL accepted")
	}
}
