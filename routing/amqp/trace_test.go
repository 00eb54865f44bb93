package amqp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// TestTraceContextInHeaders: the W3C trace context the dispatcher puts in a service message's
// metadata crosses RabbitMQ as an AMQP header and comes out as the same metadata, so that the
// adapter's consumer span (its own provider's) is the child of the broker's publish, and the
// backend is asked under it.
func TestTraceContextInHeaders(t *testing.T) {
	cfg := testConfig(t, []int{5}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	brokerSpans, adapterSpans := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	brokerTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(brokerSpans))
	adapterTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(adapterSpans))

	var mu sync.Mutex
	var asked trace.SpanContext
	backend := adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		mu.Lock()
		asked = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		return siobroker.ServiceResult{}, nil
	})
	tr := newTransport(t, cfg)
	rt := newAdapterRuntime(t, routing.AdapterConfig{Name: "a1", Backends: map[int]adapters.Backend{5: backend}, Publisher: tr.Publisher(),
		TracerProvider: adapterTP})
	runRouter(t, func(r *message.Router) { rt.AddHandlers(r, tr.Subscriber()) })
	btr := newBroker(t, cfg, "broker-trace")
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: btr.Publisher(), ReplyTopic: btr.ReplyTopic(), TracerProvider: brokerTP})
	runRouter(t, func(r *message.Router) { d.AddHandlers(r, btr.Subscriber()) })

	ctx, root := brokerTP.Tracer("test").Start(ctxFor(t, 30*time.Second), "request")
	out := d.Dispatch(ctx, []schemas.ServiceRequest{{RequestID: "tr-1", MessageID: "m-1", Service: 5, Basis: siobroker.BasisCriminal,
		Subject: siobroker.Subject{IIN: "900101300123"}, SignerIIN: "750312300458"}}, func(int) time.Duration { return 20 * time.Second })
	root.End()
	if out[0].Result.Status != siobroker.StatusOK {
		t.Fatalf("result %+v", out[0].Result)
	}
	var publish, process sdktrace.ReadOnlySpan
	waitFor(t, 10*time.Second, func() bool {
		for _, s := range brokerSpans.Ended() {
			if s.SpanKind() == trace.SpanKindProducer {
				publish = s
			}
		}
		for _, s := range adapterSpans.Ended() {
			if s.SpanKind() == trace.SpanKindConsumer {
				process = s
			}
		}
		return publish != nil && process != nil
	}, "the publish and the consumer span")
	if process.SpanContext().TraceID() != root.SpanContext().TraceID() || !process.Parent().IsRemote() ||
		process.Parent().SpanID() != publish.SpanContext().SpanID() {
		t.Errorf("the adapter's span is %s under %+v; want trace %s under the publish %s", process.SpanContext().TraceID(), process.Parent(),
			root.SpanContext().TraceID(), publish.SpanContext().SpanID())
	}
	mu.Lock()
	defer mu.Unlock()
	if asked.SpanID() != process.SpanContext().SpanID() {
		t.Errorf("the backend was asked under %s, want the consumer span %s", asked.SpanID(), process.SpanContext().SpanID())
	}
}
