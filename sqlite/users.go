package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"

	"github.com/sio-pso/siobroker"
)

// migrationUsers creates the user registry.
//
// users holds one row per IIN: the current state. user_applications and access_refusals are
// append-only: triggers refuse UPDATE and DELETE, so the history of applications (§12–15) and of
// refusals cannot be edited through SQL either. Every time is kept twice: as text in Astana time
// (siobroker.FormatTime, §28) for people, and as Unix nanoseconds for ordering and exact reads.
const migrationUsers = `CREATE TABLE users (
		iin             TEXT PRIMARY KEY,
		full_name       TEXT NOT NULL,
		organisation    TEXT NOT NULL,
		erdr_code       TEXT NOT NULL,
		department      TEXT NOT NULL,
		position        TEXT NOT NULL,
		contacts        TEXT NOT NULL,
		role            INTEGER NOT NULL,
		reports_right   INTEGER NOT NULL CHECK (reports_right IN (0, 1)),
		status          TEXT NOT NULL CHECK (status IN ('active', 'blocked', 'deleted')),
		consent_at      TEXT,
		consent_ns      INTEGER,
		last_request_at TEXT,
		last_request_ns INTEGER,
		registered_at   TEXT NOT NULL,
		registered_ns   INTEGER NOT NULL
	);
	CREATE TABLE user_applications (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		kind       TEXT NOT NULL,
		iin        TEXT NOT NULL,
		reason     TEXT NOT NULL,
		at         TEXT NOT NULL,
		at_ns      INTEGER NOT NULL,
		applied_by TEXT NOT NULL,
		user_json  TEXT NOT NULL
	);
	CREATE INDEX user_applications_iin ON user_applications(iin, id);
	CREATE TRIGGER user_applications_no_update BEFORE UPDATE ON user_applications
	BEGIN SELECT RAISE(ABORT, 'user_applications is append-only: an application is never changed'); END;
	CREATE TRIGGER user_applications_no_delete BEFORE DELETE ON user_applications
	BEGIN SELECT RAISE(ABORT, 'user_applications is append-only: an application is never deleted'); END;
	CREATE TABLE access_refusals (
		id     INTEGER PRIMARY KEY AUTOINCREMENT,
		iin    TEXT NOT NULL,
		code   TEXT NOT NULL,
		reason TEXT NOT NULL,
		at     TEXT NOT NULL,
		at_ns  INTEGER NOT NULL
	);
	CREATE INDEX access_refusals_iin ON access_refusals(iin, id);
	CREATE TRIGGER access_refusals_no_update BEFORE UPDATE ON access_refusals
	BEGIN SELECT RAISE(ABORT, 'access_refusals is append-only: a refusal is never changed'); END;
	CREATE TRIGGER access_refusals_no_delete BEFORE DELETE ON access_refusals
	BEGIN SELECT RAISE(ABORT, 'access_refusals is append-only: a refusal is never deleted'); END;`

// Refusal is one recorded refusal of a user's request by the registry.
type Refusal struct {
	ID     int64
	IIN    string
	Code   siobroker.Code
	Reason string
	At     time.Time
}

const userColumns = `iin, full_name, organisation, erdr_code, department, position, contacts, role,
	reports_right, operator_right, status, consent_ns, last_request_ns, registered_ns,
	work_phone, mobile_phone, email, work_address, sanction_right`

// operatorRightColumn is added to users by Open when it is missing, in databases created before
// the operator's dashboard as well as new ones: a column added outside the numbered migrations
// does not depend on the order in which other changes append theirs.
const operatorRightColumn = `operator_right INTEGER NOT NULL DEFAULT 0 CHECK (operator_right IN (0, 1))`

// appendix5Columns are the fields of App. 5 that registries made before had in one free-text
// contacts column, and the "Санкционирование" right; Open adds them where they are missing, as
// operator_right. The old contacts column stays as it was (siobroker.User.Contacts, legacy).
var appendix5Columns = []string{
	`work_phone TEXT NOT NULL DEFAULT ''`,
	`mobile_phone TEXT NOT NULL DEFAULT ''`,
	`email TEXT NOT NULL DEFAULT ''`,
	`work_address TEXT NOT NULL DEFAULT ''`,
	`sanction_right INTEGER NOT NULL DEFAULT 0 CHECK (sanction_right IN (0, 1))`,
}

