package routing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/internal/tracing"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/schemas"
)

// DeliveryTracker is told when a message enters the broker's care and when it leaves it, so that
// a delay of delivery can be noticed while the message is still waiting (§39-41).
//
// A message that cannot be sent is reported by Failed, never only dropped: the tracker records it
// (an incident of the queue), and Published tells it when the queue takes messages again. Every
// method is called on the request's path and must not wait for I/O.
type DeliveryTracker interface {
	Sent(key string, service int, topic string, at time.Time)
	// Published reports a message of service the transport took on topic.
	Published(service int, topic string)
	Delivered(key string, at time.Time)
	// Abandon forgets a message that never entered the transport (its publish failed).
	Abandon(key string)
	// Failed reports a message of service that could not be sent to topic, and why.
	Failed(service int, topic string, err error)
}

type noTracker struct{}

func (noTracker) Sent(string, int, string, time.Time) {}
func (noTracker) Published(int, string)               {}
func (noTracker) Delivered(string, time.Time)         {}
func (noTracker) Abandon(string)                      {}
func (noTracker) Failed(int, string, error)           {}

// Dispatcher scatters a request's services to their adapters and gathers the answers.
type Dispatcher struct {
	answers     AnswerStore // nil: answers are held in memory only
	deadLetters string      // "": unreadable replies are dropped with a log line
	publisher   message.Publisher
	replyTopic  string
	clock       siobroker.Clock
	logger      *slog.Logger
	tracker     DeliveryTracker
	queueOf     func(service int) string
	counters    serviceCounters
	onAnswer    func(service int, status siobroker.ResultStatus, latency time.Duration)
	onLate      func(context.Context, LateAnswer) (bool, error)
	auth        *msgauth.Broker
	adapterOf   func(service int) string
	registryOf  func(registry string) string
	onRefused   func(service int, reason msgauth.Reason)
	tracer      trace.Tracer

	mu sync.Mutex
	// pending holds, per correlation key, the channels waiting for its answer. Usually one; two
	// when the same request is routed again while an earlier routing still waits (an
	// asynchronous request picked up twice), and then each gets the answer: a second waiter
	// must not take the key from the first, or the first one's release from the second.
	pending map[string][]chan answer
	// answeredKeys remembers the keys recently handed to a waiter, with the SHA-256 of the answer,
	// so that a copy of that answer (redelivered, or given again from an adapter's cache) is told
	// from a late one: the copy is only logged, while a late answer, or another answer to the
	// same key, is a result nobody received and goes to onLate. Changed under mu together with
	// pending.
	answeredKeys *boundedCache[[sha256.Size]byte]
	// lateMu makes the late path (is it a copy? record it, remember it) one step: the router
	// handles messages side by side, and a late answer redelivered because its record failed can
	// meet a copy of itself there, which must not both be recorded. Late answers are rare, and
	// normal answers never take it.
	lateMu sync.Mutex
}

// answeredMemory is how many answered keys a Dispatcher remembers. Copies of an answer come within
// seconds of the first (a lost ack, a reconnect, a request published again during an outage); at a
// thousand answers a second this covers ten. A copy older than that is taken for a late answer and
// journaled as one: a superfluous record, never a lost one.
const answeredMemory = 10000

// LateAnswer is an answer that reached the dispatcher when nobody waited for it any more: its
// wait had timed out or been cancelled, or this process was not the one that sent the request (it
// restarted in between), or it differs from the answer its waiter had (a dead-lettered request
// replayed after its adapter had answered ADAPTER_ERROR). Nobody received it, so the broker
// records it (see DispatcherConfig.OnLateAnswer).
type LateAnswer struct {
	Key       string // the correlation key
	RequestID string // the broker's id of the request
	Service   int    // 0 for a case check
	CaseCheck bool   // a case registry's answer (§5), key "request/case", rather than a service's
	MessageID string // the client's messageId, from the answer's metadata; "" if the adapter did not set it

	// Read from the answer when it could be (Readable). For a case check Status and Reason are
	// empty, Found and InProceedings are the registry's verdict and Adapter names the registry.
	Readable             bool
	Status               siobroker.ResultStatus
	Reason               string
	Adapter              string
	AnsweredAt           time.Time // on the adapter's clock
	Records              int
	Found, InProceedings bool

	ReceivedAt time.Time // when it reached the dispatcher, on the dispatcher's clock
	Payload    []byte    // the answer exactly as received
}

