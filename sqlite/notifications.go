package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationNotifications is the outbox of notices (§45 and the deadlines of §12–15): one row per
// notice and recipient, kept until delivered and after (delivered_ns set), so that a notice
// written by any process (the broker, an operator's command) is delivered by the broker's
// notifier whatever restarts in between.
const migrationNotifications = `CREATE TABLE notifications (
		id              INTEGER PRIMARY KEY AUTOINCREMENT,
		created_ns      INTEGER NOT NULL,
		kind            TEXT NOT NULL,
		organisation    TEXT NOT NULL,
		channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
		recipient       TEXT NOT NULL,
		subject         TEXT NOT NULL,
		body            TEXT NOT NULL,
		attempts        INTEGER NOT NULL DEFAULT 0,
		next_attempt_ns INTEGER NOT NULL,
		last_error      TEXT NOT NULL DEFAULT '',
		delivered_ns    INTEGER
	);
	CREATE INDEX notifications_due ON notifications(next_attempt_ns) WHERE delivered_ns IS NULL;`

const notificationColumns = `id, created_ns, kind, organisation, channel, recipient, subject, body, attempts, next_attempt_ns,
	last_error, delivered_ns`

func scanNotification(row rowScanner) (siobroker.Notification, error) {
	var n siobroker.Notification
	var created, next int64
	var delivered sql.NullInt64
	if err := row.Scan(&n.ID, &created, &n.Kind, &n.Organisation, &n.Channel, &n.Recipient, &n.Subject, &n.Body, &n.Attempts,
		&next, &n.LastError, &delivered); err != nil {
		return n, err
	}
	n.CreatedAt = time.Unix(0, created).In(siobroker.Astana)
	n.NextAttempt = time.Unix(0, next).In(siobroker.Astana)
	n.DeliveredAt = fromNS(delivered)
	return n, nil
}

// EnqueueNotifications adds notices to the outbox, due at once, in one transaction, and returns
// them with their ids.
func (s *DB) EnqueueNotifications(ctx context.Context, notes []siobroker.Notification) ([]siobroker.Notification, error) {
	var out []siobroker.Notification
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		out, err = enqueueInTx(ctx, tx, notes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// enqueueInTx adds notes to the outbox in tx, due at once, and returns them with their ids.
func enqueueInTx(ctx context.Context, tx *sql.Tx, notes []siobroker.Notification) ([]siobroker.Notification, error) {
	out := make([]siobroker.Notification, len(notes))
	for i, n := range notes {
		if n.CreatedAt.IsZero() || n.Kind == "" || n.Recipient == "" {
			return nil, errors.New("a notification needs its time, kind and recipient")
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO notifications(created_ns, kind, organisation, channel, recipient, subject, body,
				next_attempt_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			n.CreatedAt.UnixNano(), n.Kind, n.Organisation, n.Channel, n.Recipient, n.Subject, n.Body, n.CreatedAt.UnixNano())
		if err != nil {
			return nil, fmt.Errorf("enqueue notification %s to %s: %w", n.Kind, n.Recipient, err)
		}
		if n.ID, err = res.LastInsertId(); err != nil {
			return nil, fmt.Errorf("enqueue notification: %w", err)
		}
		n.NextAttempt = n.CreatedAt
		out[i] = n
	}
	return out, nil
}

// DueNotifications returns up to limit undelivered notices whose next attempt is due at now,
// oldest first.
func (s *DB) DueNotifications(ctx context.Context, now time.Time, limit int) ([]siobroker.Notification, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE delivered_ns IS NULL AND next_attempt_ns <= ? ORDER BY next_attempt_ns, id LIMIT ?`, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("read due notifications: %w", err)
	}
	defer rows.Close()
	var out []siobroker.Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("read due notifications: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Notifications returns the notices created in [from, to), oldest first: for the operator.
func (s *DB) Notifications(ctx context.Context, from, to time.Time) ([]siobroker.Notification, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE created_ns >= ? AND created_ns < ? ORDER BY id`, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	defer rows.Close()
	var out []siobroker.Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("read notifications: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// NotificationDelivered records notice id delivered at at, on its attempts-th attempt. It reports
// false when the notice was delivered already (by another notifier), and changes nothing then.
func (s *DB) NotificationDelivered(ctx context.Context, id int64, attempts int, at time.Time) (bool, error) {
	var changed bool
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notifications SET delivered_ns = ?, attempts = ?, last_error = ''
			WHERE id = ? AND delivered_ns IS NULL`, at.UnixNano(), attempts, id)
		if err != nil {
			return fmt.Errorf("record notification %d delivered: %w", id, err)
		}
		n, err := res.RowsAffected()
		changed = n == 1
		return err
	})
	return changed, err
}

// NotificationFailed records a failed attempt of notice id: its count, the error and when to try
// again.
func (s *DB) NotificationFailed(ctx context.Context, id int64, attempts int, next time.Time, lastError string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE notifications SET attempts = ?, next_attempt_ns = ?, last_error = ?
			WHERE id = ? AND delivered_ns IS NULL`, attempts, next.UnixNano(), lastError, id); err != nil {
			return fmt.Errorf("record notification %d failed: %w", id, err)
		}
		return nil
	})
}
