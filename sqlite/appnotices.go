package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationApplicationNotices records which events of each submitted application (§12–15) have
// had their notices written: submitted (to the operator), overdue (to the operator, once the
// deadline passed undecided) and decided (to the applicant's organisation). A marker and its
// notices are written in one transaction, so that an event is told exactly once whatever process
// (or how many brokers' notifiers) looks at it.
//
// Applications that were in the store before are marked submitted, and decided where they were:
// those events happened before anyone was to be told. One still pending past its deadline is left
// unmarked, so that the operator hears of it.
const migrationApplicationNotices = `CREATE TABLE application_notices (
		application_id INTEGER NOT NULL REFERENCES submitted_applications(id),
		event          TEXT NOT NULL CHECK (event IN ('submitted', 'overdue', 'decided')),
		created_ns     INTEGER NOT NULL,
		PRIMARY KEY (application_id, event)
	);
	INSERT INTO application_notices SELECT id, 'submitted', 0 FROM submitted_applications;
	INSERT INTO application_notices SELECT id, 'decided', 0 FROM submitted_applications WHERE status <> 'pending';`

// ApplicationNoticesDue returns the events of submitted applications whose notices are not
// written yet at now: every application's submission, a pending one's deadline passed, and a
// decided one's decision; by application and event, at most limit. An application without the
// user's fields (a block, unblock or deletion) gets them from the registry, as they are now.
func (s *DB) ApplicationNoticesDue(ctx context.Context, now time.Time, limit int) ([]siobroker.ApplicationNoticeDue, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, event FROM (
			SELECT id, 'submitted' AS event FROM submitted_applications
			UNION ALL
			SELECT id, 'overdue' FROM submitted_applications WHERE status = 'pending' AND deadline_ns < ?
			UNION ALL
			SELECT id, 'decided' FROM submitted_applications WHERE status <> 'pending'
		) e
		WHERE NOT EXISTS (SELECT 1 FROM application_notices n WHERE n.application_id = e.id AND n.event = e.event)
		ORDER BY id, CASE event WHEN 'submitted' THEN 0 WHEN 'overdue' THEN 1 ELSE 2 END
		LIMIT ?`, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("read the applications' notices due: %w", err)
	}
	type due struct {
		id    int64
		event string
	}
	var dues []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.event); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the applications' notices due: %w", err)
		}
		dues = append(dues, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the applications' notices due: %w", err)
	}
	out := make([]siobroker.ApplicationNoticeDue, 0, len(dues))
	for _, d := range dues {
		sa, ok, err := s.SubmittedApplication(ctx, d.id)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if sa.Application.User.IIN == "" {
			// A block, unblock or deletion carries no user's fields: the notice names the user
			// and goes to the organisation as the registry holds them.
			u, found, err := s.User(ctx, sa.Application.IIN)
			if err != nil {
				return nil, err
			}
			if found {
				sa.Application.User = u
			}
		}
		out = append(out, siobroker.ApplicationNoticeDue{Application: sa, Event: d.event})
	}
	return out, nil
}

// EnqueueApplicationNotices marks event of application id as told and adds notes to the outbox,
// due at once, in one transaction. If the event was marked already (another notifier told it),
// it writes nothing and returns false. notes may be empty: nobody is configured to hear of it,
// and it is marked all the same.
func (s *DB) EnqueueApplicationNotices(ctx context.Context, id int64, event string, at time.Time, notes []siobroker.Notification) ([]siobroker.Notification, bool, error) {
	var out []siobroker.Notification
	first := false
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out, first = nil, false
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO application_notices(application_id, event, created_ns) VALUES (?, ?, ?)`,
			id, event, at.UnixNano())
		if err != nil {
			return fmt.Errorf("mark the %s notice of application %d: %w", event, id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		first = true
		if out, err = enqueueInTx(ctx, tx, notes); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, first, nil
}