// DispatcherConfig is what a Dispatcher is built from. Publisher, ReplyTopic, Clock, Logger, Auth,
// AdapterOf and RegistryAdapterOf are required; the others may be left zero.
type DispatcherConfig struct {
	// Publisher sends the service messages and case checks.
	Publisher message.Publisher
	// ReplyTopic is the topic the answers arrive on. Each broker instance needs its own, so that
	// answers reach the process that holds the request.
	ReplyTopic string
	Clock      siobroker.Clock
	Logger     *slog.Logger
	// Auth authenticates every service message for the adapter its service is routed to
	// (AdapterOf), and checks that every service's answer was made by that adapter: an answer
	// that was not is refused (see OnRefusedAnswer), never given to a waiting request nor taken
	// for a late answer (package msgauth).
	Auth *msgauth.Broker
	// AdapterOf names the adapter each service is routed to (the routing table's), whose key
	// authenticates the service's messages and answers. It is called on every dispatch and
	// answer, so it may follow a reloaded table.
	AdapterOf func(service int) string
	// RegistryAdapterOf names the adapter each case registry is routed to (the routing table's
	// registries), whose key authenticates the registry's case checks and answers; "" when it has
	// none. It is called on every check and answer, so it may follow a reloaded table.
	RegistryAdapterOf func(registry string) string
	// ObserveRefusedAnswer is called with every answer refused as unauthenticated: its service (0
	// when it names none) and why, for a metric. It must be cheap and safe for concurrent use.
	// Nil: refusals are logged and dead-lettered only.
	ObserveRefusedAnswer func(service int, reason msgauth.Reason)
	// QueueOf names the topic each service's requests are sent to (the routing table's queue);
	// default schemas.ServiceTopic, each service's own. It is called on every dispatch, so it may
	// follow a reloaded table.
	QueueOf func(service int) string
	// Tracker is told of every service message (DeliveryTracker); nil: nobody is.
	Tracker DeliveryTracker
	// ObserveAnswer is called with every answer that comes in time: its service, status and the
	// time from dispatch to answer on Clock. It must be cheap and safe for concurrent use (a
	// metrics histogram). Nil: none is observed.
	ObserveAnswer func(service int, status siobroker.ResultStatus, latency time.Duration)
	// OnLateAnswer is called with every late answer (see LateAnswer); a copy of an answer already
	// given to its waiter, or already taken by OnLateAnswer (the same bytes), is not one, and is
	// only logged. It runs on the reply handler, which acknowledges the answer only once it
	// returned nil: it records the answer durably before it returns, so that a broker killed in
	// between gets it delivered again rather than losing a result. An error gives the answer back
	// to the transport, to be delivered again (over RabbitMQ, up to the reply queue's delivery
	// limit, after which it is dead-lettered with the reason); it should wait a little before it
	// fails, as a redelivery is immediate. It reports whether the answer is late after all: a
	// copy of the answer its request's reply carried (delivered again after a restart) is not,
	// and is neither counted nor logged as late. Nil: late answers are only logged and counted.
	OnLateAnswer func(context.Context, LateAnswer) (late bool, err error)
	// Answers keeps every service's answer durably before the transport is told it arrived
	// (see AnswerStore), and a service whose answer it holds is not asked again: a request
	// resumed after a crash, or retried after its reply could not be journaled, is completed
	// from it. Nil: answers are kept in memory only, and a crash between an answer's arrival and
	// its journal record loses it.
	Answers AnswerStore
	// DeadLetters is the topic (the transport's dead-letter queue) a reply that cannot be read or
	// correlated goes to, with the reason in its metadata. "": such a reply is logged and dropped
	// (the in-process transport has no dead-letter queue).
	DeadLetters string
	// TracerProvider makes a span for every service leg and case check (its publish, and the wait
	// for its answer), under the request's span in the context; the publish's trace context goes
	// in the message's metadata (traceparent), where the adapter continues it. Nil: the global
	// one (the process's).
	TracerProvider trace.TracerProvider
}

// AnswerStore keeps the answers of services as the dispatcher received them (sqlite.DB
// implements it). The key is the correlation key, request/service; resultSum identifies the
// answer's result, so that a copy of it (the same result, sent again or by another adapter
// process) is told from another answer.
type AnswerStore interface {
	// KeepAnswer stores payload as the answer of key unless one is held. first reports that it
	// was stored now; same, that the answer held has the same resultSum.
	KeepAnswer(ctx context.Context, key string, payload, resultSum []byte, at time.Time) (first, same bool, err error)
	// Answer returns the answer held for key.
	Answer(ctx context.Context, key string) (payload []byte, ok bool, err error)
}

func (c *DispatcherConfig) setDefaults() {
	if c.QueueOf == nil {
		c.QueueOf = schemas.ServiceTopic
	}
	if c.Tracker == nil {
		c.Tracker = noTracker{}
	}
}

// Validate reports what is wrong with c once its defaults are applied: every required field
// that is missing.
func (c DispatcherConfig) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Publisher == nil {
		errs = append(errs, errors.New("routing: DispatcherConfig.Publisher is required"))
	}
	if c.ReplyTopic == "" {
		errs = append(errs, errors.New("routing: DispatcherConfig.ReplyTopic is required"))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("routing: DispatcherConfig.Clock is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("routing: DispatcherConfig.Logger is required"))
	}
	if c.Auth == nil {
		errs = append(errs, errors.New("routing: DispatcherConfig.Auth is required"))
	}
	if c.AdapterOf == nil {
		errs = append(errs, errors.New("routing: DispatcherConfig.AdapterOf is required"))
	}
	if c.RegistryAdapterOf == nil {
		errs = append(errs, errors.New("routing: DispatcherConfig.RegistryAdapterOf is required"))
	}
	return errors.Join(errs...)
}

// NewDispatcher returns a Dispatcher whose answers arrive on cfg.ReplyTopic. It applies the
// defaults of cfg and returns an error naming every field of cfg that is missing.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Dispatcher{
		answers:      cfg.Answers,
		deadLetters:  cfg.DeadLetters,
		publisher:    cfg.Publisher,
		replyTopic:   cfg.ReplyTopic,
		clock:        cfg.Clock,
		logger:       cfg.Logger,
		tracker:      cfg.Tracker,
		queueOf:      cfg.QueueOf,
		onAnswer:     cfg.ObserveAnswer,
		onLate:       cfg.OnLateAnswer,
		auth:         cfg.Auth,
		adapterOf:    cfg.AdapterOf,
		registryOf:   cfg.RegistryAdapterOf,
		onRefused:    cfg.ObserveRefusedAnswer,
		tracer:       tracing.Tracer(cfg.TracerProvider),
		pending:      make(map[string][]chan answer),
		answeredKeys: newBoundedCache[[sha256.Size]byte](answeredMemory),
	}, nil
}

// Stats returns what d counted for every service it has dispatched to since it started.
func (d *Dispatcher) Stats() map[int]ServiceStats { return d.counters.snapshot(d.clock.Now()) }

