package signing

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// gostIssued is a certificate made by gostCert, with its key.
type gostIssued struct {
	cert *x509.Certificate
	key  *gost.PrivateKey
	alg  gost.KeyAlgorithm
}

// gostCurve is the curve of the Kazakh key algorithm alg.
func gostCurve(alg gost.KeyAlgorithm) *gost.Curve {
	switch alg {
	case gost.KZ2004:
		return gost.CurveCryptoProA()
	case gost.KZ2015_256:
		return gost.CurveTC26_256A()
	}
	return gost.CurveTC26_512A()
}

var gostSerial int64 = 100

// gostCert issues tmpl with a fresh key of alg, signed by parent (self-signed when nil).
func gostCert(t testing.TB, alg gost.KeyAlgorithm, tmpl *x509.Certificate, parent *gostIssued) gostIssued {
	t.Helper()
	key, err := gost.GenerateKey(gostCurve(alg), nil)
	if err != nil {
		t.Fatal(err)
	}
	gostSerial++
	tmpl.SerialNumber = big.NewInt(gostSerial)
	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	}
	der, err := gostx509.CreateCertificate(rand.Reader, tmpl, parentCert, gostx509.Key{Public: key.PublicKey(), Algorithm: alg}, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return gostIssued{cert, key, alg}
}

