package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/routing/middleware"
	"github.com/sio-pso/siobroker/schemas"
)

// AdapterRuntime serves services from their Backends: it consumes each service's topic and
// publishes every answer to the reply topic the request names. Each delivery goes through the
// stack of watermill middleware of package middleware (decode, served-service check, dedup,
// deadline, ledger claim, outcome, dead-lettering, retry, publish) around a core handler that
// asks the backend.
type AdapterRuntime struct {
	name      string
	backends  map[int]adapters.Backend
	publisher message.Publisher
	clock     siobroker.Clock
	logger    *slog.Logger
	retries   int
	backoff   time.Duration
	answered  *answeredCache
	ledger    siobroker.Ledger         // nil: redelivered copies are recognised in this process only
	queueOf   func(service int) string // nil: each service's own queue
	// deadLetters is the topic a request goes to when its transient failures outlast the
	// retries; "" answers ADAPTER_ERROR only.
	deadLetters string
}

// NewAdapterRuntime returns a runtime named name (it appears in every answer, for tracing) for
// the services in backends.
func NewAdapterRuntime(name string, backends map[int]adapters.Backend, publisher message.Publisher, clock siobroker.Clock, logger *slog.Logger) *AdapterRuntime {
	return &AdapterRuntime{name: name, backends: backends, publisher: publisher, clock: clock, logger: logger,
		retries: 3, backoff: 100 * time.Millisecond, answered: newAnsweredCache(10000)}
}

// WithRetry sets how often a transient backend error (adapters.Transient) is retried, and the
// first back-off, doubled each time: a request gets 1+retries attempts. Retries stop at the
// broker's deadline in any case. When every attempt failed, the broker is answered ADAPTER_ERROR,
// and with WithDeadLetters the request goes to the dead-letter queue too.
func (a *AdapterRuntime) WithRetry(retries int, backoff time.Duration) *AdapterRuntime {
	a.retries, a.backoff = retries, backoff
	return a
}

// WithDeadLetters makes a request whose source still fails transiently after every attempt of
// WithRetry go to topic (the transport's dead-letter queue) with the reason in its metadata
// (schemas.MetaDeadReason and the others), before the broker is answered ADAPTER_ERROR as
// usual: the client is not left waiting, and an operator can replay the request once the
// source is back (its late answer then reaches the broker, which records and drops it, or
// completes the asynchronous request still waiting for it). Without it (the embedded GoChannel
// has no dead-letter queue) such a request is answered ADAPTER_ERROR only.
func (a *AdapterRuntime) WithDeadLetters(topic string) *AdapterRuntime {
	a.deadLetters = topic
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

// handle answers one delivery of queue, on which the runtime serves the services served. Its
// stack is put together for every delivery, from the options as they are then.
func (a *AdapterRuntime) handle(msg *message.Message, queue string, served []int) error {
	_, err := a.stack(queue, served)(msg)
	return err
}

// stack is the handler of queue: the middleware of package middleware, in the order its
// documentation gives and explains, around the core handler, query. Dead-lettering is left out
// without WithDeadLetters, and the ledger without WithLedger.
func (a *AdapterRuntime) stack(queue string, served []int) message.HandlerFunc {
	adapter := middleware.Adapter{Name: a.name, Clock: a.clock}
	publish := func(ctx context.Context, deadline time.Time, topic string, m *message.Message) error {
		return publishPatiently(ctx, a.publisher, a.logger, deadlineC(deadline), topic, m)
	}
	var here []int // the services of queue that have a backend
	for _, n := range served {
		if _, ok := a.backends[n]; ok {
			here = append(here, n)
		}
	}
	stack := []message.HandlerMiddleware{
		middleware.Decode(queue, a.logger),
		middleware.Publish(publish),
		middleware.Served(queue, here, adapter, a.logger),
		middleware.Dedup(answerMemory{a.answered}, a.logger),
		middleware.Deadline(),
	}
	if a.ledger != nil {
		stack = append(stack, middleware.Ledger(a.ledger, adapter, a.logger))
	}
	stack = append(stack, middleware.Outcome(adapter, a.logger))
	if a.deadLetters != "" {
		stack = append(stack, middleware.DeadLetter(a.deadLetters, publish, adapter, a.logger))
	}
	stack = append(stack, middleware.Retry(a.retries, a.backoff, a.logger))

	h := a.query(adapter)
	for i := len(stack) - 1; i >= 0; i-- {
		h = stack[i](h)
	}
	return h
}

// answerMemory is the runtime's answeredCache as the dedup middleware's Memory.
type answerMemory struct{ c *answeredCache }

// Get returns the answer remembered under key.
func (m answerMemory) Get(key string) (schemas.ServiceResponse, bool) { return m.c.get(key) }

// Put remembers resp under key; the first answer is kept.
func (m answerMemory) Put(key string, resp schemas.ServiceResponse) { m.c.put(key, resp) }

// query is the core handler under the middleware: it asks the backend of the request's service
// and answers with its result, the source's final answer. The backend's error or panic is
// returned as a middleware.SourceError, for the middleware to retry, dead-letter or answer.
func (a *AdapterRuntime) query(adapter middleware.Adapter) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		req, ok := middleware.Request(msg)
		if !ok {
			return nil, errors.New("adapter: the message carries no decoded request")
		}
		log := a.logger.With(reqlog.Attrs(req.MessageID, CorrelationKey(req.RequestID, req.Service))...)
		result, err := a.ask(msg.Context(), log, req)
		if err != nil {
			return nil, err
		}
		m, err := adapter.Final(req, checkResult(log, req.Service, result))
		if err != nil {
			return nil, err
		}
		return []*message.Message{m}, nil
	}
}

