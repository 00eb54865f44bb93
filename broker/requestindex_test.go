package broker

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/reports"
)

// TestJournalFoldsIntoTheRequestIndex: what the pipeline journals is what the request index of
// reports reads. Requests answered, refused after they were journaled, and refused before (a
// replay, whose refusal carries the request) each become one entry with the query as signed, the
// outcome, and the signer's department as the registry had it at the time; a request whose
// signature did not verify becomes none. The broker itself never writes the index.
func TestJournalFoldsIntoTheRequestIndex(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	iin := userSigner.IIN()
	u := h.user(t, iin)
	u.Department = "Следственный отдел"
	h.apply(t, siobroker.Application{Kind: siobroker.ApplyMove, IIN: iin, User: u})
	h.clock.Set(h.clock.Now().Add(time.Second))

	raw, _ := h.build(t, reqSpec{basis: siobroker.BasisCourtAdmin, services: []int{1, 37}})
	_, answered, err := h.handle(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, replay, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeReplayID)
	unknown, _ := h.build(t, reqSpec{caseRef: siobroker.CaseRef{Number: "261500031999999"}, services: []int{5}})
	_, refused, err := h.handle(unknown)
	wantCode(t, err, siobroker.CodeCaseUnknown)
	good, _ := h.build(t, reqSpec{services: []int{1}})
	if _, tampered, err := h.handle(bytes.Replace(good, []byte("unit test"), []byte("unit tesT"), 1)); err == nil {
		t.Fatal("a tampered request was accepted")
	} else if tampered.RequestID == "" {
		t.Fatal("no request id")
	}
	// The department changes: the next request is the new department's, the earlier ones stay.
	h.clock.Set(h.clock.Now().Add(time.Second))
	u.Department = "Отдел дознания"
	h.apply(t, siobroker.Application{Kind: siobroker.ApplyMove, IIN: iin, User: u})
	h.clock.Set(h.clock.Now().Add(time.Second))
	later, _ := h.build(t, reqSpec{services: []int{5}})
	_, moved, err := h.handle(later)
	if err != nil {
		t.Fatal(err)
	}

	if seq, _ := h.db.IndexedThrough(ctx); seq != 0 {
		t.Fatalf("the pipeline wrote the request index (through %d)", seq)
	}
	x, err := reports.NewIndexer(reports.IndexerConfig{}, h.db.Journal(), h.db, h.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, done, err := x.CatchUp(ctx, 0); err != nil || !done {
		t.Fatalf("CatchUp: done %v, %v", done, err)
	}
	all := map[string]siobroker.RequestEntry{}
	if err := h.db.ScanRequests(ctx, siobroker.RequestFilter{}, func(int) error { return nil }, func(e siobroker.RequestEntry) error {
		all[e.RequestID] = e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Fatalf("%d entries, want 4 (the tampered request is no user's): %v", len(all), all)
	}
	for _, c := range []struct {
		id         string
		basis      siobroker.Basis
		services   []int
		outcome    siobroker.RequestOutcome
		code       string
		department string
	}{
		// Service 37 is denied under basis 2 (App. 2, fn. 2).
		{answered.RequestID, siobroker.BasisCourtAdmin, []int{1, 37}, siobroker.RequestPartial, "", "Следственный отдел"},
		{replay.RequestID, siobroker.BasisCourtAdmin, []int{1, 37}, siobroker.RequestRefused, string(siobroker.CodeReplayID), "Следственный отдел"},
		{refused.RequestID, siobroker.BasisCriminal, []int{5}, siobroker.RequestRefused, string(siobroker.CodeCaseUnknown), "Следственный отдел"},
		{moved.RequestID, siobroker.BasisCriminal, []int{5}, siobroker.RequestAnswered, "", "Отдел дознания"},
	} {
		e, ok := all[c.id]
		switch {
		case !ok:
			t.Errorf("no entry %s", c.id)
		case e.Basis != c.basis || len(e.Services) != len(c.services) || e.Outcome != c.outcome || e.Code != c.code ||
			e.Department != c.department || e.SignerIIN != iin || e.Organisation != u.Organisation || e.Subject.IIN != validIIN || e.Case == "":
			t.Errorf("entry %s:\n got %+v\nwant %+v", c.id, e, c)
		}
	}
	if e := all[answered.RequestID]; len(e.ServiceOutcomes) != 2 || e.RepliedAt.IsZero() {
		t.Errorf("the answered request's outcomes: %+v", e)
	}
}
