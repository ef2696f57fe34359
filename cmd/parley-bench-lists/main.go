// Command parley-bench-lists measures how fast Parley's lists answer once
// history has grown (issue 4). It seeds a fresh store — a SQLite file in a
// temporary directory, or a private schema on the PostgreSQL server given
// with -db, dropped afterwards — with direct multi-row INSERTs in large
// transactions (by default 1,000,000 messages in 100,000 conversations and
// 50,000 contacts), starts the real API in-process on a loopback listener,
// and times real HTTP requests with an API key, one at a time:
//
//   - conversations filtered by status (active, ended), first page;
//   - a conversation's messages: first page, and a deep page (three
//     quarters into one of the conversations holding 10,000 messages);
//   - contacts searched by a name fragment (common, rare and absent ones);
//   - a contact by phone number.
//
// Each query runs -requests times after a warm-up; the report gives p50,
// p90, p99 and max per query against the 20 ms p99 target (-check turns a
// miss into exit status 2). The machine's load average is printed with the
// figures: on a shared machine, other processes' load shows in the tail
// (-max-load waits for a quieter moment before measuring).
// "cpu ms" is the CPU time spent per request, on average, by this process
// (HTTP client, Parley and, on SQLite, the database) and, on a PostgreSQL
// server on this machine, by the server processes of the benchmark's
// connections: it moves much less with the machine's load than latencies.
//
//	go run ./cmd/parley-bench-lists                   # SQLite, full size
//	go run ./cmd/parley-bench-lists -quick            # 10x smaller, for CI
//	go run ./cmd/parley-bench-lists -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//
// On PostgreSQL the seeded tables get VACUUM ANALYZE, which autovacuum would
// have done after such a load; on SQLite nothing is run, as in production.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store"
)

// targetP99 is issue 4's goal for every query.
const targetP99 = 20 * time.Millisecond

type options struct {
	db                                string
	messages, conversations, contacts int
	requests                          int
	quick, keep, check                bool
	maxLoad                           float64
}

func main() {
	var o options
	flag.StringVar(&o.db, "db", "", "postgres:// URL (a private schema is created and dropped); empty = a SQLite file in a temporary directory")
	flag.IntVar(&o.messages, "messages", 1_000_000, "messages to seed")
	flag.IntVar(&o.conversations, "conversations", 100_000, "conversations to seed")
	flag.IntVar(&o.contacts, "contacts", 50_000, "contacts to seed")
	flag.IntVar(&o.requests, "requests", 1000, "measured requests per query (after a warm-up of a tenth as many)")
	flag.BoolVar(&o.quick, "quick", false, "10x smaller data and requests, for a CI smoke run")
	flag.BoolVar(&o.check, "check", false, "exit with status 2 when a query's p99 misses the 20 ms target")
	flag.Float64Var(&o.maxLoad, "max-load", 0, "before measuring, wait (up to 15 minutes) until the 1-minute load average is below this (0 = do not wait)")
	flag.BoolVar(&o.keep, "keep", false, "keep the seeded database (SQLite directory or PostgreSQL schema) and print where it is")
	flag.Parse()
	if o.quick {
		o.messages, o.conversations, o.contacts, o.requests = o.messages/10, o.conversations/10, o.contacts/10, max(50, o.requests/10)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench-lists:", err)
		os.Exit(1)
	}
	if failed && o.check {
		os.Exit(2)
	}
}

