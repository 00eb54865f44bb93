package signing

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

// certDirectory is an in-memory CertificateDirectory for unit tests: the registry's is tested in
// the registry package and end to end.
type certDirectory struct {
	certs []*x509.Certificate
	err   error
}

func (d certDirectory) LookupCertificates(_ context.Context, _ KeyIdentifier) ([]*x509.Certificate, error) {
	return d.certs, d.err
}

// fixedClock is a clock stopped at one instant.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// verifyWith verifies doc with the fixture's trust store, and cfg's directory and timestamp
// policy if one is given.
func verifyWith(doc *etree.Document, cfg ...VerifierConfig) (*Verified, error) {
	var c VerifierConfig
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.Trust = fixture.trust
	v, err := NewVerifier(c)
	if err != nil {
		return nil, err
	}
	return v.Verify(context.Background(), doc, fixture.now)
}

// signedWSSE returns request.xml signed by the user key in the WS-Security placement, reparsed.
func signedWSSE(t *testing.T, key string) *etree.Document {
	t.Helper()
	doc := loadDoc(t, "request.xml")
	if err := signer(t, key).Sign(doc, PlacementWSSE); err != nil {
		t.Fatal(err)
	}
	return reparse(t, doc)
}

// setKeyInfo replaces the content of the header signature's KeyInfo with the elements fill makes.
// KeyInfo is outside SignedInfo, so the signature stays valid: only how the key is found changes.
func setKeyInfo(t testing.TB, doc *etree.Document, fill func(sec, keyInfo *etree.Element)) {
	t.Helper()
	keyInfo := doc.FindElement("//wsse:Security/ds:Signature/ds:KeyInfo")
	if keyInfo == nil {
		t.Fatal("no KeyInfo in the header signature")
	}
	for _, c := range keyInfo.ChildElements() {
		keyInfo.RemoveChild(c)
	}
	fill(keyInfo.Parent().Parent(), keyInfo)
}

// wsseEl creates a wsse: element under parent, declaring the prefix on it.
func wsseEl(parent *etree.Element, local string) *etree.Element {
	el := parent.CreateElement("wsse:" + local)
	el.CreateAttr("xmlns:wsse", nsWSSE)
	return el
}

// addBST puts the certificate as a BinarySecurityToken with wsu:Id id into parent.
func addBST(parent *etree.Element, cert *x509.Certificate, id string) *etree.Element {
	bst := wsseEl(parent, "BinarySecurityToken")
	bst.CreateAttr("xmlns:wsu", nsWSU)
	bst.CreateAttr("EncodingType", EncodingBase64Binary)
	bst.CreateAttr("ValueType", ValueTypeX509v3)
	bst.CreateAttr("wsu:Id", id)
	bst.SetText(b64(cert.Raw))
	return bst
}

func strReference(keyInfo *etree.Element, id string) {
	ref := wsseEl(keyInfo, "SecurityTokenReference").CreateElement("wsse:Reference")
	ref.CreateAttr("URI", "#"+id)
	ref.CreateAttr("ValueType", ValueTypeX509v3)
}

func keyIdentifier(keyInfo *etree.Element, valueType string, value []byte) {
	ki := wsseEl(keyInfo, "SecurityTokenReference").CreateElement("wsse:KeyIdentifier")
	ki.CreateAttr("EncodingType", EncodingBase64Binary)
	ki.CreateAttr("ValueType", valueType)
	ki.SetText(b64(value))
}

func issuerSerial(parent *etree.Element, issuer string, cert *x509.Certificate) {
	is := parent.CreateElement("ds:X509Data").CreateElement("ds:X509IssuerSerial")
	is.CreateElement("ds:X509IssuerName").SetText(issuer)
	is.CreateElement("ds:X509SerialNumber").SetText(cert.SerialNumber.String())
}

