package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationAsync holds the requests taken on the asynchronous channel. A row is written once every
// check has passed, in state ON_DELIVERY; the worker later stores the signed reply and the final
// state. A broker restarted in the middle resumes every ON_DELIVERY row. Rows of asynchronous
// requests are never deleted; a synchronous request's row (channel sync) is deleted once its
// reply is journaled and given out (ForgetSync).
const migrationAsync = `CREATE TABLE async_jobs (
	request_id    TEXT PRIMARY KEY,
	message_id    TEXT NOT NULL,
	sender_id     TEXT NOT NULL,
	signer_iin    TEXT NOT NULL,
	organisation  TEXT NOT NULL,
	role          INTEGER NOT NULL,
	placement     TEXT NOT NULL,
	request_info  TEXT NOT NULL, -- JSON of siobroker.RequestInfo
	query         TEXT NOT NULL, -- JSON of siobroker.Query
	state         TEXT NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	received_at   TEXT NOT NULL,
	received_unix INTEGER NOT NULL,
	updated_at    TEXT NOT NULL,
	lease_unix    INTEGER NOT NULL DEFAULT 0, -- the worker leaves the job alone until then
	reply         BLOB
);
CREATE INDEX async_jobs_state ON async_jobs(state, received_unix);`

// migrationAsyncMessages gives each asynchronous reply its own messageId and the client's
// receipt of it, for the gateway's AsyncChannel v10 (getMessages, sendDeliveryNotification).
const migrationAsyncMessages = `ALTER TABLE async_jobs ADD COLUMN reply_message_id TEXT NOT NULL DEFAULT '';
ALTER TABLE async_jobs ADD COLUMN receipt TEXT NOT NULL DEFAULT '';
ALTER TABLE async_jobs ADD COLUMN receipt_at TEXT NOT NULL DEFAULT '';
CREATE INDEX async_jobs_reply_message ON async_jobs(reply_message_id) WHERE reply_message_id != '';
CREATE INDEX async_jobs_mailbox ON async_jobs(signer_iin, receipt, updated_at);`

// migrationAsyncChannel records which contract took each asynchronous request, so that the
// gateway's getMessages hands out only the replies of requests it took: a reply of the broker's
// own variant, or of a late synchronous request, is fetched by its id and never confirmed.
const migrationAsyncChannel = `ALTER TABLE async_jobs ADD COLUMN channel TEXT NOT NULL DEFAULT '';`

// migrationAsyncTrace keeps the W3C traceparent of the call that took each request, for the
// worker's spans to continue its trace (siobroker.AsyncJob.TraceParent).
const migrationAsyncTrace = `ALTER TABLE async_jobs ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';`

// migrationSyncHolds keeps the holds of synchronous requests (siobroker.SyncChannel, ON_DELIVERY)
// apart from async_jobs. A hold lives for the length of its request, milliseconds, and then is
// deleted (ForgetSync) or, if its request was interrupted, moved into async_jobs once the worker
// completes or an operator stops it (setAsyncState). In async_jobs, which keeps every
// asynchronous request for good, a hold's row and its entries in four indexes on random keys
// landed on pages of their own, written to the WAL once at the insert and again at the delete:
// 14 of the 43 pages a one-service request wrote (issue 20, docs/benchmarks.md). Here a hold is
// one row of one small b-tree (WITHOUT ROWID: the row is kept in its primary key), whose few
// pages the requests in flight share. Its state, channel, reason, reply and receipt are implied
// (holdAsAsync). The ids of holds and of async_jobs never meet (CreateAsync). Holds stored in
// async_jobs by an earlier version are read, leased, completed and forgotten there as before.
const migrationSyncHolds = `CREATE TABLE sync_holds (
	request_id       TEXT PRIMARY KEY,
	message_id       TEXT NOT NULL,
	sender_id        TEXT NOT NULL,
	signer_iin       TEXT NOT NULL,
	organisation     TEXT NOT NULL,
	role             INTEGER NOT NULL,
	placement        TEXT NOT NULL,
	request_info     TEXT NOT NULL, -- JSON of siobroker.RequestInfo
	query            TEXT NOT NULL, -- JSON of siobroker.Query
	received_at      TEXT NOT NULL,
	received_unix    INTEGER NOT NULL,
	updated_at       TEXT NOT NULL,
	lease_unix       INTEGER NOT NULL,
	reply_message_id TEXT NOT NULL,
	traceparent      TEXT NOT NULL
) WITHOUT ROWID;`

