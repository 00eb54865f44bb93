package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testIIN(t *testing.T, prefix string) string {
	t.Helper()
	iin, ok := siobroker.CompleteIIN(prefix)
	if !ok {
		t.Fatalf("no IIN for prefix %s", prefix)
	}
	return iin
}

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.UTC)

func registerApp(iin string, at time.Time) siobroker.Application {
	return siobroker.Application{
		Kind: siobroker.ApplyRegister, IIN: iin, Reason: "заявка № 1", At: at, By: "operator",
		User: siobroker.User{
			FullName: "ИВАНОВ ИВАН", Organisation: "Прокуратура", ERDRCode: "001", Department: "Отдел",
			Position: "прокурор", Contacts: "+7 700 000 00 00", Role: 1, ReportsRight: true, ConsentAt: at,
		},
	}
}

func TestApplyApplicationPersistsTransitions(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	iin := testIIN(t, "75031230045")

	if _, ok, err := db.User(ctx, iin); err != nil || ok {
		t.Fatalf("User before registration = %v, %v", ok, err)
	}
	u, err := db.ApplyApplication(ctx, registerApp(iin, t0))
	if err != nil {
		t.Fatal(err)
	}
	if u.Status != siobroker.UserActive || !u.RegisteredAt.Equal(t0) || u.IIN != iin {
		t.Fatalf("registered user = %+v", u)
	}
	got, ok, err := db.User(ctx, iin)
	if err != nil || !ok {
		t.Fatalf("User = %v, %v", ok, err)
	}
	if got != u {
		t.Fatalf("read back\n %+v\nwant\n %+v", got, u)
	}
	if got.RegisteredAt.Location() != siobroker.Astana {
		t.Fatalf("times are not in Astana time: %v", got.RegisteredAt)
	}

	// A transition that is not allowed writes nothing.
	_, err = db.ApplyApplication(ctx, registerApp(iin, t0.Add(time.Hour)))
	if !errors.Is(err, siobroker.ErrTransition) {
		t.Fatalf("second register: err = %v, want ErrTransition", err)
	}
	unblock := siobroker.Application{Kind: siobroker.ApplyUnblock, IIN: iin, Reason: "x", At: t0.Add(time.Hour), By: "op"}
	if _, err := db.ApplyApplication(ctx, unblock); !errors.Is(err, siobroker.ErrTransition) {
		t.Fatalf("unblock of an active user: err = %v", err)
	}

	steps := []struct {
		kind siobroker.ApplicationKind
		want siobroker.UserStatus
	}{
		{siobroker.ApplyBlock, siobroker.UserBlocked},
		{siobroker.ApplyUnblock, siobroker.UserActive},
		{siobroker.ApplyMove, siobroker.UserActive},
		{siobroker.ApplyDelete, siobroker.UserDeleted},
		{siobroker.ApplyRegister, siobroker.UserActive},
	}
	for i, st := range steps {
		a := siobroker.Application{Kind: st.kind, IIN: iin, Reason: "reason " + string(st.kind), At: t0.Add(time.Duration(i+2) * time.Hour), By: "op"}
		if st.kind == siobroker.ApplyMove || st.kind == siobroker.ApplyRegister {
			a.User = registerApp(iin, a.At).User
			a.User.Position = fmt.Sprintf("должность %d", i)
		}
		u, err := db.ApplyApplication(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", st.kind, err)
		}
		got, _, _ := db.User(ctx, iin)
		if u.Status != st.want || got != u {
			t.Fatalf("%s: returned %+v, stored %+v, want status %s", st.kind, u, got, st.want)
		}
		if st.kind == siobroker.ApplyUnblock && !got.LastRequest.Equal(a.At) {
			t.Fatalf("unblock did not restart the clock: %v", got.LastRequest)
		}
	}

	apps, err := db.Applications(ctx, iin)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1+len(steps) {
		t.Fatalf("%d applications recorded, want %d (refused ones are not recorded)", len(apps), 1+len(steps))
	}
	if apps[0].Kind != siobroker.ApplyRegister || apps[0].Reason != "заявка № 1" || apps[0].By != "operator" ||
		!apps[0].At.Equal(t0) || apps[0].User.FullName != "ИВАНОВ ИВАН" || !apps[0].User.ConsentAt.Equal(t0) {
		t.Fatalf("first application = %+v", apps[0])
	}
	if apps[3].Kind != siobroker.ApplyMove || apps[3].User.Position != "должность 2" {
		t.Fatalf("move application = %+v", apps[3])
	}
	for i := 1; i < len(apps); i++ {
		if apps[i].ID <= apps[i-1].ID {
			t.Fatal("applications are not in order")
		}
	}
	all, err := db.Applications(ctx, "")
	if err != nil || len(all) != len(apps) {
		t.Fatalf("Applications(\"\") = %d, %v", len(all), err)
	}
	if other, err := db.Applications(ctx, testIIN(t, "82060540117")); err != nil || len(other) != 0 {
		t.Fatalf("applications of another user = %d, %v", len(other), err)
	}
}

