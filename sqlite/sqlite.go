// Package sqlite is the broker's embedded store: a single SQLite file under the data directory,
// through the pure-Go modernc.org/sqlite driver, so that the embedded default needs no server.
//
// It holds the messageIds the broker has seen (replay defence). Later parts of the broker (the
// journal, the user registry) add their tables here through migrations.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/private"
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
	// writer is the connection every write transaction of this process runs on, opened at the
	// first write (see begin); only the holder of the turn to write uses it.
	writer       *sql.Conn
	closed       bool          // Close has begun: no writer is opened again; guarded by the turn to write
	stmts        sync.Map      // SQL text → *sql.Stmt, see prepared
	writeTimeout time.Duration // Options.WriteTimeout, with its default
	commits      atomic.Uint64 // write transactions committed (Commits)
}

// Synchronous is SQLite's synchronous setting for the store: how long a commit waits for the disk.
// In WAL mode both settings are safe against a crash of the process; they differ on a power loss
// or a crash of the operating system.
type Synchronous string

const (
	// SynchronousFull syncs the WAL to the disk at every commit: a write that returned is on the
	// disk, and a reply given out after its journal record was committed keeps that record
	// through a power loss. The default; each commit waits for an fsync.
	SynchronousFull Synchronous = "full"
	// SynchronousNormal syncs the WAL only at checkpoints: a power loss may undo the last
	// commits before it, the journal records of replies already given out among them.
	SynchronousNormal Synchronous = "normal"
)

// DefaultWriteTimeout is Options.WriteTimeout when it is zero.
const DefaultWriteTimeout = 5 * time.Second

// Options tune the store (configuration section store). The zero value is the defaults.
type Options struct {
	// Synchronous is the durability of a commit; "" is SynchronousFull.
	Synchronous Synchronous
	// WriteTimeout bounds every write: the wait for this process's turn to write and for
	// SQLite's write lock (busy_timeout, which other processes' writers are also given) together.
	// A write the store does not take within it fails with an error wrapping
	// siobroker.ErrWriteTimeout and context.DeadlineExceeded, and is not made. Zero is
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
}

func (o *Options) setDefaults() {
	if o.Synchronous == "" {
		o.Synchronous = SynchronousFull
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
}

// Validate reports what is wrong with o once its defaults are applied.
func (o Options) Validate() error {
	o.setDefaults()
	var errs []error
	switch o.Synchronous {
	case SynchronousFull, SynchronousNormal:
	default:
		errs = append(errs, fmt.Errorf("sqlite: Options.Synchronous %q; use %q or %q", o.Synchronous, SynchronousFull, SynchronousNormal))
	}
	// busy_timeout counts whole milliseconds.
	if o.WriteTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("sqlite: Options.WriteTimeout must be at least 1ms, got %s", o.WriteTimeout))
	}
	return errors.Join(errs...)
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

	// The store's own id, under which its broker's admissions are kept where the replay marks
	// are shared. See admissions.go.
	migrationStoreID,

	// The outbox of notices (§45, §12–15). See notifications.go.
	migrationNotifications,

	// The applications submitted to the operator, pending or decided (§12–15). See submitted.go.
	migrationSubmitted,

	// The signed consents of §17 (App. 6). See consents.go.
	migrationConsents,

	// Maintenance windows announced as emergencies. See maintenance.go.
	migrationMaintenanceEmergency,

	// The request index of reports (§9–10), derived from the journal and rebuilt from it at
	// will. See requestindex.go.
	migrationRequestIndex,

	// The emergencies of Appendix 7 in the journal of emergencies: the cause in words of every
	// incident and the actions of an emergency. See incidents.go.
	migrationEmergencies,

	// Which events of submitted applications have had their notices written. See
	// appnotices.go.
	migrationApplicationNotices,

	// The trace context of each asynchronous request's call. See async.go.
	migrationAsyncTrace,

	// Synchronous requests' holds for delivery, apart from the asynchronous jobs. See async.go.
	migrationSyncHolds,
}

