package gostx509

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sio-pso/siobroker/signing/gost"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func curveOf(t *testing.T, alg gost.KeyAlgorithm) *gost.Curve {
	t.Helper()
	switch alg {
	case gost.KZ2004:
		return gost.CurveCryptoProA()
	case gost.KZ2015_256:
		return gost.CurveTC26_256A()
	case gost.KZ2015_512:
		return gost.CurveTC26_512A()
	}
	t.Fatalf("no curve for %v", alg)
	return nil
}

// newCA makes a self-signed GOST CA of algorithm alg.
func newCA(t *testing.T, alg gost.KeyAlgorithm) (*gost.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := gost.GenerateKey(curveOf(t, alg), nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "GOST test CA " + alg.String(), Country: []string{"KZ"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := CreateCertificate(rand.Reader, tmpl, tmpl, Key{key.PublicKey(), alg}, key)
	if err != nil {
		t.Fatalf("%v CA: %v", alg, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("%v CA does not parse: %v", alg, err)
	}
	return key, cert
}

func newLeaf(t *testing.T, alg gost.KeyAlgorithm, ca *x509.Certificate, caKey *gost.PrivateKey) (*gost.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := gost.GenerateKey(curveOf(t, alg), nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ТЕСТОВ ТЕСТ", SerialNumber: "IIN123456789011"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, Key{key.PublicKey(), alg}, caKey)
	if err != nil {
		t.Fatalf("%v leaf: %v", alg, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("%v leaf does not parse: %v", alg, err)
	}
	return key, cert
}

// Certificates and CRLs made here carry the Kazakh OIDs as Kalkan writes them, parse with
// crypto/x509, and verify; a changed byte, a CA that is not one, and another algorithm's OID
// do not.
func TestCreateAndCheck(t *testing.T) {
	for _, alg := range []gost.KeyAlgorithm{gost.KZ2004, gost.KZ2015_256, gost.KZ2015_512} {
		t.Run(alg.String(), func(t *testing.T) {
			caKey, ca := newCA(t, alg)
			key, leaf := newLeaf(t, alg, ca, caKey)

			if !HasGOSTKey(leaf) || ca.PublicKey != nil {
				t.Fatalf("HasGOSTKey %v, x509 key %T", HasGOSTKey(leaf), ca.PublicKey)
			}
			got, err := PublicKeyOf(leaf)
			if err != nil || got.Algorithm != alg || !got.Public.Equal(key.Public()) {
				t.Fatalf("PublicKeyOf = %v %v, %v", got.Algorithm, got.Public, err)
			}
			oid, err := SignatureAlgorithm(leaf.Raw)
			if err != nil || !oid.Equal(alg.SignatureOID()) {
				t.Fatalf("signature algorithm %v, %v", oid, err)
			}
			// The AlgorithmIdentifier has NULL parameters, in the TBS and outside it.
			want, _ := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: alg.SignatureOID(), Parameters: asn1.NullRawValue})
			if bytes.Count(leaf.Raw, want) != 2 {
				t.Errorf("the signature AlgorithmIdentifier %x is not in the certificate twice", want)
			}
			if len(leaf.Signature) != 2*curveOf(t, alg).Size() {
				t.Errorf("signature of %d bytes", len(leaf.Signature))
			}
			if !bytes.Equal(leaf.AuthorityKeyId, ca.SubjectKeyId) || len(ca.SubjectKeyId) != 20 {
				t.Errorf("authority key id %x, CA's subject key id %x", leaf.AuthorityKeyId, ca.SubjectKeyId)
			}
			if err := CheckCertificateSignature(leaf, ca); err != nil {
				t.Errorf("leaf: %v", err)
			}
			if err := CheckCertificateSignature(ca, ca); err != nil {
				t.Errorf("self-signed CA: %v", err)
			}

			// A byte of the TBS changed: the signature no longer verifies.
			bad := *leaf
			bad.RawTBSCertificate = append([]byte(nil), leaf.RawTBSCertificate...)
			bad.RawTBSCertificate[len(bad.RawTBSCertificate)-1] ^= 1
			if err := CheckCertificateSignature(&bad, ca); !errors.Is(err, gost.ErrSignature) {
				t.Errorf("changed TBS: %v, want gost.ErrSignature", err)
			}
			// The leaf is no CA: what it signed does not count.
			if err := CheckCertificateSignature(ca, leaf); !errors.As(err, new(x509.ConstraintViolationError)) {
				t.Errorf("signed by a non-CA: %v", err)
			}
			// Another algorithm's OID over the same bytes.
			other := gost.KZ2015_512
			if alg == other {
				other = gost.KZ2004
			}
			if err := CheckSignature(ca, other.SignatureOID(), leaf.RawTBSCertificate, leaf.Signature); !errors.Is(err, ErrAlgorithmMismatch) {
				t.Errorf("%v OID: %v, want ErrAlgorithmMismatch", other, err)
			}

			crlDER, err := CreateRevocationList(rand.Reader, &x509.RevocationList{
				Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
				RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: leaf.SerialNumber, RevocationTime: now}},
			}, ca, caKey)
			if err != nil {
				t.Fatal(err)
			}
			crl, err := x509.ParseRevocationList(crlDER)
			if err != nil {
				t.Fatalf("the CRL does not parse: %v", err)
			}
			if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
				t.Errorf("CRL entries %v", crl.RevokedCertificateEntries)
			}
			if err := CheckCRLSignature(crl, ca); err != nil {
				t.Errorf("CRL: %v", err)
			}
			crl.RawTBSRevocationList = append([]byte(nil), crl.RawTBSRevocationList...)
			crl.RawTBSRevocationList[len(crl.RawTBSRevocationList)-1] ^= 1
			if err := CheckCRLSignature(crl, ca); !errors.Is(err, gost.ErrSignature) {
				t.Errorf("changed CRL: %v", err)
			}
		})
	}
}