// InFlight returns, for every service with messages awaiting their answer, how many.
func (d *Dispatcher) InFlight() map[int]int { return d.counters.inFlight() }

// ReplyTopic is the topic this dispatcher gathers answers from.
func (d *Dispatcher) ReplyTopic() string { return d.replyTopic }

// AddHandlers registers the reply handler on router.
func (d *Dispatcher) AddHandlers(router *message.Router, subscriber message.Subscriber) {
	router.AddConsumerHandler("broker-replies", d.replyTopic, subscriber, d.handleReply)
}

func (d *Dispatcher) handleReply(msg *message.Message) error {
	key, err := correlationOf(msg)
	if err != nil {
		// A reply that cannot be read can never be correlated; redelivering it would loop.
		return d.deadLetter(msg, "unreadable reply", unreadable(err), err)
	}
	if ok, err := d.authentic(msg, key); !ok {
		return err
	}
	now := d.clock.Now()
	// Delivered even when nobody waits any more: a late answer still ends the delay of its message.
	d.tracker.Delivered(key, now)
	if d.answers != nil && !strings.HasSuffix(key, "/"+caseKeySuffix) {
		return d.keepThenHand(msg, key, now)
	}
	return d.hand(msg, key, answer{payload: msg.Payload}, now)
}

// correlationOf is the correlation key of a reply: its MetaCorrelation, or, from an adapter that
// does not set the header, the request and service its answer names.
func correlationOf(msg *message.Message) (string, error) {
	if key := msg.Metadata.Get(schemas.MetaCorrelation); key != "" {
		return key, nil
	}
	var resp schemas.ServiceResponse
	if err := json.Unmarshal(msg.Payload, &resp); err != nil {
		return "", fmt.Errorf("a reply without %s whose body is not a service answer: %w", schemas.MetaCorrelation, err)
	}
	if resp.RequestID == "" {
		return "", fmt.Errorf("a reply without %s whose answer names no request", schemas.MetaCorrelation)
	}
	return CorrelationKey(resp.RequestID, resp.Service), nil
}

// keepThenHand stores a service's answer (Answers) before anything else is done with it: the
// reply is acknowledged only once the answer is held, so that a broker killed at any instant
// loses none. A copy of the answer held is handed only to a wait that did not find it (a
// resumed request asking again); another answer to the same key is a result nobody received,
// and goes to OnLateAnswer.
func (d *Dispatcher) keepThenHand(msg *message.Message, key string, now time.Time) error {
	a := decodeAnswer(msg.Payload)
	sum := resultSum(a)
	var first, same bool
	var err error
	for attempt := 1; ; attempt++ {
		first, same, err = d.answers.KeepAnswer(msg.Context(), key, msg.Payload, sum, now)
		if !errors.Is(err, siobroker.ErrWriteTimeout) || msg.Context().Err() != nil {
			break
		}
		// The store is locked or slow (each attempt waited its write timeout). The answer is
		// held here until it is kept, not given back: RabbitMQ counts every return toward the
		// reply queue's delivery limit, and a lock that outlasted a few write timeouts would
		// dead-letter every answer that came meanwhile.
		if attempt == 1 {
			d.logger.Warn("answer not kept yet: the store takes no writes; holding it until it does",
				append(reqlog.Attrs(msg.Metadata.Get(schemas.MetaMessageID), key), "error", err)...)
		}
	}
	if err != nil {
		d.logger.Error("answer not kept; it is given back to the transport to be delivered again",
			append(reqlog.Attrs(msg.Metadata.Get(schemas.MetaMessageID), key), "error", err)...)
		return fmt.Errorf("keep answer %s: %w", key, err)
	}
	switch {
	case first:
		return d.hand(msg, key, a, now)
	case same:
		if d.handToWaiters(key, a) == 0 {
			d.logger.Info("duplicate answer dropped: the answer is held already", reqlog.Attrs(msg.Metadata.Get(schemas.MetaMessageID), key)...)
		}
		return nil
	default:
		return d.lateOnce(msg, key, sha256.Sum256(msg.Payload), now)
	}
}

// AnswerDigest is the hex SHA-256 of an adapter's answer exactly as it came: the journal's
// exchange and late records carry it, and a copy of an answer is known by it.
func AnswerDigest(payload []byte) string {
	sum := sha256.Sum256(payload)
	return hex.EncodeToString(sum[:])
}

// answer is a service's answer as the dispatcher hands it to its waits: the payload as it came,
// and its decoding when the dispatcher has decoded it already (keepThenHand, for the answer's sum),
// so that a wait does not decode it again.
type answer struct {
	payload []byte
	resp    *schemas.ServiceResponse // nil: not decoded, or not a service answer
	sum     *[sha256.Size]byte       // the SHA-256 of payload, when handToWaiters has taken it
}

// decodeAnswer is payload with its decoding, when it decodes as a service answer.
func decodeAnswer(payload []byte) answer {
	var resp schemas.ServiceResponse
	if err := json.Unmarshal(payload, &resp); err != nil {
		return answer{payload: payload}
	}
	return answer{payload: payload, resp: &resp}
}

// resultSum identifies the result an answer carries, without the adapter's name and times: two
// processes answering one request alike give the same sum.
func resultSum(a answer) []byte {
	body := a.payload
	if a.resp != nil {
		if b, err := json.Marshal(a.resp.Result); err == nil {
			body = b
		}
	}
	sum := sha256.Sum256(body)
	return sum[:]
}

