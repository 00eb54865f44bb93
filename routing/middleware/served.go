package middleware

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Served answers ADAPTER_ERROR at once to a request for a service not among services, those the
// adapter serves on queue: the routing table sends that service to a queue this adapter consumes
// for others, and the broker is told at once rather than left to time out, and the operator sees
// why in the answer and the log.
func Served(queue string, services []int, adapter Adapter, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			req, err := request(msg)
			if err != nil {
				return nil, err
			}
			if slices.Contains(services, req.Service) {
				return h(msg)
			}
			requestLog(logger, req).Error("service request for a service this adapter does not serve on this queue",
				"queue", queue, "service", req.Service)
			return one(adapter.Provisional(req, errorResult(req.Service,
				fmt.Sprintf("adapter %s does not serve service %d on queue %s; check the routing table", adapter.Name, req.Service, queue))))
		}
	}
}
