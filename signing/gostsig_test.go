package signing

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

var gostAlgorithms = []gost.KeyAlgorithm{gost.KZ2004, gost.KZ2015_256, gost.KZ2015_512}

// gostFixture is a GOST PKI of one algorithm: a root, its CRL revoking one user, a valid and a
// revoked user, and a trust store that holds the development RSA root beside the GOST one.
type gostFixture struct {
	root           gostIssued
	user, revoked  *Signer
	userKey        *gost.PrivateKey
	trust          *TrustStore
	sigAlg, digest string
}

var (
	gostFixturesMu sync.Mutex
	gostFixtures   = map[gost.KeyAlgorithm]*gostFixture{}
)

func gostPKI(t testing.TB, alg gost.KeyAlgorithm) *gostFixture {
	t.Helper()
	gostFixturesMu.Lock()
	defer gostFixturesMu.Unlock()
	if f, ok := gostFixtures[alg]; ok {
		return f
	}
	now := fixture.now
	root := gostCert(t, alg, gostCATemplate("НУЦ (GOST) test "+alg.String(), now), nil)
	user := gostCert(t, alg, gostUserTemplate(now), &root)
	revoked := gostCert(t, alg, gostUserTemplate(now), &root)
	trust, err := NewTrustStore([]*x509.Certificate{fixture.trust.Roots()[0], root.cert},
		append(fixture.trust.CRLs(), gostCRL(t, root, now, revoked.cert)))
	if err != nil {
		t.Fatal(err)
	}
	f := &gostFixture{root: root, userKey: user.key, trust: trust, sigAlg: gostMethods[alg][0], digest: gostMethods[alg][1]}
	if f.user, err = NewSigner(user.cert, user.key); err != nil {
		t.Fatal(err)
	}
	if f.revoked, err = NewSigner(revoked.cert, revoked.key); err != nil {
		t.Fatal(err)
	}
	gostFixtures[alg] = f
	return f
}

func (f *gostFixture) verify(t *testing.T, doc *etree.Document) (*Verified, error) {
	t.Helper()
	return mustVerifier(t, VerifierConfig{Trust: f.trust}).Verify(context.Background(), doc, fixture.now)
}

// GOST signatures of each kind in every placement, as our signer writes them, verify; the
// algorithms are those of the key, and the signer is the IIN of the subject.
func TestGOSTRoundTrip(t *testing.T) {
	for _, alg := range gostAlgorithms {
		f := gostPKI(t, alg)
		for _, p := range []Placement{PlacementWSSE, PlacementWSSEToken, PlacementWSSETokenTimestamp, PlacementEnveloped} {
			for _, file := range []string{"request.xml", "response.xml"} {
				t.Run(alg.String()+"/"+string(p)+"/"+file, func(t *testing.T) {
					doc := loadDoc(t, file)
					if err := f.user.Sign(doc, p); err != nil {
						t.Fatal(err)
					}
					v, err := f.verify(t, reparse(t, doc))
					if err != nil {
						t.Fatal(err)
					}
					if v.Placement != p || v.SignatureMethod != f.sigAlg || v.DigestMethod != f.digest {
						t.Errorf("got %s %s %s", v.Placement, v.SignatureMethod, v.DigestMethod)
					}
					if v.SignerIIN != f.user.IIN() || v.SignerIIN == "" {
						t.Errorf("SignerIIN %q, the certificate's %q", v.SignerIIN, f.user.IIN())
					}
				})
			}
		}
	}
}