// ErrNewerStore is the error of Open for a store made or upgraded by a newer version of the
// broker.
var ErrNewerStore = errors.New("the store was made or upgraded by a newer siobroker")

// FileName is the store's database file in the data directory.
const FileName = "broker.db"

// Open opens (creating if needed) the store at dir/broker.db with the default Options and brings
// its schema up to date.
func Open(ctx context.Context, dir string) (*DB, error) {
	return OpenWith(ctx, dir, Options{})
}

// OpenWith is Open with opts.
func OpenWith(ctx context.Context, dir string, opts Options) (*DB, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	if err := makePrivate(dir, path); err != nil {
		return nil, err
	}
	// WAL lets readers run beside the one writer; busy_timeout makes concurrent writers wait
	// instead of failing with SQLITE_BUSY, for as long as a write may take (writers of this
	// process are bounded by their own deadline before that, see write).
	// _txlock=immediate makes every read-write transaction BEGIN IMMEDIATE (see write).
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=busy_timeout(%d)&_pragma=synchronous(%s)&_pragma=foreign_keys(ON)&_txlock=immediate",
		path, opts.WriteTimeout.Milliseconds(), strings.ToUpper(string(opts.Synchronous)))
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxIdleConns(idleConns)
	s := &DB{db: db, writes: make(chan struct{}, 1), writeTimeout: opts.WriteTimeout}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate store %s: %w", path, err)
	}
	return s, nil
}

// makePrivate creates the data directory dir with mode 0700 and the database file path with mode
// 0600 before SQLite opens it, and tightens both, and the -wal and -shm files, where an earlier
// version left them more open. SQLite creates a database with 0644 less the umask, but its -wal
// and -shm files with the mode of the database file: a database made 0600 here keeps its journal
// files 0600 whatever the umask, also when SQLite deletes and recreates them.
func makePrivate(dir, path string) error {
	if err := private.MkdirAll(dir); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, private.FileMode)
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := private.File(p); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// Synchronous returns the synchronous setting the store's connections run with, as SQLite reports
// it (0 off, 1 normal, 2 full, 3 extra).
func (s *DB) Synchronous(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read synchronous: %w", err)
	}
	return n, nil
}

func (s *DB) migrate(ctx context.Context) error {
	if err := s.migrateNumbered(ctx); err != nil {
		return err
	}
	if err := s.addColumnIfMissing(ctx, "users", operatorRightColumn); err != nil {
		return err
	}
	if err := s.addAppendix5Columns(ctx); err != nil {
		return err
	}
	// Outside the numbered migrations, as the columns above: it depends on no other change's order.
	if _, err := s.db.ExecContext(ctx, migrationHRFeeds); err != nil {
		return fmt.Errorf("create hr_feeds: %w", err)
	}
	for _, def := range submittedFormColumns {
		if err := s.addColumnIfMissing(ctx, "submitted_applications", def); err != nil {
			return err
		}
	}
	// The roles edition and the journal of role migrations: see editions.go.
	if _, err := s.db.ExecContext(ctx, rolesEditionSchema); err != nil {
		return fmt.Errorf("create the roles edition tables: %w", err)
	}
	return nil
}

// migrateNumbered runs the migrations the database has not had yet.
func (s *DB) migrateNumbered(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		// A store a newer version made or upgraded keeps some of its state where this one would
		// not look (the synchronous requests' holds of schema 22, say): opened here, what is
		// there would wait unseen.
		return fmt.Errorf("%w: its schema is version %d, and this siobroker knows versions up to %d; run the siobroker that upgraded it, or a later one",
			ErrNewerStore, version, len(migrations))
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
	ctx  context.Context // for fn: the caller's values, never cancelled
	wait context.Context // the caller's, bounded by the write timeout: no batch waits for the lock beyond it
	fn   func(context.Context, *sql.Tx) error
	// state is opQueued, then opTaken by a batch, then opRunning once the batch holds the write
	// lock; a queued or taken op may be opCancelled by its caller, and a taken one put back to
	// opQueued by a batch that gave up on the lock before the op's deadline.
	state atomic.Int32
	done  chan error // buffered: the batch never waits for the caller
}

