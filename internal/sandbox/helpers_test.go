package sandbox_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/media"
	"github.com/parleyhq/parley/internal/sandbox"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

type (
	configT = config.Config
	depsT   = api.Deps
)

// newSandbox creates a sandbox config in project.
func newSandbox(t *testing.T, b *apitest.Bundle, project string) *parley.WhatsAppConfig {
	t.Helper()
	return b.SandboxConfig(project)
}

// runJobs runs a job runner with the sandbox, media and extra handlers
// until the test ends.
func runJobs(t *testing.T, b *apitest.Bundle, extra ...func(*jobs.Runner)) {
	t.Helper()
	r := jobs.NewRunner(b.DB, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Poll = 20 * time.Millisecond
	sandbox.RegisterJobs(r, b.API)
	media.RegisterJobs(r, b.API)
	for _, f := range extra {
		f(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// graphClient is a whatsapp.Client on the test server's sandbox routes,
// over real HTTP.
func graphClient(b *apitest.Bundle) *whatsapp.Client {
	return &whatsapp.Client{BaseURL: b.Srv.URL + sandbox.GraphPrefix, Retry: whatsapp.RetryPolicy{MaxAttempts: 1}, MessagesPerSecond: -1}
}

// eventually polls cond until it holds or a generous bound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func graphCode(err error) int { return whatsapp.ErrorCode(err) }

// addInbound records an inbound message from phone at the given time, as
// the messaging package would, so the 24-hour window is open (or not).
func addInbound(t *testing.T, b *apitest.Bundle, cfg *parley.WhatsAppConfig, phone string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	conv, msg := store.NewID(), store.NewID()
	us := store.Micros(at)
	err := b.DB.Tx(ctx, func(tx *store.Conn) error {
		if _, err := tx.Exec(ctx, `INSERT INTO conversations (id, project_id, whatsapp_config_id, phone_number, status, last_active_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'ended', ?, ?, ?)`, conv, cfg.ProjectID, cfg.ID, phone, us, us, us); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO messages (id, project_id, conversation_id, whatsapp_config_id, phone_number, direction, message_type, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'inbound', 'text', 'received', ?, ?)`, msg, cfg.ProjectID, conv, cfg.ID, phone, us, us)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func token(t *testing.T, b *apitest.Bundle, cfg *parley.WhatsAppConfig) string {
	t.Helper()
	tok, err := b.Box.Decrypt(cfg.AccessTokenEnc)
	if err != nil || tok == "" {
		return "sandbox"
	}
	return tok
}
