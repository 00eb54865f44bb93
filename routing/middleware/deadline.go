package middleware

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Deadline gives the handlers below a context that ends at the request's deadline (a request
// without one is not bounded): nobody waits for the answer after it, so the wait for another
// process's claim and the source's calls end there. The handlers above go on with the delivery's
// own context.
func Deadline() message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			req, err := request(msg)
			if err != nil {
				return nil, err
			}
			if req.Deadline.IsZero() {
				return h(msg)
			}
			delivery := msg.Context()
			ctx, cancel := context.WithDeadline(delivery, req.Deadline)
			defer cancel()
			msg.SetContext(ctx)
			defer msg.SetContext(delivery)
			return h(msg)
		}
	}
}
