package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker/internal/tracing"
	"github.com/sio-pso/siobroker/schemas"
)

// Trace makes the consumer span of every delivery from queue, outermost of the stack so that it
// covers all the adapter does with it, refusals included: the child of the broker's publish,
// whose W3C trace context the message carries in its metadata (traceparent), or a trace of its
// own when it carries none. Everything below sees the span in the message's context: the
// backend's calls to its source are its children, and Publish names the answer's status on it.
//
// The trace context is read before the message is authenticated: the MAC does not cover it
// (package msgauth), and it only decides which trace the span joins, nothing the adapter does.
// The span's attributes are the message's ids from its metadata, which are only labels until
// Authenticate has checked them; never anything of its payload.
func Trace(tp trace.TracerProvider, queue string) message.HandlerMiddleware {
	tracer := tracing.Tracer(tp)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := tracing.Extract(msg.Context(), msg.Metadata)
			attrs := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
				tracing.KeyMessagingDestination.String(queue),
				tracing.KeyMessagingOperation.String("process"), tracing.KeyMessagingMessageID.String(msg.UUID),
				tracing.KeyRequestID.String(msg.Metadata.Get(schemas.MetaRequestID)),
				tracing.KeyMessageID.String(msg.Metadata.Get(schemas.MetaMessageID)))}
			if s := msg.Metadata.Get(schemas.MetaService); s != "" {
				attrs = append(attrs, trace.WithAttributes(tracing.KeyService.String(s)))
			}
			ctx, span := tracer.Start(ctx, "process "+queue, attrs...)
			defer span.End()
			msg.SetContext(ctx)
			out, err := h(msg)
			if err != nil {
				// The delivery fails and comes back; the error's text is the log's.
				span.SetStatus(codes.Error, "the delivery failed and is delivered again")
			}
			return out, err
		}
	}
}

// traceAnswer names on the delivery's span (of Trace) the result of an answer it published.
func traceAnswer(span trace.Span, m *message.Message) {
	if a := answerOf(m); a != nil && span.IsRecording() {
		span.SetAttributes(tracing.KeyStatus.String(string(a.resp.Result.Status)), tracing.KeyReason.String(string(a.resp.Result.Reason)),
			tracing.KeyAdapter.String(a.resp.Adapter))
	}
}
