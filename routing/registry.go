package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/schemas"
)

// RegistryRuntime serves case checks (§5) for one case registry: it consumes the registry's
// topic and publishes each answer to the reply topic the check names.
type RegistryRuntime struct {
	name      string
	registry  adapters.CaseRegistry
	publisher message.Publisher
	clock     siobroker.Clock
	logger    *slog.Logger
}

// NewRegistryRuntime returns a runtime for the registry called name (topic
// schemas.RegistryTopic(name)).
func NewRegistryRuntime(name string, registry adapters.CaseRegistry, publisher message.Publisher, clock siobroker.Clock, logger *slog.Logger) *RegistryRuntime {
	return &RegistryRuntime{name: name, registry: registry, publisher: publisher, clock: clock, logger: logger}
}

// AddHandlers registers the registry's handler on router.
func (r *RegistryRuntime) AddHandlers(router *message.Router, subscriber message.Subscriber) {
	router.AddConsumerHandler("registry-"+r.name, schemas.RegistryTopic(r.name), subscriber, r.handle)
}

func (r *RegistryRuntime) handle(msg *message.Message) error {
	var req schemas.CaseCheckRequest
	if err := json.Unmarshal(msg.Payload, &req); err != nil || req.ReplyTo == "" {
		r.logger.Error("undecodable case check dropped", "registry", r.name, "transport_id", msg.UUID, "error", err)
		return nil
	}
	log := r.logger.With(reqlog.Attrs(req.MessageID, req.RequestID+"/case")...)
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
	out, err := newJSONMessage(NewMessageID(), resp, map[string]string{
		schemas.MetaRequestID:   req.RequestID,
		schemas.MetaCorrelation: req.RequestID + "/case",
		schemas.MetaMessageID:   req.MessageID,
	})
	if err != nil {
		return fmt.Errorf("encode case check answer: %w", err)
	}
	if err := publishPatiently(ctx, r.publisher, r.logger, nil, req.ReplyTo, out); err != nil {
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
