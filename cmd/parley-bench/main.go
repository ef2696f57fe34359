// Command parley-bench measures webhook delivery end to end, the way issue 5
// states its targets: signed Meta webhooks are POSTed to Parley's
// /webhooks/whatsapp and the time is taken until the subscriber receives the
// signed delivery of the resulting whatsapp.message.received event.
//
// Parley runs as a subprocess on loopback (this binary re-executed in serve
// mode, which is what `parley serve` runs, or the binary given with
// -parley), on a fresh database per scenario: a SQLite file in a temporary
// directory, or a private schema on the PostgreSQL server given with -db,
// dropped afterwards. The subscribers are HTTP servers in this process that
// verify every X-Webhook-Signature.
//
//	go run ./cmd/parley-bench                       # SQLite, every scenario
//	go run ./cmd/parley-bench -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run ./cmd/parley-bench -scenarios latency -rates 500 -duration 10s
//	go run ./cmd/parley-bench -scenarios throughput -cpuprofile /tmp/parley.cpu
//
// Scenarios:
//
//	latency     one subscriber, events at fixed rates (-rates), latency p50/p99
//	throughput  ten subscribers on every event: a burst of -events as fast
//	            as Parley acknowledges them (signed deliveries per second), then
//	            a fixed rate (-fanout-rate) for the latency reference
//	isolation   the same with two of the ten subscribers broken (one never
//	            answers, so each request runs into PARLEY_WEBHOOK_TIMEOUT; one
//	            answers 500): the healthy subscribers' figures
//	crash       one subscriber at -crash-rate; Parley is killed with SIGKILL
//	            halfway and restarted while the load goes on (unacknowledged
//	            webhooks are retried, as Meta does): events lost, duplicate
//	            deliveries (by X-Idempotency-Key) and the time to drain
//
// Latency is measured from the moment the webhook was due to be sent (the
// open-loop schedule, so a stalled server cannot hide its queue) or, in a
// burst, from the moment it was sent, to the subscriber's receipt.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/platform"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

const (
	appSecret  = "bench-app-secret-0123456789"        // signs the Meta webhooks
	hookSecret = "bench-webhook-secret"               // signs the deliveries
	secretKey  = "parley-bench-secret-key-0123456789" // PARLEY_SECRET_KEY of the run
	wabaID     = "102290129340398"
	display    = "15550783881"
)

type options struct {
	db          string
	scenarios   string
	duration    time.Duration
	rates       string
	fanoutRate  int
	events      int
	crashRate   int
	customers   int
	clients     int
	parleyBin   string
	cpuProfile  string
	timeout     time.Duration
	workers     int
	perEndpoint int
	logLevel    string
}