// run seeds, serves and measures; failed reports a query over the target.
func run(ctx context.Context, o options, out io.Writer) (failed bool, err error) {
	if o.requests < 1 {
		return false, errors.New("-requests must be positive")
	}
	dir, err := os.MkdirTemp("", "parley-bench-lists-")
	if err != nil {
		return false, err
	}
	dbURL, engine := o.db, "sqlite"
	if o.keep {
		fmt.Fprintf(out, "keeping the database: ")
	} else {
		defer os.RemoveAll(dir)
	}
	if strings.HasPrefix(dbURL, "postgres://") || strings.HasPrefix(dbURL, "postgresql://") {
		engine = "postgres"
		var drop func()
		if dbURL, drop, err = privateSchema(ctx, dbURL); err != nil {
			return false, err
		}
		if o.keep {
			fmt.Fprintln(out, dbURL)
		} else {
			defer drop()
		}
	} else if dbURL != "" {
		return false, errors.New("-db must be a postgres:// URL or empty")
	} else if o.keep {
		fmt.Fprintln(out, "sqlite:"+filepath.Join(dir, "parley.db"))
	}

	key := store.GenerateAPIKey()
	cfg := config.Defaults()
	cfg.DataDir, cfg.DatabaseURL, cfg.LogLevel, cfg.BootstrapAPIKey = dir, dbURL, "error", key
	cfg.RateLimitPerMinute, cfg.Sandbox, cfg.Addr, cfg.PublicURL = 0, false, "127.0.0.1:0", "http://127.0.0.1"
	a, err := app.New(ctx, cfg, app.NewLogger(cfg, os.Stderr), io.Discard)
	if err != nil {
		return false, err
	}
	// Serve closes the store when it returns; until it runs, closing is ours.
	stopServer := func() { a.DB.Close() }
	defer func() { stopServer() }()

	fmt.Fprintf(out, "parley-bench-lists: %s, %d messages in %d conversations, %d contacts; %d requests per query; GOMAXPROCS=%d\n",
		engine, o.messages, o.conversations, o.contacts, o.requests, runtime.GOMAXPROCS(0))
	p, err := seed(ctx, a.DB, o, out)
	if err != nil {
		return false, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- a.Serve(sctx, ln) }()
	stopServer = func() { cancel(); <-served }

	base := "http://" + ln.Addr().String() + "/api/v1"
	if o.maxLoad > 0 {
		waitQuiet(ctx, o.maxLoad, 15*time.Minute, out)
	}
	load0 := loadAvg()
	t0 := time.Now()
	results, err := measure(ctx, base, key, queries(p), o.requests, newPGCPU(a.DB, dbURL))
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "measured in %s; load average before %s, after %s\n", time.Since(t0).Round(time.Second), load0, loadAvg())
	return report(out, results), nil
}

// seed plans and inserts the data, printing how long each part took.
func seed(ctx context.Context, db *store.DB, o options, out io.Writer) (*seedPlan, error) {
	t0 := time.Now()
	ps, err := store.ListProjects(ctx, db.Read())
	if err != nil || len(ps) != 1 {
		return nil, fmt.Errorf("want the bootstrap project: %v", err)
	}
	configs, err := seedConfigRows(ctx, db, ps[0].ID)
	if err != nil {
		return nil, err
	}
	p, err := plan(o, ps[0].ID, configs)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	if err := p.seedContacts(ctx, db); err != nil {
		return nil, err
	}
	t2 := time.Now()
	if err := p.seedConversations(ctx, db); err != nil {
		return nil, err
	}
	t3 := time.Now()
	lastShown := t3
	err = p.seedMessages(ctx, db, func(done int) {
		if time.Since(lastShown) > 10*time.Second {
			lastShown = time.Now()
			fmt.Fprintf(out, "  … %d messages (%.0f/s)\n", done, float64(done)/time.Since(t3).Seconds())
		}
	})
	if err != nil {
		return nil, err
	}
	t4 := time.Now()
	fmt.Fprintf(out, "seeded in %s: plan %s, contacts %s, conversations %s, messages %s (%.0f rows/s)\n",
		t4.Sub(t0).Round(time.Millisecond), t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond),
		t3.Sub(t2).Round(time.Millisecond), t4.Sub(t3).Round(time.Millisecond), float64(o.messages)/t4.Sub(t3).Seconds())
	if db.Engine == store.Postgres {
		t := time.Now()
		for _, table := range []string{"contacts", "conversations", "messages"} {
			if _, err := db.Write().Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
				return nil, fmt.Errorf("vacuum %s: %w", table, err)
			}
		}
		fmt.Fprintf(out, "VACUUM ANALYZE in %s\n", time.Since(t).Round(time.Millisecond))
	}
	if size, err := dbSize(ctx, db); err == nil {
		fmt.Fprintf(out, "database size: %.0f MiB\n", float64(size)/(1<<20))
	}
	return p, nil
}

// dbSize is the size of the database (SQLite) or of the schema's tables
// and indexes (PostgreSQL).
func dbSize(ctx context.Context, db *store.DB) (int64, error) {
	var n int64
	q := `SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`
	if db.Engine == store.Postgres {
		q = `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`
	}
	err := db.Read().QueryRow(ctx, q).Scan(&n)
	return n, err
}

// query is one measured request shape; its variants are used in turn.
type query struct {
	name     string
	variants []variant
}

type variant struct {
	label, path string
	// want is the meta.total_count the seeded data implies (computed
	// without SQL), checked on the first request; -1 = not a list.
	want int
}

