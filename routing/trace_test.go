package routing

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// spanContexts is a backend that answers one record and keeps the span context it was asked in.
type spanContexts struct {
	mu   sync.Mutex
	seen []trace.SpanContext
}

func (s *spanContexts) backend() adapters.Backend {
	return adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		s.mu.Lock()
		s.seen = append(s.seen, trace.SpanContextFromContext(ctx))
		s.mu.Unlock()
		return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "echo", Fields: []siobroker.Field{{Name: "x", Value: "1"}}}}}, nil
	})
}

func (s *spanContexts) get() []trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]trace.SpanContext(nil), s.seen...)
}

func traced(broker, adapter trace.TracerProvider) envOption {
	return func(c *envConfig) { c.dispatcher.TracerProvider, c.adapter.TracerProvider = broker, adapter }
}

// ended waits for a span named name among rec's ended ones: the adapter ends its span after
// publishing the answer, which the dispatcher may have before.
func ended(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, s := range rec.Ended() {
			if s.Name() == name {
				return s
			}
		}
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	t.Fatalf("no span %q ended; ended: %v", name, names)
	return nil
}

// TestTraceCrossesTheMessage: the broker's and the adapter's spans are made by two providers, and
// the trace context goes from one to the other only in the service message's metadata. The
// adapter's consumer span is the child of the broker's publish, the backend is asked under it,
// the answer still authenticates (the MAC does not cover traceparent), and no span carries the
// subject.
func TestTraceCrossesTheMessage(t *testing.T) {
	brokerSpans, adapterSpans := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	brokerTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(brokerSpans))
	adapterTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(adapterSpans))
	var asked spanContexts
	env := newTestEnv(t, map[int]adapters.Backend{5: asked.backend()}, traced(brokerTP, adapterTP))

	const iin = "900101300123"
	ctx, root := brokerTP.Tracer("test").Start(context.Background(), "request")
	out := env.dispatcher.Dispatch(ctx, []schemas.ServiceRequest{request("r-trace", 5, iin)}, timeouts(5*time.Second, nil))
	root.End()
	if out[0].Result.Status != siobroker.StatusOK {
		t.Fatalf("result %+v: the traced message did not authenticate or was not answered", out[0].Result)
	}

	leg := ended(t, brokerSpans, "service 005")
	publish := ended(t, brokerSpans, "publish "+schemas.ServiceTopic(5))
	process := ended(t, adapterSpans, "process "+schemas.ServiceTopic(5))
	traceID := root.SpanContext().TraceID()
	if leg.Parent().SpanID() != root.SpanContext().SpanID() || publish.Parent().SpanID() != leg.SpanContext().SpanID() {
		t.Errorf("broker spans: leg under %s, publish under %s; want the request, then the leg", leg.Parent().SpanID(), publish.Parent().SpanID())
	}
	if process.SpanContext().TraceID() != traceID {
		t.Errorf("adapter's trace %s, broker's %s", process.SpanContext().TraceID(), traceID)
	}
	if !process.Parent().IsRemote() || process.Parent().SpanID() != publish.SpanContext().SpanID() {
		t.Errorf("adapter's span under %+v, want the remote publish span %s", process.Parent(), publish.SpanContext().SpanID())
	}
	if process.SpanKind() != trace.SpanKindConsumer || publish.SpanKind() != trace.SpanKindProducer {
		t.Errorf("kinds: publish %s, process %s", publish.SpanKind(), process.SpanKind())
	}
	if seen := asked.get(); len(seen) != 1 || seen[0].SpanID() != process.SpanContext().SpanID() {
		t.Errorf("the backend was asked under %+v, want the consumer span %s", seen, process.SpanContext().SpanID())
	}
	attrs := map[string]string{}
	for _, s := range []sdktrace.ReadOnlySpan{leg, publish, process} {
		for _, kv := range s.Attributes() {
			if kv.Value.String() == iin {
				t.Errorf("span %q carries the subject's IIN in %s", s.Name(), kv.Key)
			}
			attrs[s.Name()+" "+string(kv.Key)] = kv.Value.String()
		}
	}
	for k, want := range map[string]string{
		"service 005 sio.status": "ok", "service 005 sio.request_id": "r-trace", "service 005 sio.service": "5",
		"process sio.service.005 sio.status": "ok", "process sio.service.005 sio.request_id": "r-trace",
		"publish sio.service.005 messaging.destination.name": "sio.service.005",
	} {
		if attrs[k] != want {
			t.Errorf("%s = %q, want %q", k, attrs[k], want)
		}
	}
}

// TestTraceOffCarriesTheCallerOn: with tracing off on both sides (OpenTelemetry's no-op providers),
// nothing is recorded, but the caller's trace context still reaches the backend through the
// message, so that a source the adapter calls continues the caller's trace.
func TestTraceOffCarriesTheCallerOn(t *testing.T) {
	var asked spanContexts
	env := newTestEnv(t, map[int]adapters.Backend{5: asked.backend()}, traced(noop.NewTracerProvider(), noop.NewTracerProvider()))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
	out := env.dispatcher.Dispatch(ctx, []schemas.ServiceRequest{request("r-off", 5, "900101300123")}, timeouts(5*time.Second, nil))
	if out[0].Result.Status != siobroker.StatusOK {
		t.Fatalf("result %+v", out[0].Result)
	}
	seen := asked.get()
	if len(seen) != 1 || seen[0].TraceID() != tid || seen[0].SpanID() != sid {
		t.Errorf("the backend was asked under %+v, want the caller's %s/%s", seen, tid, sid)
	}
}
