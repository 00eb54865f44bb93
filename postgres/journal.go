// The permanent journal in PostgreSQL, through pgx (configuration:
// journal.driver: postgres, journal.dsn). Several brokers may share one journal: appends
// serialise on a transaction-scoped advisory lock, so the chain stays one chain.
//
// OpenJournal creates the table sio_journal and its triggers, in the first schema of the connection's
// search_path, if they are missing. The triggers refuse UPDATE, DELETE and TRUNCATE. The owner of
// the table can still disable them, so in production let a separate role own the table and give
// the broker's role only SELECT and INSERT; the hash chain catches what gets past that. It also
// creates sio_replay_marks, the shared replay marks of dashboard logins and report requests
// (ReplayMarks), on which the broker's role needs SELECT, INSERT and DELETE, and the shared
// replay marks of requests (RequestMarks): sio_request_marks (SELECT, INSERT, UPDATE, DELETE)
// and sio_request_content (SELECT, INSERT, DELETE); and the request index of reports
// (RequestIndex): sio_request_index and sio_request_index_mark (SELECT, INSERT, UPDATE, DELETE).

package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
)

// lockKey is the key of the advisory lock that serialises appends and schema creation. It is
// "siojrnl" in ASCII, unlikely to collide with another application's key in the same database.
const lockKey int64 = 0x73696f6a726e6c

// schema creates what is missing. It runs under the advisory lock, so that brokers starting
// together do not race on CREATE ... IF NOT EXISTS (which is not safe against concurrent runs).
const schema = `
CREATE TABLE IF NOT EXISTS sio_journal (
	seq          bigint PRIMARY KEY CHECK (seq > 0),
	at           timestamptz NOT NULL,
	at_unix_ms   bigint NOT NULL,
	kind         text NOT NULL,
	request_id   text NOT NULL,
	message_id   text NOT NULL,
	signer_iin   text NOT NULL,
	organisation text NOT NULL,
	service      integer NOT NULL,
	code         text NOT NULL,
	data         bytea NOT NULL,
	prev_hash    text NOT NULL,
	hash         text NOT NULL,
	CHECK (at_unix_ms = (extract(epoch FROM at) * 1000)::bigint)
);
CREATE INDEX IF NOT EXISTS sio_journal_at ON sio_journal (at_unix_ms, seq);
CREATE INDEX IF NOT EXISTS sio_journal_kind ON sio_journal (kind, seq);
CREATE INDEX IF NOT EXISTS sio_journal_organisation ON sio_journal (organisation, seq);
CREATE INDEX IF NOT EXISTS sio_journal_signer ON sio_journal (signer_iin, seq);
CREATE INDEX IF NOT EXISTS sio_journal_service ON sio_journal (service, seq);
CREATE INDEX IF NOT EXISTS sio_journal_request ON sio_journal (request_id);
CREATE OR REPLACE FUNCTION sio_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'sio_journal is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'sio_journal'::regclass AND tgname = 'sio_journal_no_change') THEN
		CREATE TRIGGER sio_journal_no_change BEFORE UPDATE OR DELETE ON sio_journal
			FOR EACH ROW EXECUTE FUNCTION sio_journal_append_only();
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'sio_journal'::regclass AND tgname = 'sio_journal_no_truncate') THEN
		CREATE TRIGGER sio_journal_no_truncate BEFORE TRUNCATE ON sio_journal
			FOR EACH STATEMENT EXECUTE FUNCTION sio_journal_append_only();
	END IF;
END
$$;`

// schemaReady reports whether the table and both triggers exist.
const schemaReady = `SELECT to_regclass('sio_journal') IS NOT NULL
	AND (SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('sio_journal')
		AND tgname IN ('sio_journal_no_change', 'sio_journal_no_truncate')) = 2
	AND to_regclass('sio_replay_marks') IS NOT NULL
	AND to_regclass('sio_request_marks') IS NOT NULL AND to_regclass('sio_request_content') IS NOT NULL
	AND to_regclass('sio_request_index') IS NOT NULL AND to_regclass('sio_request_index_mark') IS NOT NULL`

const columns = `seq, at, at_unix_ms, kind, request_id, message_id, signer_iin, organisation, service, code,
	data, prev_hash, hash`

// Journal is the permanent journal in PostgreSQL. It satisfies siobroker.Journal.
type Journal struct {
	pool         *pgxpool.Pool
	writeTimeout time.Duration
}

// DefaultWriteTimeout is JournalOptions.WriteTimeout when it is zero.
const DefaultWriteTimeout = 5 * time.Second

// serverFirst is how much longer than the write timeout an append's context lasts: the server's
// own lock_timeout (the write timeout) ends a statement waiting for a lock cleanly, with an error
// and the connection kept, where the context ending first would close the connection. The
// context still bounds a server or network that does not answer at all.
const serverFirst = time.Second

// JournalOptions tune the journal (configuration key store.write_timeout). The zero value is the
// defaults.
type JournalOptions struct {
	// WriteTimeout bounds an append: waiting for the journal's advisory lock, and for the table's
	// locks another session holds, ends after it (the sessions' lock_timeout, unless the DSN sets
	// one), and the whole append after it and a second more. The append then fails with an
	// error wrapping siobroker.ErrWriteTimeout, and nothing is appended. Zero is
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
}