// addAppendix5Columns adds the App. 5 columns to users where they are missing, and fills the new
// e-mail column from the legacy contacts text of a user whose text holds exactly one e-mail
// address: that much is unambiguous. Phones are not parsed (a number does not say whether it is
// the work or the mobile one) and an address cannot be told from the rest: the legacy text is
// kept, shown by users show, and a move with the separate fields completes the user (§43).
func (s *DB) addAppendix5Columns(ctx context.Context) error {
	var had int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('users') WHERE name = 'email'`).Scan(&had); err != nil {
		return fmt.Errorf("read the columns of users: %w", err)
	}
	for _, def := range appendix5Columns {
		if err := s.addColumnIfMissing(ctx, "users", def); err != nil {
			return err
		}
	}
	if had > 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT iin, contacts FROM users WHERE contacts <> ''`)
	if err != nil {
		return fmt.Errorf("read the legacy contacts: %w", err)
	}
	found := make(map[string]string)
	for rows.Next() {
		var iin, contacts string
		if err := rows.Scan(&iin, &contacts); err != nil {
			rows.Close()
			return fmt.Errorf("read the legacy contacts: %w", err)
		}
		if e := legacyEmail(contacts); e != "" {
			found[iin] = e
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the legacy contacts: %w", err)
	}
	for iin, e := range found {
		if _, err := s.db.ExecContext(ctx, `UPDATE users SET email = ? WHERE iin = ? AND email = ''`, e, iin); err != nil {
			return fmt.Errorf("move the e-mail of %s out of contacts: %w", iin, err)
		}
	}
	return nil
}

// legacyEmail is the one e-mail address in a legacy contacts text; "" when there is none or more
// than one, which a person must sort out.
func legacyEmail(contacts string) string {
	found := ""
	for _, word := range strings.FieldsFunc(contacts, func(r rune) bool {
		return unicode.IsSpace(r) || r == ',' || r == ';' || r == '<' || r == '>'
	}) {
		word = strings.TrimSuffix(word, ".")
		if _, w, ok := strings.Cut(word, ":"); ok {
			word = w // "e-mail:a@b.kz"
		}
		a, err := mail.ParseAddress(word)
		if err != nil || a.Address != word || !strings.Contains(word[strings.IndexByte(word, '@'):], ".") {
			continue
		}
		if found != "" && found != word {
			return ""
		}
		found = word
	}
	return found
}

// ApplyApplication applies a to the registry in one transaction: it reads the user, computes
// a.Apply, writes the new state and appends the application to the history. Concurrent
// applications serialise (the transaction takes the write lock when it begins). A transition
// that is not allowed returns an error wrapping siobroker.ErrTransition, and nothing is written.
func (s *DB) ApplyApplication(ctx context.Context, a siobroker.Application) (siobroker.User, error) {
	return s.ApplyApplicationIf(ctx, a, nil)
}

