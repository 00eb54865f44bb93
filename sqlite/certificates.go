package sqlite

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationUserCertificates creates the certificates the user registry holds for its users. Rows
// are only ever added: a certificate that should no longer be used is refused by its CRL or its
// validity, and its row stays as the record that the broker once held it.
const migrationUserCertificates = `CREATE TABLE user_certificates (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		iin         TEXT NOT NULL,
		der         BLOB NOT NULL,
		thumbprint  TEXT NOT NULL UNIQUE,
		ski         TEXT NOT NULL,
		serial      TEXT NOT NULL,
		subject     TEXT NOT NULL,
		not_after   TEXT NOT NULL,
		source      TEXT NOT NULL CHECK (source IN ('registered', 'learnt')),
		added_at    TEXT NOT NULL,
		added_ns    INTEGER NOT NULL,
		added_by    TEXT NOT NULL
	);
	CREATE INDEX user_certificates_iin ON user_certificates(iin);
	CREATE INDEX user_certificates_ski ON user_certificates(ski);
	CREATE INDEX user_certificates_serial ON user_certificates(serial);
	CREATE TRIGGER user_certificates_no_update BEFORE UPDATE ON user_certificates
	BEGIN SELECT RAISE(ABORT, 'user_certificates is append-only: a certificate is never changed'); END;
	CREATE TRIGGER user_certificates_no_delete BEFORE DELETE ON user_certificates
	BEGIN SELECT RAISE(ABORT, 'user_certificates is append-only: a certificate is never deleted'); END;`

// AddUserCertificate records c unless a certificate with the same thumbprint is held already.
// It reports whether c was added.
func (s *DB) AddUserCertificate(ctx context.Context, c siobroker.UserCertificate) (bool, error) {
	if c.IIN == "" || len(c.DER) == 0 || len(c.ThumbprintSHA1) == 0 || c.AddedAt.IsZero() {
		return false, fmt.Errorf("add certificate: the IIN, the certificate, its thumbprint and the time are required")
	}
	res, err := s.exec(ctx, `INSERT INTO user_certificates(iin, der, thumbprint, ski, serial, subject, not_after, source,
			added_at, added_ns, added_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(thumbprint) DO NOTHING`,
		c.IIN, c.DER, hex.EncodeToString(c.ThumbprintSHA1), hex.EncodeToString(c.SubjectKeyID), c.SerialNumber, c.Subject,
		siobroker.FormatTime(c.NotAfter), string(c.Source), siobroker.FormatTime(c.AddedAt), c.AddedAt.UnixNano(), c.AddedBy)
	if err != nil {
		return false, fmt.Errorf("add certificate of %s: %w", c.IIN, err)
	}
	return inserted(res)
}

const certificateColumns = `iin, der, thumbprint, ski, serial, subject, not_after, source, added_ns, added_by`

// FindUserCertificates returns the certificates that match the lookup.
func (s *DB) FindUserCertificates(ctx context.Context, l siobroker.CertificateLookup) ([]siobroker.UserCertificate, error) {
	var where string
	var arg any
	switch {
	case len(l.ThumbprintSHA1) > 0:
		where, arg = "thumbprint = ?", hex.EncodeToString(l.ThumbprintSHA1)
	case len(l.SubjectKeyID) > 0:
		where, arg = "ski = ?", hex.EncodeToString(l.SubjectKeyID)
	case l.SerialNumber != "":
		where, arg = "serial = ?", l.SerialNumber
	default:
		return nil, fmt.Errorf("find certificates: no identifier")
	}
	return s.queryCertificates(ctx, `SELECT `+certificateColumns+` FROM user_certificates WHERE `+where+` ORDER BY id LIMIT 16`, arg)
}

// UserCertificates returns the certificates held for the user with the IIN, oldest first.
func (s *DB) UserCertificates(ctx context.Context, iin string) ([]siobroker.UserCertificate, error) {
	return s.queryCertificates(ctx, `SELECT `+certificateColumns+` FROM user_certificates WHERE iin = ? ORDER BY id`, iin)
}

func (s *DB) queryCertificates(ctx context.Context, query string, args ...any) ([]siobroker.UserCertificate, error) {
	stmt, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	defer rows.Close()
	var out []siobroker.UserCertificate
	for rows.Next() {
		var c siobroker.UserCertificate
		var thumb, ski, notAfter, source string
		var added int64
		if err := rows.Scan(&c.IIN, &c.DER, &thumb, &ski, &c.SerialNumber, &c.Subject, &notAfter, &source, &added, &c.AddedBy); err != nil {
			return nil, fmt.Errorf("read certificates: %w", err)
		}
		c.ThumbprintSHA1, _ = hex.DecodeString(thumb)
		c.SubjectKeyID, _ = hex.DecodeString(ski)
		c.NotAfter, _ = time.Parse(siobroker.TimeLayout, notAfter)
		c.Source = siobroker.CertificateSource(source)
		c.AddedAt = time.Unix(0, added).In(siobroker.Astana)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	return out, nil
}
