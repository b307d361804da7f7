package federation_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// guarded is a gateway with two agents and one credential, tuned by grant.
func guarded(t *testing.T, grant func(*federation.PeerCredential)) *gw {
	cfg := newConfig(t, "guarded-server", "")
	cfg.Agents = []federation.AgentConfig{
		{ID: "public", Capabilities: []string{"search"}, Handler: federation.HandlerConfig{Type: "echo"}},
		{ID: "secret", Capabilities: []string{"payroll"}, Handler: federation.HandlerConfig{Type: "echo"}},
	}
	cred := federation.PeerCredential{ServerID: "main-server", Token: "main-token"}
	if grant != nil {
		grant(&cred)
	}
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{cred}
	return start(t, cfg, listen(t), nil)
}

func relayMsg(t *testing.T, c *gateway.Client, m *federation.Message, to string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Call(ctx, federation.MethodRelay, federation.RelayParams{TargetAgent: to, Message: m}, nil)
}

func TestReplayProtection(t *testing.T) {
	g := guarded(t, nil)
	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	m := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "once")
	if err := relayMsg(t, c, m, "public"); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if err := relayMsg(t, c, m, "public"); code(err) != federation.CodeReplayed {
		t.Fatalf("the same message again: %v; want REPLAYED", err)
	}
	// Resending a delivered plain message as durable is a replay too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Call(ctx, federation.MethodRelay, federation.RelayParams{TargetAgent: "public", Message: m, Durable: true}, nil)
	if code(err) != federation.CodeReplayed {
		t.Fatalf("a delivered message resent as durable: %v; want REPLAYED", err)
	}
	// A durable message may come again durable: the kept reply answers it.
	d := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "durable")
	for i := range 2 {
		if err := c.Call(ctx, federation.MethodRelay, federation.RelayParams{TargetAgent: "public", Message: d, Durable: true}, nil); err != nil {
			t.Fatalf("durable delivery %d: %v", i+1, err)
		}
	}
	for _, skew := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		old := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "stale")
		old.Timestamp = time.Now().Add(skew).UnixMilli()
		if err := relayMsg(t, c, old, "public"); code(err) != federation.CodeStale || !strings.Contains(err.Error(), "clock") {
			t.Fatalf("timestamp %v off: %v; want STALE_MESSAGE", skew, err)
		}
	}
}

