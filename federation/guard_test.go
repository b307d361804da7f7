package federation_test

import (
	"context"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/coder/websocket"
)

// browserLike rewrites the Host and Origin of the requests it carries, as
// a browser does for a page whose DNS name was rebound to 127.0.0.1.
type browserLike struct {
	host, origin string
}

func (b browserLike) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.host != "" {
		r.Host = b.host
	}
	if b.origin != "" {
		r.Header.Set("Origin", b.origin)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func dialAs(g *gw, role, token string, b browserLike) (*gateway.Client, error) {
	c, err := gateway.Dial(context.Background(), g.URL(), &gateway.DialOptions{
		Role: role, Token: token, HTTPClient: &http.Client{Transport: b},
		Client: gateway.ClientInfo{ID: gateway.ClientIDCLI, Mode: gateway.ClientModeCLI, InstanceID: "some-peer"},
	})
	if err == nil {
		c.Close()
	}
	return c, err
}

// TestDNSRebindingRefused: a gateway without an operator token trusts
// loopback operators only when their Host names this machine, and no
// browser origin is allowed unless listed in gateway.allowedOrigins or the
// gateway's own origin under a local Host (a page it served itself).
func TestDNSRebindingRefused(t *testing.T) {
	cfg := newConfig(t, "local-server", "echo")
	ln := listen(t)
	cfg.Gateway.Listen = ln.Addr().String()
	g := start(t, cfg, ln, nil)
	_, port, _ := net.SplitHostPort(cfg.Gateway.Listen)
	evil := "evil.example:" + port
	for _, tt := range []struct {
		name    string
		role    string
		b       browserLike
		refused bool
	}{
		{"program on loopback", gateway.RoleOperator, browserLike{}, false},
		{"Host localhost", gateway.RoleOperator, browserLike{host: "localhost:" + port}, false},
		{"Host the listen address", gateway.RoleOperator, browserLike{host: cfg.Gateway.Listen}, false},
		{"rebound name as Host", gateway.RoleOperator, browserLike{host: evil}, true},
		{"rebound page: Host and Origin its own name", gateway.RoleOperator, browserLike{host: evil, origin: "http://" + evil}, true},
		{"foreign Origin", gateway.RoleOperator, browserLike{origin: "https://evil.example"}, true},
		// The gateway's own page (its Origin is the request's own local scheme://Host) may call it.
		{"same-origin page", gateway.RoleOperator, browserLike{origin: "http://" + cfg.Gateway.Listen}, false},
		{"same-host Origin, another port", gateway.RoleOperator, browserLike{origin: "http://127.0.0.1:1"}, true},
		{"rebound page as a peer", gateway.RolePeer, browserLike{host: evil, origin: "http://" + evil}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dialAs(g, tt.role, "", tt.b)
			if (err != nil) != tt.refused {
				t.Fatalf("dial with Host %q Origin %q: %v; want refused=%v", tt.b.host, tt.b.origin, err, tt.refused)
			}
		})
	}
	// The refusal of a rebound Host names what is wrong.
	_, err := dialAs(g, gateway.RoleOperator, "", browserLike{host: evil})
	if code(err) != gateway.CodeUnauthorized || !strings.Contains(err.Error(), "Host") {
		t.Fatalf("rebound Host: %v; want UNAUTHORIZED naming the Host", err)
	}
}

// TestAllowedOrigins: an origin listed in gateway.allowedOrigins may
// connect (with the operator token), others may not.
func TestAllowedOrigins(t *testing.T) {
	cfg := newConfig(t, "dash-server", "echo")
	cfg.Gateway.AllowedOrigins = []string{"https://Dash.Example.com"}
	cfg.Gateway.Auth.OperatorToken = "op-token"
	g := start(t, cfg, listen(t), nil)
	if _, err := dialAs(g, gateway.RoleOperator, "op-token", browserLike{origin: "https://dash.example.com"}); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	for _, o := range []string{"https://dash.example.com.evil.example", "http://dash.example.com", "null"} {
		_, err := dialAs(g, gateway.RoleOperator, "op-token", browserLike{origin: o})
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("origin %q: %v; want a 403 refusal", o, err)
		}
	}
}

// TestConnectionLimits: past gateway.limits.maxHandshakes connections
// that have not sent connect, and past maxConnections in all, new
// connections get HTTP 503 before the upgrade; room made by closing one
// is usable again.
func TestConnectionLimits(t *testing.T) {
	cfg := newConfig(t, "small-server", "echo")
	cfg.Gateway.Auth.OperatorToken = "op-token"
	cfg.Gateway.Limits.MaxConnections = 3
	cfg.Gateway.Limits.MaxHandshakes = 2
	g := start(t, cfg, listen(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw := func() (*websocket.Conn, int, error) {
		ws, resp, err := websocket.Dial(ctx, g.URL(), nil)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return ws, status, err
	}
	// Two connections idle before connect fill the handshake slots.
	var idle []*websocket.Conn
	for range 2 {
		ws, _, err := raw()
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		idle = append(idle, ws)
	}
	if _, status, err := raw(); status != http.StatusServiceUnavailable {
		t.Fatalf("third handshake: status %d, %v; want 503", status, err)
	}
	if _, err := gateway.Dial(ctx, g.URL(), &gateway.DialOptions{Token: "op-token"}); err == nil {
		t.Fatal("a full client connected past the handshake limit")
	}
	// One finishes its handshake elsewhere: close it, then a client gets in.
	idle[0].CloseNow()
	var op *gateway.Client
	tstest.WaitFor(t, 5*time.Second, func() (err error) {
		op, err = gateway.Dial(ctx, g.URL(), &gateway.DialOptions{Token: "op-token"})
		return err
	})
	defer op.Close()
	// Open: op and idle[1]; one more raw connection makes three, the limit.
	ws, _, err := raw()
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, status, err := raw()
	if status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(err), "503") {
		t.Fatalf("fourth connection: status %d, %v; want 503", status, err)
	}
	// The connected client is served throughout.
	if err := op.Call(ctx, "federation.health", nil, nil); err != nil {
		t.Fatalf("connected operator past the limit: %v", err)
	}
}

// TestSilentConnectionsLimited: TCP connections that never send their
// HTTP request count against gateway.limits.maxHandshakes too; beyond it
// new connections are closed at once, and room made is usable again.
func TestSilentConnectionsLimited(t *testing.T) {
	cfg := newConfig(t, "quiet-server", "echo")
	cfg.Gateway.Auth.OperatorToken = "op-token"
	cfg.Gateway.Limits.MaxHandshakes = 2
	g := start(t, cfg, listen(t), nil)
	var silent []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", g.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	dial := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := gateway.Dial(ctx, g.URL(), &gateway.DialOptions{Token: "op-token"})
		if err == nil {
			c.Close()
		}
		return err
	}
	tstest.WaitFor(t, 5*time.Second, func() error {
		if dial() == nil {
			return fmt.Errorf("a client connected beside 2 silent connections with maxHandshakes 2")
		}
		return nil
	})
	for _, c := range silent {
		c.Close()
	}
	tstest.WaitFor(t, 5*time.Second, dial)
}
