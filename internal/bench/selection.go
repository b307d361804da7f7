package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// measureDelegateSelect times how Delegate picks a peer among
// o.SelectPeers registered peers with o.SelectCapabilities capabilities.
//
// Peer i has capabilities c(i), c(i+1) and c(i+2) (mod the capability
// count), so each capability is held by 3P/C peers and c(k), c(k+3) by
// none. No public API times the selection alone, so three Delegate calls
// bracket it:
//   - miss: a capability no peer has (the index lookup only);
//   - scan: c(5) and c(8), which no peer has together: the index narrows
//     to the rarest capability's 3P/C peers, each is checked, none
//     qualifies. This is the selection work without a delivery, and the
//     figure the target applies to;
//   - hit: c(5) and c(7), held by P/C peers whose gateway is a real echo
//     gateway; hit-overhead is its p50 minus that of a Send to those same
//     peers in turn, timed alternately with it.
func measureDelegateSelect(ctx context.Context, o *Options, s *sample) Result {
	p, c := o.SelectPeers, o.SelectCapabilities
	r := Result{Note: fmt.Sprintf("Delegate among %d peers with %d capabilities (3 each), heartbeats off; scan walks the rarest capability's %d peers and finds none; hit delivers to one of %d candidates",
		p, c, 3*p/c, p/c)}
	gws, err := newGateways(o.Logger)
	if err != nil {
		return fail(r, err)
	}
	defer gws.close()
	echo, err := gws.start("bench-echo", true, nil)
	if err != nil {
		return fail(r, err)
	}
	capName := func(k int) string { return fmt.Sprintf("cap-%03d", k%c) }
	peers := make([]federation.PeerConfig, p)
	for i := range peers {
		peers[i] = echoPeer(fmt.Sprintf("peer-%05d", i), echo, capName(i), capName(i+1), capName(i+2))
	}
	t0 := time.Now()
	// With heartbeats on, main would dial every one of its peers each
	// interval (5s by default) in the middle of the measurement.
	main, err := gws.start("bench-main", false, peers, func(c *federation.Config) { c.Gateway.HeartbeatMs = int(time.Hour / time.Millisecond) })
	if err != nil {
		return fail(r, err)
	}
	r.add("peers", float64(p), unitCount)
	r.add("capabilities", float64(c), unitCount)
	r.add("startup", millis(time.Since(t0)), unitMillis)

	d := o.Duration / 3
	for _, m := range []struct {
		name string
		caps []string
	}{{"miss", []string{"no-such-capability"}}, {"scan", []string{capName(5), capName(8)}}} {
		req := federation.DelegateRequest{RequiredCapabilities: m.caps, Task: s.content}
		l, err := timeLoop(ctx, d, func(ctx context.Context) error {
			_, err := main.Delegate(ctx, req)
			if gateway.CodeOf(err) != federation.CodeNoCapablePeer {
				return fmt.Errorf("delegate to %q: %v; want NO_CAPABLE_PEER", m.caps, err)
			}
			return nil
		})
		if err != nil {
			return fail(r, err)
		}
		slices.Sort(l)
		r.add(m.name+"-p50", micros(l.percentile(50)), unitMicros)
		r.add(m.name+"-p99", micros(l.percentile(99)), unitMicros)
	}
	var capable []string // the peers holding c(5) and c(7)
	for i := 5; i < p; i += c {
		capable = append(capable, fmt.Sprintf("peer-%05d", i))
	}
	hit, sent, err := delegateHits(ctx, main, capable, []string{capName(5), capName(7)}, s, d)
	if err != nil {
		return fail(r, err)
	}
	r.add("hit-p50", micros(hit.percentile(50)), unitMicros)
	r.add("send-p50", micros(sent.percentile(50)), unitMicros)
	r.add("hit-overhead", micros(hit.percentile(50)-sent.percentile(50)), unitMicros)
	return r
}

// delegateHits alternates a Delegate that finds the capable candidates with
// a Send to each of them in turn for d, after a warm-up that dials every
// candidate, and returns both sorted latencies.
func delegateHits(ctx context.Context, main *federation.Node, capable, caps []string, s *sample, d time.Duration) (hit, sent latencies, err error) {
	req := federation.DelegateRequest{RequiredCapabilities: caps, Task: s.content}
	delegate := func(ctx context.Context) error {
		res, err := main.Delegate(ctx, req)
		switch {
		case err != nil:
			return err
		case res.Status != federation.StatusOK:
			return fmt.Errorf("%w: delegate: %s %v", errNotOK, res.Status, res.Error)
		case len(res.Candidates) != len(capable):
			return fmt.Errorf("delegate found %d candidates, want %d", len(res.Candidates), len(capable))
		}
		return nil
	}
	for range 2 * len(capable) {
		if err := delegate(ctx); err != nil {
			return nil, nil, err
		}
	}
	for i, end := 0, time.Now().Add(d); time.Now().Before(end) || len(hit) == 0; i++ {
		t0 := time.Now()
		if err := delegate(ctx); err != nil {
			return nil, nil, err
		}
		t1 := time.Now()
		if err := send(ctx, main, capable[i%len(capable)], s.content); err != nil {
			return nil, nil, err
		}
		hit, sent = append(hit, t1.Sub(t0)), append(sent, time.Since(t1))
	}
	slices.Sort(hit)
	slices.Sort(sent)
	return hit, sent, ctx.Err()
}
