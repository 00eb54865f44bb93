package cases

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The configuration of the case rules: the cases section of configs/broker.yaml, owned here so
// that the rules do not depend on the whole broker's configuration.

// Config holds the case-reference rules of §§20–27 of the Rules: the pattern of every field of
// every form of every basis, the lowest accounting year a court case may have, which case
// registry verifies which basis (§5), how long the broker waits for a registry's answer, and how
// the broker decides from the answer that the case is in the user's proceedings: the parts each
// role must have in it, and the statuses of a case in proceedings. Package cases compiles and
// applies them.
type Config struct {
	CheckTimeout time.Duration  `mapstructure:"check_timeout"`
	MinYear      int            `mapstructure:"min_year"` // the lowest accounting year of a court case
	Patterns     Patterns       `mapstructure:"patterns"`
	Registries   map[int]string `mapstructure:"registries"` // basis → registry name; never basis 3 (§23)
	// Parts are the parts a user of a role must have in a case's proceedings (§5); see
	// DefaultParts for the defaults and their source in the Rules.
	Parts []PartRule `mapstructure:"parts"`
	// OpenStatuses are the statuses of a case in proceedings; a case in another (closed,
	// terminated) is refused (§5). Compared lower-cased.
	OpenStatuses []string `mapstructure:"open_statuses"`
}

// Patterns holds one pattern per field of each form. The keys are those of configs/broker.yaml.
type Patterns struct {
	ERDR              Pattern `mapstructure:"erdr"`                // basis 1: the ЕРДР number (§21, §22 first sentence)
	InstructionNo     Pattern `mapstructure:"instruction_no"`      // basis 1: outgoing number of an instruction (§22)
	LegalAssistanceNo Pattern `mapstructure:"legal_assistance_no"` // basis 1: outgoing number of a legal-assistance instruction (§22)
	RequestingBody    Pattern `mapstructure:"requesting_body"`     // basis 1: the body that sent the legal-assistance instruction (§22)
	CoveringLetterNo  Pattern `mapstructure:"covering_letter_no"`  // basis 1: outgoing number of the RK authority's covering letter (§22)
	CourtCase         Pattern `mapstructure:"court_case"`          // bases 2 and 4: the court case number (§25)
	Year              Pattern `mapstructure:"year"`                // bases 2 and 4: the accounting year (§25)
	Court             Pattern `mapstructure:"court"`               // bases 2 and 4: the court, by name or code (§25)
	AdminOffence      Pattern `mapstructure:"admin_offence"`       // basis 3: КПСиСУ number of the administrative-offence case (§23)
	Enforcement       Pattern `mapstructure:"enforcement"`         // basis 5: АИС ОИП through-number (§27)
	Search            Pattern `mapstructure:"search"`              // basis 6: КПСиСУ number of the search case (§26)
	// The bases of the Law that §1 refers to: the reference of the request under each (the
	// document of the other body's task, the operational-search case, the financial-monitoring
	// case). The Law publishes no format; the default is the outgoing-number pattern, which the
	// operator narrows once the bodies' numbering is known.
	OtherBodies   Pattern `mapstructure:"other_bodies"`   // basis 7: art. 16-1 p. 1 of the Law
	Covert        Pattern `mapstructure:"covert"`         // basis 8: art. 16-2 p. 3 of the Law
	FinMonitoring Pattern `mapstructure:"fin_monitoring"` // basis 9: art. 16-2 p. 5 of the Law
}

// Pattern is an anchored regular expression (RE2 syntax) and the same rule in words, which
// the refusal quotes to the client.
type Pattern struct {
	Regexp string `mapstructure:"regexp"`
	Words  string `mapstructure:"words"`
}

// All returns every pattern keyed by its configuration key (cases.patterns.<key>).
func (p Patterns) All() map[string]Pattern {
	return map[string]Pattern{
		"erdr": p.ERDR, "instruction_no": p.InstructionNo, "legal_assistance_no": p.LegalAssistanceNo,
		"requesting_body": p.RequestingBody, "covering_letter_no": p.CoveringLetterNo,
		"court_case": p.CourtCase, "year": p.Year, "court": p.Court,
		"admin_offence": p.AdminOffence, "enforcement": p.Enforcement, "search": p.Search,
		"other_bodies": p.OtherBodies, "covert": p.Covert, "fin_monitoring": p.FinMonitoring,
	}
}

// Registry names are used in transport topics (schemas.RegistryTopic).
var registryName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Letters of the Russian and Kazakh Cyrillic alphabets, for the patterns of outgoing numbers.
const cyr = `А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі`

