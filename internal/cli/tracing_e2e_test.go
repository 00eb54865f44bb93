package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// otlpSpan is a span as an OTLP/HTTP export request carried it.
type otlpSpan struct {
	service               string // the resource's service.name
	traceID, id, parentID string // hex
	name                  string
	kind                  tracepb.Span_SpanKind
	attrs                 map[string]string
}

// otlpReceiver is a collector's OTLP/HTTP endpoint: it decodes the protobuf export requests
// posted to /v1/traces and keeps their spans.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []otlpSpan
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var export coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &export)
		}
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
			t.Errorf("OTLP export %s %s (%s): %v", req.Method, req.URL.Path, req.Header.Get("Content-Type"), err)
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.ResourceSpans {
			service := attrsOf(rs.GetResource().GetAttributes())["service.name"]
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, otlpSpan{service: service, traceID: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId),
						parentID: hex.EncodeToString(s.ParentSpanId), name: s.Name, kind: s.Kind, attrs: attrsOf(s.Attributes)})
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// attrsOf is OTLP key-values as text.
func attrsOf(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = fmt.Sprint(v.GetIntValue())
		case *commonpb.AnyValue_BoolValue:
			out[kv.Key] = fmt.Sprint(v.GetBoolValue())
		default:
			out[kv.Key] = v.GetStringValue()
		}
	}
	return out
}

// waitSpan waits for a span of trace traceID named name.
func (r *otlpReceiver) waitSpan(t *testing.T, traceID, name string) otlpSpan {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r.mu.Lock()
		for _, s := range r.spans {
			if s.traceID == traceID && s.name == name {
				r.mu.Unlock()
				return s
			}
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var got []string
	for _, s := range r.spans {
		got = append(got, s.traceID+" "+s.name)
	}
	t.Fatalf("the adapter exported no span %q of trace %s; it exported %v", name, traceID, got)
	return otlpSpan{}
}

func (r *otlpReceiver) all() []otlpSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]otlpSpan(nil), r.spans...)
}

