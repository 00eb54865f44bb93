package siobroker

import (
	"context"
	"time"
)

// ReplayMark is what the replay defence records of a signed call: its id (the messageId, or for
// a call without one its signed content) and the digest of its signed content. A call that is a
// request to be served also names the broker's id for it (RequestID): from its marks until it is
// accepted (stored for delivery) or its refusal journaled, it is an admission in progress, and a
// broker that stops in between leaves it so. At the next start such a request is journaled as
// refused and its marks forgotten (broker.Broker.CloseInterrupted), so that the journal holds an
// outcome of every request it holds and the client's retry as sent is accepted. Where brokers
// share the marks, only the broker that recorded an admission closes it: only its store tells
// whether the request was accepted.
type ReplayMark struct {
	Key       string // the messageId, or "content:" and the digest for a call without one
	SenderID  string
	Digest    string // the signed content's digest; "" records the id only
	At        time.Time
	RequestID string // the broker's id of a request being admitted; "" for other calls
	SignerIIN string // the signer of a request being admitted
}

// ReplayMarks is the replay memory of the signed calls served outside the request pipeline: the
// dashboard's logins and the signed report requests. It is kept in the store the journal uses (the
// embedded SQLite store, or PostgreSQL with journal.driver: postgres), so that a captured call is
// refused after a restart, and by every broker that shares that store, not only by the process that
// first took it.
type ReplayMarks interface {
	// MarkOnce records key, seen at at, and reports whether it is new. The insert is the check,
	// so two brokers given the same key at once cannot both be told it is new. A store forgets a
	// key only once it is older than the replay window (replay.id_retention).
	MarkOnce(ctx context.Context, key string, at time.Time) (bool, error)
}
