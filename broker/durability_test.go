package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/sqlite"
	"github.com/sio-pso/siobroker/sqlite/sqlitetest"
)

// failingReplies is a journal whose appends of reply records fail while fails is positive: a
// journal locked, or full, at the moment a reply is to be recorded.
type failingReplies struct {
	siobroker.Journal
	fails atomic.Int32
}

func (j *failingReplies) AppendOnce(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	if slices.ContainsFunc(recs, func(r siobroker.JournalRecord) bool { return r.Kind == siobroker.JournalReply }) && j.fails.Add(-1) >= 0 {
		return nil, errors.New("database is locked")
	}
	return j.Journal.AppendOnce(ctx, recs...)
}

// recordsOf returns the journal's records of a request, by kind.
func (h *harness) recordsOf(t *testing.T, requestID string) map[siobroker.JournalKind][]siobroker.JournalRecord {
	t.Helper()
	recs, err := h.db.Journal().Query(context.Background(), siobroker.JournalFilter{RequestID: requestID})
	if err != nil {
		t.Fatal(err)
	}
	out := map[siobroker.JournalKind][]siobroker.JournalRecord{}
	for _, r := range recs {
		out[r.Kind] = append(out[r.Kind], r)
	}
	return out
}

// exchangesOnce fails unless the journal holds exactly one exchange record for each service.
func (h *harness) exchangesOnce(t *testing.T, requestID string, services ...int) {
	t.Helper()
	got := map[int]int{}
	for _, r := range h.recordsOf(t, requestID)[siobroker.JournalExchange] {
		got[r.Service]++
	}
	for _, svc := range services {
		if got[svc] != 1 {
			t.Errorf("request %s: %d exchange records of service %d, want 1 (all: %v)", requestID, got[svc], svc, got)
		}
	}
	if len(got) != len(services) {
		t.Errorf("request %s: exchange records of services %v, want %v", requestID, got, services)
	}
}

// TestSyncRequestHeldUntilJournaled: a synchronous request is stored from its admission, and
// forgotten once its reply is journaled and given out.
func TestSyncRequestHeldUntilJournaled(t *testing.T) {
	h := newHarness(t, nil)
	raw, _ := h.build(t, reqSpec{services: []int{1, 5}})
	reply, _, err := h.handle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := h.db.AsyncJob(context.Background(), reply.MessageID); ok || err != nil {
		t.Fatalf("an answered synchronous request is still held (%v, %v)", ok, err)
	}
	h.exchangesOnce(t, reply.MessageID, 1, 5)
}

// countedLookups is an AnswerStore that counts the dispatcher's look-ups of held answers.
type countedLookups struct {
	routing.AnswerStore
	lookups atomic.Int32
}

func (c *countedLookups) Answer(ctx context.Context, key string) ([]byte, bool, error) {
	c.lookups.Add(1)
	return c.AnswerStore.Answer(ctx, key)
}

// TestSyncRequestLooksUpNoHeldAnswer: the synchronous call that admitted a request routes it for
// the first time (routing.FirstDispatch), with or without waiting for late services, and does
// not read the store for answers its services cannot have yet.
func TestSyncRequestLooksUpNoHeldAnswer(t *testing.T) {
	for _, asyncTimeout := range []time.Duration{0, 10 * time.Second} {
		t.Run(fmt.Sprintf("async_timeout=%s", asyncTimeout), func(t *testing.T) {
			counted := &countedLookups{}
			h := newHarnessWith(t, harnessOpts{asyncTimeout: asyncTimeout, answers: func(a routing.AnswerStore) routing.AnswerStore {
				counted.AnswerStore = a
				return counted
			}})
			raw, _ := h.build(t, reqSpec{services: []int{1, 5}})
			reply, _, err := h.handle(raw)
			if err != nil {
				t.Fatal(err)
			}
			h.exchangesOnce(t, reply.MessageID, 1, 5)
			if n := counted.lookups.Load(); n != 0 {
				t.Errorf("the synchronous call looked up held answers %d times, want none", n)
			}
		})
	}
}

