package demo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// Case is a case in someone's proceedings, as the demo case registry holds it: its reference,
// that person's part in its proceedings, its status ("" is "open") and its articles.
type Case struct {
	Basis    siobroker.Basis
	Ref      siobroker.CaseRef
	Part     string
	Status   string
	Articles []string
}

// CaseRegistry is a demo case registry (§5 of the Rules): it knows the demo cases of the
// development users and answers case checks from them, with every user who has a case among its
// participants. It is immutable after NewCaseRegistry and safe for concurrent use.
type CaseRegistry struct {
	name  string
	cases map[caseKey]*siobroker.CaseFacts
	clock siobroker.Clock
}

var _ adapters.CaseRegistry = (*CaseRegistry)(nil)

// caseKey is a case with its fields normalised: runs of white space folded to one space, ends
// trimmed, letters lower-cased. Every field takes part, so a case matches only a request in the
// same form with the same fields (a valid request carries only its form's fields).
type caseKey struct {
	basis                                                                siobroker.Basis
	number, instructionNo, requestingBody, coveringLetterNo, year, court string
}

func keyOf(b siobroker.Basis, c siobroker.CaseRef) caseKey {
	return caseKey{b, norm(c.Number), norm(c.InstructionNo), norm(c.RequestingBody),
		norm(c.CoveringLetterNo), norm(c.Year), norm(c.Court)}
}

func norm(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// NewCaseRegistry returns a registry called name that holds cases, keyed by the IIN of the user
// in whose proceedings they are; the users of one case are its participants, and its status and
// articles are those of the first that gives them. The map is copied. CasesOf builds it from the
// development PKI's users.
func NewCaseRegistry(name string, cases map[string][]Case) *CaseRegistry {
	r := &CaseRegistry{name: name, cases: make(map[caseKey]*siobroker.CaseFacts), clock: siobroker.SystemClock{}}
	for _, iin := range slices.Sorted(maps.Keys(cases)) {
		for _, c := range cases[iin] {
			k := keyOf(c.Basis, c.Ref)
			f := r.cases[k]
			if f == nil {
				f = &siobroker.CaseFacts{}
				r.cases[k] = f
			}
			f.Participants = append(f.Participants, siobroker.Participant{IIN: iin, Part: c.Part})
			if f.Status == "" {
				f.Status = c.Status
			}
			if len(f.Articles) == 0 {
				f.Articles = slices.Clone(c.Articles)
			}
		}
	}
	for _, f := range r.cases {
		if f.Status == "" {
			f.Status = "open"
		}
	}
	return r
}

// CasesOf collects the demo cases of the development users (devpki.Manifest.Users) by IIN. A
// case of an older manifest, which names no part, has the part devpki.DefaultPart gives the
// user's role.
func CasesOf(users []devpki.User) map[string][]Case {
	out := make(map[string][]Case, len(users))
	for _, u := range users {
		for _, c := range u.Cases {
			part := c.Part
			if part == "" {
				part = devpki.DefaultPart(u.Role, c.Basis)
			}
			out[u.IIN] = append(out[u.IIN], Case{Basis: c.Basis, Ref: c.Ref(), Part: part, Status: c.Status, Articles: c.Articles})
		}
	}
	return out
}

// Name is the registry's name, as configured in cases.registries and carried in its answers.
func (r *CaseRegistry) Name() string { return r.name }

// Check answers whether the case of req exists, and of a case that does its status, its
// participants and its articles (adapters.CaseAnswer). An unknown case is Found false, not an
// error. It returns ctx's error if ctx has ended, or a context.DeadlineExceeded if req's deadline
// has passed.
func (r *CaseRegistry) Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return schemas.CaseCheckResponse{}, err
	}
	var facts siobroker.CaseFacts
	f, found := r.cases[keyOf(req.Basis, req.Case)]
	if found {
		facts = *f
	}
	resp, err := adapters.CaseAnswer(req, found, facts)
	if err != nil {
		return schemas.CaseCheckResponse{}, fmt.Errorf("demo registry %s: %w", r.name, err)
	}
	resp.Registry, resp.AnsweredAt = r.name, r.clock.Now()
	return resp, nil
}
