package users

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

const day = 24 * time.Hour

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, siobroker.Astana)

func setup(t *testing.T) (*Registry, *sqlite.DB, *testclock.Clock) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := testclock.New(t0)
	return New(db, clock, nil), db, clock
}

func iin(t *testing.T, prefix string) string {
	t.Helper()
	s, ok := siobroker.CompleteIIN(prefix)
	if !ok {
		t.Fatalf("no IIN for %s", prefix)
	}
	return s
}

func register(t *testing.T, r *Registry, id string, consent bool) {
	t.Helper()
	u := siobroker.User{FullName: "ИВАНОВ ИВАН", Organisation: "Прокуратура", Role: 1}
	if consent {
		u.ConsentAt = r.clock.Now()
	}
	if _, err := r.Apply(context.Background(), siobroker.Application{
		Kind: siobroker.ApplyRegister, IIN: id, Reason: "заявка", By: "operator", User: u,
	}); err != nil {
		t.Fatal(err)
	}
}

func apply(t *testing.T, r *Registry, kind siobroker.ApplicationKind, id string) {
	t.Helper()
	if _, err := r.Apply(context.Background(), siobroker.Application{Kind: kind, IIN: id, Reason: "по заявке", By: "operator"}); err != nil {
		t.Fatalf("%s %s: %v", kind, id, err)
	}
}

// wantRefused checks that err carries code and that the refusal is the user's last recorded one.
func wantRefused(t *testing.T, db *sqlite.DB, id string, err error, code siobroker.Code, refusals int) {
	t.Helper()
	var e *siobroker.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("Authorize(%s) = %v, want %s", id, err, code)
	}
	rs, rerr := db.Refusals(context.Background(), id)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(rs) != refusals {
		t.Fatalf("%d refusals recorded for %s, want %d", len(rs), id, refusals)
	}
	if last := rs[len(rs)-1]; last.Code != code || last.Reason == "" || last.At.IsZero() {
		t.Fatalf("recorded refusal = %+v, want %s", last, code)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	ctx := context.Background()
	r, db, _ := setup(t)
	active, blocked, deleted, noConsent, unknown :=
		iin(t, "75031230045"), iin(t, "82060540117"), iin(t, "90011430203"), iin(t, "88112940332"), iin(t, "79082730418")
	register(t, r, active, true)
	register(t, r, blocked, true)
	register(t, r, deleted, true)
	register(t, r, noConsent, false)
	apply(t, r, siobroker.ApplyBlock, blocked)
	apply(t, r, siobroker.ApplyDelete, deleted)

	_, err := r.Authorize(ctx, unknown)
	wantRefused(t, db, unknown, err, siobroker.CodeUserUnknown, 1)
	_, err = r.Authorize(ctx, blocked)
	wantRefused(t, db, blocked, err, siobroker.CodeUserBlocked, 1)
	_, err = r.Authorize(ctx, deleted)
	wantRefused(t, db, deleted, err, siobroker.CodeUserDeleted, 1)
	_, err = r.Authorize(ctx, noConsent)
	wantRefused(t, db, noConsent, err, siobroker.CodeNoConsent, 1)

	appsBefore, _ := db.Applications(ctx, "")
	u, err := r.Authorize(ctx, active)
	if err != nil || u.IIN != active || u.Role != 1 {
		t.Fatalf("Authorize(active) = %+v, %v", u, err)
	}
	// Success writes nothing: no refusal, no application, no touch.
	if rs, _ := db.Refusals(ctx, active); len(rs) != 0 {
		t.Fatalf("refusals recorded for an authorised user: %+v", rs)
	}
	if appsAfter, _ := db.Applications(ctx, ""); len(appsAfter) != len(appsBefore) {
		t.Fatal("Authorize wrote an application")
	}
	if u, _, _ := db.User(ctx, active); !u.LastRequest.IsZero() {
		t.Fatal("Authorize touched the user")
	}
	if err := r.Touch(ctx, siobroker.User{IIN: active}); err != nil {
		t.Fatal(err)
	}
	if u, _, _ := db.User(ctx, active); !u.LastRequest.Equal(t0) {
		t.Fatalf("LastRequest after Touch = %v", u.LastRequest)
	}
}

