package middleware

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// PublishFunc publishes m to topic. The routing runtime's keeps publishing while the transport is
// unavailable, holding the delivery, until ctx ends or deadline (zero: never) passes: nobody
// waits for an answer after its request's deadline.
type PublishFunc func(ctx context.Context, deadline time.Time, topic string, m *message.Message) error

// Publish sends the answers the handlers below produce to the reply topic of the request, bounded
// by its deadline, and produces none itself. When a publish fails the delivery fails (the request
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
				if err := publish(ctx, req.Deadline, req.ReplyTo, m); err != nil {
					for _, m := range answers[i:] {
						settle(m, false)
					}
					// Failing the delivery nacks the request, so it is answered again rather than lost.
					return nil, fmt.Errorf("publish answer to %s service %d: %w", req.RequestID, req.Service, err)
				}
				settle(m, true)
			}
			return nil, nil
		}
	}
}
