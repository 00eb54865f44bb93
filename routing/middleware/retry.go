package middleware

import (
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/adapters"
)

// givenUp is a source's error after every attempt of Retry failed transiently.
type givenUp struct {
	attempts int
	last     error // the last attempt's, a *SourceError
}

func (g *givenUp) Error() string { return g.last.Error() }
func (g *givenUp) Unwrap() error { return g.last }

// Retry runs the handlers below again while they fail with a transient error of the source
// (adapters.Transient), up to retries times, after a back-off that starts at backoff and doubles:
// a request gets 1+retries attempts. It stops at the request's deadline (the context's end) in
// any case.
//
// When every attempt failed transiently it logs the last error and returns it as given up on,
// which DeadLetter dead-letters and Outcome answers as a provisional ADAPTER_ERROR. Any other
// error, and one the deadline cut short, it returns as it is.
func Retry(retries int, backoff time.Duration, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			req, err := request(msg)
			if err != nil {
				return nil, err
			}
			log := requestLog(logger, req)
			ctx := msg.Context()
			answers, err := h(msg)
			wait := backoff
			attempts := 1
			for ; err != nil && adapters.IsTransient(err) && attempts <= retries && ctx.Err() == nil; attempts++ {
				log.Info("transient backend error; retrying", "service", req.Service,
					"attempt", attempts, "backoff", wait, "error", logText(err))
				select {
				case <-ctx.Done():
				case <-time.After(wait):
					answers, err = h(msg)
				}
				wait *= 2
			}
			if err == nil || ctx.Err() != nil || !adapters.IsTransient(err) {
				return answers, err
			}
			log.Warn("backend error", "service", req.Service, "error", logText(err))
			return nil, &givenUp{attempts: attempts, last: err}
		}
	}
}

// logText is what logs may show of err: a source's error without the subject's or the case's
// numbers.
func logText(err error) string {
	var src *SourceError
	if errors.As(err, &src) {
		return src.Text
	}
	return err.Error()
}
