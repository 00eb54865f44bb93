package signing

import (
	"context"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
)

// listDirectory resolves key identifiers among a list of certificates.
type listDirectory []*x509.Certificate

func (l listDirectory) LookupCertificates(_ context.Context, id KeyIdentifier) ([]*x509.Certificate, error) {
	return l, nil
}

func verifyDocument(t *testing.T, doc *etree.Document, opts DocumentOptions) []DocumentSignature {
	t.Helper()
	if opts.At.IsZero() {
		opts.At = fixture.now
	}
	out, err := VerifyDocument(context.Background(), doc, opts)
	if err != nil {
		t.Fatalf("VerifyDocument: %v", err)
	}
	return out
}

// The real XML document Kalkan signed twice (RSA, then GOST 34.10-2015 512 over the whole
// document with the RSA signature in it; testdata/gost/kalkan/README.md): the GOST signature
// verifies under the НУЦ РК's 2015 test CA and its CRL while its certificate was valid, and the
// RSA one, made first, under the RSA test CA in its own time, checked without the GOST one.
func TestKalkanXMLSignature(t *testing.T) {
	data, err := os.ReadFile(kalkanFile("ncanode-two-signers-rsa-gost2015-512.xml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		t.Fatal(err)
	}
	gostTrust, err := LoadTrustStore(TrustConfig{RootFiles: []string{writeDERCert(t, kalkanFile("nca_gost2015_test.cer"))},
		CRLFiles: []string{kalkanFile("nca_gost2022_test.crl")}})
	if err != nil {
		t.Fatal(err)
	}
	in2022 := time.Date(2022, 9, 1, 12, 0, 0, 0, siobroker.Astana)
	res := verifyDocument(t, doc, DocumentOptions{Trust: gostTrust, At: in2022, Signature: 2})
	if len(res) != 1 || res[0].Err != nil || res[0].SignatureMethod != AlgGOST2015_512 || res[0].LaterRemoved != 0 ||
		res[0].References[0].DigestMethod != AlgDigestGOST2015_512 || res[0].References[0].Covers != "the whole document" {
		t.Fatalf("the GOST signature: %+v", res)
	}
	// A changed character of the document: the digest no longer matches.
	changed := etree.NewDocument()
	if err := changed.ReadFromBytes([]byte(strings.Replace(string(data), "<b>test</b>", "<b>tesT</b>", 1))); err != nil {
		t.Fatal(err)
	}
	if res := verifyDocument(t, changed, DocumentOptions{Trust: gostTrust, At: in2022, Signature: 2}); siobroker.ErrorCode(res[0].Err) != siobroker.CodeSigInvalid {
		t.Errorf("the changed document: %v", res[0].Err)
	}
	// After the CRL's nextUpdate, and after the certificate's validity.
	if res := verifyDocument(t, doc, DocumentOptions{Trust: gostTrust, At: time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC), Signature: 2}); siobroker.ErrorCode(res[0].Err) != siobroker.CodeCertChain {
		t.Errorf("past the CRL: %v", res[0].Err)
	}

	rsaTrust, err := LoadTrustStore(TrustConfig{RootFiles: []string{kalkanFile("nca_rsa_test.crt")}, CRLFiles: []string{kalkanFile("nca_rsa_test.crl")}})
	if err != nil {
		t.Fatal(err)
	}
	res = verifyDocument(t, doc, DocumentOptions{Trust: rsaTrust, At: time.Date(2021, 6, 1, 12, 0, 0, 0, siobroker.Astana), Signature: 1})
	if len(res) != 1 || res[0].Err != nil || res[0].SignatureMethod != AlgRSASHA256 || res[0].LaterRemoved != 1 {
		t.Fatalf("the RSA signature: %+v", res)
	}
	// Both at once: no time fits both certificates, and each CA vouches for its own signer only.
	res = verifyDocument(t, doc, DocumentOptions{Trust: gostTrust, At: in2022})
	if len(res) != 2 || res[0].Err == nil || res[1].Err != nil {
		t.Errorf("both signatures: %v / %v", res[0].Err, res[1].Err)
	}
}

