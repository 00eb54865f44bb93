// Package rights holds the access-rights tables of the СИО ПСО Rules (Order of the Prosecutor
// General No. 21 of 13.01.2023) and the decisions taken from them:
//
//   - Appendix 1 (as amended by Order No. 34 of 23.02.2026): which of the 19 roles may make
//     requests under which of the six bases;
//   - Appendix 2 (as amended by Order No. 88 of 04.07.2024): under which bases each of the 93
//     services is available, in full, truncated (footnote 1) or only for the economic articles of
//     Chapter 8 of the Criminal Code (footnote 2).
//
// The tables are data, not code, so that integration engineers can review them against the Rules:
// they live in configs/rights.yaml and are read by Load. Apart from Load the package does no I/O;
// a loaded Table is immutable and safe for concurrent use.
package rights

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sio-pso/siobroker"
)

// The sizes of the appendices in the wording in force.
const (
	NumRoles    = 19
	NumServices = siobroker.LastService
)

// Role is one row of Appendix 1.
type Role struct {
	No    int
	Name  string            // in Russian, as in the Rules
	Bases []siobroker.Basis // ascending
}

// Service is one row of Appendix 2.
type Service struct {
	No     int
	Name   string                               // in Russian, as in the Rules
	Access map[siobroker.Basis]siobroker.Access // only the bases under which the service is available
}

// Table is the loaded and validated pair of appendices, with the truncation field lists and the
// list of economic articles.
type Table struct {
	roles     []Role    // index no-1
	services  []Service // index no-1
	truncated map[int][]string
	articles  map[string]bool
}

// Role returns role no of Appendix 1.
func (t *Table) Role(no int) (Role, bool) {
	if no < 1 || no > len(t.roles) {
		return Role{}, false
	}
	return cloneRole(t.roles[no-1]), true
}

// Roles returns all roles in order.
func (t *Table) Roles() []Role {
	out := make([]Role, len(t.roles))
	for i, r := range t.roles {
		out[i] = cloneRole(r)
	}
	return out
}

// Service returns service no of Appendix 2.
func (t *Table) Service(no int) (Service, bool) {
	if no < 1 || no > len(t.services) {
		return Service{}, false
	}
	return cloneService(t.services[no-1]), true
}

// Services returns all services in order.
func (t *Table) Services() []Service {
	out := make([]Service, len(t.services))
	for i, s := range t.services {
		out[i] = cloneService(s)
	}
	return out
}

// RoleMayUse reports whether Appendix 1 lets role make requests under basis b.
func (t *Table) RoleMayUse(role int, b siobroker.Basis) bool {
	if role < 1 || role > len(t.roles) {
		return false
	}
	return slices.Contains(t.roles[role-1].Bases, b)
}

// TruncatedFields returns the names of the result fields that must be removed from the reply of
// a truncated service, or nil when the service has none.
func (t *Table) TruncatedFields(service int) []string {
	return slices.Clone(t.truncated[service])
}

// EconomicArticles returns the configured articles for which the footnote-2 services are
// available, sorted.
func (t *Table) EconomicArticles() []string {
	out := make([]string, 0, len(t.articles))
	for a := range t.articles {
		out = append(out, a)
	}
	slices.SortFunc(out, compareArticles)
	return out
}

// IsEconomicArticle reports whether article is on the configured Chapter 8 list. Surrounding
// whitespace is ignored; nothing else is normalised, so "ст. 216" does not match.
func (t *Table) IsEconomicArticle(article string) bool {
	return t.articles[trimSpace(article)]
}

// DecideService decides whether service may be asked under basis b, with article the Criminal Code
// article of the case (needed only for the footnote-2 services). It does not look at the role;
// Explain does both.
func (t *Table) DecideService(b siobroker.Basis, service int, article string) siobroker.Decision {
	return t.decide("", b, service, article)
}

// Explain checks role against Appendix 1 first and then the service against Appendix 2. It returns
// the decision and a multi-line trace of the rules applied, for people and for the journal.
func (t *Table) Explain(role int, b siobroker.Basis, service int, article string) (siobroker.Decision, string) {
	var trace []string
	r, ok := t.Role(role)
	if !ok {
		d := siobroker.Decision{
			Reason:      siobroker.ReasonDeniedBasis,
			Explanation: fmt.Sprintf("Role %d is not in Appendix 1, so it may not use %s for service %d.", role, basisLabel(b), service),
		}
		return d, traceText(append(trace, "Appendix 1: role "+fmt.Sprint(role)+" does not exist", "Result: "+verdict(d)))
	}
	roleLabel := fmt.Sprintf("role %d (%s)", r.No, r.Name)
	if !b.Valid() {
		d := siobroker.Decision{
			Reason:      siobroker.ReasonDeniedBasis,
			Explanation: fmt.Sprintf("Basis %d is not one of the six bases of the Rules, so %s may not ask for service %d under it.", int(b), roleLabel, service),
		}
		return d, traceText(append(trace, fmt.Sprintf("Basis: %d is not in 1..6", int(b)), "Result: "+verdict(d)))
	}
	if !t.RoleMayUse(role, b) {
		d := siobroker.Decision{
			Reason:      siobroker.ReasonDeniedBasis,
			Explanation: fmt.Sprintf("Appendix 1 does not let %s make requests under %s, so service %d is refused.", roleLabel, basisLabel(b), service),
		}
		return d, traceText(append(trace,
			fmt.Sprintf("Appendix 1: %s may use bases %v; %s is not among them", roleLabel, r.Bases, basisLabel(b)),
			"Result: "+verdict(d)))
	}
	trace = append(trace, fmt.Sprintf("Appendix 1: %s may use %s", roleLabel, basisLabel(b)))
	d := t.decide(roleLabel, b, service, article)
	if s, ok := t.Service(service); ok {
		cell := string(s.Access[b])
		if cell == "" {
			cell = "not available"
		}
		trace = append(trace, fmt.Sprintf("Appendix 2: service %d (%s) under %s: %s", s.No, s.Name, basisLabel(b), cell))
		switch s.Access[b] {
		case siobroker.AccessTruncated:
			trace = append(trace, "Footnote 1: removed from the reply: "+fieldList(t.truncated[service]))
		case siobroker.AccessEconomicArticles:
			if art := trimSpace(article); art == "" {
				trace = append(trace, "Footnote 2: no article given")
			} else {
				trace = append(trace, fmt.Sprintf("Footnote 2: article %q is on the Chapter 8 list: %t", art, t.articles[art]))
			}
		}
	} else {
		trace = append(trace, fmt.Sprintf("Appendix 2: service %d does not exist", service))
	}
	return d, traceText(append(trace, "Result: "+verdict(d)))
}

