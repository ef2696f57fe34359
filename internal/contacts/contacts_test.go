package contacts_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/store"
)

func TestContactCreateGetPatch(t *testing.T) {
	b := apitest.Setup(t)
	c := b.Must(201, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{
		"wa_id": "+56 9 1111 2222", "profile_name": "Ana", "metadata": map[string]any{"tier": "gold"}, "unknown": 1}}).Data()
	if c["wa_id"] != "56911112222" || c["profile_name"] != "Ana" || c["customer_id"] != nil ||
		c["metadata"].(map[string]any)["tier"] != "gold" {
		t.Fatalf("created: %v", c)
	}
	id := c["id"].(string)
	// Bare attributes, no profile name: rendered as null, metadata as {}.
	c2 := b.Must(201, "POST", "/whatsapp_contacts", map[string]any{"wa_id": 14155550123}).Data()
	if c2["wa_id"] != "14155550123" || c2["profile_name"] != nil || len(c2["metadata"].(map[string]any)) != 0 {
		t.Fatalf("bare: %v", c2)
	}

	// The identifier is the UUID or the phone in any format.
	for _, ident := range []string{id, strings.ToUpper(id), "56911112222", "+56 9 1111 2222", "+56-9-1111-2222"} {
		got := b.Must(200, "GET", "/whatsapp_contacts/"+url.PathEscape(ident), nil).Data()
		if got["id"] != id {
			t.Fatalf("identifier %q found %v", ident, got["id"])
		}
	}
	for _, ident := range []string{"56911112223", "abc", "12", store.NewID()} {
		r := b.Must(404, "GET", "/whatsapp_contacts/"+url.PathEscape(ident), nil)
		if r.JSON["error"] != "Contact not found" {
			t.Fatalf("404 body: %s", r.Body)
		}
	}

	// PATCH changes only profile_name and metadata.
	upd := b.Must(200, "PATCH", "/whatsapp_contacts/%2B56911112222", map[string]any{"contact": map[string]any{
		"profile_name": "Ana María", "metadata": map[string]any{"vip": true}, "wa_id": "999999999", "customer_id": store.NewID()}}).Data()
	if upd["profile_name"] != "Ana María" || upd["wa_id"] != "56911112222" || upd["customer_id"] != nil ||
		upd["metadata"].(map[string]any)["vip"] != true || upd["metadata"].(map[string]any)["tier"] != nil {
		t.Fatalf("patched: %v", upd)
	}
	// An empty PATCH changes nothing.
	same := b.Must(200, "PATCH", "/whatsapp_contacts/"+id, map[string]any{}).Data()
	if same["profile_name"] != "Ana María" {
		t.Fatalf("empty patch: %v", same)
	}
	b.Must(422, "PATCH", "/whatsapp_contacts/"+id, map[string]any{"contact": map[string]any{"metadata": "x"}})
	b.Must(422, "PATCH", "/whatsapp_contacts/"+id, map[string]any{"contact": map[string]any{"profile_name": []int{1}}})
	b.Must(400, "PATCH", "/whatsapp_contacts/"+id, `{"contact":`)
	if got := b.Must(200, "GET", "/whatsapp_contacts/"+id, nil).Data(); got["profile_name"] != "Ana María" {
		t.Fatalf("bad patches changed data: %v", got)
	}

	// Tenancy: the other project sees nothing, by UUID or phone.
	for _, ident := range []string{id, "56911112222"} {
		if r := b.DoKey(b.Key2, "GET", "/whatsapp_contacts/"+ident, nil); r.Status != 404 {
			t.Fatalf("other project GET %s: %d", ident, r.Status)
		}
		if r := b.DoKey(b.Key2, "PATCH", "/whatsapp_contacts/"+ident, map[string]any{"profile_name": "x"}); r.Status != 404 {
			t.Fatalf("other project PATCH %s: %d", ident, r.Status)
		}
	}
	if r := b.DoKey(b.Key2, "GET", "/whatsapp_contacts", nil); len(r.List()) != 0 {
		t.Fatalf("other project list: %s", r.Body)
	}
	// The same number is a separate contact in another project.
	if r := b.DoKey(b.Key2, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{"wa_id": "56911112222"}}); r.Status != 201 {
		t.Fatalf("other project create: %d %s", r.Status, r.Body)
	}
}

