package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/reqlog"
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

func (a *AdapterRuntime) handle(msg *message.Message, queue string, served []int) error {
	var req schemas.ServiceRequest
	if err := json.Unmarshal(msg.Payload, &req); err != nil {
		// Without a request id there is nobody to answer; redelivery would fail the same way.
		a.logger.Error("undecodable service request dropped", "queue", queue, "transport_id", msg.UUID, "error", err)
		return nil
	}
	service := req.Service
	key := CorrelationKey(req.RequestID, service)
	log := a.logger.With(reqlog.Attrs(req.MessageID, key)...)
	if req.ReplyTo == "" {
		log.Error("service request without reply topic dropped", "queue", queue, "service", service)
		return nil
	}
	backend, ok := a.backends[service]
	if !ok || !slices.Contains(served, service) {
		// The routing table sends this service to a queue this adapter consumes for others: the
		// broker is told at once rather than left to time out, and the operator sees why.
		log.Error("service request for a service this adapter does not serve on this queue", "queue", queue, "service", service)
		return a.publishAnswer(msg.Context(), req, service, schemas.ServiceResponse{
			RequestID: req.RequestID, Service: service, Adapter: a.name, AnsweredAt: a.clock.Now(),
			Result: siobroker.ServiceResult{Service: service, Status: siobroker.StatusError, Reason: siobroker.ReasonAdapterError,
				Message: fmt.Sprintf("adapter %s does not serve service %d on queue %s; check the routing table", a.name, service, queue)},
		})
	}

	// A redelivered copy of a request this process has answered is not asked again: the same
	// answer goes back, so a lost answer is replaced and the source is queried once.
	if resp, ok := a.answered.get(key); ok {
		log.Info("redelivered request answered from the earlier answer", "service", service)
		return a.publishAnswer(msg.Context(), req, service, resp)
	}

	ctx := msg.Context()
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	var claim siobroker.LedgerClaim
	if a.ledger != nil {
		c, state, err := a.take(ctx, key)
		switch {
		case err != nil:
			// Whether another process asked the source already cannot be known: the source is
			// not asked, and the broker is told at once rather than left to time out.
			log.Error("the ledger cannot be read; the source is not asked", "service", service, "error", err)
			return a.publishAnswer(msg.Context(), req, service, schemas.ServiceResponse{
				RequestID: req.RequestID, Service: service, Adapter: a.name, AnsweredAt: a.clock.Now(),
				Result: errorResult(service, "the adapter cannot tell whether this request was answered before; retry later"),
			})
		case state == siobroker.LedgerAnswered:
			log.Info("redelivered request already answered by an adapter process; the copy is dropped", "service", service)
			return nil
		case state == siobroker.LedgerBusy:
			log.Warn("another adapter process held the request until its deadline; the copy is dropped", "service", service)
			return nil
		}
		claim = c
		defer claim.Release() // a no-op once Answered; otherwise a copy is asked again
	}
	result, gaveUp := a.query(ctx, log, backend, req)
	if gaveUp != nil && a.deadLetters != "" {
		// Dead-lettered first: should the answer then fail to go out, the request comes back
		// and is tried again, and a second copy in the dead-letter queue is the worst outcome.
		if err := a.deadLetter(msg, req, gaveUp); err != nil {
			return err
		}
	}

	resp := schemas.ServiceResponse{
		RequestID:  req.RequestID,
		Service:    service,
		Result:     result,
		Adapter:    a.name,
		AnsweredAt: a.clock.Now(),
	}
	// A request given up on is not remembered: replayed from the dead-letter queue, it is asked
	// again. An answer is remembered before it is published: a copy that reaches this process
	// while the answer is on its way, or one delivered again because the publish failed, is given
	// the same answer rather than asked of the source again.
	if gaveUp == nil {
		a.answered.put(key, resp)
	}
	if err := a.publishAnswer(msg.Context(), req, service, resp); err != nil {
		return err
	}
	if gaveUp != nil {
		return nil
	}
	if claim != nil {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerCallLimit)
		defer cancel()
		if err := claim.Answered(lctx, resp.AnsweredAt); err != nil {
			// The answer is out; a copy reaching another process would be asked again.
			log.Warn("answer not recorded in the ledger", "service", service, "error", err)
		}
	}
	return nil
}

// gaveUp says why the runtime stopped asking the source: every attempt failed transiently.
type gaveUp struct {
	attempts int
	last     error
}

