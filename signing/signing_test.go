package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// fixture is the development PKI generated once for the package: 2048-bit RSA key generation is
// too slow to repeat per test.
var fixture struct {
	dir      string
	manifest *devpki.Manifest
	trust    *TrustStore
	now      time.Time
	signers  map[string]*Signer // by status+keyType, e.g. "valid/rsa"
	users    map[string]devpki.User
	broker   *Signer
	foreign  *Signer // chained to a CA that is not trusted
}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "signing tests: setup:", err)
		code = 1
	}
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "signing-test-pki-")
	if err != nil {
		return 1, err
	}
	fixture.dir = dir
	fixture.now = time.Now()
	man, err := devpki.Generate(dir, fixture.now)
	if err != nil {
		return 1, err
	}
	fixture.manifest = man
	fixture.trust, err = LoadTrustStore(TrustConfig{
		RootFiles: []string{filepath.Join(dir, man.CA)},
		CRLFiles:  []string{filepath.Join(dir, man.CRL)},
	})
	if err != nil {
		return 1, err
	}
	fixture.signers = map[string]*Signer{}
	fixture.users = map[string]devpki.User{}
	for _, u := range man.Users {
		s, err := LoadSigner(filepath.Join(dir, u.Cert), filepath.Join(dir, u.Key))
		if err != nil {
			return 1, err
		}
		key := u.Status + "/" + u.KeyType
		if _, dup := fixture.signers[key]; !dup {
			fixture.signers[key] = s
			fixture.users[key] = u
		}
	}
	if fixture.broker, err = LoadSigner(filepath.Join(dir, man.BrokerCert), filepath.Join(dir, man.BrokerKey)); err != nil {
		return 1, err
	}
	if fixture.foreign, err = foreignSigner(fixture.now); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

// foreignSigner issues a user certificate, IIN and all, from a CA that the trust store does not
// know. ECDSA keeps it fast.
func foreignSigner(now time.Time) (*Signer, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: devpki.CACommonName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour * 24),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	iin, _ := siobroker.CompleteIIN("75031230045")
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ИВАНОВ ИВАН", SerialNumber: "IIN" + iin},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return NewSigner(cert, key)
}

func signer(t testing.TB, key string) *Signer {
	t.Helper()
	s, ok := fixture.signers[key]
	if !ok {
		t.Fatalf("no development user %q", key)
	}
	return s
}

// loadDoc reads an envelope from testdata/signing.
func loadDoc(t testing.TB, name string) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(filepath.Join("..", "testdata", "signing", name)); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return doc
}

// reparse serialises doc and parses it again, as the bytes travel on the wire.
func reparse(t testing.TB, doc *etree.Document) *etree.Document {
	t.Helper()
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	out := etree.NewDocument()
	if err := out.ReadFromBytes(b); err != nil {
		t.Fatalf("reparse: %v\n%s", err, b)
	}
	return out
}

func parseString(t testing.TB, s string) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(s); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

func verify(t *testing.T, doc *etree.Document) (*Verified, error) {
	t.Helper()
	return mustVerifier(t, VerifierConfig{Trust: fixture.trust}).Verify(context.Background(), doc, fixture.now)
}

// wantRefusal asserts that err is a *siobroker.Error with code, whose message contains substr.
func wantRefusal(t *testing.T, v *Verified, err error, code siobroker.Code, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified (signed %s), want %s", elementString(v.Signed), code)
	}
	if v != nil {
		t.Fatalf("a refusal returned a Verified too")
	}
	var e *siobroker.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *siobroker.Error", err)
	}
	if e.Code != code {
		t.Fatalf("code %s, want %s (%v)", e.Code, code, err)
	}
	if !strings.Contains(e.Message, substr) {
		t.Fatalf("message %q does not contain %q", e.Message, substr)
	}
}

func elementString(el *etree.Element) string {
	if el == nil {
		return "<nil>"
	}
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	s, _ := d.WriteToString()
	return s
}

// signatureOf returns the first ds:Signature of doc.
func signatureOf(t *testing.T, doc *etree.Document) *etree.Element {
	t.Helper()
	sigs := scanDocument(doc.Root()).signatures
	if len(sigs) == 0 {
		t.Fatal("no signature")
	}
	return sigs[0]
}

// resign replaces the algorithms of the signature in doc and recomputes DigestValue and
// SignatureValue by hand, bypassing the Signer's allowlist: how SHA-1 signatures are made.
func resign(t *testing.T, doc *etree.Document, s *Signer, sigAlg string, sigHash crypto.Hash, digestAlg string, digestHash crypto.Hash) {
	t.Helper()
	sig := signatureOf(t, doc)
	si := sig.SelectElement("ds:SignedInfo")
	ref := si.SelectElement("ds:Reference")
	si.SelectElement("ds:SignatureMethod").SelectAttr("Algorithm").Value = sigAlg
	ref.SelectElement("ds:DigestMethod").SelectAttr("Algorithm").Value = digestAlg

	id := strings.TrimPrefix(ref.SelectAttrValue("URI", ""), "#")
	var target *etree.Element
	for _, el := range doc.FindElements("//*") {
		for _, a := range el.Attr {
			if a.Key == "Id" && a.Value == id {
				target = el
			}
		}
	}
	var exclude *etree.Element
	if sig.Parent() == target {
		exclude = sig
	}
	content, err := canonicalize(target, c14nMethods[AlgExcC14N], "", exclude)
	if err != nil {
		t.Fatal(err)
	}
	h := digestHash.New()
	h.Write(content)
	ref.SelectElement("ds:DigestValue").SetText(b64(h.Sum(nil)))
	canonicalSI, err := canonicalize(si, c14nMethods[AlgExcC14N], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	h = sigHash.New()
	h.Write(canonicalSI)
	value, err := s.key.Sign(rand.Reader, h.Sum(nil), sigHash)
	if err != nil {
		t.Fatal(err)
	}
	sig.SelectElement("ds:SignatureValue").SetText(b64(value))
}

// mustVerifier is NewVerifier for a configuration the test knows to be valid.
func mustVerifier(t testing.TB, cfg VerifierConfig) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewVerifierNeedsTrust(t *testing.T) {
	if _, err := NewVerifier(VerifierConfig{}); err == nil || !strings.Contains(err.Error(), "VerifierConfig.Trust") {
		t.Fatalf("err = %v, want one naming VerifierConfig.Trust", err)
	}
	if _, err := NewReplyVerifier(nil); err == nil {
		t.Fatal("a reply verifier without a trust store was built")
	}
}
