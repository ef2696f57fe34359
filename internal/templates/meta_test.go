package templates_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/templates"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// createFromFixture creates a draft whose fields are those of a Meta
// creation request fixture (Kapso's field names, upper-case enums).
func createFromFixture(t *testing.T, b *apitest.Bundle, name string, extra map[string]any) (map[string]any, map[string]any) {
	t.Helper()
	fx := upperEnums(fixture(t, name)).(map[string]any)
	body := map[string]any{"template": map[string]any{
		"name": fx["name"], "language_code": fx["language"], "category": fx["category"],
		"parameter_format": fx["parameter_format"], "components": fx["components"],
	}}
	for k, v := range extra {
		body[k] = v
	}
	return b.Must(201, "POST", "/whatsapp_templates", body).Data(), fx
}

func TestSubmit(t *testing.T) {
	b, fg := setup(t)
	cfg := newConfig(t, b, configOpts{waba: "102290129340398", token: "secret-token"})
	d, fx := createFromFixture(t, b, "requests/template_create_marketing.json", nil)
	id := d["id"].(string)
	fg.setReply(func(c graphCall) (int, string) { return 200, fixtureRaw(t, "responses/template_create.json") })

	r := b.Must(200, "POST", "/whatsapp_templates/"+id+"/submit", nil)
	calls := fg.take()
	if len(calls) != 1 || calls[0].Method != "POST" || calls[0].Path != "/102290129340398/message_templates" || calls[0].Token != "secret-token" {
		t.Fatalf("graph calls: %+v", calls)
	}
	if got := upperEnums(calls[0].Body); !jsonEqual(got, fx) {
		t.Fatalf("create body:\n got %v\nwant %v", got, fx)
	}
	if r.JSON["status"] != "success" || r.JSON["message"] != "Template submitted successfully" || r.JSON["template_id"] != id ||
		r.JSON["template_name"] != "welcome_discount_template" || r.JSON["submission_id"] != "1627019861106475" {
		t.Fatalf("submit response: %s", r.Body)
	}
	data := r.JSON["data"].(map[string]any)
	meta := data["metadata"].(map[string]any)
	if data["status"] != "submitted" || meta["meta_template_id"] != "1627019861106475" || meta["meta_status"] != "PENDING" {
		t.Fatalf("submitted template: %v", data)
	}
	// Only drafts.
	r = b.Do("POST", "/whatsapp_templates/"+id+"/submit", nil)
	if r.Status != 422 || r.JSON["error"] != "Only draft templates can be submitted" || r.JSON["status"] != "error" {
		t.Fatalf("resubmit: %d %s", r.Status, r.Body)
	}
	if len(fg.take()) != 0 {
		t.Fatal("resubmit called Graph")
	}
	_ = cfg
}

func TestSubmitGraphErrorKeepsDraft(t *testing.T) {
	b, fg := setup(t)
	newConfig(t, b, configOpts{waba: "W1"})
	id := b.Must(201, "POST", "/whatsapp_templates", simpleBody("will_fail")).Data()["id"].(string)
	fg.setReply(func(c graphCall) (int, string) {
		return 400, fixtureRaw(t, "responses/error_100_invalid_parameter.json")
	})
	r := b.Do("POST", "/whatsapp_templates/"+id+"/submit", map[string]any{})
	meta, _ := r.JSON["meta"].(map[string]any)
	if r.Status != 422 || r.JSON["error"] != "Failed to submit template to WhatsApp" || meta["error_code"] != float64(100) ||
		r.JSON["message"] != "Message must be a template message." {
		t.Fatalf("graph error: %d %s", r.Status, r.Body)
	}
	if d := b.Must(200, "GET", "/whatsapp_templates/"+id, nil).Data(); d["status"] != "draft" {
		t.Fatalf("status after failure: %v", d["status"])
	}
}

