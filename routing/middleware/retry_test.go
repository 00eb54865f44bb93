package middleware

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
)

// script is a handler that fails with errs in turn, then answers, recording when it was called.
type script struct {
	errs  []error
	calls []time.Time
}

func (s *script) handle(msg *message.Message) ([]*message.Message, error) {
	s.calls = append(s.calls, time.Now())
	if n := len(s.calls); n <= len(s.errs) {
		return nil, s.errs[n-1]
	}
	req, _ := Request(msg)
	return one(testAdapter.Final(req, okResult))
}

func transientErr(text string) error {
	return &SourceError{Err: adapters.Transient(errors.New(text)), Text: text}
}

// TestRetryUntilAnswered: transient errors are asked again after a doubling back-off, and the
// answer that follows is the result.
func TestRetryUntilAnswered(t *testing.T) {
	logs, logger := newLogs()
	s := &script{errs: []error{transientErr("reset"), transientErr("reset")}}
	resp, _ := must{t}.answer(Retry(3, 20*time.Millisecond, logger)(s.handle)(delivery(testRequest("r1", 1))))
	if resp.Result.Status != siobroker.StatusOK || len(s.calls) != 3 {
		t.Fatalf("%+v after %d calls", resp.Result, len(s.calls))
	}
	if d1, d2 := s.calls[1].Sub(s.calls[0]), s.calls[2].Sub(s.calls[1]); d1 < 20*time.Millisecond || d2 < 40*time.Millisecond {
		t.Errorf("back-offs %s, %s; want ≥20ms then ≥40ms", d1, d2)
	}
	logs.want(t, "transient backend error; retrying", "attempt=2", "backoff=40ms", "error=reset", "correlation_id=r1/1")
}

// TestRetryGivesUp: after 1+retries transient failures the last is logged and returned as given
// up on; a permanent error is not asked again; the deadline stops the retries, and the error
// is returned as it is.
func TestRetryGivesUp(t *testing.T) {
	permanent := &SourceError{Err: errors.New("syntax"), Text: "syntax"}
	for _, tt := range []struct {
		name    string
		errs    []error
		expires time.Duration // 0: never
		backoff time.Duration
		calls   int
		givenUp int // attempts; 0: not given up
	}{
		{"exhausted", []error{transientErr("a"), transientErr("b"), transientErr("c")}, 0, 20 * time.Millisecond, 3, 3},
		{"permanent", []error{permanent}, 0, 20 * time.Millisecond, 1, 0},
		{"transient then permanent", []error{transientErr("a"), permanent}, 0, 20 * time.Millisecond, 2, 0},
		{"deadline", []error{transientErr("a"), transientErr("b"), transientErr("c")}, 30 * time.Millisecond, time.Hour, 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs, logger := newLogs()
			s := &script{errs: tt.errs}
			msg := delivery(testRequest("r2", 1))
			if tt.expires > 0 {
				ctx, cancel := context.WithTimeout(msg.Context(), tt.expires)
				defer cancel()
				msg.SetContext(ctx)
			}
			msgs, err := Retry(2, tt.backoff, logger)(s.handle)(msg)
			if len(msgs) != 0 || err == nil || len(s.calls) != tt.calls {
				t.Fatalf("%d answers, err %v after %d calls, want %d", len(msgs), err, len(s.calls), tt.calls)
			}
			var g *givenUp
			if gave := errors.As(err, &g); gave != (tt.givenUp > 0) || (gave && g.attempts != tt.givenUp) {
				t.Fatalf("err %v (given up: %+v), want given up after %d", err, g, tt.givenUp)
			}
			if tt.givenUp > 0 {
				var src *SourceError
				if !errors.As(err, &src) || src.Text != "c" {
					t.Errorf("the given-up error hides the last source error: %v", err)
				}
				logs.want(t, "backend error", "error=c", "correlation_id=r2/1")
			} else if errors.Unwrap(err) == nil && err != tt.errs[len(s.calls)-1] {
				t.Errorf("err %v is not the last attempt's", err)
			}
		})
	}
}
