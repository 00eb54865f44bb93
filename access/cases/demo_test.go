package cases

import (
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// The development users' demo cases must pass the default rules, under bases their roles may use,
// so that a new user can send a request that passes the case checks.
func TestDevPKIDemoCases(t *testing.T) {
	dir := t.TempDir()
	if _, err := devpki.Generate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	m, err := devpki.LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := rights.Load("../../configs/rights.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRules(DefaultConfig(), siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]int{}
	closed := 0
	for _, u := range m.Users {
		if len(u.Cases) == 0 {
			t.Errorf("user %s has no demo cases", u.IIN)
		}
		for _, c := range u.Cases {
			if err := r.Validate(c.Basis, c.Ref()); err != nil {
				t.Errorf("user %s: %v", u.IIN, err)
			}
			if !tbl.RoleMayUse(u.Role, c.Basis) {
				t.Errorf("user %s, role %d, has a case under basis %d, which the role may not use", u.IIN, u.Role, c.Basis)
			}
			forms[r.Form(c.Basis, c.Ref())]++
			if Exempt(c.Basis) {
				continue
			}
			// What the demo registry answers must pass the default §5 decision (a closed case
			// is refused, as it is meant to be).
			facts := siobroker.CaseFacts{Status: c.Status, Participants: []siobroker.Participant{{IIN: u.IIN, Part: c.Part}}}
			verdict, _ := r.Proceedings(u.Role, c.Basis, u.IIN, true, facts)
			switch {
			case c.Status == "closed":
				closed++
				if verdict != StatusNotOpen {
					t.Errorf("user %s, closed case %s: verdict %q", u.IIN, c.Number, verdict)
				}
			case verdict != InProceedings:
				t.Errorf("user %s, role %d, case %s (part %q, status %q): verdict %q", u.IIN, u.Role, c.Number, c.Part, c.Status, verdict)
			}
			// A manifest of an older generator names no part: the demo registry answers
			// DefaultPart, which must pass too.
			facts.Participants[0].Part, facts.Status = devpki.DefaultPart(u.Role, c.Basis), "open"
			if verdict, _ := r.Proceedings(u.Role, c.Basis, u.IIN, true, facts); verdict != InProceedings {
				t.Errorf("user %s, role %d, case %s: the default part %q gives %q", u.IIN, u.Role, c.Number, facts.Participants[0].Part, verdict)
			}
		}
	}
	if closed == 0 {
		t.Error("no demo case is closed, to show the refusal")
	}
	for _, f := range []string{FormERDR, FormInstruction, FormLegalAssistance, FormCourt, FormAdminOffence, FormEnforcement, FormSearch} {
		if forms[f] == 0 {
			t.Errorf("no demo case has the %s form", f)
		}
	}
}