// rewriteSignature changes the algorithms of the one signature of doc and computes its
// DigestValue and SignatureValue again by hand, with sign over the canonical SignedInfo: how
// signatures the Signer would never write are made. c14n is the canonicalisation of both
// SignedInfo and the Reference.
func rewriteSignature(t *testing.T, doc *etree.Document, sigAlg, digestAlg, c14n string, sign func(signedInfo []byte) []byte) {
	t.Helper()
	sig := signatureOf(t, doc)
	si := sig.SelectElement("ds:SignedInfo")
	si.SelectElement("ds:CanonicalizationMethod").SelectAttr("Algorithm").Value = c14n
	si.SelectElement("ds:SignatureMethod").SelectAttr("Algorithm").Value = sigAlg
	// "ref" names an element too, for the test of VerifyDocument's IDAttributes.
	ids, err := documentIDs(doc.Root(), []string{"ref"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range si.SelectElements("ds:Reference") {
		ref.SelectElement("ds:DigestMethod").SelectAttr("Algorithm").Value = digestAlg
		var exclude *etree.Element
		for _, tr := range ref.SelectElement("ds:Transforms").SelectElements("ds:Transform") {
			if a := tr.SelectAttr("Algorithm"); a.Value == AlgEnvelopedSignature {
				exclude = sig
			} else {
				a.Value = c14n
			}
		}
		target := ids[strings.TrimPrefix(ref.SelectAttrValue("URI", ""), "#")].el
		content, err := canonicalize(target, c14nMethods[c14n], "", exclude)
		if err != nil {
			t.Fatal(err)
		}
		h := digestMethods[digestAlg]()
		h.Write(content)
		ref.SelectElement("ds:DigestValue").SetText(b64(h.Sum(nil)))
	}
	canonicalSI, err := canonicalize(si, c14nMethods[c14n], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sig.SelectElement("ds:SignatureValue").SetText(b64(sign(canonicalSI)))
}

// gostSign signs data with key the way alg does, in the Kazakh convention.
func gostSign(t *testing.T, key *gost.PrivateKey, alg gost.KeyAlgorithm) func([]byte) []byte {
	return func(data []byte) []byte {
		h := alg.NewHash()
		h.Write(data)
		v, err := gost.Kazakh.Sign(nil, key, h.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// Both canonicalisations, with and without comments, in both placements.
func TestGOSTCanonicalisations(t *testing.T) {
	for _, alg := range gostAlgorithms {
		f := gostPKI(t, alg)
		for _, c14n := range []string{AlgExcC14N, AlgC14N10, AlgExcC14NWithComments, AlgC14N10WithComments} {
			for _, p := range []Placement{PlacementWSSE, PlacementEnveloped} {
				doc := loadDoc(t, "request.xml")
				if err := f.user.Sign(doc, p); err != nil {
					t.Fatal(err)
				}
				rewriteSignature(t, doc, f.sigAlg, f.digest, c14n, gostSign(t, f.userKey, alg))
				if _, err := f.verify(t, reparse(t, doc)); err != nil {
					t.Errorf("%v %s %s: %v", alg, c14n, p, err)
				}
			}
		}
	}
}

// The hostile cases of issue 17 and the rules of the signed path, with GOST keys: each is refused
// with its precise code.
func TestGOSTHostile(t *testing.T) {
	f512, f256, f2004 := gostPKI(t, gost.KZ2015_512), gostPKI(t, gost.KZ2015_256), gostPKI(t, gost.KZ2004)
	signed := func(t *testing.T, s *Signer, p Placement) *etree.Document {
		t.Helper()
		doc := loadDoc(t, "request.xml")
		if err := s.Sign(doc, p); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	setValue := func(doc *etree.Document, value []byte) {
		signatureOf(t, doc).SelectElement("ds:SignatureValue").SetText(b64(value))
	}
	q := func(c *gost.Curve) *big.Int { return c.Params().Q }
	le := func(x *big.Int, n int) []byte {
		b := x.FillBytes(make([]byte, n))
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
		return b
	}

	t.Run("GOST signature with the RSA URI", func(t *testing.T) {
		doc := signed(t, f512.user, PlacementWSSE)
		rewriteSignature(t, doc, AlgRSASHA256, AlgDigestSHA256, AlgExcC14N, gostSign(t, f512.userKey, gost.KZ2015_512))
		v, err := f512.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigAlgorithm, "does not fit the certificate's GOST key")
	})
	t.Run("RSA signature with a GOST URI", func(t *testing.T) {
		rsa := signer(t, "valid/rsa")
		doc := signed(t, rsa, PlacementWSSE)
		signatureOf(t, doc).SelectElement("ds:SignedInfo").SelectElement("ds:SignatureMethod").SelectAttr("Algorithm").Value = AlgGOST2015_512
		v, err := f512.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigAlgorithm, "does not fit the certificate's RSA key")
	})
	t.Run("2004 key with the 2015 URI", func(t *testing.T) {
		doc := signed(t, f2004.user, PlacementEnveloped)
		rewriteSignature(t, doc, AlgGOST2015_512, AlgDigestGOST2015_512, AlgExcC14N, gostSign(t, f2004.userKey, gost.KZ2004))
		v, err := f2004.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigAlgorithm, "GOST 34.310-2004 key, which signs with "+AlgGOST2004)
	})
	t.Run("2015-256 key with the 512 URI", func(t *testing.T) {
		doc := signed(t, f256.user, PlacementWSSE)
		signatureOf(t, doc).SelectElement("ds:SignedInfo").SelectElement("ds:SignatureMethod").SelectAttr("Algorithm").Value = AlgGOST2015_512
		v, err := f256.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigAlgorithm, "GOST 34.10-2015 256 key")
	})
	t.Run("r out of range", func(t *testing.T) {
		doc := signed(t, f512.user, PlacementWSSE)
		c := gost.CurveTC26_512A()
		setValue(doc, append(le(q(c), 64), le(big.NewInt(1), 64)...))
		v, err := f512.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigInvalid, "SignatureValue does not verify")
	})
	t.Run("s out of range", func(t *testing.T) {
		doc := signed(t, f2004.user, PlacementEnveloped)
		setValue(doc, append(le(big.NewInt(1), 32), le(q(gost.CurveCryptoProA()), 32)...))
		v, err := f2004.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigInvalid, "SignatureValue does not verify")
	})
	t.Run("r zero", func(t *testing.T) {
		doc := signed(t, f256.user, PlacementWSSE)
		setValue(doc, append(make([]byte, 32), le(big.NewInt(5), 32)...))
		v, err := f256.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigInvalid, "SignatureValue does not verify")
	})
	t.Run("signature of the wrong length", func(t *testing.T) {
		for _, n := range []int{0, 64, 127, 129} {
			doc := signed(t, f512.user, PlacementWSSE)
			value := make([]byte, n)
			rand.Read(value)
			setValue(doc, value)
			v, err := f512.verify(t, doc)
			wantRefusal(t, v, err, siobroker.CodeSigInvalid, "SignatureValue does not verify")
		}
	})
	t.Run("a 256-bit signature in a 512-bit key's algorithm", func(t *testing.T) {
		doc := signed(t, f512.user, PlacementWSSE)
		setValue(doc, gostSign(t, f256.userKey, gost.KZ2015_256)([]byte("x")))
		v, err := f512.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigInvalid, "SignatureValue does not verify")
	})
	t.Run("the Body changed after signing", func(t *testing.T) {
		doc := signed(t, f2004.user, PlacementWSSE)
		doc.FindElement("//purpose").SetText("другая цель")
		v, err := f2004.verify(t, doc)
		wantRefusal(t, v, err, siobroker.CodeSigInvalid, "digest")
	})
	t.Run("revoked user in a GOST-signed CRL", func(t *testing.T) {
		for _, f := range []*gostFixture{f512, f256, f2004} {
			v, err := f.verify(t, signed(t, f.revoked, PlacementWSSETokenTimestamp))
			wantRefusal(t, v, err, siobroker.CodeCertRevoked, "revoked")
		}
	})
	t.Run("key usage of GOST certificates", func(t *testing.T) {
		// An authentication certificate (clientAuth only), one without digitalSignature, and a CA
		// certificate with a person's IIN: SIO-CERT-USAGE, as for RSA.
		auth := gostUserTemplate(fixture.now)
		auth.KeyUsage, auth.ExtKeyUsage = x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		noSig := gostUserTemplate(fixture.now)
		noSig.KeyUsage = x509.KeyUsageContentCommitment
		ca := gostCATemplate("ИВАНОВ ИВАН", fixture.now)
		ca.Subject.SerialNumber = gostUserTemplate(fixture.now).Subject.SerialNumber
		ca.KeyUsage |= x509.KeyUsageDigitalSignature
		for _, tc := range []struct {
			tmpl *x509.Certificate
			msg  string
		}{
			{auth, "none of the signing ones"},
			{noSig, "lacks the digitalSignature key usage"},
			{ca, "is a CA certificate"},
		} {
			c := gostCert(t, gost.KZ2015_512, tc.tmpl, &f512.root)
			s, err := NewSigner(c.cert, c.key)
			if err != nil {
				t.Fatal(err)
			}
			v, err := f512.verify(t, signed(t, s, PlacementWSSE))
			wantRefusal(t, v, err, siobroker.CodeCertUsage, tc.msg)
		}
	})
	t.Run("a signature wrapped out of the Body", func(t *testing.T) {
		doc := signed(t, f512.user, PlacementWSSE)
		// The signed Body moves into the header; a new Body with another query takes its place.
		body := doc.FindElement("//Body")
		evil := body.Copy()
		evil.FindElement("//purpose").SetText("подмена")
		header := doc.FindElement("//Header")
		header.AddChild(body.Copy())
		doc.Root().RemoveChild(body)
		doc.Root().AddChild(evil)
		v, err := f512.verify(t, doc)
		if err == nil {
			t.Fatalf("a wrapped envelope verified: %s", elementString(v.Signed))
		}
		if c := siobroker.ErrorCode(err); c != siobroker.CodeSigReference && c != siobroker.CodeSigInvalid {
			t.Errorf("code %s (%v)", c, err)
		}
	})

	// Certificates with broken GOST keys, issued by the trusted GOST CA itself.
	brokenKey := func(t *testing.T, f *gostFixture, alg gost.KeyAlgorithm, spki []byte) *Signer {
		t.Helper()
		tmpl := gostUserTemplate(fixture.now)
		tmpl.SerialNumber = big.NewInt(999)
		der, err := gostx509.CreateCertificate(rand.Reader, tmpl, f.root.cert, gostx509.RawSubjectPublicKeyInfo(spki), f.root.key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		// NewSigner refuses the key, so the Signer is put together by hand.
		s := *f.user
		s.cert = cert
		return &s
	}
	spkiOf := func(alg gost.KeyAlgorithm, params []byte, key []byte) []byte {
		octets, _ := asn1.Marshal(key)
		der, _ := asn1.Marshal(struct {
			Algorithm struct {
				OID    asn1.ObjectIdentifier
				Params asn1.RawValue
			}
			Key asn1.BitString
		}{struct {
			OID    asn1.ObjectIdentifier
			Params asn1.RawValue
		}{alg.OID(), asn1.RawValue{FullBytes: params}}, asn1.BitString{Bytes: octets, BitLength: 8 * len(octets)}})
		return der
	}
	params512, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 2, 398, 3, 10, 1, 1, 2, 2, 1}, {1, 2, 398, 3, 10, 1, 3, 3}})
	params256, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 2, 398, 3, 10, 1, 1, 2, 1, 1}, {1, 2, 398, 3, 10, 1, 3, 2}})
	point := gost.Kazakh.MarshalPublicKey(f512.userKey.PublicKey())
	offCurve := append([]byte(nil), point...)
	offCurve[len(offCurve)-1] ^= 1
	for _, tc := range []struct {
		name string
		spki []byte
	}{
		{"point not on the curve", spkiOf(gost.KZ2015_512, params512, offCurve)},
		{"key of the wrong length", spkiOf(gost.KZ2015_512, params512, point[:64])},
		{"a 512-bit algorithm on a 256-bit curve", spkiOf(gost.KZ2015_512, params256, point)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := brokenKey(t, f512, gost.KZ2015_512, tc.spki)
			doc := signed(t, s, PlacementWSSE)
			v, err := f512.verify(t, doc)
			wantRefusal(t, v, err, siobroker.CodeCertChain, "is not valid")
		})
	}
}

