package routing

import (
	"context"
	"time"

	"github.com/sio-pso/siobroker"
)

// ledgerPoll bounds the wait between two looks at a key another process holds.
const (
	ledgerPollMin = 20 * time.Millisecond
	ledgerPollMax = 500 * time.Millisecond
)

// WithLedger makes the runtime claim every request in l before asking its source (see Ledger).
// Call it before AddHandlers.
func (a *AdapterRuntime) WithLedger(l siobroker.Ledger) *AdapterRuntime {
	a.ledger = l
	return a
}

// ledgerCallLimit bounds one call to the ledger.
const ledgerCallLimit = 5 * time.Second

// take claims key in the ledger, waiting while another process holds it, until ctx ends (the
// request's deadline: nobody waits for the answer after it). It returns the claim, or nil with
// LedgerAnswered, or nil with LedgerBusy when the wait ended first. A call to the ledger is not
// cut short by ctx: a copy that comes after the deadline is still looked up.
func (a *AdapterRuntime) take(ctx context.Context, key string) (siobroker.LedgerClaim, siobroker.LedgerState, error) {
	wait := ledgerPollMin
	for {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerCallLimit)
		claim, state, err := a.ledger.Take(lctx, key)
		cancel()
		if err != nil || state != siobroker.LedgerBusy {
			return claim, state, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, siobroker.LedgerBusy, nil
		case <-t.C:
		}
		wait = min(2*wait, ledgerPollMax)
	}
}
