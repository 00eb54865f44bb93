package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/internal/tracing"
	"github.com/sio-pso/siobroker/routing/middleware"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/schemas"
)

// RegistryRuntime serves case checks (§5) for one case registry: it consumes the registry's
// topic, checks that the broker made each check for it, and publishes each answer, authenticated,
// to the reply topic the check names.
type RegistryRuntime struct {
	name        string
	registry    adapters.CaseRegistry
	publisher   message.Publisher
	clock       siobroker.Clock
	logger      *slog.Logger
	auth        *msgauth.Adapter
	deadLetters string
	refused     func(reason msgauth.Reason)
	tracer      trace.TracerProvider
}

// RegistryConfig is what a RegistryRuntime is built from. DeadLetters and ObserveRefusal are
// optional; every other field is required.
type RegistryConfig struct {
	// Name is the registry's, as the case rules name it; the runtime consumes topic
	// schemas.RegistryTopic(Name) and names the registry so in every answer.
	Name      string
	Registry  adapters.CaseRegistry
	Publisher message.Publisher
	Clock     siobroker.Clock
	Logger    *slog.Logger
	// Auth holds the keys of the adapter the routing table routes the registry to. A case check
	// the broker did not make with them for this registry is refused before the registry is
	// asked: anyone who can publish to the registry's queue could otherwise learn from the
	// answers which cases exist and whose proceedings they are. Answers go out authenticated.
	Auth *msgauth.Adapter
	// DeadLetters is the topic refused case checks go to, with why; "": they are logged and
	// dropped.
	DeadLetters string
	// ObserveRefusal is told why each case check was refused as unauthenticated, for a metric.
	ObserveRefusal func(reason msgauth.Reason)
	// TracerProvider makes the consumer span of every case check (middleware.Trace). Nil: the
	// global one (the process's).
	TracerProvider trace.TracerProvider
}

// Validate reports every field that c lacks.
func (c RegistryConfig) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"Name", c.Name != ""},
		{"Registry", c.Registry != nil},
		{"Publisher", c.Publisher != nil},
		{"Clock", c.Clock != nil},
		{"Logger", c.Logger != nil},
		{"Auth", c.Auth != nil},
	} {
		if !f.set {
			errs = append(errs, fmt.Errorf("routing: RegistryConfig.%s is required", f.name))
		}
	}
	return errors.Join(errs...)
}

// NewRegistryRuntime returns a runtime for the registry cfg.Registry called cfg.Name. It returns
// an error naming every field of cfg that is missing.
func NewRegistryRuntime(cfg RegistryConfig) (*RegistryRuntime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &RegistryRuntime{name: cfg.Name, registry: cfg.Registry, publisher: cfg.Publisher, clock: cfg.Clock, logger: cfg.Logger,
		auth: cfg.Auth, deadLetters: cfg.DeadLetters, refused: cfg.ObserveRefusal, tracer: cfg.TracerProvider}, nil
}

// AddHandlers registers the registry's handler on router: r.handle below
// middleware.Authenticate, which refuses (and dead-letters) every case check the broker did not
// make for this registry before it is even decoded.
func (r *RegistryRuntime) AddHandlers(router *message.Router, subscriber message.Subscriber) {
	topic := schemas.RegistryTopic(r.name)
	publish := func(ctx context.Context, topic string, m *message.Message) error {
		return publishPatiently(ctx, r.publisher, r.logger, nil, topic, m)
	}
	poison := middleware.Poison{Topic: r.deadLetters, Publish: publish, Adapter: middleware.Adapter{Name: r.auth.Name(), Clock: r.clock}}
	auth := middleware.Auth{Keys: r.auth, Registry: r.name, Refused: r.refused}
	checked := middleware.Trace(r.tracer, topic)(middleware.Authenticate(topic, auth, poison, r.logger)(func(msg *message.Message) ([]*message.Message, error) {
		return nil, r.handle(msg)
	}))
	router.AddConsumerHandler("registry-"+r.name, topic, subscriber, func(msg *message.Message) error {
		_, err := checked(msg)
		return err
	})
}

func (r *RegistryRuntime) handle(msg *message.Message) error {
	var req schemas.CaseCheckRequest
	if err := json.Unmarshal(msg.Payload, &req); err != nil || req.ReplyTo == "" {
		r.logger.Error("undecodable case check dropped", "registry", r.name, "transport_id", msg.UUID, "error", err)
		return nil
	}
	log := r.logger.With(reqlog.Attrs(req.MessageID, req.RequestID+"/case")...)
	if !req.Deadline.IsZero() && time.Until(req.Deadline) <= 0 {
		// A copy that waited through an outage: the broker waits no longer (it refused the
		// request as unverifiable at the deadline), so nobody takes the answer. Failing it instead
		// would requeue it, and each return counts toward the queue's delivery limit.
		log.Info("case check past its deadline dropped: the broker no longer waits for it", "registry", r.name)
		return nil
	}
	ctx := msg.Context()
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	resp, err := r.check(ctx, req)
	if err != nil {
		log.Warn("case registry error", "registry", r.name, "error", redactCase(err.Error(), req.Case))
		// No answer: the broker's wait times out and it refuses the request as unverifiable,
		// rather than taking a registry failure for "unknown case".
		return nil
	}
	resp.RequestID, resp.Registry, resp.AnsweredAt = req.RequestID, r.name, r.clock.Now()
	trace.SpanFromContext(ctx).SetAttributes(tracing.KeyRegistry.String(r.name), tracing.KeyFound.Bool(resp.Found),
		tracing.KeyInCase.Bool(resp.InProceedings))
	out, err := newJSONMessage(NewMessageID(), resp, map[string]string{
		schemas.MetaRequestID:   req.RequestID,
		schemas.MetaCorrelation: req.RequestID + "/case",
		schemas.MetaMessageID:   req.MessageID,
	})
	if err != nil {
		return fmt.Errorf("encode case check answer: %w", err)
	}
	r.auth.SignCaseAnswer(middleware.KeyOf(msg), r.name, out.Metadata, out.Payload)
	// Published with the delivery's context, not the registry's deadline: while the transport is
	// away the answer waits for it. Failing the delivery at the deadline requeued the check, and
	// once RabbitMQ was back the copy came straight back, failed again at once, and reached the
	// queue's delivery limit within a second (the fault test's false dead letter on
	// sio.registry.erdr). The broker drops a case answer that comes after its wait.
	if err := publishPatiently(msg.Context(), r.publisher, r.logger, nil, req.ReplyTo, out); err != nil {
		return fmt.Errorf("publish case check answer to %s: %w", req.ReplyTo, err)
	}
	return nil
}

func (r *RegistryRuntime) check(ctx context.Context, req schemas.CaseCheckRequest) (resp schemas.CaseCheckResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("case registry panicked: %v", p)
		}
	}()
	return r.registry.Check(ctx, req)
}