// TestKeyInfoForms: every form of the X.509 Token Profile that a SOAP stack writes finds the
// signer's certificate, and says which form and placement it was.
func TestKeyInfoForms(t *testing.T) {
	user := signer(t, "valid/rsa").Certificate()
	dir := certDirectory{certs: []*x509.Certificate{user}}
	rfc2253 := user.Issuer.String() // what Java's X500Principal.getName() writes, attribute for attribute
	spaced := strings.ReplaceAll(rfc2253, ",", ", ")
	for _, tc := range []struct {
		name      string
		fill      func(sec, keyInfo *etree.Element)
		form      KeyForm
		placement Placement
		inMessage bool
	}{
		{"X509Data in KeyInfo (xmlsec1, .NET)", func(_, ki *etree.Element) {
			ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(b64(user.Raw))
		}, KeyX509Data, PlacementWSSE, true},
		{"reference to a BinarySecurityToken (WSS4J, node-soap, zeep BinarySignature)", func(sec, ki *etree.Element) {
			addBST(sec, user, "X509-1")
			strReference(ki, "X509-1")
		}, KeyTokenRef, PlacementWSSEToken, true},
		{"BinarySecurityToken after the signature (zeep)", func(sec, ki *etree.Element) {
			strReference(ki, "X509-2")
			addBST(sec, user, "X509-2")
		}, KeyTokenRef, PlacementWSSEToken, true},
		{"X509Data inside the reference, with an empty X509IssuerSerial (zeep Signature)", func(_, ki *etree.Element) {
			data := wsseEl(ki, "SecurityTokenReference").CreateElement("ds:X509Data")
			data.CreateElement("ds:X509IssuerSerial")
			data.CreateElement("ds:X509Certificate").SetText(b64(user.Raw))
		}, KeyX509Data, PlacementWSSEToken, true},
		{"KeyIdentifier X509v3", func(_, ki *etree.Element) {
			keyIdentifier(ki, ValueTypeX509v3, user.Raw)
		}, KeyInlineX509v3, PlacementWSSEToken, true},
		{"KeyIdentifier ThumbprintSHA1", func(_, ki *etree.Element) {
			keyIdentifier(ki, ValueTypeThumbprintSHA1, ThumbprintSHA1(user))
		}, KeyThumbprint, PlacementWSSEToken, false},
		{"KeyIdentifier X509SubjectKeyIdentifier of a certificate without the extension", func(_, ki *etree.Element) {
			keyIdentifier(ki, ValueTypeSKI, SubjectKeyID(user))
		}, KeySKI, PlacementWSSEToken, false},
		{"X509IssuerSerial in a reference, RFC 2253 (WSS4J)", func(_, ki *etree.Element) {
			issuerSerial(wsseEl(ki, "SecurityTokenReference"), rfc2253, user)
		}, KeyIssuerSerial, PlacementWSSEToken, false},
		{"X509IssuerSerial in KeyInfo, spaced (.NET)", func(_, ki *etree.Element) {
			issuerSerial(ki, spaced, user)
		}, KeyIssuerSerial, PlacementWSSE, false},
		{"X509SKI in KeyInfo", func(_, ki *etree.Element) {
			ki.CreateElement("ds:X509Data").CreateElement("ds:X509SKI").SetText(b64(SubjectKeyID(user)))
		}, KeySKI, PlacementWSSE, false},
		{"KeyName beside the certificate is ignored", func(_, ki *etree.Element) {
			ki.CreateElement("ds:KeyName").SetText("someone else")
			ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(b64(user.Raw))
		}, KeyX509Data, PlacementWSSE, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := signedWSSE(t, "valid/rsa")
			setKeyInfo(t, doc, tc.fill)
			v, err := verifyWith(reparse(t, doc), VerifierConfig{Directory: dir})
			if err != nil {
				t.Fatal(err)
			}
			if v.KeyForm != tc.form || v.Placement != tc.placement || v.CertificateInMessage != tc.inMessage {
				t.Errorf("form %s placement %s in message %v, want %s %s %v", v.KeyForm, v.Placement, v.CertificateInMessage, tc.form, tc.placement, tc.inMessage)
			}
			if !v.Certificate.Equal(user) || v.SignerIIN != fixture.users["valid/rsa"].IIN {
				t.Errorf("signer %s (%s)", v.Certificate.Subject, v.SignerIIN)
			}
		})
	}
}

// keyInfoRefusal is one case of TestKeyInfoRefusals.
type keyInfoRefusal struct {
	name string
	fill func(sec, keyInfo *etree.Element)
	dir  CertificateDirectory
	code siobroker.Code
	msg  string
}