func main() {
	var o options
	flag.StringVar(&o.db, "db", "", "PostgreSQL URL (a private schema is created per scenario and dropped); empty = SQLite files in a temporary directory")
	flag.StringVar(&o.scenarios, "scenarios", "latency,throughput,isolation,crash", "comma-separated scenarios to run")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long each fixed-rate run sends")
	flag.StringVar(&o.rates, "rates", "100,500,1000", "events per second of the latency runs")
	flag.IntVar(&o.fanoutRate, "fanout-rate", 300, "events per second of the fixed-rate throughput and isolation runs (x10 deliveries)")
	flag.IntVar(&o.events, "events", 2000, "events in the throughput and isolation bursts")
	flag.IntVar(&o.crashRate, "crash-rate", 500, "events per second of the crash scenario (it lasts -duration, at least 6s)")
	flag.IntVar(&o.customers, "customers", 1000, "distinct customers (conversations) the events are spread over")
	flag.IntVar(&o.clients, "clients", 32, "concurrent HTTP clients posting Meta webhooks")
	flag.StringVar(&o.parleyBin, "parley", "", "a parley binary to run (`parley serve`); empty = this binary in serve mode")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the Parley process to <path>.<scenario> (serve mode only)")
	flag.DurationVar(&o.timeout, "webhook-timeout", 0, "PARLEY_WEBHOOK_TIMEOUT of the Parley process (0 = Parley's default)")
	flag.IntVar(&o.workers, "workers", 0, "PARLEY_DELIVERY_WORKERS (0 = Parley's default)")
	flag.IntVar(&o.perEndpoint, "per-endpoint", 0, "PARLEY_DELIVERY_PER_ENDPOINT (0 = Parley's default)")
	flag.StringVar(&o.logLevel, "log-level", "warn", "the Parley process's log level (its log goes to stderr)")
	serve := flag.Bool("serve", false, "internal: run Parley as `parley serve` does, configured by PARLEY_* variables")
	flag.Parse()
	if *serve {
		if err := serveMode(); err != nil {
			fmt.Fprintln(os.Stderr, "parley-bench -serve:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench:", err)
		os.Exit(1)
	}
}

// serveMode is `parley serve` configured from the environment, with an
// optional CPU profile written when it stops.
func serveMode() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	if p := os.Getenv("PARLEY_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	a, err := app.New(ctx, cfg, app.NewLogger(cfg, os.Stderr), io.Discard)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.clients < 1 || o.customers < 1 || o.events < 1 {
		return errors.New("-clients, -customers and -events must be positive")
	}
	tmp, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{o: o, tmp: tmp, out: out}
	engine := "sqlite"
	if o.db != "" {
		engine = "postgres"
	}
	fmt.Fprintf(out, "parley-bench: %s; Parley as a subprocess (%s); %s, %d CPUs, GOMAXPROCS=%d, %s\n\n", engine, b.parleyName(),
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(out, "%-52s %10s %10s %10s  %s\n", "scenario", "p50", "p99", "rate/s", "notes")
	for _, s := range strings.Split(o.scenarios, ",") {
		var err error
		switch s = strings.TrimSpace(s); s {
		case "latency":
			for _, r := range strings.Split(o.rates, ",") {
				n, perr := strconv.Atoi(strings.TrimSpace(r))
				if perr != nil || n <= 0 {
					return fmt.Errorf("bad rate %q", r)
				}
				if err = b.latency(ctx, n); err != nil {
					break
				}
			}
		case "throughput":
			err = b.fanout(ctx, false)
		case "isolation":
			err = b.fanout(ctx, true)
		case "crash":
			err = b.crash(ctx)
		default:
			return fmt.Errorf("unknown scenario %q", s)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

type bench struct {
	o   options
	tmp string
	out io.Writer
	n   int // scenarios run, for file and schema names
}

func (b *bench) parleyName() string {
	if b.o.parleyBin != "" {
		return b.o.parleyBin + " serve"
	}
	return "parley-bench -serve, i.e. app.New + Run as in `parley serve`"
}

func (b *bench) row(name string, p50, p99 time.Duration, rate float64, notes string) {
	fmt.Fprintf(b.out, "%-52s %10s %10s %10.0f  %s\n", name, round(p50), round(p99), rate, notes)
}

func round(d time.Duration) time.Duration {
	if d > 100*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// perItem is d divided among n items, rounded for the table.
func perItem(d time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return (d / time.Duration(n)).Round(time.Microsecond)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// ---- environment: database, config, webhooks, the Parley process ----

type env struct {
	url     string
	dataDir string
	cfg     *parley.WhatsAppConfig
	drop    func()
}

// newEnv creates a fresh database with a project, a production config
// signed by appSecret and one webhook per subscriber URL, subscribed to
// received messages.
func (b *bench) newEnv(ctx context.Context, urls []string) (*env, error) {
	b.n++
	e := &env{dataDir: filepath.Join(b.tmp, fmt.Sprintf("run%d", b.n)), drop: func() {}}
	if b.o.db == "" {
		e.url = "sqlite:" + filepath.Join(e.dataDir, "parley.db")
	} else {
		u, drop, err := privateSchema(ctx, b.o.db)
		if err != nil {
			return nil, err
		}
		e.url, e.drop = u, drop
	}
	err := func() error {
		db, err := store.Open(ctx, e.url, e.dataDir)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		box, err := secrets.New(secretKey)
		if err != nil {
			return err
		}
		p, err := store.CreateProject(ctx, db.Write(), "bench", nil)
		if err != nil {
			return err
		}
		enc, err := box.Encrypt(appSecret)
		if err != nil {
			return err
		}
		tok, err := box.Encrypt("bench-token")
		if err != nil {
			return err
		}
		waba, disp := wabaID, display
		e.cfg = &parley.WhatsAppConfig{ProjectID: p.ID, Name: "bench", Kind: parley.KindProduction,
			PhoneNumberID: "1065" + strconv.FormatInt(time.Now().UnixNano()%1e11, 10), BusinessAccountID: &waba,
			DisplayPhoneNumberNormalized: &disp, AppSecretEnc: enc, AccessTokenEnc: tok, InboundProcessingEnabled: true}
		if err := store.CreateConfig(ctx, db.Write(), e.cfg); err != nil {
			return err
		}
		for _, u := range urls {
			w := platform.NewWebhook(p.ID, &e.cfg.ID)
			w.URL, w.SecretKey, w.Events = u, hookSecret, []string{parley.EventMessageReceived}
			if err := platform.CreateWebhook(ctx, db.Write(), box, w); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		e.drop()
		return nil, err
	}
	return e, nil
}

// privateSchema creates a throw-away schema and returns a URL whose
// search_path selects it; drop removes it.
func privateSchema(ctx context.Context, base string) (string, func(), error) {
	return store.PrivateSchema(ctx, base, "parley_bench_", nil)
}

// proc is a running Parley process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// start runs Parley on e's database and waits until /readyz answers.
func (b *bench) start(ctx context.Context, e *env, profile string) (*proc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	var cmd *exec.Cmd
	if b.o.parleyBin != "" {
		cmd = exec.Command(b.o.parleyBin, "serve")
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(exe, "-serve")
	}
	cmd.Env = append(os.Environ(), "PARLEY_ADDR="+addr, "PARLEY_DATA_DIR="+e.dataDir, "PARLEY_SECRET_KEY="+secretKey,
		"PARLEY_WEBHOOK_ALLOW_PRIVATE=true", "PARLEY_RATE_LIMIT=0", "PARLEY_SANDBOX=false", "PARLEY_LOG_LEVEL="+b.o.logLevel,
		"PARLEY_BOOTSTRAP_API_KEY=bench-bootstrap-key-0123456789")
	if strings.HasPrefix(e.url, "sqlite:") {
		cmd.Env = append(cmd.Env, "PARLEY_DATABASE_URL=") // SQLite in the data dir: parley.db, as set up
	} else {
		cmd.Env = append(cmd.Env, "PARLEY_DATABASE_URL="+e.url)
	}
	if b.o.timeout > 0 {
		cmd.Env = append(cmd.Env, "PARLEY_WEBHOOK_TIMEOUT="+b.o.timeout.String())
	}
	if b.o.workers > 0 {
		cmd.Env = append(cmd.Env, "PARLEY_DELIVERY_WORKERS="+strconv.Itoa(b.o.workers))
	}
	if b.o.perEndpoint > 0 {
		cmd.Env = append(cmd.Env, "PARLEY_DELIVERY_PER_ENDPOINT="+strconv.Itoa(b.o.perEndpoint))
	}
	if profile != "" && b.o.cpuProfile != "" && b.o.parleyBin == "" {
		cmd.Env = append(cmd.Env, "PARLEY_BENCH_CPUPROFILE="+b.o.cpuProfile+"."+profile)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-p.done:
			return nil, fmt.Errorf("parley exited during start: %v", cmd.ProcessState)
		default:
		}
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	return nil, errors.New("parley did not become ready")
}

// stop ends Parley gracefully (SIGTERM), killing it after 30 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

// cpu is the CPU time (user and system) Parley used; valid once it exited.
func (p *proc) cpu() time.Duration {
	<-p.done
	if st := p.cmd.ProcessState; st != nil {
		return st.UserTime() + st.SystemTime()
	}
	return 0
}

// kill ends Parley with SIGKILL.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// ---- subscribers ----

// receiver is a subscriber: it verifies signatures and records, per
// delivery, the latency from the marker in the message text, the event
// number and the idempotency key.
type receiver struct {
	srv     *httptest.Server
	mode    string // "ok", "hang" (never answers in time), "500"
	mu      sync.Mutex
	lat     []time.Duration
	keys    map[string]int
	events  map[int64]int
	badSigs atomic.Int64
	count   atomic.Int64
	last    atomic.Int64 // unix nanoseconds of the last delivery
}

func newReceiver(mode string) *receiver {
	r := &receiver{mode: mode, keys: map[string]int{}, events: map[int64]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return // the sender gave up (its timeout): not a delivery
	}
	at := time.Now()
	switch r.mode {
	case "hang":
		select {
		case <-req.Context().Done():
		case <-time.After(10 * time.Minute):
		}
		return
	case "500":
		w.WriteHeader(500)
		return
	}
	m := hmac.New(sha256.New, []byte(hookSecret))
	m.Write(body)
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(req.Header.Get("X-Webhook-Signature"))) {
		r.badSigs.Add(1)
		w.WriteHeader(401)
		return
	}
	n, ref, ok := parseMarker(body)
	r.mu.Lock()
	if ok {
		r.lat = append(r.lat, at.Sub(time.Unix(0, ref)))
		r.events[n]++
	}
	r.keys[req.Header.Get("X-Idempotency-Key")]++
	r.mu.Unlock()
	r.count.Add(1)
	r.last.Store(at.UnixNano())
	w.WriteHeader(200)
}

func (r *receiver) close() { r.srv.CloseClientConnections(); r.srv.Close() }

// marker is written into each message's text: event number and reference
// time (unix nanoseconds).
func marker(n int64, ref time.Time) string {
	return "pb-" + strconv.FormatInt(n, 10) + "-" + strconv.FormatInt(ref.UnixNano(), 10) + "-"
}

func parseMarker(body []byte) (n, ref int64, ok bool) {
	i := bytes.Index(body, []byte("pb-"))
	if i < 0 {
		return 0, 0, false
	}
	parts := strings.SplitN(string(body[i+3:min(len(body), i+64)]), "-", 3)
	if len(parts) < 3 {
		return 0, 0, false
	}
	n, err1 := strconv.ParseInt(parts[0], 10, 64)
	ref, err2 := strconv.ParseInt(parts[1], 10, 64)
	return n, ref, err1 == nil && err2 == nil
}

func healthyTotals(rs []*receiver) (lat []time.Duration, count, bad int64, last time.Time) {
	var lastNS int64
	for _, r := range rs {
		r.mu.Lock()
		lat = append(lat, r.lat...)
		r.mu.Unlock()
		count += r.count.Load()
		bad += r.badSigs.Load()
		lastNS = max(lastNS, r.last.Load())
	}
	return lat, count, bad, time.Unix(0, lastNS)
}

func waitCount(ctx context.Context, want int64, limit time.Duration, rs ...*receiver) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var n int64
		for _, r := range rs {
			n += r.count.Load()
		}
		if n >= want {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// ---- load: signed Meta webhooks ----

type loader struct {
	b       *bench
	cfg     *parley.WhatsAppConfig
	addr    atomic.Value // string: host:port of the Parley process (changes on restart)
	client  *http.Client
	seq     atomic.Int64
	acked   atomic.Int64
	retries atomic.Int64
	mu      sync.Mutex
	ackedAt map[int64]time.Time // event number -> acknowledgement time
	ackLat  []time.Duration     // from reference time to Parley's 2xx
}

// ack returns the p50 and p99 of the time from each event's reference time
// to Parley's acknowledgement of its webhook: the inbound share of the
// latency.
func (l *loader) ack() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return percentile(l.ackLat, .5), percentile(l.ackLat, .99)
}

func newLoader(b *bench, cfg *parley.WhatsAppConfig, addr string) *loader {
	tr := &http.Transport{MaxIdleConns: 2 * b.o.clients, MaxIdleConnsPerHost: 2 * b.o.clients, IdleConnTimeout: time.Minute}
	l := &loader{b: b, cfg: cfg, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, ackedAt: map[int64]time.Time{}}
	l.addr.Store(addr)
	return l
}

// body returns the signed Meta webhook of event n: one text message from
// one of the customers, carrying the marker.
func (l *loader) body(n int64, ref time.Time) []byte {
	from := strconv.Itoa(5491100000000 + int(n)%l.b.o.customers)
	now := time.Now()
	msg := whatsapp.NewTextMessage(from, "wamid.pb"+strconv.FormatInt(n, 10)+"."+strconv.FormatInt(now.UnixNano(), 36), now,
		"hello "+marker(n, ref))
	body, _ := whatsapp.BuildMessageWebhook(wabaID, l.cfg.PhoneNumberID, display,
		whatsapp.Contact{WaID: from, ProfileName: "Bench " + from[len(from)-4:]}, msg)
	return body
}

// post delivers event n to Parley, retrying (as Meta does) until it is
// acknowledged with a 2xx or ctx ends.
func (l *loader) post(ctx context.Context, n int64, ref time.Time) {
	body := l.body(n, ref)
	sig := whatsapp.Sign([]byte(appSecret), body)
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+l.addr.Load().(string)+"/webhooks/whatsapp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(whatsapp.SignatureHeader, sig)
		resp, err := l.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				l.acked.Add(1)
				now := time.Now()
				l.mu.Lock()
				l.ackedAt[n] = now
				l.ackLat = append(l.ackLat, now.Sub(ref))
				l.mu.Unlock()
				return
			}
		}
		l.retries.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fixedRate sends rate events per second for d on an open-loop schedule;
// each event's reference time is when it was due. It returns the number of
// events sent.
func (l *loader) fixedRate(ctx context.Context, rate int, d time.Duration) int {
	total := int(float64(rate) * d.Seconds())
	type item struct {
		n   int64
		due time.Time
	}
	ch := make(chan item, total)
	var wg sync.WaitGroup
	for i := 0; i < l.b.o.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				l.post(ctx, it.n, it.due)
			}
		}()
	}
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		ch <- item{l.seq.Add(1), due}
	}
	close(ch)
	wg.Wait()
	return total
}

// burst sends n events as fast as Parley acknowledges them; each event's
// reference time is when its request started.
func (l *loader) burst(ctx context.Context, n int) {
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for i := 0; i < l.b.o.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				l.post(ctx, l.seq.Add(1), time.Now())
			}
		}()
	}
	wg.Wait()
}

