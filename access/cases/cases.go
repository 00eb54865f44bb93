// Package cases checks the case reference of a request against §§20–27 of the Rules: which fields
// each basis (and each form of the criminal basis) needs, and the format of every field. The
// formats are configured (configs/broker.yaml, section cases); this package compiles and applies
// them, says which case registry verifies which basis (§5), and decides from a registry's answer
// whether the case is in the user's proceedings (Proceedings).
//
// The forms are:
//
//	basis 1  erdr              number (ЕРДР number)                                  §21
//	         instruction       number (ЕРДР number) + instructionNo                  §22
//	         legal-assistance  number (instruction's outgoing number) +
//	                           requestingBody + coveringLetterNo                     §22
//	bases 2, 4  court          number (court case number) + year + court             §24–25
//	basis 3  admin-offence     number (КПСиСУ number)                                §23
//	basis 5  enforcement       number (АИС ОИП through-number)                       §27
//	basis 6  search            number (КПСиСУ number)                                §26
//	basis 7  other-bodies      number (the document of the body's task)   §1, Law art. 16-1 p. 1
//	basis 8  covert            number (the operational-search case)       §1, Law art. 16-2 p. 3
//	basis 9  fin-monitoring    number (the financial-monitoring case)     §1, Law art. 16-2 p. 5
//
// A field that belongs to no form of the basis is refused, so that a sender who mixed up the
// forms learns it instead of having a field silently ignored.
//
// A Rules value is immutable and safe for concurrent use.
package cases

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
)

// The forms a case reference can take, as Form returns them.
const (
	FormERDR            = "erdr"
	FormInstruction     = "instruction"
	FormLegalAssistance = "legal-assistance"
	FormCourt           = "court"
	FormAdminOffence    = "admin-offence"
	FormEnforcement     = "enforcement"
	FormSearch          = "search"
	// The forms of the Law's bases of §1: the number of the document the request is made under.
	FormOtherBodies   = "other-bodies"
	FormCovert        = "covert"
	FormFinMonitoring = "fin-monitoring"
)

// The XML paths of the case fields, as an *siobroker.Error's Field names them.
const (
	FieldNumber           = "query/case/number"
	FieldInstructionNo    = "query/case/instructionNo"
	FieldRequestingBody   = "query/case/requestingBody"
	FieldCoveringLetterNo = "query/case/coveringLetterNo"
	FieldYear             = "query/case/year"
	FieldCourt            = "query/case/court"
	FieldBasis            = "query/basis"
)

// pattern is one compiled configuration pattern.
type pattern struct {
	key   string // cases.patterns.<key>
	src   string // as configured
	re    *regexp.Regexp
	words string
}

// Rules are the compiled case-reference rules.
type Rules struct {
	p            map[string]*pattern
	minYear      int
	registries   map[siobroker.Basis]string
	checkTimeout time.Duration
	clock        siobroker.Clock
	parts        []PartRule
	openStatuses []string // lower-cased
}

// NewRules validates and compiles cfg. An error names the configuration key at fault. clock
// bounds the accounting year of a court case ("not in the future"), in Astana time.
func NewRules(cfg Config, clock siobroker.Clock) (*Rules, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cases: %w", err)
	}
	if clock == nil {
		return nil, errors.New("cases: NewRules needs a clock")
	}
	r := &Rules{
		p:            make(map[string]*pattern),
		minYear:      cfg.MinYear,
		registries:   make(map[siobroker.Basis]string, len(cfg.Registries)),
		checkTimeout: cfg.CheckTimeout,
		clock:        clock,
	}
	for key, p := range cfg.Patterns.All() {
		// Config validation insists on visible anchors; wrapping makes "^a|b$" anchored too.
		re, err := regexp.Compile(`^(?:` + p.Regexp + `)$`)
		if err != nil {
			return nil, fmt.Errorf("cases: cases.patterns.%s.regexp: %w", key, err)
		}
		words := p.Words
		if words == "" {
			words = "a value matching " + p.Regexp
		}
		r.p[key] = &pattern{key: key, src: p.Regexp, re: re, words: words}
	}
	for b, name := range cfg.Registries {
		r.registries[siobroker.Basis(b)] = name
	}
	for _, rule := range cfg.Parts {
		r.parts = append(r.parts, PartRule{Roles: slices.Clone(rule.Roles), Bases: slices.Clone(rule.Bases), Parts: slices.Clone(rule.Parts)})
	}
	for _, s := range cfg.OpenStatuses {
		r.openStatuses = append(r.openStatuses, normWord(s))
	}
	return r, nil
}

