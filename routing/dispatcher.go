package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// Dispatcher scatters a request's services to their adapters and gathers the answers.
type Dispatcher struct {
	publisher  message.Publisher
	replyTopic string
	clock      siobroker.Clock
	logger     *slog.Logger

	mu      sync.Mutex
	pending map[string]chan schemas.ServiceResponse
}

// NewDispatcher returns a Dispatcher whose answers arrive on replyTopic. Each broker instance
// needs its own reply topic, so that answers reach the process that holds the request.
func NewDispatcher(publisher message.Publisher, replyTopic string, clock siobroker.Clock, logger *slog.Logger) *Dispatcher {
	return &Dispatcher{
		publisher:  publisher,
		replyTopic: replyTopic,
		clock:      clock,
		logger:     logger,
		pending:    make(map[string]chan schemas.ServiceResponse),
	}
}

// ReplyTopic is the topic this dispatcher gathers answers from.
func (d *Dispatcher) ReplyTopic() string { return d.replyTopic }

// AddHandlers registers the reply handler on router.
func (d *Dispatcher) AddHandlers(router *message.Router, subscriber message.Subscriber) {
	router.AddConsumerHandler("broker-replies", d.replyTopic, subscriber, d.handleReply)
}

func (d *Dispatcher) handleReply(msg *message.Message) error {
	var resp schemas.ServiceResponse
	if err := json.Unmarshal(msg.Payload, &resp); err != nil {
		// A reply that cannot be read can never be correlated; redelivering it would loop.
		d.logger.Error("undecodable adapter reply dropped", "transport_id", msg.UUID, "error", err)
		return nil
	}
	key := correlationKey(resp.RequestID, resp.Service)
	d.mu.Lock()
	ch, ok := d.pending[key]
	if ok {
		delete(d.pending, key)
	}
	d.mu.Unlock()
	if !ok {
		d.logger.Warn("late or duplicate adapter reply dropped",
			"request_id", resp.RequestID, "service", resp.Service, "adapter", resp.Adapter)
		return nil
	}
	ch <- resp // buffered: never blocks
	return nil
}

// Dispatch sends each request to its service's topic and waits for every answer, or for the
// service's timeout. The results are in the order of reqs. A service that cannot be dispatched or
// does not answer in time gets an error or timeout result; the others still come back.
func (d *Dispatcher) Dispatch(ctx context.Context, reqs []schemas.ServiceRequest, timeout func(service int) time.Duration) []Outcome {
	outcomes := make([]Outcome, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		req.ReplyTo = d.replyTopic
		wait := timeout(req.Service)
		req.Deadline = d.clock.Now().Add(wait)
		wg.Go(func() { outcomes[i] = d.dispatchOne(ctx, req, wait) })
	}
	wg.Wait()
	return outcomes
}

// Outcome is the result of one service, with the times the journal needs.
type Outcome struct {
	Result       siobroker.ServiceResult
	Adapter      string
	DispatchedAt time.Time
	AnsweredAt   time.Time // zero when there was no answer
}

func (d *Dispatcher) dispatchOne(ctx context.Context, req schemas.ServiceRequest, wait time.Duration) Outcome {
	key := correlationKey(req.RequestID, req.Service)
	ch := make(chan schemas.ServiceResponse, 1)
	d.mu.Lock()
	d.pending[key] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, key)
		d.mu.Unlock()
	}()

	timer := time.NewTimer(wait)
	defer timer.Stop()

	out := Outcome{DispatchedAt: d.clock.Now()}
	req.SentAt = out.DispatchedAt
	msg, err := newJSONMessage(key, req, requestMetadata(req))
	if err == nil {
		err = d.publisher.Publish(schemas.ServiceTopic(req.Service), msg)
	}
	if err != nil {
		d.logger.Error("dispatch failed", "request_id", req.RequestID, "service", req.Service, "error", err)
		out.Result = siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusError,
			Reason: siobroker.ReasonUnavailable, Message: "the service could not be dispatched"}
		return out
	}

	select {
	case resp := <-ch:
		out.Result = resp.Result
		out.Result.Service = req.Service
		out.Adapter = resp.Adapter
		out.AnsweredAt = d.clock.Now()
	case <-timer.C:
		out.Result = siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusTimeout,
			Reason: siobroker.ReasonTimeout, Message: fmt.Sprintf("no answer within %s", wait)}
	case <-ctx.Done():
		out.Result = siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusTimeout,
			Reason: siobroker.ReasonTimeout, Message: "the request was cancelled before the answer came"}
	}
	return out
}

// Pending returns how many service answers this dispatcher is waiting for.
func (d *Dispatcher) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}