// ask calls the backend, turning its failure, or its panic, into a middleware.SourceError: one
// broken backend must not take the runtime down. What the error's text (and the log) has of it
// has the subject's identifiers and the case number taken out: a source system's error text may
// quote the values it was asked with (a URL, an SQL error).
func (a *AdapterRuntime) ask(ctx context.Context, log *slog.Logger, req schemas.ServiceRequest) (result siobroker.ServiceResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			text := redact(fmt.Sprint(p), req)
			log.Error("backend panicked", "service", req.Service, "panic", text)
			result, err = siobroker.ServiceResult{}, &middleware.SourceError{Text: text, Panicked: true}
		}
	}()
	result, err = a.backends[req.Service].Query(ctx, req)
	if err != nil {
		return result, &middleware.SourceError{Err: err, Text: redact(err.Error(), req)}
	}
	return result, nil
}

// checkResult completes a backend's result: the service, and the status and reason it may leave
// out. A status it may not set makes it an error result.
func checkResult(log *slog.Logger, service int, result siobroker.ServiceResult) siobroker.ServiceResult {
	result.Service = service
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
		log.Warn("backend returned a status it may not set", "service", service, "status", result.Status)
		return siobroker.ServiceResult{Service: service, Status: siobroker.StatusError,
			Reason: siobroker.ReasonAdapterError, Message: "the source system answered with an error"}
	}
	return result
}

// redact takes the subject's IIN or BIN and the case reference out of text, a backend's error or
// panic, before it is logged (subjects' personal data never goes into logs).
func redact(text string, req schemas.ServiceRequest) string {
	return redactCase(replaceValue(replaceValue(text, req.Subject.IIN, "[subject]"), req.Subject.BIN, "[subject]"), req.Case)
}

// redactCase takes the case reference's numbers out of text.
func redactCase(text string, c siobroker.CaseRef) string {
	for _, v := range []string{c.Number, c.InstructionNo, c.CoveringLetterNo} {
		text = replaceValue(text, v, "[case]")
	}
	return text
}

func replaceValue(text, value, mark string) string {
	if len(value) < 4 { // shorter values would blank out unrelated text
		return text
	}
	return strings.ReplaceAll(text, value, mark)
}

// deadlineC fires at deadline; a zero deadline never fires.
func deadlineC(deadline time.Time) <-chan time.Time {
	if deadline.IsZero() {
		return nil
	}
	return time.After(time.Until(deadline))
}