// TestReplyNotJournaledIsCompleted: a reply that cannot be journaled is not given out (the client
// gets SIO-UNAVAILABLE), and the request is not left unfinished: the worker completes it from the
// answers held, without asking its services again, with one outcome record per service.
func TestReplyNotJournaledIsCompleted(t *testing.T) {
	var journal *failingReplies
	h := newHarnessWith(t, harnessOpts{journal: func(j siobroker.Journal) siobroker.Journal {
		journal = &failingReplies{Journal: j}
		journal.fails.Store(1)
		return journal
	}})
	raw, _ := h.build(t, reqSpec{services: []int{1, 5}})
	_, seen, refused := h.handle(raw)
	if siobroker.ErrorCode(refused) != siobroker.CodeUnavailable {
		t.Fatalf("Handle = %v, want SIO-UNAVAILABLE while the reply cannot be journaled", refused)
	}
	job, ok, err := h.db.AsyncJob(context.Background(), seen.RequestID)
	if err != nil || !ok || job.State != siobroker.AsyncOnDelivery || job.Channel != siobroker.SyncChannel {
		t.Fatalf("held request %+v, %v, %v; want it ON_DELIVERY on the sync channel", job, ok, err)
	}
	if !strings.Contains(siobroker.ErrorMessage(refused), seen.RequestID) {
		t.Errorf("the fault %q does not name the accepted request %s", siobroker.ErrorMessage(refused), seen.RequestID)
	}
	// The client's retry as sent is a replay of an accepted request: it is told where the reply is.
	_, _, err = h.handle(raw)
	if siobroker.ErrorCode(err) != siobroker.CodeReplayID || !strings.Contains(siobroker.ErrorMessage(err), seen.RequestID) {
		t.Fatalf("the retry as sent: %v; want SIO-REPLAY-ID naming %s", err, seen.RequestID)
	}
	h.clock.Set(h.clock.Now().Add(syncRetryAfter + 1))
	startWorker(t, h)
	done := waitState(t, h, seen.RequestID, siobroker.AsyncDelivered)
	if len(done.Reply) == 0 {
		t.Fatal("the completed request has no reply to fetch")
	}
	if h.called(1) != 1 || h.called(5) != 1 {
		t.Errorf("services asked %d and %d times, want once each: the answers held complete the request", h.called(1), h.called(5))
	}
	h.exchangesOnce(t, seen.RequestID, 1, 5)
	if n := len(h.recordsOf(t, seen.RequestID)[siobroker.JournalReply]); n != 1 {
		t.Errorf("%d reply records, want 1", n)
	}
}

