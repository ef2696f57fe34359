// Command parley-bench-inbound measures Parley's inbound path: it starts
// Parley in-process on a loopback HTTP server (SQLite in a temporary
// directory by default, or the PostgreSQL database given), creates a
// production config with a known app secret, and has N concurrent clients
// POST signed Meta webhooks to /webhooks/whatsapp as fast as Parley
// acknowledges them: single-message webhooks and, optionally, batches of
// status updates. It reports acknowledged webhooks per second, what was
// stored per second, acknowledgement latency (p50, p90, p99, max), the
// process's CPU time per acknowledged webhook (which compares runs on a
// machine that is not idle) and the load average.
//
//	go run ./cmd/parley-bench-inbound -clients 32 -duration 10s
//	go run ./cmd/parley-bench-inbound -database-url postgres://… -cpuprofile cpu.out
//	go tool pprof -top cpu.out
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

type options struct {
	databaseURL  string
	clients      int
	duration     time.Duration
	count        int
	statusRatio  float64
	statusBatch  int
	customers    int
	globalSecret bool
	cpuProfile   string
	logLevel     string
}

func main() {
	var o options
	flag.StringVar(&o.databaseURL, "database-url", "", "postgres:// URL; empty = SQLite in a temporary directory")
	flag.IntVar(&o.clients, "clients", 32, "concurrent HTTP clients")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
	flag.IntVar(&o.count, "count", 0, "stop after this many webhooks (0 = only -duration)")
	flag.Float64Var(&o.statusRatio, "status-ratio", 0.2, "fraction of webhooks that are status batches")
	flag.IntVar(&o.statusBatch, "status-batch", 10, "statuses per status webhook")
	flag.IntVar(&o.customers, "customers", 2000, "distinct customer phone numbers")
	flag.BoolVar(&o.globalSecret, "global-secret", false, "sign with PARLEY_META_APP_SECRET instead of the config's app secret")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server included) to this file")
	flag.StringVar(&o.logLevel, "log-level", "error", "Parley's log level")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench-inbound:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.clients < 1 || o.customers < 1 || o.statusBatch < 1 {
		return errors.New("-clients, -customers and -status-batch must be positive")
	}
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dbURL := o.databaseURL
	if strings.HasPrefix(dbURL, "postgres://") || strings.HasPrefix(dbURL, "postgresql://") {
		var drop func()
		if dbURL, drop, err = privateSchema(ctx, dbURL); err != nil {
			return err
		}
		defer drop()
	}
	const secret = "bench-app-secret-0123456789"
	cfg := config.Defaults()
	cfg.DataDir, cfg.DatabaseURL, cfg.LogLevel = dir, dbURL, o.logLevel
	cfg.RateLimitPerMinute, cfg.Sandbox, cfg.Addr = 0, false, "127.0.0.1:0"
	cfg.PublicURL = "http://127.0.0.1"
	if o.globalSecret {
		cfg.MetaAppSecret = secret
	}
	log := app.NewLogger(cfg, os.Stderr)
	a, err := app.New(ctx, cfg, log, io.Discard)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- a.Serve(sctx, ln) }()
	defer func() { stopServer(); <-served }()

	pcfg, err := benchConfig(ctx, a, secret)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String() + "/webhooks/whatsapp"
	fmt.Fprintf(out, "parley-bench-inbound: %s store, %d clients, %s, %.0f%% status batches of %d, GOMAXPROCS=%d\n",
		a.DB.Engine, o.clients, o.duration, o.statusRatio*100, o.statusBatch, runtime.GOMAXPROCS(0))

	bs, err := newBodies(pcfg, o)
	if err != nil {
		return err
	}
	before, err := counts(ctx, a.DB)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	g0, m0 := a.DB.GroupStats()
	res := load(ctx, o, url, []byte(secret), bs)
	g1, m1 := a.DB.GroupStats()
	elapsed := res.elapsed
	cpu := cpuTime() - cpu0
	pprof.StopCPUProfile()

	after, err := counts(ctx, a.DB)
	if err != nil {
		return err
	}
	lat := res.latencies
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	secs := elapsed.Seconds()
	stored := (after.messages - before.messages) + (after.statuses - before.statuses)
	fmt.Fprintf(out, "sent %d webhooks in %.2fs: %d acknowledged (2xx), %d failed\n", res.sent, secs, res.ok, res.failed)
	fmt.Fprintf(out, "acknowledged: %.0f webhooks/s (%d message webhooks, %d status batches)\n", float64(res.ok)/secs, res.messages, res.statusBatches)
	fmt.Fprintf(out, "stored:       %.0f webhooks/s (%d messages, %d statuses recorded)\n",
		float64(int64(after.messages-before.messages)+res.statusBatches)/secs, after.messages-before.messages, after.statuses-before.statuses)
	fmt.Fprintf(out, "              %.0f rows/s (messages + statuses)\n", float64(stored)/secs)
	fmt.Fprintf(out, "ack latency:  p50 %s  p90 %s  p99 %s  max %s\n", round(pct(0.50)), round(pct(0.90)), round(pct(0.99)), round(pct(1)))
	// CPU per webhook compares runs on a machine that is not idle, where
	// throughput alone depends on what else runs.
	if res.ok > 0 && cpu > 0 {
		fmt.Fprintf(out, "cpu:          %.0f µs per acknowledged webhook (this process: Parley and its clients, not PostgreSQL), %.2f cores busy\n",
			float64(cpu.Microseconds())/float64(res.ok), cpu.Seconds()/secs)
	}
	if g1 > g0 {
		fmt.Fprintf(out, "group commit: %d commits, %.1f transactions per commit\n", g1-g0, float64(m1-m0)/float64(g1-g0))
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(out, "load average: %s\n", strings.Join(strings.Fields(string(l))[:3], " "))
	}
	if res.firstError != "" {
		fmt.Fprintf(out, "first error:  %s\n", res.firstError)
	}
	return nil
}

