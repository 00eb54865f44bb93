package demo

import (
	"context"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// Case is a case in someone's proceedings, as the demo case registry holds it.
type Case struct {
	Basis siobroker.Basis
	Ref   siobroker.CaseRef
}

// CaseRegistry is a demo case registry (§5 of the Rules): it knows the demo cases of the
// development users and answers case checks from them. It is immutable after NewCaseRegistry and
// safe for concurrent use.
type CaseRegistry struct {
	name   string
	owners map[caseKey]map[string]bool // case → IINs of the users who have it
	clock  siobroker.Clock
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
// in whose proceedings they are. The map is copied. CasesOf builds it from the development PKI's
// users.
func NewCaseRegistry(name string, cases map[string][]Case) *CaseRegistry {
	r := &CaseRegistry{name: name, owners: make(map[caseKey]map[string]bool), clock: siobroker.SystemClock{}}
	for iin, cs := range cases {
		for _, c := range cs {
			k := keyOf(c.Basis, c.Ref)
			if r.owners[k] == nil {
				r.owners[k] = make(map[string]bool)
			}
			r.owners[k][iin] = true
		}
	}
	return r
}

// CasesOf collects the demo cases of the development users (devpki.Manifest.Users) by IIN.
func CasesOf(users []devpki.User) map[string][]Case {
	out := make(map[string][]Case, len(users))
	for _, u := range users {
		for _, c := range u.Cases {
			out[u.IIN] = append(out[u.IIN], Case{Basis: c.Basis, Ref: c.Ref()})
		}
	}
	return out
}

// Name is the registry's name, as configured in cases.registries and carried in its answers.
func (r *CaseRegistry) Name() string { return r.name }

// Check answers whether the case of req exists (some user has it) and whether it is in the
// signer's proceedings. An unknown case is Found false, not an error. It returns ctx's error if
// ctx has ended, or a context.DeadlineExceeded if req's deadline has passed.
func (r *CaseRegistry) Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return schemas.CaseCheckResponse{}, err
	}
	owners := r.owners[keyOf(req.Basis, req.Case)]
	resp := schemas.CaseCheckResponse{
		RequestID:     req.RequestID,
		Found:         len(owners) > 0,
		InProceedings: owners[req.SignerIIN],
		Registry:      r.name,
		AnsweredAt:    r.clock.Now(),
	}
	switch {
	case resp.InProceedings:
		resp.Message = "the case is in the signer's proceedings"
	case resp.Found:
		resp.Message = "the case exists but is not in the signer's proceedings"
	default:
		resp.Message = "no such case"
	}
	return resp, nil
}
