package federation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/google/go-cmp/cmp"
)

// trio starts the seed's example federation: a main server with two static
// peers, a research gateway and a data gateway.
func trio(t *testing.T) (main, research, data *gw) {
	lnMain, lnResearch, lnData := listen(t), listen(t), listen(t)
	research = start(t, newConfig(t, "research-server", "agent-research-01", "web-search", "summarization", "fact-checking"), lnResearch, nil)
	data = start(t, newConfig(t, "data-server", "agent-data-01", "data-analysis", "statistics"), lnData, nil)
	cfg := newConfig(t, "main-agent-server", "")
	cfg.Federation.Peers = []federation.PeerConfig{
		peerConf("research-agent", "agent-research-01", lnResearch, "web-search", "summarization", "fact-checking"),
		peerConf("data-agent", "agent-data-01", lnData, "data-analysis", "statistics"),
	}
	cfg.Federation.Peers[0].Description = "Specialized in research"
	main = start(t, cfg, lnMain, nil)
	return main, research, data
}

func TestEightActionsAcrossThreeGateways(t *testing.T) {
	main, _, data := trio(t)
	op := operator(t, main, "")

	t.Run("send", func(t *testing.T) {
		r := mustTool(t, op, `{"action":"send","peerId":"research-agent","message":"quantum news","priority":"high","correlationId":"task-001","context":{"k":"v"}}`)
		if r["status"] != "ok" || r["peerId"] != "research-agent" {
			t.Fatalf("send result %v", r)
		}
		resp := r["response"].(map[string]any)
		want := map[string]any{"type": "response", "content": "quantum news", "correlationId": "task-001", "priority": "high",
			"fromServer": "research-server", "fromAgent": "agent-research-01", "toAgent": "operator"}
		got := map[string]any{}
		for k := range want {
			got[k] = resp[k]
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("response (-want +got):\n%s", d)
		}
		if at(resp, "context", "k") != "v" || at(resp, "context", "received", "fromServer") != "main-agent-server" {
			t.Fatalf("echo context %v does not show what arrived", resp["context"])
		}
		if _, ok := r["latencyMs"].(float64); !ok {
			t.Fatalf("no latencyMs in %v", r)
		}
	})

	t.Run("delegate", func(t *testing.T) {
		r := mustTool(t, op, `{"action":"delegate","requiredCapabilities":["web-search","summarization"],"task":"summarize AI safety papers"}`)
		if r["status"] != "ok" || r["peerId"] != "research-agent" || at(r, "response", "content") != "summarize AI safety papers" {
			t.Fatalf("delegate result %v", r)
		}
		if at(r, "candidates", 0) != "research-agent" || len(r["attempts"].([]any)) != 1 {
			t.Fatalf("delegate should list its candidates and attempts: %v", r)
		}
		_, err := tool(t, op, `{"action":"delegate","requiredCapabilities":["Web-Search"],"task":"x"}`)
		if code(err) != federation.CodeNoCapablePeer {
			t.Fatalf("case-mismatched capability: %v; want NO_CAPABLE_PEER", err)
		}
	})

	t.Run("broadcast", func(t *testing.T) {
		out, err := tool(t, op, `{"action":"broadcast","message":"maintenance in 1h","priority":"urgent"}`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range out.([]any) {
			got = append(got, fmt.Sprint(at(e, "peerId"), "=", at(e, "status"), ":", at(e, "response", "content")))
		}
		want := []string{"data-agent=ok:maintenance in 1h", "research-agent=ok:maintenance in 1h"}
		if c0, c1 := at(out, 0, "response", "correlationId"), at(out, 1, "response", "correlationId"); c0 != c1 || c0 == nil {
			t.Fatalf("one broadcast should be one conversation; correlationIds %v and %v", c0, c1)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("broadcast (-want +got):\n%s", d)
		}
	})

	t.Run("list_peers", func(t *testing.T) {
		r := mustTool(t, op, `{"action":"list_peers"}`)
		if r["serverId"] != "main-agent-server" || r["totalPeers"] != 2.0 {
			t.Fatalf("list_peers %v", r)
		}
		p := at(r, "peers", 1).(map[string]any)
		if p["id"] != "research-agent" || p["source"] != "static" || p["enabled"] != true || p["agentId"] != "agent-research-01" || p["description"] != "Specialized in research" {
			t.Fatalf("peer entry %v", p)
		}
		if _, leaked := p["token"]; leaked {
			t.Fatalf("list_peers shows a token: %v", p)
		}
	})

	t.Run("register and unregister", func(t *testing.T) {
		reg := fmt.Sprintf(`{"action":"register_peer","peerId":"temp-agent-01","peerName":"Temp","peerUrl":%q,"peerAgentId":"agent-data-01","peerCapabilities":["analysis"]}`, data.URL())
		if r := mustTool(t, op, reg); r["success"] != true {
			t.Fatalf("register %v", r)
		}
		if r := mustTool(t, op, `{"action":"send","peerId":"temp-agent-01","message":"hi"}`); r["status"] != "ok" {
			t.Fatalf("send to dynamic peer %v", r)
		}
		if _, err := tool(t, op, reg); code(err) != federation.CodePeerExists {
			t.Fatalf("second register: %v; want PEER_EXISTS", err)
		}
		if _, err := tool(t, op, `{"action":"unregister_peer","peerId":"research-agent"}`); code(err) != federation.CodeStaticPeer {
			t.Fatalf("unregister static: %v; want STATIC_PEER", err)
		}
		if r := mustTool(t, op, `{"action":"unregister_peer","peerId":"temp-agent-01"}`); r["success"] != true {
			t.Fatalf("unregister %v", r)
		}
		if _, err := tool(t, op, `{"action":"send","peerId":"temp-agent-01","message":"hi"}`); code(err) != federation.CodeUnknownPeer {
			t.Fatalf("send after unregister: %v; want UNKNOWN_PEER", err)
		}
	})

	t.Run("sync_context", func(t *testing.T) {
		r := mustTool(t, op, `{"action":"sync_context","peerId":"data-agent","correlationId":"proj-123","syncData":{"projectId":"proj-123","phase":"analysis"}}`)
		if r["status"] != "ok" || r["version"] != 1.0 {
			t.Fatalf("sync %v", r)
		}
		r = mustTool(t, op, `{"action":"sync_context","peerId":"data-agent","correlationId":"proj-123","syncData":{"phase":"report"}}`)
		if r["version"] != 2.0 {
			t.Fatalf("second sync should bump the version to 2: %v", r)
		}
		r = mustTool(t, op, `{"action":"send","peerId":"data-agent","message":"analyse","correlationId":"proj-123","context":{"extra":1}}`)
		ctx := at(r, "response", "context").(map[string]any)
		if ctx["projectId"] != "proj-123" || ctx["phase"] != "report" || ctx["extra"] != 1.0 {
			t.Fatalf("agent did not see the synced context merged with the message's: %v", ctx)
		}
		r = mustTool(t, op, `{"action":"send","peerId":"data-agent","message":"other session","correlationId":"other"}`)
		if at(r, "response", "context", "projectId") != nil {
			t.Fatalf("synced context leaked into another session: %v", at(r, "response", "context"))
		}
	})

	t.Run("query_capabilities", func(t *testing.T) {
		r := mustTool(t, op, `{"action":"query_capabilities","peerId":"research-agent"}`)
		want := map[string]any{"peerId": "research-agent", "peerName": "research-agent gateway",
			"capabilities": []any{"web-search", "summarization", "fact-checking"}, "description": "echoes agent-research-01"}
		if d := cmp.Diff(want, r); d != "" {
			t.Fatalf("query_capabilities (-want +got):\n%s", d)
		}
	})

	t.Run("one connection per peer", func(t *testing.T) {
		for range 5 {
			mustTool(t, op, `{"action":"send","peerId":"research-agent","message":"x"}`)
		}
		h := mustTool(t, op, `{"action":"list_peers"}`)
		if at(h, "peers", 1, "connected") != true {
			t.Fatalf("research-agent should show a live pooled connection: %v", h)
		}
	})
}

func TestToolInputErrors(t *testing.T) {
	main, _, _ := trio(t)
	op := operator(t, main, "")
	for _, tt := range []struct {
		name, input, code, mention string
	}{
		{"not an object", `[1]`, gateway.CodeInvalidParams, "JSON object"},
		{"no action", `{}`, gateway.CodeInvalidParams, `"action" is required`},
		{"unknown action", `{"action":"teleport"}`, federation.CodeUnknownAction, `"teleport"`},
		{"unknown parameter", `{"action":"send","peerId":"data-agent","message":"x","mesage":"y"}`, gateway.CodeInvalidParams, `"mesage"`},
		{"wrong type", `{"action":"send","peerId":7,"message":"x"}`, gateway.CodeInvalidParams, `"peerId" must be a string`},
		{"bad priority", `{"action":"send","peerId":"data-agent","message":"x","priority":"asap"}`, gateway.CodeInvalidParams, `"asap"`},
		{"negative timeout", `{"action":"send","peerId":"data-agent","message":"x","timeoutMs":-1}`, gateway.CodeInvalidParams, "negative"},
		{"unknown peer", `{"action":"send","peerId":"nobody","message":"x"}`, federation.CodeUnknownPeer, `"nobody"`},
		{"missing peerId", `{"action":"query_capabilities"}`, gateway.CodeInvalidParams, "peerId is required"},
		{"no capabilities", `{"action":"delegate","task":"x"}`, gateway.CodeInvalidParams, "requiredCapabilities"},
		{"bad peer url", `{"action":"register_peer","peerId":"x","peerName":"x","peerUrl":"http://127.0.0.1:1","peerAgentId":"a"}`, gateway.CodeInvalidParams, "peerUrl"},
		{"register missing fields", `{"action":"register_peer","peerId":"x"}`, gateway.CodeInvalidParams, "peerAgentId"},
		{"send without message", `{"action":"send","peerId":"data-agent"}`, gateway.CodeInvalidParams, "message is required"},
		{"send with empty message", `{"action":"send","peerId":"data-agent","message":""}`, gateway.CodeInvalidParams, "message is required"},
		{"broadcast without message", `{"action":"broadcast"}`, gateway.CodeInvalidParams, "message is required"},
		{"durable broadcast without message", `{"action":"broadcast","durable":true}`, gateway.CodeInvalidParams, "message is required"},
		{"delegate without task", `{"action":"delegate","requiredCapabilities":["statistics"]}`, gateway.CodeInvalidParams, "task is required"},
		{"ttlMs without durable", `{"action":"send","peerId":"data-agent","message":"x","ttlMs":1000}`, gateway.CodeInvalidParams, "ttlMs applies only to durable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tool(t, op, tt.input)
			if code(err) != tt.code || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("got %s %v; want %s mentioning %s", code(err), err, tt.code, tt.mention)
			}
		})
	}
}