// handToWaiters gives a to the waits for key and ends them; it returns how many there were. Its
// decoding goes only to a single wait: several share none of the result's records.
func (d *Dispatcher) handToWaiters(key string, a answer) int {
	d.mu.Lock()
	waiters := d.pending[key]
	delete(d.pending, key)
	if len(waiters) > 0 {
		sum := sha256.Sum256(a.payload)
		a.sum = &sum // the answer's digest in the journal (Outcome.AnswerDigest)
		d.answeredKeys.put(key, sum)
	}
	d.mu.Unlock()
	if len(waiters) > 1 {
		a.resp = nil
	}
	for _, ch := range waiters {
		ch <- a // buffered, and each waiter is removed once answered: never blocks
	}
	return len(waiters)
}

// hand gives an answer to its waits, or, when nobody waits, records it as late unless it is a
// copy of one handed out or recorded already.
func (d *Dispatcher) hand(msg *message.Message, key string, a answer, now time.Time) error {
	if d.handToWaiters(key, a) > 0 {
		return nil
	}
	sum := sha256.Sum256(a.payload)
	d.mu.Lock()
	first, seen := d.answeredKeys.get(key)
	d.mu.Unlock()
	if seen && first == sum {
		d.logger.Info("duplicate answer dropped: its waiter had the first copy", reqlog.Attrs(msg.Metadata.Get(schemas.MetaMessageID), key)...)
		return nil
	}
	return d.lateOnce(msg, key, sum, now)
}

// unreadable is the dead-letter reason of a reply that cannot be correlated (cause): the class of
// cause only (schemas.DeadReason); its text goes to the log.
func unreadable(cause error) schemas.DeadReason {
	reason := schemas.DeadReason{Category: schemas.DeadReplyUnreadable}.WithError(cause)
	if reason.Error == schemas.ErrorOther { // correlationOf's own: the body is an answer to no request
		reason.Error = schemas.ErrorNoRequest
	}
	return reason
}

// authentic reports whether the adapter a service (or a case registry) is routed to made its
// answer, msg. It refuses one it did not make: a forged answer is neither given to the request
// waiting for it nor journaled as a late answer with nobody's signer, and a forged case answer
// never passes a case as in the signer's proceedings. The refusal is dead-lettered with why
// (dropped where there is no dead-letter queue), logged and counted; err is that of the dead
// letter, nil once it is out.
func (d *Dispatcher) authentic(msg *message.Message, key string) (ok bool, err error) {
	_, service, caseCheck := splitKey(key)
	var adapter string
	switch {
	case caseCheck:
		registry := msg.Metadata.Get(schemas.MetaRegistry)
		if adapter = d.registryOf(registry); adapter == "" {
			err = &msgauth.Error{Reason: msgauth.ReasonWrongRegistry, Detail: "the case answer names no registry routed to an adapter"}
		} else {
			err = d.auth.CheckCaseAnswer(adapter, registry, msg.Metadata, msg.Payload, time.Now())
		}
	case service > 0 && d.adapterOf(service) != "":
		err = d.auth.CheckAnswer(d.adapterOf(service), msg.Metadata, msg.Payload, time.Now())
	default:
		err = &msgauth.Error{Reason: msgauth.ReasonWrongAdapter, Detail: "the answer names no service routed to an adapter"}
	}
	if err == nil {
		return true, nil
	}
	reason := msgauth.ReasonMalformed
	var e *msgauth.Error
	if errors.As(err, &e) {
		reason = e.Reason
	}
	if service >= siobroker.FirstService && service <= siobroker.LastService {
		d.counters.refused(service) // a number from outside Appendix 2 would grow the counters without bound
	}
	if d.onRefused != nil {
		d.onRefused(service, reason)
	}
	d.logger.Error("unauthenticated answer refused: it is not given to any request, nor journaled as late",
		append(reqlog.Attrs(msg.Metadata.Get(schemas.MetaMessageID), key), "service", service, "auth_refusal", string(reason), "error", err)...)
	return false, d.deadLetter(msg, "unauthenticated answer",
		schemas.DeadReason{Category: schemas.DeadAnswerUnauthenticated, Service: service, Auth: reason}, err)
}

// deadLetter puts a reply that cannot be handled in the dead-letter queue with reason, and
// acknowledges it; without a dead-letter queue it is logged and dropped. what names it in the
// log, with cause, whose text the letter does not carry.
func (d *Dispatcher) deadLetter(msg *message.Message, what string, reason schemas.DeadReason, cause error) error {
	attrs := []any{"transport_id", msg.UUID, reqlog.KeyMessageID, msg.Metadata.Get(schemas.MetaMessageID), "reason", reason.String(), "error", cause}
	if d.deadLetters == "" {
		d.logger.Error(what+" dropped (no dead-letter queue on this transport)", attrs...)
		return nil
	}
	dead := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		dead.Metadata.Set(k, v)
	}
	dead.Metadata.Set(schemas.MetaDeadReason, reason.Header())
	dead.Metadata.Set(schemas.MetaDeadTopic, d.replyTopic)
	dead.Metadata.Set(schemas.MetaDeadAt, d.clock.Now().Format(time.RFC3339))
	if err := d.publisher.Publish(d.deadLetters, dead); err != nil {
		d.logger.Error(what+" not dead-lettered; it is given back to the transport", append(attrs, "error", err)...)
		return fmt.Errorf("dead-letter %s %s: %w", what, msg.UUID, err)
	}
	d.logger.Error(what+" dead-lettered", attrs...)
	return nil
}

// lateOnce records a late answer unless a copy of it was recorded or handed out meanwhile.
func (d *Dispatcher) lateOnce(msg *message.Message, key string, sum [sha256.Size]byte, now time.Time) error {
	d.lateMu.Lock()
	defer d.lateMu.Unlock()
	d.mu.Lock()
	first, ok := d.answeredKeys.get(key)
	d.mu.Unlock()
	if ok && first == sum {
		d.logger.Info("duplicate answer dropped: a copy of it was recorded already", reqlog.Attrs(msg.Metadata.Get(schemas.MetaMessageID), key)...)
		return nil
	}
	if err := d.late(msg, key, now); err != nil {
		return err
	}
	d.mu.Lock()
	d.answeredKeys.put(key, sum) // a copy of a recorded late answer is not another result
	d.mu.Unlock()
	return nil
}

