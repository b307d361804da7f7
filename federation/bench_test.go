package federation_test

// Benchmarks of the federation's hot paths between real gateways on
// loopback ports: relay dispatch (Node.Send to an echo peer, sequential,
// 64 in flight, and by message size; over NATS too), broadcast, and peer selection among
// many registered peers. Run with
//
//	go test -run '^$' -bench . -benchmem ./federation/
//
// and profile the relay with
//
//	go test -run '^$' -bench 'Relay$' -cpuprofile cpu.out ./federation/
//	go tool pprof -top federation.test cpu.out

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// The harness's listen, newConfig and start take a *testing.T; these are
// their testing.TB counterparts for benchmarks.

// benchNode starts a gateway named serverID, with an echo agent "echo"
// when echo is set, knowing peers, until the benchmark ends. Per-peer rate
// limits are off: a benchmark measures the path, not the limiter.
func benchNode(tb testing.TB, serverID string, echo bool, peers ...federation.PeerConfig) *federation.Node {
	tb.Helper()
	agentID := ""
	if echo {
		agentID = "echo"
	}
	cfg := newConfig(tb, serverID, agentID, "echo")
	cfg.Federation.Peers = peers
	cfg.Gateway.Limits.PeerRatePerSec = -1
	return start(tb, cfg, listen(tb), nil).Node
}

func echoPeerConf(id string, n *federation.Node, caps ...string) federation.PeerConfig {
	return federation.PeerConfig{ID: id, Name: id, URL: n.URL(), AgentID: "echo", Capabilities: caps}
}

// relayPair is a main gateway with one echo peer named "echo", connected.
func relayPair(b *testing.B) *federation.Node {
	b.Helper()
	echo := benchNode(b, "bench-echo", true)
	main := benchNode(b, "bench-main", false, echoPeerConf("echo", echo))
	mustSend(b, main, "echo", "warm up")
	return main
}

func mustSend(tb testing.TB, n *federation.Node, peer, content string) {
	res, err := n.Send(context.Background(), federation.SendRequest{PeerID: peer, Message: content})
	if err != nil {
		tb.Fatal(err)
	}
	if res.Status != federation.StatusOK {
		tb.Fatalf("send to %s: %s %v", peer, res.Status, res.Error)
	}
}

// BenchmarkRelay is one sequential send round trip: main gateway -> peer
// gateway -> echo agent -> back, over the pooled connection.
func BenchmarkRelay(b *testing.B) {
	main := relayPair(b)
	b.ReportAllocs()
	for b.Loop() {
		mustSend(b, main, "echo", "build status?")
	}
}

// BenchmarkRelaySize is the relay round trip by message content size.
func BenchmarkRelaySize(b *testing.B) {
	main := relayPair(b)
	for _, size := range []int{16, 1 << 10, 16 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("content=%d", size), func(b *testing.B) {
			content := strings.Repeat("x", size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				mustSend(b, main, "echo", content)
			}
		})
	}
}

// BenchmarkRelayParallel keeps 64 sends in flight over one peer
// connection (32 goroutines per GOMAXPROCS on 2 CPUs).
func BenchmarkRelayParallel(b *testing.B) {
	main := relayPair(b)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := main.Send(context.Background(), federation.SendRequest{PeerID: "echo", Message: "build status?"})
			if err != nil || res.Status != federation.StatusOK {
				b.Errorf("send: %v %v", err, res)
				return
			}
		}
	})
}

// BenchmarkBroadcast broadcasts to N peer gateways and collects every
// reply.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			var peers []federation.PeerConfig
			for i := range n {
				id := fmt.Sprintf("peer-%02d", i)
				peers = append(peers, echoPeerConf(id, benchNode(b, "bench-"+id, true)))
			}
			main := benchNode(b, "bench-main", false, peers...)
			req := federation.BroadcastRequest{Message: "build status?"}
			b.ReportAllocs()
			for b.Loop() {
				res, err := main.Broadcast(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if r.Status != federation.StatusOK {
						b.Fatalf("peer %s: %s %v", r.PeerID, r.Status, r.Error)
					}
				}
			}
		})
	}
}