func TestSubmitConfigChoice(t *testing.T) {
	b, fg := setup(t)
	// No production config: drafts are unlinked until submitted with a config.
	id := b.Must(201, "POST", "/whatsapp_templates", simpleBody("late_link")).Data()["id"].(string)
	id2 := b.Must(201, "POST", "/whatsapp_templates", simpleBody("late_link_two")).Data()["id"].(string)
	r := b.Do("POST", "/whatsapp_templates/"+id+"/submit", nil)
	if r.Status != 422 || r.JSON["error"] != "Production WhatsApp configuration not found for template" {
		t.Fatalf("no config: %d %s", r.Status, r.Body)
	}
	other := newConfig(t, b, configOpts{project: b.Project2, waba: "X"})
	b.Must(404, "POST", "/whatsapp_templates/"+id+"/submit", map[string]any{"whatsapp_config_id": other.ID})
	// A sandbox config talks to the built-in simulator, not to Meta.
	sb := newConfig(t, b, configOpts{waba: "SANDBOXWABA", kind: parley.KindSandbox})
	d := b.Must(200, "POST", "/whatsapp_templates/"+id+"/submit", map[string]any{"whatsapp_config_id": sb.ID}).JSON["data"].(map[string]any)
	if d["business_account_id"] != "SANDBOXWABA" || !jsonEqual(d["whatsapp_config_ids"], []string{sb.ID}) || d["status"] != "submitted" {
		t.Fatalf("linked at submit: %v", d)
	}
	if calls := fg.take(); len(calls) != 0 {
		t.Fatalf("sandbox submit reached Meta: %+v", calls)
	}
	// Meta may approve at once; the status follows its answer.
	prod := newConfig(t, b, configOpts{waba: "P1"})
	fg.setReply(func(c graphCall) (int, string) { return 200, `{"id":"77","status":"APPROVED","category":"UTILITY"}` })
	d = b.Must(200, "POST", "/whatsapp_templates/"+id2+"/submit", map[string]any{"template": map[string]any{"whatsapp_config_id": prod.ID}}).JSON["data"].(map[string]any)
	if d["business_account_id"] != "P1" || d["status"] != "approved" || !jsonEqual(d["whatsapp_config_ids"], []string{prod.ID}) {
		t.Fatalf("approved at once: %v", d)
	}
	if calls := fg.take(); len(calls) != 1 || calls[0].Path != "/P1/message_templates" {
		t.Fatalf("calls: %+v", calls)
	}
}

