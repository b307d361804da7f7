package bench

import (
	"context"
	"fmt"
	"time"
)

// rttNames are the round-trip measurements, measured together.
var rttNames = []string{RelayRTT, RawWSRTT, NATSRTT, NATSRelayRTT, A2ARTT}

// rttCase is one of the round-trip measurements: start sets it up and
// returns one round trip as op, and stop to tear it down.
type rttCase struct {
	note  string
	start func(ctx context.Context, o *Options, s *sample) (op func(context.Context) error, stop func(), err error)
}

var rttCases = map[string]rttCase{
	RelayRTT:     {"sequential Node.Send main gateway -> peer gateway -> echo agent -> back, over one pooled connection", startRelayRTT},
	RawWSRTT:     {"bare coder/websocket echo of the same frame, JSON-decoded on both sides: the floor", startRawWSRTT},
	A2ARTT:       {"a2a-go client SendMessage -> a2a-go JSON-RPC echo agent on 127.0.0.1 -> back, the same content", startA2ARTT},
	NATSRTT:      {"nats.go Request -> embedded nats-server on 127.0.0.1 -> responder connection -> back, JSON-decoded on both sides", startNATSRTT},
	NATSRelayRTT: {"sequential Node.Send main gateway -> NATS (embedded in main) -> peer gateway -> echo agent -> back: federation.transport nats", startNATSRelayRTT},
}

// measureRTTs measures the named round trips interleaved: each is warmed
// up, then they take turns in short slices until each has had o.Duration.
// The machine's drift (other load, CPU frequency) thereby affects them
// alike, and their ratios hold still better than their absolute figures.
func measureRTTs(ctx context.Context, o *Options, s *sample, names []string) []Result {
	type run struct {
		Result
		op  func(context.Context) error
		l   latencies
		cpu cpuMeter
	}
	runs := make([]*run, len(names))
	for i, name := range names {
		c := rttCases[name]
		r := &run{Result: Result{Name: name, Note: c.note}}
		runs[i] = r
		op, stop, err := c.start(ctx, o, s)
		if err != nil {
			r.Error = err.Error()
			continue
		}
		defer stop()
		if err := repeat(ctx, warmup(o.Duration), op); err != nil {
			r.Error = fmt.Sprintf("warm-up: %v", err)
			continue
		}
		r.op, r.l = op, make(latencies, 0, 1<<14)
	}
	k := slicesOf(o.Duration)
	for range k {
		for _, r := range runs {
			if r.Error != "" {
				continue
			}
			var err error
			r.cpu.start()
			r.l, err = record(ctx, o.Duration/time.Duration(k), r.l, r.op)
			r.cpu.stop()
			if err != nil {
				r.Error = err.Error()
			}
		}
	}
	out := make([]Result, len(runs))
	for i, r := range runs {
		if r.Error == "" {
			r.l.addTo(&r.Result, "")
			r.cpu.addTo(&r.Result, "cpu-per-op", float64(len(r.l)))
		}
		out[i] = r.Result
	}
	return out
}
