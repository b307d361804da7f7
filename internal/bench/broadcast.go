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
		b, err := broadcastTimes(ctx, o, gws, peers[:n], s, d)
		if err != nil {
			return fail(r, fmt.Errorf("broadcast to %d peers: %w", n, err))
		}
		l := b.latencies
		slices.Sort(l)
		prefix := fmt.Sprintf("n%d-", n)
		r.add(prefix+"p50", micros(l.percentile(50)), unitMicros)
		r.add(prefix+"p99", micros(l.percentile(99)), unitMicros)
		r.add(prefix+"per-peer", micros(l.percentile(50))/float64(n), unitMicros)
		r.add(prefix+"samples", float64(len(l)), unitCount)
		b.cpu.addTo(&r, prefix+"cpu-per-peer", float64(len(l)*n))
		b.relayCPU.addTo(&r, prefix+"relay-cpu-per-op", float64(b.relays))
	}
	return r
}

// broadcastRun is what broadcastTimes measured for one size: each
// broadcast's time and the process's CPU time over them, and the CPU time
// of sequential relays in the same process, taking turns with them.
type broadcastRun struct {
	latencies latencies
	cpu       cpuMeter
	relays    int
	relayCPU  cpuMeter
}

// broadcastTimes starts a main gateway knowing peers and times its
// broadcasts for d, after a warm-up that dials every peer. Between slices
// of broadcasts, the same main gateway relays to the first peer for as
// long: relay-rtt's round trip, but in the broadcast's process, with the
// same gateways running (their heaps for the collector to mark, their
// timers). A broadcast peer's CPU is compared with such a relay's. The
// slices are as long as each other, so that the work one leaves to the
// next (a collection under way, audit logs flushed every 50 ms) is
// charged to each alike.
func broadcastTimes(ctx context.Context, o *Options, gws *gateways, peers []federation.PeerConfig, s *sample, d time.Duration) (*broadcastRun, error) {
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
	relays := 0
	relay := func(ctx context.Context) error {
		relays++
		return send(ctx, main, peers[0].ID, s.content)
	}
	if err := repeat(ctx, warmup(d), op); err != nil {
		return nil, err
	}
	if err := repeat(ctx, warmup(d), relay); err != nil {
		return nil, err
	}
	b := &broadcastRun{latencies: make(latencies, 0, 1<<12)}
	k := slicesOf(d)
	for range k {
		b.cpu.start()
		b.latencies, err = record(ctx, d/time.Duration(k), b.latencies, op)
		b.cpu.stop()
		if err != nil {
			return nil, err
		}
		relays = 0
		b.relayCPU.start()
		err = repeat(ctx, d/time.Duration(k), relay)
		b.relayCPU.stop()
		if err != nil {
			return nil, fmt.Errorf("relay to %s: %w", peers[0].ID, err)
		}
		b.relays += relays
	}
	return b, nil
}
