package bench

import (
	"context"
	"fmt"
)

// measureThroughput measures messages per second with o.Concurrency
// requests in flight: through the federation over one peer connection and
// over o.Connections, and through the two baselines, NATS request-reply at
// the same concurrency and a pipelined bare WebSocket echo doing no JSON
// work. The four cases share o.Duration.
func measureThroughput(ctx context.Context, o *Options, s *sample) Result {
	r := Result{Note: fmt.Sprintf("%d requests in flight; relay over 1 and %d peer connections to one echo gateway; "+
		"NATS with %d concurrent requesters and GOMAXPROCS queue responders; raw WebSocket: one connection, %d-message window, no JSON",
		o.Concurrency, o.Connections, o.Concurrency, o.Concurrency)}
	d := o.Duration / 4
	r.add("in-flight", float64(o.Concurrency), unitCount)
	cases := []struct {
		name string
		run  func() (float64, error)
	}{
		{"relay-1conn", func() (float64, error) { return relayThroughput(ctx, o, s, 1, d) }},
		{fmt.Sprintf("relay-%dconn", o.Connections), func() (float64, error) { return relayThroughput(ctx, o, s, o.Connections, d) }},
		{"nats", func() (float64, error) { return natsThroughput(ctx, o, s, d) }},
		{"raw-ws-pipelined", func() (float64, error) { return pipelinedWSThroughput(ctx, o.Concurrency, d, s) }},
	}
	for _, c := range cases {
		v, err := c.run()
		if err != nil {
			return fail(r, fmt.Errorf("%s: %w", c.name, err))
		}
		r.add(c.name, v, unitRate)
	}
	return r
}
