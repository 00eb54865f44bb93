package broker

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/ratelimit"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// gatedService is the service whose dispatches a gatedDispatcher holds.
const gatedService = 2

// gatedDispatcher holds every dispatch that asks gatedService until the test lets it go on: a
// request kept in flight for as long as the test wants, with no timer. Each held dispatch hands
// the test its own release on held.
type gatedDispatcher struct {
	Dispatcher
	held chan chan struct{}
}

func newGate() *gatedDispatcher { return &gatedDispatcher{held: make(chan chan struct{})} }

func (g *gatedDispatcher) wrap(d Dispatcher) Dispatcher {
	g.Dispatcher = d
	return g
}

func (g *gatedDispatcher) Dispatch(ctx context.Context, reqs []schemas.ServiceRequest, timeout func(int) time.Duration) []routing.Outcome {
	if slices.ContainsFunc(reqs, func(r schemas.ServiceRequest) bool { return r.Service == gatedService }) {
		release := make(chan struct{})
		select {
		case g.held <- release:
			select {
			case <-release:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}
	return g.Dispatcher.Dispatch(ctx, reqs, timeout)
}

// send runs call in the background and returns once its services are held: what call returns,
// when it has, and the release that lets it go on.
func (g *gatedDispatcher) send(t *testing.T, call func() error) (done <-chan error, release func()) {
	t.Helper()
	errs := make(chan error, 1)
	go func() { errs <- call() }()
	select {
	case r := <-g.held:
		return errs, func() { close(r) }
	case err := <-errs:
		t.Fatalf("the request ended before its services were asked: %v", err)
	}
	return nil, nil
}

// sendSync is send for a synchronous request.
func (g *gatedDispatcher) sendSync(t *testing.T, h *harness, raw []byte) (<-chan error, func()) {
	t.Helper()
	return g.send(t, func() error {
		_, _, err := h.handle(raw)
		return err
	})
}

// scopes records the limits Deps.ObserveSignerLimited is told of.
type scopes struct {
	mu   sync.Mutex
	seen []ratelimit.Scope
}

func (s *scopes) observe(sc ratelimit.Scope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, sc)
}

func (s *scopes) get() []ratelimit.Scope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// TestPerSignerConcurrencyLimit: a signer with Concurrent requests in flight has the next one
// refused SIO-RATE-LIMITED with Retry-After 1 s, the message saying why, journaled as a refusal of
// its signer, counted as the concurrency limit's, and reaching no service; another signer is
// served meanwhile; once one of the signer's requests is answered, the refused one sent again as
// it was is served (its replay marks were not taken), and the signer is at its limit again.
func TestPerSignerConcurrencyLimit(t *testing.T) {
	g := newGate()
	var observed scopes
	h := newHarnessWith(t, harnessOpts{perSigner: ratelimit.Limits{Concurrent: 2}, wrapDispatcher: g.wrap,
		observeSignerLimited: observed.observe})
	gated := func() []byte {
		raw, _ := h.build(t, reqSpec{services: []int{gatedService}})
		return raw
	}
	first, releaseFirst := g.sendSync(t, h, gated())
	second, releaseSecond := g.sendSync(t, h, gated())

	served := h.called(1)
	raw, info := h.build(t, reqSpec{services: []int{1}})
	_, seen, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeRateLimited)
	if got := soap.RetryAfterSeconds(err); got != 1 {
		t.Errorf("Retry-After %d s, want 1", got)
	}
	if msg := siobroker.ErrorMessage(err); !strings.Contains(msg, "requests in flight are at its limit (2)") {
		t.Errorf("message %q, want it to say the signer's 2 requests in flight are its limit", msg)
	}
	if seen.SignerIIN != userSigner.IIN() {
		t.Errorf("refusal of signer %q, want %q", seen.SignerIIN, userSigner.IIN())
	}
	if got := observed.get(); !slices.Equal(got, []ratelimit.Scope{ratelimit.ScopeConcurrent}) {
		t.Errorf("ObserveSignerLimited told %v, want [%s]", got, ratelimit.ScopeConcurrent)
	}
	recs := h.journalOf(t, info.MessageID)
	if len(recs) != 1 || recs[0].Kind != siobroker.JournalRefusal || recs[0].Code != string(siobroker.CodeRateLimited) ||
		recs[0].SignerIIN != userSigner.IIN() {
		t.Fatalf("journal of the refused request: %+v, want one refusal %s of its signer", recs, siobroker.CodeRateLimited)
	}
	if h.called(1) != served {
		t.Error("a refused request reached a service")
	}

	other, _ := h.build(t, reqSpec{signer: ecdsaSigner, services: []int{1}})
	if _, _, err := h.handle(other); err != nil {
		t.Fatalf("another signer while the first is at its limit: %v", err)
	}

	releaseFirst()
	if err := <-first; err != nil {
		t.Fatalf("the first request in flight: %v", err)
	}
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("the refused request sent again once one was answered: %v", err)
	}
	third, releaseThird := g.sendSync(t, h, gated())
	_, _, err = h.handle(gated())
	wantCode(t, err, siobroker.CodeRateLimited)
	releaseSecond()
	releaseThird()
	for _, done := range []<-chan error{second, third} {
		if err := <-done; err != nil {
			t.Fatalf("a request in flight: %v", err)
		}
	}
}