func TestEditOnMeta(t *testing.T) {
	b, fg := setup(t)
	newConfig(t, b, configOpts{waba: "W1", token: "tk"})
	id := b.Must(201, "POST", "/whatsapp_templates", simpleBody("spring_sale")).Data()["id"].(string)
	// Drafts cannot be edited on Meta.
	r := b.Do("PATCH", "/whatsapp_templates/"+id+"/meta", map[string]any{"template": map[string]any{"category": "MARKETING"}})
	if r.Status != 422 || r.JSON["error"] != "Only approved, rejected or disabled templates can be edited" {
		t.Fatalf("draft edit: %d %s", r.Status, r.Body)
	}
	setStatus(t, b, id, "approved", "1407680676729941")
	r = b.Do("PATCH", "/whatsapp_templates/"+id+"/meta", map[string]any{"template": map[string]any{"category": "MARKETING"}})
	if r.Status != 422 || r.JSON["error"] != "Cannot edit the category of an approved template" {
		t.Fatalf("approved category: %d %s", r.Status, r.Body)
	}
	r = b.Do("PATCH", "/whatsapp_templates/"+id+"/meta", map[string]any{"template": map[string]any{"components": []any{map[string]any{"type": "FOOTER", "text": "x"}}}})
	if r.Status != 422 || r.JSON["error"] != "Invalid template" {
		t.Fatalf("bad components: %d %s", r.Status, r.Body)
	}
	b.Must(422, "PATCH", "/whatsapp_templates/"+id+"/meta", map[string]any{"template": map[string]any{"time_to_live": "soon"}})
	b.Must(422, "PATCH", "/whatsapp_templates/"+id+"/meta", map[string]any{"template": map[string]any{}})
	if len(fg.take()) != 0 {
		t.Fatal("invalid edits called Graph")
	}
	// Components edit: Meta gets exactly its documented body.
	want := fixture(t, "requests/template_edit_components.json")
	d := b.Must(200, "PATCH", "/whatsapp_templates/"+id+"/meta", map[string]any{"template": want}).Data()
	calls := fg.take()
	if len(calls) != 1 || calls[0].Method != "POST" || calls[0].Path != "/1407680676729941" || calls[0].Token != "tk" {
		t.Fatalf("edit calls: %+v", calls)
	}
	if !jsonEqual(calls[0].Body, want) {
		t.Fatalf("edit body:\n got %v\nwant %v", calls[0].Body, want)
	}
	if d["status"] != "submitted" || !strings.HasPrefix(d["content"].(string), "Shop now through {{1}}") || d["parameter_count"] != float64(3) {
		t.Fatalf("edited: %v", d)
	}
	// A rejected template may change category.
	setStatus(t, b, id, "rejected", "1407680676729941")
	b.Must(200, "PATCH", "/whatsapp_templates/"+id+"/meta", fixture(t, "requests/template_edit_category.json"))
	calls = fg.take()
	if len(calls) != 1 || !jsonEqual(calls[0].Body, fixture(t, "requests/template_edit_category.json")) {
		t.Fatalf("category edit: %+v", calls)
	}
	if d := b.Must(200, "GET", "/whatsapp_templates/"+id, nil).Data(); d["category"] != "MARKETING" {
		t.Fatalf("category not saved: %v", d)
	}
}

func TestDelete(t *testing.T) {
	b, fg := setup(t)
	newConfig(t, b, configOpts{waba: "102290129340398"})
	body := simpleBody("order_confirmation")
	id := b.Must(201, "POST", "/whatsapp_templates", body).Data()["id"].(string)
	setStatus(t, b, id, "approved", "1407680676729941")

	fg.setReply(func(c graphCall) (int, string) {
		return 400, `{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"error_subcode":2388090,"error_user_msg":"Template is currently in use and cannot be deleted"}}`
	})
	r := b.Do("DELETE", "/whatsapp_templates/"+id, nil)
	meta, _ := r.JSON["meta"].(map[string]any)
	if r.Status != 422 || r.JSON["error"] != "Failed to delete template from WhatsApp" || meta["error_code"] != float64(100) ||
		meta["error_subcode"] != float64(2388090) || r.JSON["message"] != "Template is currently in use and cannot be deleted" {
		t.Fatalf("graph failure: %d %s", r.Status, r.Body)
	}
	if d := b.Must(200, "GET", "/whatsapp_templates/"+id, nil).Data(); d["status"] != "approved" {
		t.Fatalf("failed delete changed status: %v", d["status"])
	}
	fg.take()

	fg.setReply(func(c graphCall) (int, string) { return 200, fixtureRaw(t, "responses/template_delete.json") })
	d := b.Must(200, "DELETE", "/whatsapp_templates/"+id, nil).Data()
	if d["status"] != "removed" || d["id"] != id {
		t.Fatalf("deleted: %v", d)
	}
	calls := fg.take()
	want := fixture(t, "requests/template_delete_by_id.json")
	if len(calls) != 1 || calls[0].Method != want["method"] || calls[0].Path != want["path"] || !jsonEqual(calls[0].Query, want["query"]) {
		t.Fatalf("delete call: %+v, want %v", calls, want)
	}
	// Already removed: returned without calling Meta.
	if d := b.Must(200, "DELETE", "/whatsapp_templates/"+id, nil).Data(); d["status"] != "removed" {
		t.Fatalf("second delete: %v", d)
	}
	// A draft never submitted is only removed locally.
	draft := b.Must(201, "POST", "/whatsapp_templates", simpleBody("never_sent")).Data()["id"].(string)
	b.Must(200, "DELETE", "/whatsapp_templates/"+draft, nil)
	if calls := fg.take(); len(calls) != 0 {
		t.Fatalf("removed/draft deletes called Graph: %+v", calls)
	}
	b.Must(404, "DELETE", "/whatsapp_templates/"+store.NewID(), nil)
}

