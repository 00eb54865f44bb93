package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// Placement says where a signature sits in the envelope.
type Placement string

// The two accepted placements.
const (
	PlacementWSSE      Placement = "wsse"      // WS-Security header signature over the Body
	PlacementEnveloped Placement = "enveloped" // first child of the element in requestData|responseData/data
)

// Defensive limits on the signature structure. A legitimate signature needs one Reference, two
// Transforms and one certificate (a few with intermediates).
const (
	maxSignedInfoChildren = 8
	maxTransforms         = 4
	maxKeyInfoCerts       = 8
)

// Verified is the outcome of a successful verification.
type Verified struct {
	Placement Placement
	// Signed is the only content a caller may use: for PlacementWSSE the Body, for
	// PlacementEnveloped the query or result element without its ds:Signature. It is parsed from
	// the canonical bytes that were digested, so it holds exactly what the signature covers and
	// nothing from the caller's tree.
	Signed      *etree.Element
	Certificate *x509.Certificate
	// SignerIIN comes from the certificate subject, never from the body.
	SignerIIN       string
	SignatureMethod string
	DigestMethod    string
}

// Verifier checks the signature of an envelope. It is safe for concurrent use.
type Verifier struct {
	trust *TrustStore
	// anySigner accepts a signer without an IIN: a client checking the broker's reply, which is
	// signed by the operator's organisation certificate (BIN), not by a person.
	anySigner bool
}

// NewVerifier returns a verifier for requests: signer certificates must chain to trust and carry
// the user's IIN.
func NewVerifier(trust *TrustStore) *Verifier {
	return &Verifier{trust: trust}
}

// NewReplyVerifier returns a verifier for the broker's replies: the signer must chain to trust,
// but may be an organisation certificate without an IIN (Verified.SignerIIN is then empty).
func NewReplyVerifier(trust *TrustStore) *Verifier {
	return &Verifier{trust: trust, anySigner: true}
}

// Verify finds the signature of doc and verifies it: a ds:Signature in the wsse:Security header if
// there is one, else an enveloped one as the first child of the element in
// Body/*/*/requestData|responseData/data. at is the message time, used for certificate validity.
func (v *Verifier) Verify(doc *etree.Document, at time.Time) (*Verified, error) {
	if doc == nil || doc.Root() == nil {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "empty document")
	}
	header, body, err := envelopeParts(doc)
	if err != nil {
		return nil, err
	}
	wsseSig, err := wsseSignature(header)
	if err != nil {
		return nil, err
	}
	var data, envSig *etree.Element
	if d, err := dataElement(body); err == nil {
		data = d
		if first := firstChildElement(d); is(first, nsDSig, "Signature") {
			envSig = first
		}
	}

	scan := scanDocument(doc.Root())
	for _, s := range scan.signatures {
		if s != wsseSig && s != envSig {
			return nil, siobroker.Errorf(siobroker.CodeSigReference,
				"a ds:Signature at %s is outside the accepted placements (wsse:Security header, or first child of the data element)", s.GetPath())
		}
	}
	if wsseSig == nil && envSig == nil {
		return nil, siobroker.Errorf(siobroker.CodeSigMissing, "the message carries no signature: neither a wsse:Security header signature nor an enveloped one in the data element")
	}
	if scan.duplicateID != "" {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "the identifier %q is carried by more than one element", scan.duplicateID)
	}

	if wsseSig != nil {
		id, err := bodyID(body)
		if err != nil {
			return nil, err
		}
		return v.verify(wsseSig, body, id, PlacementWSSE, at)
	}
	return v.verify(envSig, data, data.SelectAttrValue("Id", ""), PlacementEnveloped, at)
}

// wsseSignature returns the ds:Signature of the wsse:Security header, or nil if there is none.
func wsseSignature(header *etree.Element) (*etree.Element, error) {
	if header == nil {
		return nil, nil
	}
	secs := children(header, schemas.NSWSSE, "Security")
	switch {
	case len(secs) == 0:
		return nil, nil
	case len(secs) > 1:
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "the Header carries %d wsse:Security elements; one is accepted", len(secs))
	}
	sigs := children(secs[0], nsDSig, "Signature")
	switch len(sigs) {
	case 0:
		return nil, nil
	case 1:
		return sigs[0], nil
	default:
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "wsse:Security carries %d ds:Signature elements; one is accepted", len(sigs))
	}
}

