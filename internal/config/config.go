// Package config reads Parley's configuration from flags and PARLEY_*
// environment variables, in one place. Flags win over the environment, the
// environment over defaults. Nothing else in Parley reads the environment.
package config

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the whole of Parley's configuration.
type Config struct {
	Addr            string // PARLEY_ADDR
	DataDir         string // PARLEY_DATA_DIR
	DatabaseURL     string // PARLEY_DATABASE_URL; empty = SQLite in DataDir
	PublicURL       string // PARLEY_PUBLIC_URL; base for setup-link and media URLs
	SecretKey       string // PARLEY_SECRET_KEY; generated into DataDir when unset
	BootstrapAPIKey string // PARLEY_BOOTSTRAP_API_KEY
	LogLevel        string // PARLEY_LOG_LEVEL: debug, info, warn, error
	LogFormat       string // PARLEY_LOG_FORMAT: text or json

	MetaAppSecret    string // PARLEY_META_APP_SECRET: verifies X-Hub-Signature-256
	MetaVerifyToken  string // PARLEY_META_VERIFY_TOKEN: webhook handshake token
	MetaGraphURL     string // PARLEY_META_GRAPH_URL
	MetaGraphVersion string // PARLEY_META_GRAPH_VERSION
	SendRatePerSec   int    // PARLEY_SEND_RATE: messages per second per phone number

	RateLimitPerMinute int   // PARLEY_RATE_LIMIT: API requests per minute per key; 0 = off
	MaxBodyBytes       int64 // PARLEY_MAX_BODY_BYTES: API request body limit
	MaxWebhookBytes    int64 // PARLEY_MAX_WEBHOOK_BYTES: Meta webhook body limit

	WebhookAllowPrivate bool           // PARLEY_WEBHOOK_ALLOW_PRIVATE
	WebhookAllowCIDRs   []netip.Prefix // PARLEY_WEBHOOK_ALLOW_CIDRS: comma-separated
	WebhookTimeout      time.Duration  // PARLEY_WEBHOOK_TIMEOUT
	DeliveryWorkers     int            // PARLEY_DELIVERY_WORKERS
	PerEndpointLimit    int            // PARLEY_DELIVERY_PER_ENDPOINT: concurrent requests per webhook
	PauseAfter          time.Duration  // PARLEY_WEBHOOK_PAUSE_AFTER: failing this long pauses a webhook

	ConversationAutoEnd time.Duration // PARLEY_CONVERSATION_AUTO_END; 0 = never
	Sandbox             bool          // PARLEY_SANDBOX: create a sandbox config on an empty store
	SandboxStatusDelay  time.Duration // PARLEY_SANDBOX_STATUS_DELAY: between sent, delivered and read
}

// Defaults returns the built-in configuration.
func Defaults() Config {
	return Config{
		Addr:                "127.0.0.1:8080",
		DataDir:             "./parley-data",
		LogLevel:            "info",
		LogFormat:           "text",
		MetaGraphURL:        "https://graph.facebook.com",
		MetaGraphVersion:    "v24.0",
		SendRatePerSec:      80,
		RateLimitPerMinute:  6000,
		MaxBodyBytes:        1 << 20,
		MaxWebhookBytes:     3 << 20,
		WebhookTimeout:      10 * time.Second,
		DeliveryWorkers:     64,
		PerEndpointLimit:    16,
		PauseAfter:          72 * time.Hour,
		ConversationAutoEnd: 24 * time.Hour,
		Sandbox:             true,
		SandboxStatusDelay:  500 * time.Millisecond,
	}
}

