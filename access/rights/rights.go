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
	"time"

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
	edition     string
	editionDate time.Time
	roles       []Role    // index no-1
	services    []Service // index no-1
	truncated   map[int][]string
	articles    map[string]bool
	law         map[siobroker.Basis]LawBasis // the Law's bases of §1, as the operator configured them
}

// Edition is the wording of Appendix 1 the table's role numbers refer to (the file's edition):
// the year of the amending order, e.g. "2026".
func (t *Table) Edition() string { return t.edition }

// EditionDate is the date of the order of the table's edition.
func (t *Table) EditionDate() time.Time { return t.editionDate }

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
	if b.OfLaw() {
		return slices.Contains(t.law[b].Roles, role)
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

// DecideService decides whether service may be asked under basis b, with q the case's
// qualification (needed only for the footnote-2 services, see footnote2). It does not look at
// the role; Explain does both.
func (t *Table) DecideService(b siobroker.Basis, service int, q siobroker.Qualification) siobroker.Decision {
	return t.decide("", b, service, q)
}

// Explain checks role against Appendix 1 first and then the service against Appendix 2. It returns
// the decision and a multi-line trace of the rules applied, for people and for the journal.
func (t *Table) Explain(role int, b siobroker.Basis, service int, q siobroker.Qualification) (siobroker.Decision, string) {
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
	if b.OfLaw() {
		return t.explainLaw(roleLabel, role, b, service)
	}
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
	d := t.decide(roleLabel, b, service, q)
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
			trace = append(trace, fmt.Sprintf("Footnote 2: the case's articles (from its registry): %s; of Chapter 8: %s",
				articleList(q.Articles), articleList(t.economic(q.Articles))))
			if hint := trimSpace(q.Hint); hint != "" {
				trace = append(trace, fmt.Sprintf("Footnote 2: the request names article %q: among the case's: %t; of Chapter 8: %t",
					hint, slices.Contains(q.Articles, hint), t.articles[hint]))
			}
		}
	} else {
		trace = append(trace, fmt.Sprintf("Appendix 2: service %d does not exist", service))
	}
	return d, traceText(append(trace, "Result: "+verdict(d)))
}

// decide applies Appendix 2 and its footnotes. who names the role for the explanation, or is
// empty when the caller did not check one.
func (t *Table) decide(who string, b siobroker.Basis, service int, q siobroker.Qualification) siobroker.Decision {
	subject := "a request"
	if who != "" {
		subject = who
	}
	if b.OfLaw() {
		return t.decideLaw(subject, b, service)
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
		return t.footnote2(subject, svc, b, q)
	}
	return siobroker.Decision{Reason: siobroker.ReasonDeniedBasis,
		Explanation: fmt.Sprintf("Appendix 2 does not make %s available under %s, so %s may not ask for it.", svc, basisLabel(b), subject)}
}

// footnote2 decides a footnote-2 service (access economic-articles-only): the КГД services are
// available "по статьям главы 8 Уголовного кодекса", which is the case's qualification, a fact
// its registry holds (§5), not something the user declares. So the service is allowed when the
// case's articles hold one of the Chapter 8 list. An article the request names is a hint of the
// article the request is made for: it must be among the case's articles, and of Chapter 8
// itself; else the request is refused, even if another of the case's articles is of Chapter 8.
// No articles from the registry (none said, or a case that is not checked) is a refusal.
func (t *Table) footnote2(subject, svc string, b siobroker.Basis, q siobroker.Qualification) siobroker.Decision {
	a := siobroker.AccessEconomicArticles
	deny := func(why string) siobroker.Decision {
		return siobroker.Decision{Access: a, Reason: siobroker.ReasonDeniedArticle, Explanation: fmt.Sprintf(
			"By footnote 2 of Appendix 2, %s under %s is available only for an article of Chapter 8 of the Criminal Code in the case's qualification, and %s.",
			svc, basisLabel(b), why)}
	}
	hint := trimSpace(q.Hint)
	economic := t.economic(q.Articles)
	switch {
	case len(q.Articles) == 0 && hint != "":
		return deny(fmt.Sprintf("the case's registry gave no articles, so article %q named by the request cannot be confirmed", hint))
	case len(q.Articles) == 0:
		return deny("the case's registry gave no articles")
	case hint != "" && !slices.Contains(q.Articles, hint):
		return deny(fmt.Sprintf("article %q named by the request is not among the case's articles (%s)", hint, articleList(q.Articles)))
	case hint != "" && !t.articles[hint]:
		return deny(fmt.Sprintf("the request is made for the case's article %s, which is not of Chapter 8", hint))
	case hint != "":
		return siobroker.Decision{Allowed: true, Access: a, Reason: siobroker.ReasonOK, Explanation: fmt.Sprintf(
			"By footnote 2 of Appendix 2, %s under %s is available to %s because the case's article %s, for which the request is made, is of Chapter 8 of the Criminal Code.",
			svc, basisLabel(b), subject, hint)}
	case len(economic) == 0:
		return deny(fmt.Sprintf("none of the case's articles (%s) is of Chapter 8", articleList(q.Articles)))
	}
	return siobroker.Decision{Allowed: true, Access: a, Reason: siobroker.ReasonOK, Explanation: fmt.Sprintf(
		"By footnote 2 of Appendix 2, %s under %s is available to %s because the case's qualification holds article %s of Chapter 8 of the Criminal Code.",
		svc, basisLabel(b), subject, articleList(economic))}
}

// economic returns the articles of Chapter 8 among articles, in their order.
func (t *Table) economic(articles []string) []string {
	var out []string
	for _, a := range articles {
		if t.articles[a] {
			out = append(out, a)
		}
	}
	return out
}

// articleList names articles for people: "190, 216", or "none".
func articleList(articles []string) string {
	if len(articles) == 0 {
		return "none"
	}
	return strings.Join(articles, ", ")
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
