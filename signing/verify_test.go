package signing

import (
	"crypto"
	_ "crypto/sha1" // SHA-1 signatures are crafted to be refused
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/sio-pso/siobroker"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		file      string
		placement Placement
		user      string
		sigAlg    string
		signedTag string
	}{
		{"request.xml", PlacementWSSE, "valid/rsa", AlgRSASHA256, "Body"},
		{"request.xml", PlacementWSSE, "valid/ecdsa", AlgECDSASHA256, "Body"},
		{"request.xml", PlacementEnveloped, "valid/rsa", AlgRSASHA256, "query"},
		{"request.xml", PlacementEnveloped, "valid/ecdsa", AlgECDSASHA256, "query"},
		{"response.xml", PlacementWSSE, "valid/rsa", AlgRSASHA256, "Body"},
		{"response.xml", PlacementEnveloped, "valid/ecdsa", AlgECDSASHA256, "result"},
	} {
		t.Run(tc.file+"/"+string(tc.placement)+"/"+tc.user, func(t *testing.T) {
			s := signer(t, tc.user)
			doc := loadDoc(t, tc.file)
			if err := s.Sign(doc, tc.placement); err != nil {
				t.Fatal(err)
			}
			v, err := verify(t, reparse(t, doc))
			if err != nil {
				t.Fatal(err)
			}
			if v.Placement != tc.placement || v.SignatureMethod != tc.sigAlg || v.DigestMethod != AlgDigestSHA256 {
				t.Errorf("got %s %s %s", v.Placement, v.SignatureMethod, v.DigestMethod)
			}
			if v.SignerIIN != fixture.users[tc.user].IIN || v.SignerIIN != s.IIN() {
				t.Errorf("SignerIIN %q, want %q", v.SignerIIN, fixture.users[tc.user].IIN)
			}
			if v.Signed.Tag != tc.signedTag {
				t.Errorf("Signed is %s, want %s", v.Signed.Tag, tc.signedTag)
			}
			if tc.placement == PlacementEnveloped && len(v.Signed.FindElements("//Signature")) != 0 {
				t.Errorf("the enveloped Signed element still carries the signature")
			}
			if !strings.Contains(elementString(v.Signed), "750312300458") {
				t.Errorf("Signed lost its content: %s", elementString(v.Signed))
			}
			// The tree as signed, without a serialisation round trip, verifies too.
			if _, err := verify(t, doc); err != nil {
				t.Errorf("in-memory document: %v", err)
			}
		})
	}
}

func TestRSASHA512(t *testing.T) {
	s := *signer(t, "valid/rsa")
	s.signatureMethod, s.digestMethod = AlgRSASHA512, AlgDigestSHA512
	for _, p := range []Placement{PlacementWSSE, PlacementEnveloped} {
		doc := loadDoc(t, "request.xml")
		if err := s.Sign(doc, p); err != nil {
			t.Fatal(err)
		}
		v, err := verify(t, reparse(t, doc))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if v.SignatureMethod != AlgRSASHA512 || v.DigestMethod != AlgDigestSHA512 {
			t.Errorf("%s: got %s / %s", p, v.SignatureMethod, v.DigestMethod)
		}
	}
}

func TestMissingSignature(t *testing.T) {
	v, err := verify(t, loadDoc(t, "request.xml"))
	wantRefusal(t, v, err, siobroker.CodeSigMissing, "no signature")
}

// tamperCase is one case of TestTampering.
type tamperCase struct {
	name      string
	placement Placement
	tamper    func(t testing.TB, doc *etree.Document)
	code      siobroker.Code
	msg       string
}