// TestTraceSpansBrokerAndAdapterProcesses is issue 21's "a trace of one request spans both
// processes": the broker (in this process, its spans read with the SDK's span recorder) sends one
// signed request over the real RabbitMQ to a `siobroker adapter` process (the built binary,
// exporting its spans with the OTLP/HTTP exporter to a receiver here), which asks service 5 of an
// HTTP source. The trace context crosses between them only in the messages' metadata. The
// adapter's spans belong to the trace of the broker's request span, each under the broker's
// publish of its message; the source's call is a client span under the adapter's, and the source
// got its traceparent; no span anywhere names the subject, the signer or the case.
func TestTraceSpansBrokerAndAdapterProcesses(t *testing.T) {
	prefix := amqpPrefix(t)
	src := sharedBroker(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	copyDir(t, src.pki, pki)
	cfg := testConfig(dir)
	cfg.Transport = "amqp"
	cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance, cfg.AMQP.ClassicQueues = testAMQPURL, prefix, prefix+"broker", true
	brokerSpans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(brokerSpans))
	b, err := app.StartWith(context.Background(), cfg, siobroker.SystemClock{}, testLogger(), app.Options{TracerProvider: tp})
	if err != nil {
		t.Fatalf("start a broker on RabbitMQ: %v", err)
	}
	defer b.Close()

	var mu sync.Mutex
	var traceparents []string
	source := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparents = append(traceparents, r.Header.Get("traceparent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":{"vehicles":[{"plate":"TRACE01","vin":"XTA21099000000001","make":"LADA","year":2010,"registered":"2015-03-01"}]}}`)
	}))
	defer source.Close()
	receiver := newOTLPReceiver(t)

	file := filepath.Join(dir, "adapter.yaml")
	yaml := fmt.Sprintf("name: traced\ntransport: {amqp_url: %q, prefix: %q, prefetch: 1, concurrency: 2, message_key_file: %q}\n",
		testAMQPURL, prefix, adapterKey(t, cfg.MessageKeyPath(), "demo")) +
		fmt.Sprintf("tracing: {otlp_endpoint: %q}\n", receiver.srv.URL) +
		fmt.Sprintf("case_registries: {names: [erdr, courts, aisoip], demo_pki: %q}\n", pki) +
		vehicleAdapterBody(&vehicleSource{srv: source}, "/vehicles")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// The batch span processor's delay, from its standard variable: the spans come within the test.
	adapter := startProcess(t, "traced-adapter", []string{"OTEL_BSP_SCHEDULE_DELAY=100"}, "adapter", "--config", file)
	adapter.waitFor(t, "serving services", time.Minute)

	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, pki
	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	if code, out, errs := runSend(t, e.sendArgs(u, "--services", "5")...); code != sendExitOK || !strings.Contains(out, "\nservice 5: ok ") {
		t.Fatalf("send exited %d\n%s%s", code, out, errs)
	}

	// The broker's spans of the request.
	var request sdktrace.ReadOnlySpan
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range brokerSpans.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			request = s
		}
		byName[s.Name()] = s
	}
	if request == nil {
		t.Fatalf("no request span among the broker's %d", len(brokerSpans.Ended()))
	}
	traceID := request.SpanContext().TraceID().String()
	under := func(name string, parent sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
		t.Helper()
		s, ok := byName[name]
		if !ok {
			t.Fatalf("the broker made no span %q", name)
		}
		if s.SpanContext().TraceID() != request.SpanContext().TraceID() || s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("broker span %q is under %s/%s, want %q (%s)", name, s.SpanContext().TraceID(), s.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
		}
		return s
	}
	// The topics as the broker and the adapter name them; the transport puts the prefix before the queues.
	serviceQueue, registryQueue := schemas.ServiceTopic(5), schemas.RegistryTopic("erdr")
	leg := under("service 005", request)
	publish := under("publish "+serviceQueue, leg)
	check := under("case check erdr", request)
	publishCheck := under("publish "+registryQueue, check)

	// The adapter's, exported by its process.
	process := receiver.waitSpan(t, traceID, "process "+serviceQueue)
	call := receiver.waitSpan(t, traceID, "GET")
	checked := receiver.waitSpan(t, traceID, "process "+registryQueue)
	for _, c := range []struct {
		span   otlpSpan
		parent string
		kind   tracepb.Span_SpanKind
	}{
		{process, publish.SpanContext().SpanID().String(), tracepb.Span_SPAN_KIND_CONSUMER},
		{call, process.id, tracepb.Span_SPAN_KIND_CLIENT},
		{checked, publishCheck.SpanContext().SpanID().String(), tracepb.Span_SPAN_KIND_CONSUMER},
	} {
		if c.span.parentID != c.parent || c.span.kind != c.kind || c.span.service != "siobroker-adapter" {
			t.Errorf("adapter span %q: under %s, kind %s, service %q; want under %s, kind %s, service siobroker-adapter",
				c.span.name, c.span.parentID, c.span.kind, c.span.service, c.parent, c.kind)
		}
	}
	if process.attrs["sio.status"] != "ok" || process.attrs["sio.service"] != "5" || process.attrs["sio.request_id"] == "" {
		t.Errorf("the adapter's span of service 5: %v", process.attrs)
	}
	mu.Lock()
	got := traceparents
	mu.Unlock()
	if want := "00-" + traceID + "-" + call.id + "-01"; len(got) != 1 || got[0] != want {
		t.Errorf("the source got traceparent %q, want one call with %q", got, want)
	}

	// No span of either process names the subject, the signer or the case.
	c, _ := firstCase(u, siobroker.BasisCriminal)
	secrets := []string{e.subject, u.IIN, c.Number}
	for _, s := range brokerSpans.Ended() {
		for _, kv := range s.Attributes() {
			for _, secret := range secrets {
				if secret != "" && strings.Contains(kv.Value.String(), secret) {
					t.Errorf("broker span %q: %s carries %q", s.Name(), kv.Key, secret)
				}
			}
		}
	}
	for _, s := range receiver.all() {
		for k, v := range s.attrs {
			for _, secret := range secrets {
				if secret != "" && strings.Contains(v, secret) {
					t.Errorf("adapter span %q: %s carries %q", s.name, k, secret)
				}
			}
		}
	}
}

// TestTraceAsyncRequest: an asynchronous request's services are asked by the worker after the
// call that took the request has been answered; they are still in that call's trace, under its
// span, through the trace context kept with the stored request (siobroker.AsyncJob.TraceParent).
func TestTraceAsyncRequest(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	copyDir(t, src.pki, pki)
	cfg := testConfig(dir)
	spans := tracetest.NewSpanRecorder()
	b, err := app.StartWith(context.Background(), cfg, siobroker.SystemClock{}, testLogger(),
		app.Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, pki
	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	if code, out, errs := runSend(t, e.sendArgs(u, "--async", "--services", "1")...); code != 0 {
		t.Fatalf("send --async exited %d\n%s%s", code, out, errs)
	}
	var accepted sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.SpanKind() == trace.SpanKindServer && s.Name() == "POST "+app.AsyncPath {
			accepted = s
		}
	}
	if accepted == nil {
		t.Fatal("no span of the asynchronous call")
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, s := range spans.Ended() {
			if s.Name() == "service 001" {
				if s.SpanContext().TraceID() != accepted.SpanContext().TraceID() || s.Parent().SpanID() != accepted.SpanContext().SpanID() {
					t.Errorf("the worker's service 001 is %s under %s, want the call's trace %s under its span %s", s.SpanContext().TraceID(),
						s.Parent().SpanID(), accepted.SpanContext().TraceID(), accepted.SpanContext().SpanID())
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker made no span of service 001")
		}
	}
}
