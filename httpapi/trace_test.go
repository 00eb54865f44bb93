package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
)

// TestRequestSpan: a POSTed request gets a server span that continues the caller's traceparent
// (without its tracestate), is the parent of what the pipeline does, and names the request's ids
// and its outcome; a refusal names its code.
func TestRequestSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var inPipeline trace.SpanContext
	p := &fakePipeline{handle: func(ctx context.Context, body io.Reader, _ string) (*broker.Reply, broker.Request, error) {
		inPipeline = trace.SpanContextFromContext(ctx)
		if b, _ := io.ReadAll(body); strings.Contains(string(b), "refuse") {
			return nil, broker.Request{RequestID: "r2", MessageID: "m2"}, siobroker.Errorf(siobroker.CodeNotSOAP, "no")
		}
		return &broker.Reply{Bytes: []byte("<reply/>"), MessageID: "r1", RequestID: "m1"}, broker.Request{}, nil
	}}
	srv := httptest.NewServer(newHandler(t, Config{Endpoint: endpoint, PublicURL: publicURL, Clock: fixedClock{time.Now()},
		Logger: slog.New(slog.DiscardHandler), TracerProvider: tp}, p))
	defer srv.Close()

	post := func(body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		req.Header.Set("tracestate", "vendor=secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post("<answer/>")
	post("<refuse/>")

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want one per request", len(spans))
	}
	for i, want := range []map[string]string{
		{"sio.request_id": "r1", "sio.message_id": "m1", "sio.outcome": "answered", "http.request.method": "POST"},
		{"sio.request_id": "r2", "sio.message_id": "m2", "sio.outcome": "refused", "sio.code": string(siobroker.CodeNotSOAP)},
	} {
		s := spans[i]
		if s.Name() != "POST "+endpoint || s.SpanKind() != trace.SpanKindServer {
			t.Errorf("span %d: %q of kind %s", i, s.Name(), s.SpanKind())
		}
		if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("span %d: trace %s under %s, want the caller's", i, s.SpanContext().TraceID(), s.Parent().SpanID())
		}
		if s.SpanContext().TraceState().Len() != 0 {
			t.Errorf("span %d: the caller's tracestate %q was kept", i, s.SpanContext().TraceState())
		}
		got := map[string]string{}
		for _, kv := range s.Attributes() {
			got[string(kv.Key)] = kv.Value.String()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("span %d: %s = %q, want %q", i, k, got[k], v)
			}
		}
	}
	if inPipeline.SpanID() != spans[1].SpanContext().SpanID() {
		t.Errorf("the pipeline ran under %s, want the request's span %s", inPipeline.SpanID(), spans[1].SpanContext().SpanID())
	}
}
