package displaynames_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/displaynames"
	"github.com/parleyhq/parley/internal/whatsapp"
)

func TestCreateListGet(t *testing.T) {
	e := setup(t, false)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	r := e.Must(201, "POST", path(cfg.ID), body("  Acme Support  "))
	d := r.Data()
	id, _ := d["id"].(string)
	if id == "" || d["whatsapp_config_id"] != cfg.ID || d["requested_display_name"] != "Acme Support" ||
		d["previous_display_name"] != "Acme" || d["status"] != "submitted" || d["submitted_at"] == nil ||
		d["reviewed_at"] != nil || d["applied_at"] != nil || d["meta_error_code"] != nil || d["meta_error_message"] != nil {
		t.Fatalf("created: %s", r.Body)
	}
	for _, k := range []string{"meta_error_code", "meta_error_subcode", "meta_error_type", "meta_error_message", "reviewed_at", "applied_at"} {
		if _, ok := d[k]; !ok {
			t.Errorf("%s not rendered: %s", k, r.Body)
		}
	}
	if got := e.Must(200, "GET", path(cfg.ID)+"/"+id, nil).Data(); got["id"] != id || got["status"] != "submitted" {
		t.Fatalf("get: %v", got)
	}

	// Older requests, finished, to list: newest first, paginated.
	if _, err := e.DB.Write().Exec(context.Background(), `UPDATE display_name_requests SET status = 'declined' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	id2 := e.Must(201, "POST", path(cfg.ID), body("Acme Help")).Data()["id"].(string)
	l := e.Must(200, "GET", path(cfg.ID), nil)
	list := l.List()
	if len(list) != 2 || list[0]["id"] != id2 || list[1]["id"] != id {
		t.Fatalf("list order: %s", l.Body)
	}
	meta := l.JSON["meta"].(map[string]any)
	if meta["total_count"] != float64(2) || meta["page"] != float64(1) || meta["per_page"] != float64(20) || meta["total_pages"] != float64(1) {
		t.Fatalf("meta: %v", meta)
	}
	p2 := e.Must(200, "GET", path(cfg.ID)+"?page=2&per_page=1", nil)
	if l := p2.List(); len(l) != 1 || l[0]["id"] != id {
		t.Fatalf("page 2: %s", p2.Body)
	}
	if m := p2.JSON["meta"].(map[string]any); m["total_pages"] != float64(2) || m["per_page"] != float64(1) {
		t.Fatalf("page 2 meta: %v", m)
	}
	// per_page is clamped, a bad page falls back to 1.
	if m := e.Must(200, "GET", path(cfg.ID)+"?per_page=1000&page=x", nil).JSON["meta"].(map[string]any); m["per_page"] != float64(100) || m["page"] != float64(1) {
		t.Fatalf("clamped meta: %v", m)
	}

	// Another config of the project has its own (empty) history, and
	// does not find this config's requests.
	other := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "")
	if l := e.Must(200, "GET", path(other.ID), nil).List(); len(l) != 0 {
		t.Fatalf("other config lists %v", l)
	}
	e.Must(404, "GET", path(other.ID)+"/"+id, nil)
	e.Must(404, "GET", path(cfg.ID)+"/5b0e6a54-9d51-4a39-9f7e-0c2d1f4b8a11", nil)
	e.Must(404, "GET", path(cfg.ID)+"/not-a-uuid", nil)
	e.Must(404, "GET", path("5b0e6a54-9d51-4a39-9f7e-0c2d1f4b8a11"), nil)
	e.Must(404, "POST", path("not-a-uuid"), body("Acme Support"))

	// A config without a display name has a null previous_display_name;
	// bare attributes are accepted (Rails parameter wrapping).
	d = e.Must(201, "POST", path(other.ID), map[string]any{"new_display_name": "Other Name"}).Data()
	if v, ok := d["previous_display_name"]; !ok || v != nil || d["requested_display_name"] != "Other Name" {
		t.Fatalf("bare body: %v", d)
	}
}

func TestOneActiveRequest(t *testing.T) {
	e := setup(t, false)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	id := e.Must(201, "POST", path(cfg.ID), body("Acme Support")).Data()["id"].(string)
	r := e.Must(422, "POST", path(cfg.ID), body("Acme Help"))
	if r.JSON["error"] != "Validation failed" || !strings.Contains(fmt.Sprint(r.JSON["errors"]), "already submitted or pending review") {
		t.Fatalf("second active: %s", r.Body)
	}
	// pending_review is active too.
	if _, err := e.DB.Write().Exec(context.Background(), `UPDATE display_name_requests SET status = 'pending_review' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	e.Must(422, "POST", path(cfg.ID), body("Acme Help"))
	if n := len(e.Must(200, "GET", path(cfg.ID), nil).List()); n != 1 {
		t.Fatalf("%d requests after refusals", n)
	}
	// Another config is not blocked.
	other := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "")
	e.Must(201, "POST", path(other.ID), body("Acme Help"))

	// A config that changed number leaves its active request behind: it
	// is cancelled and the new one accepted.
	if _, err := e.DB.Write().Exec(context.Background(), `UPDATE whatsapp_configs SET phone_number_id = '999000111' WHERE id = ?`, cfg.ID); err != nil {
		t.Fatal(err)
	}
	e.Must(201, "POST", path(cfg.ID), body("Acme Help"))
	if got := e.Must(200, "GET", path(cfg.ID)+"/"+id, nil).Data(); got["status"] != "cancelled" {
		t.Fatalf("left-behind request: %v", got)
	}
	e.Must(422, "POST", path(cfg.ID), body("Acme Again"))

	// A request still in review past the 30-day horizon (its poll lost)
	// does not block the config for good.
	stale := e.Must(200, "GET", path(other.ID), nil).List()[0]["id"].(string)
	if _, err := e.DB.Write().Exec(context.Background(), `UPDATE display_name_requests SET submitted_at = ? WHERE id = ?`,
		time.Now().Add(-31*24*time.Hour).UnixMicro(), stale); err != nil {
		t.Fatal(err)
	}
	e.Must(201, "POST", path(other.ID), body("Other Name"))
	if got := e.Must(200, "GET", path(other.ID)+"/"+stale, nil).Data(); got["status"] != "no_review" {
		t.Fatalf("stale request: %v", got)
	}
}

