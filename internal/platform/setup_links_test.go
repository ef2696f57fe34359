package platform_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
)

func TestSetupLinks(t *testing.T) {
	b := apitest.Setup(t)
	cust := newCustomer(b, "Acme")
	base := "/customers/" + cust + "/setup_links"

	// Empty body: defaults.
	first := b.Must(201, "POST", base, nil).Data()
	exp, err := time.Parse(time.RFC3339, first["expires_at"].(string))
	if err != nil || exp.Sub(time.Now()) < 29*24*time.Hour || exp.Sub(time.Now()) > 31*24*time.Hour {
		t.Fatalf("expires_at: %v %v", first["expires_at"], err)
	}
	if first["status"] != "active" || len(first["allowed_connection_types"].([]any)) != 2 || first["provision_phone_number"] != false ||
		first["phone_number_country_isos"].([]any)[0] != "US" || first["success_redirect_url"] != nil || first["provisioned_phone_number"] != nil {
		t.Fatalf("defaults: %v", first)
	}
	u := first["url"].(string)
	if !strings.HasPrefix(u, "http://parley.test/whatsapp/setup/") || len(strings.TrimPrefix(u, "http://parley.test/whatsapp/setup/")) < 20 {
		t.Fatalf("url: %s", u)
	}

	// A second link revokes the first.
	second := b.Must(201, "POST", base, map[string]any{"setup_link": map[string]any{
		"success_redirect_url": "https://app.example/ok", "failure_redirect_url": "https://app.example/fail",
		"allowed_connection_types": []string{"dedicated"}, "provision_phone_number": true, "phone_number_area_code": "415",
		"phone_number_country_isos": []string{"us", "cl"}, "language": "es",
		"theme_config": map[string]any{"primary_color": "#3B82F6", "unknown_color": "#000000"},
	}}).Data()
	if second["success_redirect_url"] != "https://app.example/ok" || second["allowed_connection_types"].([]any)[0] != "dedicated" ||
		second["phone_number_area_code"] != "415" || second["phone_number_country_isos"].([]any)[1] != "CL" || second["language"] != "es" {
		t.Fatalf("second: %v", second)
	}
	if th := second["theme_config"].(map[string]any); th["primary_color"] != "#3b82f6" || len(th) != 1 {
		t.Fatalf("theme: %v", th)
	}
	list := b.Must(200, "GET", base, nil)
	if ls := list.List(); len(ls) != 2 || ls[0]["id"] != second["id"] || ls[1]["status"] != "revoked" || ls[0]["status"] != "active" {
		t.Fatalf("list: %s", list.Body)
	}
	if m := list.JSON["meta"].(map[string]any); m["total_count"].(float64) != 2 {
		t.Fatalf("meta: %v", m)
	}

	// PATCH.
	sid := second["id"].(string)
	newExp := time.Now().Add(60 * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	p := b.Must(200, "PATCH", base+"/"+sid, map[string]any{"setup_link": map[string]any{
		"expires_at": newExp, "theme_config": map[string]any{"background_color": "#ffffff"}, "success_redirect_url": nil,
		"allowed_connection_types": []string{"coexistence", "dedicated"}}}).Data()
	if p["expires_at"] != newExp || p["success_redirect_url"] != nil || len(p["allowed_connection_types"].([]any)) != 2 {
		t.Fatalf("patch: %v", p)
	}
	if th := p["theme_config"].(map[string]any); th["background_color"] != "#ffffff" || th["primary_color"] != nil {
		t.Fatalf("theme replaced: %v", th)
	}
	if p := b.Must(200, "PATCH", base+"/"+sid, map[string]any{"status": "revoked"}).Data(); p["status"] != "revoked" {
		t.Fatalf("revoke: %v", p)
	}
	// Re-activating the first link keeps one active link per customer.
	fid := first["id"].(string)
	b.Must(200, "PATCH", base+"/"+sid, map[string]any{"status": "active"})
	b.Must(200, "PATCH", base+"/"+fid, map[string]any{"status": "active"})
	for _, l := range b.Must(200, "GET", base, nil).List() {
		if (l["id"] == fid) != (l["status"] == "active") {
			t.Fatalf("one active link: %v %v", l["id"], l["status"])
		}
	}
	// A link past expires_at renders expired.
	if _, err := b.DB.Write().Exec(t.Context(), `UPDATE setup_links SET expires_at = ? WHERE id = ?`, time.Now().Add(-time.Minute).UnixMicro(), fid); err != nil {
		t.Fatal(err)
	}
	if l := b.Must(200, "GET", base, nil).List(); l[1]["status"] != "expired" {
		t.Fatalf("expired: %v", l[1])
	}

	// Validation: 422 with the message as Kapso's error title, nothing changed.
	cases := []struct {
		body any
		want string
	}{
		{map[string]any{"success_redirect_url": "not a url"}, "Success redirect url must be a valid URL"},
		{map[string]any{"failure_redirect_url": "ftp://x.example"}, "Failure redirect url must be a valid URL"},
		{map[string]any{"allowed_connection_types": []string{"coexistence", "invalid"}}, "Allowed connection types contains invalid types: invalid"},
		{map[string]any{"allowed_connection_types": []string{}}, "Allowed connection types can't be blank"},
		{map[string]any{"allowed_connection_types": "dedicated"}, "must be an array"},
		{map[string]any{"theme_config": map[string]any{"primary_color": "blue"}}, "Theme config primary_color"},
		{map[string]any{"theme_config": map[string]any{"text_color": "#12345"}}, "Theme config text_color"},
		{map[string]any{"theme_config": "dark"}, "Theme config must be an object"},
		{map[string]any{"provision_phone_number": "sometimes"}, "Provision phone number must be a boolean"},
		{map[string]any{"phone_number_area_code": "4a5"}, "Phone number area code"},
		{map[string]any{"phone_number_country_isos": []string{"USA"}}, "Phone number country isos contains invalid codes: USA"},
		{map[string]any{"language": "fr"}, "Language is not included in the list"},
		{map[string]any{"expires_at": "2001-01-01T00:00:00Z"}, "Expires at must be in the future"},
		{map[string]any{"expires_at": "soon"}, "Expires at must be an ISO 8601 time"},
	}
	beforeCount := countRows(t, b, "setup_links")
	for i, c := range cases {
		for _, m := range []struct{ method, path string }{{"POST", base}, {"PATCH", base + "/" + sid}} {
			r := b.Do(m.method, m.path, map[string]any{"setup_link": c.body})
			if r.Status != 422 || !strings.Contains(string(r.Body), c.want) {
				t.Errorf("case %d %s: %d %s, want %q", i, m.method, r.Status, r.Body, c.want)
			}
		}
	}
	r := b.Must(422, "POST", base, map[string]any{"success_redirect_url": "nope"})
	if r.JSON["error"] != "Success redirect url must be a valid URL" {
		t.Fatalf("error title: %s", r.Body)
	}
	for _, body := range []map[string]any{{"status": "used"}, {"status": "paused"}} {
		b.Must(422, "PATCH", base+"/"+sid, body)
	}
	if n := countRows(t, b, "setup_links"); n != beforeCount {
		t.Fatalf("bad input stored links: %d -> %d", beforeCount, n)
	}
	if l := b.Must(200, "GET", base, nil).List(); l[0]["status"] != "revoked" || l[0]["expires_at"] != newExp {
		t.Fatalf("failed patches changed link: %v", l[0])
	}
	// A used link's status is final.
	if _, err := b.DB.Write().Exec(t.Context(), `UPDATE setup_links SET status = 'used' WHERE id = ?`, sid); err != nil {
		t.Fatal(err)
	}
	b.Must(422, "PATCH", base+"/"+sid, map[string]any{"status": "active"})

	// Tenancy and unknown ids.
	other := newCustomer(b, "Other")
	b.Must(404, "PATCH", "/customers/"+other+"/setup_links/"+sid, map[string]any{"status": "revoked"})
	b.Must(404, "GET", "/customers/nope/setup_links", nil)
	b.Must(404, "POST", "/customers/00000000-0000-4000-8000-000000000000/setup_links", nil)
	b.Must(404, "PATCH", base+"/nope", map[string]any{"status": "revoked"})
	for _, req := range []struct{ method, path string }{{"GET", base}, {"POST", base}, {"PATCH", base + "/" + sid}} {
		if r := b.DoKey(b.Key2, req.method, req.path, map[string]any{}); r.Status != 404 {
			t.Errorf("other project %s %s: %d", req.method, req.path, r.Status)
		}
	}
}

func TestSetupPage(t *testing.T) {
	b := apitest.Setup(t)
	cust := newCustomer(b, "Acme")
	base := "/customers/" + cust + "/setup_links"
	link := b.Must(201, "POST", base, nil).Data()
	token := strings.TrimPrefix(link["url"].(string), "http://parley.test/whatsapp/setup/")
	get := func(tok string) (int, string) {
		t.Helper()
		res, err := http.Get(b.Srv.URL + "/whatsapp/setup/" + tok)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("content type %q", res.Header.Get("Content-Type"))
		}
		return res.StatusCode, string(body)
	}
	if st, body := get(token); st != 200 || !strings.Contains(body, "valid") || !strings.Contains(body, "not available in this version") {
		t.Fatalf("active page: %d %s", st, body)
	}
	b.Must(200, "PATCH", base+"/"+link["id"].(string), map[string]any{"status": "revoked"})
	if st, body := get(token); st != 200 || !strings.Contains(body, "revoked") {
		t.Fatalf("revoked page: %d %s", st, body)
	}
	b.Must(200, "PATCH", base+"/"+link["id"].(string), map[string]any{"status": "expired"})
	if st, body := get(token); st != 200 || !strings.Contains(body, "expired") {
		t.Fatalf("expired page: %d %s", st, body)
	}
	if st, _ := get("unknown-token"); st != 404 {
		t.Fatalf("unknown token: %d", st)
	}
}