// ---- scenarios ----

// latency: one subscriber, events at a fixed rate.
func (b *bench) latency(ctx context.Context, rate int) error {
	rc := newReceiver("ok")
	defer rc.close()
	e, err := b.newEnv(ctx, []string{rc.srv.URL})
	if err != nil {
		return err
	}
	defer e.drop()
	p, err := b.start(ctx, e, fmt.Sprintf("latency%d", rate))
	if err != nil {
		return err
	}
	l := newLoader(b, e.cfg, p.addr)
	start := time.Now()
	total := l.fixedRate(ctx, rate, b.o.duration)
	achieved := float64(total) / time.Since(start).Seconds()
	ok := waitCount(ctx, int64(total), time.Minute, rc)
	p.stop()
	lat, count, bad, _ := healthyTotals([]*receiver{rc})
	a50, a99 := l.ack()
	notes := fmt.Sprintf("%d/%d delivered; inbound ack p50 %s p99 %s; Parley CPU %s/event", count, total, round(a50), round(a99),
		perItem(p.cpu(), total))
	if !ok || bad > 0 || l.retries.Load() > 0 {
		notes += fmt.Sprintf(" INCOMPLETE badsig=%d retried=%d", bad, l.retries.Load())
	}
	b.row(fmt.Sprintf("latency, 1 subscriber, %d ev/s", rate), percentile(lat, .5), percentile(lat, .99), achieved, notes)
	return nil
}

