// Package testpki makes small certificate authorities for revocation tests: CAs that issue
// certificates naming a CRL distribution point and an OCSP responder, publish CRLs and sign OCSP
// responses (golang.org/x/crypto/ocsp), so that tests can run a CRL server and an OCSP responder
// on httptest servers. Keys are ECDSA P-256, which is quick to generate.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// serial returns a random positive serial number of up to 128 bits, as CAs issue them: RFC 5280,
// section 4.1.2.2, wants it positive, unique per CA and at most 20 octets, and the CA/Browser
// Forum's Baseline Requirements (section 7.1) at least 64 bits from a CSPRNG. So a test CA's
// certificates never share a serial with another CA's, the development PKI's included.
func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

// CA is a certificate authority of a test.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Key returns a new P-256 key.
func Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewRoot returns a self-signed root CA valid from a day before now to a year after.
func NewRoot(t testing.TB, name string, now time.Time) *CA {
	t.Helper()
	key := Key(t)
	tmpl := caTemplate(t, name, now)
	return &CA{Cert: create(t, tmpl, tmpl, key.Public(), key), Key: key}
}

// NewIntermediate returns a CA that ca certifies, with the distribution point crlURL (ca's CRL),
// if not empty.
func (ca *CA) NewIntermediate(t testing.TB, name string, now time.Time, crlURL string) *CA {
	t.Helper()
	key := Key(t)
	tmpl := caTemplate(t, name, now)
	if crlURL != "" {
		tmpl.CRLDistributionPoints = []string{crlURL}
	}
	return &CA{Cert: create(t, tmpl, ca.Cert, key.Public(), ca.Key), Key: key}
}

func caTemplate(t testing.TB, name string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name, Country: []string{"KZ"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// Leaf is an end-entity certificate with its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Issue returns a signing certificate for subject, valid from a day before now for a year, with
// the distribution point crlURL and the OCSP responder ocspURL where they are not empty.
func (ca *CA) Issue(t testing.TB, subject pkix.Name, now time.Time, crlURL, ocspURL string) *Leaf {
	t.Helper()
	key := Key(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: subject,
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	if crlURL != "" {
		tmpl.CRLDistributionPoints = []string{crlURL}
	}
	if ocspURL != "" {
		tmpl.OCSPServer = []string{ocspURL}
	}
	return &Leaf{Cert: create(t, tmpl, ca.Cert, key.Public(), ca.Key), Key: key}
}

// Responder returns a delegated OCSP responder's certificate that ca issues, with the
// OCSPSigning extended key usage if ocspSigning (a responder without it must not be believed).
func (ca *CA) Responder(t testing.TB, now time.Time, ocspSigning bool) *Leaf {
	t.Helper()
	key := Key(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "OCSP responder of " + ca.Cert.Subject.CommonName},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if ocspSigning {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
	}
	return &Leaf{Cert: create(t, tmpl, ca.Cert, key.Public(), ca.Key), Key: key}
}

// CRL returns ca's CRL (DER) number, issued at thisUpdate, due for its next update at
// nextUpdate, listing revoked.
func (ca *CA) CRL(t testing.TB, number int64, thisUpdate, nextUpdate time.Time, revoked ...*x509.Certificate) []byte {
	t.Helper()
	return ca.CRLSignedBy(t, ca.Key, number, thisUpdate, nextUpdate, revoked...)
}

// CRLSignedBy is CRL signed by key, which need not be ca's: a forged CRL names ca as its issuer.
func (ca *CA) CRLSignedBy(t testing.TB, key crypto.Signer, number int64, thisUpdate, nextUpdate time.Time, revoked ...*x509.Certificate) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate})
	}
	issuer := *ca.Cert
	issuer.PublicKey = key.Public()
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, &issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// OCSPResponse returns a response (DER) about cert with status (ocsp.Good, ocsp.Revoked,
// ocsp.Unknown), signed by ca itself or, if responder is not nil, by that delegated responder,
// which the response carries.
func (ca *CA) OCSPResponse(t testing.TB, cert *x509.Certificate, status int, thisUpdate, nextUpdate time.Time, responder *Leaf) []byte {
	t.Helper()
	tmpl := ocsp.Response{Status: status, SerialNumber: cert.SerialNumber, ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = thisUpdate, ocsp.KeyCompromise
	}
	signerCert, signerKey := ca.Cert, ca.Key
	if responder != nil {
		signerCert, signerKey = responder.Cert, responder.Key
		tmpl.Certificate = responder.Cert
	}
	der, err := ocsp.CreateResponse(ca.Cert, signerCert, tmpl, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// PEM encodes der as one PEM block of type typ ("CERTIFICATE", "X509 CRL").
func PEM(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }

func create(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