func TestDisabledPeerAndFederation(t *testing.T) {
	ln := listen(t)
	cfg := newConfig(t, "main", "")
	off := false
	p := peerConf("sleepy", "a", ln)
	p.Enabled = &off
	cfg.Federation.Peers = []federation.PeerConfig{p}
	cfg.Federation.Enabled = false
	g := start(t, cfg, ln, nil)
	op := operator(t, g, "")
	if _, err := tool(t, op, `{"action":"send","peerId":"sleepy","message":"x"}`); code(err) != federation.CodeFederationDisabled {
		t.Fatalf("send with federation disabled: %v", err)
	}
	g.cfg.Federation.Enabled = true // the node keeps its own copy
	if r := mustTool(t, op, `{"action":"list_peers"}`); at(r, "peers", 0, "enabled") != false {
		t.Fatalf("disabled peer listed as %v", r)
	}
}

func TestPeerDisabledError(t *testing.T) {
	ln := listen(t)
	cfg := newConfig(t, "main", "")
	off := false
	p := peerConf("data-agent", "a", ln, "stats")
	p.Enabled = &off
	cfg.Federation.Peers = []federation.PeerConfig{p}
	g := start(t, cfg, ln, nil)
	op := operator(t, g, "")
	_, err := tool(t, op, `{"action":"send","peerId":"data-agent","message":"x"}`)
	if code(err) != federation.CodePeerDisabled || !strings.Contains(err.Error(), `"data-agent"`) {
		t.Fatalf("send to disabled peer: %v; want PEER_DISABLED naming it", err)
	}
	if _, err := tool(t, op, `{"action":"delegate","requiredCapabilities":["stats"],"task":"x"}`); code(err) != federation.CodeNoCapablePeer {
		t.Fatalf("delegate to disabled-only capability: %v; want NO_CAPABLE_PEER", err)
	}
	out, err := tool(t, op, `{"action":"broadcast","message":"x"}`)
	if err != nil || len(out.([]any)) != 0 {
		t.Fatalf("broadcast should skip disabled peers: %v %v", out, err)
	}
}