func TestContactCreateValidation(t *testing.T) {
	b := apitest.Setup(t)
	b.Must(201, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{"wa_id": "56911112222"}})
	other := b.DoKey(b.Key2, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Theirs"}}).Data()["id"].(string)

	dup := b.Must(422, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{"wa_id": "+56 9 1111 2222"}})
	if errs, _ := dup.JSON["errors"].([]any); len(errs) != 1 || errs[0] != "Wa_id has already been taken" {
		t.Fatalf("duplicate: %s", dup.Body)
	}
	cases := []struct {
		body   any
		status int
	}{
		{`{"contact":`, 400},
		{`[1]`, 400},
		{map[string]any{"contact": map[string]any{}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": ""}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": nil}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "123"}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "abcdefghij"}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": strings.Repeat("1", 16)}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": []string{"1"}}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "14155550100", "metadata": "x"}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "14155550100", "metadata": []int{1}}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "14155550100", "profile_name": map[string]any{}}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "14155550100", "customer_id": other}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "14155550100", "customer_id": store.NewID()}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "14155550100", "customer_id": "nope"}}, 422},
		{map[string]any{"contact": map[string]any{"wa_id": "14155550100", "customer_id": 5}}, 422},
		{map[string]any{"contact": "x"}, 422},
		{`{"contact":{"wa_id":"1415555010` + strings.Repeat("0", 2<<20) + `"}}`, 413},
	}
	for i, c := range cases {
		r := b.Do("POST", "/whatsapp_contacts", c.body)
		if r.Status != c.status {
			t.Errorf("case %d: status %d, want %d: %.200s", i, r.Status, c.status, r.Body)
		}
		if _, ok := r.JSON["error"].(string); !ok {
			t.Errorf("case %d: no error title: %.200s", i, r.Body)
		}
	}
	if n := count(t, b, "contacts", "project_id = ?", b.Project); n != 1 {
		t.Fatalf("bad requests stored contacts: %d", n)
	}
}

func TestContactWithCustomerAndFilters(t *testing.T) {
	b := apitest.Setup(t)
	c1 := b.Must(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "One"}}).Data()["id"].(string)
	c2 := b.Must(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Two", "external_customer_id": "ext-2"}}).Data()["id"].(string)
	mk := func(body map[string]any) string {
		return b.Must(201, "POST", "/whatsapp_contacts", map[string]any{"contact": body}).Data()["id"].(string)
	}
	a := mk(map[string]any{"wa_id": "15551230001", "profile_name": "John Doe", "customer_id": strings.ToUpper(c1)})
	bb := mk(map[string]any{"wa_id": "15559990002", "profile_name": "JOHNNY Smith", "customer_id": c2})
	c := mk(map[string]any{"wa_id": "15551230003", "profile_name": "Ñandú López"})
	d := mk(map[string]any{"wa_id": "15551230004"})
	e := mk(map[string]any{"wa_id": "15551230005", "profile_name": "Seán O'Brien_100% \\ ok?"})
	if got := b.Must(200, "GET", "/whatsapp_contacts/"+a, nil).Data(); got["customer_id"] != c1 {
		t.Fatalf("customer_id: %v", got)
	}

	check := func(query string, want ...string) {
		t.Helper()
		r := b.Must(200, "GET", "/whatsapp_contacts?"+query, nil)
		if got := ids(r); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", query, got, want)
		}
		if int(meta(r)["total_count"].(float64)) != len(want) {
			t.Errorf("%s: total_count %v", query, meta(r)["total_count"])
		}
	}
	// Newest first.
	check("", e, d, c, bb, a)
	check("q[customer_id_eq]="+c1, a)
	check("q[customer_id_eq]=not-a-uuid")
	check("q[customer_external_customer_id_eq]=ext-2", bb)
	check("q[customer_external_customer_id_eq]=nope")
	check("q[customer_id_null]=true", e, d, c)
	check("q[customer_id_null]=false", bb, a)
	check("q[customer_id_not_null]=true", bb, a)
	check("q[customer_id_not_null]=1", bb, a)
	check("q[customer_id_not_null]=false", e, d, c)
	check("q[customer_id_null]=maybe", e, d, c, bb, a)
	check("q[profile_name_cont]=john", bb, a)
	check("q[profile_name_cont]=JOHN", bb, a)
	check("q[profile_name_cont]=%C3%B1AND%C3%9A", c) // "ñANDÚ"
	check("q[profile_name_cont]=%25", e)             // a literal %, not a wildcard
	// Quotes, wildcards, backslashes and placeholders are matched as
	// written (PostgreSQL writes the pattern into the statement).
	check("q[profile_name_cont]="+url.QueryEscape("o'b"), e)
	check("q[profile_name_cont]="+url.QueryEscape("N_1"), e)
	check("q[profile_name_cont]=" + url.QueryEscape("N%1"))
	check("q[profile_name_cont]="+url.QueryEscape("n_100% \\ ok?"), e)
	check("q[profile_name_cont]=" + url.QueryEscape("'; DROP TABLE contacts; --"))
	b.Must(400, "GET", "/whatsapp_contacts?q[profile_name_cont]="+url.QueryEscape("a\x00b"), nil)
	b.Must(400, "GET", "/whatsapp_contacts?q[profile_name_cont]=%FF%FE", nil)
	check("q[profile_name_cont]=?", e)
	check("q[wa_id_cont]=999", bb)
	check("q[wa_id_cont]=%2B1%20555", e, d, c, bb, a)
	check("q[wa_id_cont]=abc")
	check("q[profile_name_cont]=john&q[customer_id_null]=true")
	check("q[created_at_gteq]=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)))
	check("q[created_at_lteq]="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), e, d, c, bb, a)
	check("q[created_at_gteq]=2000-01-01", e, d, c, bb, a)
	check("q[created_at_lteq]=2000-01-01")
	check("unknown=1&q[unknown_eq]=2", e, d, c, bb, a)
	b.Must(400, "GET", "/whatsapp_contacts?q[created_at_gteq]=yesterday", nil)

	r := b.Must(200, "GET", "/whatsapp_contacts?per_page=3&page=2", nil)
	if got := ids(r); !slices.Equal(got, []string{bb, a}) || meta(r)["total_pages"].(float64) != 2 || meta(r)["page"].(float64) != 2 {
		t.Fatalf("page 2: %s", r.Body)
	}
	// Deleting the customer deletes its contacts (the schema cascades).
	b.Must(204, "DELETE", "/customers/"+c1, nil)
	b.Must(404, "GET", "/whatsapp_contacts/"+a, nil)
}

