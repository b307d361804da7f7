package federation

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"syscall"
	"time"
)

// gateway.dynamicPeerHosts: where register_peer may make this gateway
// connect. Each entry is one of
//
//   - an IP address, "127.0.0.1" or "::1": a URL naming exactly that
//     address, and connections to it;
//   - a CIDR prefix, "10.20.0.0/16": any address in it, likewise;
//   - a host name or a pattern of one, "localhost", "*.agents.example.com"
//     ('*' stands for any characters, dots included; matched ignoring
//     case): URLs that name such a host.
//
// A host name admits the name, not whatever it resolves to. At every dial
// of a dynamic peer the address actually connected to is checked (in the
// dialer, after resolution, so a name that changes its answer between the
// check and the connection gains nothing): it must be in an IP or CIDR
// entry, or be a public address. A name that resolves to a loopback,
// private, link-local or other special address therefore needs that
// address or its network listed too. Static peers (federation.peers) are
// the operator's own choice and are not checked. An empty list allows any
// host.

// hostAllowList is gateway.dynamicPeerHosts, parsed.
type hostAllowList struct {
	entries  []string       // as configured, for messages
	names    []string       // lower-case host name patterns
	prefixes []netip.Prefix // IP entries as single-address prefixes, and CIDRs
}

// add parses one entry into l, or says what is wrong with it.
func (l *hostAllowList) add(entry string) error {
	if p, err := netip.ParsePrefix(entry); err == nil {
		if p != p.Masked() {
			return fmt.Errorf("%q has host bits set; write the network, like %q", entry, p.Masked())
		}
		l.prefixes = append(l.prefixes, p)
		return nil
	}
	if a, err := netip.ParseAddr(strings.Trim(entry, "[]")); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("%q has an IPv6 zone; zones cannot be allowed", entry)
		}
		l.prefixes = append(l.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		return nil
	}
	name := strings.ToLower(entry)
	if ipPattern(name) {
		return fmt.Errorf("%q is a pattern of IP addresses; write the network as a CIDR, like \"10.0.0.0/24\"", entry)
	}
	if _, err := path.Match(name, ""); err != nil || !validHostName(strings.NewReplacer("*", "x", "?", "x").Replace(name)) {
		return fmt.Errorf("%q is not an IP address (\"127.0.0.1\"), a CIDR (\"10.0.0.0/8\") or a host name pattern (\"*.agents.example.com\")", entry)
	}
	l.names = append(l.names, name)
	return nil
}

// newHostAllowList parses entries, which Validate has checked; it returns
// nil for an empty list, which allows any host.
func newHostAllowList(entries []string) *hostAllowList {
	if len(entries) == 0 {
		return nil
	}
	l := &hostAllowList{entries: entries}
	for _, e := range entries {
		l.add(e) // checked by Validate
	}
	return l
}

// checkURL refuses a dynamic peer URL whose host no entry admits.
func (l *hostAllowList) checkURL(raw string) error {
	if l == nil {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: peerUrl is not a valid URL", ErrInvalidParams)
	}
	host := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil {
		if l.allowsListed(a) {
			return nil
		}
		return fmt.Errorf("%w: peerUrl address %s is not in gateway.dynamicPeerHosts %q", ErrForbidden, shortHost(host), l.entries)
	}
	if !validHostName(host) {
		return fmt.Errorf("%w: peerUrl host %q is neither a host name nor an IP address in standard form; write an IP as 127.0.0.1 or [::1]", ErrForbidden, shortHost(host))
	}
	for _, pat := range l.names {
		if ok, _ := path.Match(pat, host); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: peerUrl host %q is not in gateway.dynamicPeerHosts %q", ErrForbidden, shortHost(host), l.entries)
}

// allowsListed reports whether an IP or CIDR entry contains a.
func (l *hostAllowList) allowsListed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowsAddr reports whether a dynamic peer's dial may connect to a.
func (l *hostAllowList) allowsAddr(a netip.Addr) bool {
	return l.allowsListed(a) || publicAddr(a)
}

// dialer returns the net.Dialer for a dynamic peer: it checks every
// address it is about to connect to, after name resolution.
func (l *hostAllowList) dialer(peerID string) *net.Dialer {
	return &net.Dialer{
		Timeout:   30 * time.Second, // as http.DefaultTransport's
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !l.allowsAddr(ap.Addr()) {
				return &addrRefusedError{peer: peerID, addr: address, entries: l.entries}
			}
			return nil
		},
	}
}

// addrRefusedError is a dynamic peer's dial stopped before it connected to
// an address that gateway.dynamicPeerHosts does not allow.
type addrRefusedError struct {
	peer, addr string
	entries    []string
}

func (e *addrRefusedError) Error() string {
	return fmt.Sprintf("peer %q: refused to connect to %s: not a public address, and not in gateway.dynamicPeerHosts %q "+
		"(a host name there admits public addresses only; list the address, or its network as a CIDR, to allow it)",
		e.peer, e.addr, e.entries)
}

// validHostName reports whether s is a DNS host name whose last label
// starts with a letter: never a number, so that no form of an IP address
// ("127.1", "0x7f000001", "2130706433") passes for a name.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1][0]
	return 'a' <= last && last <= 'z' || 'A' <= last && last <= 'Z'
}

// ipPattern reports whether a name pattern is rather one of IPv4
// addresses: more than one label, each only digits or wildcards.
func ipPattern(pat string) bool {
	labels := strings.Split(pat, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || strings.Trim(l, "0123456789*?") != "" {
			return false
		}
	}
	return true
}

// specialNets are unicast ranges that are not the public internet, beyond
// what netip's IsPrivate, IsLoopback and IsLinkLocalUnicast cover, and
// IPv6 ranges that embed or tunnel to an IPv4 address.
var specialNets = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // this network
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local NAT64
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001::/32"),       // Teredo
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4
	netip.MustParsePrefix("fec0::/10"),       // site-local, deprecated
}

// publicAddr reports whether a is a public unicast address.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.Zone() != "" || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range specialNets {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// shortHost bounds a host quoted in an error.
func shortHost(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
