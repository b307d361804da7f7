package federation_test

import (
	"context"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"net"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// workers starts n identical worker gateways, each with an agent "w"
// answered by h (echo when nil), and a main gateway that knows them as
// worker-1..n with capability task-processing.
func workers(t *testing.T, n int, h func(i int) federation.Handler, tune func(*federation.Config)) (*gw, []*gw, []net.Listener) {
	var ws []*gw
	var lns []net.Listener
	cfg := newConfig(t, "main", "")
	for i := range n {
		ln := listen(t)
		extra := map[string]federation.Handler{}
		if h != nil {
			extra["w"] = h(i)
		}
		ws = append(ws, start(t, newConfig(t, fmt.Sprintf("worker-server-%d", i+1), "w"), ln, extra))
		lns = append(lns, ln)
		cfg.Federation.Peers = append(cfg.Federation.Peers, peerConf(fmt.Sprintf("worker-%d", i+1), "w", ln, "task-processing"))
	}
	if tune != nil {
		tune(cfg)
	}
	return start(t, cfg, listen(t), nil), ws, lns
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	main, _, _ := workers(t, 3, nil, nil)
	count := map[string]int{}
	for range 300 {
		r, err := main.Delegate(context.Background(), federation.DelegateRequest{RequiredCapabilities: []string{"task-processing"}, Task: "t"})
		if err != nil || r.Status != federation.StatusOK {
			t.Fatalf("delegate: %v %+v", err, r)
		}
		count[r.PeerID]++
	}
	for _, id := range []string{"worker-1", "worker-2", "worker-3"} {
		if c := count[id]; c < 80 || c > 120 {
			t.Fatalf("round robin gave %v; want each worker 100 ±20%%", count)
		}
	}
}

func TestLeastLoadedAvoidsBusyPeer(t *testing.T) {
	release := make(chan struct{})
	busy := func(i int) federation.Handler {
		return federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
			if m.Content == "hold" {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return &federation.Answer{Content: m.Content}, nil
		})
	}
	main, _, _ := workers(t, 2, busy, nil)
	defer close(release)
	held := make(chan *federation.Result, 1)
	go func() {
		r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "worker-1", Message: "hold"})
		held <- r
	}()
	tstest.WaitFor(t, 5*time.Second, func() error {
		if in := main.ListPeers().Peers[0].Health.InFlight; in != 1 {
			return fmt.Errorf("worker-1 in flight %d", in)
		}
		return nil
	})
	for range 4 {
		r, err := main.Delegate(context.Background(), federation.DelegateRequest{RequiredCapabilities: []string{"task-processing"}, Task: "t", Strategy: federation.StrategyLeastLoaded})
		if err != nil || r.PeerID != "worker-2" {
			t.Fatalf("least-loaded chose %+v, %v; want worker-2 while worker-1 is busy", r, err)
		}
	}
	release <- struct{}{}
	<-held
}

func TestLowestLatencyPrefersFastPeer(t *testing.T) {
	slowFirst := func(i int) federation.Handler {
		return federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
			if i == 0 {
				time.Sleep(20 * time.Millisecond) // worker-1 is the slow one
			}
			return &federation.Answer{Content: m.Content}, nil
		})
	}
	main, _, _ := workers(t, 2, slowFirst, nil)
	req := federation.DelegateRequest{RequiredCapabilities: []string{"task-processing"}, Task: "t", Strategy: federation.StrategyLowestLatency}
	for range 2 { // measure both
		main.Delegate(context.Background(), req)
	}
	for range 5 {
		r, err := main.Delegate(context.Background(), req)
		if err != nil || r.PeerID != "worker-2" {
			t.Fatalf("lowest-latency chose %+v, %v; want worker-2", r, err)
		}
	}
}

func TestUnknownStrategy(t *testing.T) {
	main, _, _ := workers(t, 1, nil, nil)
	_, err := main.Delegate(context.Background(), federation.DelegateRequest{RequiredCapabilities: []string{"task-processing"}, Task: "t", Strategy: "fastest"})
	if code(err) != "INVALID_PARAMS" {
		t.Fatalf("unknown strategy: %v", err)
	}
}

