package federation_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/natsbus"
	"github.com/agentfed/agentfed/internal/tstest"
	"github.com/agentfed/agentfed/internal/tstest/fedtest"
)

// natsClusterMessages is how many durable messages TestNATSClusterR3
// sends: a few hundred by default, so the whole suite stays quick;
// AGENTFED_NATS_CLUSTER_MESSAGES=10000 runs the full count.
func natsClusterMessages(t *testing.T) int {
	if v := os.Getenv("AGENTFED_NATS_CLUSTER_MESSAGES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("AGENTFED_NATS_CLUSTER_MESSAGES=%q: want a number of at least 10", v)
		}
		return n
	}
	return 600
}

// A durable stream replicated on three servers (nats.replicas 3): while
// messages are published, with deliberate repeats of the same messageId,
// the stream leader is killed; while they are consumed, the consumer
// leader is. Every message is stored once and handled exactly once.
func TestNATSClusterR3(t *testing.T) {
	total := natsClusterMessages(t)
	half := int64(total / 2) // handled before the consumer leader dies
	cl, err := natsbus.StartLocalCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close) // after the gateway has stopped
	url := cl.URL()

	var mu sync.Mutex
	handled := map[string]int{}
	var count atomic.Int64
	release := make(chan struct{}) // the second half waits for the consumer leader's death
	worker := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		if count.Add(1) > half {
			<-release
		}
		mu.Lock()
		handled[msg.MessageID]++
		mu.Unlock()
		return &federation.Answer{Content: "done"}, nil
	})
	cfg := newConfig(t, "site-w", "worker")
	cfg.Federation.Transport = federation.TransportNATS
	cfg.Federation.DefaultTimeoutMs = 20000
	cfg.NATS.URL, cfg.NATS.Replicas = url, 3
	start(t, cfg, listen(t), map[string]federation.Handler{"worker": worker})

	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const stream = "AF_DURABLE_site-w"
	leader := func(consumer bool) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var name string
		tstest.WaitFor(t, 20*time.Second, func() error {
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			if consumer {
				c, err := s.Consumer(ctx, "af-worker")
				if err != nil || c.CachedInfo().Cluster == nil || c.CachedInfo().Cluster.Leader == "" {
					return fmt.Errorf("consumer leader: %v", err)
				}
				name = c.CachedInfo().Cluster.Leader
				return nil
			}
			if cl := s.CachedInfo().Cluster; cl != nil && cl.Leader != "" && len(s.CachedInfo().Config.Subjects) > 0 {
				name = cl.Leader
				return nil
			}
			return fmt.Errorf("stream %s has no leader yet", stream)
		})
		return name
	}
	if r := leader(false); r == "" {
		t.Fatal("no stream leader")
	}

	// Publish, as a sending gateway does: the same messageId again until
	// JetStream acknowledges it, and every tenth message once more.
	publish := func(id string, data []byte) {
		m := nats.NewMsg("af.durable.site-w.worker.site-s")
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Data = data
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := js.PublishMsg(ctx, m)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %s not stored after 30 s: %v", id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Meanwhile a gateway sends durable messages too: each Send must be
	// queued, whatever the leader's death does to the publish in flight.
	scfg := newConfig(t, "site-g", "")
	scfg.Federation.Transport = federation.TransportNATS
	scfg.NATS.URL = url
	sender := start(t, scfg, listen(t), nil)
	var gwIDs []string
	sending, sent := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-sending:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			res, err := sender.Send(ctx, federation.SendRequest{PeerID: "worker@site-w", Message: "from a gateway", MessageOptions: federation.MessageOptions{Durable: true}})
			cancel()
			if err != nil || res.Status != federation.StatusQueued {
				t.Errorf("durable Send while the leader dies = %+v, %v; want queued", res, err)
				return
			}
			gwIDs = append(gwIDs, res.MessageID)
		}
	}()

	var ids []string
	killed := -1
	for i := range total {
		if i == total/3 {
			if killed, err = cl.Kill(leader(false)); err != nil { // the stream leader, mid-publish
				t.Fatal(err)
			}
		}
		msg := federation.NewMessage(federation.TypeRequest, "site-s", "client", "worker", "job "+strconv.Itoa(i))
		data, err := (&federation.RelayParams{TargetAgent: "worker", Message: msg, Durable: true}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msg.MessageID)
		publish(msg.MessageID, data)
		if i%10 == 0 {
			publish(msg.MessageID, data) // a deliberate repeat
		}
	}
	close(sending)
	<-sent
	if len(gwIDs) == 0 {
		t.Fatal("the gateway sent nothing")
	}
	ids = append(ids, gwIDs...)
	total += len(gwIDs)
	if err := cl.Restart(killed); err != nil {
		t.Fatal(err)
	}

	tstest.WaitFor(t, 60*time.Second, func() error {
		if n := count.Load(); n <= half {
			return fmt.Errorf("%d of %d handled", n, total)
		}
		return nil
	})
	if _, err := cl.Kill(leader(true)); err != nil { // the consumer leader, mid-consume
		t.Fatal(err)
	}
	close(release)

	// Messages the agent could not take while it was held (more than its
	// queue holds, on a slow machine where the gateway sent many) come back
	// after the consumer's backoff, which grows with each delivery.
	tstest.WaitFor(t, 300*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(handled) < total {
			return fmt.Errorf("%d of %d handled", len(handled), total)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	lost, twice := 0, 0
	for _, id := range ids {
		switch handled[id] {
		case 0:
			lost++
		case 1:
		default:
			twice++
		}
	}
	if lost != 0 || twice != 0 || len(handled) != total {
		t.Errorf("%d messages: %d lost, %d handled more than once, %d distinct handled; want 0, 0, %d", total, lost, twice, len(handled), total)
	}
	var s jetstream.Stream
	tstest.WaitFor(t, 30*time.Second, func() error { // a new stream leader may be being elected
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		s, err = js.Stream(ctx, stream)
		return err
	})
	if got := s.CachedInfo().State.Msgs; got != uint64(total) {
		t.Errorf("stream holds %d messages; want %d (each repeat stored once)", got, total)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("stream replicas %d; want 3 (nats.replicas)", r)
	}
}

// TestNATSStartOnAFormingCluster: a gateway started while its JetStream
// cluster has no quorum (two of its three servers down, as while a cluster
// forms) asks again within its set-up time instead of failing, and starts
// once the servers are back. A bare client watches the JetStream API:
// the server comes back only after the gateway has asked the same thing
// twice, so the start cannot succeed without asking again.
func TestNATSStartOnAFormingCluster(t *testing.T) {
	cl, err := natsbus.StartLocalCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close) // after the gateway has stopped
	var back []int
	for _, name := range []string{"core-2", "core-3"} {
		i, err := cl.Kill(name)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, i)
	}
	url := cl.URL() // core-1 alone

	watch, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	asked := make(chan string, 1024)
	if _, err := watch.Subscribe("$JS.API.>", func(m *nats.Msg) {
		select {
		case asked <- m.Subject:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}

	cfg := newConfig(t, "site-f", "worker")
	cfg.Federation.Transport = federation.TransportNATS
	cfg.NATS.URL, cfg.NATS.Replicas = url, 3
	ln := listen(t)
	type started struct {
		n   *federation.Node
		err error
	}
	done := make(chan started, 1)
	go func() {
		n, err := fedtest.Serve(cfg, ln, federation.Options{})
		done <- started{n, err}
	}()
	seen := map[string]bool{}
	for again := false; !again; {
		select {
		case s := <-asked:
			again, seen[s] = seen[s], true
		case s := <-done:
			t.Fatalf("the gateway's start ended while the cluster had no quorum: %v", s.err)
		case <-time.After(time.Minute):
			t.Fatalf("the gateway never asked JetStream the same thing twice; it asked %v", slices.Sorted(maps.Keys(seen)))
		}
	}
	for _, i := range back { // all three: replicas 3 needs them (10005 until then)
		if err := cl.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	s := <-done
	if s.err != nil {
		t.Fatalf("start once the cluster has a quorum again: %v", s.err)
	}
	if err := fedtest.Shutdown(s.n); err != nil {
		t.Error(err)
	}
}
