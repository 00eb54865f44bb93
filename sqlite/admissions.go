package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationAdmissions lets a replay mark tell a request still being admitted (between its marks
// and its acceptance or refusal) from the others, so that one a crash interrupted is found at the
// next start (siobroker.ReplayMark). The partial index keeps ending an admission (once per
// accepted request) and listing them cheap: only the admissions in progress are in it. The
// async_jobs index finds an accepted request by the client's messageId (AsyncJobOfClient).
const migrationAdmissions = `ALTER TABLE seen_messages ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE seen_messages ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE seen_messages ADD COLUMN signer_iin TEXT NOT NULL DEFAULT '';
ALTER TABLE seen_messages ADD COLUMN admitting INTEGER NOT NULL DEFAULT 0;
CREATE INDEX seen_messages_admitting ON seen_messages(request_id) WHERE admitting = 1;
CREATE INDEX async_jobs_client_message ON async_jobs(message_id) WHERE message_id != '';`

// migrationStoreID names the store, once, with a random id. Where brokers share their replay
// marks (journal.driver: postgres), each records its admissions under its store's id and closes
// only those after a restart: its store alone holds its requests' asynchronous jobs, which tell an
// accepted request from an interrupted one. The id is the store's rather than the host's or the
// configuration's, so that it goes wherever the jobs go, and no two stores share it unless one
// was copied from the other.
const migrationStoreID = `CREATE TABLE store_identity (
	one INTEGER PRIMARY KEY CHECK (one = 1),
	id  TEXT NOT NULL
);
INSERT INTO store_identity(one, id) VALUES (1, lower(hex(randomblob(16))));`

// StoreID returns the store's id (migrationStoreID): the same for the life of the store.
func (s *DB) StoreID(ctx context.Context) (string, error) {
	var id string
	if err := s.db.QueryRowContext(ctx, `SELECT id FROM store_identity WHERE one = 1`).Scan(&id); err != nil {
		return "", fmt.Errorf("read the store's id: %w", err)
	}
	return id, nil
}

// The replay marks: a messageId (forgotten after the replay window, unless its request is still
// being admitted) and the digest of a request's signed content (never forgotten).
const (
	markMessageSQL = `INSERT INTO seen_messages(message_id, sender_id, seen_at, seen_unix, request_id, digest, signer_iin, admitting)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(message_id) DO NOTHING`
	markContentSQL = `INSERT INTO seen_signed_content(digest, message_id, seen_at) VALUES (?, ?, ?)
		ON CONFLICT(digest) DO NOTHING`
	// endAdmissionSQL is run in the transaction that stores an accepted request (CreateAsync).
	endAdmissionSQL = `UPDATE seen_messages SET admitting = 0 WHERE request_id = ? AND admitting = 1`
)

// MarkRequest records a call's replay marks, in one transaction, and reports whether each is new:
// the inserts are the checks, so two concurrent copies of one call cannot both pass. An id seen
// before records nothing more (contentFresh is false); a new id with seen content stays recorded.
// A mark with a RequestID is an admission in progress until CreateAsync stores that request, or
// EndAdmission or Release is called.
func (s *DB) MarkRequest(ctx context.Context, m siobroker.ReplayMark) (idFresh, contentFresh bool, err error) {
	markMessage, err := s.prepared(ctx, markMessageSQL)
	if err != nil {
		return false, false, err
	}
	markContent, err := s.prepared(ctx, markContentSQL)
	if err != nil {
		return false, false, err
	}
	atText := siobroker.FormatTime(m.At)
	admitting := 0
	if m.RequestID != "" {
		admitting = 1
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, markMessage).ExecContext(ctx, m.Key, m.SenderID, atText, m.At.Unix(),
			m.RequestID, m.Digest, m.SignerIIN, admitting)
		if err != nil {
			return fmt.Errorf("record messageId: %w", err)
		}
		if idFresh, err = inserted(res); err != nil || !idFresh || m.Digest == "" {
			return err
		}
		res, err = tx.StmtContext(ctx, markContent).ExecContext(ctx, m.Digest, m.Key, atText)
		if err != nil {
			return fmt.Errorf("record signed content: %w", err)
		}
		contentFresh, err = inserted(res)
		return err
	})
	if err != nil {
		return false, false, err
	}
	return idFresh, contentFresh, nil
}

// Admissions returns the requests still being admitted whose marks were recorded by before (to
// the second), oldest first.
func (s *DB) Admissions(ctx context.Context, before time.Time) ([]siobroker.ReplayMark, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT message_id, sender_id, seen_at, request_id, digest, signer_iin
		FROM seen_messages WHERE admitting = 1 AND seen_unix <= ? ORDER BY seen_unix`, before.Unix())
	if err != nil {
		return nil, fmt.Errorf("list admissions: %w", err)
	}
	defer rows.Close()
	var out []siobroker.ReplayMark
	for rows.Next() {
		var m siobroker.ReplayMark
		var at string
		if err := rows.Scan(&m.Key, &m.SenderID, &at, &m.RequestID, &m.Digest, &m.SignerIIN); err != nil {
			return nil, fmt.Errorf("list admissions: %w", err)
		}
		if m.At, err = time.Parse(siobroker.TimeLayout, at); err != nil {
			return nil, fmt.Errorf("list admissions: mark %s: %w", m.Key, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list admissions: %w", err)
	}
	return out, nil
}

// EndAdmission records that the request with the broker's id requestID was accepted or refused:
// its marks stay, as any call's.
func (s *DB) EndAdmission(ctx context.Context, requestID string) error {
	if _, err := s.exec(ctx, endAdmissionSQL, requestID); err != nil {
		return fmt.Errorf("end the admission of %s: %w", requestID, err)
	}
	return nil
}

// AsyncJobOfClient returns the job of the request signerIIN sent with the messageId messageID,
// and false if there is none (a synchronous request answered and forgotten has none).
func (s *DB) AsyncJobOfClient(ctx context.Context, signerIIN, messageID string) (siobroker.AsyncJob, bool, error) {
	if messageID == "" {
		return siobroker.AsyncJob{}, false, nil
	}
	j, err := scanAsync(s.db.QueryRowContext(ctx, `SELECT `+asyncColumns+` FROM async_jobs
		WHERE message_id = ?1 AND message_id != '' AND signer_iin = ?2
		UNION ALL SELECT `+holdAsAsync+` FROM sync_holds WHERE message_id = ?1 AND message_id != '' AND signer_iin = ?2
		LIMIT 1`, messageID, signerIIN))
	if errors.Is(err, sql.ErrNoRows) {
		return siobroker.AsyncJob{}, false, nil
	}
	if err != nil {
		return siobroker.AsyncJob{}, false, fmt.Errorf("async job of messageId %s: %w", messageID, err)
	}
	return j, true, nil
}
