package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/media"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

func TestSaveIsContentAddressed(t *testing.T) {
	dir := t.TempDir()
	a, err := media.Save(dir, strings.NewReader("hello"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" || a.Size != 5 || a.Path != "2c/"+a.SHA256 {
		t.Fatalf("blob: %+v", a)
	}
	b, err := media.Save(dir, strings.NewReader("hello"), 0)
	if err != nil || b.Path != a.Path {
		t.Fatalf("second save: %+v, %v", b, err)
	}
	f, err := media.Open(dir, a.Path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "hello" {
		t.Fatalf("content %q", got)
	}
	if _, err := media.Save(dir, strings.NewReader("too long"), 3); !errors.Is(err, media.ErrTooLarge) {
		t.Fatalf("over the cap: %v", err)
	}
	for _, bad := range []string{"", "../secret.key", "/etc/passwd", "2c/../../x"} {
		if _, err := media.Open(dir, bad); err == nil {
			t.Fatalf("Open(%q) succeeded", bad)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".upload-") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

// fakeMeta serves GET /{media_id} and the download URL for one media id.
func fakeMeta(t *testing.T, content []byte) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":{"message":"(#190) bad token","type":"OAuthException","code":190}}`))
			return
		}
		switch r.URL.Path {
		case "/v24.0/555":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"messaging_product":"whatsapp","id":"555","mime_type":"audio/ogg","sha256":"x","file_size":"` +
				strconv.Itoa(len(content)) + `","url":"` + srv.URL + `/download/555"}`))
		case "/download/555":
			_, _ = w.Write(content)
		default:
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100}}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// addMediaMessage stores an inbound audio message with a Meta media id.
func addMediaMessage(t *testing.T, b *apitest.Bundle, cfg *parley.WhatsAppConfig, mediaID string) string {
	t.Helper()
	ctx := context.Background()
	conv, msg := store.NewID(), store.NewID()
	err := b.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := tx.Exec(ctx, `INSERT INTO conversations (id, project_id, whatsapp_config_id, phone_number, status, last_active_at, created_at, updated_at)
			VALUES (?, ?, ?, '56911112222', 'ended', 1, 1, 1)`, conv, cfg.ProjectID, cfg.ID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO messages (id, project_id, conversation_id, whatsapp_config_id, phone_number, direction, message_type,
			status, media_id, created_at, updated_at) VALUES (?, ?, ?, ?, '56911112222', 'inbound', 'audio', 'received', ?, 1, 1)`,
			msg, cfg.ProjectID, conv, cfg.ID, mediaID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestFetchFromGraph(t *testing.T) {
	content := bytes.Repeat([]byte("OggS"), 3000)
	meta := fakeMeta(t, content)
	b := apitest.Setup(t, func(c *config.Config, d *api.Deps) {
		c.DataDir = t.TempDir()
		d.Graph = func(*parley.WhatsAppConfig) *whatsapp.Client {
			return &whatsapp.Client{BaseURL: meta.URL, Retry: whatsapp.RetryPolicy{MaxAttempts: 1}}
		}
	})
	ctx := context.Background()
	tok, _ := b.Box.Encrypt("tok")
	cfg := &parley.WhatsAppConfig{ProjectID: b.Project, Name: "Prod", Kind: parley.KindProduction, PhoneNumberID: "106540352242922", AccessTokenEnc: tok}
	if err := store.CreateConfig(ctx, b.DB.Write(), cfg); err != nil {
		t.Fatal(err)
	}
	id := addMediaMessage(t, b, cfg, "555")
	b.Must(404, "GET", "/whatsapp_messages/"+id+"/media", nil) // not fetched yet

	if err := media.Fetch(ctx, b.API, id); err != nil {
		t.Fatal(err)
	}
	f, err := media.GetFile(ctx, b.DB.Read(), b.Project, id)
	if err != nil || f.Path == "" || f.Size != int64(len(content)) || f.MimeType != "audio/ogg" || len(f.SHA256) != 64 {
		t.Fatalf("file: %+v, %v", f, err)
	}
	if err := media.Fetch(ctx, b.API, id); err != nil { // idempotent
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", b.Srv.URL+"/api/v1/whatsapp_messages/"+id+"/media", nil)
	req.Header.Set("X-API-Key", b.Key)
	req.Header.Set("Range", "bytes=0-3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(got) != "OggS" || resp.Header.Get("Content-Type") != "audio/ogg" {
		t.Fatalf("range: %d %q %s", resp.StatusCode, got, resp.Header.Get("Content-Type"))
	}
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_messages/"+id+"/media", nil); r.Status != 404 {
		t.Fatalf("other project: %d", r.Status)
	}

	// An unknown media id is a permanent failure: the runner drops the job
	// instead of scheduling a retry (which would set last_error).
	bad := addMediaMessage(t, b, cfg, "999")
	if err := b.DB.Tx(ctx, func(tx *store.Conn) error { return media.EnqueueFetch(ctx, tx, bad) }); err != nil {
		t.Fatal(err)
	}
	r := jobs.NewRunner(b.DB, b.API.Log)
	r.Poll = 10 * time.Millisecond
	media.RegisterJobs(r, b.API)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n, retried int
		_ = b.DB.Read().QueryRow(ctx, `SELECT COUNT(*), COUNT(last_error) FROM jobs WHERE kind = ?`, media.JobFetch).Scan(&n, &retried)
		if retried > 0 {
			t.Fatal("unknown media id was scheduled for a retry")
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fetch job never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A deleted message is done.
	if err := media.Fetch(ctx, b.API, store.NewID()); err != nil {
		t.Fatalf("missing message: %v", err)
	}
}
