package gost

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// Real signatures of the НУЦ РК test CAs, made by Kalkan, from the public test resources of
// NCANode (github.com/malikzh/NCANode, src/test/resources: ca/nca_gost_test.crt,
// ca/nca_gost2015_test.cer, certs/ceo_valid_sign_2004_gost.cer, crl/nca_gost_test.crl,
// crl/nca_gost2022_test.crl), kept in testdata/gost/kalkan with their source
// (testdata/gost/kalkan/README.md). $SIO_GOST_SAMPLES names another directory of the same files.
//
// What they prove, run on 7 December 2026: X.509 certificates and CRLs signed with
// GOST 34.310-2004 (GOST 34.311-95 over the TBS, CryptoPro-A) and with GOST 34.10-2015 512
// (Streebog-512, TC26-512-A) verify in the Kazakh convention and in no other: the signature
// BIT STRING is r||s little-endian, the digest is read little-endian.
func TestKalkanSamples(t *testing.T) {
	dir := os.Getenv("SIO_GOST_SAMPLES")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "gost", "kalkan")
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("the real Kalkan samples (see the comment for their source): %v", err)
		}
		if blk, _ := pem.Decode(b); blk != nil {
			return blk.Bytes
		}
		return b
	}
	cert := func(name string) *x509.Certificate {
		c, err := x509.ParseCertificate(read(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	crl := func(name string) *x509.RevocationList {
		c, err := x509.ParseRevocationList(read(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	ca2004, ca2015 := cert("nca_gost_test.crt"), cert("nca_gost2015_test.cer")
	ceo := cert("ceo_valid_sign_2004_gost.cer")
	crl2004, crl2015 := crl("nca_gost_test.crl"), crl("nca_gost2022_test.crl")
	cases := []struct {
		name     string
		issuer   *x509.Certificate
		alg      KeyAlgorithm
		tbs, sig []byte
	}{
		{"2004 certificate", ca2004, KZ2004, ceo.RawTBSCertificate, ceo.Signature},
		{"2004 CRL", ca2004, KZ2004, crl2004.RawTBSRevocationList, crl2004.Signature},
		{"2015-512 CRL", ca2015, KZ2015_512, crl2015.RawTBSRevocationList, crl2015.Signature},
	}
	for _, tc := range cases {
		pub, alg, err := ParsePKIXPublicKey(tc.issuer.RawSubjectPublicKeyInfo)
		if err != nil || alg != tc.alg {
			t.Fatalf("%s: issuer key %v, %v", tc.name, alg, err)
		}
		h := alg.NewHash()
		h.Write(tc.tbs)
		digest := h.Sum(nil)
		if err := Kazakh.Verify(pub, digest, tc.sig); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		for _, other := range []Convention{BigEndian, RFC4491} {
			if other.Verify(pub, digest, tc.sig) == nil {
				t.Errorf("%s: verifies in the %v convention too", tc.name, other)
			}
		}
	}
	// The 2004 user key is a Kazakh SubjectPublicKeyInfo as issue 17 describes it.
	if _, alg, err := ParsePKIXPublicKey(ceo.RawSubjectPublicKeyInfo); err != nil || alg != KZ2004 {
		t.Errorf("the 2004 user key: %v, %v", alg, err)
	}
}