// privateSchema creates a throw-away schema on the PostgreSQL server and
// returns a URL whose search_path selects it, so a benchmark never touches
// the database's existing tables; drop removes it.
func privateSchema(ctx context.Context, base string) (string, func(), error) {
	return store.PrivateSchema(ctx, base, "parley_bench_", nil)
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

// benchConfig creates the production config the webhooks are for.
func benchConfig(ctx context.Context, a *app.App, secret string) (*parley.WhatsAppConfig, error) {
	ps, err := store.ListProjects(ctx, a.DB.Read())
	if err != nil || len(ps) == 0 {
		return nil, fmt.Errorf("no project after bootstrap: %v", err)
	}
	enc, err := a.Box.Encrypt(secret)
	if err != nil {
		return nil, err
	}
	tok, err := a.Box.Encrypt("bench-token")
	if err != nil {
		return nil, err
	}
	waba, display := "102290129340398", "15550783881"
	cfg := &parley.WhatsAppConfig{ProjectID: ps[0].ID, Name: "Bench", Kind: parley.KindProduction,
		PhoneNumberID: "1065" + strconv.FormatInt(time.Now().UnixNano()%1e11, 10), BusinessAccountID: &waba,
		DisplayPhoneNumberNormalized: &display, AppSecretEnc: enc, AccessTokenEnc: tok, InboundProcessingEnabled: true}
	if err := store.CreateConfig(ctx, a.DB.Write(), cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

type rowCounts struct{ messages, statuses int }

// counts reads what the inbound path stored: messages, and statuses (kept on
// their message, or parked in pending_statuses when the wamid is unknown).
func counts(ctx context.Context, db *store.DB) (rowCounts, error) {
	var c rowCounts
	if err := db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM messages`).Scan(&c.messages); err != nil {
		return c, err
	}
	if err := db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM pending_statuses`).Scan(&c.statuses); err != nil {
		return c, err
	}
	return c, nil
}

type result struct {
	sent, ok, failed        int64
	messages, statusBatches int64
	latencies               []time.Duration
	elapsed                 time.Duration
	firstError              string
}

// load runs the clients until the duration or count is reached.
func load(ctx context.Context, o options, url string, secret []byte, bs *bodies) *result {
	tr := &http.Transport{MaxIdleConns: o.clients * 2, MaxIdleConnsPerHost: o.clients * 2, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var seq, sent, ok, failed, msgs, batches atomic.Int64
	var errOnce sync.Once
	res := &result{}
	lats := make([][]time.Duration, o.clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < o.clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for ctx.Err() == nil {
				n := seq.Add(1)
				if o.count > 0 && n > int64(o.count) {
					return
				}
				isStatus := rng.Float64() < o.statusRatio
				body := bs.build(n, rng, isStatus)
				req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(secret, body))
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				sent.Add(1)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode/100 != 2 {
					failed.Add(1)
					errOnce.Do(func() {
						if err != nil {
							res.firstError = err.Error()
						} else {
							res.firstError = "HTTP " + resp.Status
						}
					})
					continue
				}
				ok.Add(1)
				if isStatus {
					batches.Add(1)
				} else {
					msgs.Add(1)
				}
				lats[i] = append(lats[i], d)
			}
		}(i)
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.sent, res.ok, res.failed, res.messages, res.statusBatches = sent.Load(), ok.Load(), failed.Load(), msgs.Load(), batches.Load()
	for _, l := range lats {
		res.latencies = append(res.latencies, l...)
	}
	return res
}

// bodies builds the benchmark's Meta webhooks. The client runs in the same
// process as Parley, so it renders precompiled templates (made once with
// the whatsapp package's builders) instead of building and encoding maps
// for every request: what it spends is CPU Parley does not get.
type bodies struct {
	msg, status *template
	o           options
}

func newBodies(cfg *parley.WhatsAppConfig, o options) (*bodies, error) {
	waba, display := *cfg.BusinessAccountID, *cfg.DisplayPhoneNumberNormalized
	msg := whatsapp.NewTextMessage("@FROM@", "@WAMID@", time.Now(), "hello from the benchmark")
	msg["timestamp"] = "@TS@"
	mb, err := whatsapp.BuildMessageWebhook(waba, cfg.PhoneNumberID, display, whatsapp.Contact{WaID: "@FROM@", ProfileName: "Bench @NAME@"}, msg)
	if err != nil {
		return nil, err
	}
	statuses := make([]any, o.statusBatch)
	for i := range statuses {
		st := whatsapp.NewStatus("@ID"+strconv.Itoa(i)+"@", "@ST"+strconv.Itoa(i)+"@", "@FROM@", time.Now())
		st["timestamp"] = "@TS@"
		statuses[i] = st
	}
	value := map[string]any{"messaging_product": "whatsapp",
		"metadata": map[string]any{"display_phone_number": display, "phone_number_id": cfg.PhoneNumberID}, "statuses": statuses}
	sb, err := whatsapp.BuildWebhook(waba, whatsapp.FieldMessages, value)
	if err != nil {
		return nil, err
	}
	return &bodies{msg: compile(string(mb)), status: compile(string(sb)), o: o}, nil
}

// build returns a Meta webhook: one text message from one of the
// customers, or a batch of statuses for outbound messages Parley does not
// know (they are parked as pending statuses, a realistic write). Every
// body is distinct (its wamids are).
func (bs *bodies) build(n int64, rng *rand.Rand, status bool) []byte {
	from := strconv.Itoa(5491100000000 + rng.IntN(bs.o.customers))
	now := time.Now()
	ts, uniq := strconv.FormatInt(now.Unix(), 10), strconv.FormatInt(now.UnixNano(), 36)
	if !status {
		wamid := "wamid.bench" + strconv.FormatInt(n, 10) + "." + uniq
		return bs.msg.render(func(slot string) string {
			switch slot {
			case "FROM":
				return from
			case "WAMID":
				return wamid
			case "TS":
				return ts
			case "NAME":
				return from[len(from)-4:]
			}
			return ""
		})
	}
	return bs.status.render(func(slot string) string {
		switch {
		case slot == "FROM":
			return from
		case slot == "TS":
			return ts
		case strings.HasPrefix(slot, "ID"):
			return "wamid.out" + strconv.FormatInt(n, 10) + "." + slot[2:] + "." + uniq
		case strings.HasPrefix(slot, "ST"):
			return []string{"sent", "delivered", "read"}[rng.IntN(3)]
		}
		return ""
	})
}

// template is a text with @SLOT@ placeholders.
type template struct {
	lits  []string // len(slots)+1 literal parts
	slots []string
}

func compile(s string) *template {
	t := &template{}
	for {
		i := strings.IndexByte(s, '@')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '@')
		if j < 0 {
			break
		}
		t.lits = append(t.lits, s[:i])
		t.slots = append(t.slots, s[i+1:i+1+j])
		s = s[i+1+j+1:]
	}
	t.lits = append(t.lits, s)
	return t
}

func (t *template) render(val func(slot string) string) []byte {
	b := make([]byte, 0, 2048)
	for i, slot := range t.slots {
		b = append(b, t.lits[i]...)
		b = append(b, val(slot)...)
	}
	return append(b, t.lits[len(t.lits)-1]...)
}
