package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
)

// requestIndexSchema is the request index of reports (siobroker.RequestIndex) beside the journal,
// which every broker sharing the journal shares: whichever broker's indexer folds a journal record
// in, the others find it folded. It is derived from sio_journal and rebuilt from it at will, so it
// is rewritten and emptied: the broker's role needs SELECT, INSERT, UPDATE and DELETE on both
// tables.
const requestIndexSchema = `
CREATE TABLE IF NOT EXISTS sio_request_index (
	request_id       text PRIMARY KEY,
	seq              bigint NOT NULL,
	last_seq         bigint NOT NULL,
	at_unix_ms       bigint NOT NULL,
	month            text NOT NULL,
	message_id       text NOT NULL,
	signer_iin       text NOT NULL,
	signer_name      text NOT NULL,
	organisation     text NOT NULL,
	erdr_code        text NOT NULL,
	department       text NOT NULL,
	basis            integer NOT NULL,
	case_ref         text NOT NULL,
	article          text NOT NULL,
	subject_iin      text NOT NULL,
	subject_bin      text NOT NULL,
	services         text NOT NULL,
	service_outcomes text NOT NULL,
	purpose          text NOT NULL,
	replied_unix_ms  bigint NOT NULL,
	code             text NOT NULL,
	outcome          text NOT NULL,
	note             text NOT NULL
);
CREATE INDEX IF NOT EXISTS sio_request_index_scope ON sio_request_index (erdr_code, organisation, at_unix_ms, seq);
CREATE INDEX IF NOT EXISTS sio_request_index_at ON sio_request_index (at_unix_ms, seq);
CREATE TABLE IF NOT EXISTS sio_request_index_mark (
	id          integer PRIMARY KEY CHECK (id = 1),
	through_seq bigint NOT NULL
);
INSERT INTO sio_request_index_mark (id, through_seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;`

// RequestIndex is the request index in the journal's database. It satisfies
// siobroker.RequestIndex.
type RequestIndex struct{ j *Journal }

var _ siobroker.RequestIndex = RequestIndex{}

// RequestIndex returns the request index kept in the journal's database, over its connections.
func (j *Journal) RequestIndex() RequestIndex { return RequestIndex{j: j} }

func pgMark(n int) string { return "$" + strconv.Itoa(n) }

// IndexedThrough returns the index's mark.
func (x RequestIndex) IndexedThrough(ctx context.Context) (int64, error) {
	var seq int64
	if err := x.j.pool.QueryRow(ctx, `SELECT through_seq FROM sio_request_index_mark WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read the request index's mark: %w", err)
	}
	return seq, nil
}

// RequestEntries returns the entries of requestIDs the index holds.
func (x RequestIndex) RequestEntries(ctx context.Context, requestIDs []string) ([]siobroker.RequestEntry, error) {
	if len(requestIDs) == 0 {
		return nil, nil
	}
	rows, err := x.j.pool.Query(ctx, `SELECT `+journal.RequestColumns+` FROM sio_request_index WHERE request_id = ANY($1)`, requestIDs)
	if err != nil {
		return nil, fmt.Errorf("read request index entries: %w", err)
	}
	var out []siobroker.RequestEntry
	err = scanRequests(rows, func(e siobroker.RequestEntry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// scanRequests gives each row of journal.RequestColumns to each, and closes rows.
func scanRequests(rows pgx.Rows, each func(siobroker.RequestEntry) error) error {
	defer rows.Close()
	return journal.EachRequest(rows, each)
}

// PutRequestEntries writes entries and moves the mark from from to through, in one transaction,
// if the mark is still from. The mark's row is locked by the update, so of two brokers' indexers
// writing the same batch one waits and then finds the mark moved.
func (x RequestIndex) PutRequestEntries(ctx context.Context, from, through int64, entries []siobroker.RequestEntry) error {
	ctx, cancel := context.WithTimeout(ctx, x.j.writeTimeout+serverFirst)
	defer cancel()
	err := pgx.BeginFunc(ctx, x.j.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE sio_request_index_mark SET through_seq = $1 WHERE id = 1 AND through_seq = $2`, through, from)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("request index: expected its mark at %d: %w", from, siobroker.ErrIndexMoved)
		}
		insert := journal.RequestInsertSQL("sio_request_index", pgMark)
		b := &pgx.Batch{}
		for _, e := range entries {
			b.Queue(insert, journal.RequestArgs(e)...)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil && !errors.Is(err, siobroker.ErrIndexMoved) {
		return x.j.timedOut("write the request index", err)
	}
	return err
}

// ResetRequestIndex empties the index and sets its mark to 0.
func (x RequestIndex) ResetRequestIndex(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, x.j.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sio_request_index`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE sio_request_index_mark SET through_seq = 0 WHERE id = 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset the request index: %w", err)
	}
	return nil
}

// ScanRequests counts, then streams, the entries f selects, in one repeatable-read transaction:
// the count and the rows are of the same snapshot.
func (x RequestIndex) ScanRequests(ctx context.Context, f siobroker.RequestFilter, total func(int) error, row func(siobroker.RequestEntry) error) error {
	return pgx.BeginTxFunc(ctx, x.j.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q, args := journal.RequestCountSQL("sio_request_index", f, pgMark)
		var n int
		if err := tx.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			return fmt.Errorf("count request index entries: %w", err)
		}
		if err := total(n); err != nil {
			return err
		}
		q, args = journal.RequestSelectSQL("sio_request_index", f, pgMark)
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read request index: %w", err)
		}
		return scanRequests(rows, row)
	})
}

// SummariseRequests gives the monthly summary of the entries f selects.
func (x RequestIndex) SummariseRequests(ctx context.Context, f siobroker.RequestFilter, row func(siobroker.RequestSummary) error) error {
	q, args := journal.RequestSummarySQL("sio_request_index", f, pgMark)
	rows, err := x.j.pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("summarise request index: %w", err)
	}
	defer rows.Close()
	return journal.EachRequestSummary(rows, row)
}
