package signing

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // ThumbprintSHA1 and RFC 5280 key identifiers are defined with SHA-1; nothing is signed with it
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

// This file finds the signer's certificate from a ds:KeyInfo, in the forms of XML-DSig and of the
// WS-Security X.509 Token Profile 1.1 that SOAP stacks write:
//
//   - ds:X509Data/ds:X509Certificate directly in KeyInfo (xmlsec1, .NET, our own client);
//   - wsse:SecurityTokenReference/wsse:Reference to a wsse:BinarySecurityToken of the same
//     wsse:Security header (WSS4J and CXF by default, node-soap, zeep's BinarySignature);
//   - wsse:SecurityTokenReference/ds:X509Data with the certificate (some zeep versions);
//   - wsse:KeyIdentifier of value type X509v3, with the certificate inline;
//   - identifiers that carry no certificate: wsse:KeyIdentifier ThumbprintSHA1 and
//     X509SubjectKeyIdentifier, ds:X509IssuerSerial and ds:X509SKI (inside a
//     SecurityTokenReference or directly). These are resolved only against certificates the
//     broker already holds (CertificateDirectory), never fetched from anywhere.
//
// Whatever the form, the certificate found still has to verify the SignatureValue and chain to a
// trusted root (with the CRLs) like any other: a reference can only ever choose among keys, it
// cannot make an untrusted one trusted.

// KeyIdentifier names a certificate without carrying it. Exactly one of its forms is set.
type KeyIdentifier struct {
	// ThumbprintSHA1 is the SHA-1 of the DER certificate (KeyIdentifier ThumbprintSHA1).
	ThumbprintSHA1 []byte
	// SubjectKeyID is the subject key identifier (KeyIdentifier X509SubjectKeyIdentifier,
	// ds:X509SKI): the certificate's extension, or for a certificate without one the SHA-1 of its
	// subjectPublicKey (RFC 5280, §4.2.1.2, method 1), as WSS4J computes it.
	SubjectKeyID []byte
	// IssuerName and SerialNumber are a ds:X509IssuerSerial. IssuerName is a distinguished name
	// as the sender wrote it (RFC 4514 or similar), matched attribute by attribute.
	IssuerName   string
	SerialNumber *big.Int
}

// String describes the identifier for a refusal message.
func (id KeyIdentifier) String() string {
	switch {
	case id.ThumbprintSHA1 != nil:
		return fmt.Sprintf("thumbprint (SHA-1) %X", id.ThumbprintSHA1)
	case id.SubjectKeyID != nil:
		return fmt.Sprintf("subject key identifier %X", id.SubjectKeyID)
	case id.SerialNumber != nil:
		return fmt.Sprintf("issuer %q and serial number %s", id.IssuerName, id.SerialNumber)
	}
	return "an empty key identifier"
}

// Matches reports whether cert is the certificate id names.
func (id KeyIdentifier) Matches(cert *x509.Certificate) bool {
	switch {
	case id.ThumbprintSHA1 != nil:
		sum := sha1.Sum(cert.Raw)
		return bytes.Equal(sum[:], id.ThumbprintSHA1)
	case id.SubjectKeyID != nil:
		return bytes.Equal(SubjectKeyID(cert), id.SubjectKeyID)
	case id.SerialNumber != nil:
		return cert.SerialNumber != nil && cert.SerialNumber.Cmp(id.SerialNumber) == 0 && issuerMatches(id.IssuerName, cert)
	}
	return false
}

// SubjectKeyID returns the subject key identifier of cert: its extension, or the SHA-1 of its
// subjectPublicKey BIT STRING when it has none (RFC 5280, §4.2.1.2, method 1).
func SubjectKeyID(cert *x509.Certificate) []byte {
	if len(cert.SubjectKeyId) > 0 {
		return cert.SubjectKeyId
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:]
}

// ThumbprintSHA1 returns the SHA-1 of the DER certificate, as a ThumbprintSHA1 KeyIdentifier
// carries it.
func ThumbprintSHA1(cert *x509.Certificate) []byte {
	sum := sha1.Sum(cert.Raw)
	return sum[:]
}

