package federation_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest/fedtest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// traced starts cfg's gateway on ln with a tracer that records its spans
// in memory.
func traced(t *testing.T, cfg *federation.Config, ln net.Listener, extra map[string]federation.Handler) (*gw, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) // after the node's shutdown
	n := fedtest.Start(t, cfg, ln, federation.Options{Handlers: extra, TracerProvider: tp})
	g := &gw{Node: n, cfg: cfg, ln: ln}
	return g, rec
}

// One delegate from A, whose chosen agent on B delegates on to C, is one
// trace: each gateway's spans hang under the span of the gateway before.
func TestOneTraceAcrossThreeGateways(t *testing.T) {
	lnA, lnB, lnC := listen(t), listen(t), listen(t)
	_, recC := traced(t, newConfig(t, "gw-c", "agent-c", "stats"), lnC, nil)

	cfgB := newConfig(t, "gw-b", "agent-b", "plan")
	cfgB.Federation.Peers = []federation.PeerConfig{peerConf("c", "agent-c", lnC, "stats")}
	var b *gw
	planner := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		r, err := b.Delegate(ctx, federation.DelegateRequest{RequiredCapabilities: []string{"stats"}, Task: "numbers for " + msg.Content})
		if err != nil {
			return nil, err
		}
		if err := r.Err(); err != nil {
			return nil, err
		}
		return &federation.Answer{Content: "plan: " + r.Response.Content}, nil
	})
	b, recB := traced(t, cfgB, lnB, map[string]federation.Handler{"agent-b": planner})

	cfgA := newConfig(t, "gw-a", "")
	cfgA.Federation.Peers = []federation.PeerConfig{peerConf("b", "agent-b", lnB, "plan")}
	a, recA := traced(t, cfgA, lnA, nil)

	r := mustTool(t, operator(t, a, ""), `{"action":"delegate","requiredCapabilities":["plan"],"task":"q3"}`)
	if at(r, "response", "content") != "plan: numbers for q3" {
		t.Fatalf("delegate: %v", r)
	}

	// Spans end as the answers travel back; C's and B's are done before A's.
	spans := map[string][]sdktrace.ReadOnlySpan{}
	for gwName, rec := range map[string]*tracetest.SpanRecorder{"a": recA, "b": recB, "c": recC} {
		for _, s := range rec.Ended() {
			spans[gwName+":"+s.Name()] = append(spans[gwName+":"+s.Name()], s)
		}
	}
	one := func(key string) sdktrace.ReadOnlySpan {
		t.Helper()
		if len(spans[key]) != 1 {
			t.Fatalf("%d spans %s; want 1 (all: %v)", len(spans[key]), key, keys(spans))
		}
		return spans[key][0]
	}
	action, outA := one("a:agentfed.action"), one("a:agentfed.relay.out")
	inB, agentB, outB := one("b:agentfed.relay.in"), one("b:agentfed.agent"), one("b:agentfed.relay.out")
	inC, agentC := one("c:agentfed.relay.in"), one("c:agentfed.agent")

	trace := action.SpanContext().TraceID()
	for _, link := range []struct {
		name          string
		child, parent sdktrace.ReadOnlySpan
	}{
		{"A relay under A's action", outA, action},
		{"B's relay in under A's relay out (across the wire)", inB, outA},
		{"B's agent under B's relay in", agentB, inB},
		{"B's relay out under B's agent (the agent's own delegate)", outB, agentB},
		{"C's relay in under B's relay out (across the wire)", inC, outB},
		{"C's agent under C's relay in", agentC, inC},
	} {
		if got := link.child.SpanContext().TraceID(); got != trace {
			t.Errorf("%s: trace %s; want %s", link.name, got, trace)
		}
		if got, want := link.child.Parent().SpanID(), link.parent.SpanContext().SpanID(); got != want {
			t.Errorf("%s: parent %s; want %s", link.name, got, want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, fmt.Sprint(k))
	}
	return out
}