// A GOST CA may issue an ECDSA key, and crypto/x509's certificates pass through untouched; a
// certificate signed with ECDSA does not verify against a GOST issuer, nor a GOST subject key
// under an ECDSA issuer.
func TestMixed(t *testing.T) {
	caKey, ca := newCA(t, gost.KZ2015_512)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "ECDSA under GOST"},
		NotBefore: now, NotAfter: now.Add(time.Hour),
	}, ca, ecKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil || leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("%v %v", leaf, err)
	}
	if err := CheckCertificateSignature(leaf, ca); err != nil {
		t.Errorf("ECDSA key under a GOST CA: %v", err)
	}

	ecCATmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "EC CA"},
		NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ecCADER, err := CreateCertificate(rand.Reader, ecCATmpl, ecCATmpl, ecKey.Public(), ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecCA, _ := x509.ParseCertificate(ecCADER)
	if err := CheckCertificateSignature(ecCA, ecCA); err != nil {
		t.Errorf("crypto/x509's own self-signed certificate: %v", err)
	}
	if err := CheckCertificateSignature(ecCA, ca); !errors.Is(err, ErrAlgorithmMismatch) {
		t.Errorf("an ECDSA signature checked with a GOST issuer: %v", err)
	}
	gk, _ := gost.GenerateKey(gost.CurveTC26_512A(), nil)
	if _, err := CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(3), NotBefore: now, NotAfter: now.Add(time.Hour)},
		ecCA, Key{gk.PublicKey(), gost.KZ2015_512}, ecKey); err == nil {
		t.Error("a GOST subject key was certified by an ECDSA issuer")
	}
	if _, err := PublicKeyOf(ecCA); !errors.Is(err, ErrNotGOST) {
		t.Errorf("PublicKeyOf(ECDSA) = %v, want ErrNotGOST", err)
	}
}

