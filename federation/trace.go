package federation

import (
	"context"

	"github.com/agentfed/agentfed/gateway"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing (OpenTelemetry) is off unless Options.TracerProvider is set:
// then a node records a span per tool action, per relay it sends, per
// relay it serves and per agent call, and carries the W3C trace context
// to the next gateway in RelayParams.Traceparent, so that one delegate
// through several gateways is one trace. With tracing off, the hot path
// does not touch OpenTelemetry at all.

const tracerName = "github.com/agentfed/agentfed/federation"

// maxTraceparent bounds the traceparent a peer may send: version 00 is 55
// characters; later versions may add fields.
const maxTraceparent = 256

var traceContext = propagation.TraceContext{}

// Span names.
const (
	spanAction   = "agentfed.action"
	spanRelayOut = "agentfed.relay.out"
	spanRelayIn  = "agentfed.relay.in"
	spanAgent    = "agentfed.agent"
)

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(tracerName, trace.WithInstrumentationVersion(Version))
}

// traceparentOf returns the W3C traceparent of ctx's span, or "".
func traceparentOf(ctx context.Context) string {
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// startRelayIn starts the span of a relayed message served here, as the
// child of the sender's span when its traceparent is valid.
func (n *Node) startRelayIn(ctx context.Context, id *gateway.Identity, p *RelayParams) (context.Context, trace.Span) {
	if tp := p.Traceparent; tp != "" && len(tp) <= maxTraceparent {
		ctx = traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
	}
	peer := labelUnauthenticated
	if id.Authenticated {
		peer = id.PeerID
	}
	attrs := []attribute.KeyValue{attribute.String("agentfed.peer", peer)}
	if m := p.Message; m != nil {
		attrs = append(attrs, attribute.String("agentfed.message_id", clip(m.MessageID, 64)),
			attribute.String("agentfed.correlation_id", clip(m.CorrelationID, 64)))
	}
	return n.tracer.Start(ctx, spanRelayIn, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// endSpan ends span, nil when tracing is off, with err's code as its
// status.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, gateway.CodeOf(err))
	}
	span.End()
}
