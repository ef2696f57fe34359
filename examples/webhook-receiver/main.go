// Command webhook-receiver is a minimal receiver for Parley's webhooks: it
// verifies each delivery's X-Webhook-Signature against the webhook's
// secret_key, skips deliveries it has already seen (retries carry the same
// X-Idempotency-Key), and prints the event. Copy it as a starting point; it
// uses the standard library only.
//
//	WEBHOOK_SECRET=<the webhook's secret_key> go run ./examples/webhook-receiver
//
// It listens on 127.0.0.1:4000 by default (-addr to change) and answers 200
// to a verified delivery, 401 to a delivery whose signature does not match.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4000", "listen address")
	flag.Parse()
	secret := os.Getenv("WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set WEBHOOK_SECRET to the webhook's secret_key")
	}
	log.Printf("listening on http://%s/ (POST deliveries here)", *addr)
	srv := &http.Server{Addr: *addr, Handler: NewHandler(secret, os.Stdout), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// maxBody bounds a delivery body: a batch holds at most a few hundred
// messages.
const maxBody = 10 << 20

// Verify reports whether signature (the X-Webhook-Signature header: lowercase
// hex HMAC-SHA256 of the body keyed by the secret) matches body. body must be
// the raw bytes received, before any JSON decoding: re-encoded JSON differs.
func Verify(secret string, body []byte, signature string) bool {
	got, err := hex.DecodeString(signature)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil)) // constant-time comparison
}

// NewHandler returns the receiver: it verifies, deduplicates and prints
// each delivery to out.
func NewHandler(secret string, out io.Writer) http.Handler {
	var mu sync.Mutex
	seen := map[string]bool{} // idempotency keys; a real receiver keeps them in its database
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST deliveries here", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if !Verify(secret, body, r.Header.Get("X-Webhook-Signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			mu.Lock()
			fmt.Fprintf(out, "refused a delivery with a bad signature (event %q)\n", r.Header.Get("X-Webhook-Event"))
			mu.Unlock()
			return
		}
		key := r.Header.Get("X-Idempotency-Key")
		mu.Lock()
		defer mu.Unlock()
		if seen[key] {
			fmt.Fprintf(out, "duplicate delivery %s ignored\n", key)
			w.WriteHeader(http.StatusOK) // answer 2xx so Parley stops retrying it
			return
		}
		seen[key] = true
		event := r.Header.Get("X-Webhook-Event")
		if r.Header.Get("X-Webhook-Batch") == "true" {
			fmt.Fprintf(out, "%s: batch of %s (payload %s, key %s)\n", event, r.Header.Get("X-Batch-Size"),
				r.Header.Get("X-Webhook-Payload-Version"), key)
		} else {
			fmt.Fprintf(out, "%s (payload %s, key %s)\n", event, r.Header.Get("X-Webhook-Payload-Version"), key)
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, body, "  ", "  ") == nil {
			fmt.Fprintf(out, "  %s\n", pretty.Bytes())
		}
		w.WriteHeader(http.StatusOK)
	})
}
