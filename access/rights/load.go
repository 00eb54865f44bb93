package rights

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
)

// file is the layout of configs/rights.yaml. Unknown keys are errors: a misspelt key would
// otherwise silently drop a rule.
type file struct {
	// Edition and EditionDate name the wording of Appendix 1 the role numbers refer to: the year
	// of the order and its date. Role numbers change meaning between editions (the 2026 wording
	// renumbered 21 rows into 19), so the store keeps the edition beside its users' roles and the
	// broker compares the two at start.
	Edition          string           `yaml:"edition"`
	EditionDate      string           `yaml:"edition_date"`
	Roles            []fileRole       `yaml:"roles"`
	Services         []fileService    `yaml:"services"`
	Truncation       map[int][]string `yaml:"truncation"`
	EconomicArticles []string         `yaml:"economic_articles"`
	LawBases         []fileLawBasis   `yaml:"law_bases"`
}

type fileRole struct {
	No    int    `yaml:"no"`
	Name  string `yaml:"name"`
	Bases []int  `yaml:"bases"`
}

type fileService struct {
	No     int            `yaml:"no"`
	Name   string         `yaml:"name"`
	Access map[int]string `yaml:"access"`
}

// articlePattern is the form of a Criminal Code article: a number, optionally with the "-N" of an
// article inserted later (e.g. "217-1").
var articlePattern = regexp.MustCompile(`^[0-9]{1,3}(-[0-9]{1,2})?$`)

// Load reads and validates the rights file at path. See Parse for what is checked.
func Load(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rights: read %s: %w", path, err)
	}
	return Parse(data, path)
}

// Parse decodes and validates a rights file; source names it in errors. It checks that there are
// exactly the 19 roles numbered 1..19 and the 93 services numbered 1..93, that every basis is in
// 1..6 and every access value is known, that "economic-articles-only" appears only under the
// criminal basis, that the truncation lists match the truncated cells, and that every economic
// article is well formed. All problems are reported together, each naming the item.
func Parse(data []byte, source string) (*Table, error) {
	var f file
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("rights: %s: %w", source, err)
	}

	v := validator{source: source}
	t := &Table{
		roles:     v.roles(f.Roles),
		services:  v.services(f.Services),
		truncated: map[int][]string{},
		articles:  map[string]bool{},
	}
	t.edition, t.editionDate = v.edition(f.Edition, f.EditionDate)
	v.truncation(f.Truncation, t)
	v.articles(f.EconomicArticles, t)
	t.law = v.lawBases(f.LawBases, f.Truncation)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return t, nil
}

// decodeStrict decodes the one YAML document of data into v, refusing unknown keys: a misspelt
// key would otherwise silently drop a rule.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the file is empty")
		}
		return err
	}
	// A second document would be ignored by Decode; refuse it rather than guess which one counts.
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// validator collects every problem, so that a reviewer fixing the file sees them all at once.
type validator struct {
	source string
	errs   []error
}

func (v *validator) errorf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("rights: %s: "+format, append([]any{v.source}, args...)...))
}

// editionPattern is an edition as the files and the store name it: the year of the amending order.
var editionPattern = regexp.MustCompile(`^[0-9]{4}$`)

// edition checks the edition and its date: both are required, since a file without them could not
// be told from one of another wording of Appendix 1.
func (v *validator) edition(edition, date string) (string, time.Time) {
	if !editionPattern.MatchString(edition) {
		v.errorf("edition: %q is not the year of the wording of Appendix 1 (want e.g. \"2026\")", edition)
	}
	d, err := time.Parse(time.DateOnly, date)
	switch {
	case err != nil:
		v.errorf("edition_date: %q is not the date of the amending order as YYYY-MM-DD (e.g. \"2026-02-23\")", date)
	case edition != "" && fmt.Sprint(d.Year()) != edition:
		v.errorf("edition_date: %s is not in the year of edition %s", date, edition)
	}
	return edition, d
}

func (v *validator) roles(in []fileRole) []Role {
	out := make([]Role, NumRoles)
	seen := make([]bool, NumRoles+1)
	for i, fr := range in {
		item := fmt.Sprintf("role %d", fr.No)
		if fr.No < 1 || fr.No > NumRoles {
			v.errorf("roles[%d]: number %d is outside 1..%d", i, fr.No, NumRoles)
			continue
		}
		if seen[fr.No] {
			v.errorf("%s: listed twice", item)
			continue
		}
		seen[fr.No] = true
		if fr.Name == "" {
			v.errorf("%s: no name", item)
		}
		// A missing key is a mistake; "bases: []" is a role with no basis, which the 2024 wording
		// of Appendix 1 had (row 20), so it stays expressible.
		if fr.Bases == nil {
			v.errorf("%s: no bases (write \"bases: []\" for a role without any)", item)
		}
		r := Role{No: fr.No, Name: fr.Name, Bases: []siobroker.Basis{}}
		for _, b := range fr.Bases {
			switch {
			case !siobroker.Basis(b).Valid():
				v.errorf("%s: basis %d is not in 1..6", item, b)
			case slices.Contains(r.Bases, siobroker.Basis(b)):
				v.errorf("%s: basis %d listed twice", item, b)
			default:
				r.Bases = append(r.Bases, siobroker.Basis(b))
			}
		}
		slices.Sort(r.Bases)
		out[fr.No-1] = r
	}
	for no := 1; no <= NumRoles; no++ {
		if !seen[no] {
			v.errorf("role %d: missing (Appendix 1 has roles 1..%d)", no, NumRoles)
		}
	}
	return out
}

