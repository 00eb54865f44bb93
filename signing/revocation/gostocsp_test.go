package revocation

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the CertID hash of RFC 6960 §4.1.1, as responders use it
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"hash"
	"math/big"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"golang.org/x/crypto/ocsp"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/internal/testpki"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// GOST-signed OCSP responses (issue 17). The test PKI is made with the repository's own GOST
// code (signing/gost keys, gostx509 certificates and CRLs); the responses are marshalled here
// with encoding/asn1 (RFC 6960, section 4.2.1), independently of the parser under test, and
// signed with signing/gost in the convention of the key's algorithm, as gostx509 signs
// certificates and CRLs. No published GOST-signed OCSP response was found to test against.

// gostTestCA is a GOST certificate with its key.
type gostTestCA struct {
	cert *x509.Certificate
	key  *gost.PrivateKey
	alg  gost.KeyAlgorithm
}

var gostTestSerial atomic.Int64

// testIIN is the IIN of the GOST users: 75031230045 and its check digit.
var testIIN = func() string {
	iin, ok := siobroker.CompleteIIN("75031230045")
	if !ok {
		panic("no check digit for 75031230045")
	}
	return iin
}()

// gostTestCurve is the curve of the Kazakh key algorithm alg.
func gostTestCurve(alg gost.KeyAlgorithm) *gost.Curve {
	switch alg {
	case gost.KZ2004:
		return gost.CurveCryptoProA()
	case gost.KZ2015_256:
		return gost.CurveTC26_256A()
	}
	return gost.CurveTC26_512A()
}

// newGOSTCert makes tmpl with a fresh key of alg, issued by parent (self-signed when nil).
func newGOSTCert(t testing.TB, alg gost.KeyAlgorithm, tmpl *x509.Certificate, parent *gostTestCA) *gostTestCA {
	t.Helper()
	key, err := gost.GenerateKey(gostTestCurve(alg), nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(1000 + gostTestSerial.Add(1))
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
	return &gostTestCA{cert: cert, key: key, alg: alg}
}

func newGOSTRoot(t testing.TB, alg gost.KeyAlgorithm, name string) *gostTestCA {
	return newGOSTCert(t, alg, &x509.Certificate{
		Subject:   pkix.Name{CommonName: name, Country: []string{"KZ"}},
		NotBefore: start.Add(-24 * time.Hour), NotAfter: start.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}, nil)
}

// user issues a signer's certificate naming the OCSP responder url.
func (ca *gostTestCA) user(t testing.TB, url string) *gostTestCA {
	return newGOSTCert(t, ca.alg, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "ИВАНОВ ИВАН", SerialNumber: "IIN" + testIIN, Country: []string{"KZ"}},
		NotBefore: start.Add(-24 * time.Hour), NotAfter: start.Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		OCSPServer:  []string{url},
	}, ca)
}

// responder issues a delegated OCSP responder's certificate, with id-kp-OCSPSigning if
// ocspSigning.
func (ca *gostTestCA) responder(t testing.TB, ocspSigning bool) *gostTestCA {
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
	if ocspSigning {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	}
	return newGOSTCert(t, ca.alg, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "OCSP " + ca.cert.Subject.CommonName, Country: []string{"KZ"}},
		NotBefore: start.Add(-24 * time.Hour), NotAfter: start.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku,
	}, ca)
}

// crl is the CA's GOST-signed CRL, in force at start, revoking nothing.
func (ca *gostTestCA) crl(t testing.TB) []byte {
	t.Helper()
	der, err := gostx509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: start.Add(-time.Hour), NextUpdate: start.Add(24 * time.Hour),
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// The ASN.1 of RFC 6960, section 4.2.1, as a responder writes it.
type (
	testCertID struct {
		HashAlgorithm  pkix.AlgorithmIdentifier
		IssuerNameHash []byte
		IssuerKeyHash  []byte
		SerialNumber   *big.Int
	}
	testSingleResponse struct {
		CertID     testCertID
		Status     asn1.RawValue
		ThisUpdate time.Time `asn1:"generalized"`
		NextUpdate time.Time `asn1:"generalized,explicit,tag:0,optional"`
	}
	testResponseData struct {
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []testSingleResponse
	}
	testBasicResponse struct {
		TBSResponseData    asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	testResponseBytes struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	}
	testOCSPResponse struct {
		Status   asn1.Enumerated
		Response testResponseBytes `asn1:"explicit,tag:0"`
	}
	testRevokedInfo struct {
		RevocationTime time.Time       `asn1:"generalized"`
		Reason         asn1.Enumerated `asn1:"explicit,tag:0"`
	}
)

// gostResp describes a GOST-signed response about cert of issuer.
type gostResp struct {
	issuer     *gostTestCA // names the CertID's issuer
	cert       *x509.Certificate
	status     int // ocsp.Good, ocsp.Revoked, ocsp.Unknown
	thisUpdate time.Time
	nextUpdate time.Time
	signer     *gostTestCA // the issuer when nil
	embed      bool        // the signer's certificate is in certs
	hashOID    asn1.ObjectIdentifier
	newHash    func() hash.Hash
	signedTBS  func(tbs []byte) []byte // what is signed in place of the tbsResponseData; nil: itself
}

var oidSHA1 = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}

