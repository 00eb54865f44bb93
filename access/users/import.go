package users

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
)

// ImportColumns are the columns of an import file, in the order of the CSV header. A YAML file
// has a list under "users:" with the same keys.
var ImportColumns = []string{
	"iin", "full_name", "organisation", "erdr_code", "department", "position", "contacts",
	"role", "reports_right", "consent_at", "operator_right",
	"work_phone", "mobile_phone", "email", "work_address", "sanction_right",
}

// requiredColumns must be present in a CSV header.
var requiredColumns = []string{"iin", "full_name", "organisation", "role"}

// importRow is one row or item before validation.
type importRow struct {
	where                     string // "line 3" or "item 2 (line 7)"
	iin, fullName, org        string
	erdr, dept, pos, contacts string
	workPhone, mobile, email  string
	workAddress               string
	consentAt                 string
	// CSV gives role and the rights as text; YAML has decoded them already (typed is true).
	role, reports, operator, sanction string
	typed                             bool
	roleInt                           int
	reportsBool                       bool
	operatorBool                      bool
	sanctionBool                      bool
}

// ParseImport reads an import file in format "csv" or "yaml" and returns one register
// application per valid row, with the consent time where one is given. The applications carry no
// time, author or reason: Import and the caller fill them in.
//
// Each row is validated: the IIN and its check digit, the role (1..19), the required full_name and
// organisation, reports_right, operator_right (optional) and consent_at (RFC 3339 or empty), and no
// IIN twice. Errors name
// their line (CSV) or item (YAML). The valid rows are returned with an error that joins every bad
// row, so the caller decides whether a partly bad file is applied; a file that cannot be read as
// a whole returns no rows.
func ParseImport(r io.Reader, format string) ([]siobroker.Application, error) {
	var rows []importRow
	var errs []error
	var err error
	switch strings.ToLower(format) {
	case "csv":
		rows, errs, err = readCSV(r)
	case "yaml", "yml":
		rows, errs, err = readYAML(r)
	default:
		return nil, fmt.Errorf("import: unknown format %q (csv or yaml)", format)
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var apps []siobroker.Application
	seen := make(map[string]string)
	for _, row := range rows {
		a, err := row.application()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", row.where, err))
			continue
		}
		if first, dup := seen[a.IIN]; dup {
			errs = append(errs, fmt.Errorf("%s: IIN %s is given again (first on %s)", row.where, a.IIN, first))
			continue
		}
		seen[a.IIN] = row.where
		apps = append(apps, a)
	}
	return apps, errors.Join(errs...)
}

func (row importRow) application() (siobroker.Application, error) {
	var errs []error
	if err := siobroker.ValidateIIN(row.iin); err != nil {
		errs = append(errs, fmt.Errorf("iin %q: %w", row.iin, err))
	}
	if row.fullName == "" {
		errs = append(errs, errors.New("full_name is required"))
	}
	if row.org == "" {
		errs = append(errs, errors.New("organisation is required"))
	}
	role := row.roleInt
	if !row.typed {
		var err error
		if role, err = strconv.Atoi(row.role); err != nil {
			errs = append(errs, fmt.Errorf("role %q is not a number", row.role))
			role = -1
		}
	}
	if role != -1 && (role < 1 || role > MaxRole) {
		errs = append(errs, fmt.Errorf("role must be 1..%d (Appendix 1), got %d", MaxRole, role))
	}
	reports := row.reportsBool
	if !row.typed {
		var err error
		if reports, err = parseBool(row.reports); err != nil {
			errs = append(errs, fmt.Errorf("reports_right: %w", err))
		}
	}
	operator := row.operatorBool
	if !row.typed {
		var err error
		if operator, err = parseBool(row.operator); err != nil {
			errs = append(errs, fmt.Errorf("operator_right: %w", err))
		}
	}
	sanction := row.sanctionBool
	if !row.typed {
		var err error
		if sanction, err = parseBool(row.sanction); err != nil {
			errs = append(errs, fmt.Errorf("sanction_right: %w", err))
		}
	}
	var consent time.Time
	if row.consentAt != "" {
		t, err := time.Parse(time.RFC3339, row.consentAt)
		if err != nil {
			errs = append(errs, fmt.Errorf("consent_at %q is not an RFC 3339 time", row.consentAt))
		} else {
			consent = t.In(siobroker.Astana)
		}
	}
	if len(errs) > 0 {
		return siobroker.Application{}, rowErrors(errs)
	}
	return siobroker.Application{
		Kind: siobroker.ApplyRegister,
		IIN:  row.iin,
		User: siobroker.User{
			IIN: row.iin, FullName: row.fullName, Organisation: row.org, ERDRCode: row.erdr,
			Department: row.dept, Position: row.pos, Contacts: row.contacts,
			WorkPhone: row.workPhone, MobilePhone: row.mobile, Email: row.email, WorkAddress: row.workAddress,
			Role: role, ReportsRight: reports, OperatorRight: operator, SanctionRight: sanction, ConsentAt: consent,
		},
	}, nil
}