// decide applies Appendix 2 and its footnotes. who names the role for the explanation, or is
// empty when the caller did not check one.
func (t *Table) decide(who string, b siobroker.Basis, service int, article string) siobroker.Decision {
	subject := "a request"
	if who != "" {
		subject = who
	}
	if !b.Valid() {
		return siobroker.Decision{
			Reason:      siobroker.ReasonDeniedBasis,
			Explanation: fmt.Sprintf("Basis %d is not one of the six bases of the Rules, so %s may not ask for service %d under it.", int(b), subject, service),
		}
	}
	s, ok := t.Service(service)
	if !ok {
		return siobroker.Decision{
			Reason:      siobroker.ReasonDeniedBasis,
			Explanation: fmt.Sprintf("Service %d is not in Appendix 2, so %s under %s may not ask for it.", service, subject, basisLabel(b)),
		}
	}
	svc := fmt.Sprintf("service %d (%s)", s.No, s.Name)
	a := s.Access[b]
	switch a {
	case siobroker.AccessFull:
		return siobroker.Decision{Allowed: true, Access: a, Reason: siobroker.ReasonOK,
			Explanation: fmt.Sprintf("Appendix 2 gives %s full access to %s under %s.", subject, svc, basisLabel(b))}
	case siobroker.AccessTruncated:
		return siobroker.Decision{Allowed: true, Access: a, Reason: siobroker.ReasonOK,
			Explanation: fmt.Sprintf("Appendix 2 gives %s truncated access to %s under %s: by footnote 1 the reply carries no %s.", subject, svc, basisLabel(b), fieldList(t.truncated[service]))}
	case siobroker.AccessEconomicArticles:
		art := trimSpace(article)
		switch {
		case art == "":
			return siobroker.Decision{Access: a, Reason: siobroker.ReasonDeniedArticle,
				Explanation: fmt.Sprintf("By footnote 2 of Appendix 2, %s under %s is available only for an article of Chapter 8 of the Criminal Code, and %s gave no article.", svc, basisLabel(b), subject)}
		case !t.articles[art]:
			return siobroker.Decision{Access: a, Reason: siobroker.ReasonDeniedArticle,
				Explanation: fmt.Sprintf("By footnote 2 of Appendix 2, %s under %s is available only for an article of Chapter 8 of the Criminal Code, and article %q given by %s is not on that list.", svc, basisLabel(b), art, subject)}
		}
		return siobroker.Decision{Allowed: true, Access: a, Reason: siobroker.ReasonOK,
			Explanation: fmt.Sprintf("By footnote 2 of Appendix 2, %s under %s is available to %s because article %s is in Chapter 8 of the Criminal Code.", svc, basisLabel(b), subject, art)}
	}
	return siobroker.Decision{Reason: siobroker.ReasonDeniedBasis,
		Explanation: fmt.Sprintf("Appendix 2 does not make %s available under %s, so %s may not ask for it.", svc, basisLabel(b), subject)}
}

// BasisName returns the English name of basis b, or "" for an invalid basis.
func BasisName(b siobroker.Basis) string { return b.Name() }

func basisLabel(b siobroker.Basis) string {
	if n := b.Name(); n != "" {
		return fmt.Sprintf("basis %d (%s)", int(b), n)
	}
	return fmt.Sprintf("basis %d", int(b))
}

func verdict(d siobroker.Decision) string {
	if d.Allowed {
		return fmt.Sprintf("allowed (%s, %s)", d.Access, d.Reason)
	}
	return "denied (" + d.Reason + ")"
}

// fieldList names result fields for people: "amount", or "amount, date".
func fieldList(fields []string) string { return strings.Join(fields, ", ") }

func traceText(lines []string) string { return strings.Join(lines, "\n") + "\n" }

// trimSpace forgives the layout whitespace around an article taken from a request field, and
// nothing else.
func trimSpace(s string) string { return strings.TrimSpace(s) }

func cloneRole(r Role) Role {
	r.Bases = slices.Clone(r.Bases)
	return r
}

func cloneService(s Service) Service {
	s.Access = maps.Clone(s.Access)
	return s
}