// TestResumeFindsJournaledReply: a request whose reply was journaled by a run that stopped before
// it settled the request (a crash between the two) is completed with that reply, not a second.
func TestResumeFindsJournaledReply(t *testing.T) {
	h := newHarness(t, nil)
	raw, info := h.build(t, reqSpec{services: []int{1, 5}})
	reply, _, err := h.handle(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The hold of the request as the crash left it.
	job := h.broker.jobOf(Request{RequestID: reply.MessageID, SignerIIN: reply.SignerIIN}, info, mustQuery(t, raw), h.clock.Now())
	job.State, job.Channel = siobroker.AsyncOnDelivery, siobroker.SyncChannel
	if err := h.db.CreateAsync(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	startWorker(t, h)
	done := waitState(t, h, reply.MessageID, siobroker.AsyncDelivered)
	replies := h.recordsOf(t, reply.MessageID)[siobroker.JournalReply]
	if len(replies) != 1 || string(done.Reply) != string(replies[0].Data) {
		t.Fatalf("%d reply records; the request was not completed with the one journaled", len(replies))
	}
	if h.called(1) != 1 || h.called(5) != 1 {
		t.Errorf("services asked %d and %d times, want once each", h.called(1), h.called(5))
	}
	h.exchangesOnce(t, reply.MessageID, 1, 5)
}

// TestTransportDownRefusalJournaled: a request refused while the transport is down is journaled
// with its messageId, and its retry as sent is accepted once the transport is back.
func TestTransportDownRefusalJournaled(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	h := newHarnessWith(t, harnessOpts{transportReady: func() error {
		if down.Load() {
			return siobroker.Errorf(siobroker.CodeUnavailable, "the message transport (RabbitMQ) is not connected")
		}
		return nil
	}})
	raw, info := h.build(t, reqSpec{services: []int{1}})
	_, seen, err := h.handle(raw)
	if siobroker.ErrorCode(err) != siobroker.CodeUnavailable {
		t.Fatalf("Handle = %v, want SIO-UNAVAILABLE", err)
	}
	refusals := h.recordsOf(t, seen.RequestID)[siobroker.JournalRefusal]
	if len(refusals) != 1 || refusals[0].MessageID != info.MessageID || refusals[0].Code != string(siobroker.CodeUnavailable) {
		t.Fatalf("refusal records %+v", refusals)
	}
	down.Store(false)
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("the retry as sent: %v", err)
	}
}

// TestLateServiceRecordedOnce: a service that missed the synchronous reply has one exchange
// record, written when its answer came, and the complete reply is journaled after it.
func TestLateServiceRecordedOnce(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{asyncTimeout: 10 * time.Second, slowAnswers: true, journalLate: true})
	raw, _ := h.build(t, reqSpec{services: []int{1, slowService}})
	reply, _, err := h.handle(raw)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, h, reply.MessageID, siobroker.AsyncDelivered)
	h.exchangesOnce(t, reply.MessageID, 1, slowService)
	recs := h.recordsOf(t, reply.MessageID)
	if len(recs[siobroker.JournalReply]) != 2 || len(recs[siobroker.JournalLate]) != 0 {
		t.Fatalf("%d replies and %d late records, want the partial and the complete reply and no late one",
			len(recs[siobroker.JournalReply]), len(recs[siobroker.JournalLate]))
	}
	for _, r := range recs[siobroker.JournalExchange] {
		if r.Service == slowService && r.Code != "ok/OK" {
			t.Errorf("the late service's outcome is %q, want its answer", r.Code)
		}
	}
}

// mustQuery reads the query of a request as the broker did.
func mustQuery(t *testing.T, raw []byte) siobroker.Query {
	t.Helper()
	doc, _, err := soap.ReadEnvelope(bytes.NewReader(raw), "text/xml; charset=utf-8", soap.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, data, err := soap.SendMessageParts(soap.Body(doc))
	if err != nil {
		t.Fatal(err)
	}
	q, err := soap.ParseQuery(data)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// stuckRelease is the store's replay guard, whose Release fails while fails is positive: a store
// locked with the journal that refused the request.
type stuckRelease struct {
	ReplayGuard
	fails atomic.Int32
}

func (r *stuckRelease) Release(ctx context.Context, messageID, digest string) error {
	if r.fails.Add(-1) >= 0 {
		return errors.New("database is locked")
	}
	return r.ReplayGuard.Release(ctx, messageID, digest)
}

// failingRequests is a journal whose appends of request records fail while fails is positive.
type failingRequests struct {
	siobroker.Journal
	fails atomic.Int32
}

func (j *failingRequests) Append(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	if slices.ContainsFunc(recs, func(r siobroker.JournalRecord) bool { return r.Kind == siobroker.JournalRequest }) && j.fails.Add(-1) >= 0 {
		return nil, errors.New("database is locked")
	}
	return j.Journal.Append(ctx, recs...)
}

// TestRefusedRetryTakenWhenMarksStuck: a request refused SIO-UNAVAILABLE after its replay marks
// were set, whose marks the store cannot forget at once, is still accepted when retried as sent;
// its refusal is journaled.
func TestRefusedRetryTakenWhenMarksStuck(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{wrapReplay: func(r ReplayGuard) ReplayGuard {
		stuck := &stuckRelease{ReplayGuard: r}
		stuck.fails.Store(1000) // the store stays locked for the release during the test
		return stuck
	}, journal: func(j siobroker.Journal) siobroker.Journal {
		f := &failingRequests{Journal: j}
		f.fails.Store(1)
		return f
	}})
	raw, info := h.build(t, reqSpec{services: []int{1}})
	_, seen, err := h.handle(raw)
	if siobroker.ErrorCode(err) != siobroker.CodeUnavailable {
		t.Fatalf("Handle = %v, want SIO-UNAVAILABLE while the request cannot be journaled", err)
	}
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("the retry as sent: %v", err)
	}
	if _, _, err := h.handle(raw); siobroker.ErrorCode(err) != siobroker.CodeReplayID {
		t.Fatalf("a second copy after the accepted retry: %v, want SIO-REPLAY-ID", err)
	}
	refusals := h.recordsOf(t, seen.RequestID)[siobroker.JournalRefusal]
	if len(refusals) != 1 || refusals[0].MessageID != info.MessageID {
		t.Fatalf("refusal records %+v", refusals)
	}
}

