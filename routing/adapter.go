package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// AdapterRuntime serves services from their Backends: it consumes each service's topic and
// publishes every answer to the reply topic the request names.
type AdapterRuntime struct {
	name      string
	backends  map[int]adapters.Backend
	publisher message.Publisher
	clock     siobroker.Clock
	logger    *slog.Logger
	retries   int
	backoff   time.Duration
	answered  *answeredCache
	queueOf   func(service int) string // nil: each service's own queue
}

// NewAdapterRuntime returns a runtime named name (it appears in every answer, for tracing) for
// the services in backends.
func NewAdapterRuntime(name string, backends map[int]adapters.Backend, publisher message.Publisher, clock siobroker.Clock, logger *slog.Logger) *AdapterRuntime {
	return &AdapterRuntime{name: name, backends: backends, publisher: publisher, clock: clock, logger: logger,
		retries: 3, backoff: 100 * time.Millisecond, answered: newAnsweredCache(10000)}
}

// WithRetry sets how often a transient backend error (adapters.Transient) is retried, and the
// first back-off, doubled each time. Retries stop at the broker's deadline in any case.
func (a *AdapterRuntime) WithRetry(retries int, backoff time.Duration) *AdapterRuntime {
	a.retries, a.backoff = retries, backoff
	return a
}