// TestDeadPeerIsSkippedThenHeals kills a worker: the breaker opens, delegate
// skips it, and when it comes back on the same port the heartbeat
// reconnects, the probe succeeds and it takes work again.
func TestDeadPeerIsSkippedThenHeals(t *testing.T) {
	main, ws, lns := workers(t, 2, nil, func(c *federation.Config) {
		c.Gateway.Breaker = federation.BreakerConfig{Failures: 2, OpenMs: 1500}
		c.Gateway.HeartbeatMs = 50
	})
	addr := lns[0].Addr().String()
	ws[0].stop(t)
	req := federation.DelegateRequest{RequiredCapabilities: []string{"task-processing"}, Task: "t"}
	for i := range 6 {
		r, err := main.Delegate(context.Background(), req)
		if err != nil || r.Status != federation.StatusOK || r.PeerID != "worker-2" {
			t.Fatalf("with worker-1 dead, delegate gave %+v, %v", r, err)
		}
		// The first call may try worker-1 and learn it is down.
		if i > 0 && (len(r.Attempts) != 1 || r.Candidates[1] != "worker-1") {
			t.Fatalf("a down worker should be tried last, not first: %+v", r)
		}
	}
	if p := main.ListPeers().Peers[0]; p.Health.State != federation.HealthDown {
		t.Fatalf("dead worker's health: %+v", p.Health)
	}
	// Direct sends fail until the breaker opens; then they fail fast and
	// delegate skips the peer altogether.
	// (The first delegate's failed attempt was the first of the two.)
	for i := range 2 {
		r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "worker-1", Message: "x"})
		want := "PEER_UNAVAILABLE"
		if i == 1 {
			want = "CIRCUIT_OPEN"
		}
		if r.Error == nil || r.Error.Code != want {
			t.Fatalf("send %d to dead worker: %+v; want %s", i, r.Error, want)
		}
	}
	r, _ := main.Delegate(context.Background(), req)
	if len(r.Skipped) != 1 || r.Skipped[0].PeerID != "worker-1" || len(r.Attempts) != 1 {
		t.Fatalf("delegate should skip the open-circuit worker: %+v", r)
	}

	// Back on the same address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	start(t, newConfig(t, "worker-server-1", "w"), ln, nil)
	tstest.WaitFor(t, 10*time.Second, func() error {
		h := main.ListPeers().Peers[0]
		if !h.Connected || h.Health.Circuit == "open" {
			return fmt.Errorf("worker-1 not back: connected=%v %+v", h.Connected, h.Health)
		}
		return nil
	})
	seen := map[string]bool{}
	tstest.WaitFor(t, 10*time.Second, func() error {
		r, err := main.Delegate(context.Background(), req)
		if err == nil && r.Status == federation.StatusOK {
			seen[r.PeerID] = true
		}
		if !seen["worker-1"] {
			return fmt.Errorf("worker-1 took no work yet: %v", seen)
		}
		return nil
	})
}

// TestHeartbeatMeasuresRTT: once a peer is in use, heartbeats keep its
// health fresh without any traffic; a peer never used is not dialled.
func TestHeartbeatMeasuresRTT(t *testing.T) {
	main, _, _ := workers(t, 2, nil, func(c *federation.Config) { c.Gateway.HeartbeatMs = 20 })
	if r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "worker-1", Message: "x"}); r.Err() != nil {
		t.Fatal(r.Err())
	}
	after := main.ListPeers().Peers[0].Health.LastSeen
	tstest.WaitFor(t, 5*time.Second, func() error {
		h := main.ListPeers().Peers[0].Health
		if h.LastSeen <= after || h.RTTMs <= 0 || h.State != federation.HealthHealthy {
			return fmt.Errorf("no heartbeat since the send: %+v", h)
		}
		return nil
	})
	if p := main.ListPeers().Peers[1]; p.Connected || p.Health.State != federation.HealthUnknown {
		t.Fatalf("an unused peer was dialled: %+v", p)
	}
}

