package federation_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// peerHealth returns the health list_peers reports for peer id of g.
func peerHealth(t *testing.T, g *gw, id string) federation.PeerHealthInfo {
	t.Helper()
	for _, p := range g.ListPeers().Peers {
		if p.ID == id {
			return p.Health
		}
	}
	t.Fatalf("no peer %q", id)
	return federation.PeerHealthInfo{}
}

// TestA2APeerHeartbeatAndCardSkills: the heartbeat reads a static A2A
// peer's card (the peer is seen, with an RTT, before any message), its
// skills become capabilities delegate uses, and a peer that stops
// answering shows the failure in its health.
func TestA2APeerHeartbeatAndCardSkills(t *testing.T) {
	b := a2aGateway(t)
	cfg := newConfig(t, "a", "")
	cfg.Gateway.HeartbeatMs = 100
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "b-echo", Name: "b over A2A", Type: federation.PeerTypeA2A,
		URL: "http://" + b.Addr().String() + federation.A2APath + "echo", Token: "good-token", AgentID: "echo"}} // no capabilities: the card's
	a := start(t, cfg, listen(t), nil)
	tstest.WaitFor(t, 10*time.Second, func() error {
		if h := peerHealth(t, a, "b-echo"); h.LastSeen == 0 || h.RTTMs <= 0 {
			return fmt.Errorf("A2A peer not seen by the heartbeat: %+v", h)
		}
		return nil
	})
	r := mustTool(t, operator(t, a, ""), `{"action":"delegate","requiredCapabilities":["text"],"task":"by skill"}`)
	if r["status"] != "ok" || r["peerId"] != "b-echo" || at(r, "response", "content") != "by skill" {
		t.Fatalf("delegate by the card's skill: %v", r)
	}
	b.stop(t)
	tstest.WaitFor(t, 10*time.Second, func() error {
		if h := peerHealth(t, a, "b-echo"); !strings.Contains(h.LastError, "agent card") {
			return fmt.Errorf("a stopped A2A peer's health: %+v", h)
		}
		return nil
	})
}

// TestA2APeerFailover: delegate to a capability two A2A peers have; with
// one A2A server gone, every task goes to the other, and the dead peer's
// circuit opens.
func TestA2APeerFailover(t *testing.T) {
	b1, b2 := a2aGateway(t), a2aGateway(t)
	cfg := newConfig(t, "a", "")
	cfg.Gateway.Breaker.Failures = 2
	cfg.Gateway.Breaker.OpenMs = 60000
	for i, b := range []*gw{b1, b2} {
		cfg.Federation.Peers = append(cfg.Federation.Peers, federation.PeerConfig{ID: fmt.Sprintf("b%d", i+1), Name: "A2A echo",
			Type: federation.PeerTypeA2A, URL: "http://" + b.Addr().String() + federation.A2APath + "echo", Token: "good-token",
			AgentID: "echo", Capabilities: []string{"text"}})
	}
	a := start(t, cfg, listen(t), nil)
	op := operator(t, a, "")
	for i := range 2 { // both in use
		if r := mustTool(t, op, `{"action":"delegate","requiredCapabilities":["text"],"task":"warm"}`); r["status"] != "ok" {
			t.Fatalf("delegate %d: %v", i, r)
		}
	}
	b1.stop(t)
	for i := range 6 {
		r := mustTool(t, op, fmt.Sprintf(`{"action":"delegate","requiredCapabilities":["text"],"task":"task %d"}`, i))
		if r["status"] != "ok" || r["peerId"] != "b2" || at(r, "response", "content") != fmt.Sprintf("task %d", i) {
			t.Fatalf("delegate %d with b1 down: %v; want it answered by b2", i, r)
		}
	}
	if h := peerHealth(t, a, "b1"); h.Circuit != "open" {
		t.Fatalf("the dead A2A peer's circuit is %q, want open: %+v", h.Circuit, h)
	}
}

// TestA2APeerDynamicHosts: an A2A peer added by register_peer is held to
// gateway.dynamicPeerHosts at every connection, as a gateway peer is: a
// host name entry admits public addresses only, so a name that resolves
// to loopback is refused when the card is fetched.
func TestA2APeerDynamicHosts(t *testing.T) {
	b := a2aGateway(t)
	_, port, _ := net.SplitHostPort(b.Addr().String())
	tests := []struct {
		name, host, allow string
		ok                bool
	}{
		{"listed address", "127.0.0.1", "127.0.0.1", true},
		{"name resolving to loopback", "localhost", "localhost", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newConfig(t, "a", "")
			cfg.Gateway.DynamicPeerHosts = []string{tt.allow}
			op := operator(t, start(t, cfg, listen(t), nil), "")
			mustTool(t, op, fmt.Sprintf(`{"action":"register_peer","peerId":"dyn","peerName":"dynamic A2A","peerType":"a2a","peerUrl":"http://%s:%s%secho","peerAgentId":"echo","peerToken":"good-token"}`,
				tt.host, port, federation.A2APath))
			r := mustTool(t, op, `{"action":"send","peerId":"dyn","message":"hi"}`)
			if tt.ok && (r["status"] != "ok" || at(r, "response", "content") != "hi") {
				t.Fatalf("send to a dynamic A2A peer at a listed address: %v", r)
			}
			if !tt.ok && (r["status"] != "error" || !strings.Contains(fmt.Sprint(at(r, "error", "message")), "dynamicPeerHosts")) {
				t.Fatalf("send to a dynamic A2A peer at a refused address: %v; want an error naming gateway.dynamicPeerHosts", r)
			}
		})
	}
}
