package templates_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
)

func TestCreateGetAndTenancy(t *testing.T) {
	b, _ := setup(t)
	c1 := newConfig(t, b, configOpts{waba: "111"})
	c2 := newConfig(t, b, configOpts{waba: "111"})
	newConfig(t, b, configOpts{waba: "111", kind: parley.KindSandbox}) // not production: not linked
	other := newConfig(t, b, configOpts{project: b.Project2, waba: "999"})

	d := b.Must(201, "POST", "/whatsapp_templates", simpleBody("order_shipped")).Data()
	if d["status"] != "draft" || d["name"] != "order_shipped" || d["language_code"] != "en_US" || d["category"] != "UTILITY" ||
		d["content"] != "Hello {{1}}, your order {{2}} shipped." || d["parameter_count"] != float64(2) ||
		d["business_account_id"] != "111" || d["parameter_format"] != "POSITIONAL" {
		t.Fatalf("created: %v", d)
	}
	ids := d["whatsapp_config_ids"].([]any)
	if len(ids) != 2 || ids[0] != c1.ID || ids[1] != c2.ID {
		t.Fatalf("config ids: %v", ids)
	}
	id := d["id"].(string)
	got := b.Must(200, "GET", "/whatsapp_templates/"+id, nil).Data()
	if got["id"] != id || got["content"] != d["content"] {
		t.Fatalf("get: %v", got)
	}
	// Bare attributes, named parameters, components normalised to upper case.
	named := b.Must(201, "POST", "/whatsapp_templates", map[string]any{
		"name": "welcome_named", "language_code": "es", "category": "marketing", "parameter_format": "named",
		"components": []any{
			map[string]any{"type": "body", "text": "Hola {{first_name}}, usa {{code}}",
				"example": map[string]any{"body_text_named_params": []any{
					map[string]any{"param_name": "first_name", "example": "Ana"},
					map[string]any{"param_name": "code", "example": "X1"}}}},
			map[string]any{"type": "header", "format": "text", "text": "Hi"},
		},
	}).Data()
	comps := named["components"].([]any)
	if named["category"] != "MARKETING" || named["parameter_format"] != "NAMED" || named["parameter_count"] != float64(2) ||
		comps[0].(map[string]any)["type"] != "HEADER" || comps[1].(map[string]any)["type"] != "BODY" {
		t.Fatalf("named: %v", named)
	}
	// Other project: 404 everywhere; non-UUID ids are 404.
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		if r := b.DoKey(b.Key2, m, "/whatsapp_templates/"+id, map[string]any{}); r.Status != 404 || r.JSON["error"] != "Template not found" {
			t.Fatalf("%s other project: %d %s", m, r.Status, r.Body)
		}
	}
	for _, p := range []string{"/submit", "/send_template"} {
		if r := b.DoKey(b.Key2, "POST", "/whatsapp_templates/"+id+p, map[string]any{}); r.Status != 404 {
			t.Fatalf("%s other project: %d %s", p, r.Status, r.Body)
		}
	}
	b.Must(404, "GET", "/whatsapp_templates/nope", nil)
	b.Must(404, "PATCH", "/whatsapp_templates/123/meta", map[string]any{})
	// Another project's config cannot be used: a 422, since Kapso documents
	// no 404 for the create.
	r := b.Do("POST", "/whatsapp_templates", map[string]any{"template": simpleBody("x")["template"], "whatsapp_config_id": other.ID})
	if r.Status != 422 {
		t.Fatalf("other project's config: %d %s", r.Status, r.Body)
	}
	if list := b.Must(200, "GET", "/whatsapp_templates", nil); len(list.List()) != 2 {
		t.Fatalf("list: %s", list.Body)
	}
	if list := b.DoKey(b.Key2, "GET", "/whatsapp_templates", nil); len(list.List()) != 0 {
		t.Fatalf("other project's list: %s", list.Body)
	}
}

