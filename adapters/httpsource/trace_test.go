package httpsource_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/adapters/httpsource"
)

// TestCallSpan: a call to the source is a client span under the caller's, and carries its trace
// context in the traceparent header; the span names the method, host and path, not the query
// that holds the subject.
func TestCallSpan(t *testing.T) {
	var traceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traceparent = r.Header.Get("traceparent")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"plate":"123ABC01"}]`))
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b, err := httpsource.New(httpsource.Spec{Service: 5, URL: srv.URL + "/vehicles", RecordType: "vehicle",
		Fields: map[string]string{"plate_number": "plate"}, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "process")
	if _, err := b.Query(ctx, adaptertest.Request(5, person1)); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var call sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			call = s
		}
	}
	if call == nil {
		t.Fatal("no client span")
	}
	if call.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("the call's span is under %s, want the caller's %s", call.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	if want := "00-" + call.SpanContext().TraceID().String() + "-" + call.SpanContext().SpanID().String() + "-01"; traceparent != want {
		t.Errorf("the source got traceparent %q, want %q", traceparent, want)
	}
	got := map[string]string{}
	for _, kv := range call.Attributes() {
		got[string(kv.Key)] = kv.Value.String()
		if strings.Contains(kv.Value.String(), person1.IIN) {
			t.Errorf("%s carries the subject: %q", kv.Key, kv.Value.String())
		}
	}
	if got["http.request.method"] != "GET" || got["url.path"] != "/vehicles" || got["http.response.status_code"] != "200" || got["server.address"] != "127.0.0.1" {
		t.Errorf("attributes %v", got)
	}
}
