package cases

import (
	"slices"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const (
	prosecutor   = "750312300458"
	investigator = "860421301550"
	officer      = "910702402168"
	judge        = "820605401173"
)

func TestProceedings(t *testing.T) {
	r, err := NewRules(DefaultConfig(), siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	open := siobroker.CaseFacts{Status: "open", Participants: []siobroker.Participant{
		{IIN: investigator, Part: "investigator"}, {IIN: officer, Part: "group_member"}, {IIN: prosecutor, Part: "supervising_prosecutor"},
		{IIN: judge, Part: "investigator"}, // a wrong part for a judge's role
	}}
	withStatus := func(f siobroker.CaseFacts, s string) siobroker.CaseFacts { f.Status = s; return f }
	for _, tc := range []struct {
		name   string
		role   int
		basis  siobroker.Basis
		signer string
		found  bool
		facts  siobroker.CaseFacts
		want   Verdict
	}{
		{"the investigator", 3, 1, investigator, true, open, InProceedings},
		{"an investigative group's member (§21)", 18, 1, officer, true, open, InProceedings},
		{"the supervising prosecutor", 1, 1, prosecutor, true, open, InProceedings},
		{"not found", 3, 1, investigator, false, siobroker.CaseFacts{}, NotFound},
		{"not a participant", 3, 1, "900114302034", true, open, NotParticipant},
		{"a judge listed as investigator", 2, 1, judge, true, open, PartNotAllowed},
		{"an officer's part, but a role of basis 1 only, under basis 6", 18, 6, officer, true, open, PartNotAllowed},
		{"closed", 3, 1, investigator, true, withStatus(open, "closed"), StatusNotOpen},
		{"terminated, in the registry's case", 3, 1, investigator, true, withStatus(open, " Terminated "), StatusNotOpen},
		{"suspended", 3, 1, investigator, true, withStatus(open, "Suspended"), InProceedings},
		{"no status", 3, 1, investigator, true, withStatus(open, ""), StatusNotOpen},
		{"found with nobody", 3, 1, investigator, true, siobroker.CaseFacts{Status: "open"}, NoParticipants},
		{"parts compared lower-cased", 3, 1, investigator, true,
			siobroker.CaseFacts{Status: "OPEN", Participants: []siobroker.Participant{{IIN: investigator, Part: " Investigator"}}}, InProceedings},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := r.Proceedings(tc.role, tc.basis, tc.signer, tc.found, tc.facts)
			if got != tc.want {
				t.Errorf("verdict %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDefaultPartsCoverAppendix1: every role that Appendix 1 lets use a checked basis has a part
// that counts under it, so that no user is refused every case by the defaults alone.
func TestDefaultPartsCoverAppendix1(t *testing.T) {
	r, err := NewRules(DefaultConfig(), siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := rights.Load("../../configs/rights.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range tbl.Roles() {
		for _, b := range role.Bases {
			if Exempt(b) {
				continue
			}
			allowed := r.AllowedParts(role.No, b)
			if len(allowed) == 0 {
				t.Errorf("role %d under basis %d: no part counts", role.No, b)
			}
			// The demo registry's part for a case of an older manifest.
			if p := devpki.DefaultPart(role.No, b); !slices.Contains(allowed, p) {
				t.Errorf("role %d under basis %d: devpki.DefaultPart is %q, not one of %v", role.No, b, p, allowed)
			}
		}
	}
	if got := r.AllowedParts(15, 5); !slices.Equal(got, []string{"bailiff"}) {
		t.Errorf("the bailiff: %v", got)
	}
}