// tbs marshals the ResponseData of r.
func (r gostResp) tbs(t testing.TB) []byte {
	t.Helper()
	if r.newHash == nil {
		r.hashOID, r.newHash = oidSHA1, sha1.New
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(r.issuer.cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	h := r.newHash()
	h.Write(r.issuer.cert.RawSubject)
	nameHash := h.Sum(nil)
	h = r.newHash()
	h.Write(spki.PublicKey.Bytes)
	keyHash := h.Sum(nil)
	var status asn1.RawValue
	switch r.status {
	case ocsp.Good:
		status = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0}
	case ocsp.Unknown:
		status = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2}
	default:
		info, err := asn1.MarshalWithParams(testRevokedInfo{RevocationTime: r.thisUpdate.UTC().Truncate(time.Second), Reason: ocsp.KeyCompromise}, "tag:1")
		if err != nil {
			t.Fatal(err)
		}
		status = asn1.RawValue{FullBytes: info}
	}
	signer := r.signer
	if signer == nil {
		signer = r.issuer
	}
	// ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash } (EXPLICIT): byName.
	responderID := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: signer.cert.RawSubject}
	der, err := asn1.Marshal(testResponseData{
		ResponderID: responderID,
		ProducedAt:  r.thisUpdate.UTC().Truncate(time.Second),
		Responses: []testSingleResponse{{
			CertID: testCertID{HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: r.hashOID, Parameters: asn1.NullRawValue},
				IssuerNameHash: nameHash, IssuerKeyHash: keyHash, SerialNumber: r.cert.SerialNumber},
			Status:     status,
			ThisUpdate: r.thisUpdate.UTC().Truncate(time.Second),
			NextUpdate: r.nextUpdate.UTC().Truncate(time.Second),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// der marshals and signs the OCSPResponse of r.
func (r gostResp) der(t testing.TB) []byte {
	t.Helper()
	tbs := r.tbs(t)
	signer := r.signer
	if signer == nil {
		signer = r.issuer
	}
	signed := tbs
	if r.signedTBS != nil {
		signed = r.signedTBS(tbs)
	}
	h := signer.alg.NewHash()
	h.Write(signed)
	sig, err := signer.key.Sign(rand.Reader, h.Sum(nil), gost.SignerOpts{Convention: signer.alg.Convention()})
	if err != nil {
		t.Fatal(err)
	}
	basic := testBasicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: signer.alg.SignatureOID(), Parameters: asn1.NullRawValue},
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	}
	if r.embed {
		basic.Certs = []asn1.RawValue{{FullBytes: signer.cert.Raw}}
	}
	basicDER, err := asn1.Marshal(basic)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(testOCSPResponse{Response: testResponseBytes{ResponseType: idPKIXOCSPBasic, Response: basicDER}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestGOSTOCSPResponses (issue 17): a signer's GOST certificate names a local OCSP responder
// whose responses are GOST-signed, by the CA or by a delegated responder. Under require, only a
// response signed by the CA, or by a responder the CA certified with id-kp-OCSPSigning, about
// this certificate of this CA, and current, answers; under prefer, every other falls back to the
// CA's CRL in force. Each Kazakh algorithm the national PKI signs with is tried.
func TestGOSTOCSPResponses(t *testing.T) {
	for _, alg := range []gost.KeyAlgorithm{gost.KZ2015_512, gost.KZ2004, gost.KZ2015_256} {
		t.Run(alg.String(), func(t *testing.T) { testGOSTOCSPResponses(t, alg) })
	}
}

func testGOSTOCSPResponses(t *testing.T, alg gost.KeyAlgorithm) {
	clock := testclock.New(start)
	now := start
	root := newGOSTRoot(t, alg, "test ҰКО РК GOST")
	impostor := newGOSTRoot(t, alg, "test ҰКО РК GOST") // the same name, another key
	other := newGOSTRoot(t, alg, "another GOST CA")
	resp := newResponder(t)
	user := root.user(t, resp.url)
	delegated := root.responder(t, true)
	noEKU := root.responder(t, false)
	foreign := other.responder(t, true)
	crl := root.crl(t)
	// The responder checks that the request names user of root: SHA-1 of root's name and of its
	// GOST key's BIT STRING, taken from the raw certificate (crypto/x509 parses no GOST key).
	var badRequests atomic.Int32
	checkRequest := func(req *ocsp.Request) {
		var spki struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(root.cert.RawSubjectPublicKeyInfo, &spki); err != nil {
			t.Error(err)
		}
		nameHash, keyHash := sha1.Sum(root.cert.RawSubject), sha1.Sum(spki.PublicKey.Bytes)
		if req.SerialNumber.Cmp(user.cert.SerialNumber) != 0 || !bytes.Equal(req.IssuerNameHash, nameHash[:]) || !bytes.Equal(req.IssuerKeyHash, keyHash[:]) {
			badRequests.Add(1)
		}
	}
	good := func() gostResp {
		return gostResp{issuer: root, cert: user.cert, status: ocsp.Good, thisUpdate: now.Add(-time.Minute), nextUpdate: now.Add(time.Hour)}
	}
	with := func(f func(*gostResp)) []byte {
		r := good()
		f(&r)
		return r.der(t)
	}
	for _, tc := range []struct {
		name     string
		response []byte
		want     siobroker.Code // under require
		prefer   siobroker.Code // under prefer, a CRL of root in force
		status   signing.OCSPStatus
	}{
		{"good, signed by the CA", with(func(*gostResp) {}), "", "", signing.OCSPGood},
		{"good, signed by the CA, which embeds its own certificate", with(func(r *gostResp) { r.embed = true }), "", "", signing.OCSPGood},
		{"revoked", with(func(r *gostResp) { r.status = ocsp.Revoked }), siobroker.CodeCertRevoked, siobroker.CodeCertRevoked, signing.OCSPRevoked},
		{"unknown", with(func(r *gostResp) { r.status = ocsp.Unknown }), siobroker.CodeCertStatus, "", signing.OCSPUnknown},
		{"without nextUpdate", with(func(r *gostResp) { r.nextUpdate = time.Time{} }), "", "", signing.OCSPGood},
		{"CertID hashed with GOST 34.311-95", with(func(r *gostResp) {
			r.hashOID, r.newHash = asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 3, 1}, gost.NewGOST94
		}), "", "", signing.OCSPGood},
		{"CertID hashed with Streebog-512", with(func(r *gostResp) {
			r.hashOID, r.newHash = asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 3, 3}, gost.NewStreebog512
		}), "", "", signing.OCSPGood},
		{"signed by a delegated responder with OCSPSigning", with(func(r *gostResp) { r.signer, r.embed = delegated, true }), "", "", signing.OCSPGood},
		{"revoked, signed by a delegated responder", with(func(r *gostResp) { r.signer, r.embed, r.status = delegated, true, ocsp.Revoked }), siobroker.CodeCertRevoked, siobroker.CodeCertRevoked, signing.OCSPRevoked},
		{"signed by a responder without OCSPSigning", with(func(r *gostResp) { r.signer, r.embed = noEKU, true }), siobroker.CodeCertStatus, "", 0},
		{"signed by a delegated responder that does not send its certificate", with(func(r *gostResp) { r.signer = delegated }), siobroker.CodeCertStatus, "", 0},
		{"signed by another CA's responder", with(func(r *gostResp) { r.signer, r.embed = foreign, true }), siobroker.CodeCertStatus, "", 0},
		{"signed by another key under the CA's name", with(func(r *gostResp) { r.signer = impostor }), siobroker.CodeCertStatus, "", 0},
		{"the tbsResponseData changed after signing (revoked made good)", with(func(r *gostResp) {
			revoked := *r
			revoked.status, revoked.signedTBS = ocsp.Revoked, nil
			revokedTBS := revoked.tbs(t)
			r.signedTBS = func([]byte) []byte { return revokedTBS }
		}), siobroker.CodeCertStatus, "", 0},
		{"about the same serial under another CA", with(func(r *gostResp) { r.issuer, r.signer = other, root }), siobroker.CodeCertStatus, "", 0},
		{"out of date", with(func(r *gostResp) { r.thisUpdate, r.nextUpdate = now.Add(-2*time.Hour), now.Add(-time.Hour) }), siobroker.CodeCertStatus, "", 0},
		{"from the future", with(func(r *gostResp) { r.thisUpdate, r.nextUpdate = now.Add(time.Hour), now.Add(2*time.Hour) }), siobroker.CodeCertStatus, "", 0},
	} {
		resp.set(func(req *ocsp.Request) []byte {
			checkRequest(req)
			return tc.response
		})
		for _, policy := range []signing.OCSPPolicy{signing.OCSPRequire, signing.OCSPPrefer} {
			checker, err := NewOCSP(OCSPConfig{Timeout: 5 * time.Second, Cache: time.Hour, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			// A CRL of the CA in force: under require it must not save an unverified answer,
			// under prefer it must.
			store := ocspStore(t, &testpki.CA{Cert: root.cert}, checker, policy, crl)
			err = store.VerifyChain(user.cert, nil, clock.Now())
			want := tc.want
			if policy == signing.OCSPPrefer {
				want = tc.prefer
			}
			if want == "" && err != nil || want != "" && siobroker.ErrorCode(err) != want {
				t.Errorf("%s, %s: %v, want %q", tc.name, policy, err, want)
			}
		}
		checker, err := NewOCSP(OCSPConfig{Timeout: 5 * time.Second, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		answer, err := checker.CheckOCSP(context.Background(), user.cert, root.cert)
		switch {
		case tc.status == 0 && err == nil:
			t.Errorf("%s: answered %+v, want no answer", tc.name, answer)
		case tc.status != 0 && (err != nil || answer.Status != tc.status):
			t.Errorf("%s: answered %+v, %v, want status %d", tc.name, answer, err, tc.status)
		}
	}
	if n := badRequests.Load(); n != 0 {
		t.Errorf("%d requests did not name the user's certificate of the GOST CA with SHA-1 hashes", n)
	}
}

// TestGOSTOCSPRefusalSays: a GOST-signed response that does not verify is no answer, and the
// log keeps why: the signature, not a parse error of x/crypto/ocsp, which knows no GOST.
func TestGOSTOCSPRefusalSays(t *testing.T) {
	root := newGOSTRoot(t, gost.KZ2015_512, "test ҰКО РК GOST")
	impostor := newGOSTRoot(t, gost.KZ2015_512, "test ҰКО РК GOST")
	user := root.user(t, "http://ocsp.invalid")
	r := gostResp{issuer: root, cert: user.cert, status: ocsp.Good, thisUpdate: start.Add(-time.Minute), nextUpdate: start.Add(time.Hour)}
	if _, err := verifyResponse(r.der(t), user.cert, root.cert, start); err != nil {
		t.Fatalf("the CA's own response: %v", err)
	}
	r.signer = impostor
	_, err := verifyResponse(r.der(t), user.cert, root.cert, start)
	if err == nil || !strings.Contains(err.Error(), "not signed by the certificate's issuer") || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("a response signed by another key: %v", err)
	}
	// A 2004 key's signature algorithm over a 2015 CA: the algorithm does not fit the key.
	r.signer = newGOSTRoot(t, gost.KZ2004, "test ҰКО РК GOST")
	if _, err := verifyResponse(r.der(t), user.cert, root.cert, start); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("a GOST 34.310-2004 signature over a GOST 34.10-2015 CA: %v", err)
	}
}

// TestGOSTSignedRequestUnderOCSPRequire (issue 17), end to end: a request signed (WS-Security,
// GOST 34.10-2015 512) by a user of a GOST CA whose responder answers with GOST-signed
// responses, verified by a request verifier over a trust store under trust.ocsp: require. The
// user was refused before; now a "good" answers, a "revoked" refuses SIO-CERT-REVOKED, and a
// responder that is down still refuses SIO-CERT-STATUS-UNKNOWN.
func TestGOSTSignedRequestUnderOCSPRequire(t *testing.T) {
	clock := testclock.New(start)
	root := newGOSTRoot(t, gost.KZ2015_512, "test ҰКО РК GOST")
	resp := newResponder(t)
	user := root.user(t, resp.url)
	delegated := root.responder(t, true)
	signer, err := signing.NewSigner(user.cert, user.key)
	if err != nil {
		t.Fatal(err)
	}
	status := ocsp.Good
	resp.set(func(*ocsp.Request) []byte {
		return gostResp{issuer: root, cert: user.cert, status: status, signer: delegated, embed: true,
			thisUpdate: clock.Now().Add(-time.Minute), nextUpdate: clock.Now().Add(time.Hour)}.der(t)
	})
	verify := func() (*signing.Verified, error) {
		t.Helper()
		doc := etree.NewDocument()
		if err := doc.ReadFromFile(filepath.Join("..", "..", "testdata", "signing", "request.xml")); err != nil {
			t.Fatal(err)
		}
		if err := signer.Sign(doc, signing.PlacementWSSE); err != nil {
			t.Fatal(err)
		}
		wire, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		received := etree.NewDocument()
		if err := received.ReadFromBytes(wire); err != nil {
			t.Fatal(err)
		}
		checker, err := NewOCSP(OCSPConfig{Timeout: 5 * time.Second, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		store := ocspStore(t, &testpki.CA{Cert: root.cert}, checker, signing.OCSPRequire, root.crl(t))
		v, err := signing.NewVerifier(signing.VerifierConfig{Trust: store})
		if err != nil {
			t.Fatal(err)
		}
		return v.Verify(context.Background(), received, clock.Now())
	}
	got, err := verify()
	wantCode(t, "a GOST signer, its responder's GOST-signed answer good", err, "")
	if got.SignerIIN != testIIN || got.SignatureMethod != "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512" {
		t.Errorf("verified %s by IIN %s, want the GOST user's", got.SignatureMethod, got.SignerIIN)
	}
	status = ocsp.Revoked
	_, err = verify()
	wantCode(t, "a GOST signer its responder says is revoked", err, siobroker.CodeCertRevoked)
	resp.srv.Close()
	_, err = verify()
	wantCode(t, "a GOST signer whose responder is down", err, siobroker.CodeCertStatus)
}

// FuzzGOSTResponse: whatever a responder sends, parsing and verifying it as a GOST-signed
// response about user does not panic, and what verifies is about user.
func FuzzGOSTResponse(f *testing.F) {
	root := newGOSTRoot(f, gost.KZ2015_256, "fuzz GOST CA")
	user := root.user(f, "http://ocsp.invalid")
	for _, status := range []int{ocsp.Good, ocsp.Revoked, ocsp.Unknown} {
		f.Add(gostResp{issuer: root, cert: user.cert, status: status, thisUpdate: start.Add(-time.Minute), nextUpdate: start.Add(time.Hour), embed: true}.der(f))
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		resp, err := verifyResponse(der, user.cert, root.cert, start)
		if err == nil && (resp.SerialNumber == nil || resp.SerialNumber.Cmp(user.cert.SerialNumber) != 0) {
			t.Fatalf("verified a response about serial %v", resp.SerialNumber)
		}
	})
}

// TestGOSTRevokedInfo: the revocation time and reason of a GOST-signed "revoked" are read.
func TestGOSTRevokedInfo(t *testing.T) {
	root := newGOSTRoot(t, gost.KZ2015_512, "test ҰКО РК GOST")
	user := root.user(t, "http://ocsp.invalid")
	at := start.Add(-time.Minute)
	resp, err := verifyResponse(gostResp{issuer: root, cert: user.cert, status: ocsp.Revoked, thisUpdate: at, nextUpdate: start.Add(time.Hour)}.der(t),
		user.cert, root.cert, start)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != ocsp.Revoked || !resp.RevokedAt.Equal(at) || resp.RevocationReason != ocsp.KeyCompromise {
		t.Errorf("status %d at %s for reason %d, want revoked at %s for key compromise", resp.Status, resp.RevokedAt, resp.RevocationReason, at)
	}
}
