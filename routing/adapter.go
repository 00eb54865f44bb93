package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/routing/middleware"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/schemas"
)

// AdapterRuntime serves services from their Backends: it consumes each service's topic and
// publishes every answer to the reply topic the request names. Each delivery goes through the
// stack of watermill middleware of package middleware (authentication, decode, served-service
// check, dedup, deadline, ledger claim, outcome, dead-lettering, retry, publish) around a core
// handler that asks the backend.
type AdapterRuntime struct {
	name        string
	backends    map[int]adapters.Backend
	publisher   message.Publisher
	clock       siobroker.Clock
	logger      *slog.Logger
	retries     int
	backoff     time.Duration
	answered    *answeredCache
	ledger      siobroker.Ledger // nil: redelivered copies are recognised in this process only
	queueOf     func(service int) string
	deadLetters string // "": a request whose retries are exhausted is answered ADAPTER_ERROR only
	auth        *msgauth.Adapter
	refused     func(reason msgauth.Reason)
	tracer      trace.TracerProvider
}

// Defaults of AdapterConfig.
const (
	DefaultAttempts = 4
	DefaultBackoff  = 100 * time.Millisecond
)

// AdapterConfig is what an AdapterRuntime is built from. Name, Publisher, Clock, Logger and Auth
// are required; the others may be left zero.
type AdapterConfig struct {
	// Name names the runtime in every answer, for tracing, and in its handlers' names.
	Name string
	// Backends are the services the runtime serves, by service number; none may be nil.
	Backends  map[int]adapters.Backend
	Publisher message.Publisher
	Clock     siobroker.Clock
	Logger    *slog.Logger
	// Auth holds the adapter's keys: every service message is checked with them before anything
	// else is done with it, and one the broker did not make for this adapter goes to DeadLetters
	// (dropped with a log line without); every answer is authenticated with them
	// (middleware.Authenticate, middleware.SignAnswers).
	Auth *msgauth.Adapter
	// ObserveRefusal is called with the reason of every service message refused as
	// unauthenticated, for a metric; nil: they are logged only.
	ObserveRefusal func(reason msgauth.Reason)
	// QueueOf names the queue each service's requests are consumed from (the routing table's);
	// default schemas.ServiceTopic, each service's own. Services that share a queue share one
	// handler.
	QueueOf func(service int) string
	// Attempts is how often a request is put to its backend while the backend fails transiently
	// (adapters.Transient): the first attempt and Attempts-1 retries, the first retry Backoff
	// after it and each further one after twice the previous wait; 1 retries nothing. Retries
	// stop at the broker's deadline in any case. When every attempt failed, the broker is
	// answered ADAPTER_ERROR, and with DeadLetters the request goes to the dead-letter queue too.
	// Defaults DefaultAttempts and DefaultBackoff.
	Attempts int
	Backoff  time.Duration
	// DeadLetters is the topic (the transport's dead-letter queue) a request goes to when its
	// source still fails transiently after every attempt, with the reason in its metadata
	// (schemas.MetaDeadReason and the others), before the broker is answered ADAPTER_ERROR as
	// usual: the client is not left waiting, and an operator can replay the request once the
	// source is back (its late answer then reaches the broker, which records and drops it, or
	// completes the asynchronous request still waiting for it). Poison goes there too, with its
	// reason: a message on a service queue that is not a service request, or a request that
	// names no reply topic. "" (the embedded GoChannel has no dead-letter queue): such a request
	// is answered ADAPTER_ERROR only, and poison is dropped with a log line.
	DeadLetters string
	// Ledger, when set, is where the runtime claims every request before asking its source (see
	// siobroker.Ledger, and middleware.Ledger for what it does with each state of a request).
	// Nil: redelivered copies are recognised in this process only.
	Ledger siobroker.Ledger
	// TracerProvider makes the consumer span of every delivery (middleware.Trace), continuing
	// the trace context the broker put in the message's metadata. Nil: the global one (the
	// process's).
	TracerProvider trace.TracerProvider
}

