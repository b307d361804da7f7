package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The measurements, in the order Run performs them.
const (
	RelayRTT       = "relay-rtt"
	RawWSRTT       = "raw-ws-rtt"
	NATSRTT        = "nats-rtt"
	A2ARTT         = "a2a-rtt"
	NATSRelayRTT   = "nats-relay-rtt"
	Throughput     = "throughput"
	Broadcast      = "broadcast"
	DelegateSelect = "delegate-select"
	Durable        = "durable"
	NATSDurable    = "nats-durable"
	Memory         = "memory"
)

// Measurements lists every measurement name, in run order.
var Measurements = []string{RelayRTT, RawWSRTT, NATSRTT, NATSRelayRTT, A2ARTT, Throughput, Broadcast, DelegateSelect, Durable, NATSDurable, Memory}

// Options choose what Run measures and how long. The zero value measures
// everything at the sizes of the performance targets for 5s each.
type Options struct {
	// Duration is the time spent measuring each measurement, after a short
	// warm-up; a measurement with several cases splits it among them.
	// Broadcast spends as long again on the relays it is compared with.
	// Default 5s.
	Duration time.Duration
	// Only names the measurements to run; empty runs all of them.
	Only []string
	// Concurrency is how many requests are in flight in throughput.
	// Default 64.
	Concurrency int
	// Connections is N in "throughput over N connections". Default 4.
	Connections int
	// BroadcastSizes are the peer counts broadcast measures. Default 1, 16,
	// 64 and 256.
	BroadcastSizes []int
	// SelectPeers and SelectCapabilities size delegate-select's registry.
	// Defaults 10,000 and 200.
	SelectPeers, SelectCapabilities int
	// MemoryPeers is how many idle peer connections memory opens. Default
	// 2,000.
	MemoryPeers int
	// Progress, when set, receives a line as each measurement starts.
	Progress io.Writer
	// Logger receives the gateways' logs. Default: discard.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultDuration           = 5 * time.Second
	DefaultConcurrency        = 64
	DefaultConnections        = 4
	DefaultSelectPeers        = 10000
	DefaultSelectCapabilities = 200
	DefaultMemoryPeers        = 2000
)

// DefaultBroadcastSizes are the peer counts the broadcast targets name.
var DefaultBroadcastSizes = []int{1, 16, 64, 256}

// withDefaults returns o with every unset field defaulted, or an error
// naming a bad field.
func (o Options) withDefaults() (Options, error) {
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Connections <= 0 {
		o.Connections = DefaultConnections
	}
	if len(o.BroadcastSizes) == 0 {
		o.BroadcastSizes = DefaultBroadcastSizes
	}
	if o.SelectPeers <= 0 {
		o.SelectPeers = DefaultSelectPeers
	}
	if o.SelectCapabilities <= 0 {
		o.SelectCapabilities = DefaultSelectCapabilities
	}
	if o.MemoryPeers <= 0 {
		o.MemoryPeers = DefaultMemoryPeers
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for _, name := range o.Only {
		if !slices.Contains(Measurements, name) {
			return o, fmt.Errorf("bench: unknown measurement %q; pick from %s", name, strings.Join(Measurements, ", "))
		}
	}
	for _, n := range o.BroadcastSizes {
		if n <= 0 {
			return o, fmt.Errorf("bench: broadcast size %d must be positive", n)
		}
	}
	if o.SelectCapabilities < 4 {
		return o, fmt.Errorf("bench: SelectCapabilities %d must be at least 4", o.SelectCapabilities)
	}
	return o, nil
}

func (o *Options) wants(name string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, name) }

// Report is the outcome of one Run.
type Report struct {
	Machine Machine `json:"machine"`
	// Duration is the measuring time of each measurement.
	Duration string `json:"duration"`
	// MessageBytes is the size of the relay request frame; the raw
	// WebSocket and NATS baselines send messages of exactly this size.
	MessageBytes int      `json:"messageBytes"`
	Results      []Result `json:"results"`
	Targets      []Target `json:"targets"`
	Elapsed      string   `json:"elapsed"`
}

// Machine describes where the figures were measured.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpuModel,omitempty"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// Result is what one measurement found.
type Result struct {
	Name    string   `json:"name"`
	Figures []Figure `json:"figures,omitempty"`
	// Note says what was measured and what limits it.
	Note string `json:"note,omitempty"`
	// Skipped says why the measurement did not run.
	Skipped string `json:"skipped,omitempty"`
	// Error says why the measurement failed; its figures are then partial.
	Error string `json:"error,omitempty"`
}

// Figure is one number of a Result.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Figure returns the figure of r named name.
func (r *Result) Figure(name string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f, true
		}
	}
	return Figure{}, false
}

func (r *Result) add(name string, v float64, unit string) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: v, Unit: unit})
}

// Units of figures.
const (
	unitMicros = "µs"
	unitMillis = "ms"
	unitRate   = "msg/s"
	unitKiB    = "KiB"
	unitCount  = "count"
	unitRatio  = "x"
)

// Run performs the measurements o selects, one after the other, and
// computes the targets from their figures. A measurement that fails is
// reported in its Result and does not stop the others; Run returns an error
// only for bad options or a cancelled ctx.
func Run(ctx context.Context, o Options) (*Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	msg, err := newSample()
	if err != nil {
		return nil, err
	}
	rep := &Report{Machine: machine(), Duration: o.Duration.String(), MessageBytes: len(msg.frame)}
	steps := map[string]func(context.Context, *Options, *sample) Result{
		Throughput: measureThroughput, Broadcast: measureBroadcast, DelegateSelect: measureDelegateSelect,
		Durable: measureDurable, NATSDurable: measureNATSDurable, Memory: measureMemory,
	}
	for _, name := range Measurements {
		if !o.wants(name) || slices.ContainsFunc(rep.Results, func(r Result) bool { return r.Name == name }) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		runtime.GC()
		if slices.Contains(rttNames, name) {
			names := slices.DeleteFunc(slices.Clone(rttNames), func(n string) bool { return !o.wants(n) })
			fmt.Fprintf(o.Progress, "bench: %s\n", strings.Join(names, ", "))
			rep.Results = append(rep.Results, measureRTTs(ctx, &o, msg, names)...)
			continue
		}
		fmt.Fprintf(o.Progress, "bench: %s\n", name)
		r := steps[name](ctx, &o, msg)
		r.Name = name
		rep.Results = append(rep.Results, r)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Targets = targets(rep, &o)
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	return rep, nil
}

// Result returns the result of the measurement named name.
func (rep *Report) Result(name string) (*Result, bool) {
	for i := range rep.Results {
		if rep.Results[i].Name == name {
			return &rep.Results[i], true
		}
	}
	return nil, false
}

// Failed lists the measurements that ended with an error.
func (rep *Report) Failed() []string {
	var out []string
	for _, r := range rep.Results {
		if r.Error != "" {
			out = append(out, r.Name)
		}
	}
	return out
}

// fail records err in r and returns r.
func fail(r Result, err error) Result {
	r.Error = err.Error()
	return r
}