// queries builds the measured requests over the seeded data.
func queries(p *seedPlan) []query {
	const perPage = 20
	var first, deepPage []variant
	deep := (p.deepSize * 3 / 4) / perPage
	for _, j := range p.deep {
		u := "/whatsapp_conversations/" + p.convID(j) + "/whatsapp_messages?per_page=" + strconv.Itoa(perPage)
		first = append(first, variant{path: u, want: p.deepSize})
		deepPage = append(deepPage, variant{path: u + "&page=" + strconv.Itoa(deep), want: p.deepSize})
	}
	var search []variant
	for _, f := range []string{"ez", "mar", "garc", "patel", "sofía t", "xyz"} {
		want := 0
		for c := range p.contacts {
			if name, ok := profileName(c).(string); ok && strings.Contains(strings.ToLower(name), f) {
				want++
			}
		}
		search = append(search, variant{label: strconv.Quote(f), want: want,
			path: "/whatsapp_contacts?per_page=" + strconv.Itoa(perPage) + "&q[profile_name_cont]=" + neturl.QueryEscape(f)})
	}
	var phones []variant
	for k := range 64 {
		c := int(mix(uint64(k)+11) % uint64(p.contacts))
		phones = append(phones, variant{path: "/whatsapp_contacts/" + neturl.PathEscape("+"+p.contactWaID(c)), want: -1})
	}
	var convPhones []variant
	for k := range 64 {
		c := int(mix(uint64(k)+29) % uint64(p.contacts))
		want := 0
		for j := range p.convActive {
			if p.contactOf(int32(j)) == c {
				want++
			}
		}
		convPhones = append(convPhones, variant{want: want,
			path: "/whatsapp_conversations?per_page=" + strconv.Itoa(perPage) + "&q[phone_number_eq]=" + neturl.QueryEscape("+"+p.contactWaID(c))})
	}
	active := 0
	for _, a := range p.convActive {
		if a {
			active++
		}
	}
	status := func(s string, want int) []variant {
		return []variant{{path: "/whatsapp_conversations?per_page=" + strconv.Itoa(perPage) + "&q[status_eq]=" + s, want: want}}
	}
	return []query{
		{"conversations ?status_eq=active", status("active", active)},
		{"conversations ?status_eq=ended", status("ended", len(p.convActive)-active)},
		{"conversations ?phone_number_eq=", convPhones},
		{"messages of a conversation, page 1", first},
		{"messages of a conversation, page " + strconv.Itoa(deep), deepPage},
		{"contacts ?profile_name_cont=", search},
		{"contact by phone", phones},
	}
}

type result struct {
	name     string
	lat      []time.Duration
	cpu      time.Duration // this process's CPU time over the measured requests
	total    string        // meta.total_count seen (range over variants)
	variants []variantResult
}

type variantResult struct {
	label string
	total int
	lat   []time.Duration
	cpu   time.Duration
}

// measure runs every query requests times, round-robin (so slow phases of
// the machine hit all queries alike), after a warm-up of a tenth as many.
func measure(ctx context.Context, base, key string, qs []query, requests int, server *pgCPU) ([]*result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	res := make([]*result, len(qs))
	for k, q := range qs {
		res[k] = &result{name: q.name, variants: make([]variantResult, len(q.variants))}
		for v := range q.variants {
			res[k].variants[v].label = q.variants[v].label
			res[k].variants[v].total = -1
		}
	}
	if err := verify(ctx, client, base, key, qs); err != nil {
		return nil, err
	}
	warm := max(1, requests/10)
	for round := -warm; round < requests; round++ {
		server.refresh(ctx)
		for k, q := range qs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			vi := (round + warm) % len(q.variants)
			v := &res[k].variants[vi]
			c0, s0 := processCPU(), server.used()
			d, pg, err := get(ctx, client, base+q.variants[vi].path, key, v.total < 0)
			cpu := processCPU() - c0 + server.used() - s0
			if err != nil {
				return nil, fmt.Errorf("%s: %w", q.name, err)
			}
			if v.total < 0 {
				v.total = pg.total
			}
			if round >= 0 {
				res[k].lat = append(res[k].lat, d)
				res[k].cpu += cpu
				v.lat = append(v.lat, d)
				v.cpu += cpu
			}
		}
	}
	for _, r := range res {
		lo, hi := -1, -1
		for _, v := range r.variants {
			if v.total >= 0 && (lo < 0 || v.total < lo) {
				lo = v.total
			}
			hi = max(hi, v.total)
		}
		switch {
		case lo < 0:
			r.total = "-"
		case lo == hi:
			r.total = strconv.Itoa(lo)
		default:
			r.total = strconv.Itoa(lo) + "–" + strconv.Itoa(hi)
		}
	}
	return res, nil
}

// page is what a list response says: meta.total_count and how many items
// data holds; total is -1 for a single resource.
type page struct{ total, items int }