// CertificateDirectory finds the certificates the broker already holds (the user registry's) that
// a KeyIdentifier may name. It may return candidates that do not match: the verifier keeps only
// those for which KeyIdentifier.Matches holds. None found is not an error.
type CertificateDirectory interface {
	LookupCertificates(ctx context.Context, id KeyIdentifier) ([]*x509.Certificate, error)
}

// KeyForm says how the signer's certificate was given.
type KeyForm string

// The accepted forms of KeyInfo.
const (
	KeyX509Data     KeyForm = "x509data"      // ds:X509Data/ds:X509Certificate
	KeyTokenRef     KeyForm = "bst"           // a SecurityTokenReference to a BinarySecurityToken
	KeyInlineX509v3 KeyForm = "keyid-x509v3"  // a KeyIdentifier of value type X509v3
	KeyThumbprint   KeyForm = "keyid-thumb"   // a KeyIdentifier ThumbprintSHA1
	KeySKI          KeyForm = "keyid-ski"     // a KeyIdentifier X509SubjectKeyIdentifier, or ds:X509SKI
	KeyIssuerSerial KeyForm = "issuer-serial" // ds:X509IssuerSerial
)

const (
	maxCandidates = 4        // certificates one identifier may choose among
	maxTokenBytes = 16 << 10 // base64 text of one certificate; НУЦ РК certificates are about 2 KB
	keyInfoForms  = "ds:X509Data with ds:X509Certificate, or a wsse:SecurityTokenReference to a wsse:BinarySecurityToken of the Security header, " +
		"or a wsse:KeyIdentifier (X509v3, ThumbprintSHA1, X509SubjectKeyIdentifier), or ds:X509IssuerSerial"
)

// signerKey is what KeyInfo gave: either certificates (signer first) or an identifier.
type signerKey struct {
	form     KeyForm
	byRef    bool                // inside a wsse:SecurityTokenReference
	certs    []*x509.Certificate // from the message; signer first
	id       *KeyIdentifier      // when the message carries no certificate
	issuerSN *KeyIdentifier      // a ds:X509IssuerSerial beside the certificates, which must name the first
}

// readKeyInfo reads a ds:KeyInfo. sec is the Security header of the envelope (nil if none): a
// reference to a token is resolved only there. ids is the document's identifier index.
func readKeyInfo(keyInfo *etree.Element, sec *securityHeader, ids idIndex) (signerKey, error) {
	var sources []*etree.Element
	for _, c := range keyInfo.ChildElements() {
		switch {
		case is(c, nsDSig, "X509Data"), is(c, nsWSSE, "SecurityTokenReference"):
			sources = append(sources, c)
		case is(c, nsDSig, "KeyName"), is(c, nsDSig, "KeyValue"):
			// Hints that some stacks add beside the certificate. A key is only ever taken from a
			// certificate, so they are read for nothing.
		default:
			return signerKey{}, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:KeyInfo carries %s, which is not accepted; send %s", c.FullTag(), keyInfoForms)
		}
	}
	if len(sources) != 1 {
		return signerKey{}, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:KeyInfo carries %d key sources; exactly one of %s is accepted", len(sources), keyInfoForms)
	}
	src := sources[0]
	if is(src, nsDSig, "X509Data") {
		return readX509Data(src)
	}
	return readTokenReference(src, sec, ids)
}

// readTokenReference reads a wsse:SecurityTokenReference: exactly one wsse:Reference,
// wsse:KeyIdentifier or ds:X509Data.
func readTokenReference(str *etree.Element, sec *securityHeader, ids idIndex) (signerKey, error) {
	kids := str.ChildElements()
	if len(kids) != 1 {
		return signerKey{}, siobroker.Errorf(siobroker.CodeKeyInfo, "wsse:SecurityTokenReference carries %d elements; exactly one wsse:Reference, wsse:KeyIdentifier or ds:X509Data is accepted", len(kids))
	}
	c := kids[0]
	switch {
	case is(c, nsWSSE, "Reference"):
		cert, err := referencedToken(c, sec, ids)
		return signerKey{form: KeyTokenRef, byRef: true, certs: []*x509.Certificate{cert}}, err
	case is(c, nsWSSE, "KeyIdentifier"):
		k, err := readKeyIdentifier(c)
		k.byRef = true
		return k, err
	case is(c, nsDSig, "X509Data"):
		k, err := readX509Data(c)
		k.byRef = true
		return k, err
	}
	return signerKey{}, siobroker.Errorf(siobroker.CodeKeyInfo, "wsse:SecurityTokenReference carries %s, which is not accepted", c.FullTag())
}

