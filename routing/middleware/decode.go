package middleware

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/schemas"
)

// poisonPublishLimit bounds the publish of a poison message to the dead-letter topic: it has no
// request deadline of its own.
const poisonPublishLimit = 30 * time.Second

// Poison is where Decode and Ledger put a message that cannot be answered: Topic is the
// transport's dead-letter queue ("" where there is none, as with the embedded GoChannel: the
// message is then dropped with a log line only), Publish publishes to it, and Adapter names the
// adapter and stamps the time in the reason.
type Poison struct {
	Topic   string
	Publish PublishFunc
	Adapter Adapter
}

// Decode reads the message as a schemas.ServiceRequest and puts it in the message's context for
// the handlers below (Request). A message that is not one, or a request that names no reply
// topic, cannot be answered, and a redelivery would fail the same way: it goes to the dead-letter
// topic of poison with why in its metadata (schemas.MetaDeadReason and the others), so that an
// operator sees it in `siobroker dlq list`, and the delivery succeeds with nothing below run.
// Without a dead-letter topic it is dropped with a log line. A dead letter that cannot be
// published fails the delivery, so that the message comes back rather than vanish. queue is named
// in the log line and as the dead letter's queue.
func Decode(queue string, poison Poison, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			var req schemas.ServiceRequest
			if err := json.Unmarshal(msg.Payload, &req); err != nil {
				log := logger.With("queue", queue, "transport_id", msg.UUID)
				return nil, poison.put(msg, queue, log.With("error", err), "undecodable service request",
					schemas.DeadReason{Category: schemas.DeadNotARequest}.WithError(err))
			}
			if req.ReplyTo == "" {
				log := requestLog(logger, req).With("queue", queue, "service", req.Service)
				return nil, poison.put(msg, queue, log, "service request without reply topic",
					schemas.DeadReason{Category: schemas.DeadNoReplyTopic, Service: req.Service})
			}
			WithRequest(msg, req)
			return h(msg)
		}
	}
}

// put dead-letters msg, which came from queue, for reason (its Adapter is set here), or logs
// what drops it when there is no dead-letter topic. what names the fault in the log line.
func (p Poison) put(msg *message.Message, queue string, log *slog.Logger, what string, reason schemas.DeadReason) error {
	reason.Adapter = p.Adapter.Name
	if p.Topic == "" {
		log.Error(what+" dropped (no dead-letter queue)", "reason", reason.String())
		return nil
	}
	dead := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		dead.Metadata.Set(k, v)
	}
	dead.Metadata.Set(schemas.MetaDeadReason, reason.Header())
	dead.Metadata.Set(schemas.MetaDeadTopic, queue)
	dead.Metadata.Set(schemas.MetaDeadAt, p.Adapter.Clock.Now().Format(time.RFC3339))
	// Not cut short by the request's deadline, which may have passed: the letter must not be lost.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), poisonPublishLimit)
	defer cancel()
	if err := p.Publish(ctx, p.Topic, dead); err != nil {
		log.Error(what+" not dead-lettered; the delivery fails and it comes back", "topic", p.Topic, "error", err)
		return fmt.Errorf("dead-letter %s from %s: %w", what, queue, err)
	}
	log.Error(what+" dead-lettered", "topic", p.Topic, "reason", reason.String())
	return nil
}