// §13, §45: a block takes effect on the very next request.
func TestBlockTakesEffectAtOnce(t *testing.T) {
	ctx := context.Background()
	r, db, _ := setup(t)
	id := iin(t, "75031230045")
	register(t, r, id, true)
	if _, err := r.Authorize(ctx, id); err != nil {
		t.Fatal(err)
	}
	apply(t, r, siobroker.ApplyBlock, id)
	_, err := r.Authorize(ctx, id)
	wantRefused(t, db, id, err, siobroker.CodeUserBlocked, 1)
	apply(t, r, siobroker.ApplyUnblock, id)
	if _, err := r.Authorize(ctx, id); err != nil {
		t.Fatalf("after unblock: %v", err)
	}
}

func TestInactivityBlockOnAuthorize(t *testing.T) {
	ctx := context.Background()
	r, db, clock := setup(t)
	id := iin(t, "75031230045")
	register(t, r, id, true)

	clock.Advance(59 * day)
	if _, err := r.Authorize(ctx, id); err != nil {
		t.Fatalf("after 59 days: %v", err)
	}
	if err := r.Touch(ctx, siobroker.User{IIN: id}); err != nil {
		t.Fatal(err)
	}
	// 59 more days after the last request: still active.
	clock.Advance(59 * day)
	if _, err := r.Authorize(ctx, id); err != nil {
		t.Fatalf("59 days after the last request: %v", err)
	}
	clock.Advance(2 * day)
	_, err := r.Authorize(ctx, id)
	wantRefused(t, db, id, err, siobroker.CodeUserBlocked, 1)
	if !strings.Contains(siobroker.ErrorMessage(err), "§16") {
		t.Fatalf("message %q does not cite §16", siobroker.ErrorMessage(err))
	}
	u, _, _ := db.User(ctx, id)
	if u.Status != siobroker.UserBlocked {
		t.Fatalf("status = %s, want blocked", u.Status)
	}
	apps, _ := db.Applications(ctx, id)
	last := apps[len(apps)-1]
	if last.Kind != siobroker.ApplyBlock || last.By != SystemBy || last.Reason != InactivityReason || !last.At.Equal(clock.Now()) {
		t.Fatalf("block application = %+v", last)
	}
	// The next request is refused as blocked too, and no second block is applied.
	_, err = r.Authorize(ctx, id)
	wantRefused(t, db, id, err, siobroker.CodeUserBlocked, 2)
	if apps2, _ := db.Applications(ctx, id); len(apps2) != len(apps) {
		t.Fatal("a second block was applied")
	}
}

func TestInactivitySweepAndUnblock(t *testing.T) {
	ctx := context.Background()
	r, db, clock := setup(t)
	idle, busy, blocked := iin(t, "75031230045"), iin(t, "82060540117"), iin(t, "90011430203")
	register(t, r, idle, true)
	register(t, r, busy, true)
	register(t, r, blocked, true)
	apply(t, r, siobroker.ApplyBlock, blocked)

	clock.Advance(30 * day)
	if err := r.Touch(ctx, siobroker.User{IIN: busy}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(29 * day) // 59 days since registration
	got, err := r.BlockInactive(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("after 59 days BlockInactive = %v, %v; want none", got, err)
	}
	clock.Advance(2 * day) // 61 days
	got, err = r.BlockInactive(ctx)
	if err != nil || len(got) != 1 || got[0] != idle {
		t.Fatalf("after 61 days BlockInactive = %v, %v; want [%s]", got, err, idle)
	}
	if u, _, _ := db.User(ctx, idle); u.Status != siobroker.UserBlocked {
		t.Fatalf("idle user is %s", u.Status)
	}
	if u, _, _ := db.User(ctx, busy); u.Status != siobroker.UserActive {
		t.Fatalf("busy user is %s", u.Status)
	}
	if got, _ := r.BlockInactive(ctx); len(got) != 0 {
		t.Fatalf("a second sweep blocked %v", got)
	}

	// Unblocking restarts the 60-day clock.
	apply(t, r, siobroker.ApplyUnblock, idle)
	if _, err := r.Authorize(ctx, idle); err != nil {
		t.Fatalf("after unblock: %v", err)
	}
	clock.Advance(59 * day)
	if got, _ := r.BlockInactive(ctx); len(got) != 1 || got[0] != busy {
		t.Fatalf("59 days after the unblock, BlockInactive = %v; want only %s", got, busy)
	}
	if _, err := r.Authorize(ctx, idle); err != nil {
		t.Fatalf("59 days after unblock: %v", err)
	}
	clock.Advance(2 * day)
	if got, _ := r.BlockInactive(ctx); len(got) != 1 || got[0] != idle {
		t.Fatalf("61 days after the unblock, BlockInactive = %v", got)
	}
}

// Concurrent Authorize calls of one inactive user apply the §16 block once and all refuse.
func TestInactivityConcurrentAuthorize(t *testing.T) {
	ctx := context.Background()
	r, db, clock := setup(t)
	id := iin(t, "75031230045")
	register(t, r, id, true)
	clock.Advance(61 * day)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := r.Authorize(ctx, id); siobroker.ErrorCode(err) != siobroker.CodeUserBlocked {
				t.Errorf("Authorize = %v, want blocked", err)
			}
		})
	}
	wg.Wait()
	apps, _ := db.Applications(ctx, id)
	if len(apps) != 2 {
		t.Fatalf("%d applications, want register and one block", len(apps))
	}
	if rs, _ := db.Refusals(ctx, id); len(rs) != 8 {
		t.Fatalf("%d refusals recorded, want 8", len(rs))
	}
}