// TestPerSignerSlotReleasedOnRefusal: a request refused after it took its signer's slot gives
// the slot back, whatever refused it: with one slot, the signer's next request is served after
// each refusal, synchronous or asynchronous, down to a reply that could not be journaled (the
// request is then the worker's, and holds no slot of its signer).
func TestPerSignerSlotReleasedOnRefusal(t *testing.T) {
	var journal *failingReplies
	h := newHarnessWith(t, harnessOpts{perSigner: ratelimit.Limits{Concurrent: 1},
		journal: func(j siobroker.Journal) siobroker.Journal {
			journal = &failingReplies{Journal: j}
			return journal
		}})
	served, _ := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(served); err != nil {
		t.Fatal(err)
	}
	unknownCase := siobroker.CaseRef{Number: "261500031999999"}
	build := func(s reqSpec) []byte {
		s.services = []int{1}
		raw, _ := h.build(t, s)
		return raw
	}
	syncCall := func(raw []byte) error { _, _, err := h.handle(raw); return err }
	asyncCall := func(raw []byte) error { _, _, err := h.accept(raw); return err }
	for _, tt := range []struct {
		name   string
		call   func([]byte) error
		raw    []byte
		code   siobroker.Code
		before func()
	}{
		{"a replay", syncCall, served, siobroker.CodeReplayID, nil},
		{"an invalid subject", syncCall, build(reqSpec{subject: siobroker.Subject{IIN: "820605401174"}}), siobroker.CodeSubject, nil},
		{"an unknown case", syncCall, build(reqSpec{caseRef: unknownCase}), siobroker.CodeCaseUnknown, nil},
		{"a reply not journaled", syncCall, build(reqSpec{}), siobroker.CodeUnavailable, func() { journal.fails.Store(1) }},
		{"an asynchronous replay", asyncCall, served, siobroker.CodeReplayID, nil},
		{"an asynchronous unknown case", asyncCall, build(reqSpec{caseRef: unknownCase}), siobroker.CodeCaseUnknown, nil},
	} {
		if tt.before != nil {
			tt.before()
		}
		if err := tt.call(tt.raw); siobroker.ErrorCode(err) != tt.code {
			t.Fatalf("%s: %v, want %s", tt.name, err, tt.code)
		}
		if _, _, err := h.handle(build(reqSpec{})); err != nil {
			t.Fatalf("the next request after %s: %v", tt.name, err)
		}
	}
}

// TestPerSignerLateWaitHoldsNoSlot: a synchronous request answered without a late service, which
// the broker keeps waiting for in the background (Config.AsyncTimeout), has given its signer's
// slot back with the reply: a stalled service does not lock its signer out of the others.
func TestPerSignerLateWaitHoldsNoSlot(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{perSigner: ratelimit.Limits{Concurrent: 1}, asyncTimeout: time.Hour})
	raw, _ := h.build(t, reqSpec{services: []int{1, slowService}})
	reply, _, err := h.handle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if job, ok, err := h.db.AsyncJob(context.Background(), reply.MessageID); err != nil || !ok || job.State != siobroker.AsyncOnDelivery {
		t.Fatalf("the request waiting for its late service: %+v, %v, %v; want it ON_DELIVERY", job, ok, err)
	}
	next, _ := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(next); err != nil {
		t.Fatalf("the signer's next request while the first waits for its late service: %v", err)
	}
}

// slotHeldByAccepted returns a harness whose signers have one slot each, userSigner's held by
// the asynchronous request id it has just accepted, and no worker running.
func slotHeldByAccepted(t *testing.T) (*harness, string) {
	t.Helper()
	h := newHarnessWith(t, harnessOpts{perSigner: ratelimit.Limits{Concurrent: 1}})
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	ack, _, err := h.accept(raw)
	if err != nil {
		t.Fatal(err)
	}
	return h, ack.MessageID
}

