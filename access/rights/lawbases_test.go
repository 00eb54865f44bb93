package rights_test

import (
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
)

// TestLawBasesClosedUntilConfigured: the shipped rights name the three bases of the Law with
// their provisions and open none: every role is refused under them, every service denied, and the
// refusal says that the operator has not configured the basis.
func TestLawBasesClosedUntilConfigured(t *testing.T) {
	tab := loadConfig(t)
	for b := siobroker.FirstLawBasis; b <= siobroker.LastLawBasis; b++ {
		lb, ok := tab.LawBasis(b)
		if !ok || lb.Configured() || lb.LegalReference != b.LegalReference() || lb.Name == "" {
			t.Fatalf("law basis %d: %+v, %t", b, lb, ok)
		}
		for role := 1; role <= rights.NumRoles; role++ {
			if tab.RoleMayUse(role, b) {
				t.Fatalf("role %d may use the unconfigured basis %d", role, b)
			}
		}
		d, trace := tab.Explain(1, b, 1, siobroker.Qualification{})
		if d.Allowed || d.Reason != siobroker.ReasonDeniedBasis || !strings.Contains(d.Explanation, "has not configured them from the Law") ||
			!strings.Contains(d.Explanation, b.LegalReference()) || !strings.Contains(trace, "not configured") {
			t.Fatalf("basis %d: %+v\n%s", b, d, trace)
		}
		if d := tab.DecideService(b, 1, siobroker.Qualification{}); d.Allowed || !strings.Contains(d.Explanation, "has not configured") {
			t.Fatalf("basis %d, DecideService: %+v", b, d)
		}
	}
}

// TestLawBasisConfigured: once the operator opens a basis to a role and services, those and only
// those are allowed.
func TestLawBasisConfigured(t *testing.T) {
	const closed = "    roles: []\n    services: {}\n"
	s := string(configText(t, func(s string) string {
		i := strings.Index(s, "legal_reference: 'п. 5 ст. 16-2")
		j := i + strings.Index(s[i:], closed)
		return s[:j] + "    roles: [5, 10]\n    services: {1: full, 11: truncated}\n" + s[j+len(closed):]
	}))
	tab, err := rights.Parse([]byte(s), "fm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := siobroker.BasisFinMonitoring
	if !tab.RoleMayUse(10, b) || tab.RoleMayUse(1, b) {
		t.Fatal("roles of basis 9 not as configured")
	}
	if d, _ := tab.Explain(10, b, 1, siobroker.Qualification{}); !d.Allowed || d.Access != siobroker.AccessFull {
		t.Fatalf("service 1: %+v", d)
	}
	if d, _ := tab.Explain(10, b, 11, siobroker.Qualification{}); !d.Allowed || d.Access != siobroker.AccessTruncated {
		t.Fatalf("service 11: %+v", d)
	}
	if d, _ := tab.Explain(10, b, 2, siobroker.Qualification{}); d.Allowed || !strings.Contains(d.Explanation, "does not make service 2") {
		t.Fatalf("service 2: %+v", d)
	}
	if d, _ := tab.Explain(1, b, 1, siobroker.Qualification{}); d.Allowed || !strings.Contains(d.Explanation, "does not let role 1") {
		t.Fatalf("role 1: %+v", d)
	}
	if _, err := rights.Parse([]byte(strings.Replace(s, "{1: full, 11: truncated}", "{1: economic-articles-only}", 1)), "x.yaml"); err == nil ||
		!strings.Contains(err.Error(), "law basis 9: service 1") {
		t.Fatalf("economic-articles-only under basis 9: %v", err)
	}
}