// late hands an answer nobody waits for to DispatcherConfig.OnLateAnswer, with what can be read
// of it, and returns the hook's error: the answer is then not recorded, and is delivered again.
func (d *Dispatcher) late(msg *message.Message, key string, at time.Time) error {
	a, err := NewLateAnswer(key, msg.Metadata.Get(schemas.MetaMessageID), msg.Payload, at)
	attrs := append(reqlog.Attrs(a.MessageID, key), "service", a.Service, "status", a.Status, "reason", a.Reason)
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	if d.onLate != nil {
		late, err := d.onLate(msg.Context(), a)
		if err != nil {
			d.logger.Error("late answer not recorded; it is given back to the transport to be delivered again",
				append(attrs, "error", err)...)
			return fmt.Errorf("record late answer %s: %w", key, err)
		}
		if !late {
			return nil // the hook said why
		}
	}
	// Counted once recorded: an answer delivered again after a failed record is one late answer.
	if !a.CaseCheck && a.Service > 0 {
		d.counters.late(a.Service)
	}
	d.logger.Warn("late answer: its wait had ended; it is recorded, or taken by its request's completion", attrs...)
	return nil
}

// NewLateAnswer is the LateAnswer of payload, the answer of key received at at, with what can be
// read of it; err says why it could not be read (the answer is then not Readable).
func NewLateAnswer(key, messageID string, payload []byte, at time.Time) (LateAnswer, error) {
	a := LateAnswer{Key: key, MessageID: messageID, ReceivedAt: at, Payload: payload}
	a.RequestID, a.Service, a.CaseCheck = splitKey(key)
	var err error
	if a.CaseCheck {
		var resp schemas.CaseCheckResponse
		if err = json.Unmarshal(payload, &resp); err == nil {
			a.Readable, a.Adapter, a.AnsweredAt = true, resp.Registry, resp.AnsweredAt
			a.Found, a.InProceedings = resp.Found, resp.InProceedings
		}
	} else {
		var resp schemas.ServiceResponse
		if err = json.Unmarshal(payload, &resp); err == nil {
			a.Readable, a.Adapter, a.AnsweredAt = true, resp.Adapter, resp.AnsweredAt
			a.Status, a.Reason, a.Records = resp.Result.Status, resp.Result.Reason, len(resp.Result.Records)
		}
	}
	return a, err
}

// splitKey reads a correlation key: "request/service" (CorrelationKey) or "request/case".
// A key of another shape keeps its whole text as the request id, with service 0.
func splitKey(key string) (requestID string, service int, caseCheck bool) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return key, 0, false
	}
	if key[i+1:] == caseKeySuffix {
		return key[:i], 0, true
	}
	n, err := strconv.Atoi(key[i+1:])
	if err != nil || n <= 0 {
		return key, 0, false
	}
	return key[:i], n, false
}

// caseKeySuffix ends the correlation key of a case check: "request/case".
const caseKeySuffix = "case"

// await registers key and returns the channel its answer will arrive on, and a release func
// that must be called when the caller stops waiting.
func (d *Dispatcher) await(key string) (<-chan answer, func()) {
	ch := make(chan answer, 1)
	d.mu.Lock()
	d.pending[key] = append(d.pending[key], ch)
	// Waited for anew (a request resumed or routed again): an answer that comes after this wait
	// ends unanswered is late, whatever an earlier wait received.
	d.answeredKeys.forget(key)
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		waiters := slices.DeleteFunc(d.pending[key], func(c chan answer) bool { return c == ch })
		if len(waiters) == 0 {
			delete(d.pending, key)
		} else {
			d.pending[key] = waiters
		}
	}
}

// Dispatch sends each request to its service's topic and waits for every answer, or for the
// service's timeout. The results are in the order of reqs. A service that cannot be dispatched or
// does not answer in time gets an error or timeout result; the others still come back.
func (d *Dispatcher) Dispatch(ctx context.Context, reqs []schemas.ServiceRequest, timeout func(service int) time.Duration) []Outcome {
	outcomes := make([]Outcome, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wait := timeout(req.Service)
		wg.Go(func() { outcomes[i] = d.dispatch(ctx, req, wait, wait, nil) })
	}
	wg.Wait()
	return outcomes
}

// DispatchLate sends req to its service's topic and waits for its answer for up to wait, beyond
// the service's time limit, limit, when wait is the longer: the late services of a request
// (broker/late.go). When limit passes first, the message is counted a timeout then, as Dispatch
// counts one, and overdue is called, once, while DispatchLate goes on waiting (also while its
// publish still waits out an outage of the transport): the caller answers its client then, and
// takes what comes afterwards for the complete result. That Outcome is Late, and an answer in it
// is counted late. The adapter is given wait as the deadline.
func (d *Dispatcher) DispatchLate(ctx context.Context, req schemas.ServiceRequest, limit, wait time.Duration, overdue func()) Outcome {
	return d.dispatch(ctx, req, limit, wait, overdue)
}

