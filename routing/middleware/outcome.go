package middleware

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
)

// SourceError is a failure of the source system: the core handler returns its backend's error, or
// its panic, as one. Retry asks again after a transient one, DeadLetter dead-letters one Retry gave
// up on, and Outcome turns it into the answer; any other error fails the delivery.
type SourceError struct {
	Err error // the backend's error (adapters.Transient marks a transient one); nil for a panic
	// Text is what logs may show of the failure: Err's text, or the panic's, without the subject's
	// identifiers and the case's numbers (a source system's error may quote the values it was
	// asked with: a URL, an SQL error).
	Text     string
	Panicked bool
}

// Error is Text: an error that reaches a log by another way shows nothing more.
func (e *SourceError) Error() string { return e.Text }

// Unwrap is the backend's error, so that adapters.IsTransient sees its mark.
func (e *SourceError) Unwrap() error { return e.Err }

// Outcome turns a failure of the source (a *SourceError from below) into the answer the broker
// gets. The cause may carry the source system's internals: it goes to the log, and the answer
// has a fixed text.
//
//   - a panic: ADAPTER_ERROR "the source system failed" (the core handler logged it);
//   - Retry gave up on it: ADAPTER_ERROR naming the attempts, provisional, so that the request
//     replayed from the dead-letter queue is asked again;
//   - the request's deadline passed: TIMEOUT, whatever error the backend made of it;
//   - any other: ADAPTER_ERROR "the source system answered with an error", and a log line.
//
// Any other error passes through: it fails the delivery.
func Outcome(adapter Adapter, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			answers, err := h(msg)
			var src *SourceError
			if err == nil || !errors.As(err, &src) {
				return answers, err
			}
			req, rerr := request(msg)
			if rerr != nil {
				return nil, rerr
			}
			var g *givenUp
			switch {
			case src.Panicked:
				return one(adapter.Final(req, errorResult(req.Service, "the source system failed")))
			case errors.As(err, &g):
				return one(adapter.Provisional(req, errorResult(req.Service,
					fmt.Sprintf("the source system kept failing (%d attempts)", g.attempts))))
			case msg.Context().Err() != nil:
				return one(adapter.Final(req, siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusTimeout,
					Reason: siobroker.ReasonTimeout, Message: "the source system did not answer in time"}))
			default:
				requestLog(logger, req).Warn("backend error", "service", req.Service, "error", src.Text)
				return one(adapter.Final(req, errorResult(req.Service, "the source system answered with an error")))
			}
		}
	}
}