func TestTenancy(t *testing.T) {
	e := setup(t, false)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	id := e.Must(201, "POST", path(cfg.ID), body("Acme Support")).Data()["id"].(string)
	for _, c := range []struct{ method, path string }{
		{"GET", path(cfg.ID)},
		{"POST", path(cfg.ID)},
		{"GET", path(cfg.ID) + "/" + id},
	} {
		var b any
		if c.method == "POST" {
			b = body("Intruder Name")
		}
		if r := e.DoKey(e.Key2, c.method, c.path, b); r.Status != 404 {
			t.Errorf("other project %s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	// The other project's own config does not reach this request either.
	cfg2 := prodConfig(t, e.Bundle, e.Project2, "EAAG-token", "")
	if r := e.DoKey(e.Key2, "GET", path(cfg2.ID)+"/"+id, nil); r.Status != 404 {
		t.Errorf("other project, own config: %d", r.Status)
	}
	if n := len(e.Must(200, "GET", path(cfg.ID), nil).List()); n != 1 {
		t.Fatalf("%d requests", n)
	}
	if r := e.DoKey("", "GET", path(cfg.ID), nil); r.Status != 401 {
		t.Fatalf("no key: %d", r.Status)
	}
}

func TestValidation(t *testing.T) {
	e := setup(t, false)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	cases := []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"empty body", nil, 422, "can't be blank"},
		{"empty object", map[string]any{}, 422, "can't be blank"},
		{"empty root", map[string]any{"display_name_request": map[string]any{}}, 422, "can't be blank"},
		{"null name", body2(nil), 422, "can't be blank"},
		{"blank", body("   "), 422, "can't be blank"},
		{"too short", body("ab"), 422, "too short"},
		{"too long", body(strings.Repeat("n", 513)), 422, "too long"},
		{"huge", body(strings.Repeat("n", 100_000)), 422, "too long"},
		{"line break", body("Acme\nSupport"), 422, "control characters"},
		{"object", body2(map[string]any{"a": 1}), 422, "must be a string"},
		{"array", body2([]any{"Acme Support"}), 422, "must be a string"},
		{"boolean", body2(true), 422, "must be a string"},
		{"root not an object", map[string]any{"display_name_request": "Acme"}, 422, "must be an object"},
		{"NUL", `{"display_name_request":{"new_display_name":"Acme\u0000Support"}}`, 422, "null characters"},
		{"malformed JSON", `{"display_name_request":`, 400, ""},
		{"JSON array", `[1,2]`, 400, ""},
	}
	for _, c := range cases {
		r := e.Do("POST", path(cfg.ID), c.body)
		if r.Status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, r.Status, c.status, r.Body)
			continue
		}
		if _, ok := r.JSON["error"]; !ok {
			t.Errorf("%s: not Kapso's error shape: %s", c.name, r.Body)
		}
		if c.msg != "" && !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("%s: %s, want %q", c.name, r.Body, c.msg)
		}
	}
	if n := len(e.Must(200, "GET", path(cfg.ID), nil).List()); n != 0 {
		t.Fatalf("refused bodies stored %d requests", n)
	}
	// A number is read as a string, as Rails casts it.
	if d := e.Must(201, "POST", path(cfg.ID), body2(12345)).Data(); d["requested_display_name"] != "12345" {
		t.Fatalf("number: %v", d)
	}
	// A production config without an access token cannot submit.
	bare := prodConfig(t, e.Bundle, e.Project, "", "")
	if r := e.Must(422, "POST", path(bare.ID), body("Acme Support")); !strings.Contains(string(r.Body), "Access token") {
		t.Fatalf("no token: %s", r.Body)
	}
	if countJobs(t, e.Bundle) != 1 {
		t.Fatalf("jobs: %d", countJobs(t, e.Bundle))
	}
}