func TestApplyValidates(t *testing.T) {
	ctx := context.Background()
	r, _, _ := setup(t)
	good := siobroker.User{FullName: "X", Organisation: "Y", Role: 1}
	cases := map[string]siobroker.Application{
		"bad IIN":      {Kind: siobroker.ApplyRegister, IIN: "750312300450", Reason: "r", User: good},
		"role 0":       {Kind: siobroker.ApplyRegister, IIN: iin(t, "75031230045"), Reason: "r", User: siobroker.User{FullName: "X", Organisation: "Y"}},
		"role 20":      {Kind: siobroker.ApplyRegister, IIN: iin(t, "75031230045"), Reason: "r", User: siobroker.User{FullName: "X", Organisation: "Y", Role: 20}},
		"no name":      {Kind: siobroker.ApplyRegister, IIN: iin(t, "75031230045"), Reason: "r", User: siobroker.User{Organisation: "Y", Role: 1}},
		"no reason":    {Kind: siobroker.ApplyRegister, IIN: iin(t, "75031230045"), User: good},
		"block absent": {Kind: siobroker.ApplyBlock, IIN: iin(t, "75031230045"), Reason: "r"},
	}
	for name, a := range cases {
		if _, err := r.Apply(ctx, a); err == nil {
			t.Errorf("%s: applied", name)
		}
	}
}

func parseFile(t *testing.T, name string) ([]siobroker.Application, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "users", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ParseImport(f, strings.TrimPrefix(filepath.Ext(name), "."))
}

func TestParseImportGood(t *testing.T) {
	apps, err := parseFile(t, "users.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 3 {
		t.Fatalf("%d applications, want 3", len(apps))
	}
	a := apps[1]
	if a.Kind != siobroker.ApplyRegister || a.IIN != "911204506231" || a.User.FullName != "ОМАРОВА САУЛЕ" ||
		a.User.Contacts != "+7 717 200 00 02, s.omarova@example.kz" || a.User.Role != 2 || a.User.ReportsRight ||
		!a.User.ConsentAt.Equal(time.Date(2026, 1, 16, 11, 30, 0, 0, siobroker.Astana)) {
		t.Fatalf("row 2 = %+v", a)
	}
	if !apps[0].User.ReportsRight || !apps[2].User.ConsentAt.IsZero() || apps[2].User.Role != 15 {
		t.Fatalf("rows 1, 3 = %+v / %+v", apps[0], apps[2])
	}

	apps, err = parseFile(t, "users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[0].IIN != "880818308450" || apps[0].User.ERDRCode != "04001" || !apps[0].User.ReportsRight ||
		apps[0].User.Role != 3 || !apps[0].User.ConsentAt.Equal(time.Date(2026, 2, 1, 9, 0, 0, 0, siobroker.Astana)) ||
		apps[1].User.Role != 4 || !apps[1].User.ConsentAt.IsZero() || apps[0].User.OperatorRight || !apps[1].User.OperatorRight {
		t.Fatalf("YAML = %+v", apps)
	}
	for _, a := range apps {
		if a.User.OperatorRight != (a.IIN == "950505509564") {
			t.Errorf("YAML %s: operator right %v", a.IIN, a.User.OperatorRight)
		}
	}
}

// TestParseImportOperatorRight: the operator_right column is optional in CSV (users.csv has none:
// no one gets the right) and, when given, is read like reports_right.
func TestParseImportOperatorRight(t *testing.T) {
	apps, err := parseFile(t, "users.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		if a.User.OperatorRight {
			t.Errorf("%s has the operator right from a file without the column", a.IIN)
		}
	}
	const header = "iin,full_name,organisation,role,operator_right\n"
	apps, err = ParseImport(strings.NewReader(header+"850101305125,КАСЫМОВ АРМАН,КПСиСУ,1,да\n911204506231,ОМАРОВА САУЛЕ,ДП,2,\n"), "csv")
	if err != nil || len(apps) != 2 || !apps[0].User.OperatorRight || apps[1].User.OperatorRight {
		t.Fatalf("CSV with operator_right = %+v, %v", apps, err)
	}
	_, err = ParseImport(strings.NewReader(header+"850101305125,КАСЫМОВ АРМАН,КПСиСУ,1,maybe\n"), "csv")
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "operator_right") {
		t.Fatalf("a bad operator_right: %v", err)
	}
}

