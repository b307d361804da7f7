package federation_test

import (
	"context"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// recorder is an agent that handles one message at a time, blocks on the
// first until released, and records the order it handled contents in.
type recorder struct {
	release chan struct{}
	mu      sync.Mutex
	order   []string
}

func (r *recorder) Handle(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
	if m.Content == "blocker" {
		select {
		case <-r.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r.mu.Lock()
	r.order = append(r.order, m.Content)
	r.mu.Unlock()
	return &federation.Answer{Content: m.Content}, nil
}

func waiting(g *gw, agent string) int {
	for _, a := range g.Health().Agents {
		if a.ID == agent {
			return a.Waiting
		}
	}
	return -1
}

// TestUrgentOvertakesLowBacklog: a saturated agent with a backlog of low
// messages answers urgent ones first.
func TestUrgentOvertakesLowBacklog(t *testing.T) {
	rec := &recorder{release: make(chan struct{})}
	lnPeer := listen(t)
	pcfg := newConfig(t, "busy-server", "busy")
	pcfg.Agents[0].MaxConcurrency = 1
	peerGW := start(t, pcfg, lnPeer, map[string]federation.Handler{"busy": rec})
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("busy", "busy", lnPeer)}
	main := start(t, cfg, listen(t), nil)

	send := func(content string, prio federation.Priority, wg *sync.WaitGroup) {
		wg.Go(func() {
			r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "busy", Message: content, MessageOptions: federation.MessageOptions{Priority: prio}})
			if err != nil || r.Status != federation.StatusOK {
				t.Errorf("send %s: %v %+v", content, err, r)
			}
		})
	}
	var wg sync.WaitGroup
	send("blocker", federation.PriorityNormal, &wg)
	tstest.WaitFor(t, 5*time.Second, func() error {
		if a := peerGW.Health().Agents[0]; a.Busy != 1 {
			return fmt.Errorf("blocker not running: %+v", a)
		}
		return nil
	})
	for i := range 5 {
		send(fmt.Sprintf("low-%d", i), federation.PriorityLow, &wg)
	}
	tstest.WaitFor(t, 5*time.Second, func() error {
		if w := waiting(peerGW, "busy"); w != 5 {
			return fmt.Errorf("%d waiting", w)
		}
		return nil
	})
	send("urgent", federation.PriorityUrgent, &wg)
	send("high", federation.PriorityHigh, &wg)
	tstest.WaitFor(t, 5*time.Second, func() error {
		if w := waiting(peerGW, "busy"); w != 7 {
			return fmt.Errorf("%d waiting", w)
		}
		return nil
	})
	close(rec.release)
	wg.Wait()
	if got := rec.order[:3]; got[0] != "blocker" || got[1] != "urgent" || got[2] != "high" {
		t.Fatalf("handled in order %v; want blocker, urgent, high, then the lows", rec.order)
	}
}

func TestOverloadedAndRateLimited(t *testing.T) {
	rec := &recorder{release: make(chan struct{})}
	lnPeer := listen(t)
	pcfg := newConfig(t, "small-server", "small")
	pcfg.Agents[0].MaxConcurrency, pcfg.Agents[0].MaxQueue = 1, 1
	peerGW := start(t, pcfg, lnPeer, map[string]federation.Handler{"small": rec})
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("small", "small", lnPeer)}
	main := start(t, cfg, listen(t), nil)

	var wg sync.WaitGroup
	for _, c := range []string{"blocker", "queued"} {
		wg.Go(func() { main.Send(context.Background(), federation.SendRequest{PeerID: "small", Message: c}) })
		tstest.WaitFor(t, 5*time.Second, func() error {
			if a := peerGW.Health().Agents[0]; a.Busy+a.Waiting < 1 || (c == "queued" && a.Waiting != 1) {
				return fmt.Errorf("%s not admitted yet: %+v", c, a)
			}
			return nil
		})
	}
	r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "small", Message: "one too many"})
	if r.Status != federation.StatusError || r.Error.Code != "OVERLOADED" {
		t.Fatalf("third message with queue 1: %+v; want OVERLOADED", r)
	}
	close(rec.release)
	wg.Wait()

	// A receiver that allows one request per second per peer.
	lnLimited := listen(t)
	lcfg := newConfig(t, "limited-server", "echo")
	lcfg.Gateway.Limits = federation.LimitsConfig{PeerRatePerSec: 1, PeerBurst: 1}
	start(t, lcfg, lnLimited, nil)
	cfg2 := newConfig(t, "main2", "")
	cfg2.Federation.Peers = []federation.PeerConfig{peerConf("limited", "echo", lnLimited)}
	main2 := start(t, cfg2, listen(t), nil)
	first, _ := main2.Send(context.Background(), federation.SendRequest{PeerID: "limited", Message: "1"})
	second, _ := main2.Send(context.Background(), federation.SendRequest{PeerID: "limited", Message: "2"})
	if first.Status != federation.StatusOK || second.Status != federation.StatusError || second.Error.Code != "RATE_LIMITED" || second.Error.RetryAfterMs <= 0 || !second.Error.Retryable {
		t.Fatalf("rate limit 1/s: first %+v second %+v", first, second.Error)
	}
}

// TestCancelledCallerStopsRemoteWork: a caller that gives up (not a
// timeout) ends the remote agent's work at once, not at its deadline.
func TestCancelledCallerStopsRemoteWork(t *testing.T) {
	started, stopped := make(chan struct{}, 1), make(chan error, 1)
	slow := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	})
	lnPeer := listen(t)
	start(t, newConfig(t, "slow-server", "slow"), lnPeer, map[string]federation.Handler{"slow": slow})
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("slow", "slow", lnPeer)}
	cfg.Federation.DefaultTimeoutMs = 120000
	main := start(t, cfg, listen(t), nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *federation.Result, 1)
	go func() {
		r, _ := main.Send(ctx, federation.SendRequest{PeerID: "slow", Message: "long job"})
		done <- r
	}()
	<-started
	cancel()
	if r := <-done; r.Status == federation.StatusOK {
		t.Fatalf("cancelled send succeeded: %+v", r)
	}
	select {
	case err := <-stopped:
		if err != context.Canceled {
			t.Fatalf("remote work ended with %v; want it cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the remote agent kept working after its caller gave up")
	}
}
