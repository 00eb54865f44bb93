package cases

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sio-pso/siobroker"
)

// PartRule says which parts in a case's proceedings put the case "in the proceedings" (§5) of a
// user of one of Roles, under one of Bases (all bases when Bases is empty). A case registry lists
// everyone in a case with their part (investigator, supervising prosecutor, judge...); a judge,
// a supervising prosecutor and an investigator are each "in" a case in their own way, so the
// broker, not the registry, decides which part counts for whom.
type PartRule struct {
	Roles []int    `mapstructure:"roles"` // rows of Appendix 1
	Bases []int    `mapstructure:"bases"` // 1..6; empty: every basis the role may use
	Parts []string `mapstructure:"parts"` // as the registries write them, compared lower-cased
}

// The statuses and parts are compared as registries' answers are normalised
// (adapters.CaseAnswer): trimmed, runs of blanks folded, lower-cased.
func normWord(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// numRoles is the number of rows of Appendix 1 in the wording in force (Order No. 34 of
// 23.02.2026); access/rights holds the table, which this package does not depend on.
const numRoles = 19

var partName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} _.-]{0,63}$`)

// DefaultParts are the default cases.parts. The Rules name who is in a case's proceedings only in
// part; each rule says where it comes from, and configs/broker.yaml and the README repeat them:
//
//   - §21: under a criminal case the user, "в том числе члены следственно-оперативных групп",
//     sends the request: the investigator (roles 3–5) or the inquirer (roles 6–9) conducting it,
//     and the members of its investigative group (every role of basis 1).
//   - §22: "исполнение следственных поручений и поручений прокурора" and of international
//     legal-assistance instructions: their executor, under the criminal case (every role of
//     basis 1).
//   - §24–25: the courts ask "в рамках рассматриваемых ... дел": the judge (role 2).
//   - §26: the search case: the officer who conducts it (the roles of basis 6).
//   - §27: enforcement proceedings: the bailiff in charge (role 15, судебный исполнитель).
//   - The prosecutor (role 1, every basis): the Rules do not say how; assumed to be the
//     prosecutor supervising the pre-trial investigation or the search, or the prosecutor taking
//     part in a court case or supervising the enforcement proceedings.
func DefaultParts() []PartRule {
	return []PartRule{
		{Roles: []int{1}, Parts: []string{"supervising_prosecutor", "prosecutor"}},
		{Roles: []int{2}, Parts: []string{"judge"}},
		{Roles: []int{3, 4, 5}, Bases: []int{1}, Parts: []string{"investigator", "group_member", "instruction_executor"}},
		{Roles: []int{6, 7, 8, 9}, Bases: []int{1}, Parts: []string{"inquirer", "group_member", "instruction_executor"}},
		{Roles: []int{10, 11, 12, 13, 14, 16, 18}, Bases: []int{1}, Parts: []string{"group_member", "instruction_executor"}},
		{Roles: []int{10, 11, 14, 16, 18, 19}, Bases: []int{6}, Parts: []string{"search_officer"}},
		{Roles: []int{15}, Bases: []int{5}, Parts: []string{"bailiff"}},
	}
}

// DefaultOpenStatuses are the default cases.open_statuses: §5 asks for the materials to be "в
// производстве" of the user, which a terminated case no longer is; a suspended one still is (a
// criminal case is suspended while its suspect is searched for, and stays with its investigator).
func DefaultOpenStatuses() []string { return []string{"open", "suspended"} }

// partProblems checks cases.parts and cases.open_statuses.
func (c Config) partProblems() []error {
	var errs []error
	if len(c.Parts) == 0 {
		errs = append(errs, errors.New("cases.parts: empty, so no case is ever in anyone's proceedings; list the parts each role must have (§5)"))
	}
	for i, r := range c.Parts {
		key := fmt.Sprintf("cases.parts[%d]", i)
		if len(r.Roles) == 0 {
			errs = append(errs, fmt.Errorf("%s.roles: name at least one role of Appendix 1", key))
		}
		for _, role := range r.Roles {
			if role < 1 || role > numRoles {
				errs = append(errs, fmt.Errorf("%s.roles: %d is not a role of Appendix 1 (1..%d)", key, role, numRoles))
			}
		}
		for _, b := range r.Bases {
			switch {
			case b < 1 || b > 6:
				errs = append(errs, fmt.Errorf("%s.bases: %d is not a basis (1..6)", key, b))
			case siobroker.Basis(b) == siobroker.BasisAdminOffence:
				errs = append(errs, fmt.Errorf("%s.bases: basis 3 is never checked (§5, §23); remove it", key))
			}
		}
		if len(r.Parts) == 0 {
			errs = append(errs, fmt.Errorf("%s.parts: name at least one part", key))
		}
		for _, p := range r.Parts {
			if !partName.MatchString(p) {
				errs = append(errs, fmt.Errorf("%s.parts: %q is not a part's name (letters, digits, ' ', '_', '.', '-', up to 64)", key, p))
			}
		}
	}
	if len(c.OpenStatuses) == 0 {
		errs = append(errs, errors.New("cases.open_statuses: empty, so every case would be refused; list the statuses of a case in proceedings (§5), e.g. [open, suspended]"))
	}
	for _, s := range c.OpenStatuses {
		if strings.TrimSpace(s) == "" {
			errs = append(errs, errors.New("cases.open_statuses: an empty status"))
		}
	}
	return errs
}

// Verdict is the outcome of a case check (§5) for one user: whether the case is in their
// proceedings, and if not why.
type Verdict string

// The verdicts of Proceedings. The first two say nothing the user may learn of the case (§44):
// the broker refuses them alike.
const (
	InProceedings  Verdict = ""                // the case is in the user's proceedings
	NotFound       Verdict = "not-found"       // the registry has no such case
	NotParticipant Verdict = "not-participant" // the user is not among the case's participants
	PartNotAllowed Verdict = "part"            // the user is, but in no part that counts for their role (cases.parts)
	StatusNotOpen  Verdict = "status"          // the user is, in a part that counts, but the case is not open (cases.open_statuses)
	NoParticipants Verdict = "no-participants" // the registry found the case but named nobody: an answer the broker cannot decide on
)

// Proceedings decides from a registry's answer whether the case is in the proceedings of the
// signer, a user of role, under basis b (§5): found, the signer among its participants in a part
// cases.parts gives the role under b, and in a status of cases.open_statuses. It returns the
// verdict and the signer's parts in the case (for the log).
func (r *Rules) Proceedings(role int, b siobroker.Basis, signerIIN string, found bool, f siobroker.CaseFacts) (Verdict, []string) {
	switch {
	case !found:
		return NotFound, nil
	case len(f.Participants) == 0:
		return NoParticipants, nil
	}
	parts := f.PartsOf(signerIIN)
	if len(parts) == 0 {
		return NotParticipant, nil
	}
	allowed := r.AllowedParts(role, b)
	if !slices.ContainsFunc(parts, func(p string) bool { return slices.Contains(allowed, normWord(p)) }) {
		return PartNotAllowed, parts
	}
	if !slices.Contains(r.openStatuses, normWord(f.Status)) {
		return StatusNotOpen, parts
	}
	return InProceedings, parts
}

// AllowedParts returns the parts that put a case under b in the proceedings of a user of role,
// lower-cased, in the order cases.parts lists them.
func (r *Rules) AllowedParts(role int, b siobroker.Basis) []string {
	var out []string
	for _, rule := range r.parts {
		if !slices.Contains(rule.Roles, role) || (len(rule.Bases) > 0 && !slices.Contains(rule.Bases, int(b))) {
			continue
		}
		for _, p := range rule.Parts {
			if p = normWord(p); !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// OpenStatuses returns cases.open_statuses, lower-cased.
func (r *Rules) OpenStatuses() []string { return slices.Clone(r.openStatuses) }

// CheckProceedings is Proceedings as the broker's refusal of the request (§5): nil when the case
// is in the proceedings of the signer, else a *siobroker.Error with CodeCaseUnknown. Its message
// tells the user no more than they may learn (§44): a case that is not in the registry and one
// they are not in are refused alike, so that no one learns which cases exist; a user who is in
// the case is told that their part does not count for their role, or that the case is not open.
// registry names the registry in the message, c the case.
func (r *Rules) CheckProceedings(role int, b siobroker.Basis, signerIIN string, c siobroker.CaseRef, registry string,
	found bool, f siobroker.CaseFacts) error {
	verdict, parts := r.Proceedings(role, b, signerIIN, found, f)
	switch verdict {
	case InProceedings:
		return nil
	case PartNotAllowed:
		return siobroker.Errorf(siobroker.CodeCaseUnknown,
			"case %q is in the %s registry with user %s as %s, which does not put it in the proceedings of role %d under basis %d (§5; cases.parts: %s)",
			c.Number, registry, signerIIN, strings.Join(parts, ", "), role, int(b), orNone(r.AllowedParts(role, b)))
	case StatusNotOpen:
		return siobroker.Errorf(siobroker.CodeCaseUnknown,
			"case %q is %q in the %s registry: requests are made only under a case in proceedings (§5; cases.open_statuses: %s)",
			c.Number, normWord(f.Status), registry, strings.Join(r.openStatuses, ", "))
	}
	return siobroker.Errorf(siobroker.CodeCaseUnknown,
		"case %q is not among the proceedings of user %s in the %s registry", c.Number, signerIIN, registry)
}

func orNone(parts []string) string {
	if len(parts) == 0 {
		return "none for this role and basis"
	}
	return strings.Join(parts, ", ")
}