// runJobs runs the template jobs until ctx ends.
func runJobs(t *testing.T, b *apitest.Bundle) {
	t.Helper()
	r := jobs.NewRunner(b.DB, b.API.Log)
	r.Poll = 20 * time.Millisecond
	templates.RegisterJobs(r, b.API)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitSync polls sync_status until the run has finished.
func waitSync(t *testing.T, b *apitest.Bundle, runID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r := b.Must(200, "GET", "/whatsapp_templates/sync_status?sync_request_ids="+runID, nil)
		runs := r.JSON["sync_requests"].([]any)
		if len(runs) == 1 {
			run := runs[0].(map[string]any)
			if run["status"] == "succeeded" || run["status"] == "failed" {
				return r.JSON
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sync %s did not finish", runID)
	return nil
}

func TestSync(t *testing.T) {
	b, fg := setup(t)
	c1 := newConfig(t, b, configOpts{waba: "102290129340398"})
	c2 := newConfig(t, b, configOpts{waba: "102290129340398"})
	// Local state before the sync: a draft with a name Meta has (updated),
	// a submitted template Meta no longer has (removed), a plain draft (kept).
	body := simpleBody("reservation_confirmation")
	body["template"].(map[string]any)["language_code"] = "en_US"
	existing := b.Must(201, "POST", "/whatsapp_templates", body).Data()["id"].(string)
	gone := b.Must(201, "POST", "/whatsapp_templates", simpleBody("gone_on_meta")).Data()["id"].(string)
	setStatus(t, b, gone, "approved", "999")
	kept := b.Must(201, "POST", "/whatsapp_templates", simpleBody("local_draft")).Data()["id"].(string)

	page1 := fixtureRaw(t, "responses/template_list.json")
	fg.setReply(func(c graphCall) (int, string) {
		if c.Query["after"] != "" {
			return 200, `{"data":[],"paging":{"cursors":{"before":"a","after":"b"}}}`
		}
		return 200, page1
	})
	r := b.Must(202, "POST", "/whatsapp_templates/sync", map[string]any{"whatsapp_config_id": c1.ID})
	sum := r.JSON["summary"].(map[string]any)
	runs := r.JSON["sync_requests"].([]any)
	run := runs[0].(map[string]any)
	if r.JSON["status"] != "queued" || sum["total_requests"] != float64(1) || sum["jobs_enqueued"] != float64(1) ||
		sum["already_in_progress"] != float64(0) || run["status"] != "queued" || run["business_account_id"] != "102290129340398" ||
		run["anchor_whatsapp_config_id"] != c1.ID || !jsonEqual(run["affected_whatsapp_config_ids"], []string{c1.ID, c2.ID}) ||
		run["anchor_whatsapp_config"].(map[string]any)["id"] != c1.ID || run["job_id"] == nil {
		t.Fatalf("sync response: %s", r.Body)
	}
	runID := run["id"].(string)
	// A second request while queued returns the same run.
	r2 := b.Must(202, "POST", "/whatsapp_templates/sync", nil)
	if s := r2.JSON["summary"].(map[string]any); s["already_in_progress"] != float64(1) || s["jobs_enqueued"] != float64(0) ||
		r2.JSON["sync_requests"].([]any)[0].(map[string]any)["id"] != runID {
		t.Fatalf("second sync: %s", r2.Body)
	}
	if n := count(t, b, `SELECT COUNT(*) FROM template_sync_runs`); n != 1 {
		t.Fatalf("%d runs", n)
	}

	runJobs(t, b)
	st := waitSync(t, b, runID)
	done := st["sync_requests"].([]any)[0].(map[string]any)
	if done["status"] != "succeeded" || done["templates_synced"] != float64(2) || done["templates_created"] != float64(1) ||
		done["templates_updated"] != float64(1) || done["templates_removed"] != float64(1) || done["finished_at"] == nil {
		t.Fatalf("finished run: %v", done)
	}
	if res := done["results"].(map[string]any)[c2.ID].(map[string]any); res["templates_created"] != float64(1) {
		t.Fatalf("results: %v", done["results"])
	}
	sum = st["summary"].(map[string]any)
	if sum["succeeded"] != float64(1) || sum["templates_removed"] != float64(1) || sum["last_finished_at"] == nil {
		t.Fatalf("status summary: %v", sum)
	}
	calls := fg.take()
	if len(calls) < 1 || calls[0].Method != "GET" || calls[0].Path != "/102290129340398/message_templates" {
		t.Fatalf("list calls: %+v", calls)
	}

	upd := b.Must(200, "GET", "/whatsapp_templates/"+existing, nil).Data()
	if upd["status"] != "approved" || upd["parameter_format"] != "NAMED" || upd["parameter_count"] != float64(4) ||
		upd["metadata"].(map[string]any)["meta_template_id"] != "1387372356726668" {
		t.Fatalf("updated by sync: %v", upd)
	}
	if d := b.Must(200, "GET", "/whatsapp_templates/"+gone, nil).Data(); d["status"] != "removed" {
		t.Fatalf("missing on Meta: %v", d["status"])
	}
	if d := b.Must(200, "GET", "/whatsapp_templates/"+kept, nil).Data(); d["status"] != "draft" {
		t.Fatalf("draft touched: %v", d["status"])
	}
	list := b.Must(200, "GET", "/whatsapp_templates?q[name_cont]=coupon_expiration", nil).List()
	if len(list) != 1 || list[0]["status"] != "approved" || list[0]["category"] != "MARKETING" || list[0]["language_code"] != "en" ||
		list[0]["parameter_count"] != float64(2) || !jsonEqual(list[0]["whatsapp_config_ids"], []string{c1.ID, c2.ID}) {
		t.Fatalf("created by sync: %v", list)
	}
	// Default sync_status: latest run per WABA; a finished run lets a new one start.
	r3 := b.Must(202, "POST", "/whatsapp_templates/sync", nil)
	if s := r3.JSON["summary"].(map[string]any); s["jobs_enqueued"] != float64(1) {
		t.Fatalf("third sync: %s", r3.Body)
	}
	newID := r3.JSON["sync_requests"].([]any)[0].(map[string]any)["id"].(string)
	st = b.Must(200, "GET", "/whatsapp_templates/sync_status", nil).JSON
	if rs := st["sync_requests"].([]any); len(rs) != 1 || rs[0].(map[string]any)["id"] != newID {
		t.Fatalf("latest per WABA: %v", st)
	}
	waitSync(t, b, newID)
}

func TestSyncErrors(t *testing.T) {
	b, fg := setup(t)
	r := b.Do("POST", "/whatsapp_templates/sync", nil)
	if r.Status != 422 || r.JSON["error"] != "No production WhatsApp configurations found" {
		t.Fatalf("no configs: %d %s", r.Status, r.Body)
	}
	r = b.Do("POST", "/whatsapp_templates/sync", map[string]any{"whatsapp_config_id": store.NewID()})
	if r.Status != 404 || r.JSON["error"] != "Production WhatsApp configuration not found" {
		t.Fatalf("unknown config: %d %s", r.Status, r.Body)
	}
	r = b.Do("POST", "/whatsapp_templates/sync", map[string]any{"customer_id": "nope"})
	if r.Status != 404 || r.JSON["error"] != "Customer not found" {
		t.Fatalf("unknown customer: %d %s", r.Status, r.Body)
	}
	noWABA := newConfig(t, b, configOpts{})
	r = b.Do("POST", "/whatsapp_templates/sync", nil)
	if r.Status != 422 || r.JSON["error"] != "WhatsApp configuration missing business account id" ||
		!jsonEqual(r.JSON["whatsapp_config_ids"], []string{noWABA.ID}) {
		t.Fatalf("no WABA: %d %s", r.Status, r.Body)
	}
	b.Must(400, "POST", "/whatsapp_templates/sync", `{"x":`)
	// Other project's config: 404, and its runs are invisible.
	other := newConfig(t, b, configOpts{project: b.Project2, waba: "O1"})
	b.Must(404, "POST", "/whatsapp_templates/sync", map[string]any{"whatsapp_config_id": other.ID})
	otherRun := b.DoKey(b.Key2, "POST", "/whatsapp_templates/sync", nil).JSON["sync_requests"].([]any)[0].(map[string]any)["id"].(string)
	st := b.Must(200, "GET", "/whatsapp_templates/sync_status?sync_request_ids="+otherRun+",garbage", nil).JSON
	if len(st["sync_requests"].([]any)) != 0 || st["summary"].(map[string]any)["last_finished_at"] != nil {
		t.Fatalf("other project's run visible: %v", st)
	}
	b.Must(404, "GET", "/whatsapp_templates/sync_status?whatsapp_config_id="+other.ID, nil)
	b.Must(404, "GET", "/whatsapp_templates/sync_status?customer_id="+store.NewID(), nil)

	// A Graph failure fails the run with Meta's message.
	cust := newCustomer(t, b, b.Project)
	newConfig(t, b, configOpts{waba: "F1", customer: &cust})
	fg.setReply(func(c graphCall) (int, string) {
		return 401, `{"error":{"message":"Error validating access token","type":"OAuthException","code":190}}`
	})
	run := b.Must(202, "POST", "/whatsapp_templates/sync", map[string]any{"customer_id": cust}).JSON["sync_requests"].([]any)[0].(map[string]any)
	runJobs(t, b)
	st = waitSync(t, b, run["id"].(string))
	failed := st["sync_requests"].([]any)[0].(map[string]any)
	if failed["status"] != "failed" || failed["error_class"] != "WhatsappApiError" || failed["error_message"] != "Error validating access token" {
		t.Fatalf("failed run: %v", failed)
	}
	// Filters of sync_status.
	for q, n := range map[string]int{"?business_account_id=F1": 1, "?business_account_id=nope": 0, "?customer_id=" + cust: 1,
		"?customer_id=" + cust + "&business_account_id=O1": 0} {
		if got := len(b.Must(200, "GET", "/whatsapp_templates/sync_status"+q, nil).JSON["sync_requests"].([]any)); got != n {
			t.Errorf("sync_status%s: %d runs, want %d", q, got, n)
		}
	}
}

func TestMapStatus(t *testing.T) {
	for in, want := range map[string]string{
		"PENDING": "submitted", "IN_APPEAL": "submitted", "APPROVED": "approved", "REINSTATED": "approved", "FLAGGED": "approved",
		"REJECTED": "rejected", "PAUSED": "disabled", "DISABLED": "disabled", "LOCKED": "disabled", "DELETED": "removed",
		"PENDING_DELETION": "removed", "ARCHIVED": "removed", "approved": "approved", "LIMIT_EXCEEDED": "", "": "",
	} {
		if got := templates.MapStatus(in); got != want {
			t.Errorf("MapStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestApplyStatusUpdate(t *testing.T) {
	b, _ := setup(t)
	c1 := newConfig(t, b, configOpts{waba: "102290129340398"})
	c2 := newConfig(t, b, configOpts{waba: "102290129340398"})
	body := simpleBody("abandoned_cart")
	body["template"].(map[string]any)["language_code"] = "en"
	id := b.Must(201, "POST", "/whatsapp_templates", body).Data()["id"].(string)
	setStatus(t, b, id, "submitted", "1689556908129835")
	// Webhooks so the events have deliveries to count.
	ctx := context.Background()
	for _, c := range []*parley.WhatsAppConfig{c1, c2} {
		if _, err := b.DB.Write().Exec(ctx, `INSERT INTO whatsapp_webhooks (id, project_id, whatsapp_config_id, url, events, secret_key_enc, active, created_at, updated_at)
			VALUES (?, ?, ?, 'https://example.com/h', '["templates"]', 's', true, 0, 0)`, store.NewID(), b.Project, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	wh, err := whatsapp.ParseWebhook([]byte(fixtureRaw(t, "webhooks/message_template_status_update_rejected.json")))
	if err != nil {
		t.Fatal(err)
	}
	u := wh.Changes()[0].TemplateUpdates[0]
	// As the inbound path does: once per config of the WABA. c3 joined the
	// WABA after the template was created, so it is not linked: no event.
	c3 := newConfig(t, b, configOpts{waba: "102290129340398"})
	err = b.DB.Tx(ctx, func(tx *store.Conn) error {
		for _, c := range []*parley.WhatsAppConfig{c1, c2, c3} {
			if err := templates.ApplyStatusUpdate(ctx, tx, c, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := b.Must(200, "GET", "/whatsapp_templates/"+id, nil).Data()
	meta := d["metadata"].(map[string]any)
	if d["status"] != "rejected" || meta["meta_status"] != "REJECTED" || !strings.HasPrefix(meta["rejected_reason"].(string), "Your template has parameters") {
		t.Fatalf("after rejection: %v", d)
	}
	var payload string
	rows, err := b.DB.Read().Query(ctx, `SELECT whatsapp_config_id, payload_v2 FROM events WHERE type = ? ORDER BY whatsapp_config_id`, parley.EventTemplateStatus)
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []string
	for rows.Next() {
		var cid string
		if err := rows.Scan(&cid, &payload); err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, cid)
	}
	rows.Close()
	if len(cfgs) != 2 || cfgs[0] == cfgs[1] || (cfgs[0] != c1.ID && cfgs[0] != c2.ID) {
		t.Fatalf("events for configs %v", cfgs)
	}
	var p map[string]any
	_ = json.Unmarshal([]byte(payload), &p)
	tpl := p["template"].(map[string]any)
	if tpl["id"] != id || tpl["status"] != "rejected" || tpl["name"] != "abandoned_cart" || tpl["language_code"] != "en" ||
		p["event"] != "REJECTED" || p["phone_number_id"] == nil || p["reason"] == nil {
		t.Fatalf("payload: %v", p)
	}
	if n := count(t, b, `SELECT COUNT(*) FROM deliveries WHERE event_type = ?`, parley.EventTemplateStatus); n != 2 {
		t.Fatalf("%d deliveries", n)
	}
	// Found by (WABA, name, language) when Meta's id is unknown; approval clears the reason.
	u.TemplateID, u.Event, u.Reason, u.RejectionReason = "other-id", "APPROVED", "NONE", ""
	if err := b.DB.Tx(ctx, func(tx *store.Conn) error { return templates.ApplyStatusUpdate(ctx, tx, c2, u) }); err != nil {
		t.Fatal(err)
	}
	d = b.Must(200, "GET", "/whatsapp_templates/"+id, nil).Data()
	if d["status"] != "approved" || d["metadata"].(map[string]any)["rejected_reason"] != nil {
		t.Fatalf("after approval: %v", d)
	}
	// Unknown templates are ignored.
	u.Name = "unknown_template"
	if err := b.DB.Tx(ctx, func(tx *store.Conn) error { return templates.ApplyStatusUpdate(ctx, tx, c1, u) }); err != nil {
		t.Fatal(err)
	}
}
