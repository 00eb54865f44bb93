package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/sqlite"
)

// firstEdition is the wording of Appendix 1 this broker has numbered roles by since its first
// version (access/users never accepted a role above 19): a store that records no edition was
// made under it.
const firstEdition = "2026"

// ErrRolesEdition is wrapped by the refusal to start (or to manage users) on a store whose roles
// are numbered by another wording of Appendix 1 than the rights file's.
var ErrRolesEdition = errors.New("roles edition mismatch")

// CheckRolesEdition refuses a store whose users' roles refer to another edition of Appendix 1 than
// edition, the rights file's: a role is a row number, and a 2024 row 19 (criminal police) read as
// the 2026 row 19 (duty unit) would give users another role's rights. A store that records no
// edition yet gets edition when that is safe: it has no users, or edition is firstEdition, under
// which every store without a record was made.
func CheckRolesEdition(ctx context.Context, db *sqlite.DB, edition, source string, clock siobroker.Clock) error {
	stored, ok, err := db.RolesEdition(ctx)
	if err != nil {
		return err
	}
	if !ok {
		users, err := db.Users(ctx)
		if err != nil {
			return err
		}
		how := "recorded on a store without users"
		if len(users) > 0 {
			if edition != firstEdition {
				return fmt.Errorf("%w: the store's %d users were registered before the store recorded an edition, so under the %s wording of Appendix 1, but %s is of the %s wording; "+
					"fix: run `siobroker users migrate-roles --from %s --to %s` (it shows its plan; add --apply to apply it), or use the edition %s",
					ErrRolesEdition, len(users), firstEdition, source, edition, firstEdition, edition, firstEdition)
			}
			how = "users registered before editions were recorded, under the " + firstEdition + " wording the broker has always used"
		}
		if stored, err = db.RecordRolesEdition(ctx, edition, how, clock.Now()); err != nil {
			return err
		}
	}
	if stored != edition {
		return fmt.Errorf("%w: the store's users' roles are row numbers of the %s wording of Appendix 1, and %s is of the %s wording, in which the same numbers name other roles; "+
			"fix: run `siobroker users migrate-roles --from %s --to %s` (it shows its plan; add --apply to apply it), or use the edition %s",
			ErrRolesEdition, stored, source, edition, stored, edition, stored)
	}
	return nil
}
