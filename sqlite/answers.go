package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrationAnswers creates the table of services' answers as the broker received them. An answer
// is stored here before the transport is told it arrived, so that a broker killed at any instant
// loses none; a request resumed after a crash, or retried after its reply could not be
// journaled, is completed from here without asking its services again. The key is the
// correlation key, request/service; result_sum tells a copy of the answer (the same result) from
// another answer. Rows are pruned (ForgetAnswersBefore) once their requests are long done: the
// journal keeps the results for good, in the replies.
const migrationAnswers = `CREATE TABLE service_answers (
	answer_key  TEXT PRIMARY KEY,
	payload     BLOB NOT NULL,
	result_sum  BLOB NOT NULL,
	received_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX service_answers_received ON service_answers(received_ms);`

// KeepAnswer stores payload as the answer of key unless an answer is held for key already. first
// reports that it was stored now; same, that the answer held has resultSum too (a copy of it).
func (s *DB) KeepAnswer(ctx context.Context, key string, payload []byte, resultSum []byte, at time.Time) (first, same bool, err error) {
	insert, err := s.prepared(ctx, `INSERT OR IGNORE INTO service_answers(answer_key, payload, result_sum, received_ms) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return false, false, err
	}
	held, err := s.prepared(ctx, `SELECT result_sum FROM service_answers WHERE answer_key = ?`)
	if err != nil {
		return false, false, err
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, insert).ExecContext(ctx, key, payload, resultSum, at.UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			first, same = true, true
			return nil
		}
		var sum []byte
		if err := tx.StmtContext(ctx, held).QueryRowContext(ctx, key).Scan(&sum); err != nil {
			return err
		}
		first, same = false, bytes.Equal(sum, resultSum)
		return nil
	})
	if err != nil {
		return false, false, fmt.Errorf("keep the answer of %s: %w", key, err)
	}
	return first, same, nil
}

// Answer returns the answer held for key.
func (s *DB) Answer(ctx context.Context, key string) (payload []byte, ok bool, err error) {
	stmt, err := s.prepared(ctx, `SELECT payload FROM service_answers WHERE answer_key = ?`)
	if err != nil {
		return nil, false, err
	}
	err = stmt.QueryRowContext(ctx, key).Scan(&payload)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read the answer of %s: %w", key, err)
	}
	return payload, true, nil
}

// ForgetAnswersBefore deletes the answers received before cutoff and returns how many.
func (s *DB) ForgetAnswersBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM service_answers WHERE received_ms < ?`, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune answers: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
