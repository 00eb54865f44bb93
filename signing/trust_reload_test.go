package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testpki"
)

// TestReloadCRLs: a running trust store takes a new CRL from its file without being rebuilt. A
// user answered before is refused CERT-REVOKED once a CRL listing them is reloaded; a file that
// does not parse, or a CRL the root did not sign, is refused and the CRL in force stays.
func TestReloadCRLs(t *testing.T) {
	now := time.Now()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, otherKey := key(), key()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reload root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "reload user"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, key().Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootFile, crlFile := filepath.Join(dir, "root.pem"), filepath.Join(dir, "crl.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	number := int64(0)
	writeCRL := func(signer *ecdsa.PrivateKey, revoked ...*big.Int) {
		t.Helper()
		number++
		tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
		for _, s := range revoked {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now})
		}
		issuer := *root
		issuer.PublicKey = signer.Public() // a forged CRL still names the root as its issuer
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, &issuer, signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	writeCRL(rootKey)
	store, err := LoadTrustStore(TrustConfig{RootFiles: []string{rootFile}, CRLFiles: []string{crlFile}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyChain(leaf, nil, now); err != nil {
		t.Fatalf("before the revocation: VerifyChain = %v", err)
	}

	writeCRL(rootKey, leaf.SerialNumber)
	if err := store.VerifyChain(leaf, nil, now); err != nil {
		t.Fatalf("a new CRL on disk, not yet reloaded: VerifyChain = %v, want the CRL in force to answer", err)
	}
	if err := store.ReloadCRLs(); err != nil {
		t.Fatalf("ReloadCRLs: %v", err)
	}
	if err := store.VerifyChain(leaf, nil, now); siobroker.ErrorCode(err) != siobroker.CodeCertRevoked {
		t.Fatalf("after the reload: VerifyChain = %v, want %s", err, siobroker.CodeCertRevoked)
	}

	// Neither a broken file nor a forged CRL may lift the revocation.
	if err := os.WriteFile(crlFile, []byte("-----BEGIN X509 CRL-----\ntruncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.ReloadCRLs(); err == nil {
		t.Error("ReloadCRLs of a broken file: no error")
	}
	writeCRL(otherKey)
	if err := store.ReloadCRLs(); err == nil {
		t.Error("ReloadCRLs of a CRL the root did not sign: no error")
	}
	if err := store.VerifyChain(leaf, nil, now); siobroker.ErrorCode(err) != siobroker.CodeCertRevoked {
		t.Errorf("after refused reloads: VerifyChain = %v, want the CRL in force to still revoke (%s)", err, siobroker.CodeCertRevoked)
	}
	if got := store.CRLs(); len(got) != 1 || got[0].Number.Int64() != 2 {
		t.Errorf("CRLs in force after refused reloads: %d, want the one numbered 2", len(got))
	}
}

// TestReloadCRLsConcurrent: requests verify while CRLs are swapped in (go test -race).
func TestReloadCRLsConcurrent(t *testing.T) {
	now := time.Now()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "race root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "race user"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, root, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, root, k)
	if err != nil {
		t.Fatal(err)
	}
	crl, _ := x509.ParseRevocationList(crlDER)
	store, err := NewTrustStore([]*x509.Certificate{root}, []*x509.RevocationList{crl})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			if err := store.SetCRLs([]*x509.RevocationList{crl}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		if err := store.VerifyChain(leaf, nil, now); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

// TestCRLStaleGrace: past its nextUpdate a CRL keeps its revocations in force for the grace, and
// answers the others; after the grace, or at once with no grace, every certificate of its issuer
// is refused with the stable "out of date" message.
func TestCRLStaleGrace(t *testing.T) {
	now := time.Now()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "grace root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	leaf := func(serial int64) *x509.Certificate {
		d, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "grace user"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)}, root, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(d)
		return c
	}
	good, revoked := leaf(2), leaf(3)
	next := now.Add(time.Hour)
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: next,
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revoked.SerialNumber, RevocationTime: now}}}, root, k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootFile, crlFile := filepath.Join(dir, "root.pem"), filepath.Join(dir, "crl.der")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crlFile, crlDER, 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(grace time.Duration) *TrustStore {
		s, err := LoadTrustStore(TrustConfig{RootFiles: []string{rootFile}, CRLFiles: []string{crlFile}, CRLStaleGrace: grace})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	graced, strict := load(24*time.Hour), load(0)
	for _, c := range []struct {
		name  string
		store *TrustStore
		cert  *x509.Certificate
		at    time.Time
		code  siobroker.Code
		msg   string
	}{
		{"grace, before nextUpdate", graced, good, now, "", ""},
		{"grace, within the grace", graced, good, next.Add(23 * time.Hour), "", ""},
		{"grace, a revoked certificate within the grace", graced, revoked, next.Add(23 * time.Hour), siobroker.CodeCertRevoked, "was revoked"},
		{"grace, after the grace", graced, good, next.Add(25 * time.Hour), siobroker.CodeCertChain, "is out of date (next update was due"},
		{"refuse, before nextUpdate", strict, good, now, "", ""},
		{"refuse, past nextUpdate", strict, good, next.Add(time.Minute), siobroker.CodeCertChain, "is out of date (next update was due"},
	} {
		err := c.store.VerifyChain(c.cert, nil, c.at)
		if c.code == "" {
			if err != nil {
				t.Errorf("%s: VerifyChain = %v, want nil", c.name, err)
			}
			continue
		}
		if siobroker.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: VerifyChain = %v, want %q %q", c.name, err, c.code, c.msg)
		}
	}
	if _, err := LoadTrustStore(TrustConfig{RootFiles: []string{rootFile}, CRLStaleGrace: -time.Second}); err == nil {
		t.Error("a negative grace: no error")
	}
}

