package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
)

// requestMarksSchema holds the replay marks of the requests themselves (siobroker.ReplayMark),
// beside the journal, so that every broker sharing the journal shares them: a messageId, or a
// signed content, one broker took is a replay at every other, and stays one after a restart.
//
// sio_request_marks is a request's id (its messageId, or "content:" and the digest): pruned after
// replay.id_retention, unless its request is still being admitted. broker names the broker that
// recorded the mark (its store's id, sqlite.DB.StoreID): an admission in progress is that broker's
// alone to close, because only it holds the request's asynchronous job and knows whether the
// request was accepted. sio_request_content is the digest of every signed content, kept for good
// (in the enveloped placement requestInfo is not signed). The broker's role needs SELECT, INSERT,
// UPDATE and DELETE on the first, SELECT, INSERT and DELETE on the second.
const requestMarksSchema = `
CREATE TABLE IF NOT EXISTS sio_request_marks (
	key        text PRIMARY KEY,
	sender_id  text NOT NULL,
	seen_at    timestamptz NOT NULL,
	request_id text NOT NULL,
	digest     text NOT NULL,
	signer_iin text NOT NULL,
	broker     text NOT NULL,
	admitting  boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS sio_request_marks_seen ON sio_request_marks (seen_at);
CREATE INDEX IF NOT EXISTS sio_request_marks_admitting ON sio_request_marks (broker, seen_at) WHERE admitting;
CREATE INDEX IF NOT EXISTS sio_request_marks_request ON sio_request_marks (request_id) WHERE admitting;
CREATE TABLE IF NOT EXISTS sio_request_content (
	digest  text PRIMARY KEY,
	key     text NOT NULL,
	seen_at timestamptz NOT NULL
);`

// RequestMarks are the replay marks of the requests one broker admits, in the journal's database
// and shared with every broker that journals there. They satisfy broker.ReplayGuard.
type RequestMarks struct {
	j      *Journal
	broker string
}

// RequestMarks returns the request marks of the broker whose id is brokerID, over the journal's
// connections. The id must be the same across the broker's restarts and differ from every other
// broker's: the admissions a broker left in progress are found, and closed, by that id alone.
func (j *Journal) RequestMarks(brokerID string) (RequestMarks, error) {
	if brokerID == "" {
		return RequestMarks{}, errors.New("postgres: request marks need the broker's id")
	}
	return RequestMarks{j: j, broker: brokerID}, nil
}

// MarkRequest records m's id and, if its Digest is set, its signed content, in one transaction,
// and reports whether each is new. The inserts are the checks: of two brokers given one request
// at once, the second waits for the first's transaction and is told its id is not new. An id
// seen before records nothing more; a new id with seen content stays recorded. A mark with a
// RequestID is an admission in progress of this broker until EndAdmission or Release.
func (m RequestMarks) MarkRequest(ctx context.Context, mark siobroker.ReplayMark) (idFresh, contentFresh bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.j.writeTimeout+serverFirst)
	defer cancel()
	err = pgx.BeginTxFunc(ctx, m.j.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO sio_request_marks (key, sender_id, seen_at, request_id, digest, signer_iin, broker, admitting)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING`,
			mark.Key, mark.SenderID, mark.At, mark.RequestID, mark.Digest, mark.SignerIIN, m.broker, mark.RequestID != "")
		if err != nil {
			return fmt.Errorf("record messageId: %w", err)
		}
		if idFresh = tag.RowsAffected() == 1; !idFresh || mark.Digest == "" {
			return nil
		}
		tag, err = tx.Exec(ctx, `INSERT INTO sio_request_content (digest, key, seen_at) VALUES ($1, $2, $3)
			ON CONFLICT (digest) DO NOTHING`, mark.Digest, mark.Key, mark.At)
		if err != nil {
			return fmt.Errorf("record signed content: %w", err)
		}
		contentFresh = tag.RowsAffected() == 1
		return nil
	})
	if err != nil {
		return false, false, m.j.timedOut("replay marks", err)
	}
	return idFresh, contentFresh, nil
}

// Release forgets the marks a request recorded (its id key, and its content digest, "" for
// none), so that its client may retry it as it was sent. Only what this request recorded goes:
// the id if it carries this digest, the content if it was recorded under this key, so that a
// release never forgets another request's marks.
func (m RequestMarks) Release(ctx context.Context, key, digest string) error {
	ctx, cancel := context.WithTimeout(ctx, m.j.writeTimeout+serverFirst)
	defer cancel()
	err := pgx.BeginTxFunc(ctx, m.j.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sio_request_marks WHERE key = $1 AND digest = $2`, key, digest); err != nil {
			return fmt.Errorf("release messageId: %w", err)
		}
		if digest == "" {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sio_request_content WHERE digest = $1 AND key = $2`, digest, key); err != nil {
			return fmt.Errorf("release signed content: %w", err)
		}
		return nil
	})
	return m.j.timedOut("release replay marks", err)
}

// Admissions returns this broker's requests still being admitted whose marks were recorded by
// before, oldest first. Other brokers' are not listed: they may be live, and only their broker
// can tell an accepted request from an interrupted one.
func (m RequestMarks) Admissions(ctx context.Context, before time.Time) ([]siobroker.ReplayMark, error) {
	rows, err := m.j.pool.Query(ctx, `SELECT key, sender_id, seen_at, request_id, digest, signer_iin
		FROM sio_request_marks WHERE admitting AND broker = $1 AND seen_at <= $2 ORDER BY seen_at`, m.broker, before)
	if err != nil {
		return nil, fmt.Errorf("list admissions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (siobroker.ReplayMark, error) {
		var r siobroker.ReplayMark
		err := row.Scan(&r.Key, &r.SenderID, &r.At, &r.RequestID, &r.Digest, &r.SignerIIN)
		r.At = r.At.In(siobroker.Astana)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list admissions: %w", err)
	}
	return out, nil
}

// EndAdmission records that this broker's request requestID was accepted or refused: its marks
// stay, as any request's, until they are pruned.
func (m RequestMarks) EndAdmission(ctx context.Context, requestID string) error {
	ctx, cancel := context.WithTimeout(ctx, m.j.writeTimeout+serverFirst)
	defer cancel()
	_, err := m.j.pool.Exec(ctx, `UPDATE sio_request_marks SET admitting = false
		WHERE request_id = $1 AND admitting AND broker = $2`, requestID, m.broker)
	if err != nil {
		return m.j.timedOut("replay marks", fmt.Errorf("end the admission of %s: %w", requestID, err))
	}
	return nil
}

// ForgetBefore removes the request ids recorded before cutoff, of every broker, and returns how
// many. It is safe once cutoff is older than the replay window: a request that old is refused
// for its date. The marks of a request still being admitted are kept for its broker to close;
// the signed contents are kept for good.
func (m RequestMarks) ForgetBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := m.j.pool.Exec(ctx, `DELETE FROM sio_request_marks WHERE seen_at < $1 AND NOT admitting`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune request marks: %w", err)
	}
	return tag.RowsAffected(), nil
}
