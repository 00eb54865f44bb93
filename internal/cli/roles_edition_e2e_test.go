package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/sqlite"
)

// storeOf2024 makes, in a new data directory, a store whose users were registered under the 2024
// wording of Appendix 1 (21 rows): the store records edition 2024, and its users hold 2024 rows.
func storeOf2024(t *testing.T, roles map[string]int) string {
	t.Helper()
	ctx := context.Background()
	data := t.TempDir()
	db, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, siobroker.Astana)
	if got, err := db.RecordRolesEdition(ctx, "2024", "test: a registry of 2024", at); err != nil || got != "2024" {
		t.Fatalf("RecordRolesEdition = %q, %v", got, err)
	}
	for iin, role := range roles {
		u := siobroker.User{FullName: "Пользователь " + iin, Organisation: "ДП", Role: role, ConsentAt: at}
		if _, err := db.ApplyApplication(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: iin, Reason: "2024", At: at, By: "test", User: u}); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

func iinFor(t *testing.T, prefix string) string {
	t.Helper()
	iin, ok := siobroker.CompleteIIN(prefix)
	if !ok {
		t.Fatalf("no IIN for %s", prefix)
	}
	return iin
}

// TestRolesEditionMigration: a store of the 2024 numbering refuses to start under the 2026 rights
// and refuses the users commands; migrate-roles shows its plan and changes nothing, refuses while
// a user holds a row the 2026 wording does not have, and once the operator has decided that row
// in the mapping, applies the plan, journals it, and the broker starts.
func TestRolesEditionMigration(t *testing.T) {
	ctx := context.Background()
	police, duty, prosecutor, hr := iinFor(t, "80010130001"), iinFor(t, "80010130002"), iinFor(t, "80010130003"), iinFor(t, "80010130004")
	data := storeOf2024(t, map[string]int{police: 19, duty: 21, prosecutor: 1, hr: 20})

	if _, err := startE2E(data, siobroker.SystemClock{}); !errors.Is(err, app.ErrRolesEdition) ||
		!strings.Contains(err.Error(), "migrate-roles --from 2024 --to 2026") {
		t.Fatalf("start on a 2024 store = %v, want a refusal naming migrate-roles", err)
	}
	if code, _, errs := runUsers(t, "block", "--data", data, "--iin", police, "--reason", "r"); code != 1 || !strings.Contains(errs, "edition 2026") && !strings.Contains(errs, "migrate-roles") {
		t.Fatalf("block on a 2024 store = %d\n%s", code, errs)
	}

	mapping := filepath.Join("..", "..", "configs", "roles-2024-2026.yaml")
	args := []string{"migrate-roles", "--data", data, "--from", "2024", "--to", "2026", "--mapping", mapping, "--by", "оператор"}
	code, out, errs := runUsers(t, args...)
	if code != 1 || !strings.Contains(errs, "not applied") || !strings.Contains(out, hr+" Пользователь "+hr+": row 20") {
		t.Fatalf("plan with an undecided row = %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		police + " Пользователь " + police + ": row 19 (ІІО-ның криминалдық полиция қызметкері (Сотрудник криминальной полиции ОВД)) -> row 18 (Сотрудник криминальной полиции ОВД)",
		duty + " Пользователь " + duty + ": row 21 (Кезекші бөлімнің қызметкері (Сотрудник дежурной части)) -> row 19 (Сотрудник дежурной части)",
		prosecutor + " Пользователь " + prosecutor + ": row 1 (Прокурор) -> row 1 (Прокурор) (same number)",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("the plan lacks %q:\n%s", want, out)
		}
	}

	// The operator decides row 20 in a copy of the mapping; the dry run shows it and changes nothing.
	text, err := os.ReadFile(mapping)
	if err != nil {
		t.Fatal(err)
	}
	undecided := "    to: null\n    decision: 'the 2026 wording has no HR officer (the 2024 row had no basis either): the operator decides'"
	if !strings.Contains(string(text), undecided) {
		t.Fatal("the mapping no longer leaves row 20 to the operator")
	}
	decided := filepath.Join(t.TempDir(), "roles-2024-2026.yaml")
	if err := os.WriteFile(decided, []byte(strings.Replace(string(text), undecided,
		"    to: 19\n    to_name: 'Сотрудник дежурной части'\n    decision: 'оператор, 01.03.2026: кадровая служба переведена в дежурную часть'", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	args[8] = decided
	if code, out, errs = runUsers(t, args...); code != 0 || !strings.Contains(out, "Dry run: nothing changed") || !strings.Contains(out, hr+" Пользователь "+hr+": row 20") {
		t.Fatalf("dry run = %d\n%s%s", code, out, errs)
	}
	if edition := storeEdition(t, data); edition != "2024" {
		t.Fatalf("after the dry run the store is of edition %s", edition)
	}

	if code, out, errs = runUsers(t, append(args, "--apply")...); code != 0 || !strings.Contains(out, "Applied: role migration 1, 4 users renumbered") {
		t.Fatalf("apply = %d\n%s%s", code, out, errs)
	}
	db, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{police: 18, duty: 19, prosecutor: 1, hr: 19}
	for iin, role := range want {
		if u, _, err := db.User(ctx, iin); err != nil || u.Role != role {
			t.Fatalf("user %s after the migration: role %d, %v; want %d", iin, u.Role, err, role)
		}
	}
	migs, err := db.RoleMigrations(ctx)
	if err != nil || len(migs) != 1 || migs[0].From != "2024" || migs[0].To != "2026" || migs[0].By != "оператор" ||
		len(migs[0].MappingSHA256) != 64 || len(migs[0].Moves) != 4 {
		t.Fatalf("journal of migrations = %+v, %v", migs, err)
	}
	for _, mv := range migs[0].Moves {
		if want[mv.IIN] != mv.To {
			t.Fatalf("journaled move %+v, want to %d", mv, want[mv.IIN])
		}
	}
	db.Close()
	if code, _, errs = runUsers(t, append(args, "--apply")...); code != 1 || !strings.Contains(errs, "of edition 2026, not 2024") {
		t.Fatalf("second migration = %d\n%s", code, errs)
	}

	b, err := startE2E(data, siobroker.SystemClock{})
	if err != nil {
		t.Fatalf("start after the migration: %v", err)
	}
	b.b.Close()
}

func storeEdition(t *testing.T, data string) string {
	t.Helper()
	db, err := sqlite.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, ok, err := db.RolesEdition(context.Background())
	if err != nil || !ok {
		t.Fatalf("RolesEdition = %q, %t, %v", e, ok, err)
	}
	return fmt.Sprint(e)
}

// TestReloadRefusesAnotherEdition: a rights file of another edition of Appendix 1 is not swapped
// in by a reload: the store's roles are numbered by the running one.
func TestReloadRefusesAnotherEdition(t *testing.T) {
	e, _, rightsFile, _ := reloadableBroker(t)
	replaceInFile(t, rightsFile, "edition: '2026'\nedition_date: '2026-02-23'", "edition: '2027'\nedition_date: '2027-01-10'")
	err := e.b.Reload(context.Background(), "test", testLogger())
	if err == nil || !strings.Contains(err.Error(), "edition 2027, the running one is 2026") || !strings.Contains(err.Error(), "migrate-roles") {
		t.Fatalf("reload of another edition: %v", err)
	}
}