// referencedToken resolves a wsse:Reference to the X.509 certificate of a BinarySecurityToken. The
// token must be a child of the envelope's own wsse:Security header: a token anywhere else (in the
// Body, in another header) is what a wrapping attack would plant, and is refused.
func referencedToken(ref *etree.Element, sec *securityHeader, ids idIndex) (*x509.Certificate, error) {
	uri := ref.SelectAttrValue("URI", "")
	id, ok := strings.CutPrefix(uri, "#")
	if !ok || id == "" {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "wsse:Reference URI %q is not a #Id reference within the message", uri)
	}
	if vt := ref.SelectAttrValue("ValueType", ""); vt != "" && vt != ValueTypeX509v3 {
		return nil, siobroker.Errorf(siobroker.CodeKeyInfo, "wsse:Reference of value type %q is not accepted; the token must be %s", vt, ValueTypeX509v3)
	}
	target, ok := ids[id]
	if !ok {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "wsse:Reference URI %q names no element of the message", uri)
	}
	if sec == nil || target.el.Parent() != sec.el || !is(target.el, nsWSSE, "BinarySecurityToken") {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "wsse:Reference URI %q does not name a wsse:BinarySecurityToken of the wsse:Security header", uri)
	}
	if !target.wsu {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "the wsse:BinarySecurityToken %q is not identified by wsu:Id", id)
	}
	bst := target.el
	if vt := bst.SelectAttrValue("ValueType", ""); vt != ValueTypeX509v3 {
		return nil, siobroker.Errorf(siobroker.CodeKeyInfo, "wsse:BinarySecurityToken of value type %q is not accepted; send one certificate as %s", vt, ValueTypeX509v3)
	}
	if err := checkEncoding(bst); err != nil {
		return nil, err
	}
	return certificateText(bst, "wsse:BinarySecurityToken")
}

// readKeyIdentifier reads a wsse:KeyIdentifier.
func readKeyIdentifier(el *etree.Element) (signerKey, error) {
	if err := checkEncoding(el); err != nil {
		return signerKey{}, err
	}
	vt := el.SelectAttrValue("ValueType", "")
	if vt == ValueTypeX509v3 {
		cert, err := certificateText(el, "wsse:KeyIdentifier")
		return signerKey{form: KeyInlineX509v3, certs: []*x509.Certificate{cert}}, err
	}
	value, err := base64Text(el, "wsse:KeyIdentifier", 256)
	if err != nil {
		return signerKey{}, err
	}
	switch vt {
	case ValueTypeThumbprintSHA1:
		if len(value) != sha1.Size {
			return signerKey{}, siobroker.Errorf(siobroker.CodeKeyInfo, "a ThumbprintSHA1 key identifier holds %d bytes, not %d", len(value), sha1.Size)
		}
		return signerKey{form: KeyThumbprint, id: &KeyIdentifier{ThumbprintSHA1: value}}, nil
	case ValueTypeSKI:
		if len(value) == 0 {
			return signerKey{}, siobroker.Errorf(siobroker.CodeKeyInfo, "the X509SubjectKeyIdentifier key identifier is empty")
		}
		return signerKey{form: KeySKI, id: &KeyIdentifier{SubjectKeyID: value}}, nil
	}
	return signerKey{}, siobroker.Errorf(siobroker.CodeKeyInfo, "wsse:KeyIdentifier of value type %q is not accepted; X509v3, ThumbprintSHA1 and X509SubjectKeyIdentifier are", vt)
}

