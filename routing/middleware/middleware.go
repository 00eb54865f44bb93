// Package middleware is the adapter side of routing, cut into watermill router middleware: each
// concern of answering one schemas.ServiceRequest is one func(message.HandlerFunc)
// message.HandlerFunc in a file of its own, and routing.AdapterRuntime stacks them around a small
// core handler that asks the backend. The stack, outermost first:
//
//	Authenticate  checks that the broker made the message for this adapter; dead-letters any other
//	Decode        reads the request into the message's context; dead-letters one nobody can answer
//	Publish       sends every answer made below it to the request's reply topic
//	SignAnswers   authenticates every answer made below it, for the broker to check
//	Served        refuses at once a service the adapter does not serve on this queue
//	Dedup         gives a redelivered copy of an answered request the earlier answer
//	Deadline      bounds everything below by the request's deadline
//	Ledger        claims the request, so that one adapter process asks the source; answers a copy
//	              from the answer it kept
//	Outcome       turns the source's failures into answers
//	DeadLetter    puts a request the source kept failing on the dead-letter topic
//	Retry         asks again after a transient source error, with back-off
//	(core)        asks the backend
//
// Why in that order: Authenticate comes first, so that nothing is done with a message the broker
// did not make, not even reading it, and a forged one never reaches the ledger or the source.
// Publish sits above everything that answers, so that every answer, the adapter's refusals
// included, goes out one way, with the delivery's own context; SignAnswers, right below it,
// authenticates each with the key of its request. Served comes
// before Dedup, so that a request the routing table sends to the wrong queue is refused even when
// this process answered an earlier copy on another queue. Dedup comes before Deadline and Ledger,
// so that a lost answer is given again even after the deadline and without asking the ledger, and
// it remembers an answer on its way up, before Publish sends it. Ledger works under the deadline
// (its wait for another process ends there) and holds its claim until Publish is done with the
// answer: it records the answer only once it is out. DeadLetter sits between Outcome and Retry:
// it sees Retry give up, and the request is dead-lettered before its answer is made and
// published, so that a failed publish brings the request back to be tried again, and a second dead
// letter is the worst outcome.
//
// What passes between them: the request, in the message's context (Request); the answers, as the
// messages the handlers return, made by Adapter and carrying, besides their payload, whether they
// are the source's final word (Dedup remembers and Ledger records only those) and what to do once
// Publish is done with them; and the errors. A failure of the source is a *SourceError, which Retry
// may ask again, DeadLetter may dead-letter and Outcome turns into an answer; any other error fails
// the delivery, which is then delivered again.
package middleware

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/schemas"
)

type requestKey struct{}

// Request returns the request Decode read from msg; false when msg has not been through Decode.
func Request(msg *message.Message) (schemas.ServiceRequest, bool) {
	req, ok := msg.Context().Value(requestKey{}).(schemas.ServiceRequest)
	return req, ok
}

// WithRequest puts req in msg's context, as Decode does: for tests of a handler below Decode.
func WithRequest(msg *message.Message, req schemas.ServiceRequest) {
	msg.SetContext(context.WithValue(msg.Context(), requestKey{}, req))
}

// errNoRequest is a stack put together wrong: a middleware below Decode got a message Decode did
// not read.
var errNoRequest = errors.New("middleware: the message carries no decoded request (Decode must come first)")

// request is Request for the middleware below Decode.
func request(msg *message.Message) (schemas.ServiceRequest, error) {
	req, ok := Request(msg)
	if !ok {
		return req, errNoRequest
	}
	return req, nil
}

// requestLog is logger for the lines about req: they carry its ids (package reqlog), never the
// subject's.
func requestLog(logger *slog.Logger, req schemas.ServiceRequest) *slog.Logger {
	return logger.With(reqlog.Attrs(req.MessageID, schemas.CorrelationKey(req.RequestID, req.Service))...)
}

// one is a handler's result of a single answer.
func one(m *message.Message, err error) ([]*message.Message, error) {
	if err != nil {
		return nil, err
	}
	return []*message.Message{m}, nil
}