func TestParseImportBadRows(t *testing.T) {
	apps, err := parseFile(t, "bad.csv")
	if len(apps) != 1 || apps[0].IIN != "850101305125" {
		t.Fatalf("valid rows = %+v", apps)
	}
	if err == nil {
		t.Fatal("no error for the bad rows")
	}
	msg := err.Error()
	for _, want := range []string{
		"line 3: iin", "line 4: full_name is required", "line 5: role must be 1..19",
		"line 6: consent_at", "line 7: organisation is required; reports_right",
		"line 8: IIN 850101305125 is given again (first on line 2)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}

	apps, err = parseFile(t, "bad.yaml")
	if len(apps) != 1 || apps[0].IIN != "880818308450" {
		t.Fatalf("valid YAML items = %+v", apps)
	}
	if err == nil {
		t.Fatal("no error for the bad items")
	}
	msg = err.Error()
	for _, want := range []string{"item 2 (line 6): iin", "item 3 (line 10): role must be 1..19", `item 4 (line 14): unknown key "rank" on line 18`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}

	for _, c := range []struct{ format, text, want string }{
		{"csv", "", "empty"},
		{"csv", "iin,full_name,organisation,rank\n", `unknown column "rank"`},
		{"csv", "iin,full_name,role\n", `"organisation" is missing`},
		{"yaml", "people: []\n", "not found"},
		{"xml", "", "unknown format"},
	} {
		_, err := ParseImport(strings.NewReader(c.text), c.format)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: err = %v, want %q", c.format, c.text, err, c.want)
		}
	}
}

func TestImportIdempotent(t *testing.T) {
	ctx := context.Background()
	r, db, clock := setup(t)
	apps, err := parseFile(t, "users.csv")
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Import(ctx, apps, "import")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Action != ImportRegistered {
			t.Fatalf("first import: %+v", x)
		}
	}
	u, ok, _ := db.User(ctx, "850101305125")
	if !ok || u.Status != siobroker.UserActive || !u.ReportsRight || u.Organisation != "Генеральная прокуратура РК" {
		t.Fatalf("imported user = %+v", u)
	}
	n1, _ := db.Applications(ctx, "")

	clock.Advance(time.Hour)
	res, err = r.Import(ctx, apps, "import")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Action != ImportUnchanged {
			t.Fatalf("second import: %+v", x)
		}
	}
	if n2, _ := db.Applications(ctx, ""); len(n2) != len(n1) {
		t.Fatalf("re-import wrote %d applications", len(n2)-len(n1))
	}

	// A changed field is a move; a blocked user stays blocked; a deleted one is registered again.
	apply(t, r, siobroker.ApplyBlock, "911204506231")
	apply(t, r, siobroker.ApplyDelete, "700707607343")
	apps[0].User.Position = "старший прокурор"
	apps[1].User.Department = "Другое управление"
	res, err = r.Import(ctx, apps, "import")
	if err != nil {
		t.Fatal(err)
	}
	want := []ImportAction{ImportMoved, ImportMoved, ImportRegistered}
	for i, x := range res {
		if x.Action != want[i] {
			t.Fatalf("row %d: %+v, want %s", i, x, want[i])
		}
	}
	if u, _, _ := db.User(ctx, "850101305125"); u.Position != "старший прокурор" || u.Status != siobroker.UserActive {
		t.Fatalf("moved user = %+v", u)
	}
	if u, _, _ := db.User(ctx, "911204506231"); u.Status != siobroker.UserBlocked || u.Department != "Другое управление" {
		t.Fatalf("blocked user after import = %+v", u)
	}
	all, _ := db.Applications(ctx, "850101305125")
	if last := all[len(all)-1]; last.Kind != siobroker.ApplyMove || last.By != "import" || last.Reason != "import" {
		t.Fatalf("last application = %+v", last)
	}
	// The operator right alone is a change too.
	apps[0].User.OperatorRight = true
	if res, err = r.Import(ctx, apps[:1], "import"); err != nil || res[0].Action != ImportMoved {
		t.Fatalf("granting the operator right by import: %+v, %v", res, err)
	}
	if u, _, _ := db.User(ctx, "850101305125"); !u.OperatorRight {
		t.Fatalf("user after granting the operator right = %+v", u)
	}

	// Rows that fail are reported, the others applied.
	bad := []siobroker.Application{
		{Kind: siobroker.ApplyRegister, IIN: "880818308450", User: siobroker.User{FullName: "A", Organisation: "B", Role: 3}},
		{Kind: siobroker.ApplyRegister, IIN: "950505509564", User: siobroker.User{FullName: "A", Organisation: "B", Role: 99}},
	}
	res, err = r.Import(ctx, bad, "import")
	if err == nil || !strings.Contains(err.Error(), "950505509564") || res[0].Action != ImportRegistered || res[1].Action != ImportFailed {
		t.Fatalf("partly bad import: %+v, %v", res, err)
	}
}

