package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/store/storetest"
)

// buildBinary compiles parley once per test run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func parleyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "parley")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	addr   string
	stdout *bytes.Buffer
}

// startServe runs `parley serve` and waits until /readyz answers.
func startServe(t *testing.T, env []string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(parleyBinary(t), "serve")
	cmd.Env = append(append(os.Environ(), env...), "PARLEY_ADDR="+addr, "PARLEY_LOG_LEVEL=warn")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, addr: addr, stdout: &out}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("parley serve did not become ready; stdout: %s", out.String())
	return nil
}

func TestServeBootstrapsPrintsKeyAndShutsDownGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dataDir := t.TempDir()
	env := []string{"PARLEY_DATA_DIR=" + dataDir, "PARLEY_DATABASE_URL=" + storetest.URL(t)}
	p := startServe(t, env)
	// The generated key is printed once on first start.
	var key string
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		if _, k, ok := strings.Cut(sc.Text(), "API key (shown once, store it now): "); ok {
			key = strings.TrimSpace(k)
		}
	}
	if !strings.HasPrefix(key, "pk_") {
		t.Fatalf("no API key printed: %q", p.stdout.String())
	}
	// The banner's curl reads the key from $KEY, as the README's does.
	if !strings.Contains(p.stdout.String(), "export KEY="+key+"\n") ||
		!strings.Contains(p.stdout.String(), `-H "X-API-Key: $KEY"`) {
		t.Errorf("banner does not export and use $KEY:\n%s", p.stdout.String())
	}
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/v1/customers", nil)
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("list with printed key: %v %v", res, err)
	}
	res.Body.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	// A second start does not create another project or print a key.
	p2 := startServe(t, env)
	if strings.Contains(p2.stdout.String(), "API key") {
		t.Fatalf("second start printed a key: %s", p2.stdout.String())
	}
}

// TestAcknowledgedWritesSurviveSIGKILL writes customers from several
// clients, kills the server with SIGKILL mid-flight, restarts it and checks
// that every write that was answered 201 is there.
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dataDir := t.TempDir()
	key := "pk_test_sigkill_0123456789abcdef"
	env := []string{"PARLEY_DATA_DIR=" + dataDir, "PARLEY_DATABASE_URL=" + storetest.URL(t),
		"PARLEY_BOOTSTRAP_API_KEY=" + key, "PARLEY_RATE_LIMIT=0"}
	p := startServe(t, env)
	var mu sync.Mutex
	acked := map[string]bool{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 5000; i++ {
				body := fmt.Sprintf(`{"customer":{"name":"c-%d-%d"}}`, w, i)
				req, _ := http.NewRequest("POST", "http://"+p.addr+"/api/v1/customers", strings.NewReader(body))
				req.Header.Set("X-API-Key", key)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var out struct {
					Data struct {
						ID string `json:"id"`
					} `json:"data"`
				}
				_ = json.NewDecoder(res.Body).Decode(&out)
				res.Body.Close()
				if res.StatusCode == 201 {
					mu.Lock()
					acked[out.Data.ID] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	// Let some writes land, then kill without warning.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = p.cmd.Process.Wait()
	stop.Store(true)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}

	p2 := startServe(t, env)
	found := map[string]bool{}
	for page := 1; ; page++ {
		req, _ := http.NewRequestWithContext(context.Background(), "GET",
			fmt.Sprintf("http://%s/api/v1/customers?per_page=100&page=%d", p2.addr, page), nil)
		req.Header.Set("X-API-Key", key)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		_ = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		for _, c := range out.Data {
			found[c.ID] = true
		}
		if len(out.Data) < 100 {
			break
		}
	}
	missing := 0
	for id := range acked {
		if !found[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes lost after SIGKILL", missing, len(acked))
	}
	t.Logf("%d acknowledged writes, all present after SIGKILL and restart", len(acked))
}