// keyInfoRefusals replace the KeyInfo of a header signature by user's key (KeyInfo is outside
// SignedInfo); other is another key's certificate, and dir holds user's and revoked.
// TestKeyInfoRefusals checks each refusal, and FuzzVerify starts from them.
func keyInfoRefusals(user, revoked, other *x509.Certificate) []keyInfoRefusal {
	dir := certDirectory{certs: []*x509.Certificate{user, revoked}}
	return []keyInfoRefusal{
		{"a reference to a token in another header", func(sec, ki *etree.Element) {
			addBST(sec.Parent(), user, "X509-outside")
			strReference(ki, "X509-outside")
		}, dir, siobroker.CodeSigReference, "does not name a wsse:BinarySecurityToken of the wsse:Security header"},
		{"a reference to a token nested deeper in the Security header", func(sec, ki *etree.Element) {
			addBST(sec.CreateElement("Wrapper"), user, "X509-nested")
			strReference(ki, "X509-nested")
		}, dir, siobroker.CodeSigReference, "does not name a wsse:BinarySecurityToken of the wsse:Security header"},
		{"two tokens with one Id", func(sec, ki *etree.Element) {
			addBST(sec, other, "X509-twice")
			addBST(sec, user, "X509-twice")
			strReference(ki, "X509-twice")
		}, dir, siobroker.CodeSigReference, `identifier "X509-twice" is carried by more than one element`},
		{"a reference to something that is not a token", func(sec, ki *etree.Element) {
			strReference(ki, "id-query")
		}, dir, siobroker.CodeSigReference, "does not name a wsse:BinarySecurityToken"},
		{"a reference to another document", func(sec, ki *etree.Element) {
			ref := wsseEl(ki, "SecurityTokenReference").CreateElement("wsse:Reference")
			ref.CreateAttr("URI", "https://attacker.example/cert.der")
		}, dir, siobroker.CodeSigReference, "is not a #Id reference within the message"},
		{"a token of another value type", func(sec, ki *etree.Element) {
			bst := addBST(sec, user, "X509-pkcs7")
			bst.SelectAttr("ValueType").Value = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#PKCS7"
			ref := wsseEl(ki, "SecurityTokenReference").CreateElement("wsse:Reference")
			ref.CreateAttr("URI", "#X509-pkcs7")
		}, dir, siobroker.CodeKeyInfo, "wsse:BinarySecurityToken of value type"},
		{"the token of another key", func(sec, ki *etree.Element) {
			addBST(sec, other, "X509-other")
			strReference(ki, "X509-other")
		}, dir, siobroker.CodeSigAlgorithm, "does not fit the certificate's ECDSA key"},
		{"a thumbprint of a certificate the broker does not hold", func(_, ki *etree.Element) {
			keyIdentifier(ki, ValueTypeThumbprintSHA1, ThumbprintSHA1(other))
		}, dir, siobroker.CodeCertUnknown, "is no certificate of a registered user"},
		{"an issuer and serial the broker does not hold", func(_, ki *etree.Element) {
			issuerSerial(ki, "CN=Someone Else,C=KZ", user)
		}, dir, siobroker.CodeCertUnknown, "is no certificate of a registered user"},
		{"a thumbprint with no directory", func(_, ki *etree.Element) {
			keyIdentifier(ki, ValueTypeThumbprintSHA1, ThumbprintSHA1(user))
		}, nil, siobroker.CodeCertUnknown, "holds no certificates to resolve it"},
		{"a directory that fails", func(_, ki *etree.Element) {
			keyIdentifier(ki, ValueTypeSKI, SubjectKeyID(user))
		}, certDirectory{err: errors.New("database is locked")}, siobroker.CodeUnavailable, "cannot look up the signer's certificate"},
		{"a KeyIdentifier of an unknown value type", func(_, ki *etree.Element) {
			keyIdentifier(ki, "http://docs.oasis-open.org/wss/oasis-wss-kerberos-token-profile-1.1#Kerberosv5APREQSHA1", []byte{1, 2, 3})
		}, dir, siobroker.CodeKeyInfo, "is not accepted"},
		{"a thumbprint of the wrong length", func(_, ki *etree.Element) {
			keyIdentifier(ki, ValueTypeThumbprintSHA1, []byte{1, 2, 3})
		}, dir, siobroker.CodeKeyInfo, "holds 3 bytes"},
		{"an X509IssuerSerial that is not the certificate beside it", func(_, ki *etree.Element) {
			data := ki.CreateElement("ds:X509Data")
			data.CreateElement("ds:X509Certificate").SetText(b64(user.Raw))
			is := data.CreateElement("ds:X509IssuerSerial")
			is.CreateElement("ds:X509IssuerName").SetText(user.Issuer.String())
			is.CreateElement("ds:X509SerialNumber").SetText("12345")
		}, dir, siobroker.CodeKeyInfo, "which is not its certificate"},
		{"two key sources", func(sec, ki *etree.Element) {
			ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(b64(user.Raw))
			keyIdentifier(ki, ValueTypeThumbprintSHA1, ThumbprintSHA1(user))
		}, dir, siobroker.CodeKeyInfo, "carries 2 key sources"},
		{"a KeyValue alone", func(_, ki *etree.Element) {
			ki.CreateElement("ds:KeyValue")
		}, dir, siobroker.CodeKeyInfo, "carries 0 key sources"},
		{"a RetrievalMethod", func(_, ki *etree.Element) {
			ki.CreateElement("ds:RetrievalMethod").CreateAttr("URI", "https://attacker.example/")
		}, dir, siobroker.CodeKeyInfo, "ds:RetrievalMethod, which is not accepted"},
	}
}

