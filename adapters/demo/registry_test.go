package demo

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
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
			{Basis: siobroker.BasisCriminal, Ref: siobroker.CaseRef{Number: "261500031000123"}},
			{Basis: siobroker.BasisCriminal, Ref: siobroker.CaseRef{Number: "251500031000456", InstructionNo: "2-15-25/1234"}},
			{Basis: siobroker.BasisCourtCivil, Ref: siobroker.CaseRef{Number: "7511-25-00-2/1234", Year: "2025", Court: "Есильский районный суд г. Астаны"}},
		},
		bob: {
			{Basis: siobroker.BasisCriminal, Ref: siobroker.CaseRef{Number: "261500031000123"}}, // a joint case
			{Basis: siobroker.BasisSearch, Ref: siobroker.CaseRef{Number: "РД-257100041"}},
		},
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
