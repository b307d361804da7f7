package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// dialPeer connects to g as a peer gateway would.
func dialPeer(t *testing.T, g *gw, serverID, token string) (*gateway.Client, error) {
	t.Helper()
	c, err := gateway.Dial(context.Background(), g.URL(), &gateway.DialOptions{
		Role: gateway.RolePeer, Token: token,
		Client: gateway.ClientInfo{ID: gateway.ClientIDGateway, Mode: gateway.ClientModeBack, InstanceID: serverID},
	})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func relay(t *testing.T, c *gateway.Client, from, to string) error {
	t.Helper()
	msg := federation.NewMessage(federation.TypeRequest, from, "someone", to, "hi")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Call(ctx, federation.MethodRelay, federation.RelayParams{TargetAgent: to, Message: msg}, nil)
}

// secured is a gateway that knows one peer credential and requires auth.
func secured(t *testing.T) *gw {
	cfg := newConfig(t, "secure-server", "agent-1", "x")
	cfg.Federation.RequireAuth = true
	cfg.Gateway.Auth.OperatorToken = "op-token"
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "main-token"}}
	return start(t, cfg, listen(t), nil)
}

func TestPeerAuthentication(t *testing.T) {
	g := secured(t)
	for _, tt := range []struct {
		name, claimed, token, wantCode, detail string
	}{
		{"right token", "main-server", "main-token", "", ""},
		{"right token, any claimed name", "whoever", "main-token", "", ""},
		{"wrong token", "main-server", "guess", gateway.CodeUnauthorized, "AUTH_TOKEN_MISMATCH"},
		{"no token", "main-server", "", gateway.CodeUnauthorized, "AUTH_TOKEN_MISSING"},
		{"operator token used as peer token", "main-server", "op-token", gateway.CodeUnauthorized, "AUTH_TOKEN_MISMATCH"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dialPeer(t, g, tt.claimed, tt.token)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				// The identity comes from the credential, not the claim.
				if err := relay(t, c, "main-server", "agent-1"); err != nil {
					t.Fatalf("relay as the authenticated identity: %v", err)
				}
				return
			}
			var e *gateway.Error
			if code(err) != tt.wantCode || !errorsAs(err, &e) || fmt.Sprint(e.Details) != fmt.Sprint(map[string]any{"code": tt.detail}) {
				t.Fatalf("dial: %v (details %v); want %s with %s", err, detailsOf(err), tt.wantCode, tt.detail)
			}
		})
	}
	// The gateway still serves after refusals.
	if _, err := dialPeer(t, g, "main-server", "main-token"); err != nil {
		t.Fatalf("after refusals: %v", err)
	}
}

func TestSpoofedFromServerIsForbidden(t *testing.T) {
	g := secured(t)
	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	err = relay(t, c, "someone-else", "agent-1")
	if code(err) != gateway.CodeForbidden || !strings.Contains(err.Error(), `"someone-else"`) {
		t.Fatalf("relay claiming another fromServer: %v; want FORBIDDEN naming the claim", err)
	}
}

func TestRoleSeparation(t *testing.T) {
	g := secured(t)
	peer, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	op := operator(t, g, "op-token")
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		c      *gateway.Client
		method string
		params any
		want   string
	}{
		{"peer runs a tool action", peer, federation.MethodTool, json.RawMessage(`{"action":"list_peers"}`), gateway.CodeForbidden},
		{"operator relays", op, federation.MethodRelay, federation.RelayParams{}, gateway.CodeForbidden},
		{"unknown method", peer, "federation.teleport", nil, gateway.CodeInvalidRequest},
		{"unknown method, operator", op, "sessions.teleport", nil, gateway.CodeInvalidRequest},
		{"peer reads OpenClaw health", peer, federation.MethodOpenClawHealth, nil, gateway.CodeForbidden},
		{"operator reads OpenClaw health", op, federation.MethodOpenClawHealth, nil, ""},
		{"operator reads status", op, federation.MethodStatus, nil, ""},
		{"peer reads capabilities", peer, federation.MethodCapabilities, nil, ""},
		{"peer reads health", peer, federation.MethodHealth, nil, ""},
		{"operator reads capabilities", op, federation.MethodCapabilities, nil, ""},
		{"operator runs a tool action", op, federation.MethodTool, json.RawMessage(`{"action":"list_peers"}`), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Call(ctx, tt.method, tt.params, nil)
			if code(err) != tt.want {
				t.Fatalf("%s: %v; want code %q", tt.method, err, tt.want)
			}
		})
	}
	hello := peer.Hello()
	if strings.Contains(strings.Join(hello.Features.Methods, ","), federation.MethodTool) {
		t.Fatalf("hello-ok offers %v to a peer", hello.Features.Methods)
	}
}