// TestKeyInfoRefusals: what a reference may not do, and identifiers that resolve to nothing the
// broker may use. Each is refused with its own code.
func TestKeyInfoRefusals(t *testing.T) {
	user := signer(t, "valid/rsa").Certificate()
	revoked := signer(t, "revoked/rsa").Certificate()
	other := signer(t, "valid/ecdsa").Certificate()
	dir := certDirectory{certs: []*x509.Certificate{user, revoked}}
	for _, tc := range keyInfoRefusals(user, revoked, other) {
		t.Run(tc.name, func(t *testing.T) {
			doc := signedWSSE(t, "valid/rsa")
			setKeyInfo(t, doc, tc.fill)
			v, err := verifyWith(reparse(t, doc), VerifierConfig{Directory: tc.dir})
			wantRefusal(t, v, err, tc.code, tc.msg)
		})
	}

	// The directory is asked only for what carries no certificate, and a revoked certificate found
	// there is refused like one carried in the message.
	t.Run("a thumbprint of a revoked certificate", func(t *testing.T) {
		doc := loadDoc(t, "request.xml")
		if err := signer(t, "revoked/rsa").Sign(doc, PlacementWSSE); err != nil {
			t.Fatal(err)
		}
		doc = reparse(t, doc)
		setKeyInfo(t, doc, func(_, ki *etree.Element) { keyIdentifier(ki, ValueTypeThumbprintSHA1, ThumbprintSHA1(revoked)) })
		v, err := verifyWith(reparse(t, doc), VerifierConfig{Directory: dir})
		wantRefusal(t, v, err, siobroker.CodeCertRevoked, "was revoked")
	})
}

// TestIssuerNames: the spellings of one issuer that stacks write all match it, and another
// issuer does not.
func TestIssuerNames(t *testing.T) {
	cert := signer(t, "valid/rsa").Certificate()
	cn := cert.Issuer.CommonName
	for _, tc := range []struct {
		name  string
		match bool
	}{
		{cert.Issuer.String(), true},
		{fmt.Sprintf("CN=%s, O=SIO PSO (development), C=KZ", cn), true},
		{fmt.Sprintf("C=KZ; O=SIO PSO (development); CN=%s", cn), true},
		{fmt.Sprintf(`CN="%s",O=SIO PSO \28development\29,c=kz`, cn), true},
		{fmt.Sprintf("2.5.4.3=#%s,O=SIO PSO (development),C=KZ", derUTF8(t, cn)), true},
		{fmt.Sprintf("CN=%s,O=SIO PSO (development)", cn), false},
		{fmt.Sprintf("CN=%s,O=SIO PSO (development),C=KZ,OU=extra", cn), false},
		{"CN=Someone Else,O=SIO PSO (development),C=KZ", false},
		{"not a name", false},
	} {
		if got := issuerMatches(tc.name, cert); got != tc.match {
			t.Errorf("issuerMatches(%q) = %v, want %v", tc.name, got, tc.match)
		}
	}
}

