package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// relayPair is a main gateway with no agent and n peers, each a separate
// connection to one echo gateway.
type relayPair struct {
	gws   *gateways
	main  *federation.Node
	peers []string
}

func startRelayPair(o *Options, connections int) (*relayPair, error) {
	gws, err := newGateways(o.Logger)
	if err != nil {
		return nil, err
	}
	echo, err := gws.start("bench-echo", true, nil)
	if err != nil {
		gws.close()
		return nil, err
	}
	p := &relayPair{gws: gws}
	var peers []federation.PeerConfig
	for i := range connections {
		id := fmt.Sprintf("echo-%d", i)
		peers = append(peers, echoPeer(id, echo))
		p.peers = append(p.peers, id)
	}
	if p.main, err = gws.start("bench-main", false, peers); err != nil {
		gws.close()
		return nil, err
	}
	return p, nil
}

func (p *relayPair) close() error { return p.gws.close() }

// startRelayRTT starts a relay pair for relay-rtt: one send is one round
// trip.
func startRelayRTT(_ context.Context, o *Options, s *sample) (func(context.Context) error, func(), error) {
	p, err := startRelayPair(o, 1)
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context) error { return send(ctx, p.main, p.peers[0], s.content) }, func() { p.close() }, nil
}

// startRelayThroughput starts a relay pair with connections peer
// connections; a run keeps o.Concurrency sends in flight across them.
func startRelayThroughput(o *Options, s *sample, connections int) (countFunc, func(), error) {
	p, err := startRelayPair(o, connections)
	if err != nil {
		return nil, nil, err
	}
	var next atomic.Uint64
	op := func(ctx context.Context) error {
		return send(ctx, p.main, p.peers[int(next.Add(1))%len(p.peers)], s.content)
	}
	run := func(ctx context.Context, d time.Duration) (int64, time.Duration, error) {
		return count(ctx, o.Concurrency, d, op)
	}
	return run, func() { p.close() }, nil
}
