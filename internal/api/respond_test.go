package api

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/parleyhq/parley"
)

// Every error body has "error" and "message" (README decision 2), whatever
// the error was built with.
func TestErrorBodyAlwaysHasAMessage(t *testing.T) {
	for _, c := range []struct {
		e            *parley.Error
		status       int
		message      string
		errorsListed int
	}{
		{&parley.Error{Code: parley.ENOTFOUND, Title: "Delivery not found"}, 404, "Delivery not found", 0},
		{parley.Invalid("Validation failed", "Name can't be blank", "Url is invalid"), 422, "Name can't be blank, Url is invalid", 2},
		{&parley.Error{Code: parley.EBADREQUEST, Title: "Bad request", Message: "page must be a number"}, 400, "page must be a number", 0},
	} {
		w := httptest.NewRecorder()
		WriteErrorBody(w, c.e)
		var body struct {
			Error   string   `json:"error"`
			Message string   `json:"message"`
			Errors  []string `json:"errors"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if w.Code != c.status || body.Error != c.e.Title || body.Message != c.message || len(body.Errors) != c.errorsListed {
			t.Errorf("%v: %d %s", c.e, w.Code, w.Body.String())
		}
	}
}
