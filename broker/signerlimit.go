package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/ratelimit"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// limitSigner takes one call of the signer iin within Config.PerSigner.Rate, or refuses it. It
// comes right after the signature, before the replay marks, so that the retry the fault invites
// is not a replay, and before anything costlier (the store, the case registry, the services) is
// asked.
func (b *Broker) limitSigner(iin string) error {
	release, refused := b.signers.Acquire(iin, b.deps.Clock.Now())
	if refused != nil {
		return b.signerLimited(refused, fmt.Sprintf("too many requests of this signer; retry in %d s",
			max(1, int(math.Ceil(refused.RetryAfter.Seconds())))))
	}
	release() // a rate only: the requests in flight are holdSigner's
	return nil
}

// holdSigner takes one of the signer's requests in flight (Config.PerSigner.Concurrent) for a
// request for services, or refuses it; the caller calls release when the request's work ends
// (see Config.PerSigner for when that is). Like limitSigner it comes before the replay marks. It
// comes after limitSigner, so a request it refuses has spent a token of the rate: its signature
// was verified, which is the cost the rate bounds.
func (b *Broker) holdSigner(iin string) (release func(), err error) {
	release, refused := b.inFlight.Acquire(iin, b.deps.Clock.Now())
	if refused != nil {
		return nil, b.signerLimited(refused, fmt.Sprintf(
			"this signer's requests in flight are at its limit (%d); retry once one of them is answered", b.cfg.PerSigner.Concurrent))
	}
	return release, nil
}

// signerLimited is the refusal of a request over a limit of Config.PerSigner: one code for both
// limits, since the client's remedy is the same (wait Retry-After and send it again as it was),
// and the message says which.
func (b *Broker) signerLimited(refused *ratelimit.Refusal, message string) error {
	if b.deps.ObserveSignerLimited != nil {
		b.deps.ObserveSignerLimited(refused.Scope)
	}
	return siobroker.Wrap(siobroker.CodeRateLimited, &soap.RetryAfter{Wait: refused.RetryAfter}, "%s", message)
}

// asyncSlots hold the in-flight slots (Config.PerSigner.Concurrent) of the asynchronous
// requests this process accepted, by request id, from their acceptance until its AsyncWorker has
// run them: the queue in front of the worker, shared by every signer, is where one signer could
// otherwise pile up work without bound. Each slot is released once, by whichever comes first:
// the worker's run of the request (AsyncWorker.process), or a scan of the worker that no longer
// lists the request as pending (an operator stopped it, or another run completed it), so that a
// request the worker never runs does not keep its signer's slot until a restart.
type asyncSlots struct {
	on    bool // Config.PerSigner.Concurrent is set: without it there is nothing to hold
	mu    sync.Mutex
	scans uint64 // the worker's scans begun
	held  map[string]*asyncSlot
}

type asyncSlot struct {
	release func()
	// stored: the request is in the store, since the scan count storedAt. A scan begun after
	// that lists the request for as long as it is pending; one begun before may not.
	stored   bool
	storedAt uint64
}

// hold keeps release for the request id, which is about to be stored. It is kept before the
// request is stored, because the worker may run the request as soon as it is.
func (s *asyncSlots) hold(id string, release func()) {
	if !s.on {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = map[string]*asyncSlot{}
	}
	s.held[id] = &asyncSlot{release: release}
}

// stored notes that the request id is in the store (its slot may have been released already).
func (s *asyncSlots) stored(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[id]; h != nil {
		h.stored, h.storedAt = true, s.scans
	}
}

// drop forgets the slot of the request id, which was not stored: its caller releases it.
func (s *asyncSlots) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, id)
}

// release releases the slot of the request id, if it still holds one.
func (s *asyncSlots) release(id string) {
	s.mu.Lock()
	h := s.held[id]
	delete(s.held, id)
	s.mu.Unlock()
	if h != nil {
		h.release()
	}
}

// beginScan is called by the worker before it lists the pending requests, and returns the
// scan's number for releaseUnlisted.
func (s *asyncSlots) beginScan() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scans++
	return s.scans
}

// releaseUnlisted releases the slots of the requests stored before scan began that its listing
// of the pending requests does not hold: they are no longer the worker's to run. (One that is
// being run or handed to a wait for late services meanwhile has its slot released a little
// early, which only loosens the limit.)
func (s *asyncSlots) releaseUnlisted(scan uint64, pending []siobroker.AsyncJob) {
	listed := make(map[string]bool, len(pending))
	for _, j := range pending {
		listed[j.RequestID] = true
	}
	var gone []func()
	s.mu.Lock()
	for id, h := range s.held {
		if h.stored && h.storedAt < scan && !listed[id] {
			gone = append(gone, h.release)
			delete(s.held, id)
		}
	}
	s.mu.Unlock()
	for _, release := range gone {
		release()
	}
}

// refuseSignerLimited is refuseUnauthenticated for a request refused by its signer's limits: its
// signer is known and kept in the record, its messageId too, but not its raw request, and only
// so many such refusals of a signer (UnauthenticatedLimits.PerClientPerMinute) and of every
// signer (TotalPerMinute) are journaled one by one in a minute; the rest are counted into the
// signer's summary. A signer's key in a runaway client must not grow the journal at its pace.
func (b *Broker) refuseSignerLimited(ctx context.Context, seen *Request, cause error) ([]byte, bool) {
	code := string(siobroker.ErrorCode(cause))
	body := b.bodyDigest(seen)
	individual, closed, schedule := b.signerRefusals.admit(b.cfg.Unauthenticated, seen.SignerIIN, b.deps.Clock.Now(), code, body.Size)
	b.journalSummaries(ctx, closed)
	if !individual {
		if schedule {
			b.scheduleFlush(&b.signerRefusals)
		}
		b.deps.Logger.DebugContext(ctx, "refusal of a signer over its limits counted into its summary",
			append(reqlog.Attrs(seen.MessageID, seen.RequestID), "signer_iin", seen.SignerIIN, "code", code)...)
		return nil, false
	}
	seen.MessageID = truncateUTF8(seen.MessageID, refusalIDBytes)
	seen.SenderID = truncateUTF8(seen.SenderID, refusalIDBytes)
	data, _ := json.Marshal(unauthenticatedRefusal{
		Message: truncateUTF8(siobroker.ErrorMessage(cause), refusalMessageBytes),
		Client:  ClientOf(ctx),
		Body:    &body,
	})
	return data, true
}