// lockAfterMarks is the store's replay guard that, once a request's replay marks are set, has
// another connection take the store's write lock: the store locked between two writes of a
// request.
type lockAfterMarks struct {
	ReplayGuard
	lock func()
}

func (r lockAfterMarks) MarkRequest(ctx context.Context, m siobroker.ReplayMark) (bool, bool, error) {
	idFresh, contentFresh, err := r.ReplayGuard.MarkRequest(ctx, m)
	r.lock()
	return idFresh, contentFresh, err
}

// TestLockedStoreFailsWithinTimeout: while another connection holds the store's write lock, a
// request is refused SIO-UNAVAILABLE within the store's write timeout, not after one timeout for
// each write the refusal needs (the replay marks' release, the refusal's record), which a request
// waited for in turn; those follow in the background, and the retry as sent is accepted once the
// lock is free. A lock taken after the replay marks and before the request's record exists only
// where each write commits alone: with Deps.Together the two are one transaction.
func TestLockedStoreFailsWithinTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	for _, c := range []struct {
		name        string
		afterMarks  bool // the lock is taken once the replay marks are set, before the request's journal record
		waitsBefore int  // store write timeouts the refused request waited for before this change
	}{
		{"locked from the start", false, 2},        // the replay marks, the refusal
		{"locked after the replay marks", true, 3}, // the request's record, the release, the refusal
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var release func()
			opts := harnessOpts{dir: dir, store: sqlite.Options{WriteTimeout: timeout}, separateCommits: c.afterMarks}
			if c.afterMarks {
				opts.wrapReplay = func(r ReplayGuard) ReplayGuard {
					return lockAfterMarks{ReplayGuard: r, lock: func() {
						if release == nil {
							release = sqlitetest.HoldWriteLock(t, dir)
						}
					}}
				}
			}
			h := newHarnessWith(t, opts)
			raw, info := h.build(t, reqSpec{services: []int{1}})
			if !c.afterMarks {
				release = sqlitetest.HoldWriteLock(t, dir)
			}

			start := time.Now()
			_, seen, err := h.handle(raw)
			took := time.Since(start)
			t.Logf("refused after %s: %v", took.Round(time.Millisecond), err)
			if siobroker.ErrorCode(err) != siobroker.CodeUnavailable || !errors.Is(err, siobroker.ErrWriteTimeout) {
				t.Fatalf("Handle with the store locked = %v, want SIO-UNAVAILABLE for the store's write timeout", err)
			}
			// Not a performance target: half a timeout of margin over the one timeout the
			// request waits, and less than the waitsBefore timeouts it used to wait.
			if took > 3*timeout/2 {
				t.Errorf("the request was refused after %s, want within its store's write timeout (%s) and a margin (it waited %d timeouts before)",
					took, timeout, c.waitsBefore)
			}

			release()
			deadline := time.Now().Add(15 * time.Second)
			for len(h.recordsOf(t, seen.RequestID)[siobroker.JournalRefusal]) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the refusal was not journaled once the store was free")
				}
				time.Sleep(50 * time.Millisecond)
			}
			refusals := h.recordsOf(t, seen.RequestID)[siobroker.JournalRefusal]
			if len(refusals) != 1 || refusals[0].MessageID != info.MessageID || refusals[0].Code != string(siobroker.CodeUnavailable) {
				t.Fatalf("refusal records %+v", refusals)
			}
			if _, _, err := h.handle(raw); err != nil {
				t.Fatalf("the retry as sent once the store is free: %v", err)
			}
		})
	}
}
