package fedtest_test

import (
	"net"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
	"github.com/agentfed/agentfed/internal/tstest/fedtest"
)

// TestStartAndSend: two gateways started by Start, one the other's peer;
// an operator's send through the tool comes back from the peer's echo
// agent.
func TestStartAndSend(t *testing.T) {
	lnA, lnB := fedtest.Listen(t), fedtest.Listen(t)
	fedtest.Start(t, fedtest.Config(t, "gw-b", "echo-b"), lnB, federation.Options{})
	cfgA := fedtest.Config(t, "gw-a", "")
	cfgA.Federation.Peers = []federation.PeerConfig{fedtest.Peer("b", "echo-b", lnB)}
	a := fedtest.Start(t, cfgA, lnA, federation.Options{})
	if a.URL() != fedtest.URL(lnA) {
		t.Errorf("URL = %s, want %s", a.URL(), fedtest.URL(lnA))
	}
	op := fedtest.Operator(t, a.URL(), "")
	out := fedtest.MustTool(t, op, `{"action":"send","peerId":"b","message":"hello"}`)
	if out["status"] != "ok" || !strings.Contains(tstest.At(out, "response", "content").(string), "hello") {
		t.Fatalf("send = %v; want ok with the echo", out)
	}
}

// TestServeRefusesBadAgent: an agent package agent cannot build is an
// error naming the gateway and the agent, and the listener is closed.
func TestServeRefusesBadAgent(t *testing.T) {
	ln := fedtest.Listen(t)
	cfg := fedtest.Config(t, "gw-bad", "broken")
	cfg.Agents[0].Handler = federation.HandlerConfig{Type: "exec"} // no command
	n, err := fedtest.Serve(cfg, ln, federation.Options{})
	if err == nil {
		fedtest.Shutdown(n)
		t.Fatal("Serve accepted an exec agent without a command")
	}
	if !strings.Contains(err.Error(), "gw-bad") || !strings.Contains(err.Error(), "broken") {
		t.Errorf("error %q does not name the gateway and the agent", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener is still open after Serve failed")
	}
}