func TestCreateValidation(t *testing.T) {
	b, _ := setup(t)
	newConfig(t, b, configOpts{waba: "111"})
	b.Must(201, "POST", "/whatsapp_templates", simpleBody("taken"))
	body := func(mut func(m map[string]any)) map[string]any {
		tpl := simpleBody("ok_name")["template"].(map[string]any)
		mut(tpl)
		return map[string]any{"template": tpl}
	}
	comp := func(cs ...map[string]any) func(m map[string]any) {
		return func(m map[string]any) {
			arr := []any{}
			for _, c := range cs {
				arr = append(arr, c)
			}
			m["components"] = arr
		}
	}
	bodyC := func(text string, ex any) map[string]any {
		c := map[string]any{"type": "BODY", "text": text}
		if ex != nil {
			c["example"] = ex
		}
		return c
	}
	cases := []struct {
		name   string
		body   any
		status int
		detail string
	}{
		{"malformed", `{"template":`, 400, ""},
		{"array", `[1]`, 400, ""},
		{"root not object", map[string]any{"template": "x"}, 422, ""},
		{"empty", map[string]any{}, 422, "Name can't be blank"},
		{"upper name", body(func(m map[string]any) { m["name"] = "Bad Name" }), 422, "Name can only contain lowercase letters, numbers and underscores"},
		{"long name", body(func(m map[string]any) { m["name"] = strings.Repeat("a", 513) }), 422, "Name is too long (maximum is 512 characters)"},
		{"name array", body(func(m map[string]any) { m["name"] = []int{1} }), 422, ""},
		{"taken", body(func(m map[string]any) { m["name"] = "taken" }), 422, "Name has already been taken for this language"},
		{"language", body(func(m map[string]any) { m["language_code"] = "english!" }), 422, "Language code is not valid"},
		{"category", body(func(m map[string]any) { m["category"] = "PROMO" }), 422, "Category must be one of MARKETING, UTILITY, AUTHENTICATION"},
		{"format", body(func(m map[string]any) { m["parameter_format"] = "BOTH" }), 422, "Parameter format must be one of NAMED, POSITIONAL"},
		{"no components", body(func(m map[string]any) { delete(m, "components") }), 422, "Components can't be blank"},
		{"components object", body(func(m map[string]any) { m["components"] = map[string]any{"type": "BODY"} }), 422, "Components must be an array of component objects"},
		{"components empty", body(func(m map[string]any) { m["components"] = []any{} }), 422, "Components can't be empty"},
		{"bad type", body(comp(map[string]any{"type": "SIDEBAR"})), 422, "Component 1 type must be one of HEADER, BODY, FOOTER, BUTTONS"},
		{"no body", body(comp(map[string]any{"type": "FOOTER", "text": "x"})), 422, "Components must include a BODY component"},
		{"two bodies", body(comp(bodyC("a", nil), bodyC("b", nil))), 422, "Components can include only one BODY"},
		{"text number", body(comp(map[string]any{"type": "BODY", "text": 5})), 422, "Body text must be a string"},
		{"gap", body(comp(bodyC("Hi {{1}} {{3}}", map[string]any{"body_text": []any{[]any{"a", "b"}}}))), 422, "Body variables must be numbered sequentially starting at {{1}}"},
		{"named in positional", body(comp(bodyC("Hi {{name}}", nil))), 422, "Body text uses named variable {{name}} but parameter_format is POSITIONAL"},
		{"missing example", body(comp(bodyC("Hi {{1}}", nil))), 422, "Body example body_text is required when the body has variables"},
		{"short example", body(comp(bodyC("Hi {{1}} {{2}}", map[string]any{"body_text": []any{[]any{"a"}}}))), 422, "Body example body_text must hold 2 values, one per variable"},
		{"example not object", body(comp(map[string]any{"type": "BODY", "text": "Hi {{1}}", "example": []any{"a"}})), 422, "Body example must be an object"},
		{"named missing", body(func(m map[string]any) {
			m["parameter_format"] = "NAMED"
			comp(bodyC("Hi {{a}} {{b}}", map[string]any{"body_text_named_params": []any{map[string]any{"param_name": "a", "example": "x"}}}))(m)
		}), 422, "Body example is missing a value for {{b}}"},
		{"header format", body(comp(map[string]any{"type": "HEADER", "format": "GIFX"}, bodyC("x", nil))), 422, "Header format must be one of TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION"},
		{"header image", body(comp(map[string]any{"type": "HEADER", "format": "IMAGE"}, bodyC("x", nil))), 422, "Header example header_handle is required for image headers"},
		{"footer var", body(comp(bodyC("x", nil), map[string]any{"type": "FOOTER", "text": "{{1}}"})), 422, "Footer text can't have variables"},
		{"button type", body(comp(bodyC("x", nil), map[string]any{"type": "BUTTONS", "buttons": []any{map[string]any{"type": "LINK", "text": "a"}}})), 422, ""},
		{"button url", body(comp(bodyC("x", nil), map[string]any{"type": "BUTTONS", "buttons": []any{map[string]any{"type": "URL", "text": "a", "url": "ftp://x"}}})), 422, "Button 1 url must be an http(s) URL"},
		{"button phone", body(comp(bodyC("x", nil), map[string]any{"type": "BUTTONS", "buttons": []any{map[string]any{"type": "PHONE_NUMBER", "text": "a", "phone_number": "12"}}})), 422, "Button 1 phone_number is not a valid phone number"},
		{"config not uuid", map[string]any{"template": simpleBody("abc")["template"], "whatsapp_config_id": "nope"}, 422, "WhatsApp config not found"},
		{"customer unknown", map[string]any{"template": simpleBody("abc")["template"], "customer_id": "0190f5a2-7c4b-7000-8000-000000000000"}, 422, "Customer not found"},
		{"too large", `{"template":{"name":"` + strings.Repeat("x", 2<<20) + `"}}`, 413, ""},
	}
	for _, c := range cases {
		r := b.Do("POST", "/whatsapp_templates", c.body)
		if r.Status != c.status {
			t.Errorf("%s: status %d, want %d: %.300s", c.name, r.Status, c.status, r.Body)
			continue
		}
		if _, ok := r.JSON["error"].(string); !ok {
			t.Errorf("%s: no error: %s", c.name, r.Body)
		}
		if c.detail != "" {
			errs, _ := r.JSON["errors"].([]any)
			if !slices.Contains(errs, any(c.detail)) {
				t.Errorf("%s: errors %v, want %q", c.name, errs, c.detail)
			}
		}
	}
	if n := count(t, b, `SELECT COUNT(*) FROM templates`); n != 1 {
		t.Fatalf("bad requests stored %d templates", n)
	}
	// The same name in another language is fine.
	b.Must(201, "POST", "/whatsapp_templates", body(func(m map[string]any) { m["name"] = "taken"; m["language_code"] = "es" }))
}

