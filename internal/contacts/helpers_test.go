package contacts_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store"
)

var seq atomic.Int64

// newConfig inserts a sandbox config for project.
func newConfig(t *testing.T, b *apitest.Bundle, project, displayName string) *parley.WhatsAppConfig {
	t.Helper()
	n := seq.Add(1)
	cfg := &parley.WhatsAppConfig{ProjectID: project, Name: fmt.Sprintf("Config %d", n), Kind: parley.KindSandbox,
		PhoneNumberID: fmt.Sprintf("pn-%d-%d", time.Now().UnixNano(), n), InboundProcessingEnabled: true}
	if displayName != "" {
		dpn, dpnn := "+1 555 000 0000", "15550000000"
		cfg.DisplayName, cfg.DisplayPhoneNumber, cfg.DisplayPhoneNumberNormalized = &displayName, &dpn, &dpnn
	}
	if err := store.CreateConfig(context.Background(), b.DB.Write(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newConversation inserts an active conversation (no API creates them in
// this package).
func newConversation(t *testing.T, b *apitest.Bundle, project, configID, phone string) string {
	t.Helper()
	id := store.NewID()
	now := time.Now().UnixMicro()
	_, err := b.DB.Write().Exec(context.Background(), `INSERT INTO conversations (id, project_id, whatsapp_config_id, phone_number, status,
		metadata, last_active_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', '{}', ?, ?, ?)`, id, project, configID, phone, now, now, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newUser inserts a project user (the /users endpoints belong to another package).
func newUser(t *testing.T, b *apitest.Bundle, project string) string {
	t.Helper()
	id := store.NewID()
	now := time.Now().UnixMicro()
	_, err := b.DB.Write().Exec(context.Background(), `INSERT INTO users (id, project_id, email, name, created_at, updated_at)
		VALUES (?, ?, ?, NULL, ?, ?)`, id, project, fmt.Sprintf("u%d@example.com", seq.Add(1)), now, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// count returns the number of rows of table matching where.
func count(t *testing.T, b *apitest.Bundle, table, where string, args ...any) int {
	t.Helper()
	var n int
	if err := b.DB.Read().QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table+` WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func meta(r *apitest.Resp) map[string]any {
	m, _ := r.JSON["meta"].(map[string]any)
	return m
}

func ids(r *apitest.Resp) []string {
	var out []string
	for _, d := range r.List() {
		s, _ := d["id"].(string)
		out = append(out, s)
	}
	return out
}