func TestApplyApplicationNeedsTime(t *testing.T) {
	db := openTest(t)
	a := registerApp(testIIN(t, "75031230045"), time.Time{})
	if _, err := db.ApplyApplication(context.Background(), a); err == nil {
		t.Fatal("an application without a time was applied")
	}
}

func TestApplyApplicationIfPrecondition(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	iin := testIIN(t, "75031230045")
	if _, err := db.ApplyApplication(ctx, registerApp(iin, t0)); err != nil {
		t.Fatal(err)
	}
	block := siobroker.Application{Kind: siobroker.ApplyBlock, IIN: iin, Reason: "x", At: t0, By: "system"}
	_, err := db.ApplyApplicationIf(ctx, block, func(siobroker.User, bool) error { return errors.New("not now") })
	if !errors.Is(err, siobroker.ErrTransition) || !strings.Contains(err.Error(), "not now") {
		t.Fatalf("err = %v", err)
	}
	if u, _, _ := db.User(ctx, iin); u.Status != siobroker.UserActive {
		t.Fatal("a refused precondition changed the user")
	}
}

func TestUsersAndTouch(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	a, b := testIIN(t, "82060540117"), testIIN(t, "75031230045")
	for _, iin := range []string{a, b} {
		if _, err := db.ApplyApplication(ctx, registerApp(iin, t0)); err != nil {
			t.Fatal(err)
		}
	}
	users, err := db.Users(ctx)
	if err != nil || len(users) != 2 || users[0].IIN != b || users[1].IIN != a {
		t.Fatalf("Users = %+v, %v", users, err)
	}
	later := t0.Add(48 * time.Hour)
	if err := db.TouchLastRequest(ctx, a, later); err != nil {
		t.Fatal(err)
	}
	// An earlier request finishing late does not move the clock back.
	if err := db.TouchLastRequest(ctx, a, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	u, _, _ := db.User(ctx, a)
	if !u.LastRequest.Equal(later) {
		t.Fatalf("LastRequest = %v, want %v", u.LastRequest, later)
	}
	if err := db.TouchLastRequest(ctx, testIIN(t, "90011430203"), later); err == nil {
		t.Fatal("touching an unknown user succeeded")
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	iin := testIIN(t, "75031230045")
	if err := db.RecordRefusal(ctx, iin, siobroker.CodeUserUnknown, "not registered", t0); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordRefusal(ctx, "000000000000", siobroker.CodeUserBlocked, "blocked", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	rs, err := db.Refusals(ctx, iin)
	if err != nil || len(rs) != 1 {
		t.Fatalf("Refusals = %+v, %v", rs, err)
	}
	if r := rs[0]; r.IIN != iin || r.Code != siobroker.CodeUserUnknown || r.Reason != "not registered" || !r.At.Equal(t0) {
		t.Fatalf("refusal = %+v", r)
	}
	if all, err := db.Refusals(ctx, ""); err != nil || len(all) != 2 {
		t.Fatalf("all refusals = %d, %v", len(all), err)
	}
}

func TestHistoryTablesAreAppendOnly(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	iin := testIIN(t, "75031230045")
	if _, err := db.ApplyApplication(ctx, registerApp(iin, t0)); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordRefusal(ctx, iin, siobroker.CodeNoConsent, "x", t0); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE user_applications SET reason = 'forged'`,
		`DELETE FROM user_applications`,
		`UPDATE access_refusals SET code = 'none'`,
		`DELETE FROM access_refusals`,
	} {
		_, err := db.db.ExecContext(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the trigger's refusal", q, err)
		}
	}
	apps, _ := db.Applications(ctx, iin)
	rs, _ := db.Refusals(ctx, iin)
	if len(apps) != 1 || apps[0].Reason != "заявка № 1" || len(rs) != 1 || rs[0].Code != siobroker.CodeNoConsent {
		t.Fatalf("history changed: %+v %+v", apps, rs)
	}
}

// Concurrent applications serialise: of many concurrent registrations of one IIN exactly one
// succeeds, and concurrent block/unblock pairs leave a history that replays to the stored state.
func TestApplyApplicationConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	iin := testIIN(t, "75031230045")

	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := db.ApplyApplication(ctx, registerApp(iin, t0.Add(time.Duration(i)*time.Millisecond)))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, siobroker.ErrTransition):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 15 {
		t.Fatalf("%d registrations succeeded, %d refused; want 1 and 15", ok.Load(), refused.Load())
	}

	var blocks atomic.Int32
	for i := range 32 {
		kind := siobroker.ApplyBlock
		if i%2 == 1 {
			kind = siobroker.ApplyUnblock
		}
		wg.Go(func() {
			_, err := db.ApplyApplication(ctx, siobroker.Application{Kind: kind, IIN: iin, Reason: "r", At: t0.Add(time.Hour), By: "op"})
			if err != nil && !errors.Is(err, siobroker.ErrTransition) {
				t.Error(err)
			}
			if err == nil && kind == siobroker.ApplyBlock {
				blocks.Add(1)
			}
		})
	}
	wg.Wait()
	apps, err := db.Applications(ctx, iin)
	if err != nil {
		t.Fatal(err)
	}
	// Replaying the recorded history must give the stored state: no lost update.
	var cur siobroker.User
	exists := false
	for _, a := range apps {
		next, err := a.Apply(cur, exists)
		if err != nil {
			t.Fatalf("history does not replay at application %d: %v", a.ID, err)
		}
		cur, exists = next, true
	}
	stored, _, _ := db.User(ctx, iin)
	if cur.Status != stored.Status {
		t.Fatalf("replayed status %s, stored %s", cur.Status, stored.Status)
	}
	if blocks.Load() == 0 {
		t.Fatal("no block succeeded")
	}
}

// TestOperatorRightAddedToAnOldStore: a store created before the operator right existed gets the
// column when it is opened, its users without the right, and the right is kept from then on.
func TestOperatorRightAddedToAnOldStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	iin := testIIN(t, "75031230045")

	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	old := &DB{db: raw}
	if err := old.migrateNumbered(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('users') WHERE name = 'operator_right'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the numbered migrations made operator_right already (%d, %v): this test no longer builds an old store", n, err)
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO users(iin, full_name, organisation, erdr_code, department, position, contacts,
			role, reports_right, status, registered_at, registered_ns) VALUES (?, 'ИВАНОВ ИВАН', 'Прокуратура', '', '', '', '', 1, 1, 'active', ?, ?)`,
		iin, siobroker.FormatTime(t0), t0.UnixNano()); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatalf("open an old store: %v", err)
	}
	u, ok, err := db.User(ctx, iin)
	if err != nil || !ok {
		t.Fatalf("User = %v, %v", ok, err)
	}
	if u.OperatorRight || !u.ReportsRight || u.FullName != "ИВАНОВ ИВАН" {
		t.Fatalf("user of the old store = %+v, want its fields and no operator right", u)
	}
	u.OperatorRight = true
	if _, err := db.ApplyApplication(ctx, siobroker.Application{Kind: siobroker.ApplyMove, IIN: iin, Reason: "оператор",
		At: t0.Add(time.Minute), By: "test", User: u}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openDir(t, dir) // the column is there now: opening again must not add it twice
	if u, _, err := db.User(ctx, iin); err != nil || !u.OperatorRight {
		t.Fatalf("after the move and a reopen: operator right %v, %v", u.OperatorRight, err)
	}
	apps, err := db.Applications(ctx, iin)
	if err != nil || len(apps) != 1 || !apps[0].User.OperatorRight {
		t.Fatalf("the move application does not record the operator right: %+v, %v", apps, err)
	}
	if _, err := db.db.ExecContext(ctx, `UPDATE users SET operator_right = 2 WHERE iin = ?`, iin); err == nil {
		t.Error("operator_right accepted 2: the CHECK constraint is missing")
	}
}

func openDir(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAppendix5FieldsAddedToAnOldStore: a store whose users have one free-text contacts field
// (before the separate fields of App. 5) gets the work phone, mobile phone, e-mail, work address
// and "Санкционирование" columns when it is opened; the old text is kept whole, and the e-mail is
// moved out of it where the text holds exactly one address. Submitted applications of before
// read as unsigned.
func TestAppendix5FieldsAddedToAnOldStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	one, two, none := testIIN(t, "75031230045"), testIIN(t, "80010130011"), testIIN(t, "90020240012")
	contacts := map[string]string{
		one:  "раб. 8 (7172) 71-00-00, моб. +7 701 000 00 00, e-mail:ivanov@prokuratura.kz, ул. Бейбитшилик 41",
		two:  "petrov@mvd.kz; petrov.private@mail.kz",
		none: "тел. 71-00-00",
	}
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	old := &DB{db: raw}
	if err := old.migrateNumbered(ctx); err != nil {
		t.Fatal(err)
	}
	for iin, c := range contacts {
		if _, err := raw.ExecContext(ctx, `INSERT INTO users(iin, full_name, organisation, erdr_code, department, position, contacts,
				role, reports_right, status, registered_at, registered_ns) VALUES (?, 'ИВАНОВ ИВАН', 'Прокуратура', '', '', '', ?, 1, 1, 'active', ?, ?)`,
			iin, c, siobroker.FormatTime(t0), t0.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO submitted_applications(kind, iin, reason, user_json, submitted_ns, submitted_by,
			deadline_ns, status) VALUES ('move', ?, 'перевод', '{}', ?, 'operator', ?, 'pending')`, one, t0.UnixNano(), t0.Add(24*time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db := openDir(t, dir)
	want := map[string]string{one: "ivanov@prokuratura.kz", two: "", none: ""}
	for iin, email := range want {
		u, ok, err := db.User(ctx, iin)
		if err != nil || !ok {
			t.Fatalf("User(%s) = %v, %v", iin, ok, err)
		}
		if u.Contacts != contacts[iin] || u.Email != email || u.WorkPhone != "" || u.SanctionRight {
			t.Fatalf("user %s after the upgrade: contacts %q email %q phone %q sanction %v; want the old text kept and email %q",
				iin, u.Contacts, u.Email, u.WorkPhone, u.SanctionRight, email)
		}
	}
	sas, err := db.SubmittedApplications(ctx, false)
	if err != nil || len(sas) != 1 || sas[0].Signed() {
		t.Fatalf("the application of before: %+v, %v", sas, err)
	}
	// A move completing the fields is kept; the legacy text stays beside them.
	u, _, _ := db.User(ctx, one)
	u.WorkPhone, u.MobilePhone, u.WorkAddress, u.SanctionRight = "+7 7172 710000", "+7 701 0000000", "г. Астана", true
	if _, err := db.ApplyApplication(ctx, siobroker.Application{Kind: siobroker.ApplyMove, IIN: one, Reason: "App. 5",
		At: t0.Add(time.Minute), By: "test", User: u}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDir(t, dir) // opening again adds nothing twice and parses nothing again
	if got, _, err := db.User(ctx, one); err != nil || got.MobilePhone != "+7 701 0000000" || !got.SanctionRight || got.Contacts != contacts[one] {
		t.Fatalf("after the move and a reopen: %+v, %v", got, err)
	}
	apps, err := db.Applications(ctx, one)
	if err != nil || len(apps) != 1 || apps[0].User.WorkAddress != "г. Астана" || !apps[0].User.SanctionRight {
		t.Fatalf("the move's recorded fields: %+v, %v", apps, err)
	}
}
