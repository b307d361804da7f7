package federation_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// TestAgentQueueFairShare: one peer filling an agent's maxQueue does not
// keep another peer out: the second peer's messages are queued in the
// place of the first's newest, and answered.
func TestAgentQueueFairShare(t *testing.T) {
	gate := make(chan struct{})
	slow := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		select {
		case <-gate:
			return &federation.Answer{Content: "done " + m.FromServer}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	lnVictim := listen(t)
	vcfg := newConfig(t, "victim", "slow")
	vcfg.Agents[0].MaxConcurrency, vcfg.Agents[0].MaxQueue = 1, 4
	start(t, vcfg, lnVictim, map[string]federation.Handler{"slow": slow})
	sender := func(id string) *gw {
		cfg := newConfig(t, id, "")
		cfg.Federation.Peers = []federation.PeerConfig{peerConf("victim", "slow", lnVictim)}
		cfg.Federation.DefaultTimeoutMs = 30000
		return start(t, cfg, listen(t), nil)
	}
	flooder, other := sender("flooder"), sender("other")

	type outcome struct{ from, code string }
	results := make(chan outcome, 20)
	var wg sync.WaitGroup
	send := func(g *gw, n int) {
		for i := range n {
			wg.Go(func() {
				r, err := g.Send(context.Background(), federation.SendRequest{PeerID: "victim", Message: fmt.Sprint(i)})
				if err == nil {
					err = r.Err()
				}
				results <- outcome{g.ServerID(), code(err)}
			})
		}
	}
	collect := func(n int) map[outcome]int {
		got := map[outcome]int{}
		for range n {
			select {
			case o := <-results:
				got[o]++
			case <-time.After(20 * time.Second):
				t.Fatalf("only %v of %d results", got, n)
			}
		}
		return got
	}
	defer wg.Wait()
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()

	// 1 running and 4 waiting: the flooder's other 5 are OVERLOADED.
	send(flooder, 10)
	if got := collect(5); got[outcome{"flooder", federation.CodeOverloaded}] != 5 {
		t.Fatalf("flooding a queue of 4: %v; want 5 OVERLOADED", got)
	}
	// The other peer's two take two of the flooder's places.
	send(other, 2)
	if got := collect(2); got[outcome{"flooder", federation.CodeOverloaded}] != 2 {
		t.Fatalf("after the other peer sent 2: %v; want 2 more of the flooder's OVERLOADED", got)
	}
	close(gate)
	got := collect(5)
	if want := (map[outcome]int{{"flooder", ""}: 3, {"other", ""}: 2}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("answers: %v; want %v", got, want)
	}
}