// Load fills a Config from defaults, then the environment, then the flags in
// args (registered on fs, which the caller may extend and then parse).
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	c := Defaults()
	var errs []string
	env := func(name string, set func(string) error) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if err := set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", name, err))
			}
		}
	}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	integer := func(p *int) func(string) error {
		return func(v string) error { n, err := strconv.Atoi(v); *p = n; return err }
	}
	int64v := func(p *int64) func(string) error {
		return func(v string) error { n, err := strconv.ParseInt(v, 10, 64); *p = n; return err }
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error { b, err := strconv.ParseBool(v); *p = b; return err }
	}
	dur := func(p *time.Duration) func(string) error {
		return func(v string) error { d, err := time.ParseDuration(v); *p = d; return err }
	}
	cidrs := func(v string) error {
		c.WebhookAllowCIDRs = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return err
			}
			c.WebhookAllowCIDRs = append(c.WebhookAllowCIDRs, p)
		}
		return nil
	}

	env("PARLEY_ADDR", str(&c.Addr))
	env("PARLEY_DATA_DIR", str(&c.DataDir))
	env("PARLEY_DATABASE_URL", str(&c.DatabaseURL))
	env("PARLEY_PUBLIC_URL", str(&c.PublicURL))
	env("PARLEY_SECRET_KEY", str(&c.SecretKey))
	env("PARLEY_BOOTSTRAP_API_KEY", str(&c.BootstrapAPIKey))
	env("PARLEY_LOG_LEVEL", str(&c.LogLevel))
	env("PARLEY_LOG_FORMAT", str(&c.LogFormat))
	env("PARLEY_META_APP_SECRET", str(&c.MetaAppSecret))
	env("PARLEY_META_VERIFY_TOKEN", str(&c.MetaVerifyToken))
	env("PARLEY_META_GRAPH_URL", str(&c.MetaGraphURL))
	env("PARLEY_META_GRAPH_VERSION", str(&c.MetaGraphVersion))
	env("PARLEY_SEND_RATE", integer(&c.SendRatePerSec))
	env("PARLEY_RATE_LIMIT", integer(&c.RateLimitPerMinute))
	env("PARLEY_MAX_BODY_BYTES", int64v(&c.MaxBodyBytes))
	env("PARLEY_MAX_WEBHOOK_BYTES", int64v(&c.MaxWebhookBytes))
	env("PARLEY_WEBHOOK_ALLOW_PRIVATE", boolean(&c.WebhookAllowPrivate))
	env("PARLEY_WEBHOOK_ALLOW_CIDRS", cidrs)
	env("PARLEY_WEBHOOK_TIMEOUT", dur(&c.WebhookTimeout))
	env("PARLEY_DELIVERY_WORKERS", integer(&c.DeliveryWorkers))
	env("PARLEY_DELIVERY_PER_ENDPOINT", integer(&c.PerEndpointLimit))
	env("PARLEY_WEBHOOK_PAUSE_AFTER", dur(&c.PauseAfter))
	env("PARLEY_CONVERSATION_AUTO_END", dur(&c.ConversationAutoEnd))
	env("PARLEY_SANDBOX", boolean(&c.Sandbox))
	env("PARLEY_SANDBOX_STATUS_DELAY", dur(&c.SandboxStatusDelay))

	if fs != nil {
		fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (PARLEY_ADDR)")
		fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (PARLEY_DATA_DIR)")
		fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres:// URL; empty = SQLite in the data dir (PARLEY_DATABASE_URL)")
		fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "public base URL (PARLEY_PUBLIC_URL)")
		fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug|info|warn|error (PARLEY_LOG_LEVEL)")
		fs.IntVar(&c.RateLimitPerMinute, "rate-limit", c.RateLimitPerMinute, "API requests per minute per key, 0 = off (PARLEY_RATE_LIMIT)")
		if err := fs.Parse(args); err != nil {
			return c, err
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.MaxBodyBytes <= 0 {
		return c, fmt.Errorf("config: PARLEY_MAX_BODY_BYTES must be positive")
	}
	if c.DeliveryWorkers <= 0 {
		c.DeliveryWorkers = 1
	}
	if c.PerEndpointLimit <= 0 {
		c.PerEndpointLimit = 1
	}
	return c, nil
}

// FromEnv loads the configuration with no flags.
func FromEnv() (Config, error) { return Load(nil, nil, os.Getenv) }

// SecretKeyFile is where a generated secret key is kept.
func (c Config) SecretKeyFile() string { return filepath.Join(c.DataDir, "secret.key") }

// MediaDir is where downloaded media files are stored.
func (c Config) MediaDir() string { return filepath.Join(c.DataDir, "media") }