func TestRegisterMissingDemoUsers(t *testing.T) {
	ctx := context.Background()
	r, db, _ := setup(t)
	m := &devpki.Manifest{Users: []devpki.User{
		{IIN: iin(t, "75031230045"), Name: "ИВАНОВ ИВАН", Role: 1, Status: devpki.StatusValid},
		{IIN: iin(t, "82060540117"), Name: "ПЕТРОВА АЙГЕРИМ", Role: 2, Status: devpki.StatusValid},
		{IIN: iin(t, "88112940332"), Name: "АХМЕТОВА ДИНАРА", Role: 10, Status: devpki.StatusRevoked},
	}}
	if err := r.RegisterMissing(ctx, m.Registrations(t0)); err != nil {
		t.Fatal(err)
	}
	for _, du := range m.Users {
		u, err := r.Authorize(ctx, du.IIN)
		if err != nil {
			t.Fatalf("demo user %s: %v", du.IIN, err)
		}
		if u.Organisation != devpki.DemoOrganisation || u.FullName != du.Name || u.Role != du.Role ||
			u.ReportsRight != (du.Role == 1) || u.OperatorRight != (du.Role == 1) || !u.ConsentAt.Equal(t0) {
			t.Fatalf("demo user = %+v", u)
		}
	}
	// Seeding again changes nothing, and does not undo an operator's block.
	apply(t, r, siobroker.ApplyBlock, m.Users[1].IIN)
	before, _ := db.Applications(ctx, "")
	if err := r.RegisterMissing(ctx, m.Registrations(t0)); err != nil {
		t.Fatal(err)
	}
	if after, _ := db.Applications(ctx, ""); len(after) != len(before) {
		t.Fatal("re-seeding wrote applications")
	}
	if u, _, _ := db.User(ctx, m.Users[1].IIN); u.Status != siobroker.UserBlocked {
		t.Fatal("re-seeding unblocked a user")
	}
}

// Touch writes the last request again only when the recorded one is LastRequestResolution old:
// the §16 clock runs in days, and a busy user must not cost a transaction per request.
func TestTouchWithinResolution(t *testing.T) {
	ctx := context.Background()
	r, db, clock := setup(t)
	id := iin(t, "75031230045")
	register(t, r, id, true)
	lastRequest := func() time.Time {
		t.Helper()
		u, _, err := db.User(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u.LastRequest
	}
	touch := func() {
		t.Helper()
		u, err := r.Authorize(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Touch(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	touch()
	first := clock.Now()
	if !lastRequest().Equal(first) {
		t.Fatalf("first request: last request %v, want %v", lastRequest(), first)
	}
	clock.Advance(LastRequestResolution / 2)
	touch()
	if !lastRequest().Equal(first) {
		t.Fatalf("a request within the resolution rewrote the last request: %v", lastRequest())
	}
	clock.Advance(LastRequestResolution / 2)
	touch()
	if !lastRequest().Equal(clock.Now()) {
		t.Fatalf("a request a resolution later: last request %v, want %v", lastRequest(), clock.Now())
	}
}
