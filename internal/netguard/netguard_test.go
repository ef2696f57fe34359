package netguard

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/config"
)

func TestCheck(t *testing.T) {
	public := config.Defaults()
	public.Addr = "0.0.0.0:8080"
	p := PolicyFor(public)
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "0.0.0.0",
		"::1", "fd00:ec2::254", "fe80::1", "fc00::1", "::ffff:127.0.0.1"} {
		if p.Check(netip.MustParseAddr(a)) == nil {
			t.Errorf("%s allowed", a)
		}
	}
	if p.Check(netip.MustParseAddr("93.184.216.34")) != nil {
		t.Error("public address refused")
	}
	p.AllowPrivate = true
	if p.Check(netip.MustParseAddr("10.0.0.1")) != nil || p.Check(netip.MustParseAddr("169.254.169.254")) == nil {
		t.Error("allow-private: private must pass, metadata must not")
	}
	p = PolicyFor(public)
	p.AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}
	if p.Check(netip.MustParseAddr("169.254.169.254")) != nil {
		t.Error("an explicit CIDR must open metadata")
	}

	// Listening on loopback opens loopback only.
	local := PolicyFor(config.Defaults())
	if !local.AllowLoopback {
		t.Fatal("default address 127.0.0.1:8080 is loopback")
	}
	for _, a := range []string{"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"} {
		if err := local.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s refused while listening on loopback: %v", a, err)
		}
	}
	for _, a := range []string{"10.1.2.3", "192.168.1.1", "169.254.169.254"} {
		if local.Check(netip.MustParseAddr(a)) == nil {
			t.Errorf("%s allowed while listening on loopback", a)
		}
	}
}

func TestListensOnLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:80": true, "[::1]:8080": true, "127.0.0.2:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.5:8080": false, "example.com:80": false,
	} {
		if got := ListensOnLoopback(addr); got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	public := config.Defaults()
	public.Addr = "0.0.0.0:8080"
	p := PolicyFor(public)
	for _, u := range []string{"http://127.0.0.1:9000/hook", "http://localhost:9000/", "http://[::1]/x", "https://10.0.0.8/x", "http://169.254.169.254/latest"} {
		err := p.CheckURL(u)
		if err == nil {
			t.Errorf("%s accepted", u)
			continue
		}
		if !strings.Contains(err.Error(), "PARLEY_WEBHOOK_ALLOW_") {
			t.Errorf("%s: message names no setting: %v", u, err)
		}
	}
	if err := p.CheckURL("http://127.0.0.1:9000/"); !strings.Contains(err.Error(), "0.0.0.0:8080") {
		t.Errorf("loopback refusal should say where Parley listens: %v", err)
	}
	// Names are resolved at delivery, not here.
	for _, u := range []string{"https://example.com/hook", "http://receiver.internal/x", "https://93.184.216.34/"} {
		if err := p.CheckURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	local := PolicyFor(config.Defaults())
	if err := local.CheckURL("http://localhost:9000/"); err != nil {
		t.Errorf("localhost refused while listening on loopback: %v", err)
	}
	if err := local.CheckURL("http://192.168.1.10/"); err == nil {
		t.Error("private address accepted while listening on loopback without a setting")
	}
}
