package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/store"
)

// bootstrap gives an empty store a project and an API key: the value of
// PARLEY_BOOTSTRAP_API_KEY when set, else a generated key printed once.
func (a *App) bootstrap(ctx context.Context) error {
	return a.DB.Tx(ctx, func(tx *store.Conn) error {
		// The settings row makes bootstrap happen once even when several
		// processes start together on one PostgreSQL database.
		if _, err := tx.Exec(ctx, `INSERT INTO settings (key, value) VALUES ('bootstrapped', 'pending') ON CONFLICT (key) DO NOTHING`); err != nil {
			return err
		}
		var v string
		if err := tx.QueryRow(ctx, `SELECT value FROM settings WHERE key = 'bootstrapped'`+tx.ForUpdateSkipLocked()).Scan(&v); err != nil || v == "done" {
			return nil // done already, or another process is doing it
		}
		n, err := store.CountProjects(ctx, tx)
		if err != nil {
			return err
		}
		if n == 0 {
			p, err := store.CreateProject(ctx, tx, "Default project", nil)
			if err != nil {
				return err
			}
			key, generated := a.Config.BootstrapAPIKey, false
			if key == "" {
				key, generated = store.GenerateAPIKey(), true
			}
			if _, err := store.CreateAPIKey(ctx, tx, p.ID, "bootstrap", key); err != nil {
				return err
			}
			a.Log.Info("created project and API key", slog.String("project_id", p.ID))
			if generated {
				fmt.Fprintf(a.Out, "\n  Parley created project %s.\n  API key (shown once, store it now): %s\n\n", p.ID, key)
			}
			exportKey := key // the banner's curl reads it from $KEY, as the README does
			if !generated {
				exportKey = `"$PARLEY_BOOTSTRAP_API_KEY"` // not echoed: the operator chose it
			}
			if err := a.bootstrapSandbox(ctx, tx, p.ID, exportKey); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE settings SET value = 'done' WHERE key = 'bootstrapped'`)
		return err
	})
}

// bootstrapSandbox gives the new project a sandbox config (unless
// PARLEY_SANDBOX=false) and prints its id and phone number next to the API
// key, so the README's first command has a working number to talk to.
// exportKey is what the printed `export KEY=` line sets.
func (a *App) bootstrapSandbox(ctx context.Context, tx *store.Conn, projectID, exportKey string) error {
	if !a.Config.Sandbox {
		return nil
	}
	cfg, err := platform.CreateSandboxConfig(ctx, tx, a.Box, projectID, "Sandbox")
	if err != nil {
		return fmt.Errorf("bootstrap sandbox config: %w", err)
	}
	phone := cfg.PhoneNumberID
	if cfg.DisplayPhoneNumber != nil {
		phone = *cfg.DisplayPhoneNumber
	}
	a.Log.Info("created sandbox config", slog.String("whatsapp_config_id", cfg.ID), slog.String("phone_number", phone))
	fmt.Fprintf(a.Out, "  Sandbox WhatsApp config %s, phone number %s (phone_number_id %s).\n"+
		"  Play a customer writing to it:\n"+
		"    export KEY=%s\n"+
		"    curl -X POST %s/api/v1/whatsapp_configs/%s/sandbox_messages -H \"X-API-Key: $KEY\" \\\n"+
		"      -H 'Content-Type: application/json' \\\n"+
		"      -d '{\"from\": \"5491100000000\", \"profile_name\": \"Ana\", \"type\": \"text\", \"text\": {\"body\": \"hola\"}}'\n\n",
		cfg.ID, phone, cfg.PhoneNumberID, exportKey, a.Config.PublicURL, cfg.ID)
	return nil
}