// fanout: ten subscribers on every event, all healthy or (broken) eight
// healthy, one that never answers and one answering 500; first a burst,
// then a fixed rate.
func (b *bench) fanout(ctx context.Context, broken bool) error {
	for _, burst := range []bool{true, false} {
		var healthy []*receiver
		var urls []string
		nHealthy := 10
		if broken {
			nHealthy = 8
		}
		for i := 0; i < nHealthy; i++ {
			r := newReceiver("ok")
			defer r.close()
			healthy = append(healthy, r)
			urls = append(urls, r.srv.URL)
		}
		name := "10 subscribers"
		if broken {
			hang, fail := newReceiver("hang"), newReceiver("500")
			defer hang.close()
			defer fail.close()
			urls = append(urls, hang.srv.URL, fail.srv.URL)
			name = "8 healthy + 1 timing out + 1 HTTP 500 (healthy)"
		}
		e, err := b.newEnv(ctx, urls)
		if err != nil {
			return err
		}
		defer e.drop()
		tag := "throughput"
		if broken {
			tag = "isolation"
		}
		if burst {
			tag += "-burst"
		}
		p, err := b.start(ctx, e, tag)
		if err != nil {
			return err
		}
		l := newLoader(b, e.cfg, p.addr)
		start := time.Now()
		var events int
		if burst {
			l.burst(ctx, b.o.events)
			events = b.o.events
			name = fmt.Sprintf("burst of %d events, %s", events, name)
		} else {
			events = l.fixedRate(ctx, b.o.fanoutRate, b.o.duration)
			name = fmt.Sprintf("%d ev/s, %s", b.o.fanoutRate, name)
		}
		ingest := time.Since(start)
		want := int64(events * nHealthy)
		ok := waitCount(ctx, want, 2*time.Minute, healthy...)
		p.stop()
		lat, count, bad, last := healthyTotals(healthy)
		span := last.Sub(start)
		a50, a99 := l.ack()
		notes := fmt.Sprintf("%d deliveries in %.2fs; ingest %.0f ev/s, ack p50 %s p99 %s; Parley CPU %s/delivery", count, span.Seconds(),
			float64(events)/ingest.Seconds(), round(a50), round(a99), perItem(p.cpu(), int(count)))
		if !ok || bad > 0 {
			notes += fmt.Sprintf(" INCOMPLETE badsig=%d", bad)
		}
		if l.retries.Load() > 0 {
			notes += fmt.Sprintf(" retried=%d", l.retries.Load())
		}
		b.row(name, percentile(lat, .5), percentile(lat, .99), float64(count)/span.Seconds(), notes)
	}
	return nil
}

