package users

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
)

// CertificateStore is what the registry needs to hold its users' certificates; the embedded
// store (sqlite.DB) implements it.
type CertificateStore interface {
	AddUserCertificate(ctx context.Context, c siobroker.UserCertificate) (bool, error)
	FindUserCertificates(ctx context.Context, l siobroker.CertificateLookup) ([]siobroker.UserCertificate, error)
	UserCertificates(ctx context.Context, iin string) ([]siobroker.UserCertificate, error)
}

// Certificates holds the signing certificates of the registry's users. A WS-Security client may
// name its certificate by a thumbprint, a subject key identifier or an issuer and serial number
// only (WSS4J's IssuerSerial, SKI and Thumbprint forms); Certificates resolves those, as the
// signing.CertificateDirectory of the broker's verifier. A certificate enters it given by an
// operator (CertificateRegistered), or learnt from the user's first accepted request that carried
// the whole certificate (CertificateLearnt).
//
// It is safe for concurrent use.
type Certificates struct {
	store  CertificateStore
	clock  siobroker.Clock
	logger *slog.Logger
	// known remembers the thumbprints this process has recorded or found recorded, so that a
	// request whose certificate is held already costs no write.
	known sync.Map
}

// NewCertificates returns the certificate directory over store. A nil logger discards.
func NewCertificates(store CertificateStore, clock siobroker.Clock, logger *slog.Logger) *Certificates {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Certificates{store: store, clock: clock, logger: logger}
}

// LookupCertificates returns the held certificates that id may name (signing.CertificateDirectory).
func (c *Certificates) LookupCertificates(ctx context.Context, id signing.KeyIdentifier) ([]*x509.Certificate, error) {
	var l siobroker.CertificateLookup
	switch {
	case id.ThumbprintSHA1 != nil:
		l.ThumbprintSHA1 = id.ThumbprintSHA1
	case id.SubjectKeyID != nil:
		l.SubjectKeyID = id.SubjectKeyID
	case id.SerialNumber != nil:
		l.SerialNumber = id.SerialNumber.String()
	default:
		return nil, nil
	}
	held, err := c.store.FindUserCertificates(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("look up certificates by %s: %w", id, err)
	}
	out := make([]*x509.Certificate, 0, len(held))
	for _, h := range held {
		cert, err := x509.ParseCertificate(h.DER)
		if err != nil {
			// The row cannot be deleted (the table is append-only) and can name nobody's key;
			// it must not stop the others from being found.
			c.logger.ErrorContext(ctx, "a certificate held by the registry does not parse; it is skipped", "iin", h.IIN,
				"thumbprint", fmt.Sprintf("%X", h.ThumbprintSHA1), "error", err)
			continue
		}
		out = append(out, cert)
	}
	return out, nil
}

// Add records cert as a certificate of the user with the IIN, from source, by whom. The
// certificate's subject must carry that IIN. It reports whether the certificate was new.
func (c *Certificates) Add(ctx context.Context, iin string, cert *x509.Certificate, source siobroker.CertificateSource, by string) (bool, error) {
	subjectIIN, err := signing.SubjectIIN(cert)
	if err != nil {
		return false, fmt.Errorf("certificate %q: %w", cert.Subject.String(), err)
	}
	if subjectIIN != iin {
		return false, fmt.Errorf("certificate %q is that of IIN %s, not of %s", cert.Subject.String(), subjectIIN, iin)
	}
	thumb := signing.ThumbprintSHA1(cert)
	added, err := c.store.AddUserCertificate(ctx, siobroker.UserCertificate{
		IIN: iin, DER: cert.Raw, ThumbprintSHA1: thumb, SubjectKeyID: signing.SubjectKeyID(cert),
		SerialNumber: cert.SerialNumber.String(), Subject: cert.Subject.String(), NotAfter: cert.NotAfter,
		Source: source, AddedAt: c.clock.Now(), AddedBy: by,
	})
	if err != nil {
		return false, err
	}
	c.known.Store(string(thumb), struct{}{})
	return added, nil
}

// Learn records the certificate that an accepted request of u carried whole, unless it is held
// already. The verifier has checked it (signature, chain, CRLs) and Authorize has accepted u.
func (c *Certificates) Learn(ctx context.Context, u siobroker.User, cert *x509.Certificate) error {
	if _, ok := c.known.Load(string(signing.ThumbprintSHA1(cert))); ok {
		return nil
	}
	_, err := c.Add(ctx, u.IIN, cert, siobroker.CertificateLearnt, "request")
	return err
}

// Of returns the certificates held for the user with the IIN.
func (c *Certificates) Of(ctx context.Context, iin string) ([]siobroker.UserCertificate, error) {
	return c.store.UserCertificates(ctx, iin)
}