func (c *AdapterConfig) setDefaults() {
	if c.QueueOf == nil {
		c.QueueOf = schemas.ServiceTopic
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
}

// Validate reports what is wrong with c once its defaults are applied: every required field
// that is missing, a nil backend, and a negative Attempts or Backoff.
func (c AdapterConfig) Validate() error {
	c.setDefaults()
	var errs []error
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"Name", c.Name != ""},
		{"Publisher", c.Publisher != nil},
		{"Clock", c.Clock != nil},
		{"Logger", c.Logger != nil},
		{"Auth", c.Auth != nil},
	} {
		if !f.set {
			errs = append(errs, fmt.Errorf("routing: AdapterConfig.%s is required", f.name))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(c.Backends)) {
		if c.Backends[n] == nil {
			errs = append(errs, fmt.Errorf("routing: AdapterConfig.Backends[%d] is nil", n))
		}
	}
	if c.Attempts < 0 {
		errs = append(errs, fmt.Errorf("routing: AdapterConfig.Attempts must not be negative, got %d", c.Attempts))
	}
	if c.Backoff < 0 {
		errs = append(errs, fmt.Errorf("routing: AdapterConfig.Backoff must not be negative, got %s", c.Backoff))
	}
	return errors.Join(errs...)
}

// NewAdapterRuntime returns a runtime for the services in cfg.Backends. It applies the defaults
// of cfg and returns an error naming every field of cfg that is missing or invalid.
func NewAdapterRuntime(cfg AdapterConfig) (*AdapterRuntime, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &AdapterRuntime{name: cfg.Name, backends: cfg.Backends, publisher: cfg.Publisher, clock: cfg.Clock,
		logger: cfg.Logger, retries: cfg.Attempts - 1, backoff: cfg.Backoff, answered: newAnsweredCache(10000, answeredCacheBytes),
		ledger: cfg.Ledger, queueOf: cfg.QueueOf, deadLetters: cfg.DeadLetters, auth: cfg.Auth, refused: cfg.ObserveRefusal,
		tracer: cfg.TracerProvider}, nil
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

// AddHandlers registers one handler per queue on router.
func (a *AdapterRuntime) AddHandlers(router *message.Router, subscriber message.Subscriber) {
	byQueue := map[string][]int{}
	var queues []string
	for _, n := range a.Services() {
		q := a.queueOf(n)
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
		h := a.stack(q, served)
		router.AddConsumerHandler(name, q, subscriber, func(msg *message.Message) error {
			_, err := h(msg)
			return err
		})
	}
}

// stack is the handler of queue, on which the runtime serves the services served: the middleware
// of package middleware, in the order its documentation gives and explains, around the core
// handler, query. Dead-lettering is left out without AdapterConfig.DeadLetters, and the ledger
// without AdapterConfig.Ledger. It is put together once per queue, when the handlers are added,
// and handles the queue's deliveries side by side: no middleware keeps a delivery's state
// outside the call.
func (a *AdapterRuntime) stack(queue string, served []int) message.HandlerFunc {
	adapter := middleware.Adapter{Name: a.name, Clock: a.clock}
	publish := func(ctx context.Context, topic string, m *message.Message) error {
		return publishPatiently(ctx, a.publisher, a.logger, nil, topic, m)
	}
	poison := middleware.Poison{Topic: a.deadLetters, Publish: publish, Adapter: adapter}
	var here []int // the services of queue that have a backend
	for _, n := range served {
		if _, ok := a.backends[n]; ok {
			here = append(here, n)
		}
	}
	auth := middleware.Auth{Keys: a.auth, Refused: a.refused}
	stack := []message.HandlerMiddleware{
		middleware.Trace(a.tracer, queue),
		middleware.Authenticate(queue, auth, poison, a.logger),
		middleware.Decode(queue, poison, a.logger),
		middleware.Publish(publish),
		middleware.SignAnswers(auth),
		middleware.Served(queue, here, adapter, a.logger),
		middleware.Dedup(answerMemory{a.answered}, a.logger),
		middleware.Deadline(),
	}
	if a.ledger != nil {
		stack = append(stack, middleware.Ledger(a.ledger, adapter, poison, a.logger))
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