func body2(v any) map[string]any {
	return map[string]any{"display_name_request": map[string]any{"new_display_name": v}}
}

func TestProductionFlowApplied(t *testing.T) {
	e := setup(t, true)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	var polls atomic.Int32
	e.g.setReply(func(c graphCall) (int, string) {
		if c.Method == "GET" {
			if polls.Add(1) < 3 {
				return 200, `{"new_display_name":"Acme Support","new_name_status":"PENDING_REVIEW","verified_name":"Acme","name_status":"APPROVED","id":"` + cfg.PhoneNumberID + `"}`
			}
			return 200, `{"new_display_name":"Acme Support","new_name_status":"APPROVED","verified_name":"Acme","name_status":"APPROVED","id":"` + cfg.PhoneNumberID + `"}`
		}
		return 200, `{"success":true}`
	})
	id := e.Must(201, "POST", path(cfg.ID), body("Acme Support")).Data()["id"].(string)
	waitStatus(t, e.Bundle, cfg.ID, id, "pending_review")
	d := waitStatus(t, e.Bundle, cfg.ID, id, "applied")
	if d["reviewed_at"] == nil || d["applied_at"] == nil || d["meta_error_code"] != nil {
		t.Fatalf("applied: %v", d)
	}
	if c := e.Must(200, "GET", "/whatsapp_configs/"+cfg.ID, nil).Data(); c["display_name"] != "Acme Support" {
		t.Fatalf("config display_name: %v", c["display_name"])
	}
	calls := e.g.requests()
	if len(calls) < 4 {
		t.Fatalf("graph calls: %+v", calls)
	}
	sub := calls[0]
	if sub.Method != "POST" || sub.Path != "/"+cfg.PhoneNumberID || sub.Query["new_display_name"] != "Acme Support" || sub.Token != "EAAG-token" {
		t.Fatalf("submission: %+v", sub)
	}
	for _, c := range calls[1:] {
		if c.Method != "GET" || c.Path != "/"+cfg.PhoneNumberID || !strings.Contains(c.Query["fields"], "new_name_status") ||
			!strings.Contains(c.Query["fields"], "new_display_name") || c.Token != "EAAG-token" {
			t.Fatalf("poll: %+v", c)
		}
	}
	waitJobs(t, e, 0)
	// The config is free for a new request.
	e.Must(201, "POST", path(cfg.ID), body("Acme Support Team"))
}

