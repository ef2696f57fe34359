package platformapi_test

import (
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
)

func connect(t *testing.T, b *apitest.Bundle, customerID, pnid string) map[string]any {
	t.Helper()
	return b.PMust(201, "POST", "/customers/"+customerID+"/whatsapp/phone_numbers", map[string]any{"whatsapp_phone_number": map[string]any{
		"phone_number_id": pnid, "business_account_id": "waba-" + pnid, "access_token": "EAAB-secret-" + pnid,
		"webhook_destination_url": "https://example.com/meta",
	}}).Data()
}

func TestPhoneNumbers(t *testing.T) {
	b := apitest.Setup(t)
	cust := b.PMust(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Acme"}}).Data()["id"].(string)
	pn := connect(t, b, cust, "1111")
	if pn["id"] != "1111" || pn["phone_number_id"] != "1111" || pn["internal_id"] == nil || pn["customer_id"] != cust || pn["name"] != "1111" {
		t.Fatalf("connected: %v", pn)
	}
	if _, ok := pn["access_token"]; ok {
		t.Error("access token rendered")
	}
	internal := pn["internal_id"].(string)
	connect(t, b, cust, "2222")
	// One store: /api/v1 addresses it by its config id.
	v1 := b.Must(200, "GET", "/whatsapp_configs/"+internal, nil).Data()
	if v1["phone_number_id"] != "1111" {
		t.Errorf("v1 view: %v", v1)
	}
	b.Must(200, "PATCH", "/whatsapp_configs/"+internal, map[string]any{"whatsapp_config": map[string]any{"name": "Support"}})
	if got := b.PMust(200, "GET", "/whatsapp/phone_numbers/1111", nil).Data()["name"]; got != "Support" {
		t.Errorf("name after v1 patch: %v", got)
	}
	up := b.PMust(200, "PATCH", "/whatsapp/phone_numbers/1111", map[string]any{"whatsapp_phone_number": map[string]any{"name": "Sales", "calls_enabled": true}}).Data()
	if up["name"] != "Sales" || up["calls_enabled"] != true {
		t.Errorf("patched: %v", up)
	}
	b.PMust(422, "PATCH", "/whatsapp/phone_numbers/1111", map[string]any{"whatsapp_phone_number": map[string]any{"name": ""}})
	if got := b.PMust(200, "GET", "/whatsapp/phone_numbers/1111", nil).Data()["name"]; got != "Sales" {
		t.Errorf("a refused patch changed the name: %v", got)
	}
	for q, want := range map[string]int{"": 2, "?phone_number_id=2222": 1, "?business_account_id=waba-1111": 1,
		"?customer_id=" + cust: 2, "?customer_id=00000000-0000-0000-0000-000000000000": 0, "?per_page=1": 1} {
		if n := len(b.PMust(200, "GET", "/whatsapp/phone_numbers"+q, nil).List()); n != want {
			t.Errorf("list %q: %d, want %d", q, n, want)
		}
	}
	// Connecting the same number again is refused.
	r := b.P("POST", "/customers/"+cust+"/whatsapp/phone_numbers", map[string]any{"whatsapp_phone_number": map[string]any{
		"phone_number_id": "1111", "business_account_id": "w", "access_token": "t"}})
	if r.Status != 422 {
		t.Errorf("duplicate connect: %d %s", r.Status, r.Body)
	}
	b.PMust(422, "POST", "/customers/"+cust+"/whatsapp/phone_numbers", map[string]any{"whatsapp_phone_number": map[string]any{}})
	b.PMust(404, "POST", "/customers/00000000-0000-0000-0000-000000000000/whatsapp/phone_numbers", map[string]any{"whatsapp_phone_number": map[string]any{
		"phone_number_id": "3333", "business_account_id": "w", "access_token": "t"}})
	// Tenancy.
	for _, p := range []string{"/whatsapp/phone_numbers/1111", "/whatsapp/phone_numbers/1111/display_name_requests", "/whatsapp/phone_numbers/1111/health"} {
		if r := b.PKey(b.Key2, "GET", p, nil); r.Status != 404 {
			t.Errorf("other project %s: %d", p, r.Status)
		}
	}
	if n := len(b.PKey(b.Key2, "GET", "/whatsapp/phone_numbers", nil).List()); n != 0 {
		t.Errorf("other project lists %d", n)
	}
	b.PMust(404, "GET", "/whatsapp/phone_numbers/9999", nil)
}

func TestSandboxHealthAndDisplayNames(t *testing.T) {
	b := apitest.Setup(t)
	cfg := b.SandboxConfig(b.Project)
	h := b.PMust(200, "GET", "/whatsapp/phone_numbers/"+cfg.PhoneNumberID+"/health", nil)
	if h.JSON["status"] == nil || h.JSON["checks"] == nil || h.JSON["data"] != nil {
		t.Errorf("health: %s", h.Body)
	}
	d := b.PMust(201, "POST", "/whatsapp/phone_numbers/"+cfg.PhoneNumberID+"/display_name_requests",
		map[string]any{"display_name_request": map[string]any{"new_display_name": "Acme Support"}}).Data()
	if d["whatsapp_config_id"] != cfg.ID {
		t.Errorf("display name request: %v", d)
	}
	b.PMust(200, "GET", "/whatsapp/phone_numbers/"+cfg.PhoneNumberID+"/display_name_requests/"+d["id"].(string), nil)
	if n := len(b.PMust(200, "GET", "/whatsapp/phone_numbers/"+cfg.PhoneNumberID+"/display_name_requests", nil).List()); n != 1 {
		t.Errorf("list: %d", n)
	}
	// The same request through /api/v1.
	b.Must(200, "GET", "/whatsapp_configs/"+cfg.ID+"/display_name_requests/"+d["id"].(string), nil)
	b.PMust(422, "POST", "/whatsapp/phone_numbers/"+cfg.PhoneNumberID+"/display_name_requests",
		map[string]any{"display_name_request": map[string]any{"new_display_name": ""}})
	if r := b.PKey(b.Key2, "GET", "/whatsapp/phone_numbers/"+cfg.PhoneNumberID+"/display_name_requests/"+d["id"].(string), nil); r.Status != 404 {
		t.Errorf("other project: %d", r.Status)
	}
}

func TestSetupLinksAndUsers(t *testing.T) {
	b := apitest.Setup(t)
	cust := b.PMust(201, "POST", "/customers", map[string]any{"customer": map[string]any{"name": "Acme"}}).Data()["id"].(string)
	base := "/customers/" + cust + "/setup_links"
	l1 := b.PMust(201, "POST", base, nil).Data()
	l2 := b.PMust(201, "POST", base, map[string]any{"setup_link": map[string]any{"success_redirect_url": "https://app.example.com/ok", "language": "es"}}).Data()
	if l2["status"] != "active" || l2["url"] == nil {
		t.Fatalf("created: %v", l2)
	}
	// The first link was revoked by the second.
	if got := b.PMust(200, "GET", base+"?status=revoked", nil).List(); len(got) != 1 || got[0]["id"] != l1["id"] {
		t.Errorf("revoked filter: %v", got)
	}
	if got := b.PMust(200, "GET", base+"?status=active", nil).List(); len(got) != 1 || got[0]["id"] != l2["id"] {
		t.Errorf("active filter: %v", got)
	}
	if got := b.PMust(200, "GET", base+"?created_after=2100-01-01T00:00:00Z", nil).List(); len(got) != 0 {
		t.Errorf("created_after: %v", got)
	}
	b.PMust(400, "GET", base+"?status=bogus", nil)
	b.PMust(400, "GET", base+"?created_before=yesterday", nil)
	up := b.PMust(200, "PATCH", base+"/"+l2["id"].(string), map[string]any{"setup_link": map[string]any{"status": "revoked"}}).Data()
	if up["status"] != "revoked" {
		t.Errorf("revoke: %v", up)
	}
	// /api/v1 sees the same links.
	if n := len(b.Must(200, "GET", base, nil).List()); n != 2 {
		t.Errorf("v1 list: %d", n)
	}
	b.PMust(422, "PATCH", base+"/"+l2["id"].(string), map[string]any{"setup_link": map[string]any{"language": "xx"}})
	if r := b.PKey(b.Key2, "GET", base, nil); r.Status != 404 {
		t.Errorf("other project: %d", r.Status)
	}
	if r := b.PKey(b.Key2, "PATCH", base+"/"+l2["id"].(string), map[string]any{"setup_link": map[string]any{"status": "revoked"}}); r.Status != 404 {
		t.Errorf("other project patch: %d", r.Status)
	}

	b.Must(201, "POST", "/users", map[string]any{"user": map[string]any{"email": "a@example.com"}})
	b.Must(201, "POST", "/users", map[string]any{"user": map[string]any{"email": "b@example.com", "name": "Bea"}})
	if n := len(b.PMust(200, "GET", "/users", nil).List()); n != 2 {
		t.Errorf("users: %d", n)
	}
	if n := len(b.PKey(b.Key2, "GET", "/users", nil).List()); n != 0 {
		t.Errorf("other project users: %d", n)
	}
}