func gostCATemplate(name string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:   pkix.Name{CommonName: name, Country: []string{"KZ"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
}

func gostUserTemplate(now time.Time) *x509.Certificate {
	iin, _ := siobroker.CompleteIIN("75031230045")
	return &x509.Certificate{
		Subject:   pkix.Name{CommonName: "ИВАНОВ ИВАН", SerialNumber: "IIN" + iin, Country: []string{"KZ"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
}

func gostCRL(t testing.TB, ca gostIssued, now time.Time, revoked ...*x509.Certificate) *x509.RevocationList {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := gostx509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func wantChainCode(t *testing.T, what string, err error, code siobroker.Code, substr string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	if got := siobroker.ErrorCode(err); err == nil || got != code {
		t.Errorf("%s: %v, want %s", what, err, code)
		return
	}
	if substr != "" && !strings.Contains(err.Error(), substr) {
		t.Errorf("%s: %v, want it to say %q", what, err, substr)
	}
}

// Chains of GOST certificates of each algorithm, with intermediates, and what breaks them: an
// issuer that is no CA, one without keyCertSign, a path length exceeded, an expired CA, a
// signature by another key, an unknown issuer, a revoked user in a GOST-signed CRL and a CRL
// signed by someone else.
func TestGOSTChains(t *testing.T) {
	now := fixture.now
	for _, alg := range []gost.KeyAlgorithm{gost.KZ2004, gost.KZ2015_256, gost.KZ2015_512} {
		t.Run(alg.String(), func(t *testing.T) {
			root := gostCert(t, alg, gostCATemplate("GOST root", now), nil)
			mid := gostCert(t, alg, gostCATemplate("GOST intermediate", now), &root)
			user := gostCert(t, alg, gostUserTemplate(now), &mid)
			revoked := gostCert(t, alg, gostUserTemplate(now), &mid)
			direct := gostCert(t, alg, gostUserTemplate(now), &root)

			store, err := NewTrustStore([]*x509.Certificate{root.cert}, []*x509.RevocationList{gostCRL(t, root, now), gostCRL(t, mid, now, revoked.cert)})
			if err != nil {
				t.Fatal(err)
			}
			wantChainCode(t, "user under the root", store.VerifyChain(direct.cert, nil, now), "", "")
			wantChainCode(t, "user with the intermediate in the message", store.VerifyChain(user.cert, []*x509.Certificate{mid.cert}, now), "", "")
			wantChainCode(t, "user without the intermediate", store.VerifyChain(user.cert, nil, now), siobroker.CodeCertChain, "does not chain")
			wantChainCode(t, "revoked user", store.VerifyChain(revoked.cert, []*x509.Certificate{mid.cert}, now), siobroker.CodeCertRevoked, "revoked")
			wantChainCode(t, "the CA past its validity", store.VerifyChain(direct.cert, nil, root.cert.NotAfter.Add(-time.Minute)), siobroker.CodeCertExpired, "")

			// A configured intermediate, and one CA too many below a path length of zero.
			withMid, err := LoadTrustStore(TrustConfig{RootFiles: []string{writePEMCerts(t, root.cert)}, IntermediateFiles: []string{writePEMCerts(t, mid.cert)}})
			if err != nil {
				t.Fatal(err)
			}
			wantChainCode(t, "configured intermediate", withMid.VerifyChain(user.cert, nil, now), "", "")
			zeroTmpl := gostCATemplate("GOST root", now)
			zeroTmpl.MaxPathLenZero = true
			zero := gostCert(t, alg, zeroTmpl, nil)
			mid0 := gostCert(t, alg, gostCATemplate("GOST intermediate 0", now), &zero)
			user0 := gostCert(t, alg, gostUserTemplate(now), &mid0)
			zeroStore, _ := NewTrustStore([]*x509.Certificate{zero.cert}, nil)
			wantChainCode(t, "path length", zeroStore.VerifyChain(user0.cert, []*x509.Certificate{mid0.cert}, now), siobroker.CodeCertChain, "")

			// The intermediate is no CA, or lacks keyCertSign.
			notCA := gostCATemplate("GOST not a CA", now)
			notCA.IsCA, notCA.KeyUsage = false, x509.KeyUsageDigitalSignature
			nc := gostCert(t, alg, notCA, &root)
			underNC := gostCert(t, alg, gostUserTemplate(now), &nc)
			wantChainCode(t, "issuer not a CA", store.VerifyChain(underNC.cert, []*x509.Certificate{nc.cert}, now), siobroker.CodeCertChain, "")
			noSign := gostCATemplate("GOST CA without keyCertSign", now)
			noSign.KeyUsage = x509.KeyUsageCRLSign
			ns := gostCert(t, alg, noSign, &root)
			underNS := gostCert(t, alg, gostUserTemplate(now), &ns)
			wantChainCode(t, "issuer without keyCertSign", store.VerifyChain(underNS.cert, []*x509.Certificate{ns.cert}, now), siobroker.CodeCertChain, "")

			// An expired intermediate.
			oldTmpl := gostCATemplate("GOST expired intermediate", now)
			oldTmpl.NotAfter = now.Add(-time.Minute)
			old := gostCert(t, alg, oldTmpl, &root)
			underOld := gostCert(t, alg, gostUserTemplate(now), &old)
			wantChainCode(t, "expired intermediate", store.VerifyChain(underOld.cert, []*x509.Certificate{old.cert}, now), siobroker.CodeCertExpired, "")

			// A CA of the same name and another key: the name chains, the signature does not.
			impostor := gostCert(t, alg, gostCATemplate("GOST root", now), nil)
			forged := gostCert(t, alg, gostUserTemplate(now), &impostor)
			wantChainCode(t, "signed by another key of the root's name", store.VerifyChain(forged.cert, nil, now), siobroker.CodeCertChain, "")
			stranger := gostCert(t, alg, gostCATemplate("Some other GOST CA", now), nil)
			wantChainCode(t, "unknown issuer", store.VerifyChain(gostCert(t, alg, gostUserTemplate(now), &stranger).cert, nil, now), siobroker.CodeCertChain, "no trusted root")

			// A CRL that claims the intermediate's name and key (its authority key identifier) but is
			// signed by another key refuses everyone below it; one that names another key speaks
			// for that key's certificates only, and says nothing of these.
			fakeMid := gostCert(t, alg, gostCATemplate("GOST intermediate", now), nil)
			claiming := fakeMid
			claimingCert := *fakeMid.cert
			claimingCert.SubjectKeyId = mid.cert.SubjectKeyId
			claiming.cert = &claimingCert
			badCRLs, err := NewTrustStore([]*x509.Certificate{root.cert}, []*x509.RevocationList{gostCRL(t, claiming, now)})
			if err != nil {
				t.Fatal(err)
			}
			wantChainCode(t, "forged CRL", badCRLs.VerifyChain(user.cert, []*x509.Certificate{mid.cert}, now), siobroker.CodeCertChain, "CRL")
			otherKey, err := NewTrustStore([]*x509.Certificate{root.cert}, []*x509.RevocationList{gostCRL(t, fakeMid, now, user.cert)})
			if err != nil {
				t.Fatal(err)
			}
			wantChainCode(t, "the CRL of another key of the same name", otherKey.VerifyChain(user.cert, []*x509.Certificate{mid.cert}, now), "", "")
			// And a root's CRL signed by another key is refused when the store is made.
			if _, err := NewTrustStore([]*x509.Certificate{root.cert}, []*x509.RevocationList{gostCRL(t, impostor, now)}); err == nil {
				t.Error("a root CRL signed by another key was accepted")
			}

			// The user's own certificate as the trust anchor.
			pinned, _ := NewTrustStore([]*x509.Certificate{user.cert}, nil)
			wantChainCode(t, "pinned user certificate", pinned.VerifyChain(user.cert, nil, now), "", "")
		})
	}
}

// Several roots: the development PKI's RSA root beside GOST 2004 and 2015 roots. Each user
// chains to its own root, RSA through crypto/x509 and GOST here, and a 2004 root does not vouch
// for a 2015 user of the same CA name.
func TestMixedRoots(t *testing.T) {
	now := fixture.now
	g2004 := gostCert(t, gost.KZ2004, gostCATemplate("НУЦ (GOST)", now), nil)
	g2015 := gostCert(t, gost.KZ2015_512, gostCATemplate("НУЦ (GOST) 2022", now), nil)
	u2004 := gostCert(t, gost.KZ2004, gostUserTemplate(now), &g2004)
	u2015 := gostCert(t, gost.KZ2015_512, gostUserTemplate(now), &g2015)
	rsaRoot := fixture.trust.Roots()[0]
	store, err := NewTrustStore([]*x509.Certificate{rsaRoot, g2004.cert, g2015.cert},
		append(fixture.trust.CRLs(), gostCRL(t, g2004, now), gostCRL(t, g2015, now)))
	if err != nil {
		t.Fatal(err)
	}
	rsaUser := signer(t, "valid/rsa").Certificate()
	wantChainCode(t, "RSA user", store.VerifyChain(rsaUser, nil, now), "", "")
	wantChainCode(t, "revoked RSA user", store.VerifyChain(signer(t, "revoked/rsa").Certificate(), nil, now), siobroker.CodeCertRevoked, "")
	wantChainCode(t, "GOST 2004 user", store.VerifyChain(u2004.cert, nil, now), "", "")
	wantChainCode(t, "GOST 2015 user", store.VerifyChain(u2015.cert, nil, now), "", "")
	for _, u := range []*x509.Certificate{rsaUser, u2004.cert, u2015.cert} {
		if iin, err := SubjectIIN(u); err != nil || iin != fixture.users["valid/rsa"].IIN {
			t.Errorf("IIN of %q: %q, %v", u.Subject, iin, err)
		}
	}
	// The 2015 user's issuer name with the 2004 CA's key.
	twin := gostCert(t, gost.KZ2004, gostCATemplate("НУЦ (GOST) 2022", now), nil)
	onlyTwin, _ := NewTrustStore([]*x509.Certificate{twin.cert}, nil)
	wantChainCode(t, "2015 user under a 2004 CA of its issuer's name", onlyTwin.VerifyChain(u2015.cert, nil, now), siobroker.CodeCertChain, "")
}

func writePEMCerts(t *testing.T, certs ...*x509.Certificate) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "certs.pem")
	var data []byte
	for _, c := range certs {
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// kalkanFile is a file of the НУЦ РК test material (testdata/gost/kalkan/README.md).
func kalkanFile(name string) string { return filepath.Join("..", "testdata", "gost", "kalkan", name) }

// The real НУЦ РК test CAs, made by Kalkan, as trust.roots of one store with their CRLs: the
// GOST 2004 user and the RSA user chain each to its CA at a time inside every validity, the
// subject's IIN and BIN are read as for RSA, and past the 2004 CRL's nextUpdate the GOST user is
// refused.
func TestKalkanChains(t *testing.T) {
	at := time.Date(2022, 6, 1, 12, 0, 0, 0, time.UTC)
	store, err := LoadTrustStore(TrustConfig{
		RootFiles: []string{kalkanFile("nca_gost_test.crt"), kalkanFile("nca_rsa_test.crt"), writeDERCert(t, kalkanFile("nca_gost2015_test.cer"))},
		CRLFiles:  []string{kalkanFile("nca_gost_test.crl"), kalkanFile("nca_gost2022_test.crl"), kalkanFile("nca_rsa_test.crl")},
	})
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) *x509.Certificate {
		certs, err := LoadCertificates(kalkanFile(name))
		if err != nil {
			t.Fatal(err)
		}
		return certs[0]
	}
	ceo, person := load("ceo_valid_sign_2004_gost.cer"), load("individual_valid_sign_2004_rsa.cer")
	wantChainCode(t, "GOST 2004 user", store.VerifyChain(ceo, nil, at), "", "")
	wantChainCode(t, "RSA user", store.VerifyChain(person, nil, at), "", "")
	wantChainCode(t, "GOST 2004 user past the CRL's nextUpdate", store.VerifyChain(ceo, nil, time.Date(2022, 10, 1, 0, 0, 0, 0, time.UTC)),
		siobroker.CodeCertChain, "out of date")
	wantChainCode(t, "GOST 2004 user after its validity", store.VerifyChain(ceo, nil, time.Date(2023, 2, 1, 0, 0, 0, 0, time.UTC)),
		siobroker.CodeCertExpired, "")

	// The test certificates carry the НУЦ's placeholder numbers, whose check digits are wrong:
	// they are read, and refused, exactly as in an RSA certificate.
	for _, c := range []*x509.Certificate{ceo, person} {
		if _, err := SubjectIIN(c); siobroker.ErrorCode(err) != siobroker.CodeCertNoIIN || !strings.Contains(err.Error(), "123456789011") {
			t.Errorf("IIN of %q: %v", c.Subject, err)
		}
	}
	if _, err := SubjectBIN(ceo); siobroker.ErrorCode(err) != siobroker.CodeCertNoIIN || !strings.Contains(err.Error(), "123456789021") {
		t.Errorf("BIN of the GOST user: %v", err)
	}
}

// writeDERCert writes the DER certificate file as PEM, the form trust.roots reads.
func writeDERCert(t *testing.T, file string) string {
	t.Helper()
	der, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return writePEMCerts(t, cert)
}

// A CRL fetched from a distribution point may be signed with GOST: it is put in force against the
// GOST CA (a root, or an intermediate met in a verified GOST chain), revokes, and one signed by
// another key of the same name is refused.
func TestGOSTFetchedCRL(t *testing.T) {
	now := fixture.now
	root := gostCert(t, gost.KZ2015_512, gostCATemplate("GOST fetch root", now), nil)
	mid := gostCert(t, gost.KZ2015_512, gostCATemplate("GOST fetch intermediate", now), &root)
	user := gostCert(t, gost.KZ2015_512, gostUserTemplate(now), &mid)
	store, err := NewTrustStore([]*x509.Certificate{root.cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	impostor := gostCert(t, gost.KZ2015_512, gostCATemplate("GOST fetch intermediate", now), nil)
	if _, _, err := store.PutFetchedCRL(FetchedCRL{Source: "http://crl.invalid/mid.crl", CRL: gostCRL(t, impostor, now, user.cert)}, now); err == nil {
		t.Fatal("a CRL signed by another key of the intermediate's name was put in force")
	}
	// The intermediate, given beside its CRL, must chain to the root: through gostchain.go.
	issuer, changed, err := store.PutFetchedCRL(FetchedCRL{Source: "http://crl.invalid/mid.crl", CRL: gostCRL(t, mid, now, user.cert), Issuer: mid.cert}, now)
	if err != nil || !changed || !issuer.Equal(mid.cert) {
		t.Fatalf("the intermediate's GOST CRL: issuer %v, changed %v, %v", issuer, changed, err)
	}
	wantChainCode(t, "revoked by the fetched GOST CRL", store.VerifyChain(user.cert, []*x509.Certificate{mid.cert}, now), siobroker.CodeCertRevoked, "")
	if _, _, err := store.PutFetchedCRL(FetchedCRL{Source: "http://crl.invalid/root.crl", CRL: gostCRL(t, root, now)}, now); err != nil {
		t.Errorf("the root's GOST CRL: %v", err)
	}
}