// BenchmarkDelegateSelect times Delegate's choice of a peer among many
// registered peers with 200 capabilities, three each. Peer i has c(i),
// c(i+1), c(i+2), so no peer has both c(5) and c(8): the call walks the
// index's smallest matching set (3P/200 peers), checks each, and fails with
// NO_CAPABLE_PEER without touching the network. No public API times the
// selection alone; this is its cost without a delivery.
func BenchmarkDelegateSelect(b *testing.B) {
	const caps = 200
	capName := func(k int) string { return fmt.Sprintf("cap-%03d", k%caps) }
	for _, peers := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			conf := make([]federation.PeerConfig, peers)
			for i := range conf {
				// The peers are never dialled: no call here finds a candidate.
				conf[i] = federation.PeerConfig{ID: fmt.Sprintf("peer-%05d", i), Name: "p", URL: "ws://127.0.0.1:9",
					AgentID: "echo", Capabilities: []string{capName(i), capName(i + 1), capName(i + 2)}}
			}
			main := benchNode(b, "bench-main", false, conf...)
			req := federation.DelegateRequest{RequiredCapabilities: []string{capName(5), capName(8)}, Task: "t"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := main.Delegate(ctx, req); gateway.CodeOf(err) != federation.CodeNoCapablePeer {
					b.Fatalf("delegate: %v; want NO_CAPABLE_PEER", err)
				}
			}
		})
	}
}

// BenchmarkDelegateSelectVersioned is BenchmarkDelegateSelect with
// versioned capabilities (peer i has c(i)@1.(i%10).0, ...) and constrained
// requirements (c(5)@^1, c(8)@>=1.2 <2): each peer walked also has its
// version checked against the constraint.
func BenchmarkDelegateSelectVersioned(b *testing.B) {
	const caps = 200
	capName := func(k int) string { return fmt.Sprintf("cap-%03d", k%caps) }
	for _, peers := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			conf := make([]federation.PeerConfig, peers)
			for i := range conf {
				v := fmt.Sprintf("@1.%d.0", i%10)
				conf[i] = federation.PeerConfig{ID: fmt.Sprintf("peer-%05d", i), Name: "p", URL: "ws://127.0.0.1:9",
					AgentID: "echo", Capabilities: []string{capName(i) + v, capName(i+1) + v, capName(i+2) + v}}
			}
			main := benchNode(b, "bench-main", false, conf...)
			req := federation.DelegateRequest{RequiredCapabilities: []string{capName(5) + "@^1", capName(8) + "@>=1.2 <2"}, Task: "t"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := main.Delegate(ctx, req); gateway.CodeOf(err) != federation.CodeNoCapablePeer {
					b.Fatalf("delegate: %v; want NO_CAPABLE_PEER", err)
				}
			}
		})
	}
}

// BenchmarkDelegate is a whole Delegate that finds candidates and delivers
// to one, by the number of candidates (all served by one echo gateway, each
// over its own connection). Compared with BenchmarkRelay it shows what
// choosing costs as candidates grow.
func BenchmarkDelegate(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("candidates=%d", n), func(b *testing.B) {
			echo := benchNode(b, "bench-echo", true)
			conf := make([]federation.PeerConfig, n)
			for i := range conf {
				conf[i] = echoPeerConf(fmt.Sprintf("peer-%03d", i), echo, "echo")
			}
			main := benchNode(b, "bench-main", false, conf...)
			req := federation.DelegateRequest{RequiredCapabilities: []string{"echo"}, Task: "build status?"}
			ctx := context.Background()
			for range 2 * n { // dial every candidate
				if _, err := main.Delegate(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				res, err := main.Delegate(ctx, req)
				if err != nil || res.Status != federation.StatusOK {
					b.Fatalf("delegate: %v %v", err, res)
				}
			}
		})
	}
}

// BenchmarkOutboxAppend is a durable send's cost until it is answered
// "queued": the message fsynced into the outbox, with 64 senders sharing
// group commits. The peer's port is closed, so the outbox's delivery
// attempts fail fast and back off instead of competing for the CPU.
func BenchmarkOutboxAppend(b *testing.B) {
	ln := listen(b)
	dead := federation.PeerConfig{ID: "dead", Name: "dead", URL: url(ln), AgentID: "echo"}
	ln.Close()
	main := benchNode(b, "bench-main", false, dead)
	req := federation.SendRequest{PeerID: "dead", Message: "build status?", MessageOptions: federation.MessageOptions{Durable: true}}
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			res, err := main.Send(ctx, req)
			if err != nil || res.Status != federation.StatusQueued {
				b.Errorf("durable send: %+v, %v", res, err)
				return
			}
		}
	})
}

// BenchmarkNATSRelay is one sequential send round trip over NATS: main
// gateway -> the embedded nats-server -> the peer gateway -> echo agent
// -> back.
func BenchmarkNATSRelay(b *testing.B) {
	hub := start(b, natsConfig(b, "", "bench-hub", "echo"), listen(b), nil)
	url := hub.NATSClientURL()
	main := start(b, natsConfig(b, url, "bench-main", ""), listen(b), nil)
	mustSend(b, main.Node, "echo@bench-hub", "warm up")
	b.ReportAllocs()
	for b.Loop() {
		mustSend(b, main.Node, "echo@bench-hub", "build status?")
	}
}
