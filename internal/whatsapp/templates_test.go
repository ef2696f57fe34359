package whatsapp

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestListTemplatesDescriptors(t *testing.T) {
	tests := []struct {
		descriptor, response string
		opts                 ListTemplatesOptions
		wantNames            []string
	}{
		{"template_list.json", "template_list.json", ListTemplatesOptions{},
			[]string{"reservation_confirmation", "coupon_expiration_reminder_number_vars"}},
		{"template_list_fields.json", "template_list_fields.json",
			ListTemplatesOptions{Fields: []string{"name", "category", "status"}, Limit: 5},
			[]string{"reservation_confirmation", "coupon_expiration_reminder_number_vars", "coupon_expiration_reminder_named_vars",
				"address_update", "reservation_confirmation_short_banner"}},
		{"template_list_approved.json", "template_list_approved.json",
			ListTemplatesOptions{Fields: []string{"name", "category", "status"}, Status: "approved"},
			[]string{"reservation_confirmation", "coupon_expiration_reminder_number_vars", "coupon_expiration_reminder_named_vars",
				"calling_permission_request", "location_request_v1", "order_confirmation"}},
	}
	for _, tt := range tests {
		t.Run(tt.descriptor, func(t *testing.T) {
			c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
				assertDescriptor(t, r, tt.descriptor)
				respond(t, w, http.StatusOK, tt.response)
			})
			list, next, err := c.ListTemplates(context.Background(), testToken, fxWABA, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if next != "QVFIU..." {
				t.Errorf("next = %q", next)
			}
			var names []string
			for _, tpl := range list {
				names = append(names, tpl.Name)
				if tpl.ID == "" || tpl.Status == "" || tpl.Category == "" || !json.Valid(tpl.Raw) {
					t.Errorf("template = %+v", tpl)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("names = %v", names)
			}
		})
	}
}

func TestListTemplatesFullObject(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		respond(t, w, http.StatusOK, "template_list.json")
	})
	list, _, err := c.ListTemplates(context.Background(), testToken, fxWABA, ListTemplatesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := list[1]
	if got.ID != "1304694804498707" || got.Language != "en" || got.Status != "APPROVED" || got.Category != "MARKETING" ||
		got.SubCategory != "CUSTOM" || got.ParameterFormat != "POSITIONAL" {
		t.Errorf("template = %+v", got)
	}
	var comps []map[string]any
	if err := json.Unmarshal(got.Components, &comps); err != nil || len(comps) != 4 || comps[0]["text"] != "Act fast, {{1}}!" {
		t.Errorf("components = %s (%v)", got.Components, err)
	}
}

func TestListAllTemplatesFollowsCursor(t *testing.T) {
	lastPage := func(t *testing.T) []byte {
		var page map[string]any
		json.Unmarshal(readFixture(t, "graph", "responses", "template_list_approved.json"), &page)
		delete(page["paging"].(map[string]any), "next") // Graph's last page: cursors but no next
		b, _ := json.Marshal(page)
		return b
	}
	c, fg, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		assertPath(t, r, http.MethodGet, "/"+fxWABA+"/message_templates")
		switch after := r.URL.Query().Get("after"); {
		case n == 1 && after == "":
			respond(t, w, http.StatusOK, "template_list.json")
		case n == 2 && after == "QVFIU...":
			w.Write(lastPage(t))
		default:
			t.Errorf("unexpected request %d with after=%q", n, after)
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	all, err := c.ListAllTemplates(context.Background(), testToken, fxWABA, ListTemplatesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 8 || fg.calls.Load() != 2 {
		t.Errorf("got %d templates in %d calls", len(all), fg.calls.Load())
	}
}

func TestListAllTemplatesDetectsCursorLoop(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		respond(t, w, http.StatusOK, "template_list.json") // always the same "after"
	})
	if _, err := c.ListAllTemplates(context.Background(), testToken, fxWABA, ListTemplatesOptions{}); err == nil {
		t.Error("endless paging not detected")
	}
}

func TestCreateTemplate(t *testing.T) {
	for fixture, resp := range map[string]string{
		"template_create_marketing.json": "template_create.json",
		"template_create_utility.json":   "template_create_utility.json",
	} {
		c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
			assertPath(t, r, http.MethodPost, "/"+fxWABA+"/message_templates")
			assertJSONBody(t, r, fixture)
			respond(t, w, http.StatusOK, resp)
		})
		got, err := c.CreateTemplate(context.Background(), testToken, fxWABA, json.RawMessage(readFixture(t, "graph", "requests", fixture)))
		if err != nil {
			t.Fatal(err)
		}
		want := CreateTemplateResponse{ID: "1627019861106475", Status: "PENDING", Category: "MARKETING"}
		if resp == "template_create_utility.json" {
			want = CreateTemplateResponse{ID: "546151681022936", Status: "PENDING", Category: "UTILITY"}
		}
		if *got != want {
			t.Errorf("%s: %+v", fixture, *got)
		}
	}
}

func TestEditTemplate(t *testing.T) {
	for fixture, id := range map[string]string{
		"template_edit_category.json":   "1252715608684590",
		"template_edit_components.json": "564750795574598",
	} {
		c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
			assertPath(t, r, http.MethodPost, "/"+id)
			assertJSONBody(t, r, fixture)
			respond(t, w, http.StatusOK, "template_edit.json")
		})
		if err := c.EditTemplate(context.Background(), testToken, id, json.RawMessage(readFixture(t, "graph", "requests", fixture))); err != nil {
			t.Errorf("%s: %v", fixture, err)
		}
	}
}

func TestEditTemplateRequiresSuccess(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		w.Write([]byte(`{"success":false}`))
	})
	if err := c.EditTemplate(context.Background(), testToken, "1", map[string]any{"category": "UTILITY"}); err == nil {
		t.Error("success:false accepted")
	}
}

func TestDeleteTemplate(t *testing.T) {
	tests := []struct{ descriptor, name, hsmID string }{
		{"template_delete_by_name.json", "order_confirmation", ""},
		{"template_delete_by_id.json", "order_confirmation", "1407680676729941"},
	}
	for _, tt := range tests {
		c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
			assertDescriptor(t, r, tt.descriptor)
			respond(t, w, http.StatusOK, "template_delete.json")
		})
		if err := c.DeleteTemplate(context.Background(), testToken, fxWABA, tt.name, tt.hsmID); err != nil {
			t.Errorf("%s: %v", tt.descriptor, err)
		}
	}
}