func TestProductionFlowMetaError(t *testing.T) {
	e := setup(t, true)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	e.g.setReply(func(c graphCall) (int, string) {
		return 400, `{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"error_subcode":2388135,` +
			`"error_data":{"messaging_product":"whatsapp","details":"Display name does not match business verification"},"fbtrace_id":"AbC"}}`
	})
	id := e.Must(201, "POST", path(cfg.ID), body("Acme Support")).Data()["id"].(string)
	d := waitStatus(t, e.Bundle, cfg.ID, id, "failed")
	if d["meta_error_code"] != float64(100) || d["meta_error_subcode"] != float64(2388135) || d["meta_error_type"] != "OAuthException" ||
		!strings.Contains(fmt.Sprint(d["meta_error_message"]), "Display name does not match") || d["reviewed_at"] != nil || d["applied_at"] != nil {
		t.Fatalf("failed: %v", d)
	}
	if n := len(e.g.requests()); n != 1 {
		t.Fatalf("a permanent error was retried: %d calls", n)
	}
	if c := e.Must(200, "GET", "/whatsapp_configs/"+cfg.ID, nil).Data(); c["display_name"] != "Acme" {
		t.Fatalf("config display_name changed: %v", c["display_name"])
	}
	waitJobs(t, e, 0)
	// A failed request is not active.
	e.Must(201, "POST", path(cfg.ID), body("Acme Support"))
}

func TestProductionFlowTransientErrorRetried(t *testing.T) {
	e := setup(t, true)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	var posts atomic.Int32
	e.g.setReply(func(c graphCall) (int, string) {
		if c.Method == "POST" {
			if posts.Add(1) == 1 {
				return 500, `{"error":{"message":"(#2) Service temporarily unavailable","type":"OAuthException","code":2,"is_transient":true}}`
			}
			return 200, `{"success":true}`
		}
		return 200, `{"new_display_name":"Acme Support","new_name_status":"DECLINED","verified_name":"Acme","id":"` + cfg.PhoneNumberID + `"}`
	})
	id := e.Must(201, "POST", path(cfg.ID), body("Acme Support")).Data()["id"].(string)
	d := waitStatus(t, e.Bundle, cfg.ID, id, "declined")
	if d["reviewed_at"] == nil || d["applied_at"] != nil || d["meta_error_code"] != nil {
		t.Fatalf("declined: %v", d)
	}
	if n := posts.Load(); n != 2 {
		t.Fatalf("submissions: %d", n)
	}
	if c := e.Must(200, "GET", "/whatsapp_configs/"+cfg.ID, nil).Data(); c["display_name"] != "Acme" {
		t.Fatalf("config display_name changed: %v", c["display_name"])
	}
}