// crash: one subscriber at -crash-rate; Parley is killed with SIGKILL
// halfway through and restarted at once while the load goes on.
func (b *bench) crash(ctx context.Context) error {
	rc := newReceiver("ok")
	defer rc.close()
	e, err := b.newEnv(ctx, []string{rc.srv.URL})
	if err != nil {
		return err
	}
	defer e.drop()
	p, err := b.start(ctx, e, "crash")
	if err != nil {
		return err
	}
	l := newLoader(b, e.cfg, p.addr)
	d := max(b.o.duration, 6*time.Second)
	loadDone := make(chan int, 1)
	go func() { loadDone <- l.fixedRate(ctx, b.o.crashRate, d) }()
	time.Sleep(d / 2)
	// Every event acknowledged before the kill must be delivered.
	l.mu.Lock()
	killedAt := time.Now()
	p.kill()
	beforeKill := map[int64]bool{}
	for n := range l.ackedAt {
		beforeKill[n] = true
	}
	l.mu.Unlock()
	p, err = b.start(ctx, e, "crash-restarted")
	if err != nil {
		return err
	}
	defer p.stop()
	ready := time.Now()
	l.addr.Store(p.addr)
	total := <-loadDone
	ok := waitCount(ctx, int64(total), 2*time.Minute, rc)
	// drained: when the last of the events acknowledged before the kill
	// arrived, counted from the restarted process being ready.
	var drained time.Time
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		rc.mu.Lock()
		missing := 0
		for n := range beforeKill {
			if rc.events[n] == 0 {
				missing++
			}
		}
		rc.mu.Unlock()
		if missing == 0 {
			drained = time.Now()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let late duplicates arrive
	rc.mu.Lock()
	defer rc.mu.Unlock()
	dups := 0
	for _, c := range rc.keys {
		dups += c - 1
	}
	lost := 0
	for n := int64(1); n <= int64(total); n++ {
		if rc.events[n] == 0 {
			lost++
		}
	}
	// The same event delivered under two idempotency keys would mean the
	// inbound webhook was applied twice.
	twice := len(rc.keys) - len(rc.events)
	drain := "never"
	if !drained.IsZero() {
		drain = drained.Sub(ready).Round(time.Millisecond).String()
	}
	notes := fmt.Sprintf("lost=%d duplicates=%d (of %d deliveries) twice-applied=%d down=%s drain=%s retried-webhooks=%d",
		lost, dups, rc.count.Load(), twice, ready.Sub(killedAt).Round(time.Millisecond), drain, l.retries.Load())
	if !ok || rc.badSigs.Load() > 0 {
		notes += fmt.Sprintf(" INCOMPLETE badsig=%d", rc.badSigs.Load())
	}
	b.row(fmt.Sprintf("kill -9 at %d ev/s, restart (1 subscriber)", b.o.crashRate), percentile(rc.lat, .5), percentile(rc.lat, .99),
		float64(total)/d.Seconds(), notes)
	return nil
}
