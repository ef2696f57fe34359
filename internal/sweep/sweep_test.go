// Package sweep_test sends bad input to every operation of Parley's OpenAPI
// document and checks that the API answers with a documented 4xx in Kapso's
// error shape, never a 5xx, and that no refused request changes stored
// data. It holds tests only.
//
//	go test ./internal/sweep/                  # SQLite
//	PARLEY_TEST_POSTGRES_URL=... go test ./internal/sweep/
//	SWEEP_ALL=1 go test ./internal/sweep/      # list every failure, not the first 200
//
// The battery is built from the document (see battery_test.go): a new
// operation without a seeded resource for its path parameters or a base
// body makes the test fail until the sweep knows it.
package sweep_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/openapi"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// failure is one request whose answer broke a rule.
type failure struct {
	route   string
	c       *tcase
	status  int
	resp    string
	problem string
}

func (f failure) String() string {
	body := ""
	if f.c.hasBody {
		body = " body=" + clip(string(f.c.body), 240)
	}
	return fmt.Sprintf("%s [%s: %s]\n    request:  %s /api/v1%s%s\n    response: %d %s\n    problem:  %s",
		f.route, f.c.kind, f.c.label, f.c.method, clip(f.c.url, 200), body, f.status, clip(f.resp, 300), f.problem)
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.ReplaceAll(s, "\x00", `\0`)
	if len(s) > n {
		return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

// TestSweep runs the battery of every documented operation. Operations are
// grouped by their first path segment and each group runs on a fresh
// database seeded the same way, so what a group's successful requests
// store never slows the next group's snapshots.
func TestSweep(t *testing.T) {
	start := time.Now()
	ops := operations(t)
	var groups []string
	byGroup := map[string][]*opInfo{}
	for _, o := range ops {
		g := strings.SplitN(strings.TrimPrefix(o.path, "/"), "/", 2)[0]
		if smallGroups[g] {
			g = "platform"
		}
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], o)
	}
	var total stats
	for _, g := range groups {
		t.Run(g, func(t *testing.T) {
			st := sweepGroup(t, byGroup[g])
			total.add(st)
		})
	}
	t.Logf("%d operations, %d requests, %d failures; statuses %v; send %v, snapshots %v, seeding %v; total %v",
		len(ops), total.requests, total.failures, total.statuses, total.send.Round(time.Millisecond),
		total.snap.Round(time.Millisecond), total.seed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// smallGroups share one database: they store little.
var smallGroups = map[string]bool{"customers": true, "openapi.json": true, "projects": true, "users": true, "webhooks": true, "whatsapp_calls": true}

type stats struct {
	requests, failures int
	statuses           map[int]int
	send, snap, seed   time.Duration
}

func (s *stats) add(o stats) {
	if s.statuses == nil {
		s.statuses = map[int]int{}
	}
	s.requests += o.requests
	s.failures += o.failures
	for k, v := range o.statuses {
		s.statuses[k] += v
	}
	s.send += o.send
	s.snap += o.snap
	s.seed += o.seed
}

// setup starts the API for a group: no rate limit (the battery is
// thousands of requests on one key) and a fake Graph API on loopback.
func setup(t *testing.T) *apitest.Bundle {
	graph := fakeGraph(t)
	return apitest.Setup(t, func(c *config.Config, d *api.Deps) {
		d.Config.RateLimitPerMinute = 0
		d.Graph = func(*parley.WhatsAppConfig) *whatsapp.Client {
			return &whatsapp.Client{BaseURL: graph.URL, Version: "v24.0", MessagesPerSecond: -1, Retry: whatsapp.RetryPolicy{MaxAttempts: 1}}
		}
	})
}

var caseSeq int

func sweepGroup(t *testing.T, ops []*opInfo) stats {
	st := stats{statuses: map[int]int{}}
	t0 := time.Now()
	b := setup(t)
	own, other := seed(t, b, 1), seed(t, b, 2)
	st.seed = time.Since(t0)

	bld := &builder{t: t, own: own, other: other, seq: &caseSeq}
	var all []tcase
	for _, o := range ops {
		all = append(all, bld.cases(o)...)
	}
	st.requests = len(all)

	snap := newSnapshotter(t, b.DB)
	cur := snap.take(t)
	curVersion := snap.version(t)
	client := &http.Client{Timeout: 30 * time.Second}
	validator, kapso := openapi.MustValidator(), openapi.MustKapsoValidator()
	var fails []failure
	for i := range all {
		c := &all[i]
		t1 := time.Now()
		status, hdr, resp, err := send(client, b.Srv.URL, c)
		st.send += time.Since(t1)
		if err != nil {
			fails = append(fails, failure{route: c.op.route(), c: c, problem: "transport error: " + err.Error()})
			cur, curVersion = snap.take(t), snap.version(t)
			continue
		}
		st.statuses[status]++
		var problems []string
		if p := checkAnswer(c, status, hdr, resp, own, other); p != "" {
			problems = append(problems, p)
		}
		if req, err := http.NewRequest(c.method, b.Srv.URL+"/api/v1"+c.url, nil); err == nil {
			if err := validator.ValidateResponse(req, status, hdr, resp); err != nil {
				problems = append(problems, "breaks the OpenAPI document: "+clip(err.Error(), 400))
			}
			// And Kapso's own documents, as apitest.ValidateKapso does.
			if route, err := validator.FindRoute(req); err == nil && !route.Extension {
				err := kapso.ValidateResponse(req, status, hdr, resp)
				if err != nil && !errors.Is(err, openapi.ErrStatusNotKapso) {
					problems = append(problems, "breaks Kapso's documents: "+clip(err.Error(), 400))
				}
			}
		}
		t2 := time.Now()
		if v := snap.version(t); v == "" || v != curVersion {
			after := snap.take(t)
			if status >= 400 {
				if d := cur.diff(after); d != "" {
					problems = append(problems, "a refused request changed stored data:\n    "+d)
				}
			}
			cur, curVersion = after, v
		}
		st.snap += time.Since(t2)
		for _, p := range problems {
			fails = append(fails, failure{route: c.op.route(), c: c, status: status, resp: string(resp), problem: p})
		}
	}
	st.failures = len(fails)
	report(t, fails, len(all))
	t.Logf("%s: %d requests, %d failures; send %v, snapshots %v, seeding %v", b.DB.Engine, len(all), len(fails),
		st.send.Round(time.Millisecond), st.snap.Round(time.Millisecond), st.seed.Round(time.Millisecond))
	return st
}

// report lists every failure (up to a cap unless SWEEP_ALL is set) and a
// count per route.
func report(t *testing.T, fails []failure, requests int) {
	t.Helper()
	if len(fails) == 0 {
		return
	}
	perRoute := map[string]int{}
	for _, f := range fails {
		perRoute[f.route]++
	}
	routes := make([]string, 0, len(perRoute))
	for r := range perRoute {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	limit := 200
	if os.Getenv("SWEEP_ALL") != "" {
		limit = len(fails)
	}
	for i, f := range fails {
		if i >= limit {
			t.Errorf("… and %d more failures (SWEEP_ALL=1 lists them all)", len(fails)-limit)
			break
		}
		t.Errorf("%s", f)
	}
	var sum strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&sum, "\n  %4d  %s", perRoute[r], r)
	}
	t.Errorf("%d failures in %d requests; per route:%s", len(fails), requests, sum.String())
}

// send performs c and returns the answer.
func send(client *http.Client, base string, c *tcase) (int, http.Header, []byte, error) {
	var rd io.Reader
	if c.hasBody {
		rd = bytes.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, base+"/api/v1"+c.url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if c.key != "-" {
		req.Header.Set("X-API-Key", c.key)
	}
	if c.hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, body, err
}

// checkAnswer applies the rules every answer follows, then c's own
// expectation. It returns "" when the answer is right.
func checkAnswer(c *tcase, status int, hdr http.Header, body []byte, own, other *world) string {
	if status >= 500 {
		return fmt.Sprintf("server error %d", status)
	}
	var m map[string]any
	if status >= 400 {
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Sprintf("error answer is not a JSON object: %v", err)
		}
		_, e1 := m["error"]
		_, e2 := m["errors"]
		if !e1 && !e2 {
			return `error answer has neither "error" nor "errors"`
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			return "error answer has Content-Type " + ct
		}
	}
	ok2xx := status >= 200 && status < 300
	switch c.want {
	case want400:
		if status != 400 {
			return fmt.Sprintf("want 400 for malformed input, got %d", status)
		}
	case want401:
		if status != 401 {
			return fmt.Sprintf("want 401 without a valid key, got %d", status)
		}
	case want404:
		if status != 404 {
			return fmt.Sprintf("want 404 for an unknown or foreign id, got %d", status)
		}
	case want413:
		if status != 413 {
			return fmt.Sprintf("want 413 for a body over the limit, got %d", status)
		}
	case wantReject:
		if ok2xx || status < 400 {
			return fmt.Sprintf("invalid input accepted with %d", status)
		}
	case wantNoLeak:
		if ok2xx && strings.Contains(string(body), other.project) {
			return "other project's rows in the answer"
		}
		if ok2xx {
			if err := json.Unmarshal(body, &m); err == nil {
				if list, ok := m["data"].([]any); ok && len(list) > 0 {
					return fmt.Sprintf("filter by another project's id matched %d rows", len(list))
				}
			}
		}
	}
	if ok2xx && strings.Contains(string(body), other.project) {
		return "other project's id in a success answer"
	}
	return ""
}