// DefaultConfig returns the default case-reference rules. configs/broker.yaml repeats them with
// what each pattern assumes; keep the two in step.
func DefaultConfig() Config {
	outgoing := Pattern{
		Regexp: `^[0-9A-Za-z` + cyr + `][0-9A-Za-z` + cyr + `./\-]{0,29}$`,
		Words:  "1 to 30 letters, digits, '.', '/' or '-', starting with a letter or digit",
	}
	return Config{
		CheckTimeout: 5 * time.Second,
		MinYear:      1991,
		Patterns: Patterns{
			ERDR: Pattern{Regexp: `^\d{15}$`,
				Words: "the 15-digit ЕРДР number: 2 digits of the year, 7 of the registering body, 6 of the sequence"},
			InstructionNo:     outgoing,
			LegalAssistanceNo: outgoing,
			RequestingBody: Pattern{Regexp: `^[\p{L}\p{N}][\p{L}\p{N} .,'’«»"()№/\-]{0,255}$`,
				Words: "the name of the requesting body: 1 to 256 letters, digits, spaces and punctuation, starting with a letter or digit"},
			CoveringLetterNo: outgoing,
			CourtCase: Pattern{Regexp: `^(?:\d{4}-\d{2}-\d{1,2}-\d{1,2}[` + cyr + `a-z]?/\d{1,6}|\d{1,2}[` + cyr + `a-z]?-\d{1,6}/\d{4})$`,
				Words: "a court case number: court code-YY-NN-category/serial (e.g. 7511-25-00-2/1234) or category-serial/year (e.g. 2-1234/2025)"},
			Year: Pattern{Regexp: `^\d{4}$`, Words: "4 digits"},
			Court: Pattern{Regexp: `^[\p{L}\p{N}][\p{L}\p{N} .,'’«»"()№/\-]{0,255}$`,
				Words: "the court's name or code: 1 to 256 letters, digits, spaces and punctuation, starting with a letter or digit"},
			AdminOffence: Pattern{Regexp: `^\d{10,20}$`,
				Words: "the КПСиСУ number of the administrative-offence case: 10 to 20 digits"},
			Enforcement: Pattern{Regexp: `^(?:\d{6,20}|\d{2,6}(?:-\d{1,10}){1,4}(?:/\d{1,10})?)$`,
				Words: "the АИС ОИП through-number: 6 to 20 digits, or digit groups joined by '-' with an optional '/serial' (e.g. 02-0015-25-1/1234)"},
			Search: Pattern{Regexp: `^(?:\d{15}|[А-ЯЁA-Z]{1,4}-?\d{6,15})$`,
				Words: "the КПСиСУ number of the search case: 15 digits, or a prefix of 1 to 4 capital letters and 6 to 15 digits (e.g. РД-123456789)"},
			OtherBodies:   outgoing,
			Covert:        outgoing,
			FinMonitoring: outgoing,
		},
		Registries:   map[int]string{1: "erdr", 2: "courts", 4: "courts", 5: "aisoip", 6: "erdr"},
		Parts:        DefaultParts(),
		OpenStatuses: DefaultOpenStatuses(),
	}
}

// Validate checks the cases section on its own: every pattern compiles and is anchored, and the
// registries map lists only bases 1..6 other than the exempt basis 3. Each error names its key.
func (c Config) Validate() error { return errors.Join(c.Problems()...) }

// Problems is Validate's list, for a caller that joins it with problems of its own.
func (c Config) Problems() []error {
	var errs []error
	if c.CheckTimeout <= 0 {
		errs = append(errs, fmt.Errorf("cases.check_timeout: must be positive, got %s", c.CheckTimeout))
	}
	if c.MinYear < 1900 || c.MinYear > 9999 {
		errs = append(errs, fmt.Errorf("cases.min_year: %d is not a plausible year (1900..9999)", c.MinYear))
	}
	all := c.Patterns.All()
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := all[k]
		if err := checkPattern(p.Regexp); err != nil {
			errs = append(errs, fmt.Errorf("cases.patterns.%s.regexp: %w", k, err))
		}
	}
	bases := make([]int, 0, len(c.Registries))
	for b := range c.Registries {
		bases = append(bases, b)
	}
	slices.Sort(bases)
	for _, b := range bases {
		name := c.Registries[b]
		switch {
		case b == 3:
			errs = append(errs, errors.New("cases.registries.3: basis 3 (administrative-offence case, КПСиСУ) is exempt from verification (§5, §23); remove it"))
		case b < 1 || b > 6:
			errs = append(errs, fmt.Errorf("cases.registries.%d: no such basis (1..6)", b))
		case !registryName.MatchString(name):
			errs = append(errs, fmt.Errorf("cases.registries.%d: registry name %q must be 1 to 32 of a-z, 0-9, '_' or '-', starting with a letter", b, name))
		}
	}
	return append(errs, c.partProblems()...)
}

// checkPattern compiles an anchored RE2 pattern. Anchoring is required: an unanchored pattern
// would accept any value that merely contains a match.
func checkPattern(p string) error {
	if p == "" {
		return errors.New("must not be empty")
	}
	if _, err := regexp.Compile(p); err != nil {
		return err
	}
	if !strings.HasPrefix(p, "^") || !strings.HasSuffix(p, "$") || strings.HasSuffix(p, `\$`) {
		return fmt.Errorf("%q must be anchored: start with ^ and end with $", p)
	}
	return nil
}
