package signing

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sio-pso/siobroker"
)

// The extended key usages of the national PKI (НУЦ РК, pki.gov.kz), as far as they could be
// established. The NCA issues a person two certificates: one to sign (its key usage
// digitalSignature and nonRepudiation, its EKU emailProtection 1.3.6.1.5.5.7.3.4) and one to
// authenticate (digitalSignature and keyEncipherment, EKU clientAuth 1.3.6.1.5.5.7.3.2). Beside
// that, both carry an OID of the NCA's arc 1.2.398.3.3.4.1 naming the kind of holder (1.1 an
// individual, 1.2 a legal entity's employee, 1.2.1 its head, 1.2.2 one with the right to sign,
// …): it is the same in both certificates, so it cannot tell a signing certificate from an
// authentication one, and it is not a signing EKU. (1.3.6.1.4.1.6801 is the arc of Gamma
// Technologies' Tumar CSP, used by Kalkan for algorithms and policies, not for key usages.)
//
// Sources, none of them the NCA's own certificate profile, which could not be found here:
// NCALayer's certificate selection as its JavaScript client names it (sigex-kz/ncalayer-js-client,
// basicsSignerSign* ask for 1.3.6.1.5.5.7.3.4, basicsSignerAuth* for 1.3.6.1.5.5.7.3.2, each with
// the holder OID); NCANode's reading of a certificate (SIGN when digitalSignature and
// nonRepudiation, AUTH when digitalSignature and keyEncipherment; the 1.2.398.3.3.4 OIDs as the
// holder's roles); and Kazakh integrators' notes listing the holder OIDs and the certificate
// policies 1.2.398.3.3.2.1-4 (signature and authentication, of legal entities and individuals).
// Check them against the NCA's current certificate policy before production: they are
// configuration (trust.signing_ekus, trust.require_non_repudiation), not code.
const (
	OIDEmailProtection = "1.3.6.1.5.5.7.3.4" // the NCA's signing certificates
	OIDClientAuth      = "1.3.6.1.5.5.7.3.2" // the NCA's authentication certificates: not a signer
)

// DefaultSigningEKUs are SignerUsage.SigningEKUs when it is nil: the NCA's signing certificates.
var DefaultSigningEKUs = []string{OIDEmailProtection}

// oidExtKeyUsage is the extended key usage extension (RFC 5280, 4.2.1.12).
var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

// ekuNames names the usual extended key usages in refusals.
var ekuNames = map[string]string{
	"1.3.6.1.5.5.7.3.1": "serverAuth",
	OIDClientAuth:       "clientAuth",
	"1.3.6.1.5.5.7.3.3": "codeSigning",
	OIDEmailProtection:  "emailProtection",
	"1.3.6.1.5.5.7.3.8": "timeStamping",
	"1.3.6.1.5.5.7.3.9": "OCSPSigning",
	"2.5.29.37.0":       "anyExtendedKeyUsage",
}

// SignerUsage is what a request signer's certificate must be meant for. A certificate that is not
// is refused with SIO-CERT-USAGE, whatever its chain and IIN: a CA's certificate, or a TLS
// certificate, whose key was never meant to sign a person's requests, identifies nobody's request.
//
// The rules: not a CA (basicConstraints CA:TRUE); the keyUsage extension with digitalSignature
// (and nonRepudiation with RequireNonRepudiation); and, where the certificate has an extended key
// usage extension, one of SigningEKUs in it. The zero value is the NCA's signing profile less
// nonRepudiation.
type SignerUsage struct {
	// SigningEKUs are dotted OIDs; a certificate with an extended key usage extension must carry
	// one of them. Nil: DefaultSigningEKUs. Empty but not nil: any certificate with the
	// extension is refused.
	SigningEKUs []string
	// RequireNonRepudiation requires the nonRepudiation (contentCommitment) key usage beside
	// digitalSignature, as the NCA's signing certificates have and its authentication
	// certificates do not.
	RequireNonRepudiation bool
}