func TestUpsertAndResolve(t *testing.T) {
	b := apitest.Setup(t)
	ctx := context.Background()
	cust := b.Must(201, "POST", "/customers", map[string]any{"name": "Acme"}).Data()["id"].(string)
	var first *parley.Contact
	tx := func(fn func(tx *store.Conn) error) {
		t.Helper()
		if err := b.DB.Tx(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	tx(func(c *store.Conn) (err error) {
		first, err = contacts.Upsert(ctx, c, b.Project, nil, "+1 (415) 555-0100", "")
		return err
	})
	if first.WaID != "14155550100" || first.ProfileName != nil || first.CustomerID != nil || first.Metadata == nil {
		t.Fatalf("created: %+v", first)
	}
	var again *parley.Contact
	tx(func(c *store.Conn) (err error) {
		again, err = contacts.Upsert(ctx, c, b.Project, &cust, "14155550100", "Bob")
		return err
	})
	if again.ID != first.ID || again.ProfileName == nil || *again.ProfileName != "Bob" || again.CustomerID == nil || *again.CustomerID != cust {
		t.Fatalf("updated: %+v", again)
	}
	// An empty name keeps the stored one; a customer never moves.
	other := b.Must(201, "POST", "/customers", map[string]any{"name": "Other"}).Data()["id"].(string)
	tx(func(c *store.Conn) (err error) {
		again, err = contacts.Upsert(ctx, c, b.Project, &other, "14155550100", " ")
		return err
	})
	if *again.ProfileName != "Bob" || *again.CustomerID != cust {
		t.Fatalf("kept: %+v", again)
	}
	// The name is searchable case-insensitively.
	r := b.Must(200, "GET", "/whatsapp_contacts?q[profile_name_cont]=BO", nil)
	if got := ids(r); !slices.Equal(got, []string{first.ID}) {
		t.Fatalf("search upserted: %s", r.Body)
	}
	if err := b.DB.Tx(ctx, func(c *store.Conn) error {
		_, err := contacts.Upsert(ctx, c, b.Project, nil, "12", "x")
		return err
	}); parley.ErrorCode(err) != parley.EINVALID {
		t.Fatalf("invalid phone: %v", err)
	}
	// Resolve: UUID, phone, other project.
	for _, ident := range []string{first.ID, "+1 415 555 0100"} {
		got, err := contacts.Resolve(ctx, b.DB.Read(), b.Project, ident)
		if err != nil || got.ID != first.ID {
			t.Fatalf("resolve %q: %v %v", ident, got, err)
		}
	}
	if _, err := contacts.Resolve(ctx, b.DB.Read(), b.Project2, first.ID); !parley.IsNotFound(err) {
		t.Fatalf("resolve other project: %v", err)
	}
	if n := count(t, b, "contacts", "project_id = ?", b.Project); n != 1 {
		t.Fatalf("contacts: %d", n)
	}
}

func TestNotes(t *testing.T) {
	b := apitest.Setup(t)
	ct := b.Must(201, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{"wa_id": "56911112222"}}).Data()["id"].(string)
	other := b.Must(201, "POST", "/whatsapp_contacts", map[string]any{"contact": map[string]any{"wa_id": "56911113333"}}).Data()["id"].(string)
	base := "/whatsapp_contacts/" + ct + "/notes"

	n1 := b.Must(201, "POST", base, map[string]any{"note": map[string]any{"content": "Prefers mornings", "name": "Pref", "metadata": map[string]any{"k": 1}}}).Data()
	if n1["content"] != "Prefers mornings" || n1["name"] != "Pref" || n1["metadata"].(map[string]any)["k"].(float64) != 1 {
		t.Fatalf("note: %v", n1)
	}
	// By phone, bare attributes, no name.
	n2 := b.Must(201, "POST", "/whatsapp_contacts/%2B56%209%201111%202222/notes", map[string]any{"content": "Second"}).Data()
	if n2["name"] != nil || len(n2["metadata"].(map[string]any)) != 0 {
		t.Fatalf("note 2: %v", n2)
	}
	id1, id2 := n1["id"].(string), n2["id"].(string)

	list := b.Must(200, "GET", "/whatsapp_contacts/56911112222/notes", nil)
	if got := ids(list); !slices.Equal(got, []string{id2, id1}) || meta(list)["total_count"].(float64) != 2 {
		t.Fatalf("list: %s", list.Body)
	}
	if l := b.Must(200, "GET", "/whatsapp_contacts/"+other+"/notes", nil); len(l.List()) != 0 {
		t.Fatalf("other contact's notes: %s", l.Body)
	}
	if got := b.Must(200, "GET", base+"/"+id1, nil).Data(); got["id"] != id1 {
		t.Fatalf("get: %v", got)
	}
	// A note is only found under its own contact.
	b.Must(404, "GET", "/whatsapp_contacts/"+other+"/notes/"+id1, nil)
	b.Must(404, "PATCH", "/whatsapp_contacts/"+other+"/notes/"+id1, map[string]any{"content": "x"})
	b.Must(404, "DELETE", "/whatsapp_contacts/"+other+"/notes/"+id1, nil)
	b.Must(404, "GET", base+"/not-a-uuid", nil)
	b.Must(404, "GET", base+"/"+store.NewID(), nil)
	b.Must(404, "GET", "/whatsapp_contacts/56900000000/notes", nil)
	b.Must(404, "POST", "/whatsapp_contacts/56900000000/notes", map[string]any{"content": "x"})

	// PATCH is partial.
	upd := b.Must(200, "PATCH", base+"/"+id1, map[string]any{"note": map[string]any{"name": nil}}).Data()
	if upd["name"] != nil || upd["content"] != "Prefers mornings" || upd["metadata"].(map[string]any)["k"].(float64) != 1 {
		t.Fatalf("patch name: %v", upd)
	}
	upd = b.Must(200, "PATCH", base+"/"+id1, map[string]any{"note": map[string]any{"content": "Evenings", "metadata": map[string]any{}}}).Data()
	if upd["content"] != "Evenings" || len(upd["metadata"].(map[string]any)) != 0 {
		t.Fatalf("patch content: %v", upd)
	}

	// Validation: nothing stored or changed.
	for _, body := range []any{
		map[string]any{"note": map[string]any{}},
		map[string]any{"note": map[string]any{"content": "  "}},
		map[string]any{"note": map[string]any{"content": []int{1}}},
		map[string]any{"note": map[string]any{"content": "x", "metadata": "m"}},
		map[string]any{"note": map[string]any{"content": "x", "name": map[string]any{}}},
	} {
		b.Must(422, "POST", base, body)
	}
	b.Must(400, "POST", base, `{"note"`)
	b.Must(422, "PATCH", base+"/"+id1, map[string]any{"note": map[string]any{"content": ""}})
	b.Must(422, "PATCH", base+"/"+id1, map[string]any{"note": map[string]any{"content": nil}})
	if n := count(t, b, "contact_notes", "project_id = ?", b.Project); n != 2 {
		t.Fatalf("notes stored: %d", n)
	}
	if got := b.Must(200, "GET", base+"/"+id1, nil).Data(); got["content"] != "Evenings" {
		t.Fatalf("bad patch changed note: %v", got)
	}

	// Tenancy.
	for _, m := range []string{"GET", "DELETE"} {
		if r := b.DoKey(b.Key2, m, base+"/"+id1, nil); r.Status != 404 {
			t.Fatalf("other project %s: %d", m, r.Status)
		}
	}
	if r := b.DoKey(b.Key2, "POST", base, map[string]any{"content": "x"}); r.Status != 404 {
		t.Fatalf("other project POST: %d", r.Status)
	}

	b.Must(204, "DELETE", base+"/"+id1, nil)
	b.Must(404, "GET", base+"/"+id1, nil)
	b.Must(404, "DELETE", base+"/"+id1, nil)
	if n := count(t, b, "contact_notes", "project_id = ?", b.Project); n != 1 {
		t.Fatalf("notes after delete: %d", n)
	}
}
