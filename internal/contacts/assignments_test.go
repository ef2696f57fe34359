package contacts_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store"
)

func TestAssignments(t *testing.T) {
	b := apitest.Setup(t)
	cfg := newConfig(t, b, b.Project, "")
	conv := newConversation(t, b, b.Project, cfg.ID, "56911112222")
	conv2 := newConversation(t, b, b.Project, cfg.ID, "56911113333")
	cfgOther := newConfig(t, b, b.Project2, "")
	convOther := newConversation(t, b, b.Project2, cfgOther.ID, "56911112222")
	u1, u2 := newUser(t, b, b.Project), newUser(t, b, b.Project)
	uOther := newUser(t, b, b.Project2)
	base := "/whatsapp_conversations/" + conv + "/conversation_assignments"

	empty := b.Must(200, "GET", base, nil)
	if len(empty.List()) != 0 || meta(empty)["total_count"].(float64) != 0 || empty.Header.Get("Total") != "0" {
		t.Fatalf("empty: %v %s", empty.Header, empty.Body)
	}

	a1 := b.Must(201, "POST", base, map[string]any{"conversation_assignment": map[string]any{"user_id": strings.ToUpper(u1), "notes": "VIP"}}).Data()
	if a1["user_id"] != u1 || a1["active"] != true || a1["notes"] != "VIP" || a1["created_by_user_id"] != nil {
		t.Fatalf("created: %v", a1)
	}
	id1 := a1["id"].(string)
	if _, ok := a1["created_by_user_id"]; !ok {
		t.Fatal("created_by_user_id must be rendered as null")
	}

	// One active assignment per conversation.
	r := b.Must(422, "POST", base, map[string]any{"user_id": u2})
	if !strings.Contains(string(r.Body), "Conversation is already assigned") {
		t.Fatalf("already assigned: %s", r.Body)
	}
	// Other conversations are independent.
	b.Must(201, "POST", "/whatsapp_conversations/"+conv2+"/conversation_assignments", map[string]any{"user_id": u2})

	// Bad input: nothing stored.
	cases := []struct {
		path   string
		body   any
		status int
	}{
		{"/whatsapp_conversations/" + conv2 + "/conversation_assignments", map[string]any{"user_id": u1}, 422}, // conv2 is assigned
		{base, map[string]any{}, 422},
		{base, map[string]any{"conversation_assignment": map[string]any{"notes": "x"}}, 422},
		{base, map[string]any{"user_id": []int{1}}, 422},
		{base, `{"user_id":`, 400},
		{"/whatsapp_conversations/" + convOther + "/conversation_assignments", map[string]any{"user_id": uOther}, 404},
		{"/whatsapp_conversations/not-a-uuid/conversation_assignments", map[string]any{"user_id": u1}, 404},
		{"/whatsapp_conversations/" + store.NewID() + "/conversation_assignments", map[string]any{"user_id": u1}, 404},
	}
	for i, c := range cases {
		if r := b.Do("POST", c.path, c.body); r.Status != c.status {
			t.Errorf("case %d: %d, want %d: %s", i, r.Status, c.status, r.Body)
		}
	}
	// A user of another project, or no user at all, is a 404, once the
	// conversation is free.
	b.Must(200, "PATCH", base+"/"+id1, map[string]any{"conversation_assignment": map[string]any{"active": false}})
	for _, u := range []string{uOther, store.NewID(), "bob"} {
		r := b.Must(404, "POST", base, map[string]any{"user_id": u})
		if r.JSON["error"] != "User not found" {
			t.Fatalf("user %s: %s", u, r.Body)
		}
	}
	if n := count(t, b, "conversation_assignments", "project_id = ?", b.Project); n != 2 {
		t.Fatalf("assignments stored: %d", n)
	}
	// Re-enable, then PATCH: reassign and change notes.
	b.Must(200, "PATCH", base+"/"+id1, map[string]any{"active": "true"})
	upd := b.Must(200, "PATCH", base+"/"+id1, map[string]any{"conversation_assignment": map[string]any{"user_id": u2, "notes": nil}}).Data()
	if upd["user_id"] != u2 || upd["notes"] != nil || upd["active"] != true {
		t.Fatalf("reassigned: %v", upd)
	}
	for _, body := range []any{
		map[string]any{"user_id": uOther},
		map[string]any{"user_id": "x"},
	} {
		b.Must(404, "PATCH", base+"/"+id1, body)
	}
	for _, body := range []any{
		map[string]any{"user_id": nil},
		map[string]any{"active": "maybe"},
		map[string]any{"active": nil},
		map[string]any{"notes": []int{1}},
	} {
		b.Must(422, "PATCH", base+"/"+id1, body)
	}
	if got := b.Must(200, "GET", base, nil).List()[0]; got["user_id"] != u2 || got["active"] != true {
		t.Fatalf("bad patches changed the assignment: %v", got)
	}

	// Unassign keeps the record; a new assignment can then be made, and the
	// old one cannot be reactivated while the new one is active.
	off := b.Must(200, "PATCH", base+"/"+id1, map[string]any{"active": false}).Data()
	if off["active"] != false {
		t.Fatalf("unassigned: %v", off)
	}
	id2 := b.Must(201, "POST", base, map[string]any{"user_id": u1}).Data()["id"].(string)
	b.Must(422, "PATCH", base+"/"+id1, map[string]any{"active": true})
	// Re-sending active:true on the active one is fine.
	b.Must(200, "PATCH", base+"/"+id2, map[string]any{"active": true})

	// PATCH on ids that do not belong here.
	b.Must(404, "PATCH", base+"/not-a-uuid", map[string]any{"notes": "x"})
	b.Must(404, "PATCH", base+"/"+store.NewID(), map[string]any{"notes": "x"})
	b.Must(404, "PATCH", "/whatsapp_conversations/"+conv2+"/conversation_assignments/"+id1, map[string]any{"notes": "x"})
	if r := b.DoKey(b.Key2, "PATCH", base+"/"+id1, map[string]any{"notes": "x"}); r.Status != 404 {
		t.Fatalf("other project PATCH: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "GET", base, nil); r.Status != 404 {
		t.Fatalf("other project GET: %d", r.Status)
	}

	// Newest first, with pagination headers.
	list := b.Must(200, "GET", base, nil)
	if got := ids(list); !slices.Equal(got, []string{id2, id1}) {
		t.Fatalf("order: %v", got)
	}
	p1 := b.Must(200, "GET", base+"?per_page=1", nil)
	h := p1.Header
	if h.Get("Total") != "2" || h.Get("Total-Pages") != "2" || h.Get("Per-Page") != "1" || h.Get("Page") != "1" {
		t.Fatalf("headers: %v", h)
	}
	link := h.Get("Link")
	if !strings.Contains(link, `page=2&per_page=1>; rel="next"`) || !strings.Contains(link, `rel="last"`) || strings.Contains(link, `rel="prev"`) ||
		!strings.HasPrefix(link, "<http://parley.test/api/v1/whatsapp_conversations/") {
		t.Fatalf("link: %s", link)
	}
	p2 := b.Must(200, "GET", base+"?per_page=1&page=2", nil)
	if got := ids(p2); !slices.Equal(got, []string{id1}) || !strings.Contains(p2.Header.Get("Link"), `page=1&per_page=1>; rel="prev"`) {
		t.Fatalf("page 2: %v %s", p2.Header, p2.Body)
	}
}

func TestAgentExecutions(t *testing.T) {
	b := apitest.Setup(t)
	cfg := newConfig(t, b, b.Project, "")
	conv := newConversation(t, b, b.Project, cfg.ID, "56911112222")
	r := b.Must(200, "GET", "/whatsapp_conversations/"+conv+"/agent_executions", nil)
	if len(r.List()) != 0 || meta(r)["total_count"].(float64) != 0 || meta(r)["page"].(float64) != 1 {
		t.Fatalf("list: %s", r.Body)
	}
	one := b.Must(404, "GET", "/whatsapp_conversations/"+conv+"/agent_executions/"+store.NewID(), nil)
	if one.JSON["error"] != "Agent execution not found" {
		t.Fatalf("get: %s", one.Body)
	}
	b.Must(404, "GET", "/whatsapp_conversations/"+conv+"/agent_executions/x", nil)
	nf := b.Must(404, "GET", "/whatsapp_conversations/"+store.NewID()+"/agent_executions", nil)
	if nf.JSON["error"] != "Conversation not found" {
		t.Fatalf("unknown conversation: %s", nf.Body)
	}
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_conversations/"+conv+"/agent_executions", nil); r.Status != 404 {
		t.Fatalf("other project: %d", r.Status)
	}
}