// bodyID returns the wsu:Id of the Body.
func bodyID(body *etree.Element) (string, error) {
	scope := namespacesInScope(body)
	for _, a := range body.Attr {
		if a.Key == "Id" && a.Space != "" && a.Space != "xmlns" && scope[a.Space] == schemas.NSWSU {
			return a.Value, nil
		}
	}
	return "", siobroker.Errorf(siobroker.CodeSigReference, "the Body carries no wsu:Id for the header signature to reference")
}

// signatureParts are the children of a ds:Signature.
type signatureParts struct {
	signedInfo, signatureValue, keyInfo *etree.Element
}

func splitSignature(sig *etree.Element) (signatureParts, error) {
	var p signatureParts
	for _, c := range sig.ChildElements() {
		var slot **etree.Element
		switch {
		case is(c, nsDSig, "SignedInfo"):
			slot = &p.signedInfo
		case is(c, nsDSig, "SignatureValue"):
			slot = &p.signatureValue
		case is(c, nsDSig, "KeyInfo"):
			slot = &p.keyInfo
		default:
			// ds:Object and friends are where wrapping attacks hide content; nothing we accept needs them.
			return p, siobroker.Errorf(siobroker.CodeSigReference, "ds:Signature carries an unexpected element %s", c.FullTag())
		}
		if *slot != nil {
			return p, siobroker.Errorf(siobroker.CodeSigInvalid, "ds:Signature carries more than one %s", c.Tag)
		}
		*slot = c
	}
	switch {
	case p.signedInfo == nil:
		return p, siobroker.Errorf(siobroker.CodeSigInvalid, "ds:Signature has no SignedInfo")
	case p.signatureValue == nil:
		return p, siobroker.Errorf(siobroker.CodeSigInvalid, "ds:Signature has no SignatureValue")
	case p.keyInfo == nil:
		return p, siobroker.Errorf(siobroker.CodeCertChain, "ds:Signature has no KeyInfo with the signer certificate")
	}
	return p, nil
}

// reference is the parsed single Reference of a SignedInfo.
type reference struct {
	uri          string
	enveloped    bool // the enveloped-signature transform is applied
	c14n         c14nMethod
	prefixList   string
	digestMethod string
	digestValue  []byte
}

func (v *Verifier) verify(sig, target *etree.Element, targetID string, placement Placement, at time.Time) (*Verified, error) {
	parts, err := splitSignature(sig)
	if err != nil {
		return nil, err
	}

	// SignedInfo is canonicalised as it sits in the document, then everything is read back from
	// the canonical bytes, so that what is interpreted is exactly what the SignatureValue covers.
	cmEls := children(parts.signedInfo, nsDSig, "CanonicalizationMethod")
	if len(cmEls) != 1 {
		return nil, siobroker.Errorf(siobroker.CodeSigInvalid, "SignedInfo has %d CanonicalizationMethod elements, expected one", len(cmEls))
	}
	cmAlg := cmEls[0].SelectAttrValue("Algorithm", "")
	cm, ok := c14nMethods[cmAlg]
	if !ok {
		return nil, siobroker.Errorf(siobroker.CodeSigAlgorithm, "canonicalization algorithm %s is not allowed", cmAlg)
	}
	cmPrefixes, err := inclusivePrefixList(cmEls[0], cm)
	if err != nil {
		return nil, err
	}
	canonicalSignedInfo, err := canonicalize(parts.signedInfo, cm, cmPrefixes, nil)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "SignedInfo cannot be canonicalised")
	}
	signedInfo, err := parseCanonical(canonicalSignedInfo)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "canonical SignedInfo does not parse")
	}

	sigAlg, ref, err := readSignedInfo(signedInfo, cmAlg)
	if err != nil {
		return nil, err
	}
	method := signatureMethods[sigAlg]

	// The Reference must name exactly the element of the placement.
	what := "Body"
	if placement == PlacementEnveloped {
		what = target.Tag + " element"
	}
	if targetID == "" {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "the signed %s carries no Id", what)
	}
	if ref.uri != "#"+targetID {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "the Reference URI %q does not name the %s (Id %q)", ref.uri, what, targetID)
	}
	switch {
	case placement == PlacementEnveloped && !ref.enveloped:
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "the enveloped signature does not apply the enveloped-signature transform")
	case placement == PlacementWSSE && ref.enveloped:
		return nil, siobroker.Errorf(siobroker.CodeSigAlgorithm, "transform %s is not allowed on a header signature", AlgEnvelopedSignature)
	}

	// Reference validation. A bare "#id" URI selects the element without comments, whatever the
	// canonicalisation says.
	var exclude *etree.Element
	if ref.enveloped {
		exclude = sig
	}
	content, err := canonicalize(target, c14nMethod{exclusive: ref.c14n.exclusive}, ref.prefixList, exclude)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "%s cannot be canonicalised", ref.uri)
	}
	h := digestMethods[ref.digestMethod].New()
	h.Write(content)
	if subtle.ConstantTimeCompare(h.Sum(nil), ref.digestValue) != 1 {
		return nil, siobroker.Errorf(siobroker.CodeSigInvalid, "digest of %s does not match", ref.uri)
	}
	signed, err := parseCanonical(content)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "canonical form of %s does not parse", ref.uri)
	}

	// Signature validation with the certificate from KeyInfo.
	certs, err := keyInfoCertificates(parts.keyInfo)
	if err != nil {
		return nil, err
	}
	sigText, ok := textContent(parts.signatureValue)
	if !ok {
		return nil, siobroker.Errorf(siobroker.CodeSigInvalid, "SignatureValue is not plain text")
	}
	sigValue, err := base64.StdEncoding.DecodeString(stripSpace(sigText))
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "SignatureValue is not base64")
	}
	if err := verifySignatureValue(certs[0], sigAlg, method, canonicalSignedInfo, sigValue); err != nil {
		return nil, err
	}

	if v.trust == nil {
		return nil, siobroker.Errorf(siobroker.CodeInternal, "the verifier has no trust store")
	}
	if err := v.trust.VerifyChain(certs[0], certs[1:], at); err != nil {
		return nil, err
	}
	iin, err := SubjectIIN(certs[0])
	if err != nil && !v.anySigner {
		return nil, err
	}
	return &Verified{
		Placement:       placement,
		Signed:          signed,
		Certificate:     certs[0],
		SignerIIN:       iin,
		SignatureMethod: sigAlg,
		DigestMethod:    ref.digestMethod,
	}, nil
}

