package demo

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const (
	alice = "750312300458"
	bob   = "820605401172"
)

func testRegistry() *CaseRegistry {
	return NewCaseRegistry("erdr", map[string][]Case{
		alice: {
			{Basis: siobroker.BasisCriminal, Ref: siobroker.CaseRef{Number: "261500031000123"}, Part: "Supervising_Prosecutor ", Status: "open", Articles: []string{"ст. 216 ч. 2", "190"}},
			{Basis: siobroker.BasisCriminal, Ref: siobroker.CaseRef{Number: "251500031000456", InstructionNo: "2-15-25/1234"}, Part: "investigator"},
			{Basis: siobroker.BasisCourtCivil, Ref: siobroker.CaseRef{Number: "7511-25-00-2/1234", Year: "2025", Court: "Есильский районный суд г. Астаны"}, Part: "prosecutor"},
			{Basis: siobroker.BasisCriminal, Ref: siobroker.CaseRef{Number: "241500031000088"}, Part: "investigator", Status: "Closed"},
		},
		bob: {
			{Basis: siobroker.BasisCriminal, Ref: siobroker.CaseRef{Number: "261500031000123"}, Part: "group_member"}, // a joint case
			{Basis: siobroker.BasisSearch, Ref: siobroker.CaseRef{Number: "РД-257100041"}, Part: "search_officer"},
		},
	})
}

// TestCaseRegistryMeetsTheContract runs the shared registry suite, without the hooks that need a
// source to fail or hang: the demo registry has none.
func TestCaseRegistryMeetsTheContract(t *testing.T) {
	adaptertest.RunRegistrySuite(t, adaptertest.RegistryCase{
		Registry: testRegistry(),
		Open: adaptertest.KnownCase{
			CaseQuery: adaptertest.CaseQuery{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "261500031000123"}},
			Facts: siobroker.CaseFacts{Status: "open", Articles: []string{"216", "190"},
				Participants: []siobroker.Participant{{IIN: alice, Part: "supervising_prosecutor"}, {IIN: bob, Part: "group_member"}}}},
		Closed: adaptertest.KnownCase{
			CaseQuery: adaptertest.CaseQuery{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "241500031000088"}},
			Facts:     siobroker.CaseFacts{Status: "closed", Participants: []siobroker.Participant{{IIN: alice, Part: "investigator"}}}},
		Unknown: []adaptertest.CaseQuery{
			{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "261500031000999"}},
			{Basis: siobroker.BasisSearch, Case: siobroker.CaseRef{Number: "261500031000123"}},
		},
		Outsider: "000000000000",
	})
}

func TestCaseRegistryCheck(t *testing.T) {
	r := testRegistry()
	erdr := siobroker.CaseRef{Number: "261500031000123"}
	court := siobroker.CaseRef{Number: "7511-25-00-2/1234", Year: "2025", Court: "Есильский районный суд г. Астаны"}
	for _, tc := range []struct {
		name          string
		signer        string
		basis         siobroker.Basis
		ref           siobroker.CaseRef
		found, inProc bool
	}{
		{"in the signer's proceedings", alice, 1, erdr, true, true},
		{"joint case, other signer", bob, 1, erdr, true, true},
		{"not the signer's", bob, 4, court, true, false},
		{"unknown signer", "000000000000", 1, erdr, true, false},
		{"unknown case", alice, 1, siobroker.CaseRef{Number: "261500031000999"}, false, false},
		{"same number, other basis", alice, 6, erdr, false, false},
		{"court case under basis 2 instead of 4", alice, 2, court, false, false},
		{"instruction form", alice, 1, siobroker.CaseRef{Number: "251500031000456", InstructionNo: "2-15-25/1234"}, true, true},
		{"instruction number missing", alice, 1, siobroker.CaseRef{Number: "251500031000456"}, false, false},
		{"wrong instruction number", alice, 1, siobroker.CaseRef{Number: "251500031000456", InstructionNo: "2-15-25/1235"}, false, false},
		{"court whitespace and case are normalised", alice, 4,
			siobroker.CaseRef{Number: " 7511-25-00-2/1234", Year: "2025", Court: "ЕСИЛЬСКИЙ  районный\tсуд г. Астаны "}, true, true},
		{"wrong year", alice, 4, siobroker.CaseRef{Number: court.Number, Year: "2024", Court: court.Court}, false, false},
		{"letter case of a prefix", bob, 6, siobroker.CaseRef{Number: "рд-257100041"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.Check(context.Background(), schemas.CaseCheckRequest{
				RequestID: "req-1", Basis: tc.basis, Case: tc.ref, SignerIIN: tc.signer})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Found != tc.found || resp.InProceedings != tc.inProc {
				t.Errorf("found=%v inProceedings=%v, want %v %v (%s)", resp.Found, resp.InProceedings, tc.found, tc.inProc, resp.Message)
			}
			if resp.RequestID != "req-1" || resp.Registry != "erdr" || resp.AnsweredAt.IsZero() || resp.Message == "" {
				t.Errorf("response envelope: %+v", resp)
			}
		})
	}
}

func TestCaseRegistryContext(t *testing.T) {
	r := testRegistry()
	req := schemas.CaseCheckRequest{RequestID: "r", Basis: 1, Case: siobroker.CaseRef{Number: "261500031000123"}, SignerIIN: alice}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Check(ctx, req); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
	req.Deadline = time.Now().Add(-time.Second)
	if _, err := r.Check(context.Background(), req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past deadline: err = %v", err)
	}
	req.Deadline = time.Now().Add(time.Minute)
	if resp, err := r.Check(context.Background(), req); err != nil || !resp.InProceedings {
		t.Errorf("future deadline: %+v, %v", resp, err)
	}
}

func TestCaseRegistryConcurrent(t *testing.T) {
	r := testRegistry()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			signer := alice
			if i%2 == 1 {
				signer = bob
			}
			resp, err := r.Check(context.Background(), schemas.CaseCheckRequest{Basis: 1, Case: siobroker.CaseRef{Number: "261500031000123"}, SignerIIN: signer})
			if err != nil || !resp.InProceedings {
				t.Errorf("concurrent check: %+v, %v", resp, err)
			}
		})
	}
	wg.Wait()
}

func TestCaseRegistryFromDevPKI(t *testing.T) {
	m, err := devpki.Generate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := NewCaseRegistry("erdr", CasesOf(m.Users))
	n := 0
	for _, u := range m.Users {
		for _, c := range u.Cases {
			n++
			resp, err := r.Check(context.Background(), schemas.CaseCheckRequest{Basis: c.Basis, Case: c.Ref(), SignerIIN: u.IIN})
			if err != nil || !resp.Found || !resp.InProceedings {
				t.Errorf("user %s case %+v: %+v, %v", u.IIN, c, resp, err)
			}
			if parts := resp.Facts().PartsOf(u.IIN); len(parts) != 1 || parts[0] == "" || (c.Part != "" && parts[0] != c.Part) {
				t.Errorf("user %s case %+v: parts %v", u.IIN, c, parts)
			}
			if want := c.Status; want != "" && resp.Status != want {
				t.Errorf("user %s case %+v: status %q, want %q", u.IIN, c, resp.Status, want)
			}
			for _, other := range m.Users {
				if other.IIN == u.IIN {
					continue
				}
				resp, _ := r.Check(context.Background(), schemas.CaseCheckRequest{Basis: c.Basis, Case: c.Ref(), SignerIIN: other.IIN})
				if resp.InProceedings {
					t.Errorf("case %+v of %s is also in the proceedings of %s", c, u.IIN, other.IIN)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the development users have no demo cases")
	}
}
