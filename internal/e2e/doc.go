// Package e2e holds Parley's end-to-end scenarios. Each test starts a real
// server (app.New and Serve on a loopback listener, or the built binary as a
// subprocess where process behaviour matters) on the engine of the test run
// (storetest.URL: a SQLite file, or a private PostgreSQL schema when
// PARLEY_TEST_POSTGRES_URL is set), and drives it only over HTTP, the way an
// outside client, Meta and a webhook receiver would:
//
//   - sandbox_test.go: the sandbox story (a customer writes, the team
//     answers, assigns and notes, statuses come back, the 24-hour window,
//     templates, ending the conversation) checked at a webhook receiver that
//     verifies every signature with its own HMAC;
//   - meta_test.go: a production config fed signed Meta webhooks built from
//     Meta's fixtures (testdata, copied from internal/whatsapp/testdata),
//     replying through a fake Graph API (graph_test.go), and health;
//   - scaleout_test.go: two `parley serve` processes on one PostgreSQL
//     schema, exactly-once delivery, and no loss when one is killed;
//   - kapso_test.go: a minimal Kapso client that knows only Kapso's
//     documented requests, pointed at Parley by base URL.
//
// Every API response is also checked against Parley's and Kapso's OpenAPI
// documents (apitest.Validate).
//
// The package has no non-test code besides this comment.
package e2e
