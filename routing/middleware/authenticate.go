package middleware

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/schemas"
)

// Auth is what Authenticate checks service messages with and SignAnswers authenticates answers
// with: the adapter's keys (msgauth.Adapter), the clock expiries are checked against (the wall
// clock, as the deadline is; see Deadline), and what is told of each refusal.
type Auth struct {
	Keys *msgauth.Adapter
	// Registry, when set, makes the messages checked case checks (§5) for that case registry
	// (msgauth.Adapter.CheckCaseCheck) rather than service messages.
	Registry string
	Now      func() time.Time
	// Refused is called with the reason of every message refused; nil: none is told. The log
	// line counts them either way.
	Refused func(reason msgauth.Reason)
	refused *atomic.Int64
}

type authKey struct{}

// Authenticate checks, before anything else is done with a message (before it is even decoded),
// that the broker made it for this adapter (msgauth.Adapter.CheckRequest): anyone who can
// publish to a service queue could otherwise make the adapter ask its source. A message that
// fails the check goes to the dead-letter topic of poison with why (no value of its payload is
// in the reason), is logged with the count of refusals so far, and its delivery succeeds with
// nothing below run: a redelivery would fail the same way. The key that authenticated it goes
// down in the message's context, for SignAnswers.
func Authenticate(queue string, auth Auth, poison Poison, logger *slog.Logger) message.HandlerMiddleware {
	if auth.Now == nil {
		auth.Now = time.Now
	}
	auth.refused = new(atomic.Int64)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			var k msgauth.Key
			var err error
			if auth.Registry != "" {
				k, err = auth.Keys.CheckCaseCheck(auth.Registry, msg.Metadata, msg.Payload, auth.Now())
			} else {
				k, err = auth.Keys.CheckRequest(msg.Metadata, msg.Payload, auth.Now())
			}
			if err == nil {
				msg.SetContext(context.WithValue(msg.Context(), authKey{}, k))
				return h(msg)
			}
			reason := msgauth.ReasonMalformed
			var e *msgauth.Error
			if errors.As(err, &e) {
				reason = e.Reason
			}
			if auth.Refused != nil {
				auth.Refused(reason)
			}
			trace.SpanFromContext(msg.Context()).SetAttributes(attribute.String("sio.auth_refusal", string(reason)))
			log := logger.With("queue", queue, "transport_id", msg.UUID, "auth_refusal", string(reason),
				"auth_refusals", auth.refused.Add(1), "error", err)
			return nil, poison.put(msg, queue, log, "unauthenticated service message",
				schemas.DeadReason{Category: schemas.DeadUnauthenticated, Auth: reason})
		}
	}
}

// KeyOf is the key that authenticated msg (Authenticate); zero when none did.
func KeyOf(msg *message.Message) msgauth.Key {
	k, _ := msg.Context().Value(authKey{}).(msgauth.Key)
	return k
}

// SignAnswers authenticates every answer the handlers below make, with the key that
// authenticated its request (Authenticate), so that the broker can tell it from a forged one.
// It must be right below Publish: every answer, the adapter's refusals included, goes out
// authenticated.
func SignAnswers(auth Auth) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			answers, err := h(msg)
			if err != nil {
				return answers, err
			}
			k := KeyOf(msg) // zero without Authenticate: the current key
			for _, m := range answers {
				auth.Keys.SignAnswer(k, m.Metadata, m.Payload)
			}
			return answers, nil
		}
	}
}