func TestAssociation(t *testing.T) {
	b, _ := setup(t)
	cust := newCustomer(t, b, b.Project)
	a1 := newConfig(t, b, configOpts{waba: "AAA", customer: &cust})
	a2 := newConfig(t, b, configOpts{waba: "AAA"}) // same WABA, no customer: expansion adds it
	bcfg := newConfig(t, b, configOpts{waba: "BBB"})
	sandbox := newConfig(t, b, configOpts{waba: "SANDBOX1", kind: parley.KindSandbox})
	noWABA := newConfig(t, b, configOpts{})

	tpl := simpleBody("t")["template"]
	withRoot := func(name string, extra map[string]any) map[string]any {
		m := map[string]any{"template": map[string]any{}}
		for k, v := range tpl.(map[string]any) {
			m["template"].(map[string]any)[k] = v
		}
		m["template"].(map[string]any)["name"] = name
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	d := b.Must(201, "POST", "/whatsapp_templates", withRoot("by_customer", map[string]any{"customer_id": cust})).Data()
	if d["business_account_id"] != "AAA" || !jsonEqual(d["whatsapp_config_ids"], []string{a1.ID, a2.ID}) {
		t.Fatalf("by customer: %v", d)
	}
	d = b.Must(201, "POST", "/whatsapp_templates", withRoot("by_config", map[string]any{"whatsapp_config_id": bcfg.ID})).Data()
	if d["business_account_id"] != "BBB" || !jsonEqual(d["whatsapp_config_ids"], []string{bcfg.ID}) {
		t.Fatalf("by config: %v", d)
	}
	d = b.Must(201, "POST", "/whatsapp_templates", withRoot("by_sandbox", map[string]any{"whatsapp_config_id": sandbox.ID})).Data()
	if d["business_account_id"] != "SANDBOX1" || !jsonEqual(d["whatsapp_config_ids"], []string{sandbox.ID}) {
		t.Fatalf("by sandbox: %v", d)
	}
	// Neither: the project's production configs span two WABAs.
	r := b.Do("POST", "/whatsapp_templates", withRoot("mixed", nil))
	if r.Status != 422 || r.JSON["error"] != "Invalid template" {
		t.Fatalf("mixed WABAs: %d %s", r.Status, r.Body)
	}
	r = b.Do("POST", "/whatsapp_templates", withRoot("no_waba", map[string]any{"whatsapp_config_id": noWABA.ID}))
	if r.Status != 422 || r.JSON["error"] != "WhatsApp configuration missing business account id" {
		t.Fatalf("no WABA: %d %s", r.Status, r.Body)
	}
	// Re-association on PATCH.
	d = b.Must(200, "PATCH", "/whatsapp_templates/"+d["id"].(string), map[string]any{"whatsapp_config_id": a2.ID}).Data()
	if d["business_account_id"] != "AAA" || !jsonEqual(d["whatsapp_config_ids"], []string{a1.ID, a2.ID}) {
		t.Fatalf("relinked: %v", d)
	}
}

func TestNoProductionConfigLeavesDraftUnlinked(t *testing.T) {
	b, _ := setup(t)
	d := b.Must(201, "POST", "/whatsapp_templates", simpleBody("lonely")).Data()
	if d["business_account_id"] != nil || len(d["whatsapp_config_ids"].([]any)) != 0 {
		t.Fatalf("unlinked: %v", d)
	}
}

func TestListFilters(t *testing.T) {
	b, _ := setup(t)
	cust := newCustomer(t, b, b.Project)
	a := newConfig(t, b, configOpts{waba: "AAA", customer: &cust})
	bc := newConfig(t, b, configOpts{waba: "BBB"})
	mk := func(name, lang, cat string, cfg string) string {
		body := simpleBody(name)
		tpl := body["template"].(map[string]any)
		tpl["language_code"], tpl["category"] = lang, cat
		body["whatsapp_config_id"] = cfg
		return b.Must(201, "POST", "/whatsapp_templates", body).Data()["id"].(string)
	}
	t1 := mk("order_update", "en_US", "UTILITY", a.ID)
	t2 := mk("promo_summer", "es", "MARKETING", bc.ID)
	t3 := mk("order_promo", "en_US", "MARKETING", bc.ID)
	setStatus(t, b, t3, "approved", "m3")
	cases := map[string][]string{
		"":                                                       {t3, t2, t1},
		"?q[name_cont]=ORDER":                                    {t3, t1},
		"?q[name_cont]=%25":                                      {},
		"?q[language_code_eq]=es":                                {t2},
		"?q[category_eq]=MARKETING":                              {t3, t2},
		"?q[status_eq]=approved":                                 {t3},
		"?q[status_eq]=draft":                                    {t2, t1},
		"?customer_id=" + cust:                                   {t1},
		"?q[customer_id_eq]=" + cust:                             {t1},
		"?business_account_id=BBB":                               {t3, t2},
		"?q[business_account_id_eq]=AAA":                         {t1},
		"?whatsapp_config_id=" + bc.ID:                           {t3, t2},
		"?q[whatsapp_config_id_eq]=" + a.ID:                      {t1},
		"?whatsapp_config_id=nope":                               {},
		"?customer_id=" + cust + "&q[category_eq]=MARKETING":     {},
		"?business_account_id=AAA&q[business_account_id_eq]=BBB": {},
		"?per_page=1&page=2":                                     {t2},
		"?unknown=1&q[unknown_eq]=2":                             {t3, t2, t1},
	}
	for q, want := range cases {
		r := b.Must(200, "GET", "/whatsapp_templates"+q, nil)
		var got []string
		for _, d := range r.List() {
			got = append(got, d["id"].(string))
		}
		if !jsonEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: got %v, want %v", q, got, want)
		}
	}
	meta := b.Must(200, "GET", "/whatsapp_templates?per_page=1&page=2", nil).JSON["meta"].(map[string]any)
	if meta["total_count"] != float64(3) || meta["total_pages"] != float64(3) || meta["page"] != float64(2) {
		t.Fatalf("meta: %v", meta)
	}
}

