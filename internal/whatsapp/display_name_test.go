package whatsapp

import (
	"context"
	"io"
	"net/http"
	"testing"
)

func TestRequestDisplayNameChange(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		if r.Method != http.MethodPost || r.URL.Path != "/v24.0/"+fxPhoneID || r.URL.Query().Get("new_display_name") != "Lucky Shrub" {
			t.Errorf("request: %s %s", r.Method, r.URL)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":true}`)
	})
	if err := c.RequestDisplayNameChange(context.Background(), testToken, fxPhoneID, "Lucky Shrub"); err != nil {
		t.Fatal(err)
	}
	if err := c.RequestDisplayNameChange(context.Background(), testToken, fxPhoneID, ""); err == nil {
		t.Fatal("empty name accepted")
	}
}

func TestDisplayNameStatus(t *testing.T) {
	c, _, _ := newFakeGraph(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		if r.Method != http.MethodGet || r.URL.Path != "/v24.0/"+fxPhoneID || r.URL.Query().Get("fields") != displayNameFields {
			t.Errorf("request: %s %s", r.Method, r.URL)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"new_display_name":"New Lucky Shrub","new_name_status":"PENDING_REVIEW","id":"`+fxPhoneID+`"}`)
	})
	st, err := c.DisplayNameStatus(context.Background(), testToken, fxPhoneID)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != fxPhoneID || st.NewDisplayName != "New Lucky Shrub" || st.NewNameStatus != "PENDING_REVIEW" || len(st.Raw) == 0 {
		t.Fatalf("status: %+v", st)
	}
}
