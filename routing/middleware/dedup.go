package middleware

import (
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/schemas"
)

// Memory remembers answers by correlation key (schemas.CorrelationKey), the recent ones: copies
// come soon after the first delivery. It must be safe for concurrent use.
type Memory interface {
	Get(key string) (schemas.ServiceResponse, bool)
	// Put remembers resp under key, unless key is remembered already: the first answer is kept.
	Put(key string, resp schemas.ServiceResponse)
}

// Dedup answers a redelivered copy of a request this process has answered with the same answer,
// without the handlers below: a lost answer is replaced, and the source is asked once.
//
// A final answer is remembered on its way up, before Publish sends it: a copy that reaches this
// process while the answer is on its way, or one delivered again because the publish failed, is
// given the same answer rather than asked of the source again. A provisional one is not: a
// request given up on and replayed from the dead-letter queue is asked again.
//
// A copy delivered to another process is recognised there only through a shared ledger (Ledger).
func Dedup(memory Memory, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			req, err := request(msg)
			if err != nil {
				return nil, err
			}
			key := schemas.CorrelationKey(req.RequestID, req.Service)
			if resp, ok := memory.Get(key); ok {
				requestLog(logger, req).Info("redelivered request answered from the earlier answer", "service", req.Service)
				return one(newAnswer(req, resp, true))
			}
			answers, err := h(msg)
			if err != nil {
				return answers, err
			}
			for _, m := range answers {
				if a := answerOf(m); a != nil && a.final {
					memory.Put(key, a.resp)
				}
			}
			return answers, nil
		}
	}
}