// applyInTx applies a inside tx: ApplyApplicationIf's transaction, or the approval of a
// submitted application (ApproveSubmitted), which applies it and records the decision together.
func applyInTx(ctx context.Context, tx *sql.Tx, a siobroker.Application, check func(current siobroker.User, exists bool) error) (siobroker.User, error) {
	current, exists, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE iin = ?`, a.IIN))
	if err != nil {
		return siobroker.User{}, fmt.Errorf("read user %s: %w", a.IIN, err)
	}
	if check != nil {
		if err := check(current, exists); err != nil {
			return siobroker.User{}, fmt.Errorf("%w: %w", siobroker.ErrTransition, err)
		}
	}
	next, err := a.Apply(current, exists)
	if err != nil {
		return siobroker.User{}, fmt.Errorf("%w: %w", siobroker.ErrTransition, err)
	}
	next = normaliseUser(next)
	if err := upsertUser(ctx, tx, next); err != nil {
		return siobroker.User{}, err
	}
	recorded := a.User
	if a.Kind == siobroker.ApplyRegister || a.Kind == siobroker.ApplyMove {
		recorded = next // the fields after the application, as Application.User documents
	}
	js, err := json.Marshal(toUserJSON(recorded))
	if err != nil {
		return siobroker.User{}, fmt.Errorf("encode application: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO user_applications(kind, iin, reason, at, at_ns, applied_by, user_json) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		string(a.Kind), a.IIN, a.Reason, siobroker.FormatTime(a.At), a.At.UnixNano(), a.By, string(js)); err != nil {
		return siobroker.User{}, fmt.Errorf("record application: %w", err)
	}
	return next, nil
}

// ApplyApplicationIf is ApplyApplication with a precondition: check, when not nil, sees the
// user's state inside the transaction, before the application, and refuses it by returning an
// error (wrapped with siobroker.ErrTransition). The §16 block uses it so that a user who made a request a
// moment ago is not blocked for inactivity.
func (s *DB) ApplyApplicationIf(ctx context.Context, a siobroker.Application, check func(current siobroker.User, exists bool) error) (siobroker.User, error) {
	if a.At.IsZero() {
		return siobroker.User{}, fmt.Errorf("%s %s: the application has no time", a.Kind, a.IIN)
	}
	if a.IIN == "" {
		return siobroker.User{}, fmt.Errorf("%s: the application has no IIN", a.Kind)
	}
	var next siobroker.User
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		next, err = applyInTx(ctx, tx, a, check)
		return err
	})
	if err != nil {
		return siobroker.User{}, err
	}
	return next, nil
}

func upsertUser(ctx context.Context, tx *sql.Tx, u siobroker.User) error {
	reports, operator, sanction := boolColumn(u.ReportsRight), boolColumn(u.OperatorRight), boolColumn(u.SanctionRight)
	consentAt, consentNS := timeColumns(u.ConsentAt)
	lastAt, lastNS := timeColumns(u.LastRequest)
	regAt, regNS := timeColumns(u.RegisteredAt)
	if regNS == nil {
		return fmt.Errorf("user %s has no registration time", u.IIN)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO users(iin, full_name, organisation, erdr_code, department, position,
			contacts, role, reports_right, operator_right, status, consent_at, consent_ns, last_request_at, last_request_ns,
			registered_at, registered_ns, work_phone, mobile_phone, email, work_address, sanction_right)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(iin) DO UPDATE SET full_name = excluded.full_name, organisation = excluded.organisation,
			erdr_code = excluded.erdr_code, department = excluded.department, position = excluded.position,
			contacts = excluded.contacts, role = excluded.role, reports_right = excluded.reports_right,
			operator_right = excluded.operator_right,
			status = excluded.status, consent_at = excluded.consent_at, consent_ns = excluded.consent_ns,
			last_request_at = excluded.last_request_at, last_request_ns = excluded.last_request_ns,
			registered_at = excluded.registered_at, registered_ns = excluded.registered_ns,
			work_phone = excluded.work_phone, mobile_phone = excluded.mobile_phone, email = excluded.email,
			work_address = excluded.work_address, sanction_right = excluded.sanction_right`,
		u.IIN, u.FullName, u.Organisation, u.ERDRCode, u.Department, u.Position, u.Contacts, u.Role, reports, operator,
		string(u.Status), consentAt, consentNS, lastAt, lastNS, regAt, regNS,
		u.WorkPhone, u.MobilePhone, u.Email, u.WorkAddress, sanction)
	if err != nil {
		return fmt.Errorf("write user %s: %w", u.IIN, err)
	}
	return nil
}

func boolColumn(b bool) int {
	if b {
		return 1
	}
	return 0
}

// timeColumns returns the text and nanosecond columns of t; NULL for the zero time.
func timeColumns(t time.Time) (text, ns any) {
	if t.IsZero() {
		return nil, nil
	}
	return siobroker.FormatTime(t), t.UnixNano()
}

func fromNS(ns sql.NullInt64) time.Time {
	if !ns.Valid {
		return time.Time{}
	}
	return time.Unix(0, ns.Int64).In(siobroker.Astana)
}

func astana(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.In(siobroker.Astana)
}

// normaliseUser puts the times of u in Astana time, as they are read back.
func normaliseUser(u siobroker.User) siobroker.User {
	u.ConsentAt, u.LastRequest, u.RegisteredAt = astana(u.ConsentAt), astana(u.LastRequest), astana(u.RegisteredAt)
	return u
}

type rowScanner interface {
	Scan(dest ...any) error
}