func derUTF8(t *testing.T, s string) string {
	t.Helper()
	// A UTF8String: tag 12, a short length, the bytes.
	if len(s) > 127 {
		t.Fatal("too long for a short length")
	}
	return hex.EncodeToString(append([]byte{12, byte(len(s))}, s...))
}

// referencesCase is one case of TestSeveralReferences.
type referencesCase struct {
	name    string
	prepare func(t testing.TB, doc *etree.Document) []*etree.Element // returns the elements to sign, Body first
	code    siobroker.Code
	msg     string
}

// referencesCases prepare a request for a header signature over several elements, made by hand
// (signHeaderByHand); clock dates their Timestamps. TestSeveralReferences checks each outcome,
// and FuzzVerify starts from them.
func referencesCases(clock fixedClock) []referencesCase {
	return []referencesCase{
		{"Body by an unqualified Id, Timestamp by an unqualified Id (node-soap)", func(t testing.TB, doc *etree.Document) []*etree.Element {
			body := doc.FindElement("//soapenv:Body")
			body.CreateAttr("Id", "_0")
			ts := addTimestamp(doc, clock.Now(), clock.Now().Add(10*time.Minute))
			ts.CreateAttr("Id", "_1")
			return []*etree.Element{body, ts}
		}, "", ""},
		{"WS-Addressing headers", func(t testing.TB, doc *etree.Document) []*etree.Element {
			body := bodyWithWSUId(doc, "id-body")
			to := addressingHeader(doc, "To", "wsa-to", "http://127.0.0.1/SyncChannel/v10")
			action := addressingHeader(doc, "Action", "wsa-action", "SendMessage")
			return []*etree.Element{body, to, action}
		}, "", ""},
		{"no Reference to the Body", func(t testing.TB, doc *etree.Document) []*etree.Element {
			ts := addTimestamp(doc, clock.Now(), clock.Now().Add(time.Minute))
			ts.CreateAttr("wsu:Id", "TS-1")
			return []*etree.Element{ts}
		}, siobroker.CodeSigReference, "no Reference of the header signature covers the Body"},
		{"a Reference to requestInfo", func(t testing.TB, doc *etree.Document) []*etree.Element {
			body := bodyWithWSUId(doc, "id-body")
			ri := doc.FindElement("//requestInfo")
			ri.CreateAttr("Id", "ri")
			return []*etree.Element{body, ri}
		}, siobroker.CodeSigReference, "names requestInfo, which a header signature may not cover"},
		{"a Reference to a Timestamp outside the Security header", func(t testing.TB, doc *etree.Document) []*etree.Element {
			body := bodyWithWSUId(doc, "id-body")
			securityOf(doc)
			ts := doc.FindElement("//soapenv:Header").CreateElement("wsu:Timestamp")
			ts.CreateAttr("xmlns:wsu", nsWSU)
			ts.CreateAttr("wsu:Id", "TS-out")
			return []*etree.Element{body, ts}
		}, siobroker.CodeSigReference, "names wsu:Timestamp, which a header signature may not cover"},
		{"a WS-Addressing element that is not a header", func(t testing.TB, doc *etree.Document) []*etree.Element {
			body := bodyWithWSUId(doc, "id-body")
			to := addressingHeader(doc, "To", "wsa-to", "x")
			wrapper := doc.FindElement("//soapenv:Header").CreateElement("Wrapper")
			to.Parent().RemoveChild(to)
			wrapper.AddChild(to)
			return []*etree.Element{body, to}
		}, siobroker.CodeSigReference, "names wsa:To, which a header signature may not cover"},
		{"the Body by a foreign Id attribute", func(t testing.TB, doc *etree.Document) []*etree.Element {
			body := doc.FindElement("//soapenv:Body")
			body.CreateAttr("xmlns:x", "urn:other")
			body.CreateAttr("x:Id", "id-body")
			return []*etree.Element{body}
		}, siobroker.CodeSigReference, "the Body is named by an identifier other than wsu:Id or Id"},
	}
}

