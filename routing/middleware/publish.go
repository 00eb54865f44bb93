package middleware

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"
)

// PublishFunc publishes m to topic. The routing runtime's keeps publishing while the transport is
// unavailable, holding the delivery, until ctx ends (the subscription stops). It is not bounded by
// the request's deadline: a failed publish fails the delivery, RabbitMQ requeues it at once and
// hands it straight back, and a copy past its deadline would fail again at once, each time
// counted toward the queue's delivery limit, until a request nothing was wrong with was
// dead-lettered (issue 15: an adapter whose consuming connection came back before its
// publishing one, after a RabbitMQ restart). An answer past the deadline is still wanted: the
// broker journals it as late, and a resumed request takes it.
type PublishFunc func(ctx context.Context, topic string, m *message.Message) error

// Publish sends the answers the handlers below produce to the reply topic of the request, and
// produces none itself. When a publish fails the delivery fails (the request
// comes back and is answered again rather than lost). Once done with an answer, published or not,
// Publish settles it: that is when Ledger ends its claim.
//
// It publishes with the delivery's context as it was when Publish was called, not with the one a
// handler below sets (Deadline): an answer is not cut short by the context the source was asked
// with.
func Publish(publish PublishFunc) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			req, err := request(msg)
			if err != nil {
				return nil, err
			}
			ctx := msg.Context()
			answers, err := h(msg)
			if err != nil {
				for _, m := range answers {
					settle(m, false)
				}
				return nil, err
			}
			for i, m := range answers {
				if err := publish(ctx, req.ReplyTo, m); err != nil {
					for _, m := range answers[i:] {
						settle(m, false)
					}
					// Failing the delivery nacks the request, so it is answered again rather than lost.
					return nil, fmt.Errorf("publish answer to %s service %d: %w", req.RequestID, req.Service, err)
				}
				settle(m, true)
				traceAnswer(trace.SpanFromContext(ctx), m)
			}
			return nil, nil
		}
	}
}
