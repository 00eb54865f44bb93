package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// The edition of Appendix 1 the users' roles refer to. A role is stored as a row number of
// Appendix 1, and a new wording renumbers the rows (2026: 21 rows became 19), so a number alone
// changes meaning with the edition. The store keeps the edition beside the numbers; the broker
// compares it with the rights file's at start, and only a role migration changes it, in the same
// transaction as the numbers. The tables are created outside the numbered migrations (like
// operatorRightColumn) so that they do not depend on the order in which other changes append
// theirs.
//
// roles_edition has one row once the edition is known. role_migrations and role_migration_moves
// are the journal of migrations: append-only, enforced by triggers.
const rolesEditionSchema = `CREATE TABLE IF NOT EXISTS roles_edition (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		edition TEXT NOT NULL,
		set_at  TEXT NOT NULL,
		set_ns  INTEGER NOT NULL,
		how     TEXT NOT NULL
	);
	CREATE TABLE IF NOT EXISTS role_migrations (
		id              INTEGER PRIMARY KEY AUTOINCREMENT,
		from_edition    TEXT NOT NULL,
		to_edition      TEXT NOT NULL,
		mapping         TEXT NOT NULL,
		mapping_sha256  TEXT NOT NULL,
		applied_by      TEXT NOT NULL,
		at              TEXT NOT NULL,
		at_ns           INTEGER NOT NULL
	);
	CREATE TABLE IF NOT EXISTS role_migration_moves (
		migration INTEGER NOT NULL REFERENCES role_migrations(id),
		iin       TEXT NOT NULL,
		from_role INTEGER NOT NULL,
		to_role   INTEGER NOT NULL,
		PRIMARY KEY (migration, iin)
	);
	CREATE TRIGGER IF NOT EXISTS role_migrations_no_update BEFORE UPDATE ON role_migrations
	BEGIN SELECT RAISE(ABORT, 'role_migrations is append-only'); END;
	CREATE TRIGGER IF NOT EXISTS role_migrations_no_delete BEFORE DELETE ON role_migrations
	BEGIN SELECT RAISE(ABORT, 'role_migrations is append-only'); END;
	CREATE TRIGGER IF NOT EXISTS role_migration_moves_no_update BEFORE UPDATE ON role_migration_moves
	BEGIN SELECT RAISE(ABORT, 'role_migration_moves is append-only'); END;
	CREATE TRIGGER IF NOT EXISTS role_migration_moves_no_delete BEFORE DELETE ON role_migration_moves
	BEGIN SELECT RAISE(ABORT, 'role_migration_moves is append-only'); END;`

// ErrRolesEdition is wrapped by the errors of a migration whose from edition is not the store's.
var ErrRolesEdition = errors.New("the store's roles are of another edition")

// RolesEdition returns the edition of Appendix 1 the store's roles refer to; ok is false when the
// store has not recorded one (a store made before editions were recorded, or a new one).
func (s *DB) RolesEdition(ctx context.Context) (edition string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT edition FROM roles_edition WHERE id = 1`).Scan(&edition)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read the roles edition: %w", err)
	}
	return edition, true, nil
}

// RecordRolesEdition records edition as the store's when it has none yet; how says why the edition
// is known (for the record). It returns the edition the store has afterwards, which is not edition
// when another was recorded before: a recorded edition is changed only by MigrateRoles.
func (s *DB) RecordRolesEdition(ctx context.Context, edition, how string, at time.Time) (string, error) {
	var got string
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO roles_edition(id, edition, set_at, set_ns, how) VALUES (1, ?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`, edition, siobroker.FormatTime(at), at.UnixNano(), how); err != nil {
			return fmt.Errorf("record the roles edition: %w", err)
		}
		return tx.QueryRowContext(ctx, `SELECT edition FROM roles_edition WHERE id = 1`).Scan(&got)
	})
	if err != nil {
		return "", err
	}
	return got, nil
}

// RoleMigration is one migration of the users' roles from one edition of Appendix 1 to another,
// as the journal of migrations keeps it.
type RoleMigration struct {
	ID            int64
	From, To      string
	Mapping       string // the mapping file, as named on the command line
	MappingSHA256 string // of its bytes, so that the record says exactly which mapping was applied
	By            string
	At            time.Time
	Moves         []RoleMigrationMove
}

