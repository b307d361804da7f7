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

// measureRelayRTT times sequential sends from a main gateway through a
// second gateway to its echo agent and back.
func measureRelayRTT(ctx context.Context, o *Options, s *sample) Result {
	r := Result{Note: "sequential Node.Send main -> peer gateway -> echo agent -> back, one pooled connection"}
	p, err := startRelayPair(o, 1)
	if err != nil {
		return fail(r, err)
	}
	defer p.close()
	l, err := timeLoop(ctx, o.Duration, func(ctx context.Context) error {
		return send(ctx, p.main, p.peers[0], s.content)
	})
	if err != nil {
		return fail(r, err)
	}
	l.addTo(&r, "")
	return r
}

// relayThroughput runs o.Concurrency concurrent senders spread over the
// pair's connections for d and returns messages per second.
func relayThroughput(ctx context.Context, o *Options, s *sample, connections int, d time.Duration) (float64, error) {
	p, err := startRelayPair(o, connections)
	if err != nil {
		return 0, err
	}
	defer p.close()
	var next atomic.Uint64
	return rate(ctx, o.Concurrency, d, func(ctx context.Context) error {
		peer := p.peers[int(next.Add(1))%len(p.peers)]
		return send(ctx, p.main, peer, s.content)
	})
}