func TestLeastPrivilege(t *testing.T) {
	for _, tt := range []struct {
		name   string
		grant  func(*federation.PeerCredential)
		to     string
		size   int
		method string
		want   string
		rule   string
	}{
		{"allowed agent", func(c *federation.PeerCredential) { c.AllowAgents = []string{"public"} }, "public", 0, "", "", ""},
		{"agent not granted", func(c *federation.PeerCredential) { c.AllowAgents = []string{"public"} }, "secret", 0, "", gateway.CodeForbidden, "allowAgents"},
		{"capability not granted", func(c *federation.PeerCredential) { c.AllowCapabilities = []string{"search"} }, "secret", 0, "", gateway.CodeForbidden, "allowCapabilities"},
		{"capability granted", func(c *federation.PeerCredential) { c.AllowCapabilities = []string{"search"} }, "public", 0, "", "", ""},
		{"message too large", func(c *federation.PeerCredential) { c.MaxMessageBytes = 100 }, "public", 101, "", gateway.CodeTooLarge, "maxMessageBytes"},
		{"method not granted", func(c *federation.PeerCredential) { c.AllowMethods = []string{"federation.relay"} }, "", 0, federation.MethodCapabilities, gateway.CodeForbidden, "allowMethods"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := guarded(t, tt.grant)
			c, err := dialPeer(t, g, "main-server", "main-token")
			if err != nil {
				t.Fatal(err)
			}
			if tt.method != "" {
				err = c.Call(context.Background(), tt.method, nil, nil)
			} else {
				err = relayMsg(t, c, federation.NewMessage(federation.TypeRequest, "main-server", "a", tt.to, strings.Repeat("x", tt.size)), tt.to)
			}
			if code(err) != tt.want || !strings.Contains(errString(err), tt.rule) {
				t.Fatalf("got %v; want code %q naming %q", err, tt.want, tt.rule)
			}
			// Still serving after a denial.
			if err := c.Call(context.Background(), federation.MethodHealth, nil, nil); err != nil && tt.method == "" {
				t.Fatalf("after denial: %v", err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDynamicPeerHostAllowList(t *testing.T) {
	cfg := newConfig(t, "main", "")
	cfg.Gateway.DynamicPeerHosts = []string{"127.0.0.1", "*.agents.test"}
	g := start(t, cfg, listen(t), nil)
	op := operator(t, g, "")
	for _, tt := range []struct{ url, want string }{
		{"ws://127.0.0.1:1", ""},
		{"ws://worker.agents.test:1", ""},
		{"ws://169.254.169.254:80", gateway.CodeForbidden},
		{"ws://10.0.0.1:18789", gateway.CodeForbidden},
	} {
		id := strings.NewReplacer(".", "-", ":", "-", "/", "").Replace(tt.url)
		_, err := tool(t, op, `{"action":"register_peer","peerId":"`+id+`","peerName":"x","peerUrl":"`+tt.url+`","peerAgentId":"a"}`)
		if code(err) != tt.want {
			t.Fatalf("register %s: %v; want %q", tt.url, err, tt.want)
		}
	}
}

// TestTokenRotation: a credential's previousToken stays valid alongside
// the new token, and Reload swaps credentials without a restart.
func TestTokenRotation(t *testing.T) {
	g := guarded(t, func(c *federation.PeerCredential) { c.Token, c.PreviousToken = "new", "old" })
	for _, tok := range []string{"new", "old"} {
		if _, err := dialPeer(t, g, "main-server", tok); err != nil {
			t.Fatalf("token %q during rotation: %v", tok, err)
		}
	}
	next := *g.cfg
	next.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "new"}}
	if _, err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if _, err := dialPeer(t, g, "main-server", "old"); code(err) != gateway.CodeUnauthorized {
		t.Fatalf("old token after the rotation ended: %v; want UNAUTHORIZED", err)
	}
	if _, err := dialPeer(t, g, "main-server", "new"); err != nil {
		t.Fatalf("new token after reload: %v", err)
	}
	bad := next
	bad.Federation.DefaultTimeoutMs = -1
	if _, err := g.Reload(&bad); err == nil {
		t.Fatal("Reload accepted an invalid config")
	}
}

// TestReloadRedialsPeerWithNewToken: a static peer whose token changes is
// redialled with the new one.
func TestReloadRedialsPeerWithNewToken(t *testing.T) {
	g := guarded(t, func(c *federation.PeerCredential) { c.Token = "t1" })
	cfg := newConfig(t, "main-server", "")
	p := peerConf("guarded", "public", g.ln)
	p.Token = "t1"
	cfg.Federation.Peers = []federation.PeerConfig{p}
	main := start(t, cfg, listen(t), nil)
	if r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "guarded", Message: "x"}); r.Err() != nil {
		t.Fatal(r.Err())
	}
	next := *g.cfg
	next.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "t2"}}
	g.Reload(&next)
	mainNext := *cfg
	mainNext.Federation.Peers = []federation.PeerConfig{p}
	mainNext.Federation.Peers[0].Token = "t2"
	main.Reload(&mainNext)
	if r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "guarded", Message: "x"}); r.Err() != nil {
		t.Fatalf("after both sides rotated: %v", r.Err())
	}
}

