// Package provider makes the TracerProvider of a broker or adapter process from its tracing
// configuration (tracing.Config): the OpenTelemetry SDK with a batching OTLP/HTTP exporter when
// an endpoint is configured, and OpenTelemetry's no-op provider when none is. Only the wiring
// (internal/app, internal/cli) imports it; the instrumented packages know the API alone.
package provider

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sio-pso/siobroker/internal/tracing"
)

// Options are what differs between the processes, beside their configuration.
type Options struct {
	// FollowRemoteSampling makes a span whose parent came from another process recorded exactly
	// when its parent was: right for an adapter, whose parent is its broker's span. The broker's
	// remote parents are its clients', from outside: following them would let any caller have
	// every request it sends recorded, so the broker decides by SampleRatio on the trace id
	// whatever the caller's flag says, and keeps only the caller's trace id.
	FollowRemoteSampling bool
	// InstanceID is service.instance.id (the broker's amqp.instance, the adapter's --instance);
	// "": none.
	InstanceID string
	// Exporter replaces the OTLP exporter (tests: tracetest.InMemoryExporter). Nil: OTLP/HTTP to
	// the configured endpoint.
	Exporter sdktrace.SpanExporter
}

// Provider is a process's TracerProvider and how to stop it.
type Provider struct {
	trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil when tracing is off
}

// New returns the TracerProvider of cfg, which must have passed Problems. With no endpoint (and no
// Options.Exporter) it is OpenTelemetry's no-op provider: no span is made or recorded, and a
// span started under a remote parent is that parent again, so that the trace context a caller
// sent is carried on unchanged. Export errors are logged to logger, never returned to a request.
func New(ctx context.Context, cfg tracing.Config, opts Options, logger *slog.Logger) (*Provider, error) {
	exporter := opts.Exporter
	if exporter == nil {
		if !cfg.Enabled() {
			return &Provider{TracerProvider: noop.NewTracerProvider()}, nil
		}
		endpoint, err := cfg.ExportURL()
		if err != nil {
			return nil, fmt.Errorf("tracing.otlp_endpoint: %w", err)
		}
		// New connects lazily: a collector that is down costs dropped spans, not the start.
		if exporter, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint)); err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter to %s: %w", endpoint, err)
		}
	}
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName(cmp.Or(cfg.ServiceName, "siobroker")))}
	if opts.InstanceID != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceInstanceID(opts.InstanceID)))
	}
	res, err := resource.New(ctx, append(attrs, resource.WithSchemaURL(semconv.SchemaURL))...)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	ratio := sdktrace.TraceIDRatioBased(cfg.SampleRatio)
	sampler := sdktrace.ParentBased(ratio)
	if !opts.FollowRemoteSampling {
		sampler = sdktrace.ParentBased(ratio, sdktrace.WithRemoteParentSampled(ratio), sdktrace.WithRemoteParentNotSampled(ratio))
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing: spans not exported", "error", err)
	}))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithSampler(sampler), sdktrace.WithResource(res))
	return &Provider{TracerProvider: sdk, sdk: sdk}, nil
}

// Shutdown exports the spans still held and stops the exporter, within ctx.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing: shut down: %w", err)
	}
	return nil
}

// ForceFlush exports the spans ended so far (tests).
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil || p.sdk == nil {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}
