package bench

import (
	"context"
	"fmt"
	"time"
)

// countFunc runs one throughput case for d and returns how many messages
// completed and in how long.
type countFunc func(ctx context.Context, d time.Duration) (int64, time.Duration, error)

// measureThroughput measures messages per second with o.Concurrency
// requests in flight: through the federation over one peer connection and
// over o.Connections, and through the two baselines, NATS request-reply at
// the same concurrency and a pipelined bare WebSocket echo doing no JSON
// work. The four cases are set up together and take turns in slices until
// they have shared o.Duration.
func measureThroughput(ctx context.Context, o *Options, s *sample) Result {
	r := Result{Note: fmt.Sprintf("%d requests in flight; relay over 1 and %d peer connections to one echo gateway; "+
		"NATS: %d concurrent requesters, GOMAXPROCS queue responders; nats-relay: gateways over NATS as in nats-relay-rtt; raw WebSocket: one connection, %d-message window, no JSON",
		o.Concurrency, o.Connections, o.Concurrency, o.Concurrency)}
	cases := []struct {
		name  string
		start func() (countFunc, func(), error)
	}{
		{"relay-1conn", func() (countFunc, func(), error) { return startRelayThroughput(o, s, 1) }},
		{fmt.Sprintf("relay-%dconn", o.Connections), func() (countFunc, func(), error) { return startRelayThroughput(o, s, o.Connections) }},
		{"nats", func() (countFunc, func(), error) { return startNATSThroughput(o, s) }},
		{"nats-relay", func() (countFunc, func(), error) { return startNATSRelayThroughput(o, s) }},
		{"raw-ws-pipelined", func() (countFunc, func(), error) { return startPipeline(ctx, o.Concurrency, s) }},
	}
	d := o.Duration / time.Duration(len(cases))
	runs := make([]countFunc, len(cases))
	for i, c := range cases {
		run, stop, err := c.start()
		if err != nil {
			return fail(r, fmt.Errorf("%s: %w", c.name, err))
		}
		defer stop()
		if _, _, err := run(ctx, warmup(d)); err != nil {
			return fail(r, fmt.Errorf("%s warm-up: %w", c.name, err))
		}
		runs[i] = run
	}
	n := make([]int64, len(cases))
	elapsed := make([]time.Duration, len(cases))
	k := slicesOf(d)
	for range k {
		for i, run := range runs {
			m, e, err := run(ctx, d/time.Duration(k))
			if err != nil {
				return fail(r, fmt.Errorf("%s: %w", cases[i].name, err))
			}
			n[i] += m
			elapsed[i] += e
		}
	}
	r.add("in-flight", float64(o.Concurrency), unitCount)
	for i, c := range cases {
		r.add(c.name, float64(n[i])/elapsed[i].Seconds(), unitRate)
	}
	return r
}