func (d *Dispatcher) dispatch(ctx context.Context, req schemas.ServiceRequest, limit, wait time.Duration, overdue func()) Outcome {
	req.ReplyTo = d.replyTopic
	// The deadline is enforced by the adapter against its own wall clock, so it comes from the
	// wall clock too; the injected clock only stamps the times that are recorded.
	req.Deadline = time.Now().Add(wait)
	ctx, span := d.tracer.Start(ctx, fmt.Sprintf("service %03d", req.Service), trace.WithAttributes(
		tracing.KeyService.Int(req.Service), tracing.KeyRequestID.String(req.RequestID), tracing.KeyMessageID.String(req.MessageID),
		tracing.KeyAdapter.String(d.adapterOf(req.Service))))
	defer span.End()
	out := d.dispatchOne(ctx, req, limit, wait, overdue)
	span.SetAttributes(tracing.KeyStatus.String(string(out.Result.Status)), tracing.KeyReason.String(string(out.Result.Reason)),
		attribute.Bool("sio.late", out.Late))
	if out.Result.Status == siobroker.StatusError || out.Result.Status == siobroker.StatusTimeout {
		span.SetStatus(codes.Error, string(out.Result.Reason))
	}
	return out
}

// Outcome is the result of one service, with the times the journal needs.
type Outcome struct {
	Result       siobroker.ServiceResult
	Adapter      string
	DispatchedAt time.Time
	AnsweredAt   time.Time // zero when there was no answer
	// AnswerDigest is the hex SHA-256 of the adapter's answer exactly as it came (the same
	// whether it came now or was held from before a restart); "" when there was no answer. The
	// exchange record keeps it, so that a copy of the answer delivered again is known for it.
	AnswerDigest string
	// Late is set when the service's time limit passed before this outcome, while DispatchLate
	// still waited: the message was counted a timeout then (and an answer that came, late).
	Late bool
}

// waited is the count of one service message while it is waited for. Its time limit may pass
// at any moment, also while it is still being published, so the timer that marks it overdue and
// the dispatcher's wait race for it under mu; whichever comes first decides how it is counted.
type waited struct {
	d       *Dispatcher
	service int
	mu      sync.Mutex
	overdue bool // the limit passed first: counted a timeout, and overdue until ended
	ended   bool
}

// pastLimit marks the message overdue, unless it ended first, and reports whether it did so.
func (m *waited) pastLimit() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return false
	}
	m.overdue = true
	m.d.counters.overdue(m.service, m.d.clock.Now())
	return true
}

// end counts how the message ended (at at), unless it was overdue: then its timeout is counted
// already, and only an answer is counted, as late. It reports whether the message was overdue.
func (m *waited) end(how ending, at time.Time, answered bool) (wasOverdue bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended = true
	if m.overdue {
		m.d.counters.settle(m.service, answered)
		return true
	}
	m.d.counters.end(m.service, how, at)
	return false
}

func (d *Dispatcher) dispatchOne(ctx context.Context, req schemas.ServiceRequest, limit, wait time.Duration, onOverdue func()) Outcome {
	key := CorrelationKey(req.RequestID, req.Service)
	ids := reqlog.Attrs(req.MessageID, key)
	ch, release := d.await(key)
	defer release()

	timer := time.NewTimer(wait)
	defer timer.Stop()

	out := Outcome{DispatchedAt: d.clock.Now()}
	d.counters.begin(req.Service, out.DispatchedAt)
	m := &waited{d: d, service: req.Service}
	if limit < wait {
		// Its own timer rather than a case of the selects below: the limit must be counted, and
		// the caller told, while the publish still waits out an outage of the transport.
		t := time.AfterFunc(limit, func() {
			if m.pastLimit() && onOverdue != nil {
				onOverdue()
			}
		})
		defer t.Stop()
	}
	// Registered first, then looked up: an answer stored meanwhile reaches the wait either way.
	// A request's first dispatch has no answer to look up (FirstDispatch).
	if !isFirstDispatch(ctx, req.RequestID) {
		if payload, ok := d.heldAnswer(ctx, key, ids); ok {
			return d.answered(out, m, req, answer{payload: payload})
		}
	}
	req.SentAt = out.DispatchedAt
	topic := d.queueOf(req.Service)
	msg, err := newJSONMessage(key, req, requestMetadata(req))
	pctx, publishing := d.startPublish(ctx, topic, key)
	if err == nil {
		// The MAC does not cover the trace context (msgauth): it only joins spans, and an
		// adapter of a version that does not trace ignores it.
		tracing.Inject(pctx, msg.Metadata)
		err = d.auth.SignRequest(d.adapterOf(req.Service), msg.Metadata, msg.Payload, req.Deadline)
	}
	if err == nil {
		// Tracked before the publish: the answer may come back before Publish returns.
		d.tracker.Sent(key, req.Service, topic, out.DispatchedAt)
		err = d.publish(ctx, timer.C, topic, msg)
		endPublish(publishing, err)
		if err != nil {
			select {
			case a := <-ch:
				// An attempt did reach the adapter, only its confirm was lost.
				d.tracker.Published(req.Service, topic)
				return d.answered(out, m, req, a)
			default:
			}
			d.tracker.Abandon(key)
		} else {
			d.tracker.Published(req.Service, topic)
		}
	}
	if err != nil {
		endPublish(publishing, err) // a no-op when the publish itself ended it
		d.tracker.Failed(req.Service, topic, err)
		d.logger.Error("dispatch failed", append(ids, "service", req.Service, "error", err)...)
		out.Result = siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusError,
			Reason: siobroker.ReasonUnavailable, Message: "the service could not be dispatched"}
		out.Late = m.end(endDispatchError, d.clock.Now(), false)
		return out
	}

	select {
	case a := <-ch:
		return d.answered(out, m, req, a)
	case <-timer.C:
		out.Result = siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusTimeout,
			Reason: siobroker.ReasonTimeout, Message: fmt.Sprintf("no answer within %s", wait)}
		out.Late = m.end(endTimeout, d.clock.Now(), false)
	case <-ctx.Done():
		out.Result = siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusTimeout,
			Reason: siobroker.ReasonTimeout, Message: "the request was cancelled before the answer came"}
		out.Late = m.end(endTimeout, d.clock.Now(), false)
	}
	return out
}

