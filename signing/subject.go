package signing

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
)

// oidOrganizationalUnit is the subject attribute in which the НУЦ РК writes a legal entity's BIN,
// "BIN" followed by 12 digits, as the development PKI's broker certificate does too.
var oidOrganizationalUnit = asn1.ObjectIdentifier{2, 5, 4, 11}

// SubjectBIN returns the BIN of a certificate subject: its organizationalUnitName "BIN" followed
// by 12 digits with a valid check digit (the IIN's). A subject with no such attribute is
// CodeCertNoIIN, as a missing IIN is; so is a BIN whose check digit is wrong. Whatever the key
// algorithm, the name is read the same way.
func SubjectBIN(cert *x509.Certificate) (string, error) {
	for _, atv := range cert.Subject.Names {
		s, _ := atv.Value.(string)
		bin, ok := strings.CutPrefix(s, "BIN")
		if !atv.Type.Equal(oidOrganizationalUnit) || !ok {
			continue
		}
		if err := siobroker.ValidateIIN(bin); err != nil {
			return "", siobroker.Wrap(siobroker.CodeCertNoIIN, err, "the certificate subject BIN %q is invalid: %v", bin, err)
		}
		return bin, nil
	}
	return "", siobroker.Errorf(siobroker.CodeCertNoIIN, "the certificate subject %q carries no organizationalUnitName with a BIN", cert.Subject.String())
}

// ErrNoClientCertificate is ClientCertificateIIN's answer for a connection that presented no
// client certificate the TLS handshake verified.
var ErrNoClientCertificate = errors.New("no verified TLS client certificate")

// ClientCertificateIIN returns the subject IIN of the TLS client certificate cs was verified
// with, once check (nil: none) has accepted its chain at at: the handshake checks the chain to
// the roots, not revocation (TrustStore.VerifyChain does). Without a verified certificate it
// returns ErrNoClientCertificate, for the caller to answer with its own refusal.
func ClientCertificateIIN(cs *tls.ConnectionState, check func(leaf *x509.Certificate, intermediates []*x509.Certificate, at time.Time) error,
	at time.Time) (string, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", ErrNoClientCertificate
	}
	chain := cs.VerifiedChains[0]
	leaf := chain[0]
	if check != nil {
		var intermediates []*x509.Certificate
		if len(chain) > 2 {
			intermediates = chain[1 : len(chain)-1]
		}
		if err := check(leaf, intermediates, at); err != nil {
			return "", err
		}
	}
	return SubjectIIN(leaf)
}
