package siobroker

import (
	"context"
	"time"
)

// Ledger is shared by every adapter process that serves the same queues, so that a request is
// asked of its source at most once however many processes its copies reach. A copy reaches
// another process when the first one's acknowledgement was lost: it published its answer and
// then crashed, or its connection to RabbitMQ dropped before the ack went out; and the broker
// asks again, with the same request id, when it resumes a request after its own crash. The
// per-process memory of answers (the routing package's) cannot see such a copy; the ledger can.
//
// The ledger keeps the answer that was published (its payload, which holds a person's data), so
// that a copy is answered again from it without asking the source: the broker that asks again
// gets its answer instead of timing out. It keeps it for a bounded time only (the answer
// retention, 24 hours by default), then forgets it and keeps only that the request's service
// was answered, by which process and when; a copy that comes after that is not answered, and
// goes to the dead-letter queue with why. While one process asks the source, its claim makes the
// others wait; when it dies, its claim goes with it (postgres.Ledger ties a claim to its database
// session), and the copy is asked again.
type Ledger interface {
	// Take claims key (CorrelationKey) for this process. It returns LedgerAnswered when key was
	// answered before, by any process (Answer then gives the answer); LedgerBusy when another
	// live process holds it; or LedgerTaken with the claim, which must be ended with Answered or
	// Release.
	Take(ctx context.Context, key string) (LedgerClaim, LedgerState, error)
	// Answer returns what was recorded of key's answer. Its Payload is nil when the answer was
	// forgotten after the retention, or key was never answered.
	Answer(ctx context.Context, key string) (LedgerAnswer, error)
}

// LedgerClaim is a process's hold on one request's service.
type LedgerClaim interface {
	// Answered records that the answer, payload (the message that was published to the
	// request's reply topic), was published (its confirm received) at at, and ends the claim.
	Answered(ctx context.Context, at time.Time, payload []byte) error
	// Release ends the claim without an answer, so that a copy is asked again; after Answered
	// it does nothing.
	Release()
}

// LedgerAnswer is what the ledger holds of one answered request's service.
type LedgerAnswer struct {
	Owner      string    // the process that answered
	AnsweredAt time.Time // when
	Payload    []byte    // the answer published; nil once forgotten
}

// LedgerState is what Ledger.Take found.
type LedgerState int

// The states of a key in the ledger.
const (
	LedgerTaken    LedgerState = iota + 1 // the claim is this process's: ask the source
	LedgerAnswered                        // answered before: the copy is answered from Ledger.Answer
	LedgerBusy                            // another process is asking the source now
)

// DefaultAnswerRetention is how long a ledger keeps an answer's payload by default: long enough
// for a broker that crashed to come back and ask again, short enough that a person's data is not
// kept longer than that needs.
const DefaultAnswerRetention = 24 * time.Hour