// TestTimeoutReachesRemote checks the timeout order (call, peer, default)
// and that the remote agent's context ends when the caller gives up.
func TestTimeoutReachesRemote(t *testing.T) {
	lnMain, lnSlow := listen(t), listen(t)
	cancelled := make(chan time.Duration, 10)
	slow := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		start := time.Now()
		<-ctx.Done()
		cancelled <- time.Since(start)
		return nil, ctx.Err()
	})
	cfgSlow := newConfig(t, "slow-server", "slow", "waiting")
	start(t, cfgSlow, lnSlow, map[string]federation.Handler{"slow": slow})
	cfg := newConfig(t, "main", "")
	p := peerConf("slow-peer", "slow", lnSlow, "waiting")
	p.TimeoutMs = 300
	cfg.Federation.Peers = []federation.PeerConfig{p}
	cfg.Federation.DefaultTimeoutMs = 60000
	g := start(t, cfg, lnMain, nil)
	op := operator(t, g, "")

	r := mustTool(t, op, `{"action":"send","peerId":"slow-peer","message":"x","timeoutMs":150}`)
	if r["status"] != "timeout" || at(r, "error", "code") != "TIMEOUT" || !strings.Contains(fmt.Sprint(at(r, "error", "message")), `"slow-peer" did not answer within 150ms`) {
		t.Fatalf("call timeout: %v", r)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the remote agent's context was never cancelled")
	}
	r = mustTool(t, op, `{"action":"send","peerId":"slow-peer","message":"x"}`)
	if !strings.Contains(fmt.Sprint(at(r, "error", "message")), "within 300ms") {
		t.Fatalf("peer timeoutMs should apply when the call sets none: %v", r)
	}
	<-cancelled
}