// holdAsAsync selects a sync_holds row as asyncColumns select a row of async_jobs; holdColumns
// are the columns a hold is stored in.
const (
	holdAsAsync = `request_id, message_id, sender_id, signer_iin, organisation, role, placement, request_info,
	query, '` + string(siobroker.AsyncOnDelivery) + `', '', received_at, updated_at, NULL, lease_unix, reply_message_id, '', '',
	'` + siobroker.SyncChannel + `', traceparent`
	holdColumns = `request_id, message_id, sender_id, signer_iin, organisation, role, placement, request_info, query,
	received_at, received_unix, updated_at, lease_unix, reply_message_id, traceparent`
)

// OnDeliverySQL selects the broker's ids (request_id) of the requests on delivery, asynchronous
// jobs and synchronous requests' holds alike: for a tool or test that reads a store beside its
// broker, read-only.
const OnDeliverySQL = `SELECT request_id FROM async_jobs WHERE state = '` + string(siobroker.AsyncOnDelivery) + `'
	UNION ALL SELECT request_id FROM sync_holds`

// isHold reports whether j is stored as a hold in sync_holds: a synchronous request's job
// ON_DELIVERY with nothing a hold does not keep.
func isHold(j siobroker.AsyncJob) bool {
	return j.Channel == siobroker.SyncChannel && j.State == siobroker.AsyncOnDelivery &&
		j.Reason == "" && j.Reply == nil && j.Receipt == "" && j.ReceiptAt.IsZero()
}

// CreateAsync stores a new asynchronous job in its given state (ON_DELIVERY, or DELIVERED with its
// reply for a synchronous request completed late).
func (s *DB) CreateAsync(ctx context.Context, j siobroker.AsyncJob) error {
	if !j.State.Valid() {
		return fmt.Errorf("store async job %s: invalid state %q", j.RequestID, j.State)
	}
	info, err := json.Marshal(j.Info)
	if err != nil {
		return fmt.Errorf("store async job %s: %w", j.RequestID, err)
	}
	q, err := json.Marshal(j.Query)
	if err != nil {
		return fmt.Errorf("store async job %s: %w", j.RequestID, err)
	}
	var lease int64
	if !j.LeaseUntil.IsZero() {
		lease = j.LeaseUntil.Unix()
	}
	updated := j.Updated
	if updated.IsZero() {
		updated = j.Received
	}
	// An id is taken once, in either table: the insert checks the other one's primary key.
	query := `INSERT INTO async_jobs(` + asyncInsertColumns + `)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19
		WHERE NOT EXISTS (SELECT 1 FROM sync_holds WHERE request_id = ?1)`
	args := []any{j.RequestID, j.MessageID, j.SenderID, j.SignerIIN, j.Organisation, j.Role, j.Placement, string(info), string(q),
		string(j.State), j.Reason, siobroker.FormatTime(j.Received), j.Received.Unix(), siobroker.FormatTime(updated), lease, j.Reply,
		j.ReplyMessageID, j.Channel, j.TraceParent}
	if isHold(j) {
		query = `INSERT INTO sync_holds(` + holdColumns + `)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
			WHERE NOT EXISTS (SELECT 1 FROM async_jobs WHERE request_id = ?1)`
		args = []any{j.RequestID, j.MessageID, j.SenderID, j.SignerIIN, j.Organisation, j.Role, j.Placement, string(info), string(q),
			siobroker.FormatTime(j.Received), j.Received.Unix(), siobroker.FormatTime(updated), lease, j.ReplyMessageID, j.TraceParent}
	}
	insert, err := s.prepared(ctx, query)
	if err != nil {
		return err
	}
	endAdmission, err := s.prepared(ctx, endAdmissionSQL)
	if err != nil {
		return err
	}
	// Stored, the request is accepted: its admission ends in the same transaction, so that no
	// crash leaves it both accepted and interrupted.
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, insert).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		if ok, err := inserted(res); err != nil || !ok {
			return cmp.Or(err, fmt.Errorf("a job with the id %s is stored already", j.RequestID))
		}
		_, err = tx.StmtContext(ctx, endAdmission).ExecContext(ctx, j.RequestID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store async job %s: %w", j.RequestID, err)
	}
	return nil
}

