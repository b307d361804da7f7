package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/natsbus"
)

// natsStallLimit bounds the wait for accepts to resume after the leader
// is killed.
const natsStallLimit = 60 * time.Second

// startNATSRelayThroughput is throughput's nats-relay case: gateways over
// NATS as in nats-relay-rtt, o.Concurrency sends in flight.
func startNATSRelayThroughput(o *Options, s *sample) (countFunc, func(), error) {
	op, stop, err := startNATSRelayRTT(context.Background(), o, s)
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context, d time.Duration) (int64, time.Duration, error) {
		return count(ctx, o.Concurrency, d, op)
	}
	return run, stop, nil
}

// natsDurablePair is a main gateway sending durable messages to peer's
// echo agent over NATS, with the stream replicated on replicas servers.
type natsDurablePair struct {
	g       *gateways
	main    *federation.Node
	cluster *natsbus.LocalCluster // nil with one embedded server
	dir     string                // the cluster's storage
	req     federation.SendRequest
}

func startNATSDurablePair(s *sample, replicas int) (*natsDurablePair, error) {
	g, err := newGateways(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	p := &natsDurablePair{g: g}
	transport := func(c *federation.Config) {
		c.Federation.Transport = federation.TransportNATS
		c.NATS.Replicas = replicas
		switch {
		case p.cluster != nil:
			c.NATS.URL = p.cluster.URL()
		case p.main == nil:
			c.NATS.Embedded = &federation.NATSEmbeddedConfig{Listen: "127.0.0.1:0"}
		default:
			c.NATS.URL = p.main.NATSClientURL()
		}
	}
	if replicas > 1 {
		if p.dir, err = os.MkdirTemp("", "agentfed-bench-nats-"); err != nil {
			p.close()
			return nil, err
		}
		if p.cluster, err = natsbus.StartLocalCluster(p.dir, replicas); err != nil {
			p.close()
			return nil, err
		}
	}
	if p.main, err = g.start("main", false, nil, transport); err != nil {
		p.close()
		return nil, err
	}
	if _, err := g.start("peer", true, nil, transport); err != nil {
		p.close()
		return nil, err
	}
	p.req = federation.SendRequest{PeerID: echoAgent + "@peer", Message: s.content, MessageOptions: federation.MessageOptions{Durable: true}}
	return p, nil
}

// send is one durable send, accepted when JetStream has stored it.
func (p *natsDurablePair) send(ctx context.Context) error {
	res, err := p.main.Send(ctx, p.req)
	switch {
	case err != nil:
		return err
	case res.Status != federation.StatusQueued:
		return fmt.Errorf("%w: durable send over NATS: %s %v", errNotOK, res.Status, res.Error)
	}
	return nil
}

func (p *natsDurablePair) close() {
	p.g.close() // the gateways first: they drain over NATS
	if p.cluster != nil {
		p.cluster.Close()
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// measureNATSDurable measures durable sends over NATS: accepted per
// second with the stream on one server (r1) and replicated on three (r3),
// o.Concurrency senders; then the stall when the R3 stream's leader is
// killed: the longest time without an accepted send, senders retrying.
func measureNATSDurable(ctx context.Context, o *Options, s *sample) Result {
	r := Result{Note: fmt.Sprintf("Send with durable: true over NATS to an echo gateway, %d concurrent senders; r1: one embedded nats-server; r3: three clustered servers, nats.replicas 3, storage under %s; leader-stall: the longest wait for an accept after the r3 stream leader is killed",
		o.Concurrency, os.TempDir())}
	d := o.Duration / 3
	for _, replicas := range []int{1, 3} {
		p, err := startNATSDurablePair(s, replicas)
		if err != nil {
			return fail(r, fmt.Errorf("r%d: %w", replicas, err))
		}
		if _, _, err := count(ctx, o.Concurrency, warmup(d), p.send); err != nil {
			p.close()
			return fail(r, fmt.Errorf("r%d warm-up: %w", replicas, err))
		}
		n, elapsed, err := count(ctx, o.Concurrency, d, p.send)
		if err != nil {
			p.close()
			return fail(r, fmt.Errorf("r%d: %w", replicas, err))
		}
		r.add(fmt.Sprintf("r%d-accepted", replicas), float64(n)/elapsed.Seconds(), unitRate)
		if replicas == 3 {
			stall, err := p.leaderStall(ctx, o.Concurrency, d)
			if err != nil {
				p.close()
				return fail(r, fmt.Errorf("leader-stall: %w", err))
			}
			r.add("leader-stall", float64(stall.Microseconds())/1000, unitMillis)
		}
		p.close()
	}
	return r
}

// leaderStall keeps workers sending (a failed send is retried, as a
// sender does), kills the stream's leader after d/2 and returns the
// longest time no send was accepted.
func (p *natsDurablePair) leaderStall(ctx context.Context, workers int, d time.Duration) (time.Duration, error) {
	nc, err := nats.Connect(p.cluster.URL())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	info, err := js.Stream(ctx, "AF_DURABLE_peer")
	if err != nil {
		return 0, err
	}
	cl := info.CachedInfo().Cluster
	if cl == nil || cl.Leader == "" {
		return 0, fmt.Errorf("stream AF_DURABLE_peer has no leader")
	}
	ctx, cancel := context.WithTimeout(ctx, d+natsStallLimit)
	defer cancel()
	start := time.Now()
	var last, longest, accepted atomic.Int64 // ns since start
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for ctx.Err() == nil {
				sctx, scancel := context.WithTimeout(ctx, natsStallLimit/4) // longer than an election: a send waits for it
				err := p.send(sctx)
				scancel()
				if err != nil {
					continue
				}
				now := int64(time.Since(start))
				gap := now - last.Swap(now)
				for l := longest.Load(); gap > l && !longest.CompareAndSwap(l, gap); l = longest.Load() {
				}
				accepted.Add(1)
			}
		}()
	}
	sleep(ctx, d/2)
	killedAt := accepted.Load()
	if _, err := p.cluster.Kill(cl.Leader); err != nil {
		cancel()
	}
	for ctx.Err() == nil && accepted.Load() < killedAt+int64(workers)*10 && time.Since(start) < d+natsStallLimit {
		sleep(ctx, 20*time.Millisecond)
	}
	sleep(ctx, d/2)
	cancel()
	for range workers {
		<-done
	}
	if accepted.Load() < killedAt+int64(workers) {
		return 0, fmt.Errorf("accepts did not resume within %v of the leader's death", natsStallLimit)
	}
	return time.Duration(longest.Load()), nil
}
