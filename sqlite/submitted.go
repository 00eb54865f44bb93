package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationSubmitted keeps the applications submitted to the operator (§12–15): each waits,
// pending, for the decision §13 gives the operator a day to take, and is kept, approved or refused
// with its signed refusal, for good. A trigger forbids deleting one, and a decided one from
// changing.
const migrationSubmitted = `CREATE TABLE submitted_applications (
		id             INTEGER PRIMARY KEY AUTOINCREMENT,
		kind           TEXT NOT NULL,
		iin            TEXT NOT NULL,
		reason         TEXT NOT NULL,
		user_json      TEXT NOT NULL,
		submitted_ns   INTEGER NOT NULL,
		submitted_by   TEXT NOT NULL,
		deadline_ns    INTEGER NOT NULL,
		status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused')),
		decided_ns     INTEGER,
		decided_by     TEXT NOT NULL DEFAULT '',
		refusal_reason TEXT NOT NULL DEFAULT '',
		refusal        BLOB,
		refusal_signer TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX submitted_applications_pending ON submitted_applications(deadline_ns) WHERE status = 'pending';
	CREATE TRIGGER submitted_applications_no_delete BEFORE DELETE ON submitted_applications
	BEGIN SELECT RAISE(ABORT, 'submitted_applications is kept for good: an application is never deleted'); END;
	CREATE TRIGGER submitted_applications_decided_once BEFORE UPDATE ON submitted_applications
	WHEN OLD.status <> 'pending'
	BEGIN SELECT RAISE(ABORT, 'a decided application is never changed'); END;`

// submittedFormColumns keep the App. 5 document signed by the organisation's head with which an
// application was submitted, and its signer's IIN and subject; NULL for one the operator entered.
// Added by Open where missing, so existing applications read as unsigned, which they were.
var submittedFormColumns = []string{
	`form BLOB`,
	`form_signer_iin TEXT NOT NULL DEFAULT ''`,
	`form_signer TEXT NOT NULL DEFAULT ''`,
}

const submittedColumns = `id, kind, iin, reason, user_json, submitted_ns, submitted_by, deadline_ns, status, decided_ns, decided_by,
	refusal_reason, refusal, refusal_signer, form, form_signer_iin, form_signer`

func scanSubmitted(row rowScanner) (siobroker.SubmittedApplication, error) {
	var s siobroker.SubmittedApplication
	var kind, userText string
	var submitted, deadline int64
	var decided sql.NullInt64
	if err := row.Scan(&s.ID, &kind, &s.Application.IIN, &s.Application.Reason, &userText, &submitted, &s.Application.By, &deadline,
		&s.Status, &decided, &s.DecidedBy, &s.RefusalReason, &s.Refusal, &s.RefusalSigner, &s.Form, &s.FormSignerIIN, &s.FormSigner); err != nil {
		return s, err
	}
	s.Application.Kind = siobroker.ApplicationKind(kind)
	var j userJSON
	if err := json.Unmarshal([]byte(userText), &j); err != nil {
		return s, fmt.Errorf("application %d: %w", s.ID, err)
	}
	u, err := j.user()
	if err != nil {
		return s, fmt.Errorf("application %d: %w", s.ID, err)
	}
	s.Application.User = u
	s.Application.At = time.Unix(0, submitted).In(siobroker.Astana)
	s.Deadline = time.Unix(0, deadline).In(siobroker.Astana)
	s.DecidedAt = fromNS(decided)
	return s, nil
}

