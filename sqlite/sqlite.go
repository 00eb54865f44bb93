// Package sqlite is the broker's embedded store: a single SQLite file under the data directory,
// through the pure-Go modernc.org/sqlite driver, so that the embedded default needs no server.
//
// It holds the messageIds the broker has seen (replay defence). Later parts of the broker (the
// journal, the user registry) add their tables here through migrations.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/sio-pso/siobroker"
)

// DB is the embedded store.
type DB struct {
	db *sql.DB
	// writes is this process's turn to write, a semaphore of one. SQLite admits one writer at a
	// time, and a writer that finds the lock taken sleeps in the busy handler (1, 2, 5, 10, …
	// ms) however soon the lock is freed: under concurrent requests those sleeps, not the writes,
	// set the latency. Waiting here hands the turn over at once, in order. busy_timeout still
	// covers writers in other processes (the CLI). The holder of the turn commits every write
	// queued by then in one transaction (see write).
	writes chan struct{}
	queued struct {
		sync.Mutex
		ops []*writeOp
	}
	stmts sync.Map // SQL text → *sql.Stmt, see prepared
}

// idleConns is how many connections the pool keeps open. database/sql keeps two by default; a
// broker with more requests in flight would close and reopen a connection (and rerun its
// pragmas) for nearly every statement.
const idleConns = 16

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

	// The users' certificates, for WS-Security key identifiers that carry no certificate. See
	// certificates.go.
	migrationUserCertificates,

	// Asynchronous replies as messages of their own, for the gateway's AsyncChannel v10. See
	// async.go.
	migrationAsyncMessages,

	// The contract that took each asynchronous request. See async.go.
	migrationAsyncChannel,

	// Services' answers, kept before they are acknowledged to the transport. See answers.go.
	migrationAnswers,

	// Requests still being admitted, told apart among the replay marks. See admissions.go.
	migrationAdmissions,
}

// FileName is the store's database file in the data directory.
const FileName = "broker.db"

// Open opens (creating if needed) the store at dir/broker.db and brings its schema up to date.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	// WAL lets readers run beside the one writer; busy_timeout makes concurrent writers wait
	// instead of failing with SQLITE_BUSY.
	// _txlock=immediate makes every read-write transaction BEGIN IMMEDIATE (see write).
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxIdleConns(idleConns)
	s := &DB{db: db, writes: make(chan struct{}, 1)}
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

// A writeOp is one caller's part of a write transaction.
type writeOp struct {
	ctx   context.Context
	fn    func(context.Context, *sql.Tx) error
	state atomic.Int32 // opQueued, then opTaken by a batch or opCancelled by its caller
	done  chan error   // buffered: the batch never waits for the caller
}

const (
	opQueued int32 = iota
	opTaken
	opCancelled
)

// write runs fn in a write transaction, BEGIN IMMEDIATE (the store's _txlock), and returns once
// it is committed or has failed. Writers of this process take turns (writes); the writer whose
// turn it is commits every write queued by then in one transaction, each in a savepoint of its
// own, so that a failing fn undoes only its own statements and the others still commit. Under
// concurrent requests that is one commit, one write of the WAL's shared pages, for the writes
// of several requests (group commit), where each used to pay for its own.
//
// fn must do all its reading and writing through tx and ctx (the ctx it is given: a caller
// giving up must not interrupt a statement, which would roll the whole transaction back), and
// must not call write. It may run in another goroutine than the caller's.
func (s *DB) write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	op := &writeOp{ctx: context.WithoutCancel(ctx), fn: fn, done: make(chan error, 1)}
	s.queued.Lock()
	s.queued.ops = append(s.queued.ops, op)
	s.queued.Unlock()
	for {
		select {
		case err := <-op.done:
			return err
		case s.writes <- struct{}{}:
			// Our op is in this batch, or in the one that held the turn before: done is set
			// either way, and the loop reads it.
			s.commitQueued()
			<-s.writes
		case <-ctx.Done():
			if op.state.CompareAndSwap(opQueued, opCancelled) {
				return ctx.Err()
			}
			return <-op.done // a batch has it: its outcome is on the way
		}
	}
}

// commitQueued runs the queued writes in one transaction. It is called in the turn to write.
func (s *DB) commitQueued() {
	s.queued.Lock()
	ops := s.queued.ops
	s.queued.ops = nil
	s.queued.Unlock()
	taken := ops[:0]
	for _, op := range ops {
		if op.state.CompareAndSwap(opQueued, opTaken) {
			taken = append(taken, op)
		}
	}
	if len(taken) == 0 {
		return
	}
	errs := s.commitBatch(taken)
	for i, op := range taken {
		op.done <- errs[i]
	}
}