// Exempt reports whether requests under b are exempt from verification in a case registry: basis 3,
// the administrative-offence case registered in КПСиСУ (§5 of the Rules, referring to §23).
func Exempt(b siobroker.Basis) bool { return b == siobroker.BasisAdminOffence }

// Registry returns the name of the case registry that verifies basis b (cases.registries). ok is
// false for an exempt basis and for a basis the configuration leaves out.
func (r *Rules) Registry(b siobroker.Basis) (name string, ok bool) {
	if Exempt(b) {
		return "", false
	}
	name, ok = r.registries[b]
	return name, ok
}

// CheckTimeout is how long the broker waits for a case registry's answer (cases.check_timeout).
func (r *Rules) CheckTimeout() time.Duration { return r.checkTimeout }

// Form names the form of the case reference c under basis b; see the package comment. Under
// basis 1 a requesting body or a covering letter makes it legal-assistance, otherwise an
// instruction number makes it instruction, otherwise it is erdr. It returns "" for an invalid
// basis. Form does not check the fields; Validate does.
func (r *Rules) Form(b siobroker.Basis, c siobroker.CaseRef) string { return form(b, c) }

func form(b siobroker.Basis, c siobroker.CaseRef) string {
	switch b {
	case siobroker.BasisCriminal:
		switch {
		case c.RequestingBody != "" || c.CoveringLetterNo != "":
			return FormLegalAssistance
		case c.InstructionNo != "":
			return FormInstruction
		default:
			return FormERDR
		}
	case siobroker.BasisCourtAdmin, siobroker.BasisCourtCivil:
		return FormCourt
	case siobroker.BasisAdminOffence:
		return FormAdminOffence
	case siobroker.BasisEnforcement:
		return FormEnforcement
	case siobroker.BasisSearch:
		return FormSearch
	case siobroker.BasisOtherBodies:
		return FormOtherBodies
	case siobroker.BasisCovert:
		return FormCovert
	case siobroker.BasisFinMonitoring:
		return FormFinMonitoring
	}
	return ""
}

// field is one field of a form: where it sits, what it means, and the pattern it must match.
type field struct {
	path, what, key string
}

// fieldsOf lists the fields each form needs, in wire order. A form's fields are all required.
var fieldsOf = map[string][]field{
	FormERDR: {{FieldNumber, "the ЕРДР number of the criminal case (§21)", "erdr"}},
	FormInstruction: {
		{FieldNumber, "the ЕРДР number of the criminal case (§22)", "erdr"},
		{FieldInstructionNo, "the outgoing number of the instruction (§22)", "instruction_no"},
	},
	FormLegalAssistance: {
		{FieldNumber, "the outgoing number of the legal-assistance instruction (§22)", "legal_assistance_no"},
		{FieldRequestingBody, "the body that sent the instruction (§22)", "requesting_body"},
		{FieldCoveringLetterNo, "the outgoing number of the covering letter of the RK authority (§22)", "covering_letter_no"},
	},
	FormCourt: {
		{FieldNumber, "the court case number (§25)", "court_case"},
		{FieldYear, "the accounting year (§25)", "year"},
		{FieldCourt, "the court that took the decision (§25)", "court"},
	},
	FormAdminOffence:  {{FieldNumber, "the КПСиСУ number of the administrative-offence case (§23)", "admin_offence"}},
	FormEnforcement:   {{FieldNumber, "the АИС ОИП through-number of the enforcement proceedings (§27)", "enforcement"}},
	FormSearch:        {{FieldNumber, "the КПСиСУ number of the search case (§26)", "search"}},
	FormOtherBodies:   {{FieldNumber, "the number of the document of the body's task (§1; art. 16-1 p. 1 of the Law)", "other_bodies"}},
	FormCovert:        {{FieldNumber, "the number of the operational-search or covert-action case (§1; art. 16-2 p. 3 of the Law)", "covert"}},
	FormFinMonitoring: {{FieldNumber, "the number of the financial-monitoring case (§1; art. 16-2 p. 5 of the Law)", "fin_monitoring"}},
}

