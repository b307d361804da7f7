package gateway_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/gateway"
)

func TestGuardLocal(t *testing.T) {
	g := &gateway.Guard{ListenAddr: "gw.internal:18789"}
	wild := &gateway.Guard{ListenAddr: "0.0.0.0:18789"}
	for _, tt := range []struct {
		guard        *gateway.Guard
		remote, host string
		want         bool
	}{
		{g, "127.0.0.1:5000", "127.0.0.1:18789", true},
		{g, "127.0.0.1:5000", "127.1.2.3", true},
		{g, "[::1]:5000", "[::1]:18789", true},
		{g, "127.0.0.1:5000", "LocalHost.:18789", true},
		{g, "127.0.0.1:5000", "app.localhost:18789", true},
		{g, "127.0.0.1:5000", "GW.internal:18789", true},
		{g, "127.0.0.1:5000", "evil.example:18789", false},
		{g, "127.0.0.1:5000", "127.0.0.1.nip.io:18789", false},
		{g, "127.0.0.1:5000", "localhost.evil.example", false},
		{g, "127.0.0.1:5000", "", false},
		{g, "10.0.0.7:5000", "127.0.0.1:18789", false}, // not from this machine
		{wild, "127.0.0.1:5000", "0.0.0.0:18789", false},
		{nil, "127.0.0.1:5000", "localhost", true},
	} {
		r := &http.Request{RemoteAddr: tt.remote, Host: tt.host}
		if got := tt.guard.Local(r); got != tt.want {
			t.Errorf("Guard{%v}.Local(remote %s, Host %q) = %v; want %v", tt.guard, tt.remote, tt.host, got, tt.want)
		}
	}
}

func TestGuardCheckOrigin(t *testing.T) {
	g := &gateway.Guard{AllowedOrigins: []string{"https://Dash.example.com/"}}
	for _, tt := range []struct {
		origins []string
		ok      bool
	}{
		{nil, true},
		{[]string{"https://dash.example.com"}, true},
		{[]string{"HTTPS://DASH.EXAMPLE.COM"}, true},
		{[]string{"http://dash.example.com"}, false},
		{[]string{"https://dash.example.com:8443"}, false},
		{[]string{"null"}, false},
		{[]string{"https://dash.example.com", "https://evil.example"}, false},
		{[]string{strings.Repeat("x", 10000)}, false},
	} {
		r := &http.Request{Header: http.Header{}}
		for _, o := range tt.origins {
			r.Header.Add("Origin", o)
		}
		err := g.CheckOrigin(r)
		if (err == nil) != tt.ok {
			t.Errorf("CheckOrigin(%.40q) = %v; want ok=%v", tt.origins, err, tt.ok)
		}
		if err != nil && (gateway.CodeOf(err) != gateway.CodeForbidden || len(err.Error()) > 300) {
			t.Errorf("CheckOrigin(%.40q) = %q; want a short FORBIDDEN", tt.origins, err)
		}
	}
}

// TestGuardSameOrigin: a page the gateway served itself (Origin equal to
// the request's own scheme://Host) may call it when that Host names this
// machine; a page rebound to this machine (its own name as Host and
// Origin) and a foreign origin stay refused.
func TestGuardSameOrigin(t *testing.T) {
	g := &gateway.Guard{}
	for _, tt := range []struct {
		host, origin string
		ok           bool
	}{
		{"127.0.0.1:18789", "http://127.0.0.1:18789", true},
		{"localhost:18789", "HTTP://LocalHost:18789/", true},
		{"127.0.0.1:18789", "https://127.0.0.1:18789", false}, // another scheme
		{"127.0.0.1:18789", "http://127.0.0.1:18790", false},  // another port
		{"127.0.0.1:18789", "http://evil.example", false},
		{"evil.example:18789", "http://evil.example:18789", false}, // DNS rebinding
		{"", "http://", false},
	} {
		r := &http.Request{Host: tt.host, Header: http.Header{"Origin": {tt.origin}}}
		if err := g.CheckOrigin(r); (err == nil) != tt.ok {
			t.Errorf("Host %q, Origin %q: CheckOrigin = %v; want ok=%v", tt.host, tt.origin, err, tt.ok)
		}
	}
}

// FuzzGuard: no Host or Origin makes the guard panic, an error never
// repeats more than a bounded part of the input (80 bytes, quoted), and whatever Local
// accepts names loopback, localhost or the listen host.
func FuzzGuard(f *testing.F) {
	for _, s := range []string{"127.0.0.1:1", "[::1]", "localhost.", "evil.example:1", "[", "]:", "a.localhost", "%00", "gw.internal"} {
		f.Add(s, "http://"+s)
	}
	g := &gateway.Guard{ListenAddr: "gw.internal:1", AllowedOrigins: []string{"http://gw.internal"}}
	f.Fuzz(func(t *testing.T, host, origin string) {
		r := &http.Request{RemoteAddr: "127.0.0.1:9", Host: host, Header: http.Header{"Origin": {origin}}}
		if err := g.CheckOrigin(r); err != nil && len(err.Error()) > 600 {
			t.Fatalf("error of %d bytes", len(err.Error()))
		}
		if !g.Local(r) {
			return
		}
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
		ip := net.ParseIP(h)
		if !(ip != nil && ip.IsLoopback() || h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "gw.internal") {
			t.Fatalf("Local accepted Host %q", host)
		}
	})
}
