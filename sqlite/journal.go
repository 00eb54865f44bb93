package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
)

// The permanent journal (§37, 38, 50 of the Rules) in the embedded store. It satisfies
// siobroker.Journal, and takes the chain logic (Link, Verifier) from package journal, which the
// PostgreSQL journal shares.

// migrationJournal creates the journal. seq is the rowid, assigned by Append (never by
// AUTOINCREMENT) so that it is the chain's own numbering. at is kept as text in Astana time for
// people and as Unix milliseconds for filters and exact reads; ComputeHash covers the time to the
// millisecond. Triggers refuse UPDATE and DELETE.
const migrationJournal = `CREATE TABLE journal (
		seq          INTEGER PRIMARY KEY CHECK (seq > 0),
		at           TEXT NOT NULL,
		at_unix_ms   INTEGER NOT NULL,
		kind         TEXT NOT NULL,
		request_id   TEXT NOT NULL,
		message_id   TEXT NOT NULL,
		signer_iin   TEXT NOT NULL,
		organisation TEXT NOT NULL,
		service      INTEGER NOT NULL,
		code         TEXT NOT NULL,
		data         BLOB NOT NULL,
		prev_hash    TEXT NOT NULL,
		hash         TEXT NOT NULL
	);
	CREATE INDEX journal_at ON journal(at_unix_ms, seq);
	CREATE INDEX journal_kind ON journal(kind, seq);
	CREATE INDEX journal_organisation ON journal(organisation, seq);
	CREATE INDEX journal_signer ON journal(signer_iin, seq);
	CREATE INDEX journal_service ON journal(service, seq);
	CREATE INDEX journal_request ON journal(request_id);
	` + journalTriggers

// journalTriggers make the journal append-only through SQL too.
const journalTriggers = `CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
	BEGIN SELECT RAISE(ABORT, 'journal is append-only: a record is never changed'); END;
	CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
	BEGIN SELECT RAISE(ABORT, 'journal is append-only: a record is never deleted'); END;`

const journalColumns = `seq, at, at_unix_ms, kind, request_id, message_id, signer_iin, organisation, service, code,
	data, prev_hash, hash`

// Journal is the permanent journal kept in the embedded store.
type Journal struct {
	db *DB
}

// Journal returns the store's permanent journal.
func (s *DB) Journal() *Journal { return &Journal{db: s} }