// startPublish starts the producer span of a message to topic: its context is the one the
// message carries to the adapter, whose consumer span is its child.
func (d *Dispatcher) startPublish(ctx context.Context, topic, key string) (context.Context, trace.Span) {
	return d.tracer.Start(ctx, "publish "+topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		tracing.KeyMessagingDestination.String(topic),
		tracing.KeyMessagingOperation.String("send"), tracing.KeyMessagingMessageID.String(key)))
}

// endPublish ends a producer span with how the publish went. The error's text stays in the log:
// it names the transport's state, not what a span should carry.
func endPublish(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "publish failed")
	}
	span.End()
}

// firstDispatchKey is the context key of FirstDispatch: the broker's id of the request.
type firstDispatchKey struct{}

// FirstDispatch returns ctx marking the dispatches of the request requestID under it as its
// first: the request was admitted by the call that routes it, and no service of it was asked
// before, so no answer can be held for it (an answer is kept only as it arrives for a message
// sent) and the dispatcher does not look one up. The look-up is a read of the store for each
// service, and a fresh one: the store's writes in between leave the reading connection's pages
// stale (3% of the broker's CPU for a one-service request, docs/benchmarks.md). A request the
// worker resumes, completes or routes again is dispatched without the mark, and its services'
// held answers are used.
func FirstDispatch(ctx context.Context, requestID string) context.Context {
	return context.WithValue(ctx, firstDispatchKey{}, requestID)
}

// isFirstDispatch reports whether ctx marks the first dispatch of the request requestID.
func isFirstDispatch(ctx context.Context, requestID string) bool {
	id, ok := ctx.Value(firstDispatchKey{}).(string)
	return ok && id != "" && id == requestID
}

// heldAnswer returns the answer Answers holds for key: a service answered before a crash, or
// before a reply that could not be journaled, is not asked again. A store that cannot be read
// only costs the question: the adapters' ledger answers a copy from what it recorded.
func (d *Dispatcher) heldAnswer(ctx context.Context, key string, ids []any) ([]byte, bool) {
	if d.answers == nil {
		return nil, false
	}
	payload, ok, err := d.answers.Answer(ctx, key)
	if err != nil {
		d.logger.Warn("held answers cannot be read; the service is asked again", append(ids, "error", err)...)
		return nil, false
	}
	if ok {
		d.logger.Info("service answered from the answer held", ids...)
	}
	return payload, ok
}

// answered completes out with the adapter's answer, and counts it as what it is: a result (ok,
// without records, or the source's error), a timeout when the adapter says its source did not
// answer in time, or late when the message's limit had passed.
func (d *Dispatcher) answered(out Outcome, m *waited, req schemas.ServiceRequest, a answer) Outcome {
	payload := a.payload
	var resp schemas.ServiceResponse
	if a.resp != nil {
		resp = *a.resp
	} else if err := json.Unmarshal(payload, &resp); err != nil {
		d.logger.Error("undecodable adapter answer", append(reqlog.Attrs(req.MessageID, CorrelationKey(req.RequestID, req.Service)),
			"service", req.Service, "error", err)...)
		out.Result = siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusError,
			Reason: siobroker.ReasonAdapterError, Message: "the adapter's answer could not be read"}
		out.Late = m.end(endDispatchError, d.clock.Now(), false)
		return out
	}
	out.Result = resp.Result
	out.Result.Service = req.Service
	out.Adapter = resp.Adapter
	if a.sum != nil {
		out.AnswerDigest = hex.EncodeToString(a.sum[:])
	} else {
		out.AnswerDigest = AnswerDigest(payload)
	}
	out.AnsweredAt = d.clock.Now()
	how := endAnswered
	switch out.Result.Status {
	case siobroker.StatusOK:
		if out.Result.Reason == siobroker.ReasonNoData {
			how = endNoData
		}
	case siobroker.StatusTimeout:
		how = endTimeout
	default: // error, and a status no adapter may give (denied is the broker's)
		how = endErrorAnswer
	}
	if out.Late = m.end(how, out.AnsweredAt, true); !out.Late {
		// The charts' latencies are the ones /metrics observes: the answers within their limit.
		latency := out.AnsweredAt.Sub(out.DispatchedAt)
		d.counters.latency(req.Service, latency, out.AnsweredAt)
		if d.onAnswer != nil {
			d.onAnswer(req.Service, out.Result.Status, latency)
		}
	}
	return out
}

// CountUndispatched counts a service's result that the broker gave without dispatching a message:
// denied by the access rights, or MAINTENANCE (ServiceStats.Denied and Maintenance). Other results
// are not counted here.
func (d *Dispatcher) CountUndispatched(r siobroker.ServiceResult) {
	if r.Service < siobroker.FirstService || r.Service > siobroker.LastService {
		return // the counters hold the services of Appendix 2 only
	}
	switch {
	case r.Status == siobroker.StatusDenied:
		d.counters.undispatched(r.Service, false, d.clock.Now())
	case r.Reason == siobroker.ReasonMaintenance:
		d.counters.undispatched(r.Service, true, d.clock.Now())
	}
}

// publish publishes msg to topic, waiting out an outage of the transport (see publishPatiently)
// until expired fires or ctx ends: a request already accepted waits out a short outage within
// its service's time limit instead of failing at once. A copy that did arrive although its
// publish failed is harmless: the adapter and the reply handler recognise it by its correlation
// key.
func (d *Dispatcher) publish(ctx context.Context, expired <-chan time.Time, topic string, msg *message.Message) error {
	return publishPatiently(ctx, d.publisher, d.logger, expired, topic, msg)
}