// Services lists the services this runtime serves, in order.
func (a *AdapterRuntime) Services() []int {
	out := make([]int, 0, len(a.backends))
	for n := range a.backends {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// WithQueues makes the runtime consume each service's requests from the queue queueOf names (the
// routing table's) instead of the service's own. Services that share a queue share one handler.
// Call it before AddHandlers.
func (a *AdapterRuntime) WithQueues(queueOf func(service int) string) *AdapterRuntime {
	a.queueOf = queueOf
	return a
}

// AddHandlers registers one handler per queue on router.
func (a *AdapterRuntime) AddHandlers(router *message.Router, subscriber message.Subscriber) {
	queueOf := a.queueOf
	if queueOf == nil {
		queueOf = schemas.ServiceTopic
	}
	byQueue := map[string][]int{}
	var queues []string
	for _, n := range a.Services() {
		q := queueOf(n)
		if _, ok := byQueue[q]; !ok {
			queues = append(queues, q)
		}
		byQueue[q] = append(byQueue[q], n)
	}
	for _, q := range queues {
		served := byQueue[q]
		name := fmt.Sprintf("adapter-%s-service-%03d", a.name, served[0])
		if q != schemas.ServiceTopic(served[0]) || len(served) > 1 {
			name = fmt.Sprintf("adapter-%s-queue-%s", a.name, q)
		}
		router.AddConsumerHandler(name, q, subscriber, func(msg *message.Message) error { return a.handle(msg, q, served) })
	}
}

func (a *AdapterRuntime) handle(msg *message.Message, queue string, served []int) error {
	var req schemas.ServiceRequest
	if err := json.Unmarshal(msg.Payload, &req); err != nil {
		// Without a request id there is nobody to answer; redelivery would fail the same way.
		a.logger.Error("undecodable service request dropped", "queue", queue, "transport_id", msg.UUID, "error", err)
		return nil
	}
	if req.ReplyTo == "" {
		a.logger.Error("service request without reply topic dropped", "queue", queue, "service", req.Service, "request_id", req.RequestID)
		return nil
	}
	service := req.Service
	backend, ok := a.backends[service]
	if !ok || !slices.Contains(served, service) {
		// The routing table sends this service to a queue this adapter consumes for others: the
		// broker is told at once rather than left to time out, and the operator sees why.
		a.logger.Error("service request for a service this adapter does not serve on this queue",
			"queue", queue, "service", service, "request_id", req.RequestID)
		return a.publishAnswer(req, service, schemas.ServiceResponse{
			RequestID: req.RequestID, Service: service, Adapter: a.name, AnsweredAt: a.clock.Now(),
			Result: siobroker.ServiceResult{Service: service, Status: siobroker.StatusError, Reason: siobroker.ReasonAdapterError,
				Message: fmt.Sprintf("adapter %s does not serve service %d on queue %s; check the routing table", a.name, service, queue)},
		})
	}

	// A redelivered copy of a request this process has answered is not asked again: the same
	// answer goes back, so a lost answer is replaced and the source is queried once.
	key := correlationKey(req.RequestID, service)
	if resp, ok := a.answered.get(key); ok {
		a.logger.Info("redelivered request answered from the earlier answer", "service", service, "request_id", req.RequestID)
		return a.publishAnswer(req, service, resp)
	}

	ctx := msg.Context()
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	result := a.query(ctx, backend, req)

	resp := schemas.ServiceResponse{
		RequestID:  req.RequestID,
		Service:    service,
		Result:     result,
		Adapter:    a.name,
		AnsweredAt: a.clock.Now(),
	}
	if err := a.publishAnswer(req, service, resp); err != nil {
		return err
	}
	a.answered.put(key, resp)
	return nil
}

// publishAnswer sends resp to the reply topic the request named.
func (a *AdapterRuntime) publishAnswer(req schemas.ServiceRequest, service int, resp schemas.ServiceResponse) error {
	out, err := newJSONMessage(NewMessageID(), resp, map[string]string{
		schemas.MetaRequestID:   req.RequestID,
		schemas.MetaService:     strconv.Itoa(service),
		schemas.MetaCorrelation: correlationKey(req.RequestID, service),
	})
	if err != nil {
		return fmt.Errorf("encode answer to %s service %d: %w", req.RequestID, service, err)
	}
	if err := a.publisher.Publish(req.ReplyTo, out); err != nil {
		// Returning the error nacks the request, so it is answered again rather than lost.
		return fmt.Errorf("publish answer to %s service %d: %w", req.RequestID, service, err)
	}
	return nil
}

// query calls the backend and turns its failure, or its panic, into an error result: one
// broken backend must not take the runtime down.
func (a *AdapterRuntime) query(ctx context.Context, backend adapters.Backend, req schemas.ServiceRequest) (result siobroker.ServiceResult) {
	defer func() {
		if p := recover(); p != nil {
			a.logger.Error("backend panicked", "service", req.Service, "request_id", req.RequestID, "panic", fmt.Sprint(p))
			result = errorResult(req.Service, "the source system failed")
		}
	}()
	result, err := backend.Query(ctx, req)
	wait := a.backoff
	for attempt := 1; err != nil && adapters.IsTransient(err) && attempt <= a.retries && ctx.Err() == nil; attempt++ {
		a.logger.Info("transient backend error; retrying", "service", req.Service, "request_id", req.RequestID,
			"attempt", attempt, "backoff", wait, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			result, err = backend.Query(ctx, req)
		}
		wait *= 2
	}
	if err != nil {
		if ctx.Err() != nil {
			// The broker's deadline passed: that is a timeout, whatever error the backend made of it.
			return siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusTimeout,
				Reason: siobroker.ReasonTimeout, Message: "the source system did not answer in time"}
		}
		a.logger.Warn("backend error", "service", req.Service, "request_id", req.RequestID, "error", err)
		// The cause may carry the source system's internals; the client gets a fixed text.
		return errorResult(req.Service, "the source system answered with an error")
	}
	result.Service = req.Service
	switch result.Status {
	case "", siobroker.StatusOK:
		result.Status = siobroker.StatusOK
		if result.Reason == "" {
			result.Reason = siobroker.ReasonOK
			if len(result.Records) == 0 {
				result.Reason = siobroker.ReasonNoData
			}
		}
	case siobroker.StatusError:
		if result.Reason == "" {
			result.Reason = siobroker.ReasonAdapterError
		}
	default:
		// denied and timeout are the broker's to decide; anything else is not a status at all.
		a.logger.Warn("backend returned a status it may not set", "service", req.Service, "status", result.Status)
		return errorResult(req.Service, "the source system answered with an error")
	}
	return result
}

func errorResult(service int, message string) siobroker.ServiceResult {
	return siobroker.ServiceResult{Service: service, Status: siobroker.StatusError,
		Reason: siobroker.ReasonAdapterError, Message: message}
}