func TestReviewGivenUpAfterHorizon(t *testing.T) {
	e := setup(t, true)
	displaynames.SetPolling(t, 20*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	e.g.setReply(func(c graphCall) (int, string) {
		if c.Method == "GET" {
			// A failing look is retried at the next poll.
			return 500, `{"error":{"message":"(#1) An unknown error occurred","type":"OAuthException","code":1}}`
		}
		return 200, `{"success":true}`
	})
	id := e.Must(201, "POST", path(cfg.ID), body("Acme Support")).Data()["id"].(string)
	d := waitStatus(t, e.Bundle, cfg.ID, id, "no_review")
	if d["reviewed_at"] != nil || d["applied_at"] != nil {
		t.Fatalf("no_review: %v", d)
	}
	waitJobs(t, e, 0)
}

func TestConfigChangedNumberDuringReview(t *testing.T) {
	e := setup(t, true)
	cfg := prodConfig(t, e.Bundle, e.Project, "EAAG-token", "Acme")
	e.g.setReply(func(c graphCall) (int, string) {
		if c.Method == "GET" {
			return 200, `{"new_display_name":"Acme Support","new_name_status":"PENDING_REVIEW","id":"` + cfg.PhoneNumberID + `"}`
		}
		return 200, `{"success":true}`
	})
	id := e.Must(201, "POST", path(cfg.ID), body("Acme Support")).Data()["id"].(string)
	waitStatus(t, e.Bundle, cfg.ID, id, "pending_review")
	if _, err := e.DB.Write().Exec(context.Background(), `UPDATE whatsapp_configs SET phone_number_id = '999000222' WHERE id = ?`, cfg.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e.Bundle, cfg.ID, id, "cancelled")
	waitJobs(t, e, 0)
}

func TestSandboxFlow(t *testing.T) {
	e := setup(t, true)
	cfgID := sandboxConfig(t, e.Bundle)
	before := e.Must(200, "GET", "/whatsapp_configs/"+cfgID, nil).Data()["display_name"]
	r := e.Must(201, "POST", path(cfgID), body("Sandbox Shop"))
	d := r.Data()
	if d["status"] != "submitted" || d["previous_display_name"] != before {
		t.Fatalf("created: %s", r.Body)
	}
	d = waitStatus(t, e.Bundle, cfgID, d["id"].(string), "applied")
	if d["reviewed_at"] == nil || d["applied_at"] == nil {
		t.Fatalf("applied: %v", d)
	}
	if c := e.Must(200, "GET", "/whatsapp_configs/"+cfgID, nil).Data(); c["display_name"] != "Sandbox Shop" {
		t.Fatalf("config display_name: %v", c["display_name"])
	}
	// The simulator's phone number node shows the new name.
	var pnid string
	if err := e.DB.Read().QueryRow(context.Background(), `SELECT phone_number_id FROM whatsapp_configs WHERE id = ?`, cfgID).Scan(&pnid); err != nil {
		t.Fatal(err)
	}
	pn, err := (&whatsapp.Client{BaseURL: e.Srv.URL + "/sandbox/graph"}).GetPhoneNumber(context.Background(), "sandbox", pnid)
	if err != nil || pn.VerifiedName != "Sandbox Shop" {
		t.Fatalf("simulator phone number: %+v %v", pn, err)
	}
	// Names starting with sandbox_reject are declined.
	id := e.Must(201, "POST", path(cfgID), body("sandbox_reject me")).Data()["id"].(string)
	if d := waitStatus(t, e.Bundle, cfgID, id, "declined"); d["reviewed_at"] == nil {
		t.Fatalf("declined: %v", d)
	}
	if c := e.Must(200, "GET", "/whatsapp_configs/"+cfgID, nil).Data(); c["display_name"] != "Sandbox Shop" {
		t.Fatalf("config display_name after decline: %v", c["display_name"])
	}
	if n := len(e.g.requests()); n != 0 {
		t.Fatalf("sandbox reached the Graph API: %d calls", n)
	}
	waitJobs(t, e, 0)
}

func TestOutcome(t *testing.T) {
	cases := []struct {
		newName, newStatus, verified, want string
	}{
		{"Acme Support", "PENDING_REVIEW", "Acme", ""},
		{"Acme Support", "APPROVED", "Acme", displaynames.StatusApplied},
		{"Acme Support", "AVAILABLE_WITHOUT_REVIEW", "Acme", displaynames.StatusApplied},
		{"acme support ", "approved", "Acme", displaynames.StatusApplied},
		{"Acme Support", "DECLINED", "Acme", displaynames.StatusDeclined},
		{"Acme Support", "EXPIRED", "Acme", displaynames.StatusExpired},
		{"Acme Support", "DEFERRED", "Acme", displaynames.StatusDeferred},
		{"Acme Support", "SOMETHING_NEW", "Acme", ""},
		{"", "", "Acme Support", displaynames.StatusApplied},
		{"", "NONE", "Acme Support", displaynames.StatusApplied},
		{"", "NONE", "Acme", ""},
		{"Other Name", "PENDING_REVIEW", "Acme", displaynames.StatusCancelled},
	}
	for _, c := range cases {
		got := displaynames.Outcome(displaynames.NewRequest("Acme Support"),
			&whatsapp.DisplayNameStatus{NewDisplayName: c.newName, NewNameStatus: c.newStatus, VerifiedName: c.verified})
		if got != c.want {
			t.Errorf("%+v: %q, want %q", c, got, c.want)
		}
	}
}

// waitJobs waits until n display-name jobs are left.
func waitJobs(t *testing.T, e *env, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if countJobs(t, e.Bundle) == n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d display-name jobs left, want %d", countJobs(t, e.Bundle), n)
}
