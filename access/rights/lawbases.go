package rights

import (
	"fmt"
	"maps"
	"slices"

	"github.com/sio-pso/siobroker"
)

// §1 of the Rules, as amended on 23.02.2026, adds the bases of the Law "О государственной правовой
// статистике и специальных учетах": those of other bodies (art. 16-1 p. 1), of covert
// investigative actions and operational-search activity, military intelligence included
// (art. 16-2 p. 3), and of financial monitoring (art. 16-2 p. 5). The Law defines them; the
// Rules give them no column in Appendices 1 and 2. So which roles may use each, and which services
// are available under it, is the operator's configuration (rights.yaml, law_bases), read from the
// Law: empty, as shipped, nothing is allowed under them.

// LawBasis is the configuration of one of the Law's bases.
type LawBasis struct {
	No             siobroker.Basis
	Name           string
	LegalReference string
	Roles          []int                    // rows of Appendix 1 that may make requests under it, ascending
	Services       map[int]siobroker.Access // services available under it, full or truncated
}

// Configured reports whether the operator has opened the basis to anyone.
func (lb LawBasis) Configured() bool { return len(lb.Roles) > 0 || len(lb.Services) > 0 }

type fileLawBasis struct {
	No             int            `yaml:"no"`
	Name           string         `yaml:"name"`
	LegalReference string         `yaml:"legal_reference"`
	Roles          []int          `yaml:"roles"`
	Services       map[int]string `yaml:"services"`
}

// LawBasis returns the configuration of basis b of the Law.
func (t *Table) LawBasis(b siobroker.Basis) (LawBasis, bool) {
	lb, ok := t.law[b]
	lb.Roles, lb.Services = slices.Clone(lb.Roles), maps.Clone(lb.Services)
	return lb, ok
}

// lawBases checks the law_bases section: each of the Law's bases once, with its name, its legal
// reference, and roles and services that exist. An access "economic-articles-only" is refused:
// footnote 2 is about the criminal basis of Appendix 2. A truncated service needs its truncation
// fields, as under the appendices' bases.
func (v *validator) lawBases(in []fileLawBasis, truncation map[int][]string) map[siobroker.Basis]LawBasis {
	out := map[siobroker.Basis]LawBasis{}
	for i, fb := range in {
		b := siobroker.Basis(fb.No)
		item := fmt.Sprintf("law basis %d", fb.No)
		switch {
		case !b.OfLaw():
			v.errorf("law_bases[%d]: basis %d is not one of the Law's (%d..%d)", i, fb.No, siobroker.FirstLawBasis, siobroker.LastLawBasis)
			continue
		case out[b].No != 0:
			v.errorf("%s: listed twice", item)
			continue
		}
		if fb.Name == "" {
			v.errorf("%s: no name", item)
		}
		if fb.LegalReference == "" {
			v.errorf("%s: no legal_reference (the Law's provision that defines it: %s)", item, b.LegalReference())
		}
		if fb.Roles == nil || fb.Services == nil {
			v.errorf("%s: roles and services are required (write \"roles: []\" and \"services: {}\" until the operator configures them from the Law)", item)
		}
		lb := LawBasis{No: b, Name: fb.Name, LegalReference: fb.LegalReference, Roles: []int{}, Services: map[int]siobroker.Access{}}
		for _, r := range fb.Roles {
			switch {
			case r < 1 || r > NumRoles:
				v.errorf("%s: role %d is not in 1..%d", item, r, NumRoles)
			case slices.Contains(lb.Roles, r):
				v.errorf("%s: role %d listed twice", item, r)
			default:
				lb.Roles = append(lb.Roles, r)
			}
		}
		slices.Sort(lb.Roles)
		for _, no := range sortedKeys(fb.Services) {
			a := siobroker.Access(fb.Services[no])
			switch {
			case no < 1 || no > NumServices:
				v.errorf("%s: service %d is not in 1..%d", item, no, NumServices)
			case a != siobroker.AccessFull && a != siobroker.AccessTruncated:
				v.errorf("%s: service %d: access %q is not %q or %q", item, no, a, siobroker.AccessFull, siobroker.AccessTruncated)
			case a == siobroker.AccessTruncated && len(truncation[no]) == 0:
				v.errorf("%s: service %d is truncated but has no truncation fields", item, no)
			default:
				lb.Services[no] = a
			}
		}
		out[b] = lb
	}
	for b := siobroker.FirstLawBasis; b <= siobroker.LastLawBasis; b++ {
		if _, ok := out[b]; !ok {
			v.errorf("law basis %d: missing (§1 refers to the Law's bases %d..%d: list each, with empty roles and services until configured)", b, siobroker.FirstLawBasis, siobroker.LastLawBasis)
		}
	}
	return out
}

