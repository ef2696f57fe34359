// Package sandbox is Parley's built-in WhatsApp Cloud API simulator. Sandbox
// configs (kind "sandbox") talk to it instead of Meta: it serves the Graph
// routes internal/whatsapp's Client uses under /sandbox/graph/{version}/…,
// validates sends the way Meta does (24-hour window, template existence,
// undeliverable recipients) and reports sent, delivered and read statuses
// and template reviews as signed Meta webhooks through Parley's real inbound
// path (POST /webhooks/whatsapp), so everything downstream of Meta runs
// exactly as in production. The customer's side is
// POST /api/v1/whatsapp_configs/{id}/sandbox_messages and
// `parley sandbox send`.
//
// The simulator keeps no state in memory: templates, media and webhook
// subscriptions live in the sandbox_* tables and timed work in durable jobs,
// so it behaves the same across restarts and across processes sharing one
// database. The package also serves GET /api/v1/whatsapp_configs/{id}/health
// for every config (production configs through Meta's Graph API).
package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/whatsapp"
)

// Paths of the simulator.
const (
	// GraphPrefix is where the simulated Graph API is served.
	GraphPrefix = "/sandbox/graph"
	// MediaPrefix is where uploaded sandbox media is downloaded from.
	MediaPrefix = "/sandbox/media"
	// InboundPath is Parley's Meta webhook endpoint, which simulated
	// webhooks are posted to (in-process, signed).
	InboundPath = "/webhooks/whatsapp"
	// LocalBaseURL is the Graph base URL of the in-process client; the host
	// never leaves the process (see Transport).
	LocalBaseURL = "http://sandbox.local" + GraphPrefix
)

// ReservedPrefix marks recipients the simulator treats as not on WhatsApp:
// sending to a number whose digits start with it fails with 131026
// (message undeliverable), so clients can test that path.
const ReservedPrefix = "1555000"

// RejectPrefix marks templates the simulated review rejects: a template
// whose name starts with it becomes REJECTED (reason INVALID_FORMAT) instead
// of APPROVED.
const RejectPrefix = "sandbox_reject"

// Simulator is the WhatsApp Cloud API simulator of one API server.
type Simulator struct {
	s      *api.Server
	client *whatsapp.Client
	once   sync.Once
}

// New returns a simulator; call Register to attach it to a server.
func New() *Simulator { return &Simulator{} }

// For returns the simulator of a server whose routes are already
// registered (the simulator keeps no state of its own), for callers such as
// the CLI and the job handlers.
func For(s *api.Server) *Simulator { return &Simulator{s: s} }

// Register attaches a new simulator to s (see Simulator.Register) and
// returns it. It is the one line app.BuildAPI needs.
func Register(s *api.Server) *Simulator {
	sim := New()
	sim.Register(s)
	return sim
}

// Register serves the Graph routes, the media download route, the
// sandbox_messages and config health API routes on s, and makes s.Graph
// return the in-process simulator client for sandbox configs (other configs
// keep the client the app configured).
func (sim *Simulator) Register(s *api.Server) {
	sim.s = s
	sim.routes()
	prev := s.Graph
	fallback := &whatsapp.Client{BaseURL: s.Config.MetaGraphURL, Version: s.Config.MetaGraphVersion}
	s.Graph = func(cfg *parley.WhatsAppConfig) *whatsapp.Client {
		if cfg != nil && cfg.IsSandbox() {
			return sim.Client()
		}
		if prev != nil {
			return prev(cfg)
		}
		return fallback
	}
}

// Client returns the Graph client that reaches the simulator in-process.
func (sim *Simulator) Client() *whatsapp.Client {
	sim.once.Do(func() {
		sim.client = &whatsapp.Client{
			BaseURL:           LocalBaseURL,
			Version:           sim.s.Config.MetaGraphVersion,
			HTTPClient:        &http.Client{Transport: sim.Transport(), Timeout: 60 * time.Second},
			MessagesPerSecond: float64(sim.s.Config.SendRatePerSec),
		}
	})
	return sim.client
}

// Transport returns a RoundTripper that serves requests for the simulator's
// paths through the server's handler in-process: no socket, no network. The
// response body is streamed as the handler writes it.
func (sim *Simulator) Transport() http.RoundTripper { return inProcess{sim} }

type inProcess struct{ sim *Simulator }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	p := req.URL.Path
	if !strings.HasPrefix(p, GraphPrefix+"/") && !strings.HasPrefix(p, MediaPrefix+"/") {
		return nil, fmt.Errorf("sandbox: transport only serves %s and %s, not %s", GraphPrefix, MediaPrefix, p)
	}
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	if in.Body == nil {
		in.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			w.commit(http.StatusOK)
			pw.Close()
		}()
		t.sim.s.ServeHTTP(w, in)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.snapshot, Body: pr, ContentLength: -1, Request: req,
	}, nil
}

// pipeWriter is the ResponseWriter of an in-process request: the header is
// frozen at the first write and the body flows through a pipe.
type pipeWriter struct {
	header   http.Header
	snapshot http.Header
	status   int
	pw       *io.PipeWriter
	ready    chan struct{}
	once     sync.Once
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) commit(status int) {
	w.once.Do(func() {
		w.status = status
		w.snapshot = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) WriteHeader(status int) { w.commit(status) }

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.commit(http.StatusOK)
	return w.pw.Write(b)
}

// recorder is a minimal buffered ResponseWriter for in-process webhook
// posts, whose answers are small.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len() < 64<<10 {
		r.body.Write(b)
	}
	return len(b), nil
}

// appSecret is the secret simulated webhooks are signed with: the config's
// app secret, else the process-wide PARLEY_META_APP_SECRET.
func (sim *Simulator) appSecret(cfg *parley.WhatsAppConfig) (string, error) {
	if cfg.AppSecretEnc != "" {
		secret, err := sim.s.Box.Decrypt(cfg.AppSecretEnc)
		if err != nil {
			return "", fmt.Errorf("sandbox: app secret: %w", err)
		}
		if secret != "" {
			return secret, nil
		}
	}
	return sim.s.Config.MetaAppSecret, nil
}

// deliver posts a Meta webhook body, signed for cfg, to Parley's inbound
// endpoint through the server's handler, exactly as Meta would over HTTP.
func (sim *Simulator) deliver(ctx context.Context, cfg *parley.WhatsAppConfig, body []byte) error {
	secret, err := sim.appSecret(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, InboundPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.RequestURI = InboundPath
	req.RemoteAddr = "127.0.0.1:0"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign([]byte(secret), body))
	rec := &recorder{}
	sim.s.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status < 200 || rec.status > 299 {
		return fmt.Errorf("sandbox: inbound endpoint answered %d: %s", rec.status, strings.TrimSpace(rec.body.String()))
	}
	return nil
}
