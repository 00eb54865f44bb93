package middleware

import (
	"encoding/json"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/schemas"
)

// Decode reads the message as a schemas.ServiceRequest and puts it in the message's context for
// the handlers below (Request). A message that is not one, or a request that names no reply
// topic, is dropped with a log line: nobody could be answered, and a redelivery would fail the
// same way, so the delivery succeeds and nothing below runs. queue is named in the log line.
func Decode(queue string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			var req schemas.ServiceRequest
			if err := json.Unmarshal(msg.Payload, &req); err != nil {
				logger.Error("undecodable service request dropped", "queue", queue, "transport_id", msg.UUID, "error", err)
				return nil, nil
			}
			if req.ReplyTo == "" {
				requestLog(logger, req).Error("service request without reply topic dropped", "queue", queue, "service", req.Service)
				return nil, nil
			}
			WithRequest(msg, req)
			return h(msg)
		}
	}
}
