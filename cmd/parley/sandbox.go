package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/app"
	sim "github.com/parleyhq/parley/internal/sandbox"
)

// sandbox runs `parley sandbox send`: a customer message to a sandbox
// config, injected through the same function as
// POST /api/v1/whatsapp_configs/{id}/sandbox_messages (a signed webhook
// through the real inbound path), straight against the database.
func sandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "usage: parley sandbox send --config ID --from NUMBER --text TEXT [--name NAME]"
	if len(args) == 0 || args[0] != "send" {
		return errors.New(use)
	}
	var configID, from, text, name string
	cfg, err := load("sandbox send", args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&configID, "config", "", "sandbox WhatsApp config id")
		fs.StringVar(&from, "from", "", "customer phone number (digits, E.164 without +)")
		fs.StringVar(&text, "text", "", "message text")
		fs.StringVar(&name, "name", "", "customer profile name")
	})
	if err != nil {
		return err
	}
	if configID == "" || from == "" || text == "" {
		return errors.New(use)
	}
	log := app.NewLogger(cfg, stderr)
	db, box, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	s := app.BuildAPI(api.Deps{DB: db, Box: box, Log: log, Config: cfg})
	wamid, err := sim.For(s).InjectByConfigID(ctx, configID, sim.TextBody(from, name, text))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, wamid)
	return nil
}
