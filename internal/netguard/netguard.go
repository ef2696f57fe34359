// Package netguard decides which network addresses Parley may connect to
// when it calls a URL a user gave it (webhook deliveries, Meta webhook
// forwards). Private, loopback and cloud-metadata addresses are refused
// unless the operator allows them; the same policy answers at delivery time
// (on the address actually dialed) and at create time (on a URL whose host is
// a literal address or localhost), so a URL that can never be delivered is
// refused when it is written rather than failing every delivery.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/internal/config"
)

// Policy is the set of addresses Parley may connect to.
type Policy struct {
	// AllowPrivate opens every blocked range but cloud metadata
	// (PARLEY_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivate bool
	// AllowCIDRs are opened even though blocked, metadata included
	// (PARLEY_WEBHOOK_ALLOW_CIDRS).
	AllowCIDRs []netip.Prefix
	// AllowLoopback opens 127.0.0.0/8 and ::1: set while Parley itself
	// listens on a loopback address, where a receiver on the same machine
	// is the only kind of receiver there is to try it with.
	AllowLoopback bool
	// Listen is the address Parley listens on, quoted in refusals.
	Listen string
}

// PolicyFor returns the policy of a configuration: loopback targets are
// allowed while PARLEY_ADDR is a loopback address (the default
// 127.0.0.1:8080), refused when Parley listens on a public or unspecified
// address unless the two settings allow them.
func PolicyFor(cfg config.Config) Policy {
	return Policy{
		AllowPrivate:  cfg.WebhookAllowPrivate,
		AllowCIDRs:    cfg.WebhookAllowCIDRs,
		AllowLoopback: ListensOnLoopback(cfg.Addr),
		Listen:        cfg.Addr,
	}
}

// ListensOnLoopback reports whether a listen address (host:port) accepts
// connections from this machine only. An empty host (":8080") listens on
// every interface.
func ListensOnLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// RefusedError is a connection the policy refuses.
type RefusedError struct {
	IP     netip.Addr
	Reason string // "loopback", "private", "cloud metadata", …
}

func (e *RefusedError) Error() string {
	if !e.IP.IsValid() {
		return fmt.Sprintf("refused: %s address", e.Reason)
	}
	return fmt.Sprintf("refused: %s is a %s address (allow it with %s)", e.IP, e.Reason, e.setting())
}

// setting names what the operator changes to allow the address.
func (e *RefusedError) setting() string {
	if e.Reason == "cloud metadata" {
		return "PARLEY_WEBHOOK_ALLOW_CIDRS"
	}
	return "PARLEY_WEBHOOK_ALLOW_PRIVATE or PARLEY_WEBHOOK_ALLOW_CIDRS"
}

var blocked = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fc00::/7"), "private (ULA)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Check decides whether Parley may connect to ip. Cloud metadata addresses
// stay refused under AllowPrivate (they are never a legitimate webhook);
// only an explicit AllowCIDRs entry lets them through.
func (p Policy) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, c := range p.AllowCIDRs {
		if c.Contains(ip) {
			return nil
		}
	}
	for _, b := range blocked {
		if !b.prefix.Contains(ip) {
			continue
		}
		if b.reason != "cloud metadata" && (p.AllowPrivate || (b.reason == "loopback" && p.AllowLoopback)) {
			return nil
		}
		return &RefusedError{IP: ip, Reason: b.reason}
	}
	return nil
}

// CheckURL refuses a URL that can never be delivered under p: one whose host
// is a literal refused address, or localhost (always loopback). Other names
// are not resolved here (what they resolve to may change); the delivery
// checks the address it dials. The message names the setting to change.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil // the URL's syntax is the caller's check
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	var ip netip.Addr
	switch {
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		ip = netip.MustParseAddr("127.0.0.1")
	default:
		if ip, err = netip.ParseAddr(host); err != nil {
			return nil
		}
	}
	var ref *RefusedError
	if !errors.As(p.Check(ip), &ref) {
		return nil
	}
	msg := fmt.Sprintf("points to %s, a %s address, which Parley refuses", host, ref.Reason)
	if ref.Reason == "loopback" && p.Listen != "" {
		msg += fmt.Sprintf(" while it listens on %s (a non-loopback address)", p.Listen)
	}
	return fmt.Errorf("%s; to allow it, set %s", msg, allowHint(ref))
}

func allowHint(ref *RefusedError) string {
	if ref.Reason == "cloud metadata" {
		return "PARLEY_WEBHOOK_ALLOW_CIDRS to a range containing it"
	}
	return "PARLEY_WEBHOOK_ALLOW_PRIVATE=true or add its range to PARLEY_WEBHOOK_ALLOW_CIDRS"
}
