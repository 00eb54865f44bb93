// Package tracing is the broker's and the adapters' side of OpenTelemetry that every instrumented
// package shares: the tracing section of their configuration, the W3C trace context carried in a
// transport message's metadata and in HTTP headers, the tracer of a TracerProvider, and the
// attribute keys of the spans. It knows the OpenTelemetry API only; the SDK and the OTLP exporter
// are internal/tracing/provider's, which only the wiring imports.
//
// Spans carry identifiers and outcomes only: the broker's request id, the client's messageId,
// the service number, the adapter, the status. Never a subject's IIN or BIN, a name, a case
// number or any other field of a query: a trace leaves the broker for whatever collector the
// operator runs, and this is law-enforcement data.
//
// Only the W3C traceparent (and tracestate) is propagated, never baggage: baggage is free text a
// caller chooses, and would be carried to every adapter and source system.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every span of this module.
const ScopeName = "github.com/sio-pso/siobroker"

// Config is the tracing section of configs/broker.yaml and of an adapter's file. The zero
// OTLPEndpoint exports nothing: no span is recorded, but the trace context of a caller is still
// carried on (to the adapters, and from them to the HTTP sources), so that a trace begun upstream
// keeps its id across the broker.
type Config struct {
	// OTLPEndpoint is the OTLP/HTTP URL of the collector the spans are exported to
	// (http://collector:4318; the path /v1/traces is added to a URL that has none). "": off.
	OTLPEndpoint string `mapstructure:"otlp_endpoint" yaml:"otlp_endpoint"`
	// ServiceName is the service.name of the process's spans; "": siobroker.
	ServiceName string `mapstructure:"service_name" yaml:"service_name"`
	// SampleRatio is the share of traces that begin here, or come from a caller whose sampling
	// the process does not follow, that are recorded: 0 to 1, by trace id.
	SampleRatio float64 `mapstructure:"sample_ratio" yaml:"sample_ratio"`
}

// DefaultSampleRatio is Config.SampleRatio when a file does not set it: every trace.
const DefaultSampleRatio = 1.0

// Enabled reports whether c exports spans.
func (c Config) Enabled() bool { return c.OTLPEndpoint != "" }

// Problems reports what is wrong with c, each error naming its key under prefix ("tracing").
func (c Config) Problems(prefix string) []error {
	var errs []error
	if c.OTLPEndpoint != "" {
		if _, err := c.ExportURL(); err != nil {
			errs = append(errs, fmt.Errorf("%s.otlp_endpoint: %w", prefix, err))
		}
	}
	if !(c.SampleRatio >= 0 && c.SampleRatio <= 1) { // NaN too
		errs = append(errs, fmt.Errorf("%s.sample_ratio: %v; use 0 to 1 (1 records every trace)", prefix, c.SampleRatio))
	}
	return errs
}

// ExportURL is the URL the spans are posted to: OTLPEndpoint, with /v1/traces when it names no
// path.
func (c Config) ExportURL() (string, error) {
	u, err := url.Parse(c.OTLPEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318", c.OTLPEndpoint)
	}
	if u.User != nil {
		// The file is readable by whoever may read the configuration; a collector's credentials
		// go in OTEL_EXPORTER_OTLP_HEADERS, which the exporter reads.
		return "", errors.New("must not carry credentials; set OTEL_EXPORTER_OTLP_HEADERS in the environment instead")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// propagator is the one format of trace context: W3C traceparent and tracestate.
var propagator = propagation.TraceContext{}

// Header is the W3C header (and metadata key) that carries the trace context.
const Header = "traceparent"

// Inject writes the trace context of ctx into meta, a transport message's metadata (watermill's
// message.Metadata is such a map). Nothing is written when ctx carries no valid span context.
func Inject(ctx context.Context, meta map[string]string) {
	propagator.Inject(ctx, propagation.MapCarrier(meta))
}

// Extract returns ctx carrying the remote span context meta holds, for the span that continues
// it; ctx itself when meta holds none, or one that cannot be read.
func Extract(ctx context.Context, meta map[string]string) context.Context {
	return propagator.Extract(ctx, propagation.MapCarrier(meta))
}

// InjectHTTP writes the trace context of ctx into h, an outgoing request's headers.
func InjectHTTP(ctx context.Context, h http.Header) {
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// ExtractHTTP returns ctx carrying the remote span context of h, an incoming request's headers,
// without its tracestate: a caller's vendor data is not carried on to the adapters and the
// sources, only the ids that join the caller's trace.
func ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	sc := trace.SpanContextFromContext(propagator.Extract(ctx, propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc.WithTraceState(trace.TraceState{}))
}

// Tracer is the tracer of tp; nil is the global TracerProvider (otel.SetTracerProvider), which
// the wiring sets, and which makes non-recording spans until it does.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

// The attribute keys of this module's spans. The messaging and HTTP ones are OpenTelemetry's
// semantic conventions (without messaging.system: the routing packages do not know whether the
// transport is RabbitMQ or the in-process one); the sio.* ones are the broker's identifiers.
const (
	KeyRequestID   = attribute.Key("sio.request_id")  // the broker's id of the request
	KeyMessageID   = attribute.Key("sio.message_id")  // the client's requestInfo/messageId
	KeyService     = attribute.Key("sio.service")     // the service number of Appendix 2
	KeyRegistry    = attribute.Key("sio.registry")    // a case registry's name (§5)
	KeyAdapter     = attribute.Key("sio.adapter")     // the adapter a service is routed to, or that answered
	KeyStatus      = attribute.Key("sio.status")      // a service's result status: ok, error, timeout...
	KeyReason      = attribute.Key("sio.reason")      // the result's reason code: OK, NO_DATA, ADAPTER_ERROR...
	KeyOutcome     = attribute.Key("sio.outcome")     // how a request ended: a reply, a refusal, a failure
	KeyCode        = attribute.Key("sio.code")        // the error code of a refusal (SIO-...)
	KeyCorrelation = attribute.Key("sio.correlation") // the transport's correlation key, request/service
	KeyFound       = attribute.Key("sio.case.found")  // a case registry found the case
	KeyInCase      = attribute.Key("sio.case.in_proceedings")

	KeyMessagingDestination = attribute.Key("messaging.destination.name")
	KeyMessagingOperation   = attribute.Key("messaging.operation.type")
	KeyMessagingMessageID   = attribute.Key("messaging.message.id")
	KeyHTTPMethod           = attribute.Key("http.request.method")
	KeyHTTPStatus           = attribute.Key("http.response.status_code")
	KeyServerAddress        = attribute.Key("server.address")
	KeyURLPath              = attribute.Key("url.path")
)
