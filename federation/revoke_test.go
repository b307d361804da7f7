package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// closed reports whether c's connection ends within a few seconds: a call
// on it fails and the client sees the close.
func closed(c *gateway.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Call(ctx, federation.MethodHealth, nil, nil); err == nil {
		return fmt.Errorf("a call on it still succeeds")
	}
	select {
	case <-c.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("still open")
	}
}

func works(c *gateway.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Call(ctx, federation.MethodHealth, nil, nil)
}

// TestRevocationClosesConnections: a reload that removes a previousToken,
// a peer's whole entry, or changes the operator token closes the open
// connections that authenticated with what it removed, and only those.
func TestRevocationClosesConnections(t *testing.T) {
	cfg := newConfig(t, "rotating-server", "echo")
	cfg.Gateway.Auth.OperatorToken = "op-1"
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{
		{ServerID: "peer-a", Token: "a-new", PreviousToken: "a-old"},
		{ServerID: "peer-b", Token: "b-token"},
	}
	g := start(t, cfg, listen(t), nil)
	mustDial := func(serverID, token string) *gateway.Client {
		c, err := dialPeer(t, g, serverID, token)
		if err != nil {
			t.Fatalf("dial %s: %v", serverID, err)
		}
		return c
	}
	aOld, aNew, b := mustDial("peer-a", "a-old"), mustDial("peer-a", "a-new"), mustDial("peer-b", "b-token")
	op := operator(t, g, "op-1")
	reload := func(mutate func(*federation.Config)) {
		t.Helper()
		next := *g.cfg
		next.Gateway.Auth.Peers = append([]federation.PeerCredential(nil), g.cfg.Gateway.Auth.Peers...)
		mutate(&next)
		if _, err := g.Reload(&next); err != nil {
			t.Fatal(err)
		}
		g.cfg = &next
	}
	check := func(step string, gone []*gateway.Client, kept ...*gateway.Client) {
		t.Helper()
		for i, c := range gone {
			if err := closed(c); err != nil {
				t.Fatalf("%s: revoked connection %d: %v", step, i, err)
			}
		}
		for i, c := range kept {
			if err := works(c); err != nil {
				t.Fatalf("%s: connection %d with a valid credential: %v", step, i, err)
			}
		}
	}

	reload(func(c *federation.Config) { c.Gateway.Auth.Peers[0].PreviousToken = "" })
	check("previousToken removed", []*gateway.Client{aOld}, aNew, b, op)

	reload(func(c *federation.Config) { c.Gateway.Auth.Peers = c.Gateway.Auth.Peers[:1] })
	check("peer-b's entry removed", []*gateway.Client{b}, aNew, op)

	// A rotation that keeps the token in use as previousToken keeps it.
	reload(func(c *federation.Config) {
		c.Gateway.Auth.Peers[0].Token, c.Gateway.Auth.Peers[0].PreviousToken = "a-newer", "a-new"
	})
	check("token moved to previousToken", nil, aNew, op)

	reload(func(c *federation.Config) { c.Gateway.Auth.OperatorToken = "op-2" })
	check("operator token changed", []*gateway.Client{op}, aNew)
	if _, err := gateway.Dial(context.Background(), g.URL(), &gateway.DialOptions{Token: "op-1"}); code(err) != gateway.CodeUnauthorized {
		t.Fatalf("old operator token after the change: %v; want UNAUTHORIZED", err)
	}
	operator(t, g, "op-2")
}

// TestHelloOKIsSmallAndHidesHealth: hello-ok's snapshot shows no agent or
// peer health, so a peer denied federation.health learns none from it,
// and its size does not grow with the number of peers and agents.
func TestHelloOKIsSmallAndHidesHealth(t *testing.T) {
	cfg := newConfig(t, "busy-server", "")
	for i := range 200 {
		cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: fmt.Sprintf("agent-%03d-%0100d", i, 0), Handler: federation.HandlerConfig{Type: "echo"}})
		cfg.Federation.Peers = append(cfg.Federation.Peers, federation.PeerConfig{ID: fmt.Sprintf("peer-%03d-%0100d", i, 0),
			Name: "p", URL: "ws://127.0.0.1:1", AgentID: "x"})
	}
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "nosy", Token: "nosy-token", AllowMethods: []string{federation.MethodRelay}}}
	g := start(t, cfg, listen(t), nil)
	c, err := dialPeer(t, g, "nosy", "nosy-token")
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := json.Marshal(c.Hello())
	var snap struct {
		Health map[string]any `json:"health"`
	}
	if err := json.Unmarshal(c.Hello().Snapshot, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Health["agents"] != nil || snap.Health["peers"] != nil || snap.Health["serverId"] != "busy-server" {
		t.Fatalf("hello-ok health for a peer without federation.health: %v", snap.Health)
	}
	if len(hello) > 2048 {
		t.Fatalf("hello-ok is %d bytes with 200 peers and 200 agents; want it bounded (under 2 KiB)", len(hello))
	}
	if err := c.Call(context.Background(), federation.MethodHealth, nil, nil); code(err) != gateway.CodeForbidden {
		t.Fatalf("federation.health for a peer without it: %v; want FORBIDDEN", err)
	}
}
