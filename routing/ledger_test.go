package routing

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// scriptedLedger answers Take from a script per key, and records how each claim ended. An
// in-memory stand-in for the logic of the runtime; postgres tests the PostgreSQL one.
type scriptedLedger struct {
	mu     sync.Mutex
	states map[string][]siobroker.LedgerState // popped one per Take; the last repeats
	err    error
	ended  map[string]string                 // key: "answered" or "released"
	kept   map[string]siobroker.LedgerAnswer // what Answer gives; Answered records here
}

func (l *scriptedLedger) Answer(_ context.Context, key string) (siobroker.LedgerAnswer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.kept[key], l.err
}

func (l *scriptedLedger) Take(_ context.Context, key string) (siobroker.LedgerClaim, siobroker.LedgerState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, 0, l.err
	}
	s := l.states[key]
	state := siobroker.LedgerTaken
	if len(s) > 0 {
		state = s[0]
		if len(s) > 1 {
			l.states[key] = s[1:]
		}
	}
	if state != siobroker.LedgerTaken {
		return nil, state, nil
	}
	return &scriptedClaim{l: l, key: key}, siobroker.LedgerTaken, nil
}

func (l *scriptedLedger) end(key, how string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, done := l.ended[key]; !done {
		l.ended[key] = how
	}
}

func (l *scriptedLedger) endedAs(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended[key]
}

// waitEnded returns how key's claim ended, waiting up to 2 s for it: the handler ends its claim
// after it publishes the answer, so the dispatcher may have the answer first.
func (l *scriptedLedger) waitEnded(key string) string {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if got := l.endedAs(key); got != "" || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type scriptedClaim struct {
	l   *scriptedLedger
	key string
}

func (c *scriptedClaim) Answered(_ context.Context, at time.Time, payload []byte) error {
	c.l.mu.Lock()
	c.l.kept[c.key] = siobroker.LedgerAnswer{Owner: "here", AnsweredAt: at, Payload: payload}
	c.l.mu.Unlock()
	c.l.end(c.key, "answered") // after the record: waitEnded then finds it
	return nil
}
func (c *scriptedClaim) Release() { c.l.end(c.key, "released") }

// answeredElsewhere is what the ledger keeps of another process's answer to id's service 1.
func answeredElsewhere(t *testing.T, id string) siobroker.LedgerAnswer {
	t.Helper()
	payload, err := json.Marshal(schemas.ServiceResponse{RequestID: id, Service: 1, Adapter: "elsewhere",
		Result: siobroker.ServiceResult{Service: 1, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK,
			Records: []siobroker.Record{{Type: "kept"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return siobroker.LedgerAnswer{Owner: "elsewhere", AnsweredAt: time.Now(), Payload: payload}
}

// TestLedgerDecidesWhoAsks: with a ledger, a request is asked of its source only under a claim;
// a copy already answered elsewhere is answered from the answer the ledger kept, one held
// elsewhere is waited for, one whose answer the ledger forgot is not answered, and a ledger that
// cannot be read makes the adapter answer ADAPTER_ERROR without asking the source. A claim ends
// answered, with the answer, once the answer is out, and released when the source was given up
// on.
func TestLedgerDecidesWhoAsks(t *testing.T) {
	var asked atomic.Int32
	ledger := &scriptedLedger{ended: map[string]string{}, states: map[string][]siobroker.LedgerState{
		"held/1":      {siobroker.LedgerBusy, siobroker.LedgerBusy, siobroker.LedgerAnswered}, // another process answers while we wait
		"answered/1":  {siobroker.LedgerAnswered},
		"forgotten/1": {siobroker.LedgerAnswered},
	}, kept: map[string]siobroker.LedgerAnswer{
		"held/1":      answeredElsewhere(t, "held"),
		"answered/1":  answeredElsewhere(t, "answered"),
		"forgotten/1": {Owner: "elsewhere", AnsweredAt: time.Now().Add(-48 * time.Hour)},
	}}
	env := newTestEnv(t, map[int]adapters.Backend{
		1: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			asked.Add(1)
			if req.RequestID == "flaky" {
				return siobroker.ServiceResult{}, adapters.Transient(errors.New("connection refused"))
			}
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "person"}}}, nil
		}),
	}, withLedger(ledger), retry(2, time.Millisecond))

	dispatch := func(id string, wait time.Duration) Outcome {
		return env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{{RequestID: id, Service: 1}}, timeouts(wait, nil))[0]
	}
	if o := dispatch("fresh", 2*time.Second); o.Result.Status != siobroker.StatusOK || ledger.waitEnded("fresh/1") != "answered" {
		t.Errorf("fresh request: %+v, claim %q", o.Result, ledger.endedAs("fresh/1"))
	}
	if o := dispatch("flaky", 2*time.Second); o.Result.Reason != siobroker.ReasonAdapterError || ledger.waitEnded("flaky/1") != "released" {
		t.Errorf("given up on: %+v, claim %q", o.Result, ledger.endedAs("flaky/1"))
	}
	if kept, _ := ledger.Answer(context.Background(), "fresh/1"); !strings.Contains(string(kept.Payload), `"requestId":"fresh"`) {
		t.Errorf("recorded answer %q, want the answer published", kept.Payload)
	}
	before := asked.Load()
	// The copies answered elsewhere get the answer kept; the source is not asked.
	for _, id := range []string{"answered", "held"} {
		o := dispatch(id, 2*time.Second)
		if o.Result.Status != siobroker.StatusOK || len(o.Result.Records) != 1 || o.Result.Records[0].Type != "kept" {
			t.Errorf("%s: %+v, want the answer the ledger kept", id, o.Result)
		}
	}
	// The copy whose answer was forgotten is not answered (no dead-letter queue here: a log line).
	if o := dispatch("forgotten", 300*time.Millisecond); o.Result.Status != siobroker.StatusTimeout {
		t.Errorf("forgotten: %+v, want no answer", o.Result)
	}
	env.logs.waitFor(t, "redelivered request whose earlier answer was forgotten dropped", "forgotten/1")
	if n := asked.Load() - before; n != 0 {
		t.Errorf("the source was asked %d times for copies answered elsewhere", n)
	}

	ledger.mu.Lock()
	ledger.err = errors.New("connection refused")
	ledger.mu.Unlock()
	before = asked.Load()
	if o := dispatch("unknown", 2*time.Second); o.Result.Reason != siobroker.ReasonAdapterError || asked.Load() != before {
		t.Errorf("ledger down: %+v, source asked %d times", o.Result, asked.Load()-before)
	}
}