// TestSeveralReferences: the Body must be covered exactly once; the Timestamp of the Security
// header and WS-Addressing headers may be covered too; nothing else may.
func TestSeveralReferences(t *testing.T) {
	s := signer(t, "valid/rsa")
	clock := fixedClock(fixture.now)
	policy := VerifierConfig{Timestamps: TimestampPolicy{Clock: clock, Skew: time.Minute}}
	for _, p := range []Placement{PlacementWSSEToken, PlacementWSSETokenTimestamp} {
		t.Run("the broker's own "+string(p), func(t *testing.T) {
			doc := loadDoc(t, "request.xml")
			if err := s.WithClock(clock).Sign(doc, p); err != nil {
				t.Fatal(err)
			}
			v, err := verifyWith(reparse(t, doc), policy)
			if err != nil {
				t.Fatal(err)
			}
			if v.Placement != p || v.KeyForm != KeyTokenRef || (v.Timestamp != nil) != (p == PlacementWSSETokenTimestamp) {
				t.Errorf("placement %s form %s timestamp %+v", v.Placement, v.KeyForm, v.Timestamp)
			}
		})
	}
	for _, tc := range referencesCases(clock) {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadDoc(t, "request.xml")
			targets := tc.prepare(t, doc)
			signHeaderByHand(t, doc, s, targets)
			v, err := verifyWith(reparse(t, doc), policy)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.Signed.Tag != "Body" || !strings.Contains(elementString(v.Signed), "750312300458") {
					t.Errorf("Signed is %s", elementString(v.Signed))
				}
				return
			}
			wantRefusal(t, v, err, tc.code, tc.msg)
		})
	}
}

// timestampWrapCase is one case of TestTimestampWrapping.
type timestampWrapCase struct {
	name string
	wrap func(t testing.TB, doc *etree.Document)
	code siobroker.Code
}

// timestampWrapCases wrap a request signed with a Timestamp (PlacementWSSETokenTimestamp);
// TestTimestampWrapping checks each refusal, and FuzzVerify starts from them.
func timestampWrapCases() []timestampWrapCase {
	return []timestampWrapCase{
		{"the signed Body inside the Timestamp, an attacker Body without an Id", func(t testing.TB, doc *etree.Document) {
			body := doc.FindElement("//soapenv:Body")
			env := body.Parent()
			env.RemoveChild(body)
			doc.FindElement("//wsu:Timestamp").AddChild(body)
			env.CreateElement("soapenv:Body").CreateElement("ATTACKER")
		}, siobroker.CodeTimestamp},
		{"the Timestamp's Id on an attacker Body", func(t testing.TB, doc *etree.Document) {
			ts := doc.FindElement("//wsu:Timestamp")
			id := ts.SelectAttr("wsu:Id")
			ts.RemoveAttr("wsu:Id")
			body := doc.FindElement("//soapenv:Body")
			body.RemoveAttr("wsu:Id")
			body.CreateAttr("wsu:Id", id.Value)
			body.ChildElements()[0].CreateElement("ATTACKER")
		}, siobroker.CodeSigReference},
		{"a second Timestamp carrying the Body", func(t testing.TB, doc *etree.Document) {
			body := doc.FindElement("//soapenv:Body")
			ts := doc.FindElement("//wsu:Timestamp").Copy()
			ts.RemoveAttr("wsu:Id")
			ts.AddChild(body.Copy())
			doc.FindElement("//wsse:Security").AddChild(ts)
			body.ChildElements()[0].CreateElement("ATTACKER")
		}, siobroker.CodeTimestamp},
	}
}

// TestTimestampWrapping moves the signed Body where a Timestamp reference covers it and puts
// attacker content in the Body. Every variant must be refused before attacker content is handed on.
func TestTimestampWrapping(t *testing.T) {
	s := signer(t, "valid/rsa")
	clock := fixedClock(fixture.now)
	for _, tc := range timestampWrapCases() {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadDoc(t, "request.xml")
			if err := s.WithClock(clock).Sign(doc, PlacementWSSETokenTimestamp); err != nil {
				t.Fatal(err)
			}
			doc = reparse(t, doc)
			tc.wrap(t, doc)
			v, err := verifyWith(reparse(t, doc))
			if v != nil && strings.Contains(elementString(v.Signed), "ATTACKER") {
				t.Fatal("attacker content reached Verified.Signed")
			}
			wantRefusal(t, v, err, tc.code, "")
		})
	}
}