const (
	opQueued int32 = iota
	opTaken
	opRunning
	opCancelled
)

// write runs fn in a write transaction, BEGIN IMMEDIATE (the store's _txlock), and returns once
// it is committed or has failed. Writers of this process take turns (writes); the writer whose
// turn it is commits every write queued by then in one transaction, each in a savepoint of its
// own, so that a failing fn undoes only its own statements and the others still commit. Under
// concurrent requests that is one commit, one write of the WAL's shared pages, for the writes
// of several requests (group commit), where each used to pay for its own.
//
// A write waits at most the store's write timeout (or until ctx is done, if sooner) for its turn
// and for SQLite's write lock together; then it fails with an error wrapping
// siobroker.ErrWriteTimeout and context.DeadlineExceeded, and fn never runs. (The turn used to
// be waited for without a deadline, and a batch then waited busy_timeout again for the lock:
// with another connection holding the lock, writers queued behind a batch waited twice the
// timeout, and a request refused for it waited again for each write that followed.) Once fn
// runs, the write lock is held, and the write ends with its commit.
//
// fn must do all its reading and writing through tx and ctx (the ctx it is given: a caller
// giving up must not interrupt a statement, which would roll the whole transaction back), and
// must not call write. It may run in another goroutine than the caller's.
//
// A write whose ctx comes from WriteTogether's function runs at once in that function's
// transaction, in a savepoint of its own, and is committed with it.
func (s *DB) write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if j, ok := ctx.Value(togetherKey{}).(*together); ok && j.db == s {
		return j.run(ctx, fn)
	}
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	op := &writeOp{ctx: context.WithoutCancel(ctx), wait: ctx, fn: fn, done: make(chan error, 1)}
	s.queued.Lock()
	s.queued.ops = append(s.queued.ops, op)
	s.queued.Unlock()
	for {
		select {
		case err := <-op.done:
			return err
		case s.writes <- struct{}{}:
			// Our op is in this batch, or in the one that held the turn before, or was put back
			// by a batch that gave up on the lock: the loop finds out which.
			s.commitQueued()
			<-s.writes
		case <-ctx.Done():
			if op.state.CompareAndSwap(opQueued, opCancelled) || op.state.CompareAndSwap(opTaken, opCancelled) {
				return s.notTaken(ctx.Err())
			}
			return <-op.done // running in a batch that holds the lock: its outcome is on the way
		}
	}
}

// WriteTogether runs f in one write transaction of the store: every write f makes through the
// store (its replay marks, journal, requests, users...) with the context f is given is part of
// it, and they are committed together, in one commit, or not at all. It returns f's error, or the
// commit's; when f fails, none of its writes is made. A write within f that fails undoes only its
// own statements, as a write does in a batch (see write), and f may carry on without it.
//
// It is one write (see write): it waits for its turn and the write lock within the write timeout
// and is committed with the writes queued beside it (group commit). f runs holding the write lock,
// possibly in another goroutine than the caller's: it must be short, make its reads through the
// store (outside the transaction, which is fine for what was committed before it), never wait
// for another process or the network, and must not keep its context beyond its return. A
// WriteTogether within f is part of the same transaction.
//
// It is for the request pipeline's consecutive writes that must each be durable before the
// request goes on, the replay marks with the request's journal record, the reply's journal
// records with the end of the request's hold: one commit, one fsync, where each was one.
func (s *DB) WriteTogether(ctx context.Context, f func(context.Context) error) error {
	if j, ok := ctx.Value(togetherKey{}).(*together); ok && j.db == s {
		return f(ctx)
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return f(context.WithValue(ctx, togetherKey{}, &together{db: s, tx: tx}))
	})
}