// asyncInsertColumns are the columns CreateAsync stores a job in, in the order of its values.
const asyncInsertColumns = `request_id, message_id, sender_id, signer_iin, organisation, role, placement, request_info, query,
	state, reason, received_at, received_unix, updated_at, lease_unix, reply, reply_message_id, channel, traceparent`

const asyncColumns = `request_id, message_id, sender_id, signer_iin, organisation, role, placement, request_info,
	query, state, reason, received_at, updated_at, reply, lease_unix, reply_message_id, receipt, receipt_at, channel, traceparent`

func scanAsync(row interface{ Scan(...any) error }) (siobroker.AsyncJob, error) {
	var j siobroker.AsyncJob
	var info, q, state, received, updated, receipt, receiptAt string
	var lease int64
	if err := row.Scan(&j.RequestID, &j.MessageID, &j.SenderID, &j.SignerIIN, &j.Organisation, &j.Role, &j.Placement,
		&info, &q, &state, &j.Reason, &received, &updated, &j.Reply, &lease, &j.ReplyMessageID, &receipt, &receiptAt, &j.Channel, &j.TraceParent); err != nil {
		return j, err
	}
	j.Receipt = siobroker.AsyncState(receipt)
	if receiptAt != "" {
		t, err := time.Parse(time.RFC3339Nano, receiptAt)
		if err != nil {
			return j, fmt.Errorf("async job %s: receipt_at: %w", j.RequestID, err)
		}
		j.ReceiptAt = t
	}
	if lease != 0 {
		j.LeaseUntil = time.Unix(lease, 0).In(siobroker.Astana)
	}
	j.State = siobroker.AsyncState(state)
	if err := json.Unmarshal([]byte(info), &j.Info); err != nil {
		return j, fmt.Errorf("async job %s: request info: %w", j.RequestID, err)
	}
	if err := json.Unmarshal([]byte(q), &j.Query); err != nil {
		return j, fmt.Errorf("async job %s: query: %w", j.RequestID, err)
	}
	var err error
	if j.Received, err = time.Parse(time.RFC3339Nano, received); err != nil {
		return j, fmt.Errorf("async job %s: received_at: %w", j.RequestID, err)
	}
	if j.Updated, err = time.Parse(time.RFC3339Nano, updated); err != nil {
		return j, fmt.Errorf("async job %s: updated_at: %w", j.RequestID, err)
	}
	return j, nil
}

// AsyncJob returns the job with the broker's request id, and false if there is none.
func (s *DB) AsyncJob(ctx context.Context, requestID string) (siobroker.AsyncJob, bool, error) {
	j, err := scanAsync(s.db.QueryRowContext(ctx, `SELECT `+holdAsAsync+` FROM sync_holds WHERE request_id = ?1
		UNION ALL SELECT `+asyncColumns+` FROM async_jobs WHERE request_id = ?1`, requestID))
	if errors.Is(err, sql.ErrNoRows) {
		return j, false, nil
	}
	if err != nil {
		return j, false, fmt.Errorf("read async job %s: %w", requestID, err)
	}
	return j, true, nil
}

