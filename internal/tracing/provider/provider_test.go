package provider

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker/internal/tracing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// remote is a sampled span context from another process.
func remote() context.Context {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	return trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
}

// TestOffCarriesTheContextOn: without an endpoint nothing is recorded, but a span started under a
// caller's context is that context, so that what is injected downstream continues the caller's
// trace.
func TestOffCarriesTheContextOn(t *testing.T) {
	p, err := New(context.Background(), tracing.Config{SampleRatio: 1}, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tracing.Tracer(p).Start(remote(), "request")
	defer span.End()
	if span.IsRecording() {
		t.Error("a span is recorded with tracing off")
	}
	meta := map[string]string{}
	tracing.Inject(ctx, meta)
	if got, want := meta[tracing.Header], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Errorf("carried on %q, want the caller's %q", got, want)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestSampling: the broker decides by its ratio whatever a caller's flag says; an adapter follows
// its broker's decision.
func TestSampling(t *testing.T) {
	for _, tc := range []struct {
		name   string
		follow bool
		want   int
	}{{"broker", false, 0}, {"adapter", true, 1}} {
		exp := tracetest.NewInMemoryExporter()
		p, err := New(context.Background(), tracing.Config{SampleRatio: 0, ServiceName: "x"}, Options{FollowRemoteSampling: tc.follow, Exporter: exp}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		_, span := tracing.Tracer(p).Start(remote(), "request")
		span.End()
		if err := p.ForceFlush(context.Background()); err != nil { // Shutdown would empty the exporter
			t.Fatal(err)
		}
		spans := exp.GetSpans()
		defer p.Shutdown(context.Background())
		if len(spans) != tc.want {
			t.Errorf("%s: %d spans recorded of a caller's sampled trace at ratio 0, want %d", tc.name, len(spans), tc.want)
		}
		for _, s := range spans {
			if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("%s: trace %s, want the caller's", tc.name, s.SpanContext.TraceID())
			}
			if v, ok := s.Resource.Set().Value("service.name"); !ok || v.AsString() != "x" {
				t.Errorf("%s: service.name %v", tc.name, v)
			}
		}
	}
}