// readSignedInfo checks the structure of the canonical SignedInfo and returns its signature
// algorithm and its single Reference.
func readSignedInfo(si *etree.Element, cmAlg string) (string, reference, error) {
	var ref reference
	kids := si.ChildElements()
	if len(kids) > maxSignedInfoChildren {
		return "", ref, siobroker.Errorf(siobroker.CodeSigReference, "SignedInfo has %d child elements; a signature here carries one Reference", len(kids))
	}
	var cms, sms, refs []*etree.Element
	for _, c := range kids {
		switch {
		case is(c, nsDSig, "CanonicalizationMethod"):
			cms = append(cms, c)
		case is(c, nsDSig, "SignatureMethod"):
			sms = append(sms, c)
		case is(c, nsDSig, "Reference"):
			refs = append(refs, c)
		default:
			return "", ref, siobroker.Errorf(siobroker.CodeSigInvalid, "SignedInfo carries an unexpected element %s", c.FullTag())
		}
	}
	if len(cms) != 1 || cms[0].SelectAttrValue("Algorithm", "") != cmAlg {
		return "", ref, siobroker.Errorf(siobroker.CodeSigInvalid, "SignedInfo must carry one CanonicalizationMethod")
	}
	if len(sms) != 1 {
		return "", ref, siobroker.Errorf(siobroker.CodeSigInvalid, "SignedInfo has %d SignatureMethod elements, expected one", len(sms))
	}
	sigAlg := sms[0].SelectAttrValue("Algorithm", "")
	if _, ok := signatureMethods[sigAlg]; !ok {
		return "", ref, siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s is not allowed", sigAlg)
	}
	if len(sms[0].ChildElements()) != 0 {
		// HMACOutputLength and other parameters: none of the allowed algorithms takes any.
		return "", ref, siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s takes no parameters", sigAlg)
	}
	if len(refs) != 1 {
		return "", ref, siobroker.Errorf(siobroker.CodeSigReference, "SignedInfo has %d References; exactly one is accepted", len(refs))
	}
	ref, err := readReference(refs[0])
	return sigAlg, ref, err
}

