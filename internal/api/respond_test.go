package api

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

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

// A database that dropped the connection (PostgreSQL ending the session,
// SQLSTATE 57P01) is a 503 the client may retry, not a 500; any other
// unexpected error stays a 500 that hides its cause.
func TestUnavailableDatabaseIs503(t *testing.T) {
	s := &Server{Deps: Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	for _, c := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("store: get config: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}), 503},
		{fmt.Errorf("store: lookup api key: %w", &pgconn.PgError{Code: "08006"}), 503},
		{fmt.Errorf("store: %w", driver.ErrBadConn), 503},
		{fmt.Errorf("store: %w", &pgconn.PgError{Code: "23505"}), 500},
		{errors.New("boom"), 500},
	} {
		w := httptest.NewRecorder()
		s.WriteError(w, httptest.NewRequest("GET", "/api/v1/whatsapp_configs", nil), c.err)
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if w.Code != c.status || body["error"] == nil || body["message"] == nil || strings.Contains(w.Body.String(), "store:") {
			t.Errorf("%v: %d %s", c.err, w.Code, w.Body.String())
		}
	}
}
