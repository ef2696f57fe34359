package contacts_test

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/whatsapp"
)

func record(t *testing.T, b *apitest.Bundle, cfg *parley.WhatsAppConfig, calls ...whatsapp.Call) {
	t.Helper()
	err := b.DB.Tx(context.Background(), func(tx *store.Conn) error {
		for _, c := range calls {
			if err := contacts.RecordCall(context.Background(), tx, cfg, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func callID(t *testing.T, b *apitest.Bundle, cfg *parley.WhatsAppConfig, metaID string) string {
	t.Helper()
	k, err := contacts.GetCallByCallID(context.Background(), b.DB.Read(), cfg.ID, metaID)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID
}

func TestCalls(t *testing.T) {
	b := apitest.Setup(t)
	cfg := newConfig(t, b, b.Project, "Support Line")
	cfg2 := newConfig(t, b, b.Project, "")
	conv := newConversation(t, b, b.Project, cfg.ID, "56911112222")
	otherCfg := newConfig(t, b, b.Project2, "")
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)

	// An inbound call: connect, then terminate.
	record(t, b, cfg, whatsapp.Call{ID: "wacid.in", From: "56911112222", To: "15550000000", Event: "connect",
		Direction: "USER_INITIATED", Timestamp: t0})
	in := callID(t, b, cfg, "wacid.in")
	ringing := b.Must(200, "GET", "/whatsapp_calls/"+in, nil).Data()
	if ringing["status"] != "ringing" || ringing["direction"] != "inbound" || ringing["ended_at"] != nil ||
		ringing["session_started_at"] != t0.Format(time.RFC3339) || ringing["duration_seconds"] != nil {
		t.Fatalf("ringing: %v", ringing)
	}
	record(t, b, cfg, whatsapp.Call{ID: "wacid.in", From: "56911112222", To: "15550000000", Event: "terminate",
		Direction: "USER_INITIATED", Status: "COMPLETED", Timestamp: t0.Add(3 * time.Minute),
		StartTime: t0.Add(5 * time.Second), EndTime: t0.Add(3 * time.Minute), Duration: 175 * time.Second})
	got := b.Must(200, "GET", "/whatsapp_calls/"+in, nil).Data()
	contact := b.Must(200, "GET", "/whatsapp_contacts/56911112222", nil).Data()
	want := map[string]any{
		"id": in, "project_id": b.Project, "whatsapp_config_id": cfg.ID, "config_display_name": "Support Line",
		"config_display_phone_number": "+1 555 000 0000", "voice_agent_id": nil, "voice_agent_name": nil,
		"call_id": "wacid.in", "direction": "inbound", "status": "completed", "duration_seconds": 175.0,
		"started_at": t0.Add(5 * time.Second).Format(time.RFC3339), "ended_at": t0.Add(3 * time.Minute).Format(time.RFC3339),
		"session_started_at": t0.Format(time.RFC3339), "user_wa_id": "56911112222",
		"whatsapp_contact_id": contact["id"], "whatsapp_conversation_id": conv,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if n := count(t, b, "calls", "project_id = ?", b.Project); n != 1 {
		t.Fatalf("calls after two events: %d", n)
	}

	// A call on a config without display name shows the config's name.
	record(t, b, cfg2, whatsapp.Call{ID: "wacid.out", From: "15550000001", To: "+56 9 3333 4444", Event: "terminate",
		Status: "FAILED", Timestamp: t0})
	out := callID(t, b, cfg2, "wacid.out")
	o := b.Must(200, "GET", "/whatsapp_calls/"+out, nil).Data()
	// Without Meta's direction or a known own number, the caller is the customer.
	if o["direction"] != "inbound" || o["user_wa_id"] != "15550000001" {
		t.Fatalf("direction: %v", o)
	}
	if o["config_display_name"] != cfg2.Name || o["status"] != "failed" || o["whatsapp_conversation_id"] != nil {
		t.Fatalf("outbound: %v", o)
	}
	if _, ok := o["config_display_phone_number"]; ok {
		t.Fatalf("absent display phone must be omitted: %v", o)
	}
	record(t, b, cfg, whatsapp.Call{ID: "wacid.biz", From: "15550000000", To: "56911112222", Event: "connect", Timestamp: t0})
	biz := callID(t, b, cfg, "wacid.biz")
	if d := b.Must(200, "GET", "/whatsapp_calls/"+biz, nil).Data(); d["direction"] != "outbound" || d["user_wa_id"] != "56911112222" {
		t.Fatalf("business-initiated: %v", d)
	}
	record(t, b, otherCfg, whatsapp.Call{ID: "wacid.other", From: "56911112222", Event: "connect", Timestamp: t0})

	check := func(query string, want ...string) {
		t.Helper()
		r := b.Must(200, "GET", "/whatsapp_calls?"+query, nil)
		if got := ids(r); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", query, got, want)
		}
		if int(meta(r)["total_count"].(float64)) != len(want) {
			t.Errorf("%s: total_count %v", query, meta(r)["total_count"])
		}
	}
	check("", biz, out, in)
	check("direction=inbound", out, in)
	check("direction=outbound", biz)
	check("status=completed", in)
	check("status=COMPLETED", in)
	check("status=nope")
	check("whatsapp_config_id="+cfg2.ID, out)
	check("whatsapp_config_id=" + otherCfg.ID)
	check("whatsapp_config_id=xyz")
	check("voice_agent_id=" + store.NewID())
	check("period=today", biz, out, in)
	check("period=week", biz, out, in)
	check("period=month", biz, out, in)
	check("period=custom&start_date=2000-01-01", biz, out, in)
	check("period=custom&start_date=2000-01-01&end_date=2000-01-02")
	check("period=custom&end_date="+time.Now().UTC().Format("2006-01-02"), biz, out, in)
	check("period=custom&start_date=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)))
	if r := b.Must(200, "GET", "/whatsapp_calls?per_page=2&page=2", nil); !slices.Equal(ids(r), []string{in}) || meta(r)["total_pages"].(float64) != 2 {
		t.Errorf("page 2: %s", r.Body)
	}
	b.Must(400, "GET", "/whatsapp_calls?direction=sideways", nil)
	b.Must(400, "GET", "/whatsapp_calls?period=year", nil)
	b.Must(400, "GET", "/whatsapp_calls?period=custom&start_date=soon", nil)

	nf := b.Must(404, "GET", "/whatsapp_calls/"+store.NewID(), nil)
	if nf.JSON["error"] != "Call not found" {
		t.Fatalf("404: %s", nf.Body)
	}
	b.Must(404, "GET", "/whatsapp_calls/wacid.in", nil)
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_calls/"+in, nil); r.Status != 404 {
		t.Fatalf("other project: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_calls", nil); len(r.List()) != 1 {
		t.Fatalf("other project list: %s", r.Body)
	}

	// A call without an id is refused, and nothing is stored.
	err := b.DB.Tx(context.Background(), func(tx *store.Conn) error {
		return contacts.RecordCall(context.Background(), tx, cfg, whatsapp.Call{From: "56911112222"})
	})
	if parley.ErrorCode(err) != parley.EINVALID {
		t.Fatalf("call without id: %v", err)
	}
}

func TestCallPermissions(t *testing.T) {
	b := apitest.Setup(t)
	ctx := context.Background()
	cfg := newConfig(t, b, b.Project, "Sales")
	cfg2 := newConfig(t, b, b.Project, "")
	ct := b.Must(201, "POST", "/whatsapp_contacts", map[string]any{"wa_id": "56911112222"}).Data()["id"].(string)
	bare := b.Must(201, "POST", "/whatsapp_contacts", map[string]any{"wa_id": "56911113333"}).Data()["id"].(string)
	now := time.Now().UTC().Truncate(time.Second)
	future, past := now.Add(7*24*time.Hour), now.Add(-time.Hour)
	rec := func(cfg *parley.WhatsAppConfig, status string, exp *time.Time, msg string, at time.Time) error {
		return b.DB.Tx(ctx, func(tx *store.Conn) error {
			return contacts.RecordCallPermission(ctx, tx, cfg, ct, status, "user_action", exp, msg, at)
		})
	}
	if err := rec(cfg, "accept", &future, "wamid.1", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := rec(cfg2, "accept", &past, "wamid.2", now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := rec(cfg, "maybe", nil, "wamid.x", now); parley.ErrorCode(err) != parley.EINVALID {
		t.Fatalf("bad status: %v", err)
	}

	p := b.Must(200, "GET", "/whatsapp_contacts/%2B56%209%201111%202222/call_permissions/"+cfg.ID, nil).Data()
	want := map[string]any{"whatsapp_contact_id": ct, "whatsapp_config_id": cfg.ID, "config_display_name": "Sales",
		"status": "accepted", "source": "user_action", "expires_at": future.Format(time.RFC3339),
		"last_event_message_id": "wamid.1", "last_event_at": now.Add(-time.Minute).Format(time.RFC3339), "allowed": true}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %v, want %v", k, p[k], v)
		}
	}
	// An expired acceptance does not allow calls.
	if p2 := b.Must(200, "GET", "/whatsapp_contacts/"+ct+"/call_permissions/"+cfg2.ID, nil).Data(); p2["allowed"] != false || p2["status"] != "accepted" {
		t.Fatalf("expired: %v", p2)
	}
	list := b.Must(200, "GET", "/whatsapp_contacts/56911112222/call_permissions", nil)
	if len(list.List()) != 2 || meta(list)["total_count"].(float64) != 2 {
		t.Fatalf("list: %s", list.Body)
	}

	// A newer rejection replaces the answer; an older event is ignored.
	if err := rec(cfg, "reject", nil, "wamid.3", now); err != nil {
		t.Fatal(err)
	}
	if err := rec(cfg, "accepted", &future, "wamid.0", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	p = b.Must(200, "GET", "/whatsapp_contacts/"+ct+"/call_permissions/"+cfg.ID, nil).Data()
	if p["status"] != "rejected" || p["allowed"] != false || p["last_event_message_id"] != "wamid.3" || p["expires_at"] != nil {
		t.Fatalf("rejected: %v", p)
	}
	if n := count(t, b, "call_permissions", "contact_id = ?", ct); n != 2 {
		t.Fatalf("permissions stored: %d", n)
	}

	if l := b.Must(200, "GET", "/whatsapp_contacts/"+bare+"/call_permissions", nil); len(l.List()) != 0 {
		t.Fatalf("contact without permissions: %s", l.Body)
	}
	nf := b.Must(404, "GET", "/whatsapp_contacts/"+bare+"/call_permissions/"+cfg.ID, nil)
	if nf.JSON["error"] != "Call permission not found" {
		t.Fatalf("no permission: %s", nf.Body)
	}
	b.Must(404, "GET", "/whatsapp_contacts/"+ct+"/call_permissions/not-a-uuid", nil)
	for _, path := range []string{"/whatsapp_contacts/56900000000/call_permissions", "/whatsapp_contacts/" + store.NewID() + "/call_permissions/" + cfg.ID} {
		r := b.Must(404, "GET", path, nil)
		if r.JSON["error"] != "WhatsApp contact not found" {
			t.Fatalf("%s: %s", path, r.Body)
		}
	}
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_contacts/"+ct+"/call_permissions", nil); r.Status != 404 {
		t.Fatalf("other project: %d", r.Status)
	}
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_contacts/56911112222/call_permissions/"+cfg.ID, nil); r.Status != 404 {
		t.Fatalf("other project by phone: %d", r.Status)
	}
}
