package federation_test

import (
	"context"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// queueToDownPeer starts a gateway whose peer "down" listens nowhere yet
// and queues n durable messages to it. It returns the gateway and the
// peer's address.
func queueToDownPeer(t *testing.T, n int) (*gw, string) {
	t.Helper()
	lnPeer := listen(t)
	addr := lnPeer.Addr().String()
	lnPeer.Close()
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "down", Name: "Down", URL: "ws://" + addr, AgentID: "c"}}
	cfg.Gateway.HeartbeatMs = 1000 // a peer that is back is noticed within a second
	main := start(t, cfg, listen(t), nil)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "down", Message: fmt.Sprint(i),
					MessageOptions: federation.MessageOptions{Durable: true}})
				if err != nil || r.Status != federation.StatusQueued {
					t.Errorf("durable send %d: %+v, %v", i, r, err)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return main, addr
}

// attempts sums the attempts of every queued message; each attempt is one
// rewrite of its outbox entry. It also returns the most any one had.
func attempts(t *testing.T, g *gw) (total, most, queued int) {
	t.Helper()
	after := ""
	for {
		l, err := g.OutboxPage(federation.OutboxQuery{States: []string{federation.StateQueued}, After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Messages {
			total += e.Attempts
			most = max(most, e.Attempts)
			queued++
		}
		if after = l.Next; after == "" {
			return total, most, queued
		}
	}
}

// TestBacklogToDownPeerCostsTheSame: while a peer is down, its queued
// messages are not attempted (nor rewritten) one by one: one message
// probes the peer per backoff interval. So the attempts made while the
// probe retries several times are the same for a backlog of 50 and of
// 500, and once the peer is back every message is delivered.
func TestBacklogToDownPeerCostsTheSame(t *testing.T) {
	var counts []int
	for _, n := range []int{50, 500} {
		main, addr := queueToDownPeer(t, n)
		// Wait until the probing message has been tried 4 times: 100 ms
		// doubling, about 0.7 s of the peer being down.
		tstest.WaitFor(t, 30*time.Second, func() error {
			if _, most, _ := attempts(t, main); most < 4 {
				return fmt.Errorf("the probe has made %d attempts", most)
			}
			return nil
		})
		total, _, queued := attempts(t, main)
		if queued != n {
			t.Fatalf("%d queued; want %d", queued, n)
		}
		t.Logf("backlog %d: %d attempts while the peer was down", n, total)
		counts = append(counts, total)

		c := newCounter()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("rebind %s: %v", addr, err)
		}
		start(t, newConfig(t, "peer-server", "c"), ln, map[string]federation.Handler{"c": c})
		tstest.WaitFor(t, 60*time.Second, func() error {
			if _, _, queued := attempts(t, main); queued > 0 {
				return fmt.Errorf("%d of %d still queued", queued, n)
			}
			return nil
		})
		for i := range n {
			if got := c.count(fmt.Sprint(i)); got != 1 {
				t.Fatalf("message %d handled %d times; want 1", i, got)
			}
		}
	}
	// At most one round of concurrent attempts (64) before the peer is
	// known to be down, then one probe per interval: no growth with n.
	if counts[1] > counts[0]+64 {
		t.Fatalf("attempts while down: %d for 50 queued, %d for 500; want no growth with the backlog", counts[0], counts[1])
	}
}