// A certificate may carry a GOST key that is no point of its curve: it parses, and
// PublicKeyOf refuses the key (not as "not GOST").
func TestRawKeyOffTheCurve(t *testing.T) {
	caKey, ca := newCA(t, gost.KZ2015_512)
	key, _ := gost.GenerateKey(gost.CurveTC26_512A(), nil)
	spki, err := gost.MarshalPKIXPublicKey(key.PublicKey(), gost.KZ2015_512)
	if err != nil {
		t.Fatal(err)
	}
	spki[len(spki)-1] ^= 1 // the last byte of Y
	der, err := CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(4), NotBefore: now, NotAfter: now.Add(time.Hour)},
		ca, RawSubjectPublicKeyInfo(spki), caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCertificateSignature(cert, ca); err != nil {
		t.Errorf("the CA's signature: %v", err)
	}
	if !HasGOSTKey(cert) {
		t.Error("HasGOSTKey is false")
	}
	if _, err := PublicKeyOf(cert); err == nil || errors.Is(err, ErrNotGOST) {
		t.Errorf("PublicKeyOf a point off the curve: %v", err)
	}
}

// kalkanDir holds the НУЦ РК test material, made by Kalkan (testdata/gost/kalkan/README.md).
const kalkanDir = "../../testdata/gost/kalkan"

func readDER(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kalkanDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		return blk.Bytes
	}
	return b
}

// The real certificates and CRLs of the НУЦ РК test CAs verify here, in both GOST algorithms,
// and crypto/x509's RSA ones beside them; and the GOST 34.10-2015 user certificate that signed
// the real XML sample verifies under its CA.
func TestKalkanCertificatesAndCRLs(t *testing.T) {
	cert := func(name string) *x509.Certificate {
		c, err := x509.ParseCertificate(readDER(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	crl := func(name string) *x509.RevocationList {
		c, err := x509.ParseRevocationList(readDER(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	ca2004, ca2015, caRSA := cert("nca_gost_test.crt"), cert("nca_gost2015_test.cer"), cert("nca_rsa_test.crt")
	for _, c := range []struct {
		name string
		ca   *x509.Certificate
		alg  gost.KeyAlgorithm
	}{{"nca_gost_test.crt", ca2004, gost.KZ2004}, {"nca_gost2015_test.cer", ca2015, gost.KZ2015_512}} {
		if k, err := PublicKeyOf(c.ca); err != nil || k.Algorithm != c.alg {
			t.Errorf("%s: %v %v", c.name, k.Algorithm, err)
		}
	}
	if err := CheckCertificateSignature(cert("ceo_valid_sign_2004_gost.cer"), ca2004); err != nil {
		t.Errorf("the 2004 user certificate: %v", err)
	}
	if err := CheckCRLSignature(crl("nca_gost_test.crl"), ca2004); err != nil {
		t.Errorf("the 2004 CRL: %v", err)
	}
	if err := CheckCRLSignature(crl("nca_gost2022_test.crl"), ca2015); err != nil {
		t.Errorf("the 2015 CRL: %v", err)
	}
	if err := CheckCRLSignature(crl("nca_gost2022_test.crl"), ca2004); err == nil {
		t.Error("the 2015 CRL verifies with the 2004 CA")
	}
	if err := CheckCertificateSignature(cert("individual_valid_sign_2004_rsa.cer"), caRSA); err != nil {
		t.Errorf("the RSA user certificate, through crypto/x509: %v", err)
	}
	if err := CheckCRLSignature(crl("nca_rsa_test.crl"), caRSA); err != nil {
		t.Errorf("the RSA CRL, through crypto/x509: %v", err)
	}

	// The signer of the XML sample: the second certificate of the document.
	xml, err := os.ReadFile(filepath.Join(kalkanDir, "ncanode-two-signers-rsa-gost2015-512.xml"))
	if err != nil {
		t.Fatal(err)
	}
	found := regexp.MustCompile(`(?s)<ds:X509Certificate>(.*?)</ds:X509Certificate>`).FindAllSubmatch(xml, -1)
	if len(found) != 2 {
		t.Fatalf("%d certificates in the XML sample", len(found))
	}
	clean := regexp.MustCompile(`&#13;|\s`).ReplaceAll(found[1][1], nil)
	der, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCertificateSignature(signer, ca2015); err != nil {
		t.Errorf("the XML sample's GOST signer: %v", err)
	}
	if k, err := PublicKeyOf(signer); err != nil || k.Algorithm != gost.KZ2015_512 {
		t.Errorf("the XML sample's GOST signer's key: %v %v", k.Algorithm, err)
	}
}
