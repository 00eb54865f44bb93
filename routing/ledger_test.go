package routing

import (
	"context"
	"errors"
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
	ended  map[string]string // key: "answered" or "released"
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

func (c *scriptedClaim) Answered(context.Context, time.Time) error {
	c.l.end(c.key, "answered")
	return nil
}
func (c *scriptedClaim) Release() { c.l.end(c.key, "released") }

// TestLedgerDecidesWhoAsks: with a ledger, a request is asked of its source only under a claim;
// a copy already answered elsewhere is dropped, one held elsewhere is waited for, and a ledger
// that cannot be read makes the adapter answer ADAPTER_ERROR without asking the source. A claim
// ends answered once the answer is out, and released when the source was given up on.
func TestLedgerDecidesWhoAsks(t *testing.T) {
	var asked atomic.Int32
	ledger := &scriptedLedger{ended: map[string]string{}, states: map[string][]siobroker.LedgerState{
		"held/1":     {siobroker.LedgerBusy, siobroker.LedgerBusy, siobroker.LedgerAnswered}, // another process answers while we wait
		"answered/1": {siobroker.LedgerAnswered},
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
	before := asked.Load()
	// The copies nobody answers here: the broker's wait times out, the source is not asked.
	for _, id := range []string{"answered", "held"} {
		if o := dispatch(id, 300*time.Millisecond); o.Result.Status != siobroker.StatusTimeout {
			t.Errorf("%s: %+v, want no answer from this process", id, o.Result)
		}
	}
	env.logs.waitFor(t, "already answered by an adapter process", "held/1")
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