// panickyTracer panics when the broadcast armed on it starts its
// second relay: an embedding application's tracer with a bug.
type panickyTracer struct {
	trace.Tracer
	armed  *atomic.Bool
	relays *atomic.Int32
}

func (p panickyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if name == "agentfed.relay.out" && p.armed.Load() && p.relays.Add(1) == 2 {
		panic("tracer bug")
	}
	return p.Tracer.Start(ctx, name, opts...)
}

type panickyProvider struct {
	trace.TracerProvider
	tracer panickyTracer
}

func (p panickyProvider) Tracer(string, ...trace.TracerOption) trace.Tracer { return p.tracer }

// TestBroadcastPanicFreesSlots: a panic while a broadcast starts its
// deliveries (here the application's tracer's, in the second one) leaves
// no outbound slot held: the deliveries already started are ended
// before the panic goes on to the caller (over the gateway protocol,
// the RPC layer recovers it), without waiting for their answers, and the
// next broadcast reaches every peer.
func TestBroadcastPanicFreesSlots(t *testing.T) {
	// The agents hold a message "hold" until the test ends: the
	// delivery started before the panic is never answered.
	gate := make(chan struct{})
	holding := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		if msg.Content == "hold" {
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
		return &federation.Answer{Content: "ok"}, nil
	})
	lnB, lnC := listen(t), listen(t)
	start(t, newConfig(t, "gw-b", "agent-b"), lnB, map[string]federation.Handler{"agent-b": holding})
	start(t, newConfig(t, "gw-c", "agent-c"), lnC, map[string]federation.Handler{"agent-c": holding})
	t.Cleanup(func() { close(gate) }) // before the gateways stop
	cfgA := newConfig(t, "gw-a", "")
	cfgA.Federation.DefaultTimeoutMs = 600_000 // far past the test's own wait below
	cfgA.Federation.Peers = []federation.PeerConfig{peerConf("b", "agent-b", lnB), peerConf("c", "agent-c", lnC)}
	lnA := listen(t)
	tracer := panickyTracer{Tracer: noop.NewTracerProvider().Tracer(""), armed: new(atomic.Bool), relays: new(atomic.Int32)}
	a := fedtest.Start(t, cfgA, lnA, federation.Options{TracerProvider: panickyProvider{noop.NewTracerProvider(), tracer}})
	ctx := context.Background()
	broadcast := func(content string) (res []federation.Result, err error, panicked any) {
		defer func() { panicked = recover() }()
		res, err = a.Broadcast(ctx, federation.BroadcastRequest{Message: content})
		return res, err, nil
	}
	if res, err, p := broadcast("hi"); err != nil || p != nil || len(res) != 2 { // both connected
		t.Fatalf("first broadcast: %v, %v, panic %v", res, err, p)
	}
	tracer.armed.Store(true)
	panicked := make(chan any, 1)
	go func() {
		_, _, p := broadcast("hold")
		panicked <- p
	}()
	select {
	case p := <-panicked:
		if p != "tracer bug" {
			t.Fatalf("broadcast with the tracer's bug: panic %v; want the tracer's", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("broadcast with the tracer's bug: no panic after 20 s; it waits for the answer of the delivery started before it")
	}
	tracer.armed.Store(false)
	for _, peer := range []string{"b", "c"} {
		if busy := federation.OutboundBusy(a, peer); busy != 0 {
			t.Errorf("after the panic, %d outbound slots to %s are held; want 0", busy, peer)
		}
	}
	res, err, p := broadcast("hi")
	if err != nil || p != nil || len(res) != 2 {
		t.Fatalf("broadcast after the panic: %v, %v, panic %v", res, err, p)
	}
	for _, r := range res {
		if r.Status != federation.StatusOK {
			t.Errorf("broadcast after the panic: %s %s %v; want ok", r.PeerID, r.Status, r.Error)
		}
	}
}