// rowErrors is the errors of one row, on one line.
type rowErrors []error

func (e rowErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e rowErrors) Unwrap() []error { return e }

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "0", "false", "no", "нет":
		return false, nil
	case "1", "true", "yes", "да":
		return true, nil
	}
	return false, fmt.Errorf("%q is not true/false", s)
}

func readCSV(r io.Reader) (rows []importRow, rowErrs []error, err error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, errors.New("the CSV file is empty")
	}
	if err != nil {
		return nil, nil, err
	}
	col := make(map[string]int)
	known := make(map[string]bool)
	for _, c := range ImportColumns {
		known[c] = true
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[h] {
			return nil, nil, fmt.Errorf("line 1: unknown column %q (the columns are %s)", h, strings.Join(ImportColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("line 1: column %q is given twice", h)
		}
		col[h] = i
	}
	for _, c := range requiredColumns {
		if _, ok := col[c]; !ok {
			return nil, nil, fmt.Errorf("line 1: the required column %q is missing", c)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
			rowErrs = append(rowErrs, fmt.Errorf("line %d: %d fields, want %d", pe.StartLine, len(rec), len(header)))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		rows = append(rows, importRow{
			where: fmt.Sprintf("line %d", line),
			iin:   get(rec, "iin"), fullName: get(rec, "full_name"), org: get(rec, "organisation"),
			erdr: get(rec, "erdr_code"), dept: get(rec, "department"), pos: get(rec, "position"),
			contacts: get(rec, "contacts"), role: get(rec, "role"), reports: get(rec, "reports_right"),
			consentAt: get(rec, "consent_at"), operator: get(rec, "operator_right"),
			workPhone: get(rec, "work_phone"), mobile: get(rec, "mobile_phone"), email: get(rec, "email"),
			workAddress: get(rec, "work_address"), sanction: get(rec, "sanction_right"),
		})
	}
	return rows, rowErrs, nil
}

// yamlUser is one item under "users:".
type yamlUser struct {
	IIN          string `yaml:"iin"`
	FullName     string `yaml:"full_name"`
	Organisation string `yaml:"organisation"`
	ERDRCode     string `yaml:"erdr_code"`
	Department   string `yaml:"department"`
	Position     string `yaml:"position"`
	Contacts     string `yaml:"contacts"`
	Role         int    `yaml:"role"`
	ReportsRight bool   `yaml:"reports_right"`
	ConsentAt    string `yaml:"consent_at"`
	// OperatorRight is optional: files written before the dashboard have no such key.
	OperatorRight bool `yaml:"operator_right"`
	// The App. 5 fields, optional for files written before them (see Registry.Import).
	WorkPhone     string `yaml:"work_phone"`
	MobilePhone   string `yaml:"mobile_phone"`
	Email         string `yaml:"email"`
	WorkAddress   string `yaml:"work_address"`
	SanctionRight bool   `yaml:"sanction_right"`
}

func readYAML(r io.Reader) (rows []importRow, rowErrs []error, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	var file struct {
		Users []yaml.Node `yaml:"users"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		if err == io.EOF {
			return nil, nil, errors.New("the YAML file is empty")
		}
		return nil, nil, err
	}
	known := make(map[string]bool)
	for _, c := range ImportColumns {
		known[c] = true
	}
	for i, n := range file.Users {
		where := fmt.Sprintf("item %d (line %d)", i+1, n.Line)
		if n.Kind != yaml.MappingNode {
			rowErrs = append(rowErrs, fmt.Errorf("%s: not a mapping of the keys %s", where, strings.Join(ImportColumns, ", ")))
			continue
		}
		var keyErrs []error
		for k := 0; k+1 < len(n.Content); k += 2 {
			if key := n.Content[k].Value; !known[key] {
				keyErrs = append(keyErrs, fmt.Errorf("unknown key %q on line %d", key, n.Content[k].Line))
			}
		}
		var u yamlUser
		if err := n.Decode(&u); err != nil {
			keyErrs = append(keyErrs, err)
		}
		if len(keyErrs) > 0 {
			rowErrs = append(rowErrs, fmt.Errorf("%s: %w", where, rowErrors(keyErrs)))
			continue
		}
		rows = append(rows, importRow{
			where: where,
			iin:   strings.TrimSpace(u.IIN), fullName: strings.TrimSpace(u.FullName), org: strings.TrimSpace(u.Organisation),
			erdr: strings.TrimSpace(u.ERDRCode), dept: strings.TrimSpace(u.Department), pos: strings.TrimSpace(u.Position),
			contacts: strings.TrimSpace(u.Contacts), consentAt: strings.TrimSpace(u.ConsentAt),
			workPhone: strings.TrimSpace(u.WorkPhone), mobile: strings.TrimSpace(u.MobilePhone), email: strings.TrimSpace(u.Email),
			workAddress: strings.TrimSpace(u.WorkAddress),
			typed:       true, roleInt: u.Role, reportsBool: u.ReportsRight, operatorBool: u.OperatorRight, sanctionBool: u.SanctionRight,
		})
	}
	return rows, rowErrs, nil
}

// ImportAction is what Import did with one application.
type ImportAction string

// The outcomes of one imported row.
const (
	ImportRegistered ImportAction = "registered" // a new user, or a deleted one registered again
	ImportMoved      ImportAction = "moved"      // an existing user whose fields differed (a move application)
	ImportUnchanged  ImportAction = "unchanged"  // an existing user with the same fields: nothing written
	ImportFailed     ImportAction = "failed"     // see Err
)

// ImportResult is the outcome of one imported application.
type ImportResult struct {
	IIN    string
	Action ImportAction
	User   siobroker.User // the state after the application (or the current state if unchanged)
	Err    error
}

// Import applies the register applications of ParseImport, by the author by. A user not
// registered (or deleted) is registered; a registered user is updated with a move application only
// if a field differs, so importing the same file twice changes nothing the second time. A blocked
// user stays blocked. Errors are collected per row: the other rows are applied, and the returned
// error joins the failures. Applications without a reason get "import".
func (r *Registry) Import(ctx context.Context, apps []siobroker.Application, by string) ([]ImportResult, error) {
	results := make([]ImportResult, 0, len(apps))
	var errs []error
	for _, a := range apps {
		res := r.importOne(ctx, a, by)
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.IIN, res.Err))
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

func (r *Registry) importOne(ctx context.Context, a siobroker.Application, by string) ImportResult {
	res := ImportResult{IIN: a.IIN, Action: ImportFailed}
	a.By = by
	if a.Reason == "" {
		a.Reason = "import"
	}
	cur, exists, err := r.store.User(ctx, a.IIN)
	if err != nil {
		res.Err = err
		return res
	}
	if exists {
		// A file of before the App. 5 contact fields, or a cell left empty, never blanks what is
		// registered: an import does not lose contact data.
		for _, f := range []struct {
			next *string
			cur  string
		}{{&a.User.WorkPhone, cur.WorkPhone},
			{&a.User.MobilePhone, cur.MobilePhone}, {&a.User.Email, cur.Email}, {&a.User.WorkAddress, cur.WorkAddress}} {
			if *f.next == "" {
				*f.next = f.cur
			}
		}
	}
	switch {
	case !exists || cur.Status == siobroker.UserDeleted:
		a.Kind, res.Action = siobroker.ApplyRegister, ImportRegistered
	case sameFields(cur, a.User):
		res.Action, res.User = ImportUnchanged, cur
		return res
	default:
		a.Kind, res.Action = siobroker.ApplyMove, ImportMoved
	}
	u, err := r.Apply(ctx, a)
	if err != nil {
		res.Action, res.Err = ImportFailed, err
		return res
	}
	res.User = u
	return res
}

// sameFields reports whether a move to next would change nothing of cur. A zero consent time in
// next keeps the recorded one.
func sameFields(cur, next siobroker.User) bool {
	if !next.ConsentAt.IsZero() && !next.ConsentAt.Equal(cur.ConsentAt) {
		return false
	}
	return cur.FullName == next.FullName && cur.Organisation == next.Organisation &&
		cur.ERDRCode == next.ERDRCode && cur.Department == next.Department && cur.Position == next.Position &&
		cur.Contacts == next.Contacts && cur.Role == next.Role && cur.ReportsRight == next.ReportsRight &&
		cur.OperatorRight == next.OperatorRight && cur.SanctionRight == next.SanctionRight &&
		cur.WorkPhone == next.WorkPhone && cur.MobilePhone == next.MobilePhone && cur.Email == next.Email &&
		cur.WorkAddress == next.WorkAddress
}