// TestTimestampPolicy: Created and Expires are checked against the clock with the skew, signed or
// not, and a signed Timestamp can be required.
func TestTimestampPolicy(t *testing.T) {
	s := signer(t, "valid/rsa")
	now := fixture.now
	skew := time.Minute
	for _, tc := range []struct {
		name             string
		created, expires time.Time
		signed, require  bool
		code             siobroker.Code
		msg              string
	}{
		{"fresh and signed", now.Add(-time.Minute), now.Add(4 * time.Minute), true, true, "", ""},
		{"fresh and unsigned (CXF without signatureParts)", now.Add(-time.Minute), now.Add(4 * time.Minute), false, false, "", ""},
		{"a clock a little ahead", now.Add(50 * time.Second), now.Add(5 * time.Minute), true, false, "", ""},
		{"expired a moment ago, within the skew", now.Add(-6 * time.Minute), now.Add(-30 * time.Second), true, false, "", ""},
		{"expired", now.Add(-10 * time.Minute), now.Add(-2 * time.Minute), true, false, siobroker.CodeTimestamp, "wsu:Timestamp expired at"},
		{"expired and unsigned", now.Add(-10 * time.Minute), now.Add(-2 * time.Minute), false, false, siobroker.CodeTimestamp, "wsu:Timestamp expired at"},
		{"from the future", now.Add(3 * time.Minute), now.Add(8 * time.Minute), true, false, siobroker.CodeTimestamp, "in the future"},
		{"expires before it is created", now, now.Add(-time.Second), true, false, siobroker.CodeTimestamp, "no later than it was created"},
		{"unsigned where a signed one is required", now, now.Add(time.Minute), false, true, siobroker.CodeTimestamp, "covered by the signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadDoc(t, "request.xml")
			body := bodyWithWSUId(doc, "id-body")
			ts := addTimestamp(doc, tc.created, tc.expires)
			ts.CreateAttr("wsu:Id", "TS-1")
			targets := []*etree.Element{body}
			if tc.signed {
				targets = append(targets, ts)
			}
			signHeaderByHand(t, doc, s, targets)
			v, err := verifyWith(reparse(t, doc), VerifierConfig{Timestamps: TimestampPolicy{Clock: fixedClock(now), Skew: skew, Require: tc.require}})
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.Timestamp == nil || v.Timestamp.Signed != tc.signed || !v.Timestamp.Created.Equal(tc.created.Truncate(time.Millisecond)) {
					t.Errorf("timestamp %+v", v.Timestamp)
				}
				return
			}
			wantRefusal(t, v, err, tc.code, tc.msg)
		})
	}
	t.Run("created too long ago, without Expires", func(t *testing.T) {
		doc := loadDoc(t, "request.xml")
		body := bodyWithWSUId(doc, "id-body")
		ts := securityOf(doc).CreateElement("wsu:Timestamp")
		ts.CreateAttr("wsu:Id", "TS-old")
		ts.CreateElement("wsu:Created").SetText(now.Add(-time.Hour).UTC().Format(timestampLayout))
		signHeaderByHand(t, doc, s, []*etree.Element{body, ts})
		v, err := verifyWith(reparse(t, doc), VerifierConfig{Timestamps: TimestampPolicy{Clock: fixedClock(now), Skew: skew, MaxAge: 5 * time.Minute}})
		wantRefusal(t, v, err, siobroker.CodeTimestamp, "more than 5m0s before")
	})
	t.Run("required, and the enveloped placement cannot sign one", func(t *testing.T) {
		doc := loadDoc(t, "request.xml")
		if err := s.Sign(doc, PlacementEnveloped); err != nil {
			t.Fatal(err)
		}
		v, err := verifyWith(reparse(t, doc), VerifierConfig{Timestamps: TimestampPolicy{Clock: fixedClock(now), Skew: skew, Require: true}})
		wantRefusal(t, v, err, siobroker.CodeTimestamp, "enveloped signature cannot cover")
	})
	t.Run("required but absent", func(t *testing.T) {
		v, err := verifyWith(signedWSSE(t, "valid/rsa"), VerifierConfig{Timestamps: TimestampPolicy{Clock: fixedClock(now), Skew: skew, Require: true}})
		wantRefusal(t, v, err, siobroker.CodeTimestamp, "requires a wsu:Timestamp")
	})
	for _, tc := range []struct {
		name, content, msg string
	}{
		{"no time zone", "<wsu:Created>2026-12-06T10:00:00</wsu:Created>", "not an xs:dateTime with a time zone"},
		{"two Created", "<wsu:Created>2026-12-06T10:00:00Z</wsu:Created><wsu:Created>2026-12-06T10:00:00Z</wsu:Created>", "unexpected wsu:Created"},
		{"Expires before Created", "<wsu:Expires>2026-12-06T10:00:00Z</wsu:Expires><wsu:Created>2026-12-06T10:00:00Z</wsu:Created>", "unexpected wsu:Created"},
		{"something else", "<wsu:Created>2026-12-06T10:00:00Z</wsu:Created><Extra/>", "unexpected Extra"},
	} {
		t.Run("malformed: "+tc.name, func(t *testing.T) {
			doc := signedWSSE(t, "valid/rsa")
			ts := parseString(t, `<wsu:Timestamp xmlns:wsu="`+nsWSU+`">`+tc.content+`</wsu:Timestamp>`).Root().Copy()
			doc.FindElement("//wsse:Security").InsertChildAt(0, ts)
			v, err := verifyWith(reparse(t, doc))
			wantRefusal(t, v, err, siobroker.CodeTimestamp, tc.msg)
		})
	}
}

