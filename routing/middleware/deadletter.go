package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/schemas"
)

// DeadLetter puts a request whose source failed transiently on every attempt of Retry on topic
// (the transport's dead-letter queue), with why in its metadata (schemas.MetaDeadReason and the
// others), and passes the failure up for Outcome to answer: the broker is not left waiting, and an
// operator can replay the request once the source is back (its late answer then reaches the
// broker, which records and drops it, or completes the asynchronous request still waiting for it).
//
// It comes before the answer is made and published: should the answer then fail to go out, the
// request comes back and is tried again, and a second copy in the dead-letter queue is the worst
// outcome. A dead letter that cannot be published fails the delivery, unanswered, for the same
// reason.
func DeadLetter(topic string, publish PublishFunc, adapter Adapter, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			answers, err := h(msg)
			var g *givenUp
			if !errors.As(err, &g) {
				return answers, err
			}
			req, rerr := request(msg)
			if rerr != nil {
				return nil, rerr
			}
			dead := message.NewMessage(msg.UUID, msg.Payload)
			for k, v := range msg.Metadata {
				dead.Metadata.Set(k, v)
			}
			// The reason names the failure's class, never its text: see schemas.DeadReason. The
			// text went to Retry's log line, without the subject's numbers.
			reason := schemas.DeadReason{Category: schemas.DeadSourceFailing, Adapter: adapter.Name, Service: req.Service,
				Attempts: g.attempts}.WithError(sourceCause(g.last))
			dead.Metadata.Set(schemas.MetaDeadReason, reason.Header())
			dead.Metadata.Set(schemas.MetaDeadTopic, schemas.ServiceTopic(req.Service))
			dead.Metadata.Set(schemas.MetaDeadAttempts, strconv.Itoa(g.attempts))
			dead.Metadata.Set(schemas.MetaDeadAt, adapter.Clock.Now().Format(time.RFC3339))
			if perr := publish(msg.Context(), topic, dead); perr != nil {
				return nil, fmt.Errorf("dead-letter %s service %d: %w", req.RequestID, req.Service, perr)
			}
			logger.Warn("request dead-lettered after its attempts", "service", req.Service, "request_id", req.RequestID,
				"attempts", g.attempts, "topic", topic, "reason", reason.String())
			return answers, err
		}
	}
}

// sourceCause is the backend's own error behind err, whose type tells the class of the failure.
func sourceCause(err error) error {
	var src *SourceError
	if errors.As(err, &src) && src.Err != nil {
		return src.Err
	}
	return err
}