// TestReloadCannotLiftRevocations: a CRL file swapped for one of an unrelated CA, for one that
// spells the root's name in another string type and is signed by another key, or for an older CRL
// of the root, is refused, and the revocation in force stays; a newer CRL of the root is taken.
func TestReloadCannotLiftRevocations(t *testing.T) {
	now := time.Now()
	root, unrelated := testpki.NewRoot(t, "SIO PSO Development Root CA", now), testpki.NewRoot(t, "Unrelated CA", now)
	leaf := root.Issue(t, pkix.Name{CommonName: "revoked user"}, now, "", "")
	dir := t.TempDir()
	rootFile, crlFile := filepath.Join(dir, "root.pem"), filepath.Join(dir, "crl.pem")
	if err := os.WriteFile(rootFile, testpki.PEM("CERTIFICATE", root.Cert.Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(der []byte) {
		t.Helper()
		if err := os.WriteFile(crlFile, testpki.PEM("X509 CRL", der), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(root.CRL(t, 2, now.Add(-time.Minute), now.Add(time.Hour), leaf.Cert))
	store, err := LoadTrustStore(TrustConfig{RootFiles: []string{rootFile}, CRLFiles: []string{crlFile}})
	if err != nil {
		t.Fatal(err)
	}
	revoked := func(when string) {
		t.Helper()
		if err := store.VerifyChain(leaf.Cert, nil, now); siobroker.ErrorCode(err) != siobroker.CodeCertRevoked {
			t.Fatalf("%s: VerifyChain = %v, want %s", when, err, siobroker.CodeCertRevoked)
		}
	}
	revoked("at start")

	// The root's name with every attribute in UTF8String (Go writes PrintableString), signed by
	// another key.
	var rdns pkix.RDNSequence
	for _, atv := range root.Cert.Subject.Names {
		v, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(atv.Value.(string))})
		if err != nil {
			t.Fatal(err)
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: atv.Type, Value: asn1.RawValue{FullBytes: v}}})
	}
	rawName, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(rawName, root.Cert.RawSubject) {
		t.Fatal("the respelled name is the root's own bytes")
	}
	respelled := *unrelated.Cert
	respelled.RawSubject, respelled.Subject = rawName, root.Cert.Subject
	respelledCA := &testpki.CA{Cert: &respelled, Key: unrelated.Key}
	for _, tc := range []struct {
		name string
		der  []byte
		want string
	}{
		{"a CRL of an unrelated CA", unrelated.CRL(t, 9, now.Add(-time.Second), now.Add(time.Hour)), "hold no CRL of"},
		{"the root's name respelled, another key", respelledCA.CRL(t, 9, now.Add(-time.Second), now.Add(time.Hour)), "does not verify against the root (or intermediate CA) of that name"},
		{"an older CRL of the root", root.CRL(t, 1, now.Add(-time.Hour), now.Add(time.Hour)), "is older than the one in force"},
	} {
		write(tc.der)
		if err := store.ReloadCRLs(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReloadCRLs = %v, want %q", tc.name, err, tc.want)
		}
		revoked("after " + tc.name)
	}
	write(root.CRL(t, 3, now, now.Add(time.Hour)))
	if err := store.ReloadCRLs(); err != nil {
		t.Fatalf("a newer CRL of the root: %v", err)
	}
	if err := store.VerifyChain(leaf.Cert, nil, now); err != nil {
		t.Errorf("the newer CRL, which lists nobody, is in force: VerifyChain = %v", err)
	}
}