// PendingAsync returns the ON_DELIVERY jobs for the worker whose lease has run out by now,
// oldest first.
func (s *DB) PendingAsync(ctx context.Context, now time.Time) ([]siobroker.AsyncJob, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+asyncColumns+` FROM (
		SELECT `+asyncColumns+`, received_unix FROM async_jobs WHERE state = ?1 AND lease_unix <= ?2
		UNION ALL
		SELECT `+holdAsAsync+`, received_unix FROM sync_holds WHERE lease_unix <= ?2
	) ORDER BY received_unix, request_id`,
		string(siobroker.AsyncOnDelivery), now.Unix())
	if err != nil {
		return nil, fmt.Errorf("list pending async jobs: %w", err)
	}
	defer rows.Close()
	var out []siobroker.AsyncJob
	for rows.Next() {
		j, err := scanAsync(rows)
		if err != nil {
			return nil, fmt.Errorf("list pending async jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// CompleteAsync stores the signed reply and the final state of an ON_DELIVERY job. It reports false
// when the job is no longer ON_DELIVERY (an operator stopped it meanwhile): the stop wins.
func (s *DB) CompleteAsync(ctx context.Context, requestID string, state siobroker.AsyncState, reason string, reply []byte, at time.Time) (bool, error) {
	if state != siobroker.AsyncDelivered && state != siobroker.AsyncNotDelivered {
		return false, fmt.Errorf("complete async job %s: state %q is not final", requestID, state)
	}
	return s.setAsyncState(ctx, requestID, state, reason, reply, at)
}

// LeaseAsync leaves an ON_DELIVERY job to its current holder until the given time: the worker
// does not list it before then (unless VoidLeases voids the lease at a start). It reports false
// when there is no such job or it is no longer ON_DELIVERY.
func (s *DB) LeaseAsync(ctx context.Context, requestID string, until time.Time) (bool, error) {
	var leased bool
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.execIn(ctx, tx, `UPDATE sync_holds SET lease_unix = ? WHERE request_id = ?`, until.Unix(), requestID)
		if err != nil {
			return err
		}
		if leased, err = inserted(res); err != nil || leased {
			return err
		}
		res, err = s.execIn(ctx, tx, `UPDATE async_jobs SET lease_unix = ? WHERE request_id = ? AND state = ?`,
			until.Unix(), requestID, string(siobroker.AsyncOnDelivery))
		if err != nil {
			return err
		}
		leased, err = inserted(res)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("lease async job %s: %w", requestID, err)
	}
	return leased, nil
}

// VoidLeases ends the lease of every ON_DELIVERY job and hold, and returns how many it ended.
// At a start, before the broker takes a request, every lease in the store is an earlier run's,
// whose holder (a synchronous call, a wait for late services) went with that run: the worker
// then lists those requests at once. Called later, it would take requests from their holders.
func (s *DB) VoidLeases(ctx context.Context) (int, error) {
	var voided int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		holds, err := s.execIn(ctx, tx, `UPDATE sync_holds SET lease_unix = 0 WHERE lease_unix <> 0`)
		if err != nil {
			return err
		}
		jobs, err := s.execIn(ctx, tx, `UPDATE async_jobs SET lease_unix = 0 WHERE state = ? AND lease_unix <> 0`,
			string(siobroker.AsyncOnDelivery))
		if err != nil {
			return err
		}
		h, herr := holds.RowsAffected()
		j, jerr := jobs.RowsAffected()
		voided = h + j
		return errors.Join(herr, jerr)
	})
	if err != nil {
		return 0, fmt.Errorf("void the leases of an earlier run: %w", err)
	}
	return int(voided), nil
}

// StopAsync stops an ON_DELIVERY job (DELIVERY_STOPPED), for an operator. It reports false when
// there is no such job or it is no longer ON_DELIVERY.
func (s *DB) StopAsync(ctx context.Context, requestID, reason string, at time.Time) (bool, error) {
	return s.setAsyncState(ctx, requestID, siobroker.AsyncStopped, reason, nil, at)
}

func (s *DB) setAsyncState(ctx context.Context, requestID string, state siobroker.AsyncState, reason string, reply []byte, at time.Time) (bool, error) {
	var set bool
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// A hold leaves sync_holds with its state: into async_jobs, where the finished requests are.
		res, err := s.execIn(ctx, tx, `INSERT INTO async_jobs(`+asyncInsertColumns+`)
			SELECT request_id, message_id, sender_id, signer_iin, organisation, role, placement, request_info, query, ?, ?,
			received_at, received_unix, ?, lease_unix, ?, reply_message_id, ?, traceparent FROM sync_holds WHERE request_id = ?`,
			string(state), reason, siobroker.FormatTime(at), reply, siobroker.SyncChannel, requestID)
		if err != nil {
			return err
		}
		if set, err = inserted(res); err != nil {
			return err
		}
		if set {
			_, err = s.execIn(ctx, tx, `DELETE FROM sync_holds WHERE request_id = ?`, requestID)
			return err
		}
		res, err = s.execIn(ctx, tx, `UPDATE async_jobs SET state = ?, reason = ?, reply = ?, updated_at = ?
			WHERE request_id = ? AND state = ?`,
			string(state), reason, reply, siobroker.FormatTime(at), requestID, string(siobroker.AsyncOnDelivery))
		if err != nil {
			return err
		}
		set, err = inserted(res)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("set async job %s to %s: %w", requestID, state, err)
	}
	return set, nil
}