// Validate names the OIDs of u that are not dotted OIDs.
func (u SignerUsage) Validate() error {
	var errs []error
	for i, s := range u.SigningEKUs {
		if _, err := ParseOID(s); err != nil {
			errs = append(errs, fmt.Errorf("signing: SignerUsage.SigningEKUs[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// ParseOID reads a dotted OID: at least two arcs of decimal digits, the first 0, 1 or 2.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID such as %s", s, OIDEmailProtection)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' || (len(p) > 1 && p[0] == '0') {
			return nil, fmt.Errorf("%q is not a dotted OID such as %s: arc %q", s, OIDEmailProtection, p)
		}
		oid[i] = n
	}
	if oid[0] > 2 {
		return nil, fmt.Errorf("%q is not a dotted OID: the first arc is 0, 1 or 2", s)
	}
	return oid, nil
}

// Check refuses cert with SIO-CERT-USAGE unless it may sign a request under u.
func (u SignerUsage) Check(cert *x509.Certificate) error {
	subject := cert.Subject.String()
	if cert.BasicConstraintsValid && cert.IsCA {
		return siobroker.Errorf(siobroker.CodeCertUsage,
			"certificate %q is a CA certificate (basicConstraints CA:TRUE), which does not sign requests", subject)
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return siobroker.Errorf(siobroker.CodeCertUsage,
			"certificate %q lacks the digitalSignature key usage (it has %s): its key is not for signing", subject, keyUsageNames(cert.KeyUsage))
	}
	if u.RequireNonRepudiation && cert.KeyUsage&x509.KeyUsageContentCommitment == 0 {
		return siobroker.Errorf(siobroker.CodeCertUsage,
			"certificate %q lacks the nonRepudiation key usage (it has %s): an authentication certificate, not a signing one", subject, keyUsageNames(cert.KeyUsage))
	}
	ekus, present, err := extKeyUsages(cert)
	if err != nil {
		return siobroker.Wrap(siobroker.CodeCertUsage, err, "certificate %q has an extended key usage extension that cannot be read", subject)
	}
	if !present {
		return nil
	}
	allowed := u.SigningEKUs
	if allowed == nil {
		allowed = DefaultSigningEKUs
	}
	for _, e := range ekus {
		for _, a := range allowed {
			if e.String() == a {
				return nil
			}
		}
	}
	return siobroker.Errorf(siobroker.CodeCertUsage,
		"certificate %q has the extended key usages %s and none of the signing ones (%s): not a signing certificate",
		subject, ekuList(ekus), strings.Join(allowed, ", "))
}

// extKeyUsages returns the OIDs of cert's extended key usage extension, and whether it has one.
// crypto/x509 keeps the ones it knows as constants without their OIDs, so the extension is read
// again here.
func extKeyUsages(cert *x509.Certificate) ([]asn1.ObjectIdentifier, bool, error) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidExtKeyUsage) {
			continue
		}
		var oids []asn1.ObjectIdentifier
		rest, err := asn1.Unmarshal(ext.Value, &oids)
		if err == nil && len(rest) > 0 {
			err = errors.New("trailing data after the extension")
		}
		return oids, true, err
	}
	return nil, false, nil
}

// ekuList names oids for a refusal: "serverAuth, 1.2.398.3.3.4.1.1".
func ekuList(oids []asn1.ObjectIdentifier) string {
	if len(oids) == 0 {
		return "(none)"
	}
	names := make([]string, len(oids))
	for i, o := range oids {
		names[i] = o.String()
		if n, ok := ekuNames[names[i]]; ok {
			names[i] = n
		}
	}
	return strings.Join(names, ", ")
}

// keyUsageNames names the bits of ku, in RFC 5280's order and words.
func keyUsageNames(ku x509.KeyUsage) string {
	names := []string{"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []string
	for i, n := range names {
		if ku&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "no key usage extension"
	}
	return strings.Join(out, ", ")
}
