package broker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/schemas"
)

// frozenAfterRequest journals a request record and then never returns, as a broker killed right
// after it would: the request is neither accepted nor refused. thaw lets the call return (with an
// error), so that the test can end.
type frozenAfterRequest struct {
	siobroker.Journal
	once   sync.Once
	frozen chan struct{} // closed once the request record is in
	thawed chan struct{}
}

func (j *frozenAfterRequest) Append(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	out, err := j.Journal.Append(ctx, recs...)
	if err != nil || recs[0].Kind != siobroker.JournalRequest {
		return out, err
	}
	first := false
	j.once.Do(func() { first = true })
	if !first {
		return out, err
	}
	close(j.frozen)
	<-j.thawed
	return nil, errors.New("the process was killed")
}

// frozenRegistry is a case registry whose first check never answers, as the registry a broker
// killed while waiting for it: the request is neither accepted nor refused. thaw lets it answer
// (an error), so that the test can end; the later checks are the demo registry's.
type frozenRegistry struct {
	adapters.CaseRegistry
	once           sync.Once
	frozen, thawed chan struct{}
}

func (r *frozenRegistry) Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	first := false
	r.once.Do(func() { first = true })
	if !first {
		return r.CaseRegistry.Check(ctx, req)
	}
	close(r.frozen)
	<-r.thawed
	return schemas.CaseCheckResponse{}, errors.New("the process was killed")
}

// TestInterruptedAdmissionClosedAtStart: a request whose broker stopped between its replay marks
// and its acceptance is journaled as refused (SIO-UNAVAILABLE) at the next start, once, and its
// retry as sent is then accepted. With each write committed alone, the broker stops right after
// the request's record; where the marks and the record are one commit (Deps.Together), there is
// no instant between them, and it stops waiting for the case registry.
func TestInterruptedAdmissionClosedAtStart(t *testing.T) {
	t.Run("separate commits", func(t *testing.T) {
		frozen := &frozenAfterRequest{frozen: make(chan struct{}), thawed: make(chan struct{})}
		h := newHarnessWith(t, harnessOpts{separateCommits: true, journal: func(j siobroker.Journal) siobroker.Journal {
			frozen.Journal = j
			return frozen
		}})
		testInterruptedAdmission(t, h, frozen.frozen, frozen.thawed)
	})
	t.Run("marks and record together", func(t *testing.T) {
		frozen := &frozenRegistry{frozen: make(chan struct{}), thawed: make(chan struct{})}
		h := newHarnessWith(t, harnessOpts{checkTimeout: time.Minute, caseRegistry: func(name string) adapters.CaseRegistry {
			frozen.CaseRegistry = demo.NewCaseRegistry(name, demo.CasesOf(manifest.Users))
			return frozen
		}})
		testInterruptedAdmission(t, h, frozen.frozen, frozen.thawed)
	})
}

// testInterruptedAdmission is TestInterruptedAdmissionClosedAtStart on h, whose first request
// stops in its admission once frozen is closed, until thawed is.
func testInterruptedAdmission(t *testing.T, h *harness, frozen, thawed chan struct{}) {
	raw, info := h.build(t, reqSpec{services: []int{1}})
	done := make(chan Request)
	go func() {
		_, seen, _ := h.handle(raw)
		done <- seen
	}()
	<-frozen
	t.Cleanup(func() { close(thawed); <-done })

	if _, _, err := h.handle(raw); siobroker.ErrorCode(err) != siobroker.CodeReplayID {
		t.Fatalf("a copy while the first is in admission: %v, want SIO-REPLAY-ID", err)
	}
	// The restart: what the stopped process left is closed before anything is served.
	n, err := h.broker.CloseInterrupted(context.Background(), h.clock.Now())
	if err != nil || n != 1 {
		t.Fatalf("CloseInterrupted = %d, %v; want 1 request closed", n, err)
	}
	recs := h.journalOf(t, info.MessageID)
	var refusals []siobroker.JournalRecord
	for _, r := range recs {
		if r.Kind == siobroker.JournalRefusal && r.Code != string(siobroker.CodeReplayID) {
			refusals = append(refusals, r)
		}
	}
	if len(refusals) != 1 || refusals[0].Code != string(siobroker.CodeUnavailable) ||
		!strings.Contains(string(refusals[0].Data), "stopped before the request was accepted") || refusals[0].SignerIIN == "" {
		t.Fatalf("%d refusal records of the interrupted request; want one SIO-UNAVAILABLE naming the stop", len(refusals))
	}
	if n, err := h.broker.CloseInterrupted(context.Background(), h.clock.Now()); err != nil || n != 0 {
		t.Fatalf("a second sweep = %d, %v; want nothing left to close", n, err)
	}
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("the retry as sent after the restart: %v", err)
	}
}

// TestRefusedAdmissionEndedNotJournaledAgain: a request refused after its replay marks has its
// refusal journaled already; the sweep only ends its admission, and a request accepted has none
// left to end.
func TestRefusedAdmissionEndedNotJournaledAgain(t *testing.T) {
	h := newHarness(t, nil)
	raw, info := h.build(t, reqSpec{services: []int{1}, caseRef: siobroker.CaseRef{Number: "999999999999999"}})
	if _, _, err := h.handle(raw); err == nil {
		t.Fatal("a request under a case unknown to the registry was served")
	}
	okRaw, _ := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(okRaw); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	marks, err := h.db.Admissions(context.Background(), h.clock.Now().Add(time.Second))
	if err != nil || len(marks) != 1 {
		t.Fatalf("admissions in progress = %+v, %v; want the refused request's only", marks, err)
	}
	if n, err := h.broker.CloseInterrupted(context.Background(), h.clock.Now().Add(time.Second)); err != nil || n != 0 {
		t.Fatalf("CloseInterrupted = %d, %v; want none journaled", n, err)
	}
	if marks, _ := h.db.Admissions(context.Background(), h.clock.Now().Add(time.Second)); len(marks) != 0 {
		t.Fatalf("admissions left: %+v", marks)
	}
	refusals := 0
	for _, r := range h.journalOf(t, info.MessageID) {
		if r.Kind == siobroker.JournalRefusal {
			refusals++
		}
	}
	if refusals != 1 {
		t.Fatalf("%d refusal records of the refused request, want 1", refusals)
	}
}

// journalOf returns the journal's records of the client's messageId, in order.
func (h *harness) journalOf(t *testing.T, messageID string) []siobroker.JournalRecord {
	t.Helper()
	all, err := h.db.Journal().Query(context.Background(), siobroker.JournalFilter{})
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	var out []siobroker.JournalRecord
	for _, r := range all {
		if r.MessageID == messageID {
			out = append(out, r)
		}
	}
	return out
}