func (v *validator) services(in []fileService) []Service {
	out := make([]Service, NumServices)
	seen := make([]bool, NumServices+1)
	for i, fs := range in {
		item := fmt.Sprintf("service %d", fs.No)
		if fs.No < 1 || fs.No > NumServices {
			v.errorf("services[%d]: number %d is outside 1..%d", i, fs.No, NumServices)
			continue
		}
		if seen[fs.No] {
			v.errorf("%s: listed twice", item)
			continue
		}
		seen[fs.No] = true
		if fs.Name == "" {
			v.errorf("%s: no name", item)
		}
		if fs.Access == nil {
			v.errorf("%s: no access (write \"access: {}\" for a service available under no basis)", item)
		}
		s := Service{No: fs.No, Name: fs.Name, Access: map[siobroker.Basis]siobroker.Access{}}
		for _, b := range sortedKeys(fs.Access) {
			a := siobroker.Access(fs.Access[b])
			switch {
			case !siobroker.Basis(b).Valid():
				v.errorf("%s: basis %d is not in 1..6", item, b)
			case !a.Valid():
				v.errorf("%s: basis %d: access %q is not one of %q, %q, %q (leave the basis out when the service is not available)",
					item, b, a, siobroker.AccessFull, siobroker.AccessTruncated, siobroker.AccessEconomicArticles)
			case a == siobroker.AccessEconomicArticles && siobroker.Basis(b) != siobroker.BasisCriminal:
				// An article of the Criminal Code exists only for a criminal case; under any other
				// basis the cell could never be satisfied, so it must be a transcription mistake.
				v.errorf("%s: basis %d: %q is allowed only under basis 1 (criminal case)", item, b, a)
			default:
				s.Access[siobroker.Basis(b)] = a
			}
		}
		out[fs.No-1] = s
	}
	for no := 1; no <= NumServices; no++ {
		if !seen[no] {
			v.errorf("service %d: missing (Appendix 2 has services 1..%d)", no, NumServices)
		}
	}
	return out
}

func (v *validator) truncation(in map[int][]string, t *Table) {
	for _, no := range sortedKeys(in) {
		fields := in[no]
		item := fmt.Sprintf("truncation of service %d", no)
		if no < 1 || no > NumServices {
			v.errorf("%s: no such service", item)
			continue
		}
		if !hasAccess(t.services[no-1], siobroker.AccessTruncated) {
			v.errorf("%s: the service has no truncated cell", item)
			continue
		}
		if len(fields) == 0 {
			v.errorf("%s: no fields", item)
			continue
		}
		var clean []string
		for _, name := range fields {
			switch {
			case name == "":
				v.errorf("%s: empty field name", item)
			case slices.Contains(clean, name):
				v.errorf("%s: field %q listed twice", item, name)
			default:
				clean = append(clean, name)
			}
		}
		t.truncated[no] = clean
	}
	// Without a field list a truncated cell would pass the full reply: the very data footnote 1
	// withholds.
	for _, s := range t.services {
		if hasAccess(s, siobroker.AccessTruncated) && len(in[s.No]) == 0 {
			v.errorf("service %d: has truncated cells but no truncation fields", s.No)
		}
	}
}

func (v *validator) articles(in []string, t *Table) {
	for i, a := range in {
		switch {
		case !articlePattern.MatchString(a):
			v.errorf("economic_articles[%d]: %q is not an article number (want e.g. \"216\" or \"217-1\")", i, a)
		case t.articles[a]:
			v.errorf("economic_articles[%d]: %q listed twice", i, a)
		default:
			t.articles[a] = true
		}
	}
	if len(in) == 0 {
		for _, s := range t.services {
			if hasAccess(s, siobroker.AccessEconomicArticles) {
				v.errorf("economic_articles: empty, but service %d is %q", s.No, siobroker.AccessEconomicArticles)
				return
			}
		}
	}
}

func hasAccess(s Service, a siobroker.Access) bool {
	for _, x := range s.Access {
		if x == a {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// compareArticles orders "216" < "216-1" < "217" numerically.
func compareArticles(a, b string) int {
	an, as := splitArticle(a)
	bn, bs := splitArticle(b)
	if an != bn {
		return an - bn
	}
	return as - bs
}

// splitArticle splits a validated article into its number and sub-number (0 when absent).
func splitArticle(a string) (int, int) {
	num, sub, _ := strings.Cut(a, "-")
	n, _ := strconv.Atoi(num) // the pattern guarantees digits
	s, _ := strconv.Atoi(sub)
	return n, s
}