// publishPatiently publishes msg to topic. While the transport is unavailable
// (ErrTransportUnavailable: RabbitMQ restarting, a connection being replaced) it publishes again
// with back-off, until expired fires (nil: never) or ctx ends. Any other error ends it at once.
//
// Adapters answer through it too: an adapter whose consuming connection is back before its
// publishing one would otherwise fail, requeue and be handed the same request again within
// milliseconds, until the queue's delivery limit dead-lettered a request that nothing was wrong
// with, and its answer never came.
func publishPatiently(ctx context.Context, publisher message.Publisher, logger *slog.Logger, expired <-chan time.Time, topic string, msg *message.Message) error {
	backoff := publishBackoffMin
	for attempt := 1; ; attempt++ {
		err := publisher.Publish(topic, msg)
		if err == nil || !errors.Is(err, ErrTransportUnavailable) {
			return err
		}
		if attempt == 1 {
			correlation := msg.Metadata.Get(schemas.MetaCorrelation)
			if correlation == "" {
				correlation = msg.UUID // a service request's transport id is its correlation key
			}
			logger.Warn("message transport unavailable; publishing again until it is back or the time limit",
				"topic", topic, reqlog.KeyCorrelationID, correlation, "error", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-expired:
			t.Stop()
			return fmt.Errorf("%w (gave up after %d attempts at the time limit)", err, attempt)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up after %d attempts: %w)", err, attempt, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, publishBackoffMax)
	}
}

// Back-off between publishes while the transport is unavailable.
const (
	publishBackoffMin = 100 * time.Millisecond
	publishBackoffMax = 2 * time.Second
)

// Pending returns how many service answers this dispatcher is waiting for.
func (d *Dispatcher) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// ErrNoAnswer is returned by CheckCase when the registry did not answer in time.
var ErrNoAnswer = errors.New("no answer in time")

// CheckCase asks the case registry whether a case exists and is the signer's (§5), and waits for
// its answer or the timeout. The check goes to the registry's topic (schemas.RegistryTopic),
// authenticated for the adapter the registry is routed to (RegistryAdapterOf); only that
// adapter's answer, for that registry, is taken.
func (d *Dispatcher) CheckCase(ctx context.Context, registry string, req schemas.CaseCheckRequest, timeout time.Duration) (schemas.CaseCheckResponse, error) {
	topic := schemas.RegistryTopic(registry)
	adapter := d.registryOf(registry)
	if adapter == "" {
		return schemas.CaseCheckResponse{}, fmt.Errorf("case registry %s has no route to an adapter (routes registries)", registry)
	}
	key := req.RequestID + "/" + caseKeySuffix
	ctx, span := d.tracer.Start(ctx, "case check "+registry, trace.WithAttributes(tracing.KeyRegistry.String(registry),
		tracing.KeyRequestID.String(req.RequestID), tracing.KeyMessageID.String(req.MessageID), tracing.KeyAdapter.String(adapter)))
	defer span.End()
	resp, err := d.checkCase(ctx, topic, key, adapter, registry, req, timeout)
	if err != nil {
		span.SetStatus(codes.Error, caseCheckFailure(err))
	} else {
		span.SetAttributes(tracing.KeyFound.Bool(resp.Found), tracing.KeyInCase.Bool(resp.InProceedings))
	}
	return resp, err
}

// caseCheckFailure is a failed case check's class, for its span: the error's text may quote what
// the registry answered.
func caseCheckFailure(err error) string {
	switch {
	case errors.Is(err, ErrNoAnswer):
		return "no answer in time"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	}
	return "case check failed"
}

func (d *Dispatcher) checkCase(ctx context.Context, topic, key, adapter, registry string, req schemas.CaseCheckRequest, timeout time.Duration) (schemas.CaseCheckResponse, error) {
	ch, release := d.await(key)
	defer release()
	req.ReplyTo = d.replyTopic
	req.SentAt = d.clock.Now()
	req.Deadline = time.Now().Add(timeout)
	msg, err := newJSONMessage(key, req, map[string]string{
		schemas.MetaRequestID: req.RequestID,
		schemas.MetaReplyTo:   req.ReplyTo,
		schemas.MetaMessageID: req.MessageID,
	})
	if err != nil {
		return schemas.CaseCheckResponse{}, err
	}
	pctx, publishing := d.startPublish(ctx, topic, key)
	tracing.Inject(pctx, msg.Metadata)
	if err := d.auth.SignCaseCheck(adapter, registry, msg.Metadata, msg.Payload, req.Deadline); err != nil {
		endPublish(publishing, err)
		return schemas.CaseCheckResponse{}, fmt.Errorf("authenticate case check to %s: %w", topic, err)
	}
	err = d.publisher.Publish(topic, msg)
	endPublish(publishing, err)
	if err != nil {
		return schemas.CaseCheckResponse{}, fmt.Errorf("publish case check to %s: %w", topic, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case a := <-ch:
		var resp schemas.CaseCheckResponse
		if err := json.Unmarshal(a.payload, &resp); err != nil {
			return resp, fmt.Errorf("decode case check answer from %s: %w", topic, err)
		}
		if resp.Registry != registry {
			// Authenticated for the registry its metadata names, so only a registry of another
			// version could send this; its verdict is not about the registry asked.
			return schemas.CaseCheckResponse{}, fmt.Errorf("the answer from %s names registry %q, not %s", topic, resp.Registry, registry)
		}
		return resp, nil
	case <-timer.C:
		return schemas.CaseCheckResponse{}, fmt.Errorf("case registry %s: %w within %s", topic, ErrNoAnswer, timeout)
	case <-ctx.Done():
		return schemas.CaseCheckResponse{}, fmt.Errorf("case check: %w", ctx.Err())
	}
}
