package platform_test

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
)

func TestUsers(t *testing.T) {
	b := apitest.Setup(t)
	a := b.Must(201, "POST", "/users", map[string]any{"user": map[string]any{"email": " Ana@Example.com ", "name": "Ana"}}).Data()
	if a["email"] != "ana@example.com" || a["name"] != "Ana" {
		t.Fatalf("created: %v", a)
	}
	bob := b.Must(201, "POST", "/users", map[string]any{"email": "bob@example.org"}).Data()
	if bob["name"] != nil {
		t.Fatalf("name should be null: %v", bob)
	}
	// The same email may exist in another project.
	if r := b.DoKey(b.Key2, "POST", "/users", map[string]any{"email": "ana@example.com"}); r.Status != 201 {
		t.Fatalf("other project same email: %d %s", r.Status, r.Body)
	}

	l := b.Must(200, "GET", "/users", nil)
	if ls := l.List(); len(ls) != 2 || ls[0]["id"] != bob["id"] {
		t.Fatalf("list newest first: %s", l.Body)
	}
	if ls := b.Must(200, "GET", "/users?q[email_cont]=EXAMPLE.COM", nil).List(); len(ls) != 1 || ls[0]["id"] != a["id"] {
		t.Fatalf("email filter: %v", ls)
	}
	if r := b.Must(200, "GET", "/users?per_page=1&page=2", nil); len(r.List()) != 1 || r.JSON["meta"].(map[string]any)["total_pages"].(float64) != 2 {
		t.Fatalf("paging: %s", r.Body)
	}

	id := a["id"].(string)
	b.Must(200, "GET", "/users/"+id, nil)
	u := b.Must(200, "PATCH", "/users/"+id, map[string]any{"user": map[string]any{"name": "Ana María"}}).Data()
	if u["name"] != "Ana María" || u["email"] != "ana@example.com" {
		t.Fatalf("patch: %v", u)
	}
	u = b.Must(200, "PATCH", "/users/"+id, map[string]any{"name": nil, "email": "ana2@example.com"}).Data()
	if u["name"] != nil || u["email"] != "ana2@example.com" {
		t.Fatalf("patch 2: %v", u)
	}

	// Validation.
	for i, c := range []struct {
		method, path string
		body         any
		status       int
		want         string
	}{
		{"POST", "/users", map[string]any{}, 422, "Email can't be blank"},
		{"POST", "/users", map[string]any{"email": "not-an-email"}, 422, "Email is invalid"},
		{"POST", "/users", map[string]any{"email": "a@b"}, 422, "Email is invalid"},
		{"POST", "/users", map[string]any{"email": "x@y.com", "name": strings.Repeat("n", 256)}, 422, "Name is too long"},
		{"POST", "/users", map[string]any{"email": []string{"x"}}, 422, "Email must be a string"},
		{"POST", "/users", map[string]any{"email": "BOB@example.org"}, 422, "Email has already been taken"},
		{"POST", "/users", `{"user":`, 400, ""},
		{"PATCH", "/users/" + id, map[string]any{"email": "bob@example.org"}, 422, "Email has already been taken"},
		{"PATCH", "/users/" + id, map[string]any{"email": ""}, 422, "Email can't be blank"},
	} {
		r := b.Do(c.method, c.path, c.body)
		if r.Status != c.status || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("case %d: %d %s, want %d %q", i, r.Status, r.Body, c.status, c.want)
		}
	}
	if n := scalar[int](t, b, `SELECT COUNT(*) FROM users WHERE project_id = ?`, b.Project); n != 2 {
		t.Fatalf("bad input stored users: %d", n)
	}

	// Tenancy.
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		if r := b.DoKey(b.Key2, m, "/users/"+id, map[string]any{"name": "x"}); r.Status != 404 {
			t.Errorf("other project %s: %d", m, r.Status)
		}
	}
	b.Must(404, "GET", "/users/nope", nil)
	b.Must(204, "DELETE", "/users/"+id, nil)
	b.Must(404, "GET", "/users/"+id, nil)
	b.Must(404, "DELETE", "/users/"+id, nil)
}
