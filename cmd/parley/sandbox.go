package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/app"
	sim "github.com/parleyhq/parley/internal/sandbox"
)

var sandbox = group("sandbox", `Usage: parley sandbox <subcommand> [flags]

Subcommands:
  send --config ID --from NUMBER --text TEXT [--name NAME]
        play a customer sending a text message to a sandbox number

Run 'parley sandbox <subcommand> --help' for its flags.
`, map[string]command{"send": sandboxSend})

// sandboxSend runs `parley sandbox send`: a customer message to a sandbox
// config, injected through the same function as
// POST /api/v1/whatsapp_configs/{id}/sandbox_messages (a signed webhook
// through the real inbound path), straight against the database.
func sandboxSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sandbox send", "--config ID --from NUMBER --text TEXT [--name NAME]",
		"Play a customer sending a text message to a sandbox WhatsApp number: the\n"+
			"message goes through Parley's inbound path as a signed Meta webhook would,\n"+
			"and your webhooks receive it. Prints the message's wamid.")
	configID := fs.String("config", "", "sandbox WhatsApp config id (required)")
	from := fs.String("from", "", "customer phone number, digits in E.164 without + (required)")
	text := fs.String("text", "", "message text (required)")
	name := fs.String("name", "", "customer profile name")
	cfg, err := adminConfig(fs)
	if err != nil {
		return err
	}
	if err := noArgs(fs, args, stdout); err != nil {
		return err
	}
	if *configID == "" || *from == "" || *text == "" {
		return seeHelp(fs, errors.New("--config, --from and --text are required"))
	}
	db, box, err := openAdminStoreWithKey(ctx, *cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	s := app.BuildAPI(api.Deps{DB: db, Box: box, Log: app.NewLogger(*cfg, stderr), Config: *cfg})
	wamid, err := sim.For(s).InjectByConfigID(ctx, *configID, sim.TextBody(*from, *name, *text))
	if parley.IsNotFound(err) {
		return fmt.Errorf("no WhatsApp config with id %q (list them with GET /api/v1/whatsapp_configs)", *configID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, wamid)
	return nil
}
