package federation

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzDynamicPeerHosts: any entry and URL are parsed without a panic, and
// a URL the list admits names either an address an IP or CIDR entry
// contains, or a host name in standard form.
func FuzzDynamicPeerHosts(f *testing.F) {
	for _, s := range [][2]string{
		{"127.0.0.1", "ws://127.0.0.1:1"},
		{"*", "ws://2130706433:1"},
		{"*.agents.test", "ws://a.agents.test:1"},
		{"10.0.0.0/8", "ws://[::ffff:10.1.2.3]:1"},
		{"::1", "wss://[::1%25eth0]:1"},
		{"*", "ws://0x7f.1:1"},
		{"[::1]", "ws://user:pw@[::1]:1/x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, entry, raw string) {
		var l hostAllowList
		if l.add(entry) != nil {
			return
		}
		l.entries = []string{entry}
		if l.checkURL(raw) != nil {
			return
		}
		u, _ := url.Parse(raw)
		host := strings.ToLower(u.Hostname())
		if a, err := netip.ParseAddr(host); err == nil {
			if !l.allowsListed(a) {
				t.Fatalf("entry %q admitted address %q, which it does not contain", entry, host)
			}
			return
		}
		if !validHostName(host) {
			t.Fatalf("entry %q admitted host %q, not a host name", entry, host)
		}
	})
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "192.168.0.1": false, "172.16.0.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::": false, "::ffff:127.0.0.1": false,
		"fd00::1": false, "fe80::1": false, "64:ff9b::a9fe:a9fe": false, "2002:7f00:1::": false, "224.0.0.1": false,
	} {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v; want %v", addr, got, want)
		}
	}
}