// tamperCases alter a signed request in place; TestTampering checks each refusal, and
// FuzzVerify starts from them.
func tamperCases() []tamperCase {
	return []tamperCase{
		{"body text", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//q:purpose").SetText("ATTACKER")
		}, siobroker.CodeSigInvalid, "digest of #id-body does not match"},
		{"requestInfo outside the enveloped signature is free, the query is not", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//q:subject/q:iin").SetText("ATTACKER")
		}, siobroker.CodeSigInvalid, "digest of #id-query does not match"},
		{"body and digest", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			body := doc.FindElement("//soapenv:Body")
			doc.FindElement("//q:purpose").SetText("ATTACKER")
			c, err := canonicalize(body, c14nMethods[AlgExcC14N], "", nil)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(c)
			doc.FindElement("//ds:DigestValue").SetText(b64(sum[:]))
		}, siobroker.CodeSigInvalid, "SignatureValue does not verify"},
		{"SignedInfo", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//ds:Reference").CreateAttr("Type", "urn:attacker")
		}, siobroker.CodeSigInvalid, "SignatureValue does not verify"},
		{"SignatureValue", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			el := doc.FindElement("//ds:SignatureValue")
			el.SetText("AAAA" + el.Text()[4:])
		}, siobroker.CodeSigInvalid, "SignatureValue does not verify"},
		{"two References", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			ref := doc.FindElement("//ds:Reference")
			ref.Parent().AddChild(ref.Copy())
		}, siobroker.CodeSigReference, "the Body is referenced more than once"},
		{"reference to the whole document", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//ds:Reference").SelectAttr("URI").Value = ""
		}, siobroker.CodeSigReference, "not a same-document #Id reference"},
		{"reference to another element", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//ds:Reference").SelectAttr("URI").Value = "#id-query"
		}, siobroker.CodeSigReference, `names q:query, which a header signature may not cover`},
		{"ds:Object", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//ds:Signature").CreateElement("ds:Object").CreateText("ATTACKER")
		}, siobroker.CodeSigReference, "unexpected element ds:Object"},
		{"XPath transform", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//ds:Transform").SelectAttr("Algorithm").Value = "http://www.w3.org/TR/1999/REC-xpath-19991116"
		}, siobroker.CodeSigAlgorithm, "transform http://www.w3.org/TR/1999/REC-xpath-19991116 is not allowed"},
		{"no enveloped-signature transform", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			tr := doc.FindElement("//ds:Transform")
			tr.Parent().RemoveChild(tr)
		}, siobroker.CodeSigReference, "enveloped-signature transform"},
		{"signature not first in the query", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			sig := doc.FindElement("//ds:Signature")
			q := sig.Parent()
			q.RemoveChild(sig)
			q.AddChild(sig)
		}, siobroker.CodeSigReference, "outside the accepted placements"},
		{"second signature in requestInfo", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			sig := doc.FindElement("//ds:Signature").Copy()
			doc.FindElement("//requestInfo").AddChild(sig)
		}, siobroker.CodeSigReference, "outside the accepted placements"},
		{"duplicate Id", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//requestInfo").CreateAttr("Id", "id-query")
		}, siobroker.CodeSigReference, `identifier "id-query" is carried by more than one element`},
	}
}

func TestTampering(t *testing.T) {
	rsa := signer(t, "valid/rsa")
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadDoc(t, "request.xml")
			if err := rsa.Sign(doc, tc.placement); err != nil {
				t.Fatal(err)
			}
			doc = reparse(t, doc)
			tc.tamper(t, doc)
			v, err := verify(t, reparse(t, doc))
			wantRefusal(t, v, err, tc.code, tc.msg)
		})
	}
}

// evil is an attacker's SendMessage whose query carries the Id %s.
const evil = `<typ:SendMessage xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types"><request><requestInfo/><requestData><data>` +
	`<q:query xmlns:q="urn:kz:sio-pso:broker:v1" Id="%s"><q:purpose>ATTACKER</q:purpose></q:query></data></requestData></request></typ:SendMessage>`

// evilElement returns evil with the Id id, detached.
func evilElement(t testing.TB, id string) *etree.Element {
	return parseString(t, strings.Replace(evil, "%s", id, 1)).Root().Copy()
}

// wrapCase is one case of TestWrapping.
type wrapCase struct {
	name      string
	placement Placement
	wrap      func(t testing.TB, doc *etree.Document)
	code      siobroker.Code
}

