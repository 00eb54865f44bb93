package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestRolesEdition: the edition is recorded once and changed only by a migration from it, which
// renumbers the roles and journals itself in tables that cannot be edited.
func TestRolesEdition(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if _, ok, err := db.RolesEdition(ctx); ok || err != nil {
		t.Fatalf("a new store has an edition: %t, %v", ok, err)
	}
	at := time.Date(2026, 3, 5, 9, 0, 0, 0, siobroker.Astana)
	if got, err := db.RecordRolesEdition(ctx, "2024", "test", at); got != "2024" || err != nil {
		t.Fatalf("record = %q, %v", got, err)
	}
	if got, err := db.RecordRolesEdition(ctx, "2026", "test", at); got != "2024" || err != nil {
		t.Fatalf("a second record = %q, %v; the first must stay", got, err)
	}
	iin := testIIN(t, "80010130001")
	u := siobroker.User{FullName: "Ф", Organisation: "О", Role: 19, ConsentAt: at}
	if _, err := db.ApplyApplication(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: iin, Reason: "r", At: at, By: "t", User: u}); err != nil {
		t.Fatal(err)
	}
	mig := RoleMigration{From: "2026", To: "2027", Mapping: "m", MappingSHA256: "x", By: "op", At: at,
		Moves: []RoleMigrationMove{{IIN: iin, From: 19, To: 18}}}
	if _, err := db.MigrateRoles(ctx, mig); !errors.Is(err, ErrRolesEdition) {
		t.Fatalf("a migration from another edition = %v", err)
	}
	mig.From, mig.To = "2024", "2026"
	mig.Moves[0].From = 21
	if _, err := db.MigrateRoles(ctx, mig); err == nil {
		t.Fatal("a plan made from another row was applied")
	}
	mig.Moves[0].From = 19
	id, err := db.MigrateRoles(ctx, mig)
	if err != nil {
		t.Fatal(err)
	}
	if e, _, _ := db.RolesEdition(ctx); e != "2026" {
		t.Fatalf("edition after the migration: %s", e)
	}
	if got, _, _ := db.User(ctx, iin); got.Role != 18 {
		t.Fatalf("role after the migration: %d", got.Role)
	}
	for _, q := range []string{`DELETE FROM role_migrations`, `UPDATE role_migration_moves SET to_role = 1`, `DELETE FROM role_migration_moves`} {
		if _, err := db.db.ExecContext(ctx, q); err == nil {
			t.Fatalf("%s: the journal of migrations was changed", q)
		}
	}
	migs, err := db.RoleMigrations(ctx)
	if err != nil || len(migs) != 1 || migs[0].ID != id || len(migs[0].Moves) != 1 || migs[0].Moves[0] != (RoleMigrationMove{IIN: iin, From: 19, To: 18}) {
		t.Fatalf("journal = %+v, %v", migs, err)
	}
}