// bodyWithWSUId gives the Body a wsu:Id and returns it.
func bodyWithWSUId(doc *etree.Document, id string) *etree.Element {
	body := doc.FindElement("//soapenv:Body")
	body.CreateAttr("xmlns:wsu", nsWSU)
	body.CreateAttr("wsu:Id", id)
	return body
}

// securityOf returns the wsse:Security header of doc, creating the Header and it if needed.
func securityOf(doc *etree.Document) *etree.Element {
	if sec := doc.FindElement("//wsse:Security"); sec != nil {
		return sec
	}
	env := doc.Root()
	header := env.SelectElement("soapenv:Header")
	if header == nil {
		header = etree.NewElement("soapenv:Header")
		env.InsertChildAt(0, header)
	}
	sec := header.CreateElement("wsse:Security")
	sec.CreateAttr("xmlns:wsse", nsWSSE)
	sec.CreateAttr("xmlns:wsu", nsWSU)
	return sec
}

// addTimestamp puts a wsu:Timestamp with the given times into the Security header.
func addTimestamp(doc *etree.Document, created, expires time.Time) *etree.Element {
	ts := securityOf(doc).CreateElement("wsu:Timestamp")
	ts.CreateElement("wsu:Created").SetText(created.UTC().Format(timestampLayout))
	ts.CreateElement("wsu:Expires").SetText(expires.UTC().Format(timestampLayout))
	return ts
}

// addressingHeader adds a WS-Addressing 1.0 header with a wsu:Id.
func addressingHeader(doc *etree.Document, local, id, text string) *etree.Element {
	securityOf(doc)
	h := doc.FindElement("//soapenv:Header").CreateElement("wsa:" + local)
	h.CreateAttr("xmlns:wsa", nsWSA)
	h.CreateAttr("xmlns:wsu", nsWSU)
	h.CreateAttr("wsu:Id", id)
	h.SetText(text)
	return h
}

// signHeaderByHand signs targets (by whatever identifier each carries) with a signature in the
// Security header whose KeyInfo carries the certificate: how the tests make shapes that the
// Signer never writes.
func signHeaderByHand(t testing.TB, doc *etree.Document, s *Signer, targets []*etree.Element) {
	t.Helper()
	var ids []string
	for _, el := range targets {
		id := ""
		for _, a := range el.Attr {
			if a.Key == "Id" {
				id = a.Value
			}
		}
		if id == "" {
			t.Fatalf("%s carries no Id", el.Tag)
		}
		ids = append(ids, id)
	}
	sig := s.newSignature(ids, false, s.x509DataKeyInfo())
	securityOf(doc).AddChild(sig)
	if err := s.complete(sig, targets, nil); err != nil {
		t.Fatal(err)
	}
}
