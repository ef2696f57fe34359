package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestScaleOutTwoProcesses runs two `parley serve` processes on one
// PostgreSQL schema. Events made through either process reach each webhook
// exactly once (counted by X-Idempotency-Key at two receivers, and checked
// against the delivery log); then one process is killed with SIGKILL under
// load, and every event of an acknowledged write still arrives.
//
// SQLite allows one process per database, so the test needs PostgreSQL; CI
// runs the suite on both engines, and skips it on SQLite.
func TestScaleOutTwoProcesses(t *testing.T) {
	if os.Getenv(storetest.EnvPostgres) == "" {
		t.Skip("scale-out needs PostgreSQL: set " + storetest.EnvPostgres)
	}
	if testing.Short() {
		t.Skip("builds the binary and runs two processes")
	}
	t.Parallel()
	key := "pk_e2e_" + randomHex(16)
	env := map[string]string{
		"PARLEY_DATABASE_URL":          storetest.URL(t),
		"PARLEY_SECRET_KEY":            secrets.GenerateKey(), // both processes read each other's secrets
		"PARLEY_BOOTSTRAP_API_KEY":     key,
		"PARLEY_WEBHOOK_ALLOW_PRIVATE": "true",
		"PARLEY_SANDBOX_STATUS_DELAY":  "50ms",
		"PARLEY_WEBHOOK_TIMEOUT":       "1s", // a dead process's leases end 16 s later
		"PARLEY_RATE_LIMIT":            "0",
		"PARLEY_LOG_LEVEL":             "warn",
	}
	withDir := func(dir string) map[string]string {
		e := maps.Clone(env)
		e["PARLEY_DATA_DIR"] = dir
		return e
	}
	a := startProc(t, "process A", withDir(t.TempDir()))
	b := startProc(t, "process B", withDir(t.TempDir()))
	procs := []*proc{a, b}
	ca := &client{t: t, base: a.URL + "/api/v1", key: key}
	cb := &client{t: t, base: b.URL + "/api/v1", key: key}
	clients := []*client{ca, cb}

	cfgs := cb.must(200, "GET", "/whatsapp_configs", nil).list()
	if len(cfgs) != 1 {
		t.Fatalf("two processes bootstrapped %d configs, want 1", len(cfgs))
	}
	cfgID := cfgs[0]["id"].(string)
	events := []string{"whatsapp.message.received", "whatsapp.message.sent", "whatsapp.message.delivered",
		"whatsapp.message.read", "whatsapp.conversation.created"}
	var rcvs []*receiver
	var webhooks []string
	for i := range 2 {
		secret := "whsec_" + randomHex(16)
		r := newReceiver(t, secret, nil)
		rcvs = append(rcvs, r)
		wh := clients[i].must(201, "POST", "/whatsapp_configs/"+cfgID+"/whatsapp_webhooks", map[string]any{"whatsapp_webhook": map[string]any{
			"url": r.URL, "secret_key": secret, "events": events}}).data()
		webhooks = append(webhooks, wh["id"].(string))
	}

	// Phase 1: both processes up. Customers write through either process,
	// the team answers through either; jobs and deliveries are claimed by
	// whichever process gets there first.
	inbound := func(p *proc, from, text string) (string, error) {
		body, _ := json.Marshal(map[string]any{"from": from, "type": "text", "text": map[string]any{"body": text}})
		req, _ := http.NewRequest("POST", p.URL+"/api/v1/whatsapp_configs/"+cfgID+"/sandbox_messages", bytes.NewReader(body))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		res, err := loadClient.Do(req)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		var out struct {
			Data struct {
				WAMID string `json:"whatsapp_message_id"`
			} `json:"data"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 202 {
			return "", fmt.Errorf("status %d: %v", res.StatusCode, err)
		}
		return out.Data.WAMID, nil
	}
	const customers1, perCustomer = 12, 3
	var wamids1 []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range customers1 {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := range perCustomer {
				w, err := inbound(procs[(i+j)%2], fmt.Sprintf("54911%08d", i), fmt.Sprintf("m%d", j))
				if err != nil {
					t.Errorf("inbound: %v", err)
					return
				}
				mu.Lock()
				wamids1 = append(wamids1, w)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	convs := ca.must(200, "GET", "/whatsapp_conversations?per_page=100&q[whatsapp_config_id_eq]="+cfgID, nil).list()
	if len(convs) != customers1 {
		t.Fatalf("%d conversations, want %d", len(convs), customers1)
	}
	var replies []string
	for i, cv := range convs[:6] {
		m := clients[i%2].must(201, "POST", "/whatsapp_conversations/"+cv["id"].(string)+"/whatsapp_messages",
			map[string]any{"message": map[string]any{"message_type": "text", "content": fmt.Sprintf("reply %d", i)}}).data()
		replies = append(replies, m["id"].(string))
	}
	received := func(hs []hook) map[string]int {
		out := map[string]int{}
		for _, h := range filter(hs, "whatsapp.message.received") {
			out[gets(h.Payload, "message", "id")]++
		}
		return out
	}
	for i, r := range rcvs {
		r.waitFor(t, fmt.Sprintf("phase 1 at receiver %d", i), 30*time.Second, func(hs []hook) bool {
			got := received(hs)
			for _, w := range wamids1 {
				if got[w] == 0 {
					return false
				}
			}
			for _, id := range replies {
				if countMsg(hs, "whatsapp.message.read", id) == 0 {
					return false
				}
			}
			return len(filter(hs, "whatsapp.conversation.created")) >= customers1
		})
	}
	// Every delivery of the log arrived exactly once, nothing else did.
	for i, r := range rcvs {
		logKeys := deliveryLog(t, ca, cfgID, webhooks[i], 45*time.Second)
		hs := r.all()
		seen := map[string]int{}
		for _, h := range hs {
			if !h.SigOK {
				t.Errorf("receiver %d: bad signature on %s", i, h.Event)
			}
			seen[h.Key]++
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("receiver %d: X-Idempotency-Key %s delivered %d times", i, k, n)
			}
			if !logKeys[k] {
				t.Errorf("receiver %d: key %s is not in the delivery log", i, k)
			}
		}
		if len(seen) != len(logKeys) {
			t.Errorf("receiver %d: %d keys received, %d deliveries logged", i, len(seen), len(logKeys))
		}
		for w, n := range received(hs) {
			if n != 1 {
				t.Errorf("receiver %d: message %s received %d times", i, w, n)
			}
		}
		if n := len(filter(hs, "whatsapp.conversation.created")); n != customers1 {
			t.Errorf("receiver %d: %d conversation.created, want %d", i, n, customers1)
		}
		for _, id := range replies {
			if countMsg(hs, "whatsapp.message.sent", id) != 1 || countMsg(hs, "whatsapp.message.read", id) != 1 {
				t.Errorf("receiver %d: reply %s sent %d times, read %d times", i, id,
					countMsg(hs, "whatsapp.message.sent", id), countMsg(hs, "whatsapp.message.read", id))
			}
		}
		t.Logf("phase 1, receiver %d: %d deliveries, each exactly once", i, len(hs))
	}
	if t.Failed() {
		t.FailNow()
	}
	before := []int{len(rcvs[0].all()), len(rcvs[1].all())}

	// Phase 2: writers hit both processes; B is killed without warning
	// mid-load and the writers carry on against A. Every acknowledged
	// message must reach both receivers. The receivers are slow now, so B
	// dies with deliveries in flight, which A takes over when their leases
	// end.
	for _, r := range rcvs {
		r.pause.Store(int64(40 * time.Millisecond))
	}
	var acked []string
	var stop, bDead atomic.Bool
	var errsB atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 400; i++ {
				p := procs[(w+i)%2]
				if bDead.Load() {
					p = a
				}
				wamid, err := inbound(p, fmt.Sprintf("54922%04d%04d", w, i%10), fmt.Sprintf("load %d/%d", w, i))
				if err != nil {
					if p == b {
						errsB.Add(1)
						continue
					}
					t.Errorf("writer %d: process A: %v", w, err)
					return
				}
				mu.Lock()
				acked = append(acked, wamid)
				mu.Unlock()
			}
		}(w)
	}
	ackedSoFar := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	eventually(t, "load to build up", 20*time.Second, func() bool { return ackedSoFar() >= 60 })
	b.kill(t)
	bDead.Store(true)
	killedAt := time.Now()
	atKill := ackedSoFar()
	eventually(t, "load to go on against A", 20*time.Second, func() bool { return ackedSoFar() >= atKill+60 })
	stop.Store(true)
	wg.Wait()
	t.Logf("phase 2: %d writes acknowledged (%d before SIGKILL), %d failed against the killed process", len(acked), atKill, errsB.Load())

	for i, r := range rcvs {
		r.waitFor(t, fmt.Sprintf("every acknowledged message at receiver %d", i), 50*time.Second, func(hs []hook) bool {
			got := received(hs)
			for _, w := range acked {
				if got[w] == 0 {
					return false
				}
			}
			return true
		})
		hs := r.all()
		keys := map[string]int{}
		for _, h := range hs {
			keys[h.Key]++
		}
		dups := 0
		for _, n := range keys {
			dups += n - 1
		}
		// A delivery in flight when B died is sent again by A when its
		// lease ends, with the same key: at-least-once, so duplicates are
		// allowed here, but never a second event for one message.
		for w, n := range received(hs) {
			if n > 1 && keysOf(hs, w) > 1 {
				t.Errorf("receiver %d: message %s received under %d different keys", i, w, keysOf(hs, w))
			}
		}
		// The log agrees: every delivery succeeded and reached the receiver;
		// each conversation was created once.
		logKeys := deliveryLog(t, ca, cfgID, webhooks[i], 45*time.Second)
		for k := range logKeys {
			if keys[k] == 0 {
				t.Errorf("receiver %d: logged delivery %s never arrived", i, k)
			}
		}
		for k := range keys {
			if !logKeys[k] {
				t.Errorf("receiver %d: key %s is not in the delivery log", i, k)
			}
		}
		created := map[string]map[string]bool{}
		for _, h := range filter(hs, "whatsapp.conversation.created") {
			if created[convID(h)] == nil {
				created[convID(h)] = map[string]bool{}
			}
			created[convID(h)][h.Key] = true
		}
		for cv, ks := range created {
			if len(ks) != 1 {
				t.Errorf("receiver %d: conversation %s created under %d keys", i, cv, len(ks))
			}
		}
		t.Logf("phase 2, receiver %d: %d deliveries after phase 1, %d repeated keys (re-sent after the SIGKILL), all %d acknowledged messages arrived within %s of the kill",
			i, len(hs)-before[i], dups, len(acked), time.Since(killedAt).Round(100*time.Millisecond))
	}
}

// loadClient is the HTTP client of the load generators: short timeouts, so
// a killed process fails fast.
var loadClient = &http.Client{Timeout: 5 * time.Second}

// keysOf counts the distinct idempotency keys of a message's received event.
func keysOf(hs []hook, wamid string) int {
	keys := map[string]bool{}
	for _, h := range filter(hs, "whatsapp.message.received") {
		if gets(h.Payload, "message", "id") == wamid {
			keys[h.Key] = true
		}
	}
	return len(keys)
}

// deliveryLog waits until every delivery of a webhook has succeeded and
// returns their idempotency keys.
func deliveryLog(t *testing.T, c *client, cfgID, webhookID string, limit time.Duration) map[string]bool {
	t.Helper()
	var keys map[string]bool
	eventually(t, "every logged delivery to succeed", limit, func() bool {
		keys = map[string]bool{}
		done := true
		for page := 1; ; page++ {
			l := c.must(200, "GET", fmt.Sprintf("/whatsapp_configs/%s/whatsapp_webhooks/%s/deliveries?per_page=100&page=%d", cfgID, webhookID, page), nil).list()
			for _, d := range l {
				keys[d["idempotency_key"].(string)] = true
				if d["status"] != "succeeded" {
					done = false
				}
			}
			if len(l) < 100 {
				break
			}
		}
		return done
	})
	return keys
}