// scanUser reads one row of userColumns; exists is false when there is no row.
func scanUser(row rowScanner) (u siobroker.User, exists bool, err error) {
	var reports, operator, sanction int
	var status string
	var consent, last, reg sql.NullInt64
	err = row.Scan(&u.IIN, &u.FullName, &u.Organisation, &u.ERDRCode, &u.Department, &u.Position, &u.Contacts,
		&u.Role, &reports, &operator, &status, &consent, &last, &reg,
		&u.WorkPhone, &u.MobilePhone, &u.Email, &u.WorkAddress, &sanction)
	if errors.Is(err, sql.ErrNoRows) {
		return siobroker.User{}, false, nil
	}
	if err != nil {
		return siobroker.User{}, false, err
	}
	u.ReportsRight = reports == 1
	u.OperatorRight = operator == 1
	u.SanctionRight = sanction == 1
	u.Status = siobroker.UserStatus(status)
	u.ConsentAt, u.LastRequest, u.RegisteredAt = fromNS(consent), fromNS(last), fromNS(reg)
	return u, true, nil
}

// User returns the registered user with the IIN; ok is false when there is none.
func (s *DB) User(ctx context.Context, iin string) (siobroker.User, bool, error) {
	stmt, err := s.prepared(ctx, `SELECT `+userColumns+` FROM users WHERE iin = ?`)
	if err != nil {
		return siobroker.User{}, false, err
	}
	u, ok, err := scanUser(stmt.QueryRowContext(ctx, iin))
	if err != nil {
		return siobroker.User{}, false, fmt.Errorf("read user %s: %w", iin, err)
	}
	return u, ok, nil
}

