package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// caller is a span context as another process sends it: sampled, with vendor data.
func caller(t *testing.T) trace.SpanContext {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("vendor=secret")
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
}

// TestMetadataRoundTrip: the trace context written into a message's metadata is the one read
// back on the other side, and nothing else of the metadata is touched.
func TestMetadataRoundTrip(t *testing.T) {
	sc := caller(t)
	meta := map[string]string{"sio_request_id": "r1"}
	Inject(trace.ContextWithSpanContext(context.Background(), sc), meta)
	if got, want := meta[Header], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Errorf("traceparent %q, want %q", got, want)
	}
	if meta["sio_request_id"] != "r1" || len(meta) != 3 { // traceparent, tracestate and the id
		t.Errorf("metadata %v", meta)
	}
	got := trace.SpanContextFromContext(Extract(context.Background(), meta))
	if !got.IsRemote() || got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() {
		t.Errorf("extracted %+v, want the injected %+v", got, sc)
	}

	// No span: nothing written. Garbage: nothing read.
	empty := map[string]string{}
	Inject(context.Background(), empty)
	if len(empty) != 0 {
		t.Errorf("Inject without a span wrote %v", empty)
	}
	if sc := trace.SpanContextFromContext(Extract(context.Background(), map[string]string{Header: "00-nonsense"})); sc.IsValid() {
		t.Errorf("a malformed traceparent was read as %+v", sc)
	}
}

// TestExtractHTTPDropsTraceState: a caller's trace id and span id are continued, its tracestate
// (vendor data of the caller's choosing) is not carried on.
func TestExtractHTTPDropsTraceState(t *testing.T) {
	h := http.Header{}
	InjectHTTP(trace.ContextWithSpanContext(context.Background(), caller(t)), h)
	if h.Get("tracestate") == "" {
		t.Fatal("the caller's header has no tracestate to drop")
	}
	sc := trace.SpanContextFromContext(ExtractHTTP(context.Background(), h))
	if sc.TraceID() != caller(t).TraceID() || sc.SpanID() != caller(t).SpanID() || !sc.IsRemote() {
		t.Errorf("extracted %+v", sc)
	}
	if sc.TraceState().Len() != 0 {
		t.Errorf("tracestate %q carried on", sc.TraceState().String())
	}
	if sc := trace.SpanContextFromContext(ExtractHTTP(context.Background(), http.Header{})); sc.IsValid() {
		t.Errorf("no header gave %+v", sc)
	}
}

func TestConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" for none
		url  string
	}{
		{Config{SampleRatio: 1}, "", ""},
		{Config{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 0.1}, "", "http://127.0.0.1:4318/v1/traces"},
		{Config{OTLPEndpoint: "https://otel.example/", SampleRatio: 0}, "", "https://otel.example/v1/traces"},
		{Config{OTLPEndpoint: "https://otel.example/custom/traces", SampleRatio: 1}, "", "https://otel.example/custom/traces"},
		{Config{OTLPEndpoint: "127.0.0.1:4318", SampleRatio: 1}, "tracing.otlp_endpoint: ", ""},
		{Config{OTLPEndpoint: "grpc://otel:4317", SampleRatio: 1}, "tracing.otlp_endpoint: ", ""},
		{Config{OTLPEndpoint: "https://user:pw@otel.example", SampleRatio: 1}, "OTEL_EXPORTER_OTLP_HEADERS", ""},
		{Config{SampleRatio: 1.5}, "tracing.sample_ratio: 1.5", ""},
		{Config{SampleRatio: -0.1}, "tracing.sample_ratio: ", ""},
	} {
		errs := tc.cfg.Problems("tracing")
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%+v: %v", tc.cfg, errs)
		case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want)):
			t.Errorf("%+v: %v, want one error with %q", tc.cfg, errs, tc.want)
		}
		if tc.url != "" {
			if got, err := tc.cfg.ExportURL(); err != nil || got != tc.url {
				t.Errorf("%+v: ExportURL %q, %v; want %q", tc.cfg, got, err, tc.url)
			}
		}
	}
}