// SubmitApplication records a pending application, due by its Deadline, and returns its id.
func (s *DB) SubmitApplication(ctx context.Context, sa siobroker.SubmittedApplication) (int64, error) {
	a := sa.Application
	if a.At.IsZero() || sa.Deadline.IsZero() || a.IIN == "" || a.By == "" {
		return 0, errors.New("submit application: its time, deadline, IIN and submitter are required")
	}
	if sa.Signed() && sa.FormSignerIIN == "" {
		return 0, errors.New("submit application: a signed form names its signer")
	}
	var form any // NULL: entered by the operator, unsigned
	if sa.Signed() {
		form = sa.Form
	}
	js, err := json.Marshal(toUserJSON(a.User))
	if err != nil {
		return 0, fmt.Errorf("encode application: %w", err)
	}
	var id int64
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO submitted_applications(kind, iin, reason, user_json, submitted_ns, submitted_by,
				deadline_ns, status, form, form_signer_iin, form_signer) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
			string(a.Kind), a.IIN, a.Reason, string(js), a.At.UnixNano(), a.By, sa.Deadline.UnixNano(), form, sa.FormSignerIIN, sa.FormSigner)
		if err != nil {
			return fmt.Errorf("submit application %s %s: %w", a.Kind, a.IIN, err)
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// SubmittedApplications returns the submitted applications, by id; pendingOnly keeps those
// waiting for a decision.
func (s *DB) SubmittedApplications(ctx context.Context, pendingOnly bool) ([]siobroker.SubmittedApplication, error) {
	q := `SELECT ` + submittedColumns + ` FROM submitted_applications`
	if pendingOnly {
		q += ` WHERE status = 'pending'`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read submitted applications: %w", err)
	}
	defer rows.Close()
	var out []siobroker.SubmittedApplication
	for rows.Next() {
		sa, err := scanSubmitted(rows)
		if err != nil {
			return nil, fmt.Errorf("read submitted applications: %w", err)
		}
		out = append(out, sa)
	}
	return out, rows.Err()
}

// SubmittedApplication returns the submitted application id.
func (s *DB) SubmittedApplication(ctx context.Context, id int64) (siobroker.SubmittedApplication, bool, error) {
	sa, err := scanSubmitted(s.db.QueryRowContext(ctx, `SELECT `+submittedColumns+` FROM submitted_applications WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sa, false, nil
	}
	if err != nil {
		return sa, false, fmt.Errorf("read submitted application %d: %w", id, err)
	}
	return sa, true, nil
}

// ApproveSubmitted applies the pending application id, as decided by by at at, and records it
// approved, in one transaction: an approval whose application the registry refuses (a transition
// it does not allow) changes nothing. It wraps siobroker.ErrNotPending for one decided already.
func (s *DB) ApproveSubmitted(ctx context.Context, id int64, by string, at time.Time) (siobroker.User, error) {
	var u siobroker.User
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		sa, err := pendingInTx(ctx, tx, id)
		if err != nil {
			return err
		}
		a := sa.Application
		a.At, a.By = at, by
		if a.Reason == "" {
			a.Reason = fmt.Sprintf("application %d", id)
		}
		if u, err = applyInTx(ctx, tx, a, nil); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE submitted_applications SET status = 'approved', decided_ns = ?, decided_by = ? WHERE id = ?`,
			at.UnixNano(), by, id)
		return err
	})
	return u, err
}

// RefuseSubmitted records the pending application id refused by by at at, with its motive and
// the signed refusal document. It wraps siobroker.ErrNotPending for one decided already.
func (s *DB) RefuseSubmitted(ctx context.Context, id int64, by string, at time.Time, reason string, refusal []byte, signer string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := pendingInTx(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE submitted_applications SET status = 'refused', decided_ns = ?, decided_by = ?,
			refusal_reason = ?, refusal = ?, refusal_signer = ? WHERE id = ?`, at.UnixNano(), by, reason, refusal, signer, id)
		if err != nil {
			return fmt.Errorf("refuse application %d: %w", id, err)
		}
		return nil
	})
}

// pendingInTx reads application id inside tx and wants it pending.
func pendingInTx(ctx context.Context, tx *sql.Tx, id int64) (siobroker.SubmittedApplication, error) {
	sa, err := scanSubmitted(tx.QueryRowContext(ctx, `SELECT `+submittedColumns+` FROM submitted_applications WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sa, fmt.Errorf("application %d: no such submitted application", id)
	}
	if err != nil {
		return sa, fmt.Errorf("read application %d: %w", id, err)
	}
	if sa.Status != siobroker.SubmittedPending {
		return sa, fmt.Errorf("application %d (%s by %s): %w", id, sa.Status, sa.DecidedBy, siobroker.ErrNotPending)
	}
	return sa, nil
}