// lawLabel names a basis of the Law with its provision.
func lawLabel(b siobroker.Basis) string {
	return fmt.Sprintf("%s, %s", basisLabel(b), b.LegalReference())
}

// notConfigured is the refusal under a basis of the Law the operator has not opened.
func notConfigured(b siobroker.Basis, what string) string {
	return fmt.Sprintf("%s is a basis of the Law that §1 of the Rules refers to; the Rules give it no rights, and the operator has not configured them from the Law (rights.yaml, law_bases), so %s.",
		lawLabel(b), what)
}

// decideLaw decides a service under a basis of the Law, by the operator's configuration.
func (t *Table) decideLaw(subject string, b siobroker.Basis, service int) siobroker.Decision {
	lb := t.law[b]
	if !lb.Configured() {
		return siobroker.Decision{Reason: siobroker.ReasonDeniedBasis,
			Explanation: notConfigured(b, fmt.Sprintf("%s may not ask for service %d under it", subject, service))}
	}
	s, ok := t.Service(service)
	if !ok {
		return siobroker.Decision{Reason: siobroker.ReasonDeniedBasis,
			Explanation: fmt.Sprintf("Service %d is not in Appendix 2, so %s under %s may not ask for it.", service, subject, lawLabel(b))}
	}
	svc := fmt.Sprintf("service %d (%s)", s.No, s.Name)
	switch a := lb.Services[service]; a {
	case siobroker.AccessFull:
		return siobroker.Decision{Allowed: true, Access: a, Reason: siobroker.ReasonOK,
			Explanation: fmt.Sprintf("The operator's configuration of %s gives %s full access to %s.", lawLabel(b), subject, svc)}
	case siobroker.AccessTruncated:
		return siobroker.Decision{Allowed: true, Access: a, Reason: siobroker.ReasonOK,
			Explanation: fmt.Sprintf("The operator's configuration of %s gives %s truncated access to %s: the reply carries no %s.", lawLabel(b), subject, svc, fieldList(t.truncated[service]))}
	}
	return siobroker.Decision{Reason: siobroker.ReasonDeniedBasis,
		Explanation: fmt.Sprintf("The operator's configuration of %s (rights.yaml, law_bases) does not make %s available, so %s may not ask for it.", lawLabel(b), svc, subject)}
}

// diffLaw describes the changes of the Law's bases for the reload log.
func (t *Table) diffLaw(old *Table) []string {
	var out []string
	for b := siobroker.FirstLawBasis; b <= siobroker.LastLawBasis; b++ {
		a, n := old.law[b], t.law[b]
		if !slices.Equal(a.Roles, n.Roles) {
			out = append(out, fmt.Sprintf("law basis %d: roles %v → %v", b, a.Roles, n.Roles))
		}
		if !maps.Equal(a.Services, n.Services) {
			out = append(out, fmt.Sprintf("law basis %d: services %v → %v", b, a.Services, n.Services))
		}
	}
	return out
}

// explainLaw is Explain under a basis of the Law: the operator's configuration stands for both
// appendices.
func (t *Table) explainLaw(roleLabel string, role int, b siobroker.Basis, service int) (siobroker.Decision, string) {
	lb := t.law[b]
	trace := []string{fmt.Sprintf("§1: %s; its rights: rights.yaml, law_bases", lawLabel(b))}
	var d siobroker.Decision
	switch {
	case !lb.Configured():
		d = t.decideLaw(roleLabel, b, service)
		trace = append(trace, "law_bases: not configured: no role, no service")
	case !slices.Contains(lb.Roles, role):
		d = siobroker.Decision{Reason: siobroker.ReasonDeniedBasis, Explanation: fmt.Sprintf(
			"The operator's configuration of %s (rights.yaml, law_bases) does not let %s make requests under it, so service %d is refused.", lawLabel(b), roleLabel, service)}
		trace = append(trace, fmt.Sprintf("law_bases: roles %v; %s is not among them", lb.Roles, roleLabel))
	default:
		d = t.decideLaw(roleLabel, b, service)
		trace = append(trace, fmt.Sprintf("law_bases: %s may use it; service %d: %s", roleLabel, service, accessText(lb.Services[service])))
	}
	return d, traceText(append(trace, "Result: "+verdict(d)))
}