// deadLetter puts a copy of the request, with why it is there, on the dead-letter topic.
func (a *AdapterRuntime) deadLetter(msg *message.Message, req schemas.ServiceRequest, g *gaveUp) error {
	dead := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		dead.Metadata.Set(k, v)
	}
	reason := fmt.Sprintf("the source failed transiently %d times (adapter %s); last error: %s", g.attempts, a.name, describeError(g.last))
	dead.Metadata.Set(schemas.MetaDeadReason, reason)
	dead.Metadata.Set(schemas.MetaDeadTopic, schemas.ServiceTopic(req.Service))
	dead.Metadata.Set(schemas.MetaDeadAttempts, strconv.Itoa(g.attempts))
	dead.Metadata.Set(schemas.MetaDeadAt, a.clock.Now().Format(time.RFC3339))
	if err := publishPatiently(msg.Context(), a.publisher, a.logger, deadlineC(req.Deadline), a.deadLetters, dead); err != nil {
		return fmt.Errorf("dead-letter %s service %d: %w", req.RequestID, req.Service, err)
	}
	a.logger.Warn("request dead-lettered after its attempts", "service", req.Service, "request_id", req.RequestID,
		"attempts", g.attempts, "topic", a.deadLetters)
	return nil
}

// describeError is err's text for the dead-letter reason, which operators read: without the
// URL of a failed HTTP call (its query may name the subject), without 12-digit numbers (IINs and
// BINs), and short.
func describeError(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = fmt.Errorf("%s: %w", urlErr.Op, urlErr.Err)
	}
	s := twelveDigits.ReplaceAllString(err.Error(), "[number]")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

var twelveDigits = regexp.MustCompile(`\d{12}`)

// publishAnswer sends resp to the reply topic the request named. While the transport is
// unavailable it keeps trying, holding the request unacknowledged, until the request's deadline
// (nobody waits for the answer after it) or until ctx, the delivery's, ends.
func (a *AdapterRuntime) publishAnswer(ctx context.Context, req schemas.ServiceRequest, service int, resp schemas.ServiceResponse) error {
	out, err := newJSONMessage(NewMessageID(), resp, map[string]string{
		schemas.MetaRequestID:   req.RequestID,
		schemas.MetaService:     strconv.Itoa(service),
		schemas.MetaCorrelation: CorrelationKey(req.RequestID, service),
		schemas.MetaMessageID:   req.MessageID,
	})
	if err != nil {
		return fmt.Errorf("encode answer to %s service %d: %w", req.RequestID, service, err)
	}
	if err := publishPatiently(ctx, a.publisher, a.logger, deadlineC(req.Deadline), req.ReplyTo, out); err != nil {
		// Returning the error nacks the request, so it is answered again rather than lost.
		return fmt.Errorf("publish answer to %s service %d: %w", req.RequestID, service, err)
	}
	return nil
}

// query calls the backend and turns its failure, or its panic, into an error result: one
// broken backend must not take the runtime down. What it logs of a backend's error has the
// subject's identifiers and the case number taken out: a source system's error text may quote the
// values it was asked with (a URL, an SQL error).
//
// It reports gaveUp when every attempt failed with a transient error before the deadline.
func (a *AdapterRuntime) query(ctx context.Context, log *slog.Logger, backend adapters.Backend, req schemas.ServiceRequest) (result siobroker.ServiceResult, g *gaveUp) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("backend panicked", "service", req.Service, "panic", redact(fmt.Sprint(p), req))
			result, g = errorResult(req.Service, "the source system failed"), nil
		}
	}()
	result, err := backend.Query(ctx, req)
	wait := a.backoff
	attempts := 1
	for ; err != nil && adapters.IsTransient(err) && attempts <= a.retries && ctx.Err() == nil; attempts++ {
		log.Info("transient backend error; retrying", "service", req.Service,
			"attempt", attempts, "backoff", wait, "error", redact(err.Error(), req))
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
				Reason: siobroker.ReasonTimeout, Message: "the source system did not answer in time"}, nil
		}
		log.Warn("backend error", "service", req.Service, "error", redact(err.Error(), req))
		if adapters.IsTransient(err) {
			// The cause may carry the source system's internals; the client gets a fixed text.
			return errorResult(req.Service, fmt.Sprintf("the source system kept failing (%d attempts)", attempts)), &gaveUp{attempts: attempts, last: err}
		}
		return errorResult(req.Service, "the source system answered with an error"), nil
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
		log.Warn("backend returned a status it may not set", "service", req.Service, "status", result.Status)
		return errorResult(req.Service, "the source system answered with an error"), nil
	}
	return result, nil
}

func errorResult(service int, message string) siobroker.ServiceResult {
	return siobroker.ServiceResult{Service: service, Status: siobroker.StatusError,
		Reason: siobroker.ReasonAdapterError, Message: message}
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
