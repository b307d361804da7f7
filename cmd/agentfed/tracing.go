package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/agentfed/agentfed/federation"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// tracerProvider returns an OpenTelemetry tracer provider that exports
// spans over OTLP/HTTP, configured by the standard OTEL_* variables, when
// they ask for traces; else nil: tracing is off by default. Traces are on
// with OTEL_TRACES_EXPORTER=otlp, or with an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and
// no OTEL_TRACES_EXPORTER; OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turns them off. The exporter, sampler
// (OTEL_TRACES_SAMPLER), batching (OTEL_BSP_*) and resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) read their own variables.
func tracerProvider(ctx context.Context, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	on, err := tracingWanted()
	if err != nil || !on {
		return nil, err
	}
	proto := cmp.Or(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "http/protobuf")
	if proto != "http/protobuf" {
		return nil, usageErr("OTEL_EXPORTER_OTLP_PROTOCOL=%.40q: agentfed exports traces over OTLP/HTTP only: set http/protobuf", proto)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, usageErr("OTLP trace exporter (OTEL_EXPORTER_OTLP_*): %v", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "agentfed"), attribute.String("service.version", federation.Version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, usageErr("OTEL_RESOURCE_ATTRIBUTES: %v", err)
	}
	log.Info("tracing on: spans exported over OTLP/HTTP",
		"endpoint", cmp.Or(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "default (localhost:4318)"))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

func tracingWanted() (bool, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exp := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
		return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
	default:
		return false, usageErr("OTEL_TRACES_EXPORTER=%.40q: agentfed exports traces with otlp (OTLP/HTTP), or none", exp)
	}
}

// shutdownTracing flushes the spans still batched.
func shutdownTracing(tp *sdktrace.TracerProvider, ctx context.Context, log *slog.Logger) {
	if tp == nil {
		return
	}
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans not exported at shutdown", "err", fmt.Sprint(err))
	}
}