func TestOperatorToken(t *testing.T) {
	g := secured(t)
	for _, tok := range []string{"", "wrong", "main-token"} {
		_, err := gateway.Dial(context.Background(), g.URL(), &gateway.DialOptions{Token: tok})
		if code(err) != gateway.CodeUnauthorized {
			t.Errorf("operator with token %q: %v; want UNAUTHORIZED", tok, err)
		}
	}
	if _, err := gateway.Dial(context.Background(), g.URL(), &gateway.DialOptions{Role: "node", Token: "op-token"}); code(err) != gateway.CodeInvalidRequest {
		t.Errorf("role node: %v; want INVALID_REQUEST", err)
	}
}

// TestRequireAuthDialsWithToken runs the whole path: a main gateway whose
// peer config carries the token the secured gateway expects.
func TestRequireAuthDialsWithToken(t *testing.T) {
	g := secured(t)
	for _, tt := range []struct{ token, status, code string }{
		{"main-token", "ok", ""},
		{"stale-token", "error", gateway.CodeUnauthorized},
	} {
		cfg := newConfig(t, "main-server", "")
		p := peerConf("secure", "agent-1", g.ln, "x")
		p.Token = tt.token
		cfg.Federation.Peers = []federation.PeerConfig{p}
		m := start(t, cfg, listen(t), nil)
		r := mustTool(t, operator(t, m, ""), `{"action":"send","peerId":"secure","message":"hi"}`)
		if r["status"] != tt.status || (tt.code != "" && at(r, "error", "code") != tt.code) {
			t.Fatalf("token %q: %v; want status %s %s", tt.token, r, tt.status, tt.code)
		}
	}
}

// TestOpenClawShapesForOperators: operators, OpenClaw's clients among them,
// get OpenClaw's answers: its unknown-method error, its health snapshot,
// and a hello-ok without agentfed's additions; peers keep the serverId.
func TestOpenClawShapesForOperators(t *testing.T) {
	g := secured(t)
	op := operator(t, g, "op-token")
	ctx := context.Background()
	err := op.Call(ctx, "nope.nothing", nil, nil)
	if code(err) != gateway.CodeInvalidRequest || err.Error() != "unknown method: nope.nothing" {
		t.Errorf("unknown method: %v (code %s); want INVALID_REQUEST \"unknown method: nope.nothing\"", err, code(err))
	}
	var health map[string]any
	if err := op.Call(ctx, federation.MethodOpenClawHealth, nil, &health); err != nil {
		t.Fatal(err)
	}
	if health["ok"] != true || health["ts"] == nil || len(health) != 3 {
		t.Errorf("health = %v; want OpenClaw's {ok: true, ts, durationMs}", health)
	}
	var status federation.Status
	if err := op.Call(ctx, federation.MethodStatus, nil, &status); err != nil {
		t.Fatal(err)
	}
	if status.RuntimeVersion != federation.Version || status.Federation == nil || status.Federation.ServerID == "" {
		t.Errorf("status = %+v; want runtimeVersion and the federation health", status)
	}
	var snap map[string]any
	json.Unmarshal(op.Hello().Snapshot, &snap)
	if op.Hello().Server.ServerID != "" || snap["serverId"] != nil || snap["health"].(map[string]any)["ok"] != true {
		t.Errorf("operator hello-ok: server %+v, snapshot %v; want OpenClaw's shape, no serverId", op.Hello().Server, snap)
	}
	peer, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	if peer.Hello().Server.ServerID == "" {
		t.Error("peer hello-ok lost server.serverId, which peers pin")
	}
}