func TestUnknownAgentIsAnErrorNotAHang(t *testing.T) {
	lnMain, lnPeer := listen(t), listen(t)
	start(t, newConfig(t, "peer-server", "real-agent"), lnPeer, nil)
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("p", "no-such-agent", lnPeer)}
	g := start(t, cfg, lnMain, nil)
	op := operator(t, g, "")
	r := mustTool(t, op, `{"action":"send","peerId":"p","message":"x"}`)
	if r["status"] != "error" || at(r, "error", "code") != "UNKNOWN_AGENT" || !strings.Contains(fmt.Sprint(at(r, "error", "message")), "no-such-agent") {
		t.Fatalf("got %v; want UNKNOWN_AGENT naming the agent", r)
	}
	if _, err := tool(t, op, `{"action":"query_capabilities","peerId":"p"}`); code(err) != federation.CodeUnknownAgent {
		t.Fatalf("query_capabilities: %v; want UNKNOWN_AGENT", err)
	}
}

func TestKilledPeerFailsFastAndDelegateFailsOver(t *testing.T) {
	lnMain, lnA, lnB := listen(t), listen(t), listen(t)
	a := start(t, newConfig(t, "worker-a", "w"), lnA, nil)
	start(t, newConfig(t, "worker-b", "w"), lnB, nil)
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("worker-1", "w", lnA, "task-processing"), peerConf("worker-2", "w", lnB, "task-processing")}
	g := start(t, cfg, lnMain, nil)
	op := operator(t, g, "")
	mustTool(t, op, `{"action":"send","peerId":"worker-1","message":"warm up"}`)
	a.stop(t)

	r := mustTool(t, op, `{"action":"send","peerId":"worker-1","message":"x","timeoutMs":20000}`)
	if r["status"] != "error" || at(r, "error", "code") != "PEER_UNAVAILABLE" || r["latencyMs"].(float64) > 10000 {
		t.Fatalf("send to a stopped peer: %v; want a prompt PEER_UNAVAILABLE", r)
	}
	for range 2 { // whichever worker round robin starts with, worker-2 answers
		r = mustTool(t, op, `{"action":"delegate","requiredCapabilities":["task-processing"],"task":"x","timeoutMs":20000}`)
		if r["status"] != "ok" || r["peerId"] != "worker-2" {
			t.Fatalf("delegate should fail over to worker-2: %v", r)
		}
	}
	out, _ := tool(t, op, `{"action":"broadcast","message":"x","timeoutMs":20000}`)
	if at(out, 0, "status") != "error" || at(out, 1, "status") != "ok" {
		t.Fatalf("broadcast with one dead peer: %v", out)
	}
}