// ForgetSync deletes the job of a synchronous request whose reply was journaled and given out
// (siobroker.SyncChannel): the journal keeps the request and its reply for good.
func (s *DB) ForgetSync(ctx context.Context, requestID string) error {
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.execIn(ctx, tx, `DELETE FROM sync_holds WHERE request_id = ?`, requestID)
		if err != nil {
			return err
		}
		if forgot, err := inserted(res); err != nil || forgot {
			return err
		}
		// A hold an earlier version stored among the asynchronous jobs.
		_, err = s.execIn(ctx, tx, `DELETE FROM async_jobs WHERE request_id = ? AND channel = ? AND state = ?`,
			requestID, siobroker.SyncChannel, string(siobroker.AsyncOnDelivery))
		return err
	})
	if err != nil {
		return fmt.Errorf("forget synchronous request %s: %w", requestID, err)
	}
	return nil
}

// AsyncJobByMessage returns the job whose request (the broker's id) or whose reply
// (ReplyMessageID) has the messageId id, and false if there is none.
func (s *DB) AsyncJobByMessage(ctx context.Context, id string) (siobroker.AsyncJob, bool, error) {
	if id == "" {
		return siobroker.AsyncJob{}, false, nil
	}
	j, err := scanAsync(s.db.QueryRowContext(ctx, `SELECT `+asyncColumns+` FROM async_jobs
		WHERE request_id = ?1 OR (reply_message_id = ?1 AND reply_message_id != '')
		UNION ALL SELECT `+holdAsAsync+` FROM sync_holds
		WHERE request_id = ?1 OR (reply_message_id = ?1 AND reply_message_id != '') LIMIT 1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, false, nil
	}
	if err != nil {
		return j, false, fmt.Errorf("read async job of message %s: %w", id, err)
	}
	return j, true, nil
}

// AsyncReplies returns the replies (DELIVERED or NOT_DELIVERED) of the mailbox that the client has
// not accepted or refused for good, oldest first.
func (s *DB) AsyncReplies(ctx context.Context, m siobroker.AsyncMailbox) ([]siobroker.AsyncJob, error) {
	if m.SignerIIN == "" || m.Channel == "" || m.Limit <= 0 {
		return nil, fmt.Errorf("list async replies: a signer, a channel and a positive limit are required")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+asyncColumns+` FROM async_jobs
		WHERE signer_iin = ? AND channel = ? AND state IN (?, ?) AND receipt = '' AND json_extract(request_info, '$.ServiceID') = ?
		ORDER BY updated_at, request_id LIMIT ?`,
		m.SignerIIN, m.Channel, string(siobroker.AsyncDelivered), string(siobroker.AsyncNotDelivered), m.ServiceID, m.Limit)
	if err != nil {
		return nil, fmt.Errorf("list async replies of %s: %w", m.SignerIIN, err)
	}
	defer rows.Close()
	var out []siobroker.AsyncJob
	for rows.Next() {
		j, err := scanAsync(rows)
		if err != nil {
			return nil, fmt.Errorf("list async replies of %s: %w", m.SignerIIN, err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// ReceiptAsync records the client's receipt of the reply of a job that has one. state is
// AsyncDelivered (accepted), AsyncNotDelivered (refused for good) or "" (refused, offer again).
// A receipt that accepted or refused for good is final: it reports false when the job has no
// reply, or its receipt is final already.
func (s *DB) ReceiptAsync(ctx context.Context, requestID string, state siobroker.AsyncState, at time.Time) (bool, error) {
	switch state {
	case "", siobroker.AsyncDelivered, siobroker.AsyncNotDelivered:
	default:
		return false, fmt.Errorf("receipt of async job %s: state %q", requestID, state)
	}
	res, err := s.exec(ctx, `UPDATE async_jobs SET receipt = ?, receipt_at = ? WHERE request_id = ? AND state IN (?, ?) AND receipt = ''`,
		string(state), siobroker.FormatTime(at), requestID, string(siobroker.AsyncDelivered), string(siobroker.AsyncNotDelivered))
	if err != nil {
		return false, fmt.Errorf("receipt of async job %s: %w", requestID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("receipt of async job %s: %w", requestID, err)
	}
	return n == 1, nil
}
