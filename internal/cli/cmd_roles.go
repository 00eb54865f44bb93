package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/sqlite"
)

// checkRegistryEdition refuses to manage users on a store whose roles are numbered by another
// wording of Appendix 1 than the registry's (users.Edition): a role typed now would be read by the
// store's numbering, or the other way round.
func checkRegistryEdition(ctx context.Context, db *sqlite.DB) error {
	return app.CheckRolesEdition(ctx, db, users.Edition, "the user registry (Appendix 1 of "+users.Edition+")", siobroker.SystemClock{})
}

// usersMigrateRoles renumbers the users' roles from one wording of Appendix 1 to another by the
// mapping in configs/, showing the plan first; --apply applies it, in one transaction journaled
// in the store (role_migrations), and records the new edition.
func usersMigrateRoles(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("migrate-roles", stdout, stderr, true)
	from := f.String("from", "", "the edition of Appendix 1 the store's roles are numbered by (e.g. 2024)")
	to := f.String("to", "", "the edition to renumber them to (e.g. 2026)")
	mappingFile := f.String("mapping", "", "the mapping of rows (default configs/roles-FROM-TO.yaml)")
	apply := f.Bool("apply", false, "apply the plan; without it the plan is only shown")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *from == "" || *to == "" {
		return f.usageError("--from and --to are required")
	}
	if *mappingFile == "" {
		*mappingFile = filepath.Join("configs", fmt.Sprintf("roles-%s-%s.yaml", *from, *to))
	}
	m, err := rights.LoadRoleMapping(*mappingFile)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	if m.From != *from || m.To != *to {
		return f.fail(usersExitFailed, "%s maps edition %s to %s, not %s to %s", *mappingFile, m.From, m.To, *from, *to)
	}
	data, err := os.ReadFile(*mappingFile)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	sum := sha256.Sum256(data)
	db, _, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	switch stored, ok, err := db.RolesEdition(ctx); {
	case err != nil:
		return f.fail(usersExitFailed, "%v", err)
	case ok && stored != *from:
		return f.fail(usersExitFailed, "the store's roles are of edition %s, not %s: nothing to do with this mapping", stored, *from)
	case !ok:
		fmt.Fprintf(stdout, "The store records no edition: you state that its roles are numbered by the %s wording.\n", *from)
	}
	registered, err := db.Users(ctx)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	holders := make([]rights.RoleHolder, len(registered))
	for i, u := range registered {
		holders[i] = rights.RoleHolder{IIN: u.IIN, Name: u.FullName, Role: u.Role}
	}
	plan := m.Plan(holders)
	if err := plan.Write(stdout); err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	if len(plan.Undecided) > 0 {
		return f.fail(usersExitFailed, "not applied: %d users hold rows %s leaves to the operator's decision", len(plan.Undecided), *mappingFile)
	}
	if !*apply {
		fmt.Fprintln(stdout, "Dry run: nothing changed. Add --apply to apply this plan.")
		return usersExitOK
	}
	mig := sqlite.RoleMigration{From: *from, To: *to, Mapping: *mappingFile, MappingSHA256: hex.EncodeToString(sum[:]),
		By: *f.by, At: siobroker.SystemClock{}.Now()}
	for _, mv := range plan.Moves {
		mig.Moves = append(mig.Moves, sqlite.RoleMigrationMove{IIN: mv.IIN, From: mv.From, To: mv.To})
	}
	id, err := db.MigrateRoles(ctx, mig)
	if err != nil {
		return f.fail(usersExitFailed, "not applied: %v", err)
	}
	fmt.Fprintf(stdout, "Applied: role migration %d, %d users renumbered; the store's roles are now of edition %s.\n", id, len(mig.Moves), *to)
	return usersExitOK
}