func TestDynamicPeersSurviveRestart(t *testing.T) {
	lnPeer := listen(t)
	start(t, newConfig(t, "peer-server", "agent-x", "x"), lnPeer, nil)
	cfg := newConfig(t, "main", "")
	g := start(t, cfg, listen(t), nil)
	op := operator(t, g, "")
	mustTool(t, op, fmt.Sprintf(`{"action":"register_peer","peerId":"dyn","peerName":"Dynamic","peerUrl":%q,"peerAgentId":"agent-x","peerCapabilities":["x"],"peerTimeoutMs":5000}`, url(lnPeer)))
	op.Close()
	g.stop(t)

	g2 := start(t, cfg, listen(t), nil)
	op2 := operator(t, g2, "")
	r := mustTool(t, op2, `{"action":"list_peers"}`)
	p := at(r, "peers", 0).(map[string]any)
	if p["id"] != "dyn" || p["source"] != "dynamic" || p["timeoutMs"] != 5000.0 {
		t.Fatalf("after restart list_peers shows %v", r)
	}
	if r := mustTool(t, op2, `{"action":"delegate","requiredCapabilities":["x"],"task":"still there?"}`); r["status"] != "ok" {
		t.Fatalf("delegate to restored dynamic peer: %v", r)
	}
}

func TestDynamicPeersDisallowed(t *testing.T) {
	cfg := newConfig(t, "main", "")
	no := false
	cfg.Federation.AllowDynamicPeers = &no
	g := start(t, cfg, listen(t), nil)
	op := operator(t, g, "")
	for _, in := range []string{
		`{"action":"register_peer","peerId":"x","peerName":"x","peerUrl":"ws://127.0.0.1:1","peerAgentId":"a"}`,
		`{"action":"unregister_peer","peerId":"x"}`,
	} {
		if _, err := tool(t, op, in); code(err) != federation.CodeDynamicPeersDisabled || !strings.Contains(err.Error(), "allowDynamicPeers") {
			t.Fatalf("%s: %v; want DYNAMIC_PEERS_DISABLED", in, err)
		}
	}
}

// TestBroadcastToOnePeer: a broadcast that reaches one peer is delivered
// as a send (its caller reads the answer), and is still a broadcast: its
// type, one result, the peer's answer and its latency. The first one also
// dials the peer.
func TestBroadcastToOnePeer(t *testing.T) {
	ln := listen(t)
	start(t, newConfig(t, "echo-gw", "echo"), ln, nil)
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("only", "echo", ln)}
	main := start(t, cfg, listen(t), nil)
	for i := range 3 { // the first dials
		res, err := main.Broadcast(context.Background(), federation.BroadcastRequest{Message: "all hands"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].PeerID != "only" || res[0].Status != federation.StatusOK || res[0].Response == nil {
			t.Fatalf("broadcast %d: %+v, want one OK result from peer only", i, res)
		}
		received, _ := res[0].Response.Context["received"].(map[string]any)
		if res[0].Response.Content != "all hands" || received["type"] != "broadcast" || res[0].LatencyMs <= 0 {
			t.Errorf("broadcast %d: answer %q, received %v, latency %v ms; want the content echoed, type broadcast, a latency",
				i, res[0].Response.Content, received, res[0].LatencyMs)
		}
	}
}
