package broadcasts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/broadcasts"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
)

func TestCreateGetListFilters(t *testing.T) {
	e := setup(t, opts{noRunner: true})
	other := prodConfig(t, e.Bundle, e.Project)
	otherTpl := approvedTemplate(t, e.Bundle, e.Project, other, "other_promo", "Hello", nil)

	c := e.Must(201, "POST", "/whatsapp_broadcasts", map[string]any{"whatsapp_broadcast": map[string]any{
		"name": "  July Promo ", "whatsapp_config_id": e.cfg.ID, "whatsapp_template_id": strings.ToUpper(e.tpl.ID), "unknown": 1}}).Data()
	id := c["id"].(string)
	if c["name"] != "July Promo" || c["status"] != "draft" || c["started_at"] != nil || c["completed_at"] != nil ||
		c["whatsapp_config_id"] != e.cfg.ID || num(c["total_recipients"]) != 0 || c["response_rate"] != 0.0 {
		t.Fatalf("created: %v", c)
	}
	tpl := c["whatsapp_template"].(map[string]any)
	if tpl["id"] != e.tpl.ID || tpl["name"] != "promo" || tpl["language_code"] != "en_US" || tpl["category"] != "MARKETING" || tpl["status"] != "approved" {
		t.Fatalf("template: %v", tpl)
	}
	if st := c["stats"].(map[string]any); num(st["total"]) != 0 || num(st["pending"]) != 0 {
		t.Fatalf("stats: %v", st)
	}
	// Bare attributes work too (Rails parameter wrapping).
	id2 := e.Must(201, "POST", "/whatsapp_broadcasts", map[string]any{"name": "Second", "whatsapp_config_id": e.cfg.ID,
		"whatsapp_template_id": e.tpl.ID}).Data()["id"].(string)
	id3 := e.newBroadcast(t, "Third", other, otherTpl)

	got := e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
	if got["id"] != id || got["name"] != "July Promo" {
		t.Fatalf("get: %v", got)
	}
	e.Must(404, "GET", "/whatsapp_broadcasts/"+store.NewID(), nil)
	if r := e.Must(404, "GET", "/whatsapp_broadcasts/not-a-uuid", nil); r.JSON["error"] != "Broadcast not found" {
		t.Fatalf("404: %s", r.Body)
	}

	ids := func(r []map[string]any) []string {
		var out []string
		for _, m := range r {
			out = append(out, m["id"].(string))
		}
		return out
	}
	// Newest first.
	l := e.Must(200, "GET", "/whatsapp_broadcasts", nil)
	if got := ids(l.List()); !slices.Equal(got, []string{id3, id2, id}) {
		t.Fatalf("order: %v", got)
	}
	if m := l.JSON["meta"].(map[string]any); num(m["total_count"]) != 3 || num(m["total_pages"]) != 1 || num(m["per_page"]) != 20 {
		t.Fatalf("meta: %v", m)
	}
	p2 := e.Must(200, "GET", "/whatsapp_broadcasts?per_page=2&page=2", nil)
	if got := ids(p2.List()); !slices.Equal(got, []string{id}) || num(p2.JSON["meta"].(map[string]any)["total_pages"]) != 2 {
		t.Fatalf("page 2: %v %s", got, p2.Body)
	}
	if got := ids(e.Must(200, "GET", "/whatsapp_broadcasts?page=9", nil).List()); len(got) != 0 {
		t.Fatalf("page past the end: %v", got)
	}
	for q, want := range map[string][]string{
		"q[whatsapp_config_id_eq]=" + e.cfg.ID:                          {id2, id},
		"q[whatsapp_config_id_eq]=" + strings.ToUpper(other.ID):         {id3},
		"q[whatsapp_template_id_eq]=" + otherTpl.ID:                     {id3},
		"q[whatsapp_template_id_eq]=" + e.tpl.ID + "&per_page=1&page=2": {id},
		"q[whatsapp_config_id_eq]=nope":                                 nil,
		"q[whatsapp_template_id_eq]=" + store.NewID():                   nil,
		"q[whatsapp_config_id_eq]=":                                     {id3, id2, id},
	} {
		if got := ids(e.Must(200, "GET", "/whatsapp_broadcasts?"+q, nil).List()); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}

	// Tenancy: the other project sees none of it.
	if r := e.DoKey(e.Key2, "GET", "/whatsapp_broadcasts", nil); r.Status != 200 || len(r.List()) != 0 {
		t.Fatalf("other project list: %d %s", r.Status, r.Body)
	}
	if r := e.DoKey(e.Key2, "GET", "/whatsapp_broadcasts?q[whatsapp_config_id_eq]="+e.cfg.ID, nil); len(r.List()) != 0 {
		t.Fatalf("other project filter: %s", r.Body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/whatsapp_broadcasts/" + id}, {"GET", "/whatsapp_broadcasts/" + id + "/recipients"},
		{"POST", "/whatsapp_broadcasts/" + id + "/recipients"}, {"POST", "/whatsapp_broadcasts/" + id + "/send"},
	} {
		var body any
		if c.method == "POST" {
			body = recipientsOf(phones(1))
		}
		if r := e.DoKey(e.Key2, c.method, c.path, body); r.Status != 404 {
			t.Errorf("other project %s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	if n := e.count(t, `SELECT COUNT(*) FROM broadcast_recipients`); n != 0 {
		t.Fatalf("other project added %d recipients", n)
	}
	// Nor can it use this project's config or template.
	cfg2 := prodConfig(t, e.Bundle, e.Project2)
	if r := e.DoKey(e.Key2, "POST", "/whatsapp_broadcasts", map[string]any{"whatsapp_broadcast": map[string]any{
		"name": "x", "whatsapp_config_id": cfg2.ID, "whatsapp_template_id": e.tpl.ID}}); r.Status != 422 || r.JSON["error"] != "Template not found" {
		t.Fatalf("other project's template: %d %s", r.Status, r.Body)
	}
}

func TestCreateValidation(t *testing.T) {
	e := setup(t, opts{noRunner: true})
	other := prodConfig(t, e.Bundle, e.Project)
	draft := approvedTemplate(t, e.Bundle, e.Project, e.cfg, "not_yet", "Hi", nil)
	if _, err := e.DB.Write().Exec(context.Background(), `UPDATE templates SET status = 'submitted' WHERE id = ?`, draft.ID); err != nil {
		t.Fatal(err)
	}
	foreign := prodConfig(t, e.Bundle, e.Project2)
	sb := sandboxConfig(t, e.Bundle, e.Project)
	sbTpl := approvedTemplate(t, e.Bundle, e.Project, sb, "hello_world", "Hello World", nil)

	body := func(name, cfg, tpl any) map[string]any {
		return map[string]any{"whatsapp_broadcast": map[string]any{"name": name, "whatsapp_config_id": cfg, "whatsapp_template_id": tpl}}
	}
	cases := []struct {
		body   any
		status int
		error  string
	}{
		{body("", e.cfg.ID, e.tpl.ID), 422, "Validation failed"},
		{body(nil, e.cfg.ID, e.tpl.ID), 422, "Validation failed"},
		{body(strings.Repeat("n", 256), e.cfg.ID, e.tpl.ID), 422, "Validation failed"},
		{body("x", nil, e.tpl.ID), 422, "Validation failed"},
		{body("x", e.cfg.ID, ""), 422, "Validation failed"},
		{body("x", "nope", e.tpl.ID), 422, "WhatsApp configuration not found"},
		{body("x", store.NewID(), e.tpl.ID), 422, "WhatsApp configuration not found"},
		{body("x", foreign.ID, e.tpl.ID), 422, "WhatsApp configuration not found"},
		{body("x", e.cfg.ID, "nope"), 422, "Template not found"},
		{body("x", e.cfg.ID, store.NewID()), 422, "Template not found"},
		{body("x", other.ID, e.tpl.ID), 422, "Template not linked to config"},
		{body("x", e.cfg.ID, draft.ID), 422, "Template is not approved"},
		{body(map[string]any{}, e.cfg.ID, e.tpl.ID), 422, "Invalid parameters"},
		{body("x", []any{1}, e.tpl.ID), 422, "Invalid parameters"},
		{map[string]any{"whatsapp_broadcast": "x"}, 422, "Invalid parameters"},
		{map[string]any{}, 422, "Validation failed"},
		{`{"whatsapp_broadcast":`, 400, ""},
		{`[]`, 400, ""},
		{`{"whatsapp_broadcast":{"name":"a\u0000b"}}`, 422, ""},
	}
	for i, c := range cases {
		r := e.Do("POST", "/whatsapp_broadcasts", c.body)
		if r.Status != c.status || (c.error != "" && r.JSON["error"] != c.error) {
			t.Errorf("case %d: %d %s, want %d %q", i, r.Status, r.Body, c.status, c.error)
		}
	}
	if n := e.count(t, `SELECT COUNT(*) FROM broadcasts`); n != 0 {
		t.Fatalf("%d broadcasts stored by refused requests", n)
	}
	r := e.Must(422, "POST", "/whatsapp_broadcasts", body("", nil, nil))
	if errs, _ := r.JSON["errors"].([]any); len(errs) != 3 || errs[0] != "Name can't be blank" {
		t.Fatalf("errors: %s", r.Body)
	}
	// Sandbox configs are accepted (a Parley superset of Kapso).
	e.newBroadcast(t, "Sandbox promo", sb, sbTpl)
}

func TestRecipients(t *testing.T) {
	e := setup(t, opts{noRunner: true})
	named := approvedTemplate(t, e.Bundle, e.Project, e.cfg, "named_promo", "Hi {{first_name}}, code {{code}}", nil)
	if _, err := e.DB.Write().Exec(context.Background(), `UPDATE templates SET parameter_format = 'NAMED' WHERE id = ?`, named.ID); err != nil {
		t.Fatal(err)
	}
	contact := e.Must(201, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{"wa_id": "+56 9 7777 0001"}}).Data()["id"].(string)
	foreignContact := e.DoKey(e.Key2, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{"wa_id": "56977770002"}}).Data()["id"].(string)

	id := e.newBroadcast(t, "Promo", e.cfg, e.tpl)
	path := "/whatsapp_broadcasts/" + id + "/recipients"
	r := e.Must(201, "POST", path, map[string]any{"recipients": []any{
		map[string]any{"phone_number": "+1 (415) 555-0123", "template_parameters": []any{"Ana", "A1"}},
		map[string]any{"phone_number": "0014155550124", "template_parameters": []any{"Bo", 17}},
		map[string]any{"phone_number": "14155550123", "template_parameters": []any{"Dup", "D"}}, // same as the first
		map[string]any{"phone_number": "12", "template_parameters": []any{"x", "y"}},
		map[string]any{"phone_number": "14155550125", "template_parameters": []any{"only one"}},
		map[string]any{"whatsapp_contact_id": contact, "template_parameters": map[string]any{"1": "Cy", "2": "C3"}},
		map[string]any{"whatsapp_contact_id": foreignContact, "template_parameters": []any{"x", "y"}},
		map[string]any{"whatsapp_contact_id": "not-a-uuid"},
		map[string]any{"template_parameters": []any{"x", "y"}},
		map[string]any{"phone_number": 14155550126, "template_parameters": []any{true, 1.5}},
	}}).Data()
	errs, _ := r["errors"].([]any)
	if num(r["added"]) != 4 || num(r["duplicates"]) != 1 || len(errs) != 5 {
		t.Fatalf("add: %v", r)
	}
	for i, want := range []string{"Recipient 4: invalid phone number format", "Recipient 5: template parameters invalid",
		"Recipient 7: contact not found", "Recipient 8: contact not found", "Recipient 9: "} {
		if s, _ := errs[i].(string); !strings.HasPrefix(s, want) {
			t.Errorf("error %d: %q, want prefix %q", i, s, want)
		}
	}
	if s := errs[1].(string); !strings.Contains(s, "Template requires 2 parameters, but 1 were provided") {
		t.Errorf("parameter error: %q", s)
	}
	// Adding the same numbers again only counts duplicates.
	again := e.Must(201, "POST", path, map[string]any{"recipients": []any{
		map[string]any{"phone_number": "+14155550124", "template_parameters": []any{"Bo", "17"}},
		map[string]any{"phone_number": "56977770001", "template_parameters": []any{"a", "b"}},
	}}).Data()
	if num(again["added"]) != 0 || num(again["duplicates"]) != 2 || len(again["errors"].([]any)) != 0 {
		t.Fatalf("again: %v", again)
	}

	list := e.Must(200, "GET", path, nil)
	rs := list.List()
	if len(rs) != 4 || num(list.JSON["meta"].(map[string]any)["total_count"]) != 4 {
		t.Fatalf("list: %s", list.Body)
	}
	want := []struct {
		phone  string
		params string
	}{{"14155550123", `["Ana","A1"]`}, {"14155550124", `["Bo","17"]`}, {"56977770001", `{"1":"Cy","2":"C3"}`}, {"14155550126", `["true","1.5"]`}}
	for i, w := range want {
		got := rs[i]
		if got["phone_number"] != w.phone || got["status"] != "pending" || got["sent_at"] != nil || got["error_message"] != nil {
			t.Errorf("recipient %d: %v", i, got)
		}
		if p := jsonString(got["template_parameters"]); p != w.params {
			t.Errorf("recipient %d parameters: %s, want %s", i, p, w.params)
		}
	}
	if p := e.Must(200, "GET", path+"?per_page=3&page=2", nil); len(p.List()) != 1 || p.List()[0]["phone_number"] != "14155550126" {
		t.Fatalf("page 2: %s", p.Body)
	}
	if b := e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data(); num(b["total_recipients"]) != 4 || num(b["pending_count"]) != 4 {
		t.Fatalf("counts: %v", b)
	}

	// Named parameters, with extra keys ignored and missing ones reported.
	nid := e.newBroadcast(t, "Named", e.cfg, named)
	nr := e.Must(201, "POST", "/whatsapp_broadcasts/"+nid+"/recipients", map[string]any{"recipients": []any{
		map[string]any{"phone_number": "14155550200", "template_parameters": map[string]any{"first_name": "Alicia", "code": "JULY", "cta_text": "Shop"}},
		map[string]any{"phone_number": "14155550201", "template_parameters": map[string]any{"first_name": "Bob"}},
		map[string]any{"phone_number": "14155550202", "template_parameters": []any{"Al", "B"}},
	}}).Data()
	if num(nr["added"]) != 2 || len(nr["errors"].([]any)) != 1 || !strings.HasPrefix(nr["errors"].([]any)[0].(string), "Recipient 2: template parameters invalid") {
		t.Fatalf("named: %v", nr)
	}

	// Whole-request refusals store nothing.
	before := e.count(t, `SELECT COUNT(*) FROM broadcast_recipients`)
	over := make([]any, 1001)
	for i := range over {
		over[i] = map[string]any{"phone_number": fmt.Sprintf("1415556%04d", i), "template_parameters": []any{"a", "b"}}
	}
	bad := []struct {
		body  any
		code  int
		error string
	}{
		{map[string]any{"recipients": over}, 422, "Cannot add more than 1000 recipients per request"},
		{map[string]any{"recipients": []any{}}, 422, "Recipients array is required"},
		{map[string]any{}, 422, "Recipients array is required"},
		{map[string]any{"recipients": nil}, 422, "Recipients array is required"},
		{map[string]any{"recipients": "14155550999"}, 422, "Recipients array is required"},
		{map[string]any{"recipients": map[string]any{"phone_number": "14155550999"}}, 422, "Recipients array is required"},
		{map[string]any{"recipients": []any{"14155550999"}}, 422, "Invalid parameters"},
		{map[string]any{"recipients": []any{[]any{}}}, 422, "Invalid parameters"},
		{map[string]any{"recipients": []any{map[string]any{"phone_number": map[string]any{}}}}, 422, "Invalid parameters"},
		{map[string]any{"recipients": []any{map[string]any{"phone_number": "14155550999", "whatsapp_contact_id": 5.5e300}}}, 201, ""},
		{map[string]any{"recipients": []any{map[string]any{"phone_number": "14155550998", "template_parameters": "a,b"}}}, 422, "Invalid parameters"},
		{map[string]any{"recipients": []any{map[string]any{"phone_number": "14155550998", "template_parameters": 7}}}, 422, "Invalid parameters"},
		{map[string]any{"recipients": []any{map[string]any{"phone_number": "14155550998", "template_parameters": []any{map[string]any{}, "b"}}}}, 422, "Invalid parameters"},
		{map[string]any{"recipients": []any{map[string]any{"phone_number": "14155550998", "template_parameters": []any{nil, "b"}}}}, 422, "Invalid parameters"},
		{`{"recipients":[{"phone_number":"1415\u00005550998"}]}`, 422, ""},
		{`{"recipients":[`, 400, ""},
		{`"x"`, 400, ""},
	}
	for i, c := range bad {
		r := e.Do("POST", path, c.body)
		if r.Status != c.code || (c.error != "" && r.JSON["error"] != c.error) {
			t.Errorf("bad %d: %d %.300s, want %d %q", i, r.Status, r.Body, c.code, c.error)
		}
	}
	if n := e.count(t, `SELECT COUNT(*) FROM broadcast_recipients`); n != before {
		t.Fatalf("refused requests changed recipients: %d → %d", before, n)
	}
	e.Must(404, "POST", "/whatsapp_broadcasts/"+store.NewID()+"/recipients", recipientsOf(phones(1)))
	e.Must(404, "GET", "/whatsapp_broadcasts/"+store.NewID()+"/recipients", nil)

	// Exactly 1000 is fine.
	thousand := e.newBroadcast(t, "Big", e.cfg, e.tpl)
	if r := e.Must(201, "POST", "/whatsapp_broadcasts/"+thousand+"/recipients", map[string]any{"recipients": over[:1000]}).Data(); num(r["added"]) != 1000 {
		t.Fatalf("1000: %v", r)
	}
	if b := e.Must(200, "GET", "/whatsapp_broadcasts/"+thousand, nil).Data(); num(b["total_recipients"]) != 1000 {
		t.Fatalf("1000 total: %v", b)
	}

	// Only drafts take recipients.
	e.Must(202, "POST", "/whatsapp_broadcasts/"+id+"/send", nil)
	if r := e.Must(422, "POST", path, recipientsOf(phones(1))); r.JSON["error"] != "Cannot add recipients to broadcast in sending status" {
		t.Fatalf("not draft: %s", r.Body)
	}
}

func TestSendValidation(t *testing.T) {
	e := setup(t, opts{noRunner: true})
	id := e.newBroadcast(t, "Promo", e.cfg, e.tpl)
	if r := e.Must(422, "POST", "/whatsapp_broadcasts/"+id+"/send", nil); r.JSON["error"] != "Broadcast has no recipients" {
		t.Fatalf("no recipients: %s", r.Body)
	}
	e.Must(404, "POST", "/whatsapp_broadcasts/"+store.NewID()+"/send", nil)
	e.Must(404, "POST", "/whatsapp_broadcasts/nope/send", nil)
	e.Must(201, "POST", "/whatsapp_broadcasts/"+id+"/recipients", recipientsOf(phones(2)))
	r := e.Must(202, "POST", "/whatsapp_broadcasts/"+id+"/send", `{"ignored": true}`).Data()
	if r["id"] != id || r["status"] != "sending" || r["started_at"] == nil {
		t.Fatalf("send: %v", r)
	}
	if r := e.Must(422, "POST", "/whatsapp_broadcasts/"+id+"/send", nil); r.JSON["error"] != "Broadcast is already sending" {
		t.Fatalf("twice: %s", r.Body)
	}
	b := e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
	if b["status"] != "sending" || b["started_at"] != r["started_at"] {
		t.Fatalf("after send: %v", b)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM jobs WHERE kind = ?`, broadcasts.JobSend); n != 1 {
		t.Fatalf("%d send jobs", n)
	}
	for _, st := range []string{"completed", "failed"} {
		if _, err := e.DB.Write().Exec(context.Background(), `UPDATE broadcasts SET status = ? WHERE id = ?`, st, id); err != nil {
			t.Fatal(err)
		}
		if r := e.Must(422, "POST", "/whatsapp_broadcasts/"+id+"/send", nil); r.JSON["error"] != "Broadcast already completed" {
			t.Fatalf("%s: %s", st, r.Body)
		}
		if r := e.Must(422, "POST", "/whatsapp_broadcasts/"+id+"/recipients", recipientsOf(phones(1))); r.JSON["error"] != "Cannot add recipients to broadcast in "+st+" status" {
			t.Fatalf("%s add: %s", st, r.Body)
		}
	}
}

// TestSendEndToEnd sends a production broadcast through the fake Graph API:
// every recipient gets one normal outbound message (conversation, events),
// the failed send is counted, and the broadcast completes.
func TestSendEndToEnd(t *testing.T) {
	e := setup(t, opts{sendRate: 10}) // window of 50: the job waits for sends
	e.SubscribeAll(e.cfg.ID)
	ps := phones(130)
	e.g.fail[ps[7]] = true
	id := e.newBroadcast(t, "Promo", e.cfg, e.tpl)
	body := recipientsOf(ps)
	body["recipients"] = append(body["recipients"].([]any), map[string]any{"phone_number": "14155550777", "template_parameters": []any{"a", "b"}})
	e.Must(201, "POST", "/whatsapp_broadcasts/"+id+"/recipients", body)
	e.Must(202, "POST", "/whatsapp_broadcasts/"+id+"/send", nil)

	var b map[string]any
	waitFor(t, "broadcast to complete", func() bool {
		b = e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
		return b["status"] == "completed"
	})
	if num(b["total_recipients"]) != 131 || num(b["sent_count"]) != 130 || num(b["failed_count"]) != 1 || num(b["pending_count"]) != 0 ||
		b["completed_at"] == nil || num(b["stats"].(map[string]any)["sent"]) != 130 {
		t.Fatalf("completed: %v", b)
	}
	sends := e.g.sends()
	if len(sends) != 131 {
		t.Fatalf("%d Graph sends, want 131", len(sends))
	}
	seen := map[string]int{}
	for _, s := range sends {
		seen[s["to"].(string)]++
		tpl, _ := s["template"].(map[string]any)
		if s["type"] != "template" || tpl["name"] != "promo" {
			t.Fatalf("send body: %v", s)
		}
	}
	for _, p := range ps {
		if seen[p] != 1 {
			t.Fatalf("%s sent %d times", p, seen[p])
		}
	}
	first := sends[0]["template"].(map[string]any)["components"].([]any)[0].(map[string]any)
	if first["type"] != "body" || len(first["parameters"].([]any)) != 2 {
		t.Fatalf("components: %v", first)
	}
	// One outbound message per recipient, in its own conversation, with the
	// rendered body as content; sent events for the accepted ones.
	if n := e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_config_id = ? AND direction = 'outbound' AND message_type = 'template'`, e.cfg.ID); n != 131 {
		t.Fatalf("%d messages", n)
	}
	if n := e.count(t, `SELECT COUNT(DISTINCT conversation_id) FROM messages WHERE whatsapp_config_id = ?`, e.cfg.ID); n != 131 {
		t.Fatalf("%d conversations", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages WHERE content = 'Hi N0, use code CODE.'`); n != 1 {
		t.Fatalf("rendered content: %d", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM events WHERE type = ?`, parley.EventMessageSent); n != 130 {
		t.Fatalf("%d sent events", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM events WHERE type = ?`, parley.EventMessageFailed); n != 1 {
		t.Fatalf("%d failed events", n)
	}
	rs := e.allRecipients(t, id)
	failed := 0
	for _, r := range rs {
		switch r["status"] {
		case "sent":
			if r["sent_at"] == nil || r["failed_at"] != nil {
				t.Fatalf("sent recipient: %v", r)
			}
		case "failed":
			failed++
			d, _ := r["error_details"].(map[string]any)
			if r["phone_number"] != ps[7] || r["failed_at"] == nil || r["error_message"] == nil || d["error_code"] != "131026" {
				t.Fatalf("failed recipient: %v", r)
			}
		default:
			t.Fatalf("recipient: %v", r)
		}
	}
	if failed != 1 || len(rs) != 131 {
		t.Fatalf("%d recipients, %d failed", len(rs), failed)
	}
	if r := e.Must(422, "POST", "/whatsapp_broadcasts/"+id+"/send", nil); r.JSON["error"] != "Broadcast already completed" {
		t.Fatalf("send after completion: %s", r.Body)
	}

	// A broadcast whose every send fails ends failed.
	bad := phones(2)
	for _, p := range bad {
		e.g.fail[p] = true
	}
	fid := e.newBroadcast(t, "Doomed", e.cfg, e.tpl)
	e.Must(201, "POST", "/whatsapp_broadcasts/"+fid+"/recipients", recipientsOf(bad))
	e.Must(202, "POST", "/whatsapp_broadcasts/"+fid+"/send", nil)
	waitFor(t, "broadcast to fail", func() bool {
		b = e.Must(200, "GET", "/whatsapp_broadcasts/"+fid, nil).Data()
		return b["status"] == "failed"
	})
	if num(b["failed_count"]) != 2 || num(b["sent_count"]) != 0 || b["completed_at"] == nil {
		t.Fatalf("failed broadcast: %v", b)
	}
}

// TestSendSandbox sends from a sandbox config: the simulator accepts the
// template and reports sent, delivered and read; a reserved number fails; a
// reply counts as a response.
func TestSendSandbox(t *testing.T) {
	e := setup(t, opts{})
	sb := sandboxConfig(t, e.Bundle, e.Project)
	hello := approvedTemplate(t, e.Bundle, e.Project, sb, "hello_world", "Hello World", nil)
	id := e.newBroadcast(t, "Hello", sb, hello)
	e.Must(201, "POST", "/whatsapp_broadcasts/"+id+"/recipients", map[string]any{"recipients": []any{
		map[string]any{"phone_number": "+56 9 3333 0001"},
		map[string]any{"phone_number": "56933330002", "template_parameters": []any{}},
		map[string]any{"phone_number": "15550001234"}, // the simulator's undeliverable prefix
	}})
	e.Must(202, "POST", "/whatsapp_broadcasts/"+id+"/send", nil)
	var b map[string]any
	waitFor(t, "messages to be read", func() bool {
		b = e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
		return b["status"] == "completed" && num(b["read_count"]) == 2
	})
	if num(b["sent_count"]) != 2 || num(b["delivered_count"]) != 2 || num(b["failed_count"]) != 1 || num(b["responded_count"]) != 0 {
		t.Fatalf("sandbox broadcast: %v", b)
	}
	for _, r := range e.allRecipients(t, id) {
		if r["phone_number"] == "15550001234" {
			if r["status"] != "failed" {
				t.Fatalf("reserved number: %v", r)
			}
			continue
		}
		if r["status"] != "sent" || r["sent_at"] == nil || r["delivered_at"] == nil || r["read_at"] == nil || r["responded_at"] != nil {
			t.Fatalf("sandbox recipient: %v", r)
		}
	}
	// The customer answers: responded_count and response_rate follow.
	e.Must(202, "POST", "/whatsapp_configs/"+sb.ID+"/sandbox_messages", map[string]any{"from": "56933330001", "type": "text",
		"text": map[string]any{"body": "interested!"}})
	waitFor(t, "the reply to count", func() bool {
		b = e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
		return num(b["responded_count"]) == 1
	})
	if b["response_rate"] != 50.0 || num(b["stats"].(map[string]any)["responded"]) != 1 {
		t.Fatalf("response rate: %v", b)
	}
	responded := 0
	for _, r := range e.allRecipients(t, id) {
		if r["responded_at"] != nil {
			responded++
		}
	}
	if responded != 1 {
		t.Fatalf("%d recipients responded", responded)
	}
}

// TestSendResumesWithoutResending rolls a batch back midway (as a crash
// before its commit would) and runs the job again after it completed: every
// recipient still gets exactly one message.
func TestSendResumesWithoutResending(t *testing.T) {
	e := setup(t, opts{noRunner: true})
	ps := phones(120)
	id := e.newBroadcast(t, "Promo", e.cfg, e.tpl)
	e.Must(201, "POST", "/whatsapp_broadcasts/"+id+"/recipients", recipientsOf(ps))
	e.Must(202, "POST", "/whatsapp_broadcasts/"+id+"/send", nil)

	// The second batch fails after its 20th recipient, once.
	var handed, failures atomic.Int64
	restore := broadcasts.SetAfterHandOver(func(string) error {
		if handed.Add(1) == 70 && failures.Add(1) == 1 {
			return errors.New("simulated crash")
		}
		return nil
	})
	defer restore()
	e.startRunner(t)
	var b map[string]any
	waitFor(t, "broadcast to complete", func() bool {
		b = e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
		return b["status"] == "completed"
	})
	if failures.Load() != 1 {
		t.Fatalf("the simulated crash did not happen (%d handed over)", handed.Load())
	}
	check := func(when string) {
		t.Helper()
		if n := len(e.g.sends()); n != len(ps) {
			t.Fatalf("%s: %d Graph sends, want %d", when, n, len(ps))
		}
		if n := e.count(t, `SELECT COUNT(*) FROM messages WHERE direction = 'outbound'`); n != len(ps) {
			t.Fatalf("%s: %d messages, want %d", when, n, len(ps))
		}
		if n := e.count(t, `SELECT COUNT(DISTINCT message_id) FROM broadcast_recipients WHERE broadcast_id = ? AND status = 'queued'`, id); n != len(ps) {
			t.Fatalf("%s: %d recipients with a message", when, n)
		}
	}
	check("after the crash")

	// The job runs again (a lost lease, an operator re-enqueueing it): no
	// recipient is sent twice and the broadcast completes again.
	if _, err := e.DB.Write().Exec(context.Background(), `UPDATE broadcasts SET status = 'sending', completed_at = NULL WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	err := e.DB.Tx(context.Background(), func(tx *store.Conn) error {
		_, err := jobs.Enqueue(context.Background(), tx, broadcasts.JobSend, map[string]any{"broadcast_id": id}, jobs.Options{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.runner.Wake()
	waitFor(t, "broadcast to complete again", func() bool {
		return e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()["status"] == "completed"
	})
	check("after a re-run")
}

func jsonString(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprintf("%q", e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%q:%q", k, x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return fmt.Sprint(v)
}

// TestRespondedOnlyForAcceptedMessages: a customer whose broadcast message
// failed and who then writes in its conversation has not responded to the
// broadcast; responded stays within sent and response_rate within 100.
func TestRespondedOnlyForAcceptedMessages(t *testing.T) {
	e := setup(t, opts{})
	sb := sandboxConfig(t, e.Bundle, e.Project)
	hello := approvedTemplate(t, e.Bundle, e.Project, sb, "hello_world", "Hello World", nil)
	id := e.newBroadcast(t, "Hello", sb, hello)
	e.Must(201, "POST", "/whatsapp_broadcasts/"+id+"/recipients", map[string]any{"recipients": []any{
		map[string]any{"phone_number": "56933330011"},
		map[string]any{"phone_number": "15550001299"}, // the simulator's undeliverable prefix
	}})
	e.Must(202, "POST", "/whatsapp_broadcasts/"+id+"/send", nil)
	var b map[string]any
	waitFor(t, "the broadcast to complete", func() bool {
		b = e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
		return b["status"] == "completed" && num(b["sent_count"]) == 1 && num(b["failed_count"]) == 1
	})
	inbound := func(from string) {
		e.Must(202, "POST", "/whatsapp_configs/"+sb.ID+"/sandbox_messages", map[string]any{"from": from, "type": "text",
			"text": map[string]any{"body": "hello?"}})
	}
	inbound("15550001299")
	waitFor(t, "the failed recipient's message to be stored", func() bool {
		return e.count(t, `SELECT COUNT(*) FROM messages WHERE whatsapp_config_id = ? AND direction = 'inbound'`, sb.ID) == 1
	})
	b = e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
	if num(b["responded_count"]) != 0 || b["response_rate"] != 0.0 {
		t.Fatalf("a failed recipient's message counts as a response: %v", b)
	}
	for _, r := range e.allRecipients(t, id) {
		if r["responded_at"] != nil {
			t.Fatalf("responded_at on %v", r)
		}
	}
	inbound("56933330011")
	waitFor(t, "the reply to count", func() bool {
		b = e.Must(200, "GET", "/whatsapp_broadcasts/"+id, nil).Data()
		return num(b["responded_count"]) == 1
	})
	if b["response_rate"] != 100.0 || num(b["stats"].(map[string]any)["responded"]) != 1 {
		t.Fatalf("response rate: %v", b)
	}
}

// TestRecipientsBesideWrapper: the documented top-level recipients array is
// read even when the body also carries a whatsapp_broadcast object, as
// Rails parameter wrapping produces; the wrapped form works too.
func TestRecipientsBesideWrapper(t *testing.T) {
	e := setup(t, opts{noRunner: true})
	id := e.newBroadcast(t, "Promo", e.cfg, e.tpl)
	path := "/whatsapp_broadcasts/" + id + "/recipients"
	r := e.Must(201, "POST", path, map[string]any{
		"whatsapp_broadcast": map[string]any{"name": "Promo"},
		"recipients":         []any{map[string]any{"phone_number": "14155550201", "template_parameters": []any{"a", "b"}}},
	}).Data()
	if num(r["added"]) != 1 {
		t.Fatalf("top-level recipients beside the wrapper: %v", r)
	}
	r = e.Must(201, "POST", path, map[string]any{"whatsapp_broadcast": map[string]any{
		"recipients": []any{map[string]any{"phone_number": "14155550202", "template_parameters": []any{"a", "b"}}}}}).Data()
	if num(r["added"]) != 1 {
		t.Fatalf("wrapped recipients: %v", r)
	}
}