var _ siobroker.Journal = (*Journal)(nil)

// OpenJournal connects to the database at dsn (a URL or key=value string; search_path may be set in it)
// and creates the journal's table and triggers if they are missing. It uses the default
// JournalOptions.
func OpenJournal(ctx context.Context, dsn string) (*Journal, error) {
	return OpenJournalWith(ctx, dsn, JournalOptions{})
}

// OpenJournalWith is OpenJournal with opts.
func OpenJournalWith(ctx context.Context, dsn string, opts JournalOptions) (*Journal, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("journal database: %w", err)
	}
	return OpenJournalConfig(ctx, cfg, opts)
}

// OpenJournalConfig is OpenJournalWith with a parsed configuration.
func OpenJournalConfig(ctx context.Context, cfg *pgxpool.Config, opts JournalOptions) (*Journal, error) {
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.WriteTimeout < time.Millisecond {
		return nil, fmt.Errorf("postgres: JournalOptions.WriteTimeout must be at least 1ms, got %s", opts.WriteTimeout)
	}
	if _, set := cfg.ConnConfig.RuntimeParams["lock_timeout"]; !set {
		// For the whole session, not per transaction: a SET LOCAL would cost every append a
		// round trip. Reads seldom wait for a lock, and when they do (a table locked whole)
		// the same bound suits them.
		cfg.ConnConfig.RuntimeParams["lock_timeout"] = strconv.FormatInt(opts.WriteTimeout.Milliseconds(), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("journal database: %w", err)
	}
	j := &Journal{pool: pool, writeTimeout: opts.WriteTimeout}
	if err := j.inLock(ctx, func(tx pgx.Tx) error {
		// DDL needs rights over the schema that a least-privilege role lacks even when nothing
		// is missing, so it runs only when something is.
		var ready bool
		if err := tx.QueryRow(ctx, schemaReady).Scan(&ready); err != nil {
			return err
		}
		if ready {
			return nil
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, replaySchema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, requestMarksSchema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, requestIndexSchema)
		return err
	}); err != nil {
		pool.Close()
		return nil, fmt.Errorf("create journal schema: %w", err)
	}
	return j, nil
}

// Close closes the journal's connections.
func (j *Journal) Close() { j.pool.Close() }

// Ping reports whether the database answers.
func (j *Journal) Ping(ctx context.Context) error { return j.pool.Ping(ctx) }

// lockNotAvailable is SQLSTATE 55P03, lock_timeout's error.
const lockNotAvailable = "55P03"

// inWriteLock is inLock bounded by the write timeout; an append that was not made within it fails
// with an error wrapping siobroker.ErrWriteTimeout.
func (j *Journal) inWriteLock(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, j.writeTimeout+serverFirst)
	defer cancel()
	return j.timedOut("journal append", j.inLock(ctx, func(tx pgx.Tx) error { return fn(ctx, tx) }))
}

// timedOut wraps err, of a write named what, in siobroker.ErrWriteTimeout when the write was not
// taken within the write timeout (the server's lock_timeout, or the context bounding it), so
// that the broker refuses the request at once and makes the writes that follow in the background.
// Any other error, and nil, it returns as it is.
func (j *Journal) timedOut(what string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &pgErr) && pgErr.Code == lockNotAvailable {
		return fmt.Errorf("%s: %w (%s; a lock it needs is held by another session, or the database does not answer): %w",
			what, siobroker.ErrWriteTimeout, j.writeTimeout, err)
	}
	return err
}

// inLock runs fn in a read-committed transaction that holds the journal's advisory lock. Read
// committed matters: each statement after the lock sees what the previous holder committed (under
// repeatable read the snapshot would predate the wait). The lock is released when the
// transaction ends, and a second broker waiting for it then reads the head this one wrote.
func (j *Journal) inLock(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := j.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("begin journal transaction: %w", err)
	}
	// Commit and rollback run even when ctx is cancelled, so that the outcome is known.
	bg := context.WithoutCancel(ctx)
	defer tx.Rollback(bg) // after Commit, a no-op
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return fmt.Errorf("lock journal: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(bg); err != nil {
		return fmt.Errorf("commit journal transaction: %w", err)
	}
	return nil
}