// get does one request and returns its latency and, with decode, what the
// response holds.
func get(ctx context.Context, client *http.Client, url, key string, decode bool) (time.Duration, page, error) {
	pg := page{total: -1}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, pg, err
	}
	req.Header.Set("X-API-Key", key)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, pg, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return 0, pg, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, pg, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	if decode {
		var v struct {
			Data json.RawMessage `json:"data"`
			Meta *struct {
				TotalCount int `json:"total_count"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return 0, pg, fmt.Errorf("GET %s: %w", url, err)
		}
		if v.Meta != nil {
			var items []json.RawMessage
			if err := json.Unmarshal(v.Data, &items); err != nil {
				return 0, pg, fmt.Errorf("GET %s: data: %w", url, err)
			}
			pg = page{total: v.Meta.TotalCount, items: len(items)}
		}
	}
	return d, pg, nil
}

// verify checks, before anything is timed, that each list agrees with the
// seeded data on its first page, its last page and the page past the end:
// meta.total_count may be computed from the page itself, so all three
// matter.
func verify(ctx context.Context, client *http.Client, base, key string, qs []query) error {
	for _, q := range qs {
		for _, v := range q.variants {
			u, err := neturl.Parse(v.path)
			if err != nil {
				return err
			}
			params := u.Query()
			perPage, _ := strconv.Atoi(params.Get("per_page"))
			if v.want < 0 || params.Has("page") || perPage < 1 {
				continue
			}
			last := max(1, (v.want+perPage-1)/perPage)
			for _, n := range []int{1, last, last + 1} {
				want := page{total: v.want, items: max(0, min(perPage, v.want-(n-1)*perPage))}
				params.Set("page", strconv.Itoa(n))
				u.RawQuery = params.Encode()
				_, got, err := get(ctx, client, base+u.String(), key, true)
				if err != nil {
					return err
				}
				if got != want {
					return fmt.Errorf("%s %s page %d: %d items, total_count %d; the seeded data has %d items, %d in all",
						q.name, v.label, n, got.items, got.total, want.items, want.total)
				}
			}
		}
	}
	return nil
}

// pct returns the p-quantile (nearest rank) of sorted latencies.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

// report prints the table; it returns true when a query misses the target.
func report(out io.Writer, res []*result) (failed bool) {
	fmt.Fprintf(out, "\n%-40s %13s %8s %8s %8s %8s %8s  %s\n", "query", "total_count", "p50 ms", "p90 ms", "p99 ms", "max ms", "cpu ms", "p99 < 20 ms")
	for _, r := range res {
		slices.Sort(r.lat)
		verdict := "yes"
		if pct(r.lat, 0.99) >= targetP99 {
			verdict, failed = "NO", true
		}
		fmt.Fprintf(out, "%-40s %13s %8s %8s %8s %8s %8s  %s\n", r.name, r.total,
			ms(pct(r.lat, 0.5)), ms(pct(r.lat, 0.9)), ms(pct(r.lat, 0.99)), ms(pct(r.lat, 1)), ms(r.cpu/time.Duration(max(1, len(r.lat)))), verdict)
		for _, v := range r.variants {
			if v.label == "" {
				continue
			}
			slices.Sort(v.lat)
			fmt.Fprintf(out, "  %-38s %13d %8s %8s %8s %8s %8s\n", v.label, v.total,
				ms(pct(v.lat, 0.5)), ms(pct(v.lat, 0.9)), ms(pct(v.lat, 0.99)), ms(pct(v.lat, 1)), ms(v.cpu/time.Duration(max(1, len(v.lat)))))
		}
	}
	return failed
}

// loadAvg is the 1-minute load average (Linux), to tell a quiet machine's
// figures from a busy one's.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// waitQuiet waits until the 1-minute load average is below limit, at most
// for patience: on a shared machine, other processes' work shows in the tail.
func waitQuiet(ctx context.Context, limit float64, patience time.Duration, out io.Writer) {
	deadline := time.Now().Add(patience)
	for {
		l, err := strconv.ParseFloat(loadAvg(), 64)
		if err != nil || l < limit {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(out, "load average still %.2f after %s; measuring anyway\n", l, patience)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// privateSchema creates a throw-away schema on the PostgreSQL server and
// returns a URL whose search_path selects it, so the benchmark never
// touches the database's own tables; drop removes it.
func privateSchema(ctx context.Context, base string) (string, func(), error) {
	return store.PrivateSchema(ctx, base, "parley_bench_lists_", neturl.Values{"application_name": {benchAppName}})
}