// TestBlockingAgentDoesNotHoldTheConnection: relays run on the peer
// connection's reader only for immediate agents (echo); an agent that
// blocks is handed a goroutine, so many of its messages over one pooled
// connection run at once, and an echo relay on another connection, a
// health call and a sync to the same gateway are served meanwhile.
func TestBlockingAgentDoesNotHoldTheConnection(t *testing.T) {
	const n = 8
	started, release := make(chan string, n), make(chan struct{})
	slow := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		started <- msg.Content
		select {
		case <-release:
			return &federation.Answer{Content: "done " + msg.Content}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	lnB := listen(t)
	cfgB := newConfig(t, "b", "echo")
	cfgB.Agents = append(cfgB.Agents, federation.AgentConfig{ID: "slow", MaxConcurrency: n, Handler: federation.HandlerConfig{Type: "echo"}})
	start(t, cfgB, lnB, map[string]federation.Handler{"slow": slow})
	cfgA := newConfig(t, "a", "")
	cfgA.Federation.Peers = []federation.PeerConfig{peerConf("b-slow", "slow", lnB), peerConf("b", "echo", lnB)}
	a := start(t, cfgA, listen(t), nil)

	ctx := context.Background()
	results := make(chan *federation.Result, n)
	for i := range n {
		go func() {
			res, err := a.Send(ctx, federation.SendRequest{PeerID: "b-slow", Message: fmt.Sprint(i)})
			if err != nil {
				res = &federation.Result{Status: err.Error()}
			}
			results <- res
		}()
	}
	for i := range n { // all n run at once over the one connection to b-slow
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d messages to the blocking agent started: the connection stopped reading", i, n)
		}
	}
	if res, err := a.Send(ctx, federation.SendRequest{PeerID: "b", Message: "hi"}); err != nil || res.Status != federation.StatusOK {
		t.Fatalf("echo while slow blocks: %+v, %v", res, err)
	}
	if res, err := a.SyncContext(ctx, federation.SyncRequest{PeerID: "b-slow", SyncData: map[string]any{"k": "v"}}); err != nil || res.Status != federation.StatusOK {
		t.Fatalf("sync to the slow agent's gateway while it blocks: %+v, %v", res, err)
	}
	close(release)
	for range n {
		if res := <-results; res.Status != federation.StatusOK {
			t.Errorf("slow send: %+v", res)
		}
	}
}

// TestBroadcastLatencyIsEachPeers: a broadcast sends to every peer, then
// collects the answers in peer order; each result's latency is its own
// peer's, not the time until it was collected behind a slower peer.
func TestBroadcastLatencyIsEachPeers(t *testing.T) {
	const slowFor = 300 * time.Millisecond
	slow := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		select { // a slow agent: its answer comes slowFor after the request
		case <-time.After(slowFor):
			return &federation.Answer{Content: "late"}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	lnSlow, lnB, lnC := listen(t), listen(t), listen(t)
	cfgSlow := newConfig(t, "a-slow", "slow")
	start(t, cfgSlow, lnSlow, map[string]federation.Handler{"slow": slow})
	start(t, newConfig(t, "b", "echo"), lnB, nil)
	start(t, newConfig(t, "c", "echo"), lnC, nil)
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("a-slow", "slow", lnSlow), peerConf("b", "echo", lnB), peerConf("c", "echo", lnC)}
	main := start(t, cfg, listen(t), nil)
	ctx := context.Background()
	if _, err := main.Broadcast(ctx, federation.BroadcastRequest{Message: "warm up"}); err != nil { // dial every peer
		t.Fatal(err)
	}
	res, err := main.Broadcast(ctx, federation.BroadcastRequest{Message: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].PeerID != "a-slow" {
		t.Fatalf("results %+v, want a-slow, b, c", res)
	}
	for _, r := range res {
		if r.Status != federation.StatusOK {
			t.Fatalf("%s: %s %v", r.PeerID, r.Status, r.Error)
		}
	}
	if res[0].LatencyMs < float64(slowFor.Milliseconds()) {
		t.Errorf("a-slow latency %.3f ms, want at least %v", res[0].LatencyMs, slowFor)
	}
	for _, r := range res[1:] {
		if r.LatencyMs >= res[0].LatencyMs/2 {
			t.Errorf("%s latency %.3f ms next to a-slow's %.3f ms: it counts the wait behind a-slow", r.PeerID, r.LatencyMs, res[0].LatencyMs)
		}
	}
}
