package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
)

// The request index (siobroker.RequestIndex) beside the embedded journal: one row per request,
// derived from the journal by operator/reports.Indexer and rebuilt from it at will. Unlike the
// journal it is rewritten as a request's records come in, so it has no append-only triggers; it
// holds nothing the journal does not.

// migrationRequestIndex creates the index and its mark. The indexes serve a report's scope and
// period (an organisation's entries of a month, in time order) and an oversight report's period.
const migrationRequestIndex = `CREATE TABLE request_index (
		request_id       TEXT PRIMARY KEY,
		seq              INTEGER NOT NULL,
		last_seq         INTEGER NOT NULL,
		at_unix_ms       INTEGER NOT NULL,
		month            TEXT NOT NULL,
		message_id       TEXT NOT NULL,
		signer_iin       TEXT NOT NULL,
		signer_name      TEXT NOT NULL,
		organisation     TEXT NOT NULL,
		erdr_code        TEXT NOT NULL,
		department       TEXT NOT NULL,
		basis            INTEGER NOT NULL,
		case_ref         TEXT NOT NULL,
		article          TEXT NOT NULL,
		subject_iin      TEXT NOT NULL,
		subject_bin      TEXT NOT NULL,
		services         TEXT NOT NULL,
		service_outcomes TEXT NOT NULL,
		purpose          TEXT NOT NULL,
		replied_unix_ms  INTEGER NOT NULL,
		code             TEXT NOT NULL,
		outcome          TEXT NOT NULL,
		note             TEXT NOT NULL
	);
	CREATE INDEX request_index_scope ON request_index(erdr_code, organisation, at_unix_ms, seq);
	CREATE INDEX request_index_at ON request_index(at_unix_ms, seq);
	CREATE TABLE request_index_mark (
		id          INTEGER PRIMARY KEY CHECK (id = 1),
		through_seq INTEGER NOT NULL
	);
	INSERT INTO request_index_mark(id, through_seq) VALUES (1, 0);`

var _ siobroker.RequestIndex = (*DB)(nil)

func sqliteMark(int) string { return "?" }

// IndexedThrough returns the request index's mark.
func (s *DB) IndexedThrough(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRowContext(ctx, `SELECT through_seq FROM request_index_mark WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read the request index's mark: %w", err)
	}
	return seq, nil
}

// RequestEntries returns the entries of requestIDs the index holds.
func (s *DB) RequestEntries(ctx context.Context, requestIDs []string) ([]siobroker.RequestEntry, error) {
	var out []siobroker.RequestEntry
	// In chunks: SQLite bounds the number of parameters of a statement.
	for chunk := range chunks(requestIDs, 500) {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, `SELECT `+journal.RequestColumns+` FROM request_index WHERE request_id IN (`+marks+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read request index entries: %w", err)
		}
		out, err = scanRequests(rows, out, nil)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// chunks yields s in pieces of at most n.
func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// scanRequests reads the rows of journal.RequestColumns, appending each entry to out, or giving
// it to each when each is not nil. It closes rows.
func scanRequests(rows *sql.Rows, out []siobroker.RequestEntry, each func(siobroker.RequestEntry) error) ([]siobroker.RequestEntry, error) {
	defer rows.Close()
	if each == nil {
		each = func(e siobroker.RequestEntry) error {
			out = append(out, e)
			return nil
		}
	}
	return out, journal.EachRequest(rows, each)
}

// PutRequestEntries writes entries and moves the mark from from to through, in one transaction,
// if the mark is still from.
func (s *DB) PutRequestEntries(ctx context.Context, from, through int64, entries []siobroker.RequestEntry) error {
	insert, err := s.prepared(ctx, journal.RequestInsertSQL("request_index", sqliteMark))
	if err != nil {
		return err
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE request_index_mark SET through_seq = ? WHERE id = 1 AND through_seq = ?`, through, from)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("request index: expected its mark at %d: %w", from, siobroker.ErrIndexMoved)
		}
		stmt := tx.StmtContext(ctx, insert)
		for _, e := range entries {
			if _, err := stmt.ExecContext(ctx, journal.RequestArgs(e)...); err != nil {
				return fmt.Errorf("write request index entry %s: %w", e.RequestID, err)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, siobroker.ErrIndexMoved) {
		return fmt.Errorf("write the request index: %w", err)
	}
	return err
}

// ResetRequestIndex empties the index and sets its mark to 0.
func (s *DB) ResetRequestIndex(ctx context.Context) error {
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM request_index`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE request_index_mark SET through_seq = 0 WHERE id = 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset the request index: %w", err)
	}
	return nil
}

// ScanRequests counts, then streams, the entries f selects, in one read transaction: the count
// and the rows are of the same snapshot, whatever the indexer writes meanwhile.
func (s *DB) ScanRequests(ctx context.Context, f siobroker.RequestFilter, total func(int) error, row func(siobroker.RequestEntry) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("read request index: %w", err)
	}
	defer tx.Rollback()
	q, args := journal.RequestCountSQL("request_index", f, sqliteMark)
	var n int
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return fmt.Errorf("count request index entries: %w", err)
	}
	if err := total(n); err != nil {
		return err
	}
	q, args = journal.RequestSelectSQL("request_index", f, sqliteMark)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read request index: %w", err)
	}
	_, err = scanRequests(rows, nil, row)
	return err
}

// SummariseRequests gives the monthly summary of the entries f selects.
func (s *DB) SummariseRequests(ctx context.Context, f siobroker.RequestFilter, row func(siobroker.RequestSummary) error) error {
	q, args := journal.RequestSummarySQL("request_index", f, sqliteMark)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("summarise request index: %w", err)
	}
	defer rows.Close()
	return journal.EachRequestSummary(rows, row)
}
