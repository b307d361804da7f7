package federation_test

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// TestRefusedPeerWaitsForAFix: a peer whose gateway refuses the handshake
// (here a stale token) is not redialled every few seconds: it shows the
// refused state with the reason, calls fail at once naming a wait of
// minutes, the log says what to fix, and a reload retries it at once.
func TestRefusedPeerWaitsForAFix(t *testing.T) {
	g := secured(t)
	cfg := newConfig(t, "main-server", "")
	p := peerConf("secure", "agent-1", g.ln, "x")
	p.Token = "stale-token"
	cfg.Federation.Peers = []federation.PeerConfig{p}
	logs := &syncBuffer{}
	m := startWith(t, cfg, listen(t), nil, slog.New(slog.NewTextHandler(logs, nil)))
	op := operator(t, m, "")
	const send = `{"action":"send","peerId":"secure","message":"hi"}`

	if r := mustTool(t, op, send); at(r, "error", "code") != gateway.CodeUnauthorized {
		t.Fatalf("send with a stale token: %v; want UNAUTHORIZED", r)
	}
	peers := mustTool(t, op, `{"action":"list_peers"}`)
	if state, why := at(peers, "peers", 0, "health", "state"), at(peers, "peers", 0, "health", "lastError"); state != federation.HealthRefused ||
		!strings.Contains(why.(string), "refused the handshake") {
		t.Errorf("health = %v, lastError %v; want refused, with the reason", state, why)
	}
	r := mustTool(t, op, send)
	if msg, _ := at(r, "error", "message").(string); at(r, "error", "code") != gateway.CodeUnauthorized || !regexp.MustCompile(`next attempt in [45]m`).MatchString(msg) {
		t.Errorf("second send: %v; want UNAUTHORIZED at once, the next attempt minutes away", r)
	}
	if l := logs.String(); !strings.Contains(l, "peer refused the handshake") || !strings.Contains(l, "gateway.auth.peers tokens") {
		t.Errorf("the log does not say what to fix:\n%s", l)
	}

	// The fix is on the peer's side; a reload here retries at once.
	fixed := *g.cfg
	fixed.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "stale-token"}}
	if _, err := g.Reload(&fixed); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reload(m.cfg); err != nil {
		t.Fatal(err)
	}
	if r := mustTool(t, op, send); r["status"] != "ok" {
		t.Fatalf("send after the fix and a reload: %v; want ok", r)
	}
}

// TestDelegateSkipsRefusedPeer: delegate does not try a peer whose gateway
// refused the handshake (here a stale token); it lists it in skipped with
// the reason, as it does a peer whose circuit is open, and a capable peer
// answers.
func TestDelegateSkipsRefusedPeer(t *testing.T) {
	g := secured(t)
	lnGood := listen(t)
	start(t, newConfig(t, "good-server", "agent-1", "x"), lnGood, nil)
	cfg := newConfig(t, "main-server", "")
	stale := peerConf("secure", "agent-1", g.ln, "x", "z")
	stale.Token = "stale-token"
	cfg.Federation.Peers = []federation.PeerConfig{stale, peerConf("good", "agent-1", lnGood, "x")}
	m := start(t, cfg, listen(t), nil)
	op := operator(t, m, "")

	if r := mustTool(t, op, `{"action":"send","peerId":"secure","message":"hi"}`); at(r, "error", "code") != gateway.CodeUnauthorized {
		t.Fatalf("send with a stale token: %v; want UNAUTHORIZED", r)
	}
	for range 2 { // round robin would start with secure once in two
		r := mustTool(t, op, `{"action":"delegate","requiredCapabilities":["x"],"task":"t"}`)
		attempts, _ := r["attempts"].([]any)
		reason, _ := at(r, "skipped", 0, "reason").(string)
		if r["status"] != "ok" || r["peerId"] != "good" || len(attempts) != 1 ||
			at(r, "skipped", 0, "peerId") != "secure" || !strings.HasPrefix(reason, "refused: ") || !strings.Contains(reason, "refused the handshake") {
			t.Fatalf("delegate with a refused peer: %v; want good to answer, secure skipped as refused with the reason", r)
		}
	}
	// Only the refused peer has z: nothing to try until a configuration
	// changes, which is not an open circuit.
	_, err := tool(t, op, `{"action":"delegate","requiredCapabilities":["z"],"task":"t"}`)
	if code := gateway.CodeOf(err); code != gateway.CodePeerUnavailable || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("delegate to refused peers only: %v (%s); want PEER_UNAVAILABLE naming the refusal", err, code)
	}
}