// wrapCases are the signature-wrapping attacks on a signed request; TestWrapping checks each
// refusal, and FuzzVerify starts from them.
func wrapCases() []wrapCase {
	return []wrapCase{
		{"wsse: signed Body moved into the Header, attacker Body with the same Id", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			body := doc.FindElement("//soapenv:Body")
			env := body.Parent()
			env.RemoveChild(body)
			wrapper := doc.FindElement("//soapenv:Header").CreateElement("Wrapper")
			wrapper.AddChild(body)
			newBody := body.Copy()
			for _, c := range newBody.ChildElements() {
				newBody.RemoveChild(c)
			}
			newBody.AddChild(evilElement(t, "id-x"))
			env.AddChild(newBody)
		}, siobroker.CodeSigReference},
		{"wsse: signed Body moved into wsse:Security, attacker Body with another Id", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			body := doc.FindElement("//soapenv:Body")
			env := body.Parent()
			env.RemoveChild(body)
			doc.FindElement("//wsse:Security").AddChild(body)
			newBody := env.CreateElement("soapenv:Body")
			newBody.CreateAttr("xmlns:wsu", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd")
			newBody.CreateAttr("wsu:Id", "id-evil")
			newBody.AddChild(evilElement(t, "id-y"))
		}, siobroker.CodeSigReference},
		{"wsse: attacker Body without an Id, signed one in the Header", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			body := doc.FindElement("//soapenv:Body")
			env := body.Parent()
			env.RemoveChild(body)
			doc.FindElement("//soapenv:Header").AddChild(body)
			env.CreateElement("soapenv:Body").AddChild(evilElement(t, "id-z"))
		}, siobroker.CodeSigReference},
		{"wsse: a second Body", PlacementWSSE, func(t testing.TB, doc *etree.Document) {
			env := doc.Root()
			env.CreateElement("soapenv:Body").AddChild(evilElement(t, "id-z"))
		}, siobroker.CodeNotSOAP},
		{"enveloped: signed query hidden in requestInfo, attacker query carries the signature", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			q := doc.FindElement("//q:query")
			sig := q.SelectElement("ds:Signature")
			data := q.Parent()
			data.RemoveChild(q)
			q.RemoveChild(sig)
			doc.FindElement("//requestInfo").AddChild(q)
			evilQ := evilElement(t, "id-query").FindElement("//q:query")
			evilQ.InsertChildAt(0, sig)
			data.AddChild(evilQ)
		}, siobroker.CodeSigReference},
		{"enveloped: attacker query with another Id carries the signature", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			q := doc.FindElement("//q:query")
			sig := q.SelectElement("ds:Signature")
			data := q.Parent()
			data.RemoveChild(q)
			evilQ := evilElement(t, "id-evil").FindElement("//q:query")
			evilQ.InsertChildAt(0, sig)
			data.AddChild(evilQ)
			doc.FindElement("//requestInfo").AddChild(q)
		}, siobroker.CodeSigReference},
		{"enveloped: a second query beside the signed one", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//data").AddChild(evilElement(t, "id-evil").FindElement("//q:query"))
		}, siobroker.CodeSigReference},
		{"enveloped: attacker query first, signed query second", PlacementEnveloped, func(t testing.TB, doc *etree.Document) {
			doc.FindElement("//data").InsertChildAt(0, evilElement(t, "id-evil").FindElement("//q:query"))
		}, siobroker.CodeSigReference},
	}
}

// TestWrapping moves the signed content out of the way and puts attacker content where the
// broker reads it. Every variant must be refused; none may hand attacker content on.
func TestWrapping(t *testing.T) {
	rsa := signer(t, "valid/rsa")
	for _, tc := range wrapCases() {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadDoc(t, "request.xml")
			if err := rsa.Sign(doc, tc.placement); err != nil {
				t.Fatal(err)
			}
			doc = reparse(t, doc)
			tc.wrap(t, doc)
			v, err := verify(t, reparse(t, doc))
			if v != nil && strings.Contains(elementString(v.Signed), "ATTACKER") {
				t.Fatalf("attacker content reached Verified.Signed")
			}
			wantRefusal(t, v, err, tc.code, "")
		})
	}
}

// TestUnsignedContentStaysOut: content outside the signed element is tolerated but never handed on.
func TestUnsignedContentStaysOut(t *testing.T) {
	for _, p := range []Placement{PlacementWSSE, PlacementEnveloped} {
		doc := loadDoc(t, "request.xml")
		if err := signer(t, "valid/rsa").Sign(doc, p); err != nil {
			t.Fatal(err)
		}
		doc = reparse(t, doc)
		doc.FindElement("//soapenv:Header").CreateElement("Extra").SetText("ATTACKER")
		if p == PlacementEnveloped {
			doc.FindElement("//requestInfo").CreateElement("note").SetText("ATTACKER")
			doc.FindElement("//data").CreateComment("ATTACKER")
		}
		v, err := verify(t, reparse(t, doc))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if strings.Contains(elementString(v.Signed), "ATTACKER") {
			t.Fatalf("%s: unsigned content reached Verified.Signed", p)
		}
	}
}

func TestCertificateRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signer *Signer
		code   siobroker.Code
		msg    string
	}{
		{"untrusted CA", fixture.foreign, siobroker.CodeCertChain, "does not chain to a trusted root"},
		{"expired", fixture.signers["expired/rsa"], siobroker.CodeCertExpired, "expired at"},
		{"revoked", fixture.signers["revoked/rsa"], siobroker.CodeCertRevoked, "was revoked"},
		{"no IIN (broker certificate)", fixture.broker, siobroker.CodeCertNoIIN, "carries no serialNumber"},
	} {
		for _, p := range []Placement{PlacementWSSE, PlacementEnveloped} {
			t.Run(tc.name+"/"+string(p), func(t *testing.T) {
				doc := loadDoc(t, "request.xml")
				if err := tc.signer.Sign(doc, p); err != nil {
					t.Fatal(err)
				}
				v, err := verify(t, reparse(t, doc))
				wantRefusal(t, v, err, tc.code, tc.msg)
			})
		}
	}
}

