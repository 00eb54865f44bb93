package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationConsents keeps the signed consents of §17 (App. 6): the bytes the user signed, the
// date they state, and when the broker recorded them, for good.
const migrationConsents = `CREATE TABLE user_consents (
		id           INTEGER PRIMARY KEY AUTOINCREMENT,
		iin          TEXT NOT NULL,
		signed_on    TEXT NOT NULL,
		recorded_ns  INTEGER NOT NULL,
		recorded_by  TEXT NOT NULL,
		signer       TEXT NOT NULL,
		sha256       TEXT NOT NULL,
		document     BLOB NOT NULL
	);
	CREATE INDEX user_consents_iin ON user_consents(iin, id);
	CREATE TRIGGER user_consents_no_update BEFORE UPDATE ON user_consents
	BEGIN SELECT RAISE(ABORT, 'user_consents is append-only: a consent is never changed'); END;
	CREATE TRIGGER user_consents_no_delete BEFORE DELETE ON user_consents
	BEGIN SELECT RAISE(ABORT, 'user_consents is append-only: a consent is never deleted'); END;`

// RecordConsent keeps the signed consent c of user iin, recorded by by at at, and records the
// user's consent at that time, in one transaction. A user who is not registered, or deleted,
// gets no consent.
func (s *DB) RecordConsent(ctx context.Context, c siobroker.Consent, by string, at time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM users WHERE iin = ?`, c.IIN).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("consent of %s: %w: the user is not registered", c.IIN, siobroker.ErrTransition)
		}
		if err != nil {
			return fmt.Errorf("read user %s: %w", c.IIN, err)
		}
		if status == string(siobroker.UserDeleted) {
			return fmt.Errorf("consent of %s: %w: the user is deleted", c.IIN, siobroker.ErrTransition)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_consents(iin, signed_on, recorded_ns, recorded_by, signer, sha256, document)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, c.IIN, c.SignedOn.Format("2006-01-02"), at.UnixNano(), by, c.Signer, c.SHA256, c.Document); err != nil {
			return fmt.Errorf("record the consent of %s: %w", c.IIN, err)
		}
		consentAt, consentNS := timeColumns(at)
		if _, err := tx.ExecContext(ctx, `UPDATE users SET consent_at = ?, consent_ns = ? WHERE iin = ?`, consentAt, consentNS, c.IIN); err != nil {
			return fmt.Errorf("record the consent of %s: %w", c.IIN, err)
		}
		return nil
	})
}

// Consents returns the signed consents of user iin, oldest first.
func (s *DB) Consents(ctx context.Context, iin string) ([]siobroker.Consent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT iin, signed_on, recorded_ns, recorded_by, signer, sha256, document
		FROM user_consents WHERE iin = ? ORDER BY id`, iin)
	if err != nil {
		return nil, fmt.Errorf("read consents: %w", err)
	}
	defer rows.Close()
	var out []siobroker.Consent
	for rows.Next() {
		var c siobroker.Consent
		var on string
		var recorded int64
		if err := rows.Scan(&c.IIN, &on, &recorded, &c.RecordedBy, &c.Signer, &c.SHA256, &c.Document); err != nil {
			return nil, fmt.Errorf("read consents: %w", err)
		}
		if c.SignedOn, err = time.ParseInLocation("2006-01-02", on, siobroker.Astana); err != nil {
			return nil, fmt.Errorf("read consents: %w", err)
		}
		c.RecordedAt = time.Unix(0, recorded).In(siobroker.Astana)
		out = append(out, c)
	}
	return out, rows.Err()
}