func TestAuditLog(t *testing.T) {
	lnPeer := listen(t)
	pcfg := newConfig(t, "peer-server", "agent-1")
	pcfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main", Token: "s3cret-peer-token"}}
	peerGW := start(t, pcfg, lnPeer, nil)
	cfg := newConfig(t, "main", "")
	p := peerConf("peer", "agent-1", lnPeer)
	p.Token = "s3cret-peer-token"
	cfg.Federation.Peers = []federation.PeerConfig{p}
	cfg.Gateway.Auth.OperatorToken = "s3cret-op-token"
	main := start(t, cfg, listen(t), nil)
	op := operator(t, main, "s3cret-op-token")
	mustTool(t, op, `{"action":"send","peerId":"peer","message":"private words","correlationId":"c-9"}`)
	dialPeer(t, peerGW, "main", "wrong-token")
	op.Close()
	main.stop(t)
	peerGW.stop(t)

	sent := readAudit(t, filepath.Join(cfg.Storage.Dir, "audit.log"))
	recv := readAudit(t, filepath.Join(pcfg.Storage.Dir, "audit.log"))
	has := func(lines []map[string]any, want map[string]any) bool {
	next:
		for _, l := range lines {
			for k, v := range want {
				if l[k] != v {
					continue next
				}
			}
			return true
		}
		return false
	}
	for _, tt := range []struct {
		name  string
		lines []map[string]any
		want  map[string]any
	}{
		{"operator action", sent, map[string]any{"dir": "op", "kind": "tool", "action": "send", "outcome": "ok"}},
		{"outbound delivery", sent, map[string]any{"dir": "out", "kind": "deliver", "peer": "peer", "correlationId": "c-9", "outcome": "ok"}},
		{"inbound relay", recv, map[string]any{"dir": "in", "kind": "relay", "peer": "main", "agent": "agent-1", "correlationId": "c-9", "outcome": "ok"}},
		{"refused handshake", recv, map[string]any{"dir": "in", "kind": "auth", "outcome": "UNAUTHORIZED", "detail": "AUTH_TOKEN_MISMATCH"}},
	} {
		if !has(tt.lines, tt.want) {
			t.Errorf("%s: no audit line with %v in %v", tt.name, tt.want, tt.lines)
		}
	}
	for _, file := range []string{cfg.Storage.Dir, pcfg.Storage.Dir} {
		b, _ := os.ReadFile(filepath.Join(file, "audit.log"))
		for _, secret := range []string{"s3cret", "private words", "wrong-token"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("audit log contains %q:\n%s", secret, b)
			}
		}
	}
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// TestIdleConnectionsAreClosed: a connection that sends nothing, not even
// pings, is closed after gateway.idleTimeoutMs; one that keeps pinging is
// not.
func TestIdleConnectionsAreClosed(t *testing.T) {
	cfg := newConfig(t, "idle-server", "echo")
	cfg.Gateway.IdleTimeoutMs = 300
	g := start(t, cfg, listen(t), nil)
	quiet := operator(t, g, "")
	busy := operator(t, g, "")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				busy.Ping(context.Background())
			}
		}
	}()
	select {
	case <-quiet.Done():
		if !strings.Contains(quiet.Err().Error(), "idle timeout") {
			t.Fatalf("quiet connection closed with %v; want idle timeout", quiet.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an idle connection was never closed")
	}
	if busy.Err() != nil {
		t.Fatalf("a connection that pings was closed: %v", busy.Err())
	}
}

// TestReviewedIdentityHoles: a connection may not claim a configured
// peer's name without its token; a reload that removes a credential
// narrows an open connection's rights to nothing; a peer cannot record
// message ids under another sender's name.
func TestReviewedIdentityHoles(t *testing.T) {
	g := guarded(t, func(c *federation.PeerCredential) { c.AllowAgents = []string{"public"} })
	if _, err := dialPeer(t, g, "main-server", ""); code(err) != gateway.CodeUnauthorized {
		t.Fatalf("tokenless connection claiming a configured peer: %v; want UNAUTHORIZED", err)
	}

	// Another configured peer tries to pre-record main-server's next id.
	next := *g.cfg
	next.Gateway.Auth.Peers = append(next.Gateway.Auth.Peers, federation.PeerCredential{ServerID: "other-server", Token: "other-token"})
	if _, err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	other, err := dialPeer(t, g, "other-server", "other-token")
	if err != nil {
		t.Fatal(err)
	}
	m := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "mine")
	if err := relayMsg(t, other, m, "public"); code(err) != gateway.CodeForbidden {
		t.Fatalf("relay under another sender's name: %v; want FORBIDDEN", err)
	}
	main, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	if err := relayMsg(t, main, m, "public"); err != nil {
		t.Fatalf("the real sender's message after the forgery attempt: %v", err)
	}

	// Remove main-server's credential: its open connection loses all rights
	// (and is closed: TestRevocationClosesConnections).
	next.Gateway.Auth.Peers = next.Gateway.Auth.Peers[1:]
	if _, err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	err = relayMsg(t, main, federation.NewMessage(federation.TypeRequest, "main-server", "a", "secret", "x"), "secret")
	if err == nil {
		t.Fatal("relay after the credential was removed succeeded")
	}
}