// togetherKey is the context key of a WriteTogether's transaction.
type togetherKey struct{}

// together is the transaction of a WriteTogether, which the writes of its function join.
type together struct {
	db *DB
	tx *sql.Tx
}

// run runs a write joining the transaction, in a savepoint: a failing fn undoes only its own
// statements.
func (j *together) run(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	bg := context.Background()
	if _, err := j.tx.ExecContext(bg, `SAVEPOINT joined_write`); err != nil {
		return fmt.Errorf("begin savepoint: %w", err)
	}
	err := fn(ctx, j.tx)
	if err != nil {
		if _, rerr := j.tx.ExecContext(bg, `ROLLBACK TO joined_write`); rerr != nil {
			return fmt.Errorf("the transaction was rolled back with a failed write (%w): %w", err, rerr)
		}
	}
	if _, rerr := j.tx.ExecContext(bg, `RELEASE joined_write`); rerr != nil {
		return errors.Join(err, fmt.Errorf("release savepoint: %w", rerr))
	}
	return err
}

// notTaken is the error of a write given up before it ran, because of cause (its context's error,
// or the driver's once the context ended).
func (s *DB) notTaken(cause error) error {
	if errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("store write given up before it was taken: %w", cause)
	}
	if !errors.Is(cause, context.DeadlineExceeded) {
		cause = fmt.Errorf("%w (%w)", cause, context.DeadlineExceeded)
	}
	return fmt.Errorf("store write: %w (%s; the write lock is held by another connection or process): %w",
		siobroker.ErrWriteTimeout, s.writeTimeout, cause)
}

// commitQueued runs the queued writes in one transaction. It is called in the turn to write.
func (s *DB) commitQueued() {
	s.queued.Lock()
	ops := s.queued.ops
	s.queued.ops = nil
	s.queued.Unlock()
	taken := ops[:0]
	for _, op := range ops {
		if err := op.wait.Err(); err != nil {
			// Past its deadline, not yet given up by its caller: taking it would make the
			// batch give up on the lock at once.
			if op.state.CompareAndSwap(opQueued, opCancelled) {
				op.done <- s.notTaken(err)
			}
			continue
		}
		if op.state.CompareAndSwap(opQueued, opTaken) {
			taken = append(taken, op)
		}
	}
	if len(taken) == 0 {
		return
	}
	s.commitBatch(taken)
}

// commitBatch runs ops in one transaction and sends each one's outcome to it. It waits for
// SQLite's write lock until the first of the ops' contexts ends (the earliest deadline, or a
// caller giving up); then the ops whose context ended fail, and the others are queued again,
// first, for the next turn.
func (s *DB) commitBatch(ops []*writeOp) {
	tx, cancel, err := s.begin(ops)
	if errors.Is(err, errGaveUp) {
		s.requeue(ops, err)
		return
	}
	if err != nil {
		fail(ops, fmt.Errorf("begin transaction: %w", err))
		return
	}
	// The transaction's context is released once it has ended (database/sql stops watching it
	// at commit or rollback).
	defer cancel()
	running := ops[:0]
	for _, op := range ops {
		if op.state.CompareAndSwap(opTaken, opRunning) {
			running = append(running, op)
		}
	}
	if len(running) == 0 {
		_ = tx.Rollback()
		return
	}
	errs, committed := runBatch(tx, running)
	if committed {
		s.commits.Add(1)
	}
	for i, op := range running {
		op.done <- errs[i]
	}
}

// errGaveUp marks a batch that stopped waiting for the write lock because one of its ops'
// contexts ended.
var errGaveUp = errors.New("a write of the batch gave up waiting for the write lock")