// The journal's head, and the insert of one record.
const (
	journalHeadSQL   = `SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1`
	journalInsertSQL = `INSERT INTO journal(` + journalColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// Append assigns Seq (1, 2, ...), PrevHash (the previous record's Hash, "" for the first) and
// Hash to each record in order and appends them in one transaction. BEGIN IMMEDIATE takes
// SQLite's write lock first, so appenders serialise, in this process and in any other that
// opens the same file. At is truncated to the millisecond and converted to Astana time. A record
// without At or Kind is refused, and then nothing is appended.
func (j *Journal) Append(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	// Check every record before taking the lock.
	if _, err := journal.Link(0, "", recs); err != nil {
		return nil, err
	}
	st, err := j.prepareAppend(ctx)
	if err != nil {
		return nil, err
	}
	var out []siobroker.JournalRecord
	err = j.db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		out, err = j.appendTx(ctx, tx, st, recs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendOnce is Append without the outcome records the journal holds already
// (siobroker.OutcomeWriter): the look-up and the append are one transaction.
func (j *Journal) AppendOnce(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	if _, err := journal.Link(0, "", recs); err != nil {
		return nil, err
	}
	st, err := j.prepareAppend(ctx)
	if err != nil {
		return nil, err
	}
	held, err := j.db.prepared(ctx, journalHeldSQL)
	if err != nil {
		return nil, err
	}
	var out []siobroker.JournalRecord
	err = j.db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		stmt := tx.StmtContext(ctx, held)
		first, err := journal.FirstOutcomes(recs, func(r siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
			rows, err := stmt.QueryContext(ctx, r.RequestID, r.Service, string(r.Kind))
			if err != nil {
				return nil, err
			}
			return scanHeld(rows, r)
		})
		if err != nil || len(first) == 0 {
			out = nil
			return err
		}
		out, err = j.appendTx(ctx, tx, st, first)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// journalHeldSQL reads the data of the records of a request, service and kind.
const journalHeldSQL = `SELECT data FROM journal WHERE request_id = ? AND service = ? AND kind = ?`

// scanHeld reads the rows of journalHeldSQL as records like r with their data.
func scanHeld(rows *sql.Rows, r siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	defer rows.Close()
	var held []siobroker.JournalRecord
	for rows.Next() {
		h := siobroker.JournalRecord{Kind: r.Kind, RequestID: r.RequestID, Service: r.Service}
		if err := rows.Scan(&h.Data); err != nil {
			return nil, err
		}
		held = append(held, h)
	}
	return held, rows.Err()
}

// appendStmts are the prepared statements of an append: the head, and the insert.
type appendStmts struct{ head, insert *sql.Stmt }

// prepareAppend prepares the statements of an append, before the write lock is taken.
func (j *Journal) prepareAppend(ctx context.Context) (appendStmts, error) {
	head, err := j.db.prepared(ctx, journalHeadSQL)
	if err != nil {
		return appendStmts{}, err
	}
	insert, err := j.db.prepared(ctx, journalInsertSQL)
	return appendStmts{head, insert}, err
}

// appendTx links recs to the journal's head and inserts them, in tx.
func (j *Journal) appendTx(ctx context.Context, tx *sql.Tx, st appendStmts, recs []siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	var seq int64
	var hash string
	err := tx.StmtContext(ctx, st.head).QueryRowContext(ctx).Scan(&seq, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read journal head: %w", err)
	}
	linked, err := journal.Link(seq, hash, recs)
	if err != nil {
		return nil, err
	}
	stmt := tx.StmtContext(ctx, st.insert)
	for _, r := range linked {
		data := r.Data
		if data == nil {
			data = []byte{} // NOT NULL; read back as empty, which hashes alike
		}
		if _, err := stmt.ExecContext(ctx, r.Seq, siobroker.FormatTime(r.At), r.At.UnixMilli(), string(r.Kind),
			r.RequestID, r.MessageID, r.SignerIIN, r.Organisation, r.Service, r.Code, data, r.PrevHash, r.Hash); err != nil {
			return nil, fmt.Errorf("append journal record %d: %w", r.Seq, err)
		}
	}
	return linked, nil
}

// Query returns the records f selects, ordered by Seq. Zero fields of f do not filter.
func (j *Journal) Query(ctx context.Context, f siobroker.JournalFilter) ([]siobroker.JournalRecord, error) {
	q, args := journal.SelectSQL(journalColumns, "journal", f, func(int) string { return "?" })
	rows, err := j.db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query journal: %w", err)
	}
	defer rows.Close()
	var out []siobroker.JournalRecord
	for rows.Next() {
		r, _, err := scanJournal(rows)
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

// scanJournal reads one row of journalColumns; atText is the at column as stored.
func scanJournal(row rowScanner) (r siobroker.JournalRecord, atText string, err error) {
	var ms int64
	var kind string
	err = row.Scan(&r.Seq, &atText, &ms, &kind, &r.RequestID, &r.MessageID, &r.SignerIIN, &r.Organisation,
		&r.Service, &r.Code, &r.Data, &r.PrevHash, &r.Hash)
	if err != nil {
		return siobroker.JournalRecord{}, "", err
	}
	r.At = time.UnixMilli(ms).In(siobroker.Astana)
	r.Kind = siobroker.JournalKind(kind)
	if len(r.Data) == 0 {
		r.Data = nil
	}
	return r, atText, nil
}

// Head returns the Seq and Hash of the last record; 0 and "" when the journal is empty.
func (j *Journal) Head(ctx context.Context) (int64, string, error) {
	var seq int64
	var hash string
	err := j.db.db.QueryRowContext(ctx, `SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read journal head: %w", err)
	}
	return seq, hash, nil
}

// Verify recomputes the chain from the first record and returns a *journal.ChainError naming the
// first record whose hash or link is wrong, or the first Seq missing. It also checks that the
// at text, which the hash does not cover, says the same time as at_unix_ms, which it does.
// Records removed from the end leave no trace in the chain: compare Head with a head kept
// elsewhere to catch that.
func (j *Journal) Verify(ctx context.Context) error {
	// One read transaction: a consistent snapshot however long the walk takes, beside appenders.
	tx, err := j.db.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("verify journal: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+journalColumns+` FROM journal ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("verify journal: %w", err)
	}
	defer rows.Close()
	var chain journal.Verifier
	for rows.Next() {
		seq, _ := chain.Head()
		r, atText, err := scanJournal(rows)
		if err != nil {
			return fmt.Errorf("verify journal after record %d: %w", seq, err)
		}
		if err := chain.Check(r); err != nil {
			return err
		}
		if atText != siobroker.FormatTime(r.At) {
			return &journal.ChainError{Seq: r.Seq, Problem: fmt.Sprintf("its time as text %q differs from its recorded time %s", atText, siobroker.FormatTime(r.At))}
		}
	}
	if err := rows.Err(); err != nil {
		seq, _ := chain.Head()
		return fmt.Errorf("verify journal after record %d: %w", seq, err)
	}
	return nil
}
