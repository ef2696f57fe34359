// Command parley-bench measures webhook delivery: latency from event to
// subscriber, throughput with many subscribers, isolation from broken
// subscribers, and loss and duplicates across a kill -9 of the delivering
// process. It runs on loopback only, against a fresh SQLite file (default)
// or a PostgreSQL database, starts its own receivers (httptest servers that
// verify every signature and record arrival times) and prints a table.
//
//	go run ./cmd/parley-bench                       # SQLite, all scenarios
//	go run ./cmd/parley-bench -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run ./cmd/parley-bench -scenarios latency -duration 3s
//
// Events are written with events.Emit, the way the inbound path writes them
// (in a transaction, then a wake-up); the delivery workers run in process,
// except in the crash scenario, where they run in a child process that is
// killed with SIGKILL under load and restarted.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/delivery"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
)

const secret = "bench-secret"

func main() {
	dbURL := flag.String("db", "", "database URL: empty = a fresh SQLite file in a temp dir; postgres://... = that database (tables are created)")
	scen := flag.String("scenarios", "latency,throughput,isolation,crash", "comma-separated scenarios to run")
	dur := flag.Duration("duration", 5*time.Second, "how long each fixed-rate run lasts")
	rates := flag.String("rates", "100,500,1000", "events per second for the latency scenario")
	burst := flag.Int("events", 1000, "events in the throughput, isolation and crash scenarios")
	child := flag.Bool("child", false, "internal: run delivery workers only (crash scenario)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *child {
		runChild(ctx, *dbURL)
		return
	}
	url := *dbURL
	if url == "" {
		dir, err := os.MkdirTemp("", "parley-bench-")
		check(err)
		defer os.RemoveAll(dir)
		url = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	b := &bench{url: url}
	b.open(ctx)
	defer b.db.Close()
	fmt.Printf("parley-bench on %s\n\n%-46s %12s %12s %12s %10s\n", b.db.Engine, "scenario", "p50", "p99", "rate/s", "notes")
	for _, s := range strings.Split(*scen, ",") {
		switch strings.TrimSpace(s) {
		case "latency":
			for _, r := range strings.Split(*rates, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(r))
				check(err)
				b.latency(ctx, n, *dur)
			}
		case "throughput":
			b.fanout(ctx, *burst, false)
		case "isolation":
			b.fanout(ctx, *burst, true)
		case "crash":
			b.crash(ctx, *burst)
		default:
			fmt.Fprintf(os.Stderr, "unknown scenario %q\n", s)
			os.Exit(2)
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	url     string
	db      *store.DB
	box     *secrets.Box
	project string
}

func (b *bench) open(ctx context.Context) {
	db, err := store.Open(ctx, b.url, "")
	check(err)
	check(db.Migrate(ctx))
	b.db = db
	b.box, err = secrets.New(benchKey)
	check(err)
	p, err := store.CreateProject(ctx, db.Write(), "bench", nil)
	check(err)
	b.project = p.ID
}

// benchKey is the PARLEY_SECRET_KEY of the run, shared with the child.
var benchKey = "parley-bench-secret-key-0123456789"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func benchConfig() config.Config {
	cfg := config.Defaults()
	cfg.WebhookAllowPrivate = true
	cfg.WebhookTimeout = 2 * time.Second
	return cfg
}

// newConfig adds a WhatsApp config with one webhook per URL, all subscribed
// to received messages.
func (b *bench) newConfig(ctx context.Context, urls ...string) string {
	cfg := &parley.WhatsAppConfig{ProjectID: b.project, Name: "bench", Kind: parley.KindSandbox,
		PhoneNumberID: strconv.FormatInt(time.Now().UnixNano(), 10), InboundProcessingEnabled: true}
	check(store.CreateConfig(ctx, b.db.Write(), cfg))
	for _, u := range urls {
		w := platform.NewWebhook(b.project, &cfg.ID)
		w.URL, w.SecretKey, w.Events = u, secret, []string{parley.EventMessageReceived}
		check(platform.CreateWebhook(ctx, b.db.Write(), b.box, w))
	}
	return cfg.ID
}

// emit writes one received-message event stamped with its creation time.
func (b *bench) emit(ctx context.Context, configID string, n int) error {
	return b.db.Tx(ctx, func(tx *store.Conn) error {
		_, err := events.Emit(ctx, tx, events.Event{ProjectID: b.project, ConfigID: configID, Type: parley.EventMessageReceived,
			V2: map[string]any{"n": n, "sent_ns": time.Now().UnixNano(), "phone_number_id": "bench"}})
		return err
	})
}

// receiver verifies signatures and records latencies and idempotency keys.
type receiver struct {
	srv     *httptest.Server
	mode    string // "ok", "hang", "500"
	mu      sync.Mutex
	lat     []time.Duration
	keys    map[string]int
	badSigs atomic.Int64
	count   atomic.Int64
}

func newReceiver(mode string) *receiver {
	r := &receiver{mode: mode, keys: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		switch r.mode {
		case "hang":
			select {
			case <-req.Context().Done():
			case <-time.After(time.Minute):
			}
			return
		case "500":
			w.WriteHeader(500)
			return
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(req.Header.Get("X-Webhook-Signature"))) {
			r.badSigs.Add(1)
			w.WriteHeader(401)
			return
		}
		var p struct {
			SentNS int64 `json:"sent_ns"`
		}
		_ = json.Unmarshal(body, &p)
		r.mu.Lock()
		r.lat = append(r.lat, time.Since(time.Unix(0, p.SentNS)))
		r.keys[req.Header.Get("X-Idempotency-Key")]++
		r.mu.Unlock()
		r.count.Add(1)
	}))
	return r
}