// Our own signatures, RSA and GOST, in both placements verify as documents, with what they cover
// named; a WS-Security signature whose key is named by issuer and serial is resolved against the
// directory (the command's trusted certificates); an identifier carried twice, a DOCTYPE, and an
// identifier attribute not named are refused.
func TestVerifyDocument(t *testing.T) {
	f := gostPKI(t, gost.KZ2015_512)
	for _, s := range []*Signer{signer(t, "valid/rsa"), f.user} {
		for _, p := range []Placement{PlacementWSSE, PlacementWSSEToken, PlacementEnveloped} {
			doc := loadDoc(t, "request.xml")
			if err := s.Sign(doc, p); err != nil {
				t.Fatal(err)
			}
			res := verifyDocument(t, reparse(t, doc), DocumentOptions{Trust: f.trust})
			if len(res) != 1 || res[0].Err != nil {
				t.Fatalf("%s: %+v", p, res)
			}
			want := "/Envelope/Body"
			if p == PlacementEnveloped {
				want = "/Envelope/Body/SendMessage/request/requestData/data/query"
			}
			if got := res[0].References[0].Covers; got != want {
				t.Errorf("%s: covers %s, want %s", p, got, want)
			}
		}
	}

	// ds:X509IssuerSerial only: resolved against the directory, refused without it.
	doc := loadDoc(t, "request.xml")
	if err := f.user.Sign(doc, PlacementWSSE); err != nil {
		t.Fatal(err)
	}
	ki := doc.FindElement("//ds:KeyInfo")
	for _, c := range ki.ChildElements() {
		ki.RemoveChild(c)
	}
	is := ki.CreateElement("ds:X509Data").CreateElement("ds:X509IssuerSerial")
	is.CreateElement("ds:X509IssuerName").SetText(f.user.Certificate().Issuer.String())
	is.CreateElement("ds:X509SerialNumber").SetText(f.user.Certificate().SerialNumber.String())
	doc = reparse(t, doc)
	if res := verifyDocument(t, doc, DocumentOptions{Trust: f.trust, Directory: listDirectory{f.user.Certificate()}}); res[0].Err != nil {
		t.Errorf("issuer and serial, resolved: %v", res[0].Err)
	}
	if res := verifyDocument(t, doc, DocumentOptions{Trust: f.trust}); siobroker.ErrorCode(res[0].Err) != siobroker.CodeCertUnknown {
		t.Errorf("issuer and serial, no directory: %v", res[0].Err)
	}

	// An identifier carried twice.
	doc = loadDoc(t, "request.xml")
	if err := f.user.Sign(doc, PlacementEnveloped); err != nil {
		t.Fatal(err)
	}
	doc.FindElement("//purpose").CreateAttr("Id", doc.FindElement("//query").SelectAttrValue("Id", ""))
	if _, err := VerifyDocument(context.Background(), doc, DocumentOptions{Trust: f.trust, At: fixture.now}); siobroker.ErrorCode(err) != siobroker.CodeSigReference {
		t.Errorf("a duplicate identifier: %v", err)
	}

	// A DOCTYPE is not read.
	withDoctype := parseString(t, `<!DOCTYPE a [<!ATTLIST a ref ID #IMPLIED>]><a ref="x"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></a>`)
	if _, err := VerifyDocument(context.Background(), withDoctype, DocumentOptions{Trust: f.trust, At: fixture.now}); siobroker.ErrorCode(err) != siobroker.CodeDoctype {
		t.Errorf("a DOCTYPE: %v", err)
	}

	// An element identified by an attribute of another name: found only when it is named.
	doc = loadDoc(t, "request.xml")
	if err := f.user.Sign(doc, PlacementEnveloped); err != nil {
		t.Fatal(err)
	}
	q := doc.FindElement("//query")
	id := q.SelectAttrValue("Id", "")
	q.RemoveAttr("Id")
	q.CreateAttr("ref", id)
	rewriteSignature(t, doc, f.sigAlg, f.digest, AlgExcC14N, gostSign(t, f.userKey, gost.KZ2015_512))
	if res := verifyDocument(t, doc, DocumentOptions{Trust: f.trust}); siobroker.ErrorCode(res[0].Err) != siobroker.CodeSigReference {
		t.Errorf("an unnamed identifier attribute: %v", res[0].Err)
	}
	if res := verifyDocument(t, doc, DocumentOptions{Trust: f.trust, IDAttributes: []string{"ref"}}); res[0].Err != nil {
		t.Errorf("--id-attr ref: %v", res[0].Err)
	}
}