// TestPeerServerID: a peer entry's serverId must match the gateway
// dialled, and while the entry is disabled that gateway may not connect.
func TestPeerServerID(t *testing.T) {
	lnPeer := listen(t)
	pcfg := newConfig(t, "research-server", "agent-1")
	pcfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "t"}}
	peerGW := start(t, pcfg, lnPeer, nil)

	cfg := newConfig(t, "main-server", "")
	wrong := peerConf("misrouted", "agent-1", lnPeer)
	wrong.ServerID, wrong.Token = "data-server", "t"
	right := peerConf("research", "agent-1", lnPeer)
	right.ServerID, right.Token = "research-server", "t"
	cfg.Federation.Peers = []federation.PeerConfig{wrong, right}
	main := start(t, cfg, listen(t), nil)
	r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "misrouted", Message: "x"})
	if r.Err() == nil || !strings.Contains(r.Error.Message, `is gateway "research-server", not the configured serverId "data-server"`) {
		t.Fatalf("send to a misrouted peer: %+v", r.Error)
	}
	if r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "research", Message: "x"}); r.Err() != nil {
		t.Fatalf("send to the right peer: %v", r.Err())
	}

	// The research gateway disables its entry for main-server.
	off := false
	next := *peerGW.cfg
	next.Federation.Peers = []federation.PeerConfig{{ID: "main", Name: "Main", URL: "ws://127.0.0.1:1", AgentID: "x", ServerID: "main-server", Enabled: &off}}
	if _, err := peerGW.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if _, err := dialPeer(t, peerGW, "main-server", "t"); code(err) != gateway.CodeForbidden || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("a disabled peer connecting: %v; want FORBIDDEN", err)
	}
}

// TestReloadAppliesDynamicPeerHosts: a reload that takes a host out of
// gateway.dynamicPeerHosts disconnects the dynamic peer there and refuses
// to dial or register it, and one that puts it back allows it again,
// without a restart.
func TestReloadAppliesDynamicPeerHosts(t *testing.T) {
	peerLn := listen(t)
	start(t, newConfig(t, "peer-server", "agent-1"), peerLn, nil)
	cfg := newConfig(t, "main", "")
	cfg.Gateway.DynamicPeerHosts = []string{"127.0.0.1"}
	g := start(t, cfg, listen(t), nil)
	op := operator(t, g, "")
	mustTool(t, op, `{"action":"register_peer","peerId":"dyn","peerName":"x","peerUrl":"`+url(peerLn)+`","peerAgentId":"agent-1"}`)
	if r := sendTo(t, g, "dyn"); r.Err() != nil {
		t.Fatalf("send to an allowed dynamic peer: %v", r.Err())
	}

	narrowed := *cfg
	narrowed.Gateway.DynamicPeerHosts = []string{"*.agents.test"}
	if _, err := g.Reload(&narrowed); err != nil {
		t.Fatal(err)
	}
	if r := sendTo(t, g, "dyn"); code(r.Err()) != gateway.CodeForbidden || !strings.Contains(r.Err().Error(), "dynamicPeerHosts") {
		t.Fatalf("send after 127.0.0.1 left dynamicPeerHosts: %v; want FORBIDDEN naming gateway.dynamicPeerHosts", r.Err())
	}
	_, err := tool(t, op, `{"action":"register_peer","peerId":"dyn2","peerName":"x","peerUrl":"`+url(peerLn)+`","peerAgentId":"agent-1"}`)
	if code(err) != gateway.CodeForbidden {
		t.Fatalf("register after the reload: %v; want FORBIDDEN", err)
	}

	if _, err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if r := sendTo(t, g, "dyn"); r.Err() != nil {
		t.Fatalf("send after 127.0.0.1 is allowed again: %v", r.Err())
	}
}