func (r *receiver) close() { r.srv.CloseClientConnections(); r.srv.Close() }

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (b *bench) workers(ctx context.Context) (*delivery.Service, func()) {
	s := delivery.New(b.db, b.box, quiet(), benchConfig())
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(wctx); close(done) }()
	return s, func() { cancel(); <-done }
}

func waitCount(ctx context.Context, want int64, limit time.Duration, counts ...*receiver) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var n int64
		for _, c := range counts {
			n += c.count.Load()
		}
		if n >= want {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// latency: one subscriber, events at a fixed rate.
func (b *bench) latency(ctx context.Context, rate int, d time.Duration) {
	rc := newReceiver("ok")
	defer rc.close()
	cfg := b.newConfig(ctx, rc.srv.URL)
	s, stop := b.workers(ctx)
	defer stop()
	total := int(float64(rate) * d.Seconds())
	start := time.Now()
	var emitErr error
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
			time.Sleep(wait)
		}
		if err := b.emit(ctx, cfg, i); err != nil {
			emitErr = err
			break
		}
		s.Wake()
	}
	achieved := float64(total) / time.Since(start).Seconds()
	ok := waitCount(ctx, int64(total), time.Minute, rc)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	note := fmt.Sprintf("%d/%d", rc.count.Load(), total)
	if !ok || emitErr != nil || rc.badSigs.Load() > 0 {
		note += fmt.Sprintf(" INCOMPLETE err=%v badsig=%d", emitErr, rc.badSigs.Load())
	}
	fmt.Printf("%-46s %12s %12s %12.0f %10s\n", fmt.Sprintf("latency, 1 subscriber, %d ev/s", rate),
		percentile(rc.lat, .5).Round(10*time.Microsecond), percentile(rc.lat, .99).Round(10*time.Microsecond), achieved, note)
}

// fanout: 10 healthy subscribers on every event (plus, with broken, one
// that hangs past the timeout and one answering 500).
func (b *bench) fanout(ctx context.Context, n int, broken bool) {
	var healthy []*receiver
	var urls []string
	for i := 0; i < 10; i++ {
		r := newReceiver("ok")
		defer r.close()
		healthy = append(healthy, r)
		urls = append(urls, r.srv.URL)
	}
	name := "throughput, 10 subscribers"
	if broken {
		hang, fail := newReceiver("hang"), newReceiver("500")
		defer hang.close()
		defer fail.close()
		urls = append(urls, hang.srv.URL, fail.srv.URL)
		name = "10 healthy + 1 hanging + 1 failing (healthy)"
	}
	cfg := b.newConfig(ctx, urls...)
	s, stop := b.workers(ctx)
	defer stop()
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		check(b.emit(ctx, cfg, i))
		if i%50 == 0 {
			s.Wake()
		}
	}
	s.Wake()
	ok := waitCount(ctx, int64(n*len(healthy)), 2*time.Minute, healthy...)
	el := time.Since(start)
	var lat []time.Duration
	var bad int64
	for _, r := range healthy {
		r.mu.Lock()
		lat = append(lat, r.lat...)
		r.mu.Unlock()
		bad += r.badSigs.Load()
	}
	note := fmt.Sprintf("%d deliveries", len(lat))
	if !ok || bad > 0 {
		note += fmt.Sprintf(" INCOMPLETE badsig=%d", bad)
	}
	fmt.Printf("%-46s %12s %12s %12.0f %10s\n", name, percentile(lat, .5).Round(10*time.Microsecond),
		percentile(lat, .99).Round(10*time.Microsecond), float64(len(lat))/el.Seconds(), note)
}

// crash: delivery workers in a child process, killed with SIGKILL halfway
// through, then restarted; every event must arrive (duplicates are allowed:
// delivery is at least once).
func (b *bench) crash(ctx context.Context, n int) {
	rc := newReceiver("ok")
	defer rc.close()
	cfg := b.newConfig(ctx, rc.srv.URL)
	exe, err := os.Executable()
	check(err)
	start := func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, exe, "-child", "-db", b.url)
		cmd.Env = append(os.Environ(), "PARLEY_BENCH_KEY="+benchKey)
		cmd.Stderr = os.Stderr
		check(cmd.Start())
		return cmd
	}
	child := start()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		check(b.emit(ctx, cfg, i))
		if i == n/2 {
			_ = child.Process.Signal(syscall.SIGKILL)
			_ = child.Wait()
			child = start()
		}
		time.Sleep(time.Second / 500) // 500 ev/s
	}
	restarted := time.Now()
	ok := waitCount(ctx, int64(n), 2*time.Minute, rc)
	drain := time.Since(restarted)
	_ = child.Process.Signal(syscall.SIGKILL)
	_ = child.Wait()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	dups := 0
	for _, c := range rc.keys {
		dups += c - 1
	}
	lost := n - len(rc.keys)
	note := fmt.Sprintf("lost=%d dup=%d drain=%s", lost, dups, drain.Round(time.Millisecond))
	if !ok {
		note += " INCOMPLETE"
	}
	fmt.Printf("%-46s %12s %12s %12s %10s\n", "kill -9 under load (500 ev/s), restart", percentile(rc.lat, .5).Round(10*time.Microsecond),
		percentile(rc.lat, .99).Round(10*time.Microsecond), "-", note)
}

// runChild runs delivery workers only, until killed.
func runChild(ctx context.Context, url string) {
	if k := os.Getenv("PARLEY_BENCH_KEY"); k != "" {
		benchKey = k
	}
	db, err := store.Open(ctx, url, "")
	check(err)
	box, err := secrets.New(benchKey)
	check(err)
	s := delivery.New(db, box, quiet(), benchConfig())
	s.Run(ctx)
}
