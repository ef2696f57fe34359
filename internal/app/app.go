// Package app wires Parley together: configuration, store, secrets, the HTTP
// API and the background workers, and runs them until the context ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/broadcasts"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/delivery"
	"github.com/parleyhq/parley/internal/displaynames"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/media"
	"github.com/parleyhq/parley/internal/messaging"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/platformapi"
	"github.com/parleyhq/parley/internal/retention"
	"github.com/parleyhq/parley/internal/sandbox"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/templates"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// App is a running Parley process.
type App struct {
	Config config.Config
	Log    *slog.Logger
	DB     *store.DB
	Box    *secrets.Box
	API    *api.Server
	Jobs   *jobs.Runner
	// Delivery sends webhook deliveries.
	Delivery *delivery.Service
	// Out receives what is printed for the operator (the bootstrap key).
	Out io.Writer
}

// NewLogger returns the process logger for the configured level and format.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if strings.EqualFold(cfg.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Open connects to the store, runs migrations and loads the secret key.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.DB, *secrets.Box, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, nil, err
	}
	box, err := loadSecretKey(cfg, log)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, box, nil
}

// loadSecretKey uses PARLEY_SECRET_KEY, else the key file in the data dir,
// generating it on first start.
func loadSecretKey(cfg config.Config, log *slog.Logger) (*secrets.Box, error) {
	if cfg.SecretKey != "" {
		return secrets.New(cfg.SecretKey)
	}
	path := cfg.SecretKeyFile()
	b, err := os.ReadFile(path)
	if err == nil {
		return secrets.New(strings.TrimSpace(string(b)))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	key := secrets.GenerateKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process won the race
		return loadSecretKey(cfg, log)
	}
	if err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	log.Warn("PARLEY_SECRET_KEY is not set: generated one into the data dir; back it up, or set PARLEY_SECRET_KEY (secrets at rest cannot be read without it)",
		slog.String("path", path))
	return secrets.New(key)
}

// New opens everything serve needs.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, out io.Writer) (*App, error) {
	db, box, err := Open(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, DB: db, Box: box, Out: out}
	if err := a.bootstrap(ctx); err != nil {
		db.Close()
		return nil, err
	}
	a.Jobs = jobs.NewRunner(db, log)
	a.Delivery = delivery.New(db, box, log, cfg)
	graph := &whatsapp.Client{BaseURL: cfg.MetaGraphURL, Version: cfg.MetaGraphVersion, MessagesPerSecond: float64(cfg.SendRatePerSec)}
	a.API = BuildAPI(api.Deps{
		DB: db, Box: box, Log: log, Config: cfg,
		Hooks: api.Hooks{JobsEnqueued: a.Jobs.Wake, EventsWritten: a.Delivery.Wake},
		Graph: func(*parley.WhatsAppConfig) *whatsapp.Client { return graph },
	})
	RegisterJobs(a.Jobs, a.API, a.Delivery)
	if err := retention.Register(ctx, a.Jobs, db, log, retention.DefaultPolicy); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

// Run serves HTTP until ctx is cancelled, then shuts down gracefully.
func (a *App) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return err
	}
	return a.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	defer a.DB.Close()
	srv := &http.Server{
		Handler:           a.API,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	a.Log.Info("parley listening", slog.String("addr", ln.Addr().String()), slog.String("store", a.DB.Engine))
	wctx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	workers.Add(1)
	go func() { defer workers.Done(); a.Jobs.Run(wctx) }()
	workers.Add(1)
	go func() { defer workers.Done(); a.Delivery.Run(wctx) }()
	defer func() { stopWorkers(); workers.Wait() }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// BuildAPI returns the API server with every area's routes registered.
func BuildAPI(d api.Deps) *api.Server {
	s := api.New(d)
	platform.Register(s)
	contacts.Register(s)
	templates.Register(s)
	sandbox.Register(s)
	media.Register(s)
	messaging.Register(s, messaging.Options{
		OnTemplateStatus: templates.ApplyStatusUpdate,
		TemplateContent:  templates.MessageContent,
		OnCall:           contacts.RecordCall,
		OnCallPermission: messaging.CallPermissionReply(contacts.RecordCallPermission),
	})
	delivery.Register(s)
	broadcasts.Register(s)
	displaynames.Register(s)
	platformapi.Register(s)
	return s
}

// RegisterJobs registers every area's job handlers on r.
func RegisterJobs(r *jobs.Runner, s *api.Server, d *delivery.Service) {
	messaging.RegisterJobs(r, s)
	templates.RegisterJobs(r, s)
	sandbox.RegisterJobs(r, s)
	media.RegisterJobs(r, s)
	delivery.RegisterJobs(r, s.DB, d.Wake)
	delivery.RegisterForwarding(r, s.Config)
	broadcasts.RegisterJobs(r, s)
	displaynames.RegisterJobs(r, s)
}
