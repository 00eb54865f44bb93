// Package store is the broker's embedded store: a single SQLite file under the data directory,
// through the pure-Go modernc.org/sqlite driver, so that the embedded default needs no server.
//
// It holds the messageIds the broker has seen (replay defence). Later parts of the broker (the
// journal, the user registry) add their tables here through migrations.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/sio-pso/siobroker"
)

// DB is the embedded store.
type DB struct {
	db *sql.DB
}

// migrations run in order, once each; their index is the schema version.
var migrations = []string{
	`CREATE TABLE seen_messages (
		message_id TEXT PRIMARY KEY,
		sender_id  TEXT NOT NULL,
		seen_at    TEXT NOT NULL,
		seen_unix  INTEGER NOT NULL
	);
	CREATE INDEX seen_messages_unix ON seen_messages(seen_unix);`,

	// The user registry (§12–17 of the Rules): the current state of every user, the append-only
	// history of applications and the append-only record of refusals. See users.go.
	migrationUsers,

	// Digests of signed content, kept for good: in the enveloped placement requestInfo is not
	// signed, so a captured query re-posted with a fresh messageId must be caught by what the
	// signature does cover.
	`CREATE TABLE seen_signed_content (
		digest     TEXT PRIMARY KEY,
		message_id TEXT NOT NULL,
		seen_at    TEXT NOT NULL
	);`,

	// The permanent journal (§37, 38, 50 of the Rules): append-only and hash-chained. See
	// journal.go.
	migrationJournal,

	// The journal of emergencies (§39–41, Appendix 7 of the Rules): incidents and their
	// append-only history. See incidents.go.
	migrationIncidents,

	// Requests taken on the asynchronous channel, with their delivery state and signed reply. See
	// async.go.
	migrationAsync,

	// Announced maintenance windows (§36, 42 of the Rules). See maintenance.go.
	migrationMaintenance,
}

// Open opens (creating if needed) the store at dir/broker.db and brings its schema up to date.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "broker.db")
	// WAL lets readers run beside the one writer; busy_timeout makes concurrent writers wait
	// instead of failing with SQLITE_BUSY.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &DB{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate store %s: %w", path, err)
	}
	return s, nil
}

func (s *DB) migrate(ctx context.Context) error {
	if err := s.migrateNumbered(ctx); err != nil {
		return err
	}
	return s.addColumnIfMissing(ctx, "users", operatorRightColumn)
}

// migrateNumbered runs the migrations the database has not had yet.
func (s *DB) migrateNumbered(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for i := version; i < len(migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		// PRAGMA does not take parameters; i is ours, not input.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("record schema version %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %d: %w", i+1, err)
		}
	}
	return nil
}

// addColumnIfMissing adds the column of definition (its name is the first word) to table unless
// the table has it already.
func (s *DB) addColumnIfMissing(ctx context.Context, table, definition string) error {
	name, _, _ := strings.Cut(definition, " ")
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, name).Scan(&n); err != nil {
		return fmt.Errorf("read the columns of %s: %w", table, err)
	}
	if n > 0 {
		return nil
	}
	// table and definition are ours, not input; DDL takes no parameters.
	if _, err := s.db.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+definition); err != nil {
		return fmt.Errorf("add column %s.%s: %w", table, name, err)
	}
	return nil
}

// Close closes the store.
func (s *DB) Close() error { return s.db.Close() }

// Ping reports whether the store answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// MarkSeen records messageID and reports whether it is new. A second call with the same id
// returns false: the request is a replay. The insert is the check, so two concurrent copies of
// one message cannot both pass.
func (s *DB) MarkSeen(ctx context.Context, messageID, senderID string, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO seen_messages(message_id, sender_id, seen_at, seen_unix) VALUES (?, ?, ?, ?)
		 ON CONFLICT(message_id) DO NOTHING`,
		messageID, senderID, siobroker.FormatTime(at), at.Unix())
	if err != nil {
		return false, fmt.Errorf("record messageId: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record messageId: %w", err)
	}
	return n == 1, nil
}

// MarkSignedContentSeen records the digest of a request's signed content and reports whether it
// is new. Unlike messageIds, digests are never forgotten.
func (s *DB) MarkSignedContentSeen(ctx context.Context, digest, messageID string, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO seen_signed_content(digest, message_id, seen_at) VALUES (?, ?, ?)
		 ON CONFLICT(digest) DO NOTHING`, digest, messageID, siobroker.FormatTime(at))
	if err != nil {
		return false, fmt.Errorf("record signed content: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record signed content: %w", err)
	}
	return n == 1, nil
}

// Release forgets a messageId and a signed-content digest ("" skips it) recorded for a request the
// broker then could not serve, so that the client may retry it.
func (s *DB) Release(ctx context.Context, messageID, digest string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM seen_messages WHERE message_id = ?`, messageID); err != nil {
		return fmt.Errorf("release messageId: %w", err)
	}
	if digest != "" {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM seen_signed_content WHERE digest = ?`, digest); err != nil {
			return fmt.Errorf("release signed content: %w", err)
		}
	}
	return nil
}

// ForgetSeenBefore removes messageIds recorded before cutoff. It is safe once cutoff is older
// than the replay window: a message that old is refused for its date.
func (s *DB) ForgetSeenBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM seen_messages WHERE seen_unix < ?`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("prune seen messageIds: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
