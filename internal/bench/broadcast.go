package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// measureBroadcast times broadcasts from a main gateway to N peer
// gateways, each with its own echo agent and connection, until every reply
// is in, for each N of o.BroadcastSizes. The sizes share o.Duration.
func measureBroadcast(ctx context.Context, o *Options, s *sample) Result {
	sizes := slices.Sorted(slices.Values(o.BroadcastSizes))
	r := Result{Note: fmt.Sprintf("Node.Broadcast to N peer gateways (%d in-process federation.Nodes with echo agents), all replies collected", sizes[len(sizes)-1])}
	gws, err := newGateways(o.Logger)
	if err != nil {
		return fail(r, err)
	}
	defer gws.close()
	var peers []federation.PeerConfig
	for i := range sizes[len(sizes)-1] {
		id := fmt.Sprintf("peer-%03d", i)
		n, err := gws.start("bench-"+id, true, nil)
		if err != nil {
			return fail(r, err)
		}
		peers = append(peers, echoPeer(id, n))
	}
	d := o.Duration / time.Duration(len(sizes))
	for _, n := range sizes {
		var cpu cpuMeter
		l, err := broadcastTimes(ctx, o, gws, peers[:n], s, d, &cpu)
		if err != nil {
			return fail(r, fmt.Errorf("broadcast to %d peers: %w", n, err))
		}
		slices.Sort(l)
		prefix := fmt.Sprintf("n%d-", n)
		r.add(prefix+"p50", micros(l.percentile(50)), unitMicros)
		r.add(prefix+"p99", micros(l.percentile(99)), unitMicros)
		r.add(prefix+"per-peer", micros(l.percentile(50))/float64(n), unitMicros)
		r.add(prefix+"samples", float64(len(l)), unitCount)
		cpu.addTo(&r, prefix+"cpu-per-peer", float64(len(l)*n))
	}
	return r
}

// broadcastTimes starts a main gateway knowing peers and times its
// broadcasts for d, after a warm-up that dials every peer; cpu measures
// the process's CPU time while they are timed.
func broadcastTimes(ctx context.Context, o *Options, gws *gateways, peers []federation.PeerConfig, s *sample, d time.Duration, cpu *cpuMeter) (latencies, error) {
	main, err := gws.start(fmt.Sprintf("bench-main-%d", len(peers)), false, peers)
	if err != nil {
		return nil, err
	}
	defer gws.stop(main)
	req := federation.BroadcastRequest{Message: s.content}
	op := func(ctx context.Context) error {
		res, err := main.Broadcast(ctx, req)
		if err != nil {
			return err
		}
		if len(res) != len(peers) {
			return fmt.Errorf("%w: %d results for %d peers", errNotOK, len(res), len(peers))
		}
		for _, r := range res {
			if r.Status != federation.StatusOK {
				return fmt.Errorf("%w: peer %s: %s %v", errNotOK, r.PeerID, r.Status, r.Error)
			}
		}
		return nil
	}
	if err := repeat(ctx, warmup(d), op); err != nil {
		return nil, err
	}
	cpu.start()
	defer cpu.stop()
	return record(ctx, d, make(latencies, 0, 1<<12), op)
}