// TestPerSignerAsyncHoldsSlotUntilWorked: an accepted asynchronous request holds its signer's slot
// until the worker has run it, on either asynchronous contract, and the synchronous channel shares
// the count: meanwhile the signer's new requests for services are refused, while its status
// queries are answered and another signer is served. Once the worker has run it, the signer is
// served again.
func TestPerSignerAsyncHoldsSlotUntilWorked(t *testing.T) {
	h, id := slotHeldByAccepted(t)
	if st, err := h.status(t, id, userSigner, signing.PlacementWSSE); err != nil || st.State != siobroker.AsyncOnDelivery {
		t.Fatalf("the status of the request holding the slot: %+v, %v", st, err)
	}
	refused, info := h.build(t, reqSpec{services: []int{1}})
	_, _, err := h.accept(refused)
	wantCode(t, err, siobroker.CodeRateLimited)
	if _, ok, err := h.db.AsyncJobOfClient(context.Background(), userSigner.IIN(), info.MessageID); ok || err != nil {
		t.Errorf("the refused request was stored (%v, %v)", ok, err)
	}
	_, _, err = h.handle(refused)
	wantCode(t, err, siobroker.CodeRateLimited)
	ac := acClient{t: t, h: h, signer: userSigner, placement: signing.PlacementWSSEToken}
	_, err = ac.sendMessage(soap.ACMessageInfo{}, 1)
	wantCode(t, err, siobroker.CodeRateLimited)
	if _, err := ac.status(id); err != nil {
		t.Fatalf("an AsyncChannel v10 status call while at the limit: %v", err)
	}
	other, _ := h.build(t, reqSpec{signer: ecdsaSigner, services: []int{1}})
	if _, _, err := h.accept(other); err != nil {
		t.Fatalf("another signer: %v", err)
	}

	stop := startWorker(t, h)
	waitState(t, h, id, siobroker.AsyncDelivered)
	stop() // its runs have ended, and released what they held
	if _, _, err := h.accept(refused); err != nil {
		t.Fatalf("the refused request sent again once the first was worked: %v", err)
	}
	_, err = ac.sendMessage(soap.ACMessageInfo{}, 1) // beside the one just accepted, with one slot
	wantCode(t, err, siobroker.CodeRateLimited)
}

// TestPerSignerSlotOfStoppedRequest: a request an operator stops before the worker ran it does not
// keep its signer's slot: the worker's next scan no longer finds it pending and releases it.
func TestPerSignerSlotOfStoppedRequest(t *testing.T) {
	h, id := slotHeldByAccepted(t)
	if ok, err := h.db.StopAsync(context.Background(), id, "unit test", h.clock.Now()); !ok || err != nil {
		t.Fatalf("StopAsync: %v, %v", ok, err)
	}
	// A request of another signer, worked by the same scan that finds the stopped one gone: once
	// it is delivered, that scan is over.
	other, _ := h.build(t, reqSpec{signer: ecdsaSigner, services: []int{1}})
	otherAck, _, err := h.accept(other)
	if err != nil {
		t.Fatal(err)
	}
	stop := startWorker(t, h)
	waitState(t, h, otherAck.MessageID, siobroker.AsyncDelivered)
	stop()
	next, _ := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(next); err != nil {
		t.Fatalf("the signer whose request was stopped: %v", err)
	}
}

// TestAsyncSlots: each slot is released once, and a scan releases only the slots of requests
// stored before it began that it does not list.
func TestAsyncSlots(t *testing.T) {
	released := map[string]int{}
	slot := func(id string) func() { return func() { released[id]++ } }
	s := asyncSlots{on: true}
	for _, id := range []string{"listed", "gone", "unstored", "late"} {
		s.hold(id, slot(id))
	}
	s.stored("listed")
	s.stored("gone")
	scan := s.beginScan()
	s.stored("late") // stored while the scan lists: it may not be in the listing
	s.releaseUnlisted(scan, []siobroker.AsyncJob{{RequestID: "listed"}})
	if want := map[string]int{"gone": 1}; !maps.Equal(released, want) {
		t.Fatalf("after the scan: released %v, want %v", released, want)
	}
	s.release("listed")
	s.release("listed")
	s.release("gone")
	s.drop("unstored")
	s.release("unstored")
	if want := map[string]int{"gone": 1, "listed": 1}; !maps.Equal(released, want) {
		t.Fatalf("released %v, want %v", released, want)
	}
	s.releaseUnlisted(s.beginScan(), nil)
	if want := map[string]int{"gone": 1, "listed": 1, "late": 1}; !maps.Equal(released, want) {
		t.Fatalf("after the next scan: released %v, want %v", released, want)
	}
	off := asyncSlots{}
	off.hold("x", slot("x"))
	off.stored("x")
	off.releaseUnlisted(off.beginScan(), nil)
	if released["x"] != 0 || len(off.held) != 0 {
		t.Error("with no concurrency limit a slot was kept")
	}
}