// begin starts the batch's transaction, waiting for SQLite's write lock until one of the ops'
// contexts ends. The transaction's context must outlive the wait: database/sql rolls a
// transaction back when its context is done, and the batch's statements and commit must not be
// cut short by a caller once the lock is held. So that context is cancelled only if BEGIN is
// still waiting then. (The turn's holder is one of the callers, blocked here: its own context
// ending must end the wait too.)
func (s *DB) begin(ops []*writeOp) (*sql.Tx, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	begun, expired := false, false
	giveUp := func() {
		mu.Lock()
		defer mu.Unlock()
		if !begun {
			expired = true
			cancel()
		}
	}
	stops := make([]func() bool, len(ops))
	for i, op := range ops {
		stops[i] = context.AfterFunc(op.wait, giveUp)
	}
	tx, err := s.beginOnWriter(ctx)
	mu.Lock()
	begun = true
	gaveUp := expired
	mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	if gaveUp || isBusy(err) {
		// busy_timeout is the write timeout, so a lock still held when it ran out is one held
		// past the writes' deadlines too.
		cancel()
		switch {
		case err == nil:
			// Begun as the wait was given up: the context rolls it back, and may still be doing
			// so when Rollback returns; the next turn would find the writer in a transaction.
			_ = tx.Rollback()
			s.dropWriter()
			return nil, nil, errGaveUp
		case errors.Is(err, context.Canceled):
			return nil, nil, errGaveUp // our own cancellation, not the caller's
		}
		return nil, nil, fmt.Errorf("%w: %w", errGaveUp, err)
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return tx, cancel, nil
}

// beginOnWriter begins a write transaction on the store's writer connection, opening it first if
// it is not open. Every write runs on the one connection because SQLite drops a connection's
// cache of pages whenever another connection has written since its last transaction: writes
// spread over the pool found every page they touched dropped, and read each again from the file
// (a pread each). A connection that fails to begin for another reason than the lock or ctx is
// closed, and the next write opens another.
//
// The writer keeps its temporary files in memory (temp_store MEMORY): those are the savepoints'
// sub-journals (each write of a batch runs in one, see write), and on the default one that passed
// 64 KiB became a file, its page images written to it a syscall each (7% of the broker's CPU,
// issue 20). The readers keep the default: a report's sort or grouping may spill to a file.
func (s *DB) beginOnWriter(ctx context.Context) (*sql.Tx, error) {
	if s.closed {
		return nil, errors.New("the store is closed")
	}
	if s.writer == nil {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("open the writer connection: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `PRAGMA temp_store = MEMORY`); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("open the writer connection: temp_store: %w", err)
		}
		s.writer = conn
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil && !isBusy(err) && ctx.Err() == nil {
		s.dropWriter()
	}
	return tx, err
}

// dropWriter closes the writer connection, once a transaction still ending on it has ended, and
// leaves the next write to open another. The connection is closed, not given back to the pool,
// where it would serve reads with the writer's temp_store. Called in the turn to write.
func (s *DB) dropWriter() {
	if s.writer == nil {
		return
	}
	// Raw returning ErrBadConn makes database/sql discard the connection rather than pool it.
	_ = s.writer.Raw(func(any) error { return driver.ErrBadConn })
	_ = s.writer.Close()
	s.writer = nil
}

// isBusy reports whether err is SQLITE_BUSY (or one of its extended codes).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// requeue puts the ops of a batch that gave up on the write lock (err) back at the head of the
// queue, in order, unless their context has ended (they fail with it and err).
func (s *DB) requeue(ops []*writeOp, err error) {
	var again []*writeOp
	for _, op := range ops {
		if werr := op.wait.Err(); werr != nil {
			if op.state.CompareAndSwap(opTaken, opCancelled) {
				op.done <- s.notTaken(fmt.Errorf("%w (%w)", err, werr))
			}
			continue
		}
		if op.state.CompareAndSwap(opTaken, opQueued) {
			again = append(again, op)
		}
	}
	if len(again) == 0 {
		return
	}
	s.queued.Lock()
	s.queued.ops = append(again, s.queued.ops...)
	s.queued.Unlock()
}

// fail sends err to every op its caller still waits for.
func fail(ops []*writeOp, err error) {
	for _, op := range ops {
		if op.state.CompareAndSwap(opTaken, opCancelled) {
			op.done <- err
		}
	}
}

// runBatch runs ops in tx, which holds the write lock, commits it and returns each one's outcome,
// and whether the transaction was committed.
func runBatch(tx *sql.Tx, ops []*writeOp) ([]error, bool) {
	errs := make([]error, len(ops))
	failAll := func(err error) ([]error, bool) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs, false
	}
	bg := context.Background()
	if len(ops) == 1 {
		// Alone in the transaction: no savepoint needed, its failure rolls back only itself.
		if err := ops[0].fn(ops[0].ctx, tx); err != nil {
			_ = tx.Rollback()
			errs[0] = err
			return errs, false
		}
	} else {
		for i, op := range ops {
			if _, err := tx.ExecContext(bg, `SAVEPOINT write_op`); err != nil {
				_ = tx.Rollback()
				return failAll(fmt.Errorf("begin savepoint: %w", err))
			}
			if errs[i] = op.fn(op.ctx, tx); errs[i] != nil {
				// SQLite may have rolled the whole transaction back itself (a full disk, an I/O
				// error): then the savepoint is gone, and every write of the batch with it.
				if _, err := tx.ExecContext(bg, `ROLLBACK TO write_op`); err != nil {
					_ = tx.Rollback()
					return failAll(fmt.Errorf("the transaction was rolled back with a failed write (%w): %w", errs[i], err))
				}
			}
			if _, err := tx.ExecContext(bg, `RELEASE write_op`); err != nil {
				_ = tx.Rollback()
				return failAll(fmt.Errorf("release savepoint: %w", err))
			}
		}
	}
	if err := tx.Commit(); err != nil { // the driver rolls back a failed commit
		return failAll(fmt.Errorf("commit: %w", err))
	}
	return errs, true
}

// Commits returns how many write transactions the store has committed through its writers' turn
// (every write but the schema's migrations) since it was opened. A batch of writes committed
// together (group commit, see write) counts once: it is the commits, each a write of the WAL and,
// with SynchronousFull, an fsync, that a request's CPU and latency pay for.
func (s *DB) Commits() uint64 { return s.commits.Load() }

// exec runs one writing statement in a write transaction (see write).
func (s *DB) exec(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err = s.execIn(ctx, tx, query, args...)
		return err
	})
	return res, err
}

// execIn runs one statement of a write (see write) in its transaction, prepared once (prepared).
func (s *DB) execIn(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	stmt, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
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
	if s.writes != nil {
		// In the turn to write: a batch still running keeps the writer until it has committed,
		// and a write queued behind Close fails rather than opening a writer nothing closes.
		s.writes <- struct{}{}
		s.closed = true
		s.dropWriter()
		<-s.writes
	}
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
	fresh, _, err := s.MarkRequest(ctx, siobroker.ReplayMark{Key: messageID, SenderID: senderID, At: at})
	return fresh, err
}

// MarkOnce records a replay mark of a signed call outside the request pipeline (a dashboard
// login, a report request: siobroker.ReplayMarks) and reports whether it is new. The marks share
// seen_messages with the messageIds of requests, so that ForgetSeenBefore prunes them after the
// same retention; callers give keys a prefix of their own, which no client messageId carries.
func (s *DB) MarkOnce(ctx context.Context, key string, at time.Time) (bool, error) {
	fresh, err := s.MarkSeen(ctx, key, "", at)
	if err != nil {
		return false, fmt.Errorf("replay mark: %w", err)
	}
	return fresh, nil
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
