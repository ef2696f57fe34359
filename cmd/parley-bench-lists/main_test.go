package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestSmallRun seeds a small store on the test engine (SQLite, or
// PostgreSQL with PARLEY_TEST_POSTGRES_URL) and runs every query a few
// times: the seeding works, every list verifies against the seeded data
// (first page, last page and past the end), and the report prints. Timings
// are not checked.
func TestSmallRun(t *testing.T) {
	o := options{db: os.Getenv(storetest.EnvPostgres), messages: 3000, conversations: 1000, contacts: 500, requests: 3}
	var out bytes.Buffer
	if _, err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"conversations ?status_eq=active", "messages of a conversation, page 2", `"sofía t"`, "contact by phone"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
