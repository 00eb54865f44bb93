package rights

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// A user's role is a row number of Appendix 1, and the row numbers mean different roles in
// different wordings: the 2026 wording (Order No. 34 of 23.02.2026) has 19 rows where the 2024
// wording (Order No. 88 of 04.07.2024) had 21, so a 2024 row 19 (criminal police) would read as
// the 2026 row 19 (duty unit). A RoleMapping says, for every row of one wording, the row of the
// next that is the same role, or that the next wording has no such role and the operator must
// decide. It is data (configs/roles-2024-2026.yaml) so that it can be reviewed against both
// appendices.

// RoleMapping maps the rows of Appendix 1 of one edition to those of another.
type RoleMapping struct {
	From, To string
	FromRows int // the number of rows of the From wording, every one of which is mapped
	rows     map[int]MappedRow
}

// MappedRow is the fate of one row of the From wording.
type MappedRow struct {
	From     int
	FromName string
	// To is the row of the To wording that is the same role; 0 when the To wording has none and
	// the operator must decide what becomes of the users of the row (Decision says why).
	To       int
	ToName   string
	Decision string
}

// Undecided reports whether the row needs the operator's decision.
func (r MappedRow) Undecided() bool { return r.To == 0 }

type mappingFile struct {
	From     string           `yaml:"from"`
	To       string           `yaml:"to"`
	FromRows int              `yaml:"from_rows"`
	ToRows   int              `yaml:"to_rows"`
	Rows     []mappingFileRow `yaml:"rows"`
}

type mappingFileRow struct {
	From     int    `yaml:"from"`
	FromName string `yaml:"from_name"`
	To       *int   `yaml:"to"` // null: no such role in the To wording
	ToName   string `yaml:"to_name"`
	Decision string `yaml:"decision"`
}

// LoadRoleMapping reads and validates a mapping file: the editions are years, every row
// 1..from_rows is mapped once, every target is in 1..to_rows and named, and a row without a
// target says why in decision. Problems are reported together.
func LoadRoleMapping(path string) (*RoleMapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("role mapping: read %s: %w", path, err)
	}
	var f mappingFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("role mapping: %s: %w", path, err)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("role mapping: %s: "+format, append([]any{path}, args...)...))
	}
	if !editionPattern.MatchString(f.From) || !editionPattern.MatchString(f.To) || f.From == f.To {
		bad("from %q and to %q must be two different editions (years)", f.From, f.To)
	}
	if f.FromRows < 1 || f.ToRows < 1 {
		bad("from_rows and to_rows must be the numbers of rows of the two wordings of Appendix 1")
	}
	m := &RoleMapping{From: f.From, To: f.To, FromRows: f.FromRows, rows: map[int]MappedRow{}}
	for i, r := range f.Rows {
		switch {
		case r.From < 1 || r.From > f.FromRows:
			bad("rows[%d]: from %d is outside 1..%d", i, r.From, f.FromRows)
			continue
		case m.rows[r.From].From != 0:
			bad("row %d: mapped twice", r.From)
			continue
		case r.FromName == "":
			bad("row %d: no from_name", r.From)
		}
		mr := MappedRow{From: r.From, FromName: r.FromName, ToName: r.ToName, Decision: strings.TrimSpace(r.Decision)}
		switch {
		case r.To == nil && mr.Decision == "":
			bad("row %d: no target and no decision: say why the %s wording has no such role", r.From, f.To)
		case r.To == nil:
		case *r.To < 1 || *r.To > f.ToRows:
			bad("row %d: to %d is outside 1..%d", r.From, *r.To, f.ToRows)
		case r.ToName == "":
			bad("row %d: no to_name", r.From)
		default:
			mr.To = *r.To
		}
		m.rows[r.From] = mr
	}
	for no := 1; no <= f.FromRows; no++ {
		if _, ok := m.rows[no]; !ok {
			bad("row %d: missing (the %s wording has rows 1..%d; map every one)", no, f.From, f.FromRows)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// Row returns the mapping of row no of the From wording.
func (m *RoleMapping) Row(no int) (MappedRow, bool) {
	r, ok := m.rows[no]
	return r, ok
}

// Rows returns the mapping of every row, in order.
func (m *RoleMapping) Rows() []MappedRow {
	out := make([]MappedRow, 0, len(m.rows))
	for _, r := range m.rows {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b MappedRow) int { return a.From - b.From })
	return out
}

// RoleHolder is a user as a role migration sees them.
type RoleHolder struct {
	IIN  string
	Name string
	Role int
}

// RoleMove is one user's change of row.
type RoleMove struct {
	IIN      string
	Name     string
	From, To int
	FromName string
	ToName   string
}

// RolePlan is what a migration would do to the users: the moves (including users whose row
// number stays the same, so that the plan accounts for everyone), and the users it cannot place.
type RolePlan struct {
	From, To string
	Moves    []RoleMove
	// Undecided are the users of rows the To wording does not have, and of rows outside the From
	// wording: the migration does not apply while there is one.
	Undecided []RoleMove
}

// Plan maps every holder's row. It never guesses: a row without a target is undecided.
func (m *RoleMapping) Plan(holders []RoleHolder) RolePlan {
	p := RolePlan{From: m.From, To: m.To}
	for _, h := range holders {
		r, ok := m.rows[h.Role]
		mv := RoleMove{IIN: h.IIN, Name: h.Name, From: h.Role, To: r.To, FromName: r.FromName, ToName: r.ToName}
		switch {
		case !ok:
			mv.FromName = fmt.Sprintf("(no row %d in the %s wording)", h.Role, m.From)
			p.Undecided = append(p.Undecided, mv)
		case r.Undecided():
			mv.ToName = "the operator's decision: " + r.Decision
			p.Undecided = append(p.Undecided, mv)
		default:
			p.Moves = append(p.Moves, mv)
		}
	}
	return p
}

// Write prints the plan for people: every user's row before and after, then the users the
// migration cannot place.
func (p RolePlan) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Roles of Appendix 1: edition %s -> %s, %d users\n", p.From, p.To, len(p.Moves)+len(p.Undecided))
	for _, mv := range p.Moves {
		same := ""
		if mv.From == mv.To {
			same = " (same number)"
		}
		fmt.Fprintf(&b, "  %s %s: row %d (%s) -> row %d (%s)%s\n", mv.IIN, mv.Name, mv.From, mv.FromName, mv.To, mv.ToName, same)
	}
	if len(p.Undecided) > 0 {
		fmt.Fprintf(&b, "Not placed: %d users; give their rows a target in the mapping file (the operator's decision, kept in the file with its reason), then run again:\n", len(p.Undecided))
		for _, mv := range p.Undecided {
			fmt.Fprintf(&b, "  %s %s: row %d %s: %s\n", mv.IIN, mv.Name, mv.From, mv.FromName, mv.ToName)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
