package signing

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"sync/atomic"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// TestGOSTChainSearchBounded: a sender's own key can make any number of certificates that name
// a trusted root as subject and issuer and all verify against one another. KeyInfo's seven of
// them beside the leaf made the path search try every ordering, a GOST verification per link
// tried (about 17,000, seconds of CPU per request, a minute with 512-bit keys); the search now
// stops after maxChainSignatureChecks verifications, and checks no link twice.
func TestGOSTChainSearchBounded(t *testing.T) {
	now := fixture.now
	alg := gost.KZ2004 // the cheapest GOST verification: the test's time, not the bound, is what it keeps low
	root := gostCert(t, alg, gostCATemplate("search root", now), nil)
	trust, err := NewTrustStore([]*x509.Certificate{root.cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := gost.GenerateKey(gostCurve(alg), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := gostx509.Key{Public: key.PublicKey(), Algorithm: alg}
	// A look-alike of the root (its name, the sender's key) issues everything below.
	tmpl := gostCATemplate("search root", now)
	tmpl.SerialNumber = big.NewInt(1)
	der, err := gostx509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	lookAlike, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(tmpl *x509.Certificate) *x509.Certificate {
		gostSerial++
		tmpl.SerialNumber = big.NewInt(gostSerial)
		der, err := gostx509.CreateCertificate(rand.Reader, tmpl, lookAlike, pub, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	leaf := issue(gostUserTemplate(now))
	var extra []*x509.Certificate
	for range maxKeyInfoCerts - 1 {
		extra = append(extra, issue(gostCATemplate("search root", now)))
	}

	var checks atomic.Int64
	checkCertificateSignature = func(child, issuer *x509.Certificate) error {
		if checks.Add(1) > 1000 {
			return errors.New("the test's patience ran out") // counted, not verified: the test stays short
		}
		return gostx509.CheckCertificateSignature(child, issuer)
	}
	defer func() { checkCertificateSignature = gostx509.CheckCertificateSignature }()

	err = trust.VerifyChain(leaf, extra, now)
	if siobroker.ErrorCode(err) != siobroker.CodeCertChain {
		t.Errorf("a look-alike chain: %v, want %s", err, siobroker.CodeCertChain)
	}
	if n := checks.Load(); n > maxChainSignatureChecks {
		t.Errorf("%d signature checks for one path, bound %d", n, maxChainSignatureChecks)
	}

	// A real chain through the same search still verifies, with the look-alikes offered beside it.
	inter := gostCert(t, alg, gostCATemplate("search intermediate", now), &root)
	user := gostCert(t, alg, gostUserTemplate(now), &inter)
	checks.Store(0)
	if err := trust.VerifyChain(user.cert, append(extra[:6:6], inter.cert), now); err != nil {
		t.Errorf("a valid chain beside look-alikes: %v", err)
	}
}