// commitBatch runs ops in one transaction and returns each one's outcome.
func (s *DB) commitBatch(ops []*writeOp) []error {
	errs := make([]error, len(ops))
	fail := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	bg := context.Background()
	tx, err := s.db.BeginTx(bg, nil)
	if err != nil {
		return fail(fmt.Errorf("begin transaction: %w", err))
	}
	if len(ops) == 1 {
		// Alone in the transaction: no savepoint needed, its failure rolls back only itself.
		if err := ops[0].fn(ops[0].ctx, tx); err != nil {
			_ = tx.Rollback()
			errs[0] = err
			return errs
		}
	} else {
		for i, op := range ops {
			if _, err := tx.ExecContext(bg, `SAVEPOINT write_op`); err != nil {
				_ = tx.Rollback()
				return fail(fmt.Errorf("begin savepoint: %w", err))
			}
			if errs[i] = op.fn(op.ctx, tx); errs[i] != nil {
				// SQLite may have rolled the whole transaction back itself (a full disk, an I/O
				// error): then the savepoint is gone, and every write of the batch with it.
				if _, err := tx.ExecContext(bg, `ROLLBACK TO write_op`); err != nil {
					_ = tx.Rollback()
					return fail(fmt.Errorf("the transaction was rolled back with a failed write (%w): %w", errs[i], err))
				}
			}
			if _, err := tx.ExecContext(bg, `RELEASE write_op`); err != nil {
				_ = tx.Rollback()
				return fail(fmt.Errorf("release savepoint: %w", err))
			}
		}
	}
	if err := tx.Commit(); err != nil { // the driver rolls back a failed commit
		return fail(fmt.Errorf("commit: %w", err))
	}
	return errs
}

// exec runs one writing statement in a write transaction (see write).
func (s *DB) exec(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	stmt, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err = tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
		return err
	})
	return res, err
}

// prepared returns the statement for query, prepared once and kept: database/sql then prepares
// it once per connection. Parsing the SQL cost as much as running the small statements of a
// request. Only fixed SQL texts go through here, so the set stays small.
func (s *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := s.stmts.Load(query); ok {
		return stmt.(*sql.Stmt), nil
	}
	stmt, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	if prev, loaded := s.stmts.LoadOrStore(query, stmt); loaded {
		stmt.Close()
		return prev.(*sql.Stmt), nil
	}
	return stmt, nil
}

// Close closes the store.
func (s *DB) Close() error {
	s.stmts.Range(func(_, stmt any) bool {
		stmt.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// Ping reports whether the store answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// MarkSeen records messageID and reports whether it is new. A second call with the same id
// returns false: the request is a replay. The insert is the check, so two concurrent copies of
// one message cannot both pass.
func (s *DB) MarkSeen(ctx context.Context, messageID, senderID string, at time.Time) (bool, error) {
	fresh, _, err := s.MarkRequestSeen(ctx, messageID, senderID, "", at)
	return fresh, err
}

// MarkRequestSeen records a call's messageId and, unless digest is "", the digest of its signed
// content (MarkRequest without an admission).
func (s *DB) MarkRequestSeen(ctx context.Context, messageID, senderID, digest string, at time.Time) (idFresh, contentFresh bool, err error) {
	return s.MarkRequest(ctx, siobroker.ReplayMark{Key: messageID, SenderID: senderID, Digest: digest, At: at})
}

// inserted reports whether an INSERT … ON CONFLICT DO NOTHING inserted its row.
func inserted(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("rows inserted: %w", err)
	}
	return n == 1, nil
}

// Release forgets a messageId and a signed-content digest ("" skips it) recorded for a request the
// broker then could not serve, so that the client may retry it.
func (s *DB) Release(ctx context.Context, messageID, digest string) error {
	if _, err := s.exec(ctx, `DELETE FROM seen_messages WHERE message_id = ?`, messageID); err != nil {
		return fmt.Errorf("release messageId: %w", err)
	}
	if digest != "" {
		if _, err := s.exec(ctx, `DELETE FROM seen_signed_content WHERE digest = ?`, digest); err != nil {
			return fmt.Errorf("release signed content: %w", err)
		}
	}
	return nil
}

// ForgetSeenBefore removes messageIds recorded before cutoff. It is safe once cutoff is older
// than the replay window: a message that old is refused for its date. The marks of a request
// still being admitted are kept for CloseInterrupted to find.
func (s *DB) ForgetSeenBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM seen_messages WHERE seen_unix < ? AND admitting = 0`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("prune seen messageIds: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