// Append assigns Seq, PrevHash and Hash to each record in order and appends them in one
// transaction, under an advisory lock that every broker sharing the database takes. At is
// truncated to the millisecond and converted to Astana time. A record without At or Kind is
// refused, and then nothing is appended.
func (j *Journal) Append(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	norm, err := normaliseAll(recs)
	if err != nil {
		return nil, err
	}
	var out []siobroker.JournalRecord
	err = j.inWriteLock(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out, err = appendTx(ctx, tx, norm)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendOnce is Append without the outcome records the journal holds already
// (siobroker.OutcomeWriter): the look-up runs under the journal's lock, in the append's
// transaction.
func (j *Journal) AppendOnce(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	norm, err := normaliseAll(recs)
	if err != nil || len(norm) == 0 {
		return nil, err
	}
	var out []siobroker.JournalRecord
	err = j.inWriteLock(ctx, func(ctx context.Context, tx pgx.Tx) error {
		first, err := journal.FirstOutcomes(norm, func(r siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
			rows, err := tx.Query(ctx, `SELECT data FROM sio_journal WHERE request_id = $1 AND service = $2 AND kind = $3`,
				r.RequestID, r.Service, string(r.Kind))
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, func(row pgx.CollectableRow) (siobroker.JournalRecord, error) {
				h := siobroker.JournalRecord{Kind: r.Kind, RequestID: r.RequestID, Service: r.Service}
				return h, row.Scan(&h.Data)
			})
		})
		if err != nil || len(first) == 0 {
			out = nil
			return err
		}
		out, err = appendTx(ctx, tx, first)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// normaliseAll checks and normalises every record before the lock is taken.
func normaliseAll(recs []siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	norm := make([]siobroker.JournalRecord, len(recs))
	for i, r := range recs {
		r, err := journal.Normalise(r)
		if err != nil {
			return nil, fmt.Errorf("journal record %d of %d: %w", i+1, len(recs), err)
		}
		norm[i] = r
	}
	return norm, nil
}

// appendTx links recs to the journal's head and inserts them, in tx.
func appendTx(ctx context.Context, tx pgx.Tx, recs []siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	seq, hash, err := head(ctx, tx)
	if err != nil {
		return nil, err
	}
	linked, err := journal.Link(seq, hash, recs)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	for _, r := range linked {
		data := r.Data
		if data == nil {
			data = []byte{}
		}
		b.Queue(`INSERT INTO sio_journal (`+columns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			r.Seq, r.At, r.At.UnixMilli(), string(r.Kind), r.RequestID, r.MessageID, r.SignerIIN, r.Organisation,
			r.Service, r.Code, data, r.PrevHash, r.Hash)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("append to journal after record %d: %w", seq, err)
	}
	return linked, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func head(ctx context.Context, q querier) (int64, string, error) {
	var seq int64
	var hash string
	err := q.QueryRow(ctx, `SELECT seq, hash FROM sio_journal ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read journal head: %w", err)
	}
	return seq, hash, nil
}

// Head returns the Seq and Hash of the last record; 0 and "" when the journal is empty.
func (j *Journal) Head(ctx context.Context) (int64, string, error) { return head(ctx, j.pool) }

// Query returns the records f selects, ordered by Seq. Zero fields of f do not filter.
func (j *Journal) Query(ctx context.Context, f siobroker.JournalFilter) ([]siobroker.JournalRecord, error) {
	q, args := journal.SelectSQL(columns, "sio_journal", f, func(n int) string { return "$" + strconv.Itoa(n) })
	rows, err := j.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query journal: %w", err)
	}
	defer rows.Close()
	var out []siobroker.JournalRecord
	for rows.Next() {
		r, _, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("query journal: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query journal: %w", err)
	}
	return out, nil
}

// scan reads one row of columns. at is the timestamptz column, which the hash does not cover.
func scan(row pgx.Row) (r siobroker.JournalRecord, at time.Time, err error) {
	var ms int64
	var kind string
	err = row.Scan(&r.Seq, &at, &ms, &kind, &r.RequestID, &r.MessageID, &r.SignerIIN, &r.Organisation,
		&r.Service, &r.Code, &r.Data, &r.PrevHash, &r.Hash)
	if err != nil {
		return siobroker.JournalRecord{}, time.Time{}, err
	}
	r.At = time.UnixMilli(ms).In(siobroker.Astana)
	r.Kind = siobroker.JournalKind(kind)
	if len(r.Data) == 0 {
		r.Data = nil
	}
	return r, at, nil
}

// Verify recomputes the chain from the first record and returns an error wrapping a
// *journal.ChainError that names the first record whose hash or link is wrong, or the first Seq
// missing. It also checks that the at column, which the hash does not cover, says the same time
// as at_unix_ms, which it does. Records removed from the end leave no trace in the chain: compare
// Head with a head kept elsewhere to catch that.
func (j *Journal) Verify(ctx context.Context) error {
	// One repeatable-read transaction: a consistent snapshot however long the walk takes.
	return pgx.BeginTxFunc(ctx, j.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+columns+` FROM sio_journal ORDER BY seq`)
		if err != nil {
			return fmt.Errorf("verify journal: %w", err)
		}
		defer rows.Close()
		var v journal.Verifier
		for rows.Next() {
			r, at, err := scan(rows)
			if err != nil {
				seq, _ := v.Head()
				return fmt.Errorf("verify journal after record %d: %w", seq, err)
			}
			if err := v.Check(r); err != nil {
				return err
			}
			if !at.Equal(r.At) {
				return &journal.ChainError{Seq: r.Seq, Problem: fmt.Sprintf("its time %s differs from its recorded time %s",
					siobroker.FormatTime(at), siobroker.FormatTime(r.At))}
			}
		}
		if err := rows.Err(); err != nil {
			seq, _ := v.Head()
			return fmt.Errorf("verify journal after record %d: %w", seq, err)
		}
		return nil
	})
}
