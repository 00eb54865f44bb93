package routing

import (
	"context"
	"time"
)

// Ledger is shared by every adapter process that serves the same queues, so that a request is
// asked of its source at most once however many processes its copies reach. A copy reaches
// another process when the first one's acknowledgement was lost: it published its answer and
// then crashed, or its connection to RabbitMQ dropped before the ack went out. The per-process
// memory of answers (answeredCache) cannot see that copy; the ledger can.
//
// The ledger keeps no answer, which holds a person's data: only that a request's service was
// answered, by which process and when. While one process asks the source, its claim makes the
// others wait; when it dies, its claim goes with it (adapters/ledger ties a claim to its database
// session), and the copy is asked again.
type Ledger interface {
	// Take claims key (CorrelationKey) for this process. It returns LedgerAnswered when key was
	// answered before, by any process; LedgerBusy when another live process holds it; or
	// LedgerTaken with the claim, which must be ended with Answered or Release.
	Take(ctx context.Context, key string) (LedgerClaim, LedgerState, error)
}

// LedgerClaim is a process's hold on one request's service.
type LedgerClaim interface {
	// Answered records that the answer was published (its confirm received), and ends the claim.
	Answered(ctx context.Context, at time.Time) error
	// Release ends the claim without an answer, so that a copy is asked again; after Answered
	// it does nothing.
	Release()
}

// LedgerState is what Ledger.Take found.
type LedgerState int

// The states of a key in the ledger.
const (
	LedgerTaken    LedgerState = iota + 1 // the claim is this process's: ask the source
	LedgerAnswered                        // answered before: the broker has the answer
	LedgerBusy                            // another process is asking the source now
)

// ledgerPoll bounds the wait between two looks at a key another process holds.
const (
	ledgerPollMin = 20 * time.Millisecond
	ledgerPollMax = 500 * time.Millisecond
)

// WithLedger makes the runtime claim every request in l before asking its source (see Ledger).
// Call it before AddHandlers.
func (a *AdapterRuntime) WithLedger(l Ledger) *AdapterRuntime {
	a.ledger = l
	return a
}

// ledgerCallLimit bounds one call to the ledger.
const ledgerCallLimit = 5 * time.Second

// take claims key in the ledger, waiting while another process holds it, until ctx ends (the
// request's deadline: nobody waits for the answer after it). It returns the claim, or nil with
// LedgerAnswered, or nil with LedgerBusy when the wait ended first. A call to the ledger is not
// cut short by ctx: a copy that comes after the deadline is still looked up.
func (a *AdapterRuntime) take(ctx context.Context, key string) (LedgerClaim, LedgerState, error) {
	wait := ledgerPollMin
	for {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerCallLimit)
		claim, state, err := a.ledger.Take(lctx, key)
		cancel()
		if err != nil || state != LedgerBusy {
			return claim, state, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, LedgerBusy, nil
		case <-t.C:
		}
		wait = min(2*wait, ledgerPollMax)
	}
}
