package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestIntermediateCRLSignature: a CRL of an intermediate CA is checked against the intermediate
// found in the chain on every request. A CRL signed by another key is refused each time (the
// store remembers only CRLs that verified), and a genuine one revokes what it lists, also when
// asked again.
func TestIntermediateCRLSignature(t *testing.T) {
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	issue := func(name string, ca bool, parent *x509.Certificate, parentKey crypto.Signer, key crypto.Signer) *x509.Certificate {
		serial++
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: ca,
		}
		if ca {
			tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rootKey, interKey, otherKey := newKey(), newKey(), newKey()
	root := issue("test root", true, nil, nil, rootKey)
	inter := issue("test intermediate", true, root, rootKey, interKey)
	leaf := issue("test leaf", false, inter, interKey, newKey())
	crl := func(signer crypto.Signer, revoked ...*x509.Certificate) *x509.RevocationList {
		tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}
		for _, c := range revoked {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
				x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(-time.Minute)})
		}
		// The issuer's name is the intermediate's whoever signs: a forged CRL claims to be its.
		issuerCert := *inter
		issuerCert.PublicKey = signer.Public()
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, &issuerCert, signer)
		if err != nil {
			t.Fatal(err)
		}
		list, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return list
	}

	forged, err := NewTrustStore([]*x509.Certificate{root}, []*x509.RevocationList{crl(otherKey)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := forged.VerifyChain(leaf, []*x509.Certificate{inter}, now); siobroker.ErrorCode(err) != siobroker.CodeCertChain {
			t.Errorf("a CRL signed by another key: VerifyChain = %v, want %s", err, siobroker.CodeCertChain)
		}
	}
	genuine, err := NewTrustStore([]*x509.Certificate{root}, []*x509.RevocationList{crl(interKey, leaf)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := genuine.VerifyChain(leaf, []*x509.Certificate{inter}, now); siobroker.ErrorCode(err) != siobroker.CodeCertRevoked {
			t.Errorf("a revoked leaf: VerifyChain = %v, want %s", err, siobroker.CodeCertRevoked)
		}
	}
	clean, err := NewTrustStore([]*x509.Certificate{root}, []*x509.RevocationList{crl(interKey)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := clean.VerifyChain(leaf, []*x509.Certificate{inter}, now); err != nil {
			t.Errorf("a leaf no CRL lists: VerifyChain = %v", err)
		}
	}
}
