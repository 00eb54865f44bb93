package siobroker

import (
	"context"
	"time"
)

// Ledger is shared by every adapter process that serves the same queues, so that a request is
// asked of its source at most once however many processes its copies reach. A copy reaches
// another process when the first one's acknowledgement was lost: it published its answer and
// then crashed, or its connection to RabbitMQ dropped before the ack went out. The per-process
// memory of answers (the routing package's) cannot see that copy; the ledger can.
//
// The ledger keeps no answer, which holds a person's data: only that a request's service was
// answered, by which process and when. While one process asks the source, its claim makes the
// others wait; when it dies, its claim goes with it (postgres.Ledger ties a claim to its database
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