// Users returns every registered user, deleted ones included, ordered by IIN.
func (s *DB) Users(ctx context.Context) ([]siobroker.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY iin`)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	defer rows.Close()
	var users []siobroker.User
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("read users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return users, nil
}

// Applications returns the applications of the user with the IIN, or of everyone when iin is
// "", in the order they were applied.
func (s *DB) Applications(ctx context.Context, iin string) ([]siobroker.Application, error) {
	q := `SELECT id, kind, iin, reason, at_ns, applied_by, user_json FROM user_applications`
	var args []any
	if iin != "" {
		q += ` WHERE iin = ?`
		args = append(args, iin)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read applications: %w", err)
	}
	defer rows.Close()
	var apps []siobroker.Application
	for rows.Next() {
		var a siobroker.Application
		var kind, js string
		var at int64
		if err := rows.Scan(&a.ID, &kind, &a.IIN, &a.Reason, &at, &a.By, &js); err != nil {
			return nil, fmt.Errorf("read applications: %w", err)
		}
		a.Kind = siobroker.ApplicationKind(kind)
		a.At = time.Unix(0, at).In(siobroker.Astana)
		var uj userJSON
		if err := json.Unmarshal([]byte(js), &uj); err != nil {
			return nil, fmt.Errorf("application %d: decode user: %w", a.ID, err)
		}
		if a.User, err = uj.user(); err != nil {
			return nil, fmt.Errorf("application %d: decode user: %w", a.ID, err)
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applications: %w", err)
	}
	return apps, nil
}

// TouchLastRequest records at as the time of the user's last request. An earlier time than the
// one recorded is ignored, so that requests finishing out of order never move the clock back.
func (s *DB) TouchLastRequest(ctx context.Context, iin string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("touch user %s: no time", iin)
	}
	res, err := s.exec(ctx, `UPDATE users SET
			last_request_at = CASE WHEN last_request_ns IS NULL OR last_request_ns < ?2 THEN ?1 ELSE last_request_at END,
			last_request_ns = CASE WHEN last_request_ns IS NULL OR last_request_ns < ?2 THEN ?2 ELSE last_request_ns END
		WHERE iin = ?3`,
		siobroker.FormatTime(at), at.UnixNano(), iin)
	if err != nil {
		return fmt.Errorf("touch user %s: %w", iin, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("touch user %s: not registered", iin)
	}
	return nil
}

// RecordRefusal appends a refusal of the user's request to access_refusals.
func (s *DB) RecordRefusal(ctx context.Context, iin string, code siobroker.Code, reason string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("record refusal of %s: no time", iin)
	}
	if _, err := s.exec(ctx,
		`INSERT INTO access_refusals(iin, code, reason, at, at_ns) VALUES (?, ?, ?, ?, ?)`,
		iin, string(code), reason, siobroker.FormatTime(at), at.UnixNano()); err != nil {
		return fmt.Errorf("record refusal of %s: %w", iin, err)
	}
	return nil
}

// Refusals returns the recorded refusals of the user with the IIN, or of everyone when iin is
// "", in the order they were recorded.
func (s *DB) Refusals(ctx context.Context, iin string) ([]Refusal, error) {
	q := `SELECT id, iin, code, reason, at_ns FROM access_refusals`
	var args []any
	if iin != "" {
		q += ` WHERE iin = ?`
		args = append(args, iin)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read refusals: %w", err)
	}
	defer rows.Close()
	var out []Refusal
	for rows.Next() {
		var r Refusal
		var code string
		var at int64
		if err := rows.Scan(&r.ID, &r.IIN, &code, &r.Reason, &at); err != nil {
			return nil, fmt.Errorf("read refusals: %w", err)
		}
		r.Code = siobroker.Code(code)
		r.At = time.Unix(0, at).In(siobroker.Astana)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read refusals: %w", err)
	}
	return out, nil
}

// userJSON is the form of the user's fields kept with each application. Times are RFC 3339 in
// Astana time with full precision; "" is the zero time.
type userJSON struct {
	IIN           string `json:"iin,omitempty"`
	FullName      string `json:"full_name,omitempty"`
	Organisation  string `json:"organisation,omitempty"`
	ERDRCode      string `json:"erdr_code,omitempty"`
	Department    string `json:"department,omitempty"`
	Position      string `json:"position,omitempty"`
	WorkPhone     string `json:"work_phone,omitempty"`
	MobilePhone   string `json:"mobile_phone,omitempty"`
	Email         string `json:"email,omitempty"`
	WorkAddress   string `json:"work_address,omitempty"`
	Contacts      string `json:"contacts,omitempty"` // legacy: the one text of the applications before the fields above
	Role          int    `json:"role,omitempty"`
	ReportsRight  bool   `json:"reports_right,omitempty"`
	SanctionRight bool   `json:"sanction_right,omitempty"`
	OperatorRight bool   `json:"operator_right,omitempty"`
	Status        string `json:"status,omitempty"`
	ConsentAt     string `json:"consent_at,omitempty"`
	LastRequest   string `json:"last_request,omitempty"`
	RegisteredAt  string `json:"registered_at,omitempty"`
}

func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(siobroker.Astana).Format(time.RFC3339Nano)
}

func parseJSONTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.In(siobroker.Astana), nil
}

func toUserJSON(u siobroker.User) userJSON {
	return userJSON{
		IIN: u.IIN, FullName: u.FullName, Organisation: u.Organisation, ERDRCode: u.ERDRCode,
		Department: u.Department, Position: u.Position, Contacts: u.Contacts, Role: u.Role,
		WorkPhone: u.WorkPhone, MobilePhone: u.MobilePhone, Email: u.Email, WorkAddress: u.WorkAddress,
		ReportsRight: u.ReportsRight, SanctionRight: u.SanctionRight, OperatorRight: u.OperatorRight, Status: string(u.Status),
		ConsentAt: jsonTime(u.ConsentAt), LastRequest: jsonTime(u.LastRequest), RegisteredAt: jsonTime(u.RegisteredAt),
	}
}

func (j userJSON) user() (siobroker.User, error) {
	u := siobroker.User{
		IIN: j.IIN, FullName: j.FullName, Organisation: j.Organisation, ERDRCode: j.ERDRCode,
		Department: j.Department, Position: j.Position, Contacts: j.Contacts, Role: j.Role,
		WorkPhone: j.WorkPhone, MobilePhone: j.MobilePhone, Email: j.Email, WorkAddress: j.WorkAddress,
		ReportsRight: j.ReportsRight, SanctionRight: j.SanctionRight, OperatorRight: j.OperatorRight, Status: siobroker.UserStatus(j.Status),
	}
	var err error
	if u.ConsentAt, err = parseJSONTime(j.ConsentAt); err != nil {
		return u, err
	}
	if u.LastRequest, err = parseJSONTime(j.LastRequest); err != nil {
		return u, err
	}
	if u.RegisteredAt, err = parseJSONTime(j.RegisteredAt); err != nil {
		return u, err
	}
	return u, nil
}