// formNames are the forms as a refusal names them.
var formNames = map[string]string{
	FormERDR:            "basis 1 (criminal case)",
	FormInstruction:     "basis 1 (criminal case), investigative or prosecutor's instruction form",
	FormLegalAssistance: "basis 1 (criminal case), international legal assistance form",
	FormAdminOffence:    "basis 3 (administrative-offence case, КПСиСУ)",
	FormEnforcement:     "basis 5 (enforcement proceedings)",
	FormSearch:          "basis 6 (search case)",
	FormOtherBodies:     "basis 7 (other bodies, art. 16-1 p. 1 of the Law)",
	FormCovert:          "basis 8 (covert investigative actions and operational-search activity, art. 16-2 p. 3 of the Law)",
	FormFinMonitoring:   "basis 9 (financial monitoring, art. 16-2 p. 5 of the Law)",
}

func formName(b siobroker.Basis, f string) string {
	if f == FormCourt {
		if b == siobroker.BasisCourtCivil {
			return "basis 4 (civil case, court)"
		}
		return "basis 2 (administrative or administrative-offence case, court)"
	}
	return formNames[f]
}

func values(c siobroker.CaseRef) map[string]string {
	return map[string]string{
		FieldNumber: c.Number, FieldInstructionNo: c.InstructionNo, FieldRequestingBody: c.RequestingBody,
		FieldCoveringLetterNo: c.CoveringLetterNo, FieldYear: c.Year, FieldCourt: c.Court,
	}
}

// wireOrder is the order of the fields in query/case; refusals report the first field at fault.
var wireOrder = []string{FieldNumber, FieldInstructionNo, FieldRequestingBody, FieldCoveringLetterNo, FieldYear, FieldCourt}

// Validate checks that c has exactly the fields of its form under basis b and that each matches
// its configured pattern; the accounting year must also lie between cases.min_year and the
// current year. A refusal is an *siobroker.Error with code CodeCaseInvalid whose Field is the XML
// path of the first field at fault and whose message names the form, the field and what was
// expected. Values are checked as given: the XML schema has already refused surrounding
// whitespace.
func (r *Rules) Validate(b siobroker.Basis, c siobroker.CaseRef) error {
	f := form(b, c)
	if f == "" {
		return &siobroker.Error{Code: siobroker.CodeCaseInvalid, Field: FieldBasis,
			Message: fmt.Sprintf("%s: %d is not a basis (1 to 9)", FieldBasis, int(b))}
	}
	name := formName(b, f)
	want := fieldsOf[f]
	vals := values(c)
	inForm := make(map[string]field, len(want))
	for _, fd := range want {
		inForm[fd.path] = fd
	}
	for _, path := range wireOrder {
		v := vals[path]
		fd, ok := inForm[path]
		if !ok {
			if v != "" {
				return invalid(path, "%s: %s has no field %s%s", path, name, last(path), hint(b, path))
			}
			continue
		}
		if v == "" {
			return invalid(path, "%s: %s needs %s, and it is missing", path, name, fd.what)
		}
		p := r.p[fd.key]
		if !p.re.MatchString(v) {
			return invalid(path, "%s: %s needs %s as %s; got %q (pattern %s, cases.patterns.%s)",
				path, name, fd.what, p.words, v, p.src, p.key)
		}
		if path == FieldYear {
			if err := r.checkYear(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Rules) checkYear(name, v string) error {
	y, err := strconv.Atoi(v)
	if err != nil {
		return invalid(FieldYear, "%s: %s needs the accounting year as 4 digits; got %q", FieldYear, name, v)
	}
	now := r.clock.Now().In(siobroker.Astana).Year()
	if y < r.minYear || y > now {
		return invalid(FieldYear, "%s: %s needs the accounting year (§25) between %d and %d; got %d",
			FieldYear, name, r.minYear, now, y)
	}
	return nil
}

// hint says where a field that does not belong to the form would belong.
func hint(b siobroker.Basis, path string) string {
	switch path {
	case FieldInstructionNo:
		if b == siobroker.BasisCriminal {
			return " (in this form the outgoing number of the legal-assistance instruction goes in number)"
		}
		return " (instruction numbers belong to basis 1, §22)"
	case FieldRequestingBody, FieldCoveringLetterNo:
		return " (it belongs to the international legal assistance form of basis 1, §22)"
	case FieldYear, FieldCourt:
		return " (year and court belong to the court form of bases 2 and 4, §25)"
	}
	return ""
}

func last(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}

func invalid(path, format string, args ...any) *siobroker.Error {
	return &siobroker.Error{Code: siobroker.CodeCaseInvalid, Field: path, Message: fmt.Sprintf(format, args...)}
}
