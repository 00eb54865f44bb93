package signing

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// OCSPPolicy is what a trust store does with the OCSP responder a signer's certificate names
// (trust.ocsp). Whatever the policy, a certificate a CRL in force lists is refused, and one that
// names no responder is checked against the CRLs alone.
type OCSPPolicy int

const (
	// OCSPOff never asks a responder: the CRLs alone decide.
	OCSPOff OCSPPolicy = iota
	// OCSPPrefer asks the responder. "good" passes, "revoked" refuses (SIO-CERT-REVOKED). No
	// answer (unreachable, a response that does not verify or is out of date) or "unknown" falls
	// back to the CRLs: it passes if a CRL of the issuer is in force under the stale policy
	// (trust.crl_stale), and is refused SIO-CERT-STATUS-UNKNOWN if the issuer has none.
	OCSPPrefer
	// OCSPRequire asks the responder and passes only on "good": no answer, or "unknown", is
	// refused SIO-CERT-STATUS-UNKNOWN whatever the CRLs say.
	OCSPRequire
)

// String is the policy as trust.ocsp writes it.
func (p OCSPPolicy) String() string {
	switch p {
	case OCSPOff:
		return "off"
	case OCSPPrefer:
		return "prefer"
	case OCSPRequire:
		return "require"
	}
	return fmt.Sprintf("OCSPPolicy(%d)", int(p))
}

// OCSPStatus is a responder's verified answer about one certificate (RFC 6960, section 2.2).
type OCSPStatus int

// The statuses of RFC 6960: good, revoked, unknown (the responder knows nothing of it).
const (
	OCSPGood OCSPStatus = iota + 1
	OCSPRevoked
	OCSPUnknown
)

// OCSPAnswer is what an OCSP responder said about a certificate, its signature verified.
type OCSPAnswer struct {
	Status    OCSPStatus
	RevokedAt time.Time // when Status is OCSPRevoked
	Responder string    // the URL that answered
}

// OCSPChecker asks the OCSP responder of a certificate for its status (revocation.OCSP).
type OCSPChecker interface {
	// CheckOCSP returns the verified answer about cert, which issuer issued, from one of the
	// responders cert names (OCSPResponders); an error when none gave one: unreachable, out of
	// time, or a response that does not verify or is out of date. ctx bounds the question.
	CheckOCSP(ctx context.Context, cert, issuer *x509.Certificate) (OCSPAnswer, error)
}

// ErrOCSPUnknown is the cause of a refusal when the responder answered "unknown".
var ErrOCSPUnknown = errors.New("the OCSP responder answered unknown")

// checkOCSP asks the OCSP checker about cert, which passed the CRLs of set, and applies the
// store's policy to the answer.
func (t *TrustStore) checkOCSP(ctx context.Context, set *crlSet, cert, issuer *x509.Certificate) error {
	answer, err := t.ocsp.CheckOCSP(ctx, cert, issuer)
	if err == nil {
		switch answer.Status {
		case OCSPGood:
			return nil
		case OCSPRevoked:
			return siobroker.Errorf(siobroker.CodeCertRevoked, "certificate %q (serial %X) was revoked at %s (OCSP)",
				cert.Subject.String(), cert.SerialNumber, siobroker.FormatTime(answer.RevokedAt))
		default:
			err = ErrOCSPUnknown
		}
	}
	// The messages are stable: clients and operators match on them. The cause (which responder,
	// and why) goes to the log only.
	switch {
	case t.ocspPolicy == OCSPPrefer && set.hasCRL(cert, issuer):
		return nil
	case t.ocspPolicy == OCSPPrefer:
		return siobroker.Wrap(siobroker.CodeCertStatus, err,
			"the revocation status of certificate %q (serial %X) is unknown: its OCSP responder gave no answer and no CRL of its issuer is in force",
			cert.Subject.String(), cert.SerialNumber)
	default:
		return siobroker.Wrap(siobroker.CodeCertStatus, err,
			"the revocation status of certificate %q (serial %X) is unknown: its OCSP responder gave no answer, and an answer is required",
			cert.Subject.String(), cert.SerialNumber)
	}
}