// checkEncoding refuses an EncodingType other than Base64Binary (absent means Base64Binary).
func checkEncoding(el *etree.Element) error {
	if enc := el.SelectAttrValue("EncodingType", ""); enc != "" && enc != EncodingBase64Binary {
		return siobroker.Errorf(siobroker.CodeKeyInfo, "%s of encoding type %q is not accepted; only %s is", el.FullTag(), enc, EncodingBase64Binary)
	}
	return nil
}

// readX509Data reads a ds:X509Data: certificates (signer first), or, when it carries none, one
// identifier (X509IssuerSerial or X509SKI). X509SubjectName is a hint and is not used.
func readX509Data(data *etree.Element) (signerKey, error) {
	var k signerKey
	var issuerSerials, skis []*etree.Element
	for _, el := range data.ChildElements() {
		switch {
		case is(el, nsDSig, "X509Certificate"):
			if len(k.certs) == maxKeyInfoCerts {
				return k, siobroker.Errorf(siobroker.CodeCertChain, "KeyInfo carries more than %d certificates", maxKeyInfoCerts)
			}
			c, err := certificateText(el, "X509Certificate")
			if err != nil {
				return k, err
			}
			k.certs = append(k.certs, c)
		case is(el, nsDSig, "X509IssuerSerial"):
			// libxmlsec1 before 1.2.38 (and so zeep on Debian 12) writes it empty beside the
			// certificate (xmlsec issue 616); empty, it says nothing.
			if len(el.ChildElements()) > 0 {
				issuerSerials = append(issuerSerials, el)
			}
		case is(el, nsDSig, "X509SKI"):
			skis = append(skis, el)
		case is(el, nsDSig, "X509SubjectName"):
		default:
			return k, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:X509Data carries %s, which is not accepted", el.FullTag())
		}
	}
	if len(issuerSerials) > 1 || len(skis) > 1 || len(issuerSerials)+len(skis) > 1 {
		return k, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:X509Data names the signer more than once (X509IssuerSerial, X509SKI)")
	}
	var id *KeyIdentifier
	switch {
	case len(issuerSerials) == 1:
		issuerSerial, err := readIssuerSerial(issuerSerials[0])
		if err != nil {
			return k, err
		}
		id, k.form = &issuerSerial, KeyIssuerSerial
	case len(skis) == 1:
		ski, err := base64Text(skis[0], "ds:X509SKI", 256)
		if err != nil {
			return k, err
		}
		if len(ski) == 0 {
			return k, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:X509SKI is empty")
		}
		id, k.form = &KeyIdentifier{SubjectKeyID: ski}, KeySKI
	}
	switch {
	case len(k.certs) > 0 && id != nil:
		// Both: the identifier is a claim about the certificate and must hold for it.
		k.issuerSN, k.form = id, KeyX509Data
	case len(k.certs) > 0:
		k.form = KeyX509Data
	case id == nil:
		return k, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:X509Data carries no certificate and no X509IssuerSerial or X509SKI")
	default:
		k.id = id
	}
	return k, nil
}

// readIssuerSerial reads a ds:X509IssuerSerial: one X509IssuerName and one decimal
// X509SerialNumber.
func readIssuerSerial(el *etree.Element) (KeyIdentifier, error) {
	names, serials := children(el, nsDSig, "X509IssuerName"), children(el, nsDSig, "X509SerialNumber")
	if len(names) != 1 || len(serials) != 1 || len(el.ChildElements()) != 2 {
		return KeyIdentifier{}, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:X509IssuerSerial must carry one X509IssuerName and one X509SerialNumber")
	}
	name, ok1 := textContent(names[0])
	serialText, ok2 := textContent(serials[0])
	serialText = strings.TrimSpace(serialText)
	if !ok1 || !ok2 || len(name) > 2048 || len(serialText) > 64 {
		return KeyIdentifier{}, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:X509IssuerSerial is not plain text of a sensible length")
	}
	serial, ok := new(big.Int).SetString(serialText, 10)
	if !ok || serial.Sign() < 0 {
		return KeyIdentifier{}, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:X509SerialNumber %q is not a decimal integer", serialText)
	}
	if _, err := parseDN(name); err != nil {
		return KeyIdentifier{}, siobroker.Wrap(siobroker.CodeKeyInfo, err, "ds:X509IssuerName %q is not a distinguished name", name)
	}
	return KeyIdentifier{IssuerName: strings.TrimSpace(name), SerialNumber: serial}, nil
}

