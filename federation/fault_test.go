package federation_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// behindProxy starts a peer gateway whose agent "a" is h (echo if nil) and
// a main gateway that reaches it through a fault proxy as peer "p".
func behindProxy(t *testing.T, h federation.Handler, tune func(*federation.Config)) (*gw, *faultProxy) {
	main, _, px := behindProxyFar(t, h, tune)
	return main, px
}

// behindProxyFar is behindProxy, also returning the far gateway.
func behindProxyFar(t *testing.T, h federation.Handler, tune func(*federation.Config)) (main, far *gw, px *faultProxy) {
	ln := listen(t)
	extra := map[string]federation.Handler{}
	if h != nil {
		extra["a"] = h
	}
	far = start(t, newConfig(t, "far-server", "a"), ln, extra)
	px = newFaultProxy(t, ln.Addr().String())
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "p", Name: "P", URL: px.url(), AgentID: "a"}}
	if tune != nil {
		tune(cfg)
	}
	return start(t, cfg, listen(t), nil), far, px
}

// TestCutConnectionFailsFastThenReconnects: a request in flight when the
// connection is cut fails at once with PEER_UNAVAILABLE, not at its
// timeout, and the next request reconnects.
func TestCutConnectionFailsFastThenReconnects(t *testing.T) {
	entered := make(chan struct{}, 1)
	slow := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		if m.Content == "slow" {
			entered <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &federation.Answer{Content: m.Content}, nil
	})
	main, px := behindProxy(t, slow, nil)
	done := make(chan *federation.Result, 1)
	go func() {
		r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "slow", MessageOptions: federation.MessageOptions{TimeoutMs: 60000}})
		done <- r
	}()
	<-entered
	px.cut()
	select {
	case r := <-done:
		if r.Status != federation.StatusError || r.Error.Code != "PEER_UNAVAILABLE" {
			t.Fatalf("request on a cut connection: %+v", r.Error)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request on a cut connection waited instead of failing")
	}
	tstest.WaitFor(t, 15*time.Second, func() error { // reconnects (after the pool's backoff)
		r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "again"})
		return r.Err()
	})
}

// TestIdleCutConnectionRedialsAtOnce: a connection cut while idle (a
// crashed peer, a dropped link) is not read between calls; the next send
// finds it ended before writing, and goes out on a new connection instead
// of failing.
func TestIdleCutConnectionRedialsAtOnce(t *testing.T) {
	echo := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		return &federation.Answer{Content: m.Content}, nil
	})
	main, px := behindProxy(t, echo, nil)
	for range 3 {
		if r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "warm"}); r.Err() != nil {
			t.Fatal(r.Err())
		}
		time.Sleep(2 * time.Millisecond) // quiet for longer than a sender checks
		px.cut()
		// Let the cut reach main's socket: a close that has not arrived
		// cannot be seen, and a request written before it fails.
		time.Sleep(time.Millisecond)
		if r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "after the cut"}); r.Err() != nil {
			t.Fatalf("first send after an idle cut: %v", r.Err())
		}
	}
}

// TestStalledLinkIsDetectedByHeartbeat: when a link silently stops
// carrying bytes, the heartbeat notices, and a request in flight fails
// with PEER_UNAVAILABLE long before its own timeout.
func TestStalledLinkIsDetectedByHeartbeat(t *testing.T) {
	entered := make(chan struct{}, 1)
	hold := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		if m.Content == "hold" {
			entered <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &federation.Answer{Content: m.Content}, nil
	})
	main, px := behindProxy(t, hold, func(c *federation.Config) { c.Gateway.HeartbeatMs = 100 })
	if r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "warm"}); r.Err() != nil {
		t.Fatal(r.Err())
	}
	done := make(chan *federation.Result, 1)
	go func() {
		r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "hold", MessageOptions: federation.MessageOptions{TimeoutMs: 60000}})
		done <- r
	}()
	<-entered
	px.stall(true)
	select {
	case r := <-done:
		if r.Error == nil || r.Error.Code != "PEER_UNAVAILABLE" {
			t.Fatalf("request on a stalled link: %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a stalled link went unnoticed")
	}
	if h := main.ListPeers().Peers[0].Health; h.LastError == "" {
		t.Fatalf("health does not show the missed heartbeat: %+v", h)
	}
	px.stall(false)
}

// TestStalledPeerDoesNotDelayBroadcast: one stalled peer's timeout does
// not hold back the other peers' results.
func TestStalledPeerDoesNotDelayBroadcast(t *testing.T) {
	lnFast, lnStuck := listen(t), listen(t)
	start(t, newConfig(t, "fast-server", "a"), lnFast, nil)
	start(t, newConfig(t, "stuck-server", "a"), lnStuck, nil)
	px := newFaultProxy(t, lnStuck.Addr().String())
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{
		{ID: "fast", Name: "Fast", URL: url(lnFast), AgentID: "a"},
		{ID: "stuck", Name: "Stuck", URL: px.url(), AgentID: "a", TimeoutMs: 1500},
	}
	main := start(t, cfg, listen(t), nil)
	px.stall(true)
	res, err := main.Broadcast(context.Background(), federation.BroadcastRequest{Message: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	fast, stuck := res[0], res[1]
	if fast.Status != federation.StatusOK || stuck.Status != federation.StatusTimeout {
		t.Fatalf("broadcast: fast %s, stuck %s", fast.Status, stuck.Status)
	}
	if fast.LatencyMs >= stuck.LatencyMs {
		t.Fatalf("the fast peer's result (%.1f ms) waited for the stuck one (%.1f ms)", fast.LatencyMs, stuck.LatencyMs)
	}
}

// TestCutUnderLoadIsOneFailure: 20 requests in flight when the
// connection is cut all fail, but the cut is one failure of the peer, not
// 20: its circuit stays closed and the next request, on a new connection,
// is answered instead of refused with CIRCUIT_OPEN.
func TestCutUnderLoadIsOneFailure(t *testing.T) {
	const callers = 20
	entered := make(chan struct{}, callers)
	hold := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		if m.Content == "hold" {
			entered <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &federation.Answer{Content: m.Content}, nil
	})
	main, far, px := behindProxyFar(t, hold, nil) // breaker: 5 consecutive failures
	results := make(chan *federation.Result, callers)
	for range callers {
		go func() {
			r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "hold", MessageOptions: federation.MessageOptions{TimeoutMs: 60000}})
			results <- r
		}()
	}
	for i := range 16 { // the agent's maxConcurrency; the other 4 wait in its queue
		select {
		case <-entered:
		case r := <-results: // one ended before the cut: say how, rather than hang
			t.Fatalf("request ended before the cut, with %d held: %+v %v", i, r, r.Err())
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of 16 requests reached the agent in 30 s", i)
		}
	}
	// All 20 on the connection before the cut: one still to be sent would
	// go on a new connection and be held until its timeout.
	tstest.WaitFor(t, 30*time.Second, func() error {
		if w := far.Health().Agents[0].Waiting; w != callers-16 {
			return fmt.Errorf("%d requests wait in the far agent's queue; want %d", w, callers-16)
		}
		return nil
	})
	px.cut()
	for range callers {
		if r := <-results; r.Error == nil || r.Error.Code != "PEER_UNAVAILABLE" {
			t.Fatalf("request on the cut connection: %+v", r)
		}
	}
	if h := main.ListPeers().Peers[0].Health; h.Circuit != "closed" {
		t.Fatalf("one cut opened the circuit: %+v", h)
	}
	r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "again"})
	if r.Err() != nil {
		t.Fatalf("first send after the cut: %v; want an answer", r.Err())
	}
}