// RoleMigrationMove is one user's row before and after.
type RoleMigrationMove struct {
	IIN      string
	From, To int
}

// MigrateRoles applies m in one transaction: it checks that the store's roles are of m.From (or
// that it records no edition), that every moved user still holds the row the plan was made from,
// and that every user of the store is in the plan; then it renumbers the roles, journals the
// migration with its moves, and records m.To as the store's edition. It returns the migration's id.
func (s *DB) MigrateRoles(ctx context.Context, m RoleMigration) (int64, error) {
	if m.At.IsZero() || m.By == "" || m.From == "" || m.To == "" {
		return 0, errors.New("migrate roles: the migration needs its editions, who applies it and its time")
	}
	var id int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var current string
		switch err := tx.QueryRowContext(ctx, `SELECT edition FROM roles_edition WHERE id = 1`).Scan(&current); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read the roles edition: %w", err)
		case current != m.From:
			return fmt.Errorf("migrate roles %s -> %s: %w: %s", m.From, m.To, ErrRolesEdition, current)
		}
		var users int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&users); err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		if users != len(m.Moves) {
			return fmt.Errorf("migrate roles: the store has %d users, the plan %d: make the plan again", users, len(m.Moves))
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO role_migrations(from_edition, to_edition, mapping, mapping_sha256, applied_by, at, at_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, m.From, m.To, m.Mapping, m.MappingSHA256, m.By, siobroker.FormatTime(m.At), m.At.UnixNano())
		if err != nil {
			return fmt.Errorf("journal the migration: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("journal the migration: %w", err)
		}
		for _, mv := range m.Moves {
			r, err := tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE iin = ? AND role = ?`, mv.To, mv.IIN, mv.From)
			if err != nil {
				return fmt.Errorf("renumber the role of %s: %w", mv.IIN, err)
			}
			if n, err := r.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("migrate roles: user %s no longer holds row %d: make the plan again", mv.IIN, mv.From)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO role_migration_moves(migration, iin, from_role, to_role) VALUES (?, ?, ?, ?)`,
				id, mv.IIN, mv.From, mv.To); err != nil {
				return fmt.Errorf("journal the move of %s: %w", mv.IIN, err)
			}
		}
		how := fmt.Sprintf("role migration %d from edition %s", id, m.From)
		if _, err := tx.ExecContext(ctx, `INSERT INTO roles_edition(id, edition, set_at, set_ns, how) VALUES (1, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET edition = excluded.edition, set_at = excluded.set_at, set_ns = excluded.set_ns, how = excluded.how`,
			m.To, siobroker.FormatTime(m.At), m.At.UnixNano(), how); err != nil {
			return fmt.Errorf("record the roles edition: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// RoleMigrations returns the journal of role migrations, oldest first, each with its moves.
func (s *DB) RoleMigrations(ctx context.Context) ([]RoleMigration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, from_edition, to_edition, mapping, mapping_sha256, applied_by, at_ns
		FROM role_migrations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read role migrations: %w", err)
	}
	defer rows.Close()
	var out []RoleMigration
	for rows.Next() {
		var m RoleMigration
		var ns int64
		if err := rows.Scan(&m.ID, &m.From, &m.To, &m.Mapping, &m.MappingSHA256, &m.By, &ns); err != nil {
			return nil, fmt.Errorf("read role migrations: %w", err)
		}
		m.At = time.Unix(0, ns).In(siobroker.Astana)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read role migrations: %w", err)
	}
	for i := range out {
		if out[i].Moves, err = s.roleMigrationMoves(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *DB) roleMigrationMoves(ctx context.Context, id int64) ([]RoleMigrationMove, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT iin, from_role, to_role FROM role_migration_moves WHERE migration = ? ORDER BY iin`, id)
	if err != nil {
		return nil, fmt.Errorf("read the moves of role migration %d: %w", id, err)
	}
	defer rows.Close()
	var out []RoleMigrationMove
	for rows.Next() {
		var mv RoleMigrationMove
		if err := rows.Scan(&mv.IIN, &mv.From, &mv.To); err != nil {
			return nil, fmt.Errorf("read the moves of role migration %d: %w", id, err)
		}
		out = append(out, mv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the moves of role migration %d: %w", id, err)
	}
	return out, nil
}