// certificateText parses the base64 DER certificate that is the text of el.
func certificateText(el *etree.Element, what string) (*x509.Certificate, error) {
	der, err := base64Text(el, what, maxTokenBytes)
	if err != nil {
		return nil, err
	}
	c, err := parsedCertificates.parse(der)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeCertChain, err, "%s does not hold a certificate", what)
	}
	return c, nil
}

// parsedCertificates remembers the certificates messages carried lately. A signer sends the same
// certificate with every request, and the broker's replies carry its own: parsing it anew each
// time was about 5 KB of allocations per message (issue 20). Only the parse is remembered, keyed
// by the whole DER; the chain, validity and revocation are checked for every message as before.
// A certificate that does not parse is not remembered.
var parsedCertificates = certificateCache{max: 64, maxBytes: 1 << 20}

// certificateCache is a bounded map from DER to parsed certificate, by entries (max) and by the
// bytes of their DER (maxBytes, counting the key and the certificate's own copy). When either is
// reached it is emptied: a sender of ever new certificates costs what it cost before, and no more
// memory. The certificates it hands out are shared, and read only, as every *x509.Certificate
// here is.
type certificateCache struct {
	max, maxBytes int
	mu            sync.Mutex
	certs         map[string]*x509.Certificate
	bytes         int
}

func (c *certificateCache) parse(der []byte) (*x509.Certificate, error) {
	c.mu.Lock()
	cert, ok := c.certs[string(der)]
	c.mu.Unlock()
	if ok {
		return cert, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	cost := 2 * len(der)
	if cost > c.maxBytes {
		return cert, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.certs == nil || len(c.certs) >= c.max || c.bytes+cost > c.maxBytes {
		c.certs = make(map[string]*x509.Certificate, c.max)
		c.bytes = 0
	}
	if _, ok := c.certs[string(der)]; !ok {
		c.certs[string(der)] = cert
		c.bytes += cost
	}
	return cert, nil
}

// base64Text decodes the base64 text of el, refusing more than max characters.
func base64Text(el *etree.Element, what string, max int) ([]byte, error) {
	text, ok := textContent(el)
	if !ok {
		return nil, siobroker.Errorf(siobroker.CodeKeyInfo, "%s is not plain text", what)
	}
	text = stripSpace(text)
	if len(text) > max {
		return nil, siobroker.Errorf(siobroker.CodeKeyInfo, "%s is longer than %d characters", what, max)
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeKeyInfo, err, "%s is not base64", what)
	}
	return b, nil
}

// resolve turns what KeyInfo gave into the candidate signer certificates: the message's own, or
// the directory's that the identifier names.
func (k signerKey) resolve(ctx context.Context, dir CertificateDirectory) ([]*x509.Certificate, error) {
	if len(k.certs) > 0 {
		if k.issuerSN != nil && !k.issuerSN.Matches(k.certs[0]) {
			return nil, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:X509Data names %s, which is not its certificate %q", k.issuerSN, k.certs[0].Subject.String())
		}
		return k.certs, nil
	}
	if dir == nil {
		return nil, siobroker.Errorf(siobroker.CodeCertUnknown, "KeyInfo names the signer by %s, and this broker holds no certificates to resolve it; send the certificate", k.id)
	}
	found, err := dir.LookupCertificates(ctx, *k.id)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot look up the signer's certificate now; retry later")
	}
	var matches []*x509.Certificate
	for _, c := range found {
		if c != nil && k.id.Matches(c) && !containsCert(matches, c) {
			matches = append(matches, c)
		}
	}
	if len(matches) == 0 {
		return nil, siobroker.Errorf(siobroker.CodeCertUnknown, "KeyInfo names the signer by %s, which is no certificate of a registered user; send the certificate, or register it", k.id)
	}
	if len(matches) > maxCandidates {
		matches = matches[:maxCandidates]
	}
	return matches, nil
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}
