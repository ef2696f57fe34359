package whatsapp

import (
	"context"
	"net/http"
	"reflect"
	"testing"
)

func TestGetPhoneNumber(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		assertDescriptor(t, r, "phone_number_get.json")
		respond(t, w, http.StatusOK, "phone_number_get.json")
	})
	p, err := c.GetPhoneNumber(context.Background(), testToken, fxPhoneID)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != fxPhoneID || p.DisplayPhoneNumber != "+1 555-078-3881" || p.VerifiedName != "Jaspers Market" ||
		p.QualityRating != "GREEN" || p.NameStatus != "APPROVED" || p.CodeVerificationStatus != "VERIFIED" || len(p.Raw) == 0 {
		t.Errorf("phone number = %+v", p)
	}
}

func TestHealthStatus(t *testing.T) {
	tests := []struct {
		response, node, overall string
		check                   func(t *testing.T, h *HealthStatus)
	}{
		{"health_status.json", fxPhoneID, "AVAILABLE", func(t *testing.T, h *HealthStatus) {
			want := HealthEntity{EntityType: "PHONE_NUMBER", ID: fxPhoneID, CanSendMessage: "AVAILABLE", CanReceiveCallSIP: "AVAILABLE"}
			if len(h.Entities) != 4 || !reflect.DeepEqual(h.Entities[0], want) || h.Entities[3].EntityType != "APP" {
				t.Errorf("entities = %+v", h.Entities)
			}
		}},
		{"health_status_limited.json", fxPhoneID, "LIMITED", func(t *testing.T, h *HealthStatus) {
			e := h.Entities[0]
			if e.CanSendMessage != "LIMITED" || len(e.AdditionalInfo) != 1 ||
				e.AdditionalInfo[0] != "Your display name has not been approved yet. Your message limit will increase after the display name is approved." {
				t.Errorf("entity = %+v", e)
			}
		}},
		{"health_status_blocked_template.json", "2632273056924580", "BLOCKED", func(t *testing.T, h *HealthStatus) {
			e := h.Entities[0]
			want := []HealthError{{ErrorCode: 141002, ErrorDescription: "Message templates can only be sent out if they are approved.",
				PossibleSolution: "Edit or appeal the message template review decision."}}
			if e.EntityType != "MESSAGE_TEMPLATE" || !reflect.DeepEqual(e.Errors, want) {
				t.Errorf("entity = %+v", e)
			}
		}},
	}
	for _, tt := range tests {
		c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
			if tt.node == fxPhoneID {
				assertDescriptor(t, r, "health_status_get.json")
			} else {
				assertPath(t, r, http.MethodGet, "/"+tt.node)
			}
			respond(t, w, http.StatusOK, tt.response)
		})
		h, err := c.HealthStatus(context.Background(), testToken, tt.node)
		if err != nil {
			t.Fatal(err)
		}
		if h.ID != tt.node || h.CanSendMessage != tt.overall {
			t.Errorf("%s: %+v", tt.response, h)
		}
		tt.check(t, h)
	}
}

func TestSubscribedApps(t *testing.T) {
	for resp, want := range map[string][]SubscribedApp{
		"subscribed_apps_get.json": {
			{ID: "634974688087057", Name: "Business Messaging App", Link: "https://www.facebook.com/games/?app_id=634974688087057"},
			{ID: "2345678901234567", Name: "Customer Support Bot", Link: "https://www.facebook.com/games/?app_id=2345678901234567"},
		},
		"subscribed_apps_get_empty.json": {},
	} {
		c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
			assertDescriptor(t, r, "subscribed_apps_get.json")
			respond(t, w, http.StatusOK, resp)
		})
		apps, err := c.SubscribedApps(context.Background(), testToken, fxWABA)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(apps, want) {
			t.Errorf("%s: %+v", resp, apps)
		}
	}
}

func TestSubscribeAndUnsubscribe(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodPost {
			assertDescriptor(t, r, "subscribed_apps_post.json")
			respond(t, w, http.StatusOK, "subscribed_apps_post.json")
			return
		}
		assertDescriptor(t, r, "subscribed_apps_delete.json")
		respond(t, w, http.StatusOK, "subscribed_apps_delete.json")
	})
	if err := c.Subscribe(context.Background(), testToken, fxWABA); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(context.Background(), testToken, fxWABA); err != nil {
		t.Fatal(err)
	}
}
