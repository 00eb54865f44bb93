package middleware

import (
	"context"
	"errors"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
)

// TestOutcome: each failure of the source becomes its answer, with a fixed text and the cause in
// the log only; an answer and an error that is not the source's pass through.
func TestOutcome(t *testing.T) {
	secret := &SourceError{Err: errors.New("ORA-01017 at db.internal"), Text: "ORA-01017 at db.internal"}
	transient := &SourceError{Err: adapters.Transient(errors.New("refused")), Text: "refused"}
	for _, tt := range []struct {
		name    string
		err     error
		expired bool
		status  siobroker.ResultStatus
		reason  string
		message string
		final   bool
		log     string
	}{
		{"panic", &SourceError{Text: "nil map", Panicked: true}, false, siobroker.StatusError, siobroker.ReasonAdapterError,
			"the source system failed", true, ""},
		{"given up", &givenUp{attempts: 4, last: transient}, false, siobroker.StatusError, siobroker.ReasonAdapterError,
			"the source system kept failing (4 attempts)", false, ""},
		{"given up, deadline passed since", &givenUp{attempts: 4, last: transient}, true, siobroker.StatusError,
			siobroker.ReasonAdapterError, "the source system kept failing (4 attempts)", false, ""},
		{"deadline", secret, true, siobroker.StatusTimeout, siobroker.ReasonTimeout, "the source system did not answer in time", true, ""},
		{"error", secret, false, siobroker.StatusError, siobroker.ReasonAdapterError,
			"the source system answered with an error", true, "backend error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs, logger := newLogs()
			calls := 0
			msg := delivery(testRequest("o1", 6))
			if tt.expired {
				ctx, cancel := context.WithCancel(msg.Context())
				cancel()
				msg.SetContext(ctx)
			}
			resp, a := must{t}.answer(Outcome(testAdapter, logger)(failing(&calls, tt.err))(msg))
			r := resp.Result
			if r.Service != 6 || r.Status != tt.status || r.Reason != tt.reason || r.Message != tt.message || a.final != tt.final {
				t.Fatalf("answer %+v final %v", r, a.final)
			}
			if tt.log != "" {
				logs.want(t, tt.log, "ORA-01017", "correlation_id=o1/6")
			}
		})
	}

	calls := 0
	plain := errors.New("publish failed")
	if _, err := Outcome(testAdapter, slogDiscard())(failing(&calls, plain))(delivery(testRequest("o2", 6))); err != plain {
		t.Errorf("a failure of the delivery became %v", err)
	}
	resp, _ := must{t}.answer(Outcome(testAdapter, slogDiscard())(answering(&calls, okResult))(delivery(testRequest("o3", 6))))
	if resp.Result.Status != siobroker.StatusOK {
		t.Errorf("an answer changed: %+v", resp.Result)
	}
}