func TestAlgorithmAllowlist(t *testing.T) {
	rsa := signer(t, "valid/rsa")
	// The Russian (CryptoPro) URI of GOST R 34.10-2012, which the national PKI does not use.
	const cryptoPro = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256"
	for _, tc := range []struct {
		name              string
		sigAlg            string
		sigHash           crypto.Hash
		digestAlg         string
		digestHash        crypto.Hash
		msg               string
		placement         Placement
		tamperCanonMethod string
	}{
		{name: "rsa-sha1 signature", sigAlg: AlgRSASHA1, sigHash: crypto.SHA1, digestAlg: AlgDigestSHA256, digestHash: crypto.SHA256,
			msg: "signature algorithm http://www.w3.org/2000/09/xmldsig#rsa-sha1 is not allowed", placement: PlacementWSSE},
		{name: "sha1 digest", sigAlg: AlgRSASHA256, sigHash: crypto.SHA256, digestAlg: AlgDigestSHA1, digestHash: crypto.SHA1,
			msg: "digest algorithm http://www.w3.org/2000/09/xmldsig#sha1 is not allowed", placement: PlacementEnveloped},
		{name: "CryptoPro GOST signature URI", sigAlg: cryptoPro, sigHash: crypto.SHA256, digestAlg: AlgDigestSHA256, digestHash: crypto.SHA256,
			msg: "signature algorithm " + cryptoPro + " is not allowed", placement: PlacementWSSE},
		{name: "a Kazakh GOST signature URI with an RSA key", sigAlg: AlgGOST2015_512, sigHash: crypto.SHA256, digestAlg: AlgDigestSHA256, digestHash: crypto.SHA256,
			msg: "does not fit the certificate's RSA key", placement: PlacementWSSE},
		{name: "ecdsa-sha256 declared with an RSA key", sigAlg: AlgECDSASHA256, sigHash: crypto.SHA256, digestAlg: AlgDigestSHA256, digestHash: crypto.SHA256,
			msg: "does not fit the certificate's RSA key", placement: PlacementWSSE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadDoc(t, "request.xml")
			if err := rsa.Sign(doc, tc.placement); err != nil {
				t.Fatal(err)
			}
			doc = reparse(t, doc)
			resign(t, doc, rsa, tc.sigAlg, tc.sigHash, tc.digestAlg, tc.digestHash)
			v, err := verify(t, reparse(t, doc))
			wantRefusal(t, v, err, siobroker.CodeSigAlgorithm, tc.msg)
		})
	}
	t.Run("canonicalization outside the allowlist", func(t *testing.T) {
		doc := loadDoc(t, "request.xml")
		if err := rsa.Sign(doc, PlacementWSSE); err != nil {
			t.Fatal(err)
		}
		doc.FindElement("//ds:CanonicalizationMethod").SelectAttr("Algorithm").Value = "http://www.w3.org/2006/12/xml-c14n11"
		v, err := verify(t, reparse(t, doc))
		wantRefusal(t, v, err, siobroker.CodeSigAlgorithm, "canonicalization algorithm http://www.w3.org/2006/12/xml-c14n11 is not allowed")
	})
	t.Run("resign helper keeps an allowed signature valid", func(t *testing.T) {
		doc := loadDoc(t, "request.xml")
		if err := rsa.Sign(doc, PlacementEnveloped); err != nil {
			t.Fatal(err)
		}
		resign(t, doc, rsa, AlgRSASHA512, crypto.SHA512, AlgDigestSHA512, crypto.SHA512)
		if _, err := verify(t, reparse(t, doc)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestParseCanonicalDepth: the canonical forms are parsed with the nesting bound etree's reader
// had (1024), whatever the reader's own limit: a Body nested deeper does not verify, as before.
func TestParseCanonicalDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat("<a>", n) + strings.Repeat("</a>", n))
	}
	if _, err := parseCanonical(nest(maxCanonicalDepth)); err != nil {
		t.Fatalf("nested to the bound: %v", err)
	}
	if _, err := parseCanonical(nest(maxCanonicalDepth + 1)); err == nil {
		t.Fatal("nested past the bound: parsed")
	}
}