func readReference(r *etree.Element) (reference, error) {
	ref := reference{c14n: c14nMethods[AlgC14N10]} // the default when no canonicalising transform is given
	uriAttr := r.SelectAttr("URI")
	if uriAttr == nil {
		return ref, siobroker.Errorf(siobroker.CodeSigReference, "the Reference has no URI")
	}
	ref.uri = uriAttr.Value
	if !strings.HasPrefix(ref.uri, "#") || len(ref.uri) < 2 {
		return ref, siobroker.Errorf(siobroker.CodeSigReference, "the Reference URI %q is not a same-document #Id reference", ref.uri)
	}
	var transforms, dms, dvs []*etree.Element
	for _, c := range r.ChildElements() {
		switch {
		case is(c, nsDSig, "Transforms"):
			transforms = append(transforms, c)
		case is(c, nsDSig, "DigestMethod"):
			dms = append(dms, c)
		case is(c, nsDSig, "DigestValue"):
			dvs = append(dvs, c)
		default:
			return ref, siobroker.Errorf(siobroker.CodeSigInvalid, "the Reference carries an unexpected element %s", c.FullTag())
		}
	}
	if len(transforms) > 1 || len(dms) != 1 || len(dvs) != 1 {
		return ref, siobroker.Errorf(siobroker.CodeSigInvalid, "the Reference must carry at most one Transforms, one DigestMethod and one DigestValue")
	}
	if len(transforms) == 1 {
		if err := readTransforms(transforms[0], &ref); err != nil {
			return ref, err
		}
	}
	ref.digestMethod = dms[0].SelectAttrValue("Algorithm", "")
	if _, ok := digestMethods[ref.digestMethod]; !ok {
		return ref, siobroker.Errorf(siobroker.CodeSigAlgorithm, "digest algorithm %s is not allowed", ref.digestMethod)
	}
	text, ok := textContent(dvs[0])
	if !ok {
		return ref, siobroker.Errorf(siobroker.CodeSigInvalid, "DigestValue is not plain text")
	}
	dv, err := base64.StdEncoding.DecodeString(stripSpace(text))
	if err != nil {
		return ref, siobroker.Wrap(siobroker.CodeSigInvalid, err, "DigestValue is not base64")
	}
	ref.digestValue = dv
	return ref, nil
}

// readTransforms accepts an optional enveloped-signature transform followed by at most one
// canonicalisation; nothing else (no XPath, XSLT or base64).
func readTransforms(ts *etree.Element, ref *reference) error {
	list := ts.ChildElements()
	if len(list) > maxTransforms {
		return siobroker.Errorf(siobroker.CodeSigAlgorithm, "the Reference has %d Transforms; at most 2 are accepted", len(list))
	}
	sawC14N := false
	for i, t := range list {
		if !is(t, nsDSig, "Transform") {
			return siobroker.Errorf(siobroker.CodeSigInvalid, "Transforms carries an unexpected element %s", t.FullTag())
		}
		alg := t.SelectAttrValue("Algorithm", "")
		if alg == AlgEnvelopedSignature {
			if i != 0 {
				return siobroker.Errorf(siobroker.CodeSigAlgorithm, "the enveloped-signature transform must come first")
			}
			ref.enveloped = true
			continue
		}
		m, ok := c14nMethods[alg]
		if !ok {
			return siobroker.Errorf(siobroker.CodeSigAlgorithm, "transform %s is not allowed", alg)
		}
		if sawC14N {
			return siobroker.Errorf(siobroker.CodeSigAlgorithm, "the Reference applies more than one canonicalization")
		}
		sawC14N = true
		prefixes, err := inclusivePrefixList(t, m)
		if err != nil {
			return err
		}
		ref.c14n, ref.prefixList = m, prefixes
	}
	return nil
}

// inclusivePrefixList reads the ec:InclusiveNamespaces PrefixList of an exclusive
// canonicalisation; other canonicalisations take no parameters.
func inclusivePrefixList(el *etree.Element, m c14nMethod) (string, error) {
	kids := el.ChildElements()
	if len(kids) == 0 {
		return "", nil
	}
	if !m.exclusive || len(kids) > 1 || !is(kids[0], nsExcCN, "InclusiveNamespaces") {
		return "", siobroker.Errorf(siobroker.CodeSigAlgorithm, "unexpected parameters of %s", el.SelectAttrValue("Algorithm", ""))
	}
	list := kids[0].SelectAttrValue("PrefixList", "")
	if len(list) > 1024 {
		return "", siobroker.Errorf(siobroker.CodeSigAlgorithm, "InclusiveNamespaces PrefixList is too long")
	}
	return list, nil
}

// keyInfoCertificates returns the certificates of KeyInfo/X509Data, signer first.
func keyInfoCertificates(keyInfo *etree.Element) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, data := range children(keyInfo, nsDSig, "X509Data") {
		for _, el := range children(data, nsDSig, "X509Certificate") {
			if len(certs) == maxKeyInfoCerts {
				return nil, siobroker.Errorf(siobroker.CodeCertChain, "KeyInfo carries more than %d certificates", maxKeyInfoCerts)
			}
			text, ok := textContent(el)
			if !ok {
				return nil, siobroker.Errorf(siobroker.CodeCertChain, "X509Certificate is not plain text")
			}
			der, err := base64.StdEncoding.DecodeString(stripSpace(text))
			if err != nil {
				return nil, siobroker.Wrap(siobroker.CodeCertChain, err, "X509Certificate is not base64")
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, siobroker.Wrap(siobroker.CodeCertChain, err, "X509Certificate does not parse")
			}
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		return nil, siobroker.Errorf(siobroker.CodeCertChain, "KeyInfo carries no X509Data/X509Certificate")
	}
	return certs, nil
}