func TestUpdateDraftOnly(t *testing.T) {
	b, _ := setup(t)
	newConfig(t, b, configOpts{waba: "111"})
	id := b.Must(201, "POST", "/whatsapp_templates", simpleBody("draft_one")).Data()["id"].(string)
	d := b.Must(200, "PATCH", "/whatsapp_templates/"+id, map[string]any{"template": map[string]any{
		"name": "draft_two", "category": "MARKETING",
		"components": []any{map[string]any{"type": "BODY", "text": "Just text"}, map[string]any{"type": "FOOTER", "text": "Bye"}},
	}}).Data()
	if d["name"] != "draft_two" || d["category"] != "MARKETING" || d["content"] != "Just text" || d["parameter_count"] != float64(0) ||
		d["language_code"] != "en_US" {
		t.Fatalf("updated: %v", d)
	}
	// Switching to NAMED must still fit the stored components (no variables: fine).
	b.Must(200, "PATCH", "/whatsapp_templates/"+id, map[string]any{"parameter_format": "NAMED"})
	r := b.Do("PATCH", "/whatsapp_templates/"+id, map[string]any{"template": map[string]any{"name": "Bad"}})
	if r.Status != 422 || r.JSON["error"] != "Invalid template" {
		t.Fatalf("bad update: %d %s", r.Status, r.Body)
	}
	if got := b.Must(200, "GET", "/whatsapp_templates/"+id, nil).Data(); got["name"] != "draft_two" {
		t.Fatalf("bad update changed data: %v", got)
	}
	setStatus(t, b, id, "submitted", "555")
	r = b.Do("PATCH", "/whatsapp_templates/"+id, map[string]any{"template": map[string]any{"name": "draft_three"}})
	if r.Status != 422 || r.JSON["error"] != "Only draft templates can be updated" {
		t.Fatalf("non-draft update: %d %s", r.Status, r.Body)
	}
}