// GOST detached signatures (the journal archives' seals, the readiness probe) round-trip, and a
// changed byte does not verify.
func TestGOSTDetached(t *testing.T) {
	for _, alg := range gostAlgorithms {
		f := gostPKI(t, alg)
		data := []byte("sealed archive")
		sig, err := f.user.SignDetached(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyDetached(f.user.Certificate(), data, sig); err != nil {
			t.Errorf("%v: %v", alg, err)
		}
		if err := VerifyDetached(f.user.Certificate(), []byte("sealed archivE"), sig); siobroker.ErrorCode(err) != siobroker.CodeSigInvalid {
			t.Errorf("%v, changed data: %v", alg, err)
		}
	}
}

// Signatures made by our XML signer, checked by OpenSSL's GOST engine over the canonical
// SignedInfo bytes: the signature in RFC 4491's order (the Kazakh r||s little-endian, reversed
// whole, is s||r big-endian) with the key as an RFC 9215 key of the same curve. Streebog is
// OpenSSL's own (dgst -md_gost12_*); the GOST 34.311-95 hash of a 2004 signature is ours (the
// engine's GOST R 34.11-94 has CryptoPro's parameters, not the test ones), so there OpenSSL
// checks the signature over our digest (pkeyutl). The DigestValue of the Body is compared with
// OpenSSL's Streebog of its canonical form.
func TestGOSTXMLSignatureByOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		gostToolMissing(t, "openssl is not installed (Debian package openssl)")
	}
	if out, err := exec.Command(openssl, "engine", "gost").CombinedOutput(); err != nil {
		gostToolMissing(t, "OpenSSL's GOST engine does not load (Debian package libengine-gost-openssl): "+err.Error()+" "+string(out))
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, alg := range gostAlgorithms {
		f := gostPKI(t, alg)
		doc := loadDoc(t, "request.xml")
		if err := f.user.Sign(doc, PlacementWSSE); err != nil {
			t.Fatal(err)
		}
		doc = reparse(t, doc)
		sig := signatureOf(t, doc)
		si, err := canonicalize(sig.SelectElement("ds:SignedInfo"), c14nMethods[AlgExcC14N], "", nil)
		if err != nil {
			t.Fatal(err)
		}
		value, _ := base64.StdEncoding.DecodeString(sig.SelectElement("ds:SignatureValue").Text())
		reversed := make([]byte, len(value))
		for i := range value {
			reversed[len(value)-1-i] = value[i]
		}
		tc26 := gost.TC26_256
		if alg == gost.KZ2015_512 {
			tc26 = gost.TC26_512
		}
		pubDER, err := gost.MarshalPKIXPublicKey(f.userKey.PublicKey(), tc26)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ReplaceAll(alg.String(), " ", "_")
		pub := write(name+".pub.der", pubDER)
		sigFile := write(name+".sig", reversed)
		var args []string
		switch alg {
		case gost.KZ2004:
			h := gost.NewGOST94()
			h.Write(si)
			args = []string{"pkeyutl", "-engine", "gost", "-verify", "-pubin", "-keyform", "DER", "-inkey", pub,
				"-in", write(name+".dgst", h.Sum(nil)), "-sigfile", sigFile}
		default:
			md := "-md_gost12_256"
			if alg == gost.KZ2015_512 {
				md = "-md_gost12_512"
			}
			pemPub := write(name+".pub.pem", pemEncode("PUBLIC KEY", pubDER))
			args = []string{"dgst", "-engine", "gost", md, "-verify", pemPub, "-signature", sigFile, write(name+".si", si)}
		}
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Verified") {
			t.Errorf("%v: OpenSSL does not verify our XML signature: %v\n%s", alg, err, out)
		}
		// And OpenSSL refuses the signature over other bytes.
		if alg != gost.KZ2004 {
			bad := append([]byte(nil), si...)
			bad[len(bad)-2] ^= 1
			args[len(args)-1] = write(name+".bad", bad)
			if out, err := exec.Command(openssl, args...).CombinedOutput(); err == nil && strings.Contains(string(out), "Verified OK") {
				t.Errorf("%v: OpenSSL verified a signature over other bytes", alg)
			}
			// The Body's DigestValue is OpenSSL's Streebog of the canonical Body, byte for byte.
			body, err := canonicalize(doc.FindElement("//Body"), c14nMethods[AlgExcC14N], "", nil)
			if err != nil {
				t.Fatal(err)
			}
			md := "-md_gost12_256"
			if alg == gost.KZ2015_512 {
				md = "-md_gost12_512"
			}
			digest, err := exec.Command(openssl, "dgst", "-engine", "gost", md, "-binary", write(name+".body", body)).Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := sig.FindElement(".//ds:DigestValue").Text(); got != b64(digest) {
				t.Errorf("%v: DigestValue %s, OpenSSL's Streebog %s", alg, got, b64(digest))
			}
		}
	}
}

func pemEncode(blockType string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}

func gostToolMissing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must have it: see .ci/run", what)
	}
	t.Skipf("%s; skipped outside CI", what)
}
