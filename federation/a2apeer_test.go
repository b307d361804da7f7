package federation_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
)

// a2aPeerPair starts gateway "b" serving its echo agent over A2A, and
// gateway "a" with b's echo as a peer of type a2a, using token.
func a2aPeerPair(t *testing.T, token string) *gw {
	t.Helper()
	b := a2aGateway(t)
	cfg := newConfig(t, "a", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "b-echo", Name: "b over A2A", Type: federation.PeerTypeA2A,
		URL: "http://" + b.Addr().String() + federation.A2APath + "echo", Token: token, AgentID: "echo", Capabilities: []string{"text"}}}
	return start(t, cfg, listen(t), nil)
}

func TestA2APeerSendDelegateBroadcast(t *testing.T) {
	a := a2aPeerPair(t, "good-token")
	op := operator(t, a, "")
	r := mustTool(t, op, `{"action":"send","peerId":"b-echo","message":"over a2a","correlationId":"c-1"}`)
	if r["status"] != "ok" || at(r, "response", "correlationId") != "c-1" {
		t.Fatalf("send result %v", r)
	}
	if c, _ := at(r, "response", "content").(string); c != "over a2a" {
		t.Fatalf("send answered %q, want the echo", c)
	}
	r = mustTool(t, op, `{"action":"delegate","requiredCapabilities":["text"],"task":"delegated"}`)
	if r["status"] != "ok" || r["peerId"] != "b-echo" || at(r, "response", "content") != "delegated" {
		t.Fatalf("delegate result %v", r)
	}
	r = mustTool(t, op, `{"action":"query_capabilities","peerId":"b-echo"}`)
	if at(r, "capabilities", 0) != "text" || r["description"] != "echoes echo" {
		t.Fatalf("query_capabilities of an A2A peer, from its card: %v", r)
	}
	out, err := tool(t, op, `{"action":"broadcast","message":"to all"}`)
	if err != nil {
		t.Fatal(err)
	}
	if at(out, 0, "status") != "ok" {
		t.Fatalf("broadcast result %v", out)
	}
}

func TestA2APeerBadToken(t *testing.T) {
	a := a2aPeerPair(t, "wrong-token")
	r := mustTool(t, operator(t, a, ""), `{"action":"send","peerId":"b-echo","message":"x"}`)
	if r["status"] != "error" || at(r, "error", "code") != gateway.CodeUnauthorized {
		t.Fatalf("send with a bad token: %v; want status error, code UNAUTHORIZED", r)
	}
}

func TestA2APeerValidate(t *testing.T) {
	cfg := newConfig(t, "a", "")
	cfg.Federation.Peers = []federation.PeerConfig{
		{ID: "p1", Name: "p1", Type: "a2a", URL: "ws://127.0.0.1:1", AgentID: "x"},
		{ID: "p2", Name: "p2", Type: "grpc", URL: "ws://127.0.0.1:1", AgentID: "x"},
	}
	cfg.ApplyDefaults()
	err := cfg.Validate()
	for _, want := range []string{"federation.peers[0].url", "federation.peers[1].type"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want an error naming %s", err, want)
		}
	}
}

// TestA2APeerDurableWaitsForPeer: a durable message to an A2A peer that
// is down is queued and delivered once when it comes up.
func TestA2APeerDurableWaitsForPeer(t *testing.T) {
	lnB := listen(t)
	addr := lnB.Addr().String()
	lnB.Close() // nobody listens yet
	cfg := newConfig(t, "a", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "b", Name: "b over A2A", Type: federation.PeerTypeA2A,
		URL: "http://" + addr + federation.A2APath + "c", Token: "good-token", AgentID: "c"}}
	a := start(t, cfg, listen(t), nil)
	r := mustTool(t, operator(t, a, ""), `{"action":"send","peerId":"b","message":"hello","durable":true}`)
	if r["status"] != "queued" {
		t.Fatalf("durable send: %v", r)
	}
	id := r["messageId"].(string)
	tstest.WaitFor(t, 10*time.Second, func() error {
		if e, _ := a.MessageStatus(id); e.Attempts < 1 {
			return fmt.Errorf("no attempt yet")
		}
		return nil
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("rebind %s: %v", addr, err)
	}
	c := newCounter()
	bcfg := newConfig(t, "b", "c")
	bcfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "a", Token: "good-token"}}
	start(t, bcfg, ln, map[string]federation.Handler{"c": c})
	e := waitState(t, a, id, federation.StateDelivered)
	if e.Result == nil || e.Result.Response.Content != "done: hello" || c.count("hello") != 1 {
		t.Fatalf("delivered entry %+v; handled %d times", e.Result, c.count("hello"))
	}
}

// TestA2APeerOverVerifiedTLS: an https:// A2A peer is verified like a
// wss:// gateway peer: with its tls.caFile the call goes through; without
// it the certificate is refused and nothing is sent.
func TestA2APeerOverVerifiedTLS(t *testing.T) {
	ca := newCA(t, "a2a test CA")
	b, _ := tlsGateway(t, ca, &logBuffer{}, func(cfg *federation.Config) {
		cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "a2a-caller", Token: "good-token"}}
	})
	peer := func(tls *federation.PeerTLSConfig) federation.PeerConfig {
		return federation.PeerConfig{ID: "b", Name: "b over A2A", Type: federation.PeerTypeA2A, TLS: tls,
			URL: "https://" + b.Addr().String() + federation.A2APath + "agent-1", Token: "good-token", AgentID: "agent-1"}
	}
	for _, tt := range []struct {
		name string
		tls  *federation.PeerTLSConfig
		ok   bool
	}{
		{"with caFile", &federation.PeerTLSConfig{CAFile: ca.file}, true},
		{"system roots only", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newConfig(t, "a", "")
			cfg.Federation.Peers = []federation.PeerConfig{peer(tt.tls)}
			a := start(t, cfg, listen(t), nil)
			r := mustTool(t, operator(t, a, ""), `{"action":"send","peerId":"b","message":"over https"}`)
			if got := r["status"] == "ok" && at(r, "response", "content") == "over https"; got != tt.ok {
				t.Fatalf("send: %v; want ok=%t", r, tt.ok)
			}
			if msg, _ := at(r, "error", "message").(string); !tt.ok && !strings.Contains(msg, "certificate") {
				t.Errorf("send without the CA: %q; want it to name the certificate", msg)
			}
		})
	}
}