// verifySignatureValue checks value over the canonical SignedInfo with the certificate's key.
func verifySignatureValue(cert *x509.Certificate, alg string, m signatureMethod, signedInfo, value []byte) error {
	h := m.hash.New()
	h.Write(signedInfo)
	digest := h.Sum(nil)
	bad := func(cause error) error {
		return siobroker.Wrap(siobroker.CodeSigInvalid, cause, "SignatureValue does not verify with the key of %q", cert.Subject.String())
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if m.key != keyRSA {
			return siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s does not fit the certificate's RSA key", alg)
		}
		if pub.N.BitLen() < minRSABits {
			return siobroker.Errorf(siobroker.CodeSigAlgorithm, "RSA key of %d bits is too short; at least %d are required", pub.N.BitLen(), minRSABits)
		}
		if err := rsa.VerifyPKCS1v15(pub, m.hash, digest, value); err != nil {
			return bad(err)
		}
		return nil
	case *ecdsa.PublicKey:
		if m.key != keyECDSA {
			return siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s does not fit the certificate's ECDSA key", alg)
		}
		size, err := curveSize(pub.Curve)
		if err != nil {
			return err
		}
		// XML-DSig carries r||s, each left-padded to the curve size.
		if len(value) != 2*size {
			return bad(fmt.Errorf("ECDSA signature of %d bytes, expected %d (r||s)", len(value), 2*size))
		}
		r := new(big.Int).SetBytes(value[:size])
		s := new(big.Int).SetBytes(value[size:])
		if !ecdsa.Verify(pub, digest, r, s) {
			return bad(nil)
		}
		return nil
	default:
		return siobroker.Errorf(siobroker.CodeSigAlgorithm, "the certificate's %T key is not supported", cert.PublicKey)
	}
}

// curveSize returns the byte length of one coordinate of an accepted curve.
func curveSize(c elliptic.Curve) (int, error) {
	switch c {
	case elliptic.P256(), elliptic.P384(), elliptic.P521():
		return (c.Params().BitSize + 7) / 8, nil
	}
	return 0, siobroker.Errorf(siobroker.CodeSigAlgorithm, "elliptic curve %s is not allowed", c.Params().Name)
}

// derToRS converts an ASN.1 ECDSA signature (what crypto.Signer returns) to r||s.
func derToRS(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil {
		return nil, fmt.Errorf("parse ECDSA signature: %w", err)
	}
	if len(rest) != 0 || sig.R == nil || sig.S == nil || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 {
		return nil, fmt.Errorf("malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}

// oidSerialNumber is the subject attribute that carries "IIN" + 12 digits in Kazakh certificates.
var oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

// SubjectIIN returns the IIN of a certificate subject: its serialNumber attribute "IIN" followed by
// 12 digits with a valid check digit. Anything else is CodeCertNoIIN.
func SubjectIIN(cert *x509.Certificate) (string, error) {
	var values []string
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidSerialNumber) {
			s, _ := atv.Value.(string)
			values = append(values, s)
		}
	}
	switch len(values) {
	case 0:
		return "", siobroker.Errorf(siobroker.CodeCertNoIIN, "the certificate subject %q carries no serialNumber with an IIN", cert.Subject.String())
	case 1:
	default:
		return "", siobroker.Errorf(siobroker.CodeCertNoIIN, "the certificate subject carries %d serialNumber attributes; one is expected", len(values))
	}
	iin, ok := strings.CutPrefix(values[0], "IIN")
	if !ok {
		return "", siobroker.Errorf(siobroker.CodeCertNoIIN, "the certificate subject serialNumber %q is not an IIN", values[0])
	}
	if err := siobroker.ValidateIIN(iin); err != nil {
		return "", siobroker.Wrap(siobroker.CodeCertNoIIN, err, "the certificate subject IIN %q is invalid: %v", iin, err)
	}
	return iin, nil
}

// parseCanonical parses canonical bytes into a fresh document and returns its root.
func parseCanonical(b []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, fmt.Errorf("parse canonical XML: %w", err)
	}
	if doc.Root() == nil {
		return nil, fmt.Errorf("parse canonical XML: no root element")
	}
	return doc.Root(), nil
}
