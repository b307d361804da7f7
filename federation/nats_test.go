package federation_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// natsConfig is newConfig federating over NATS: joining the NATS system
// at url, or embedding a nats-server on a random loopback port when url
// is "".
func natsConfig(t testing.TB, url, serverID, agentID string, caps ...string) *federation.Config {
	t.Helper()
	cfg := newConfig(t, serverID, agentID, caps...)
	cfg.Federation.Transport = federation.TransportNATS
	cfg.NATS.URL = url
	if url == "" {
		cfg.NATS.Embedded = &federation.NATSEmbeddedConfig{Listen: "127.0.0.1:0"}
	}
	return cfg
}

// natsHub starts a gateway that embeds a nats-server on a random loopback
// port, and returns it with the URL other gateways join it by.
func natsHub(t *testing.T, serverID, agentID string, caps ...string) (*gw, string) {
	t.Helper()
	g := start(t, natsConfig(t, "", serverID, agentID, caps...), listen(t), nil)
	if g.NATSClientURL() == "" {
		t.Fatal("embedded nats-server has no client URL")
	}
	return g, g.NATSClientURL()
}

// natsMember starts a gateway that joins the NATS system at url.
func natsMember(t *testing.T, url, serverID, agentID string, caps ...string) *gw {
	t.Helper()
	return natsMemberWith(t, url, serverID, agentID, nil, caps...)
}

// natsMemberWith is natsMember with the agent's handler h (echo when nil).
func natsMemberWith(t *testing.T, url, serverID, agentID string, h federation.Handler, caps ...string) *gw {
	t.Helper()
	var extra map[string]federation.Handler
	if h != nil {
		extra = map[string]federation.Handler{agentID: h}
	}
	return start(t, natsConfig(t, url, serverID, agentID, caps...), listen(t), extra)
}

func TestNATSActionsWithoutPeers(t *testing.T) {
	ctx := context.Background()
	a, url := natsHub(t, "site-a", "research", "web-search")
	b := natsMember(t, url, "site-b", "data", "sql")

	var list []string
	for _, p := range b.ListPeers().Peers {
		list = append(list, p.ID+" "+p.Source)
	}
	if diff := cmp.Diff([]string{"research@site-a nats"}, list); diff != "" {
		t.Errorf("list_peers on site-b (-want +got):\n%s", diff)
	}

	r, err := b.Send(ctx, federation.SendRequest{PeerID: "research@site-a", Message: "hello"})
	if err != nil || r.Status != federation.StatusOK || r.Response.Content != "hello" || r.Response.FromServer != "site-a" {
		t.Fatalf("send = %+v, %v; want ok with the echo from site-a", r, err)
	}

	d, err := b.Delegate(ctx, federation.DelegateRequest{RequiredCapabilities: []string{"web-search"}, Task: "find"})
	if err != nil || d.Status != federation.StatusOK || d.PeerID != "research@site-a" {
		t.Fatalf("delegate = %+v, %v; want ok from research@site-a", d, err)
	}
	if _, err := b.Delegate(ctx, federation.DelegateRequest{RequiredCapabilities: []string{"telepathy"}, Task: "x"}); code(err) != federation.CodeNoCapablePeer {
		t.Errorf("delegate to a capability nobody has: %v; want NO_CAPABLE_PEER", err)
	}

	res, err := a.Broadcast(ctx, federation.BroadcastRequest{Message: "all"})
	if err != nil || len(res) != 1 || res[0].PeerID != "data@site-b" || res[0].Status != federation.StatusOK {
		t.Fatalf("broadcast from site-a = %+v, %v; want one ok answer from data@site-b", res, err)
	}

	caps, err := a.QueryCapabilities(ctx, "data@site-b", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&federation.CapabilityReport{PeerID: "data@site-b", PeerName: "data@site-b", Capabilities: []string{"sql"}, Description: "echoes data"}, caps); diff != "" {
		t.Errorf("query_capabilities (-want +got):\n%s", diff)
	}

	if _, err := b.Send(ctx, federation.SendRequest{PeerID: "ghost@site-a", Message: "x"}); code(err) != federation.CodeUnknownPeer {
		t.Errorf("send to an agent no gateway announces: %v; want UNKNOWN_PEER", err)
	}
}

// Two gateways of one site serve the same agent in one queue group: one
// shuts down while requests flow, and every request is still answered.
func TestNATSQueueGroupSurvivesAGateway(t *testing.T) {
	ctx := context.Background()
	hub, url := natsHub(t, "hub", "")
	slow := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		time.Sleep(5 * time.Millisecond) // work in flight when b1 stops
		return &federation.Answer{Content: msg.Content}, nil
	})
	b1 := natsMemberWith(t, url, "site-b", "data", slow, "sql")
	natsMemberWith(t, url, "site-b", "data", slow, "sql")

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := hub.Send(ctx, federation.SendRequest{PeerID: "data@site-b", Message: "m", MessageOptions: federation.MessageOptions{TimeoutMs: 5000}})
				sent.Add(1)
				if err != nil || r.Status != federation.StatusOK {
					failed.Add(1)
					t.Errorf("send: %+v, %v", r, err)
				}
			}
		})
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		if sent.Load() < 50 {
			return fmt.Errorf("%d sent", sent.Load())
		}
		return nil
	})
	b1.stop(t) // the site's other gateway takes over
	after := sent.Load()
	tstest.WaitFor(t, 10*time.Second, func() error {
		if sent.Load() < after+50 {
			return fmt.Errorf("%d sent after the stop", sent.Load()-after)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed", failed.Load(), sent.Load())
	}
}

// Durable messages wait in JetStream while their receiver is down, and
// after its restart each is handled exactly once.
func TestNATSDurableSurvivesReceiverRestart(t *testing.T) {
	ctx := context.Background()
	hub, url := natsHub(t, "hub", "")
	var mu sync.Mutex
	handled := map[string]int{}
	worker := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		mu.Lock()
		handled[msg.MessageID]++
		mu.Unlock()
		return &federation.Answer{Content: "done"}, nil
	})
	cfg := natsConfig(t, url, "site-r", "worker")
	// AckWait: a message on its way to the gateway as it stops comes
	// back after it; the wait below allows for one.
	cfg.Federation.DefaultTimeoutMs = 3000
	r := start(t, cfg, listen(t), map[string]federation.Handler{"worker": worker})

	const total = 200
	var ids []string
	send := func(k int) {
		for range k {
			res, err := hub.Send(ctx, federation.SendRequest{PeerID: "worker@site-r", Message: "job", MessageOptions: federation.MessageOptions{Durable: true}})
			if err != nil || res.Status != federation.StatusQueued {
				t.Fatalf("durable send = %+v, %v; want queued", res, err)
			}
			ids = append(ids, res.MessageID)
		}
	}
	send(total / 2)
	r.stop(t)
	send(total / 2) // stored while nobody consumes
	start(t, cfg, listen(t), map[string]federation.Handler{"worker": worker})

	tstest.WaitFor(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(handled) < total {
			return fmt.Errorf("%d of %d handled", len(handled), total)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if handled[id] != 1 {
			t.Errorf("message %s handled %d times; want once", id, handled[id])
		}
	}
}
