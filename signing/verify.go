package signing

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/xmltree"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// Placement says where a signature sits in the envelope, and how a reply is signed in return.
type Placement string

// The accepted placements.
const (
	// PlacementWSSE is a WS-Security header signature over the Body whose KeyInfo carries the
	// certificate as ds:X509Data (xmlsec1, .NET, our own client).
	PlacementWSSE Placement = "wsse"
	// PlacementWSSEToken is a WS-Security header signature whose KeyInfo is a
	// wsse:SecurityTokenReference, in any of its forms (WSS4J and CXF, zeep, node-soap, the
	// e-government gateway). A reply in this placement carries the broker's certificate as a
	// wsse:BinarySecurityToken referenced from KeyInfo, which is what those stacks verify (WSS4J
	// refuses a bare ds:X509Data).
	PlacementWSSEToken Placement = "wsse-token"
	// PlacementWSSETokenTimestamp is PlacementWSSEToken with a wsu:Timestamp in the Security
	// header (a reply's is always signed). A reply mirrors the request: CXF compares the security
	// actions of a reply with its own configuration, and refuses a Timestamp it did not send as
	// firmly as a missing one it did; and CXF with action "Timestamp Signature" but no
	// signatureParts sends its Timestamp unsigned, yet expects one back.
	PlacementWSSETokenTimestamp Placement = "wsse-token-ts"
	// PlacementEnveloped is a signature as the first child of the element in
	// requestData|responseData/data.
	PlacementEnveloped Placement = "enveloped"
)

// InHeader reports whether p is one of the WS-Security header placements.
func (p Placement) InHeader() bool {
	return p == PlacementWSSE || p == PlacementWSSEToken || p == PlacementWSSETokenTimestamp
}

// Valid reports whether p is one of the accepted placements.
func (p Placement) Valid() bool { return p.InHeader() || p == PlacementEnveloped }

// Defensive limits on the signature structure. A header signature covers the Body, and perhaps the
// Timestamp and a few WS-Addressing headers; an enveloped one covers one element. A signer sends
// its certificate, with a few intermediates at most.
const (
	maxReferences         = 8
	maxSignedInfoChildren = 2 + maxReferences
	maxTransforms         = 4
	maxKeyInfoCerts       = 8
)

// Verified is the outcome of a successful verification.
type Verified struct {
	Placement Placement
	// Signed is the only content a caller may use: for the header placements the Body, for
	// PlacementEnveloped the query or result element without its ds:Signature. It is parsed from
	// the canonical bytes that were digested, so it holds exactly what the signature covers and
	// nothing from the caller's tree.
	Signed      *etree.Element
	Certificate *x509.Certificate
	// CertificateInMessage reports that the message carried the certificate itself, rather than
	// an identifier resolved against the CertificateDirectory.
	CertificateInMessage bool
	// KeyForm is how KeyInfo gave the certificate.
	KeyForm KeyForm
	// Timestamp is the wsu:Timestamp of the Security header, nil when there is none.
	Timestamp *Timestamp
	// SignerIIN comes from the certificate subject, never from the body.
	SignerIIN       string
	SignatureMethod string
	DigestMethod    string // of the Reference to the signed content
}

// Verifier checks the signature of an envelope. It is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig
	// onDigest, if set, is told of each element about to be canonicalised for its digest: the
	// tests count the work done before a refusal with it.
	onDigest func(target *etree.Element)
}

// VerifierConfig is what a Verifier holds signatures to.
type VerifierConfig struct {
	// Trust is the roots, intermediates and CRLs a signer's certificate must chain to. Required.
	Trust *TrustStore
	// Directory resolves key identifiers that carry no certificate (thumbprint, subject key
	// identifier, issuer and serial). Nil: such a signature is refused with SIO-CERT-UNKNOWN.
	Directory CertificateDirectory
	// Timestamps checks the wsu:Timestamp of the Security header. Zero: a Timestamp is read and
	// must be well formed, but its times are not compared with any clock.
	Timestamps TimestampPolicy
	// AnySigner accepts a signer without an IIN: a client checking the broker's reply, which is
	// signed by the operator's organisation certificate (BIN), not by a person. False: the
	// signer's certificate must carry the user's IIN, as a request's must.
	AnySigner bool
	// Usage is what a request signer's certificate must be meant for (SignerUsage); the zero
	// value is the national PKI's signing profile. Not applied with AnySigner: the broker's own
	// certificate, which signs replies, is a TLS certificate too.
	Usage SignerUsage
}

// Validate names what is missing from c.
func (c VerifierConfig) Validate() error {
	if c.Trust == nil {
		return errors.New("signing: VerifierConfig.Trust is required")
	}
	return c.Usage.Validate()
}

// NewVerifier returns a verifier that holds signatures to cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Verifier{cfg: cfg}, nil
}

// NewReplyVerifier returns a verifier for the broker's replies: the signer must chain to trust,
// but may be an organisation certificate without an IIN (Verified.SignerIIN is then empty). It
// is NewVerifier with AnySigner, for the clients.
func NewReplyVerifier(trust *TrustStore) (*Verifier, error) {
	return NewVerifier(VerifierConfig{Trust: trust, AnySigner: true})
}

// Verify finds the signature of doc and verifies it: a ds:Signature in the wsse:Security header if
// there is one, else an enveloped one as the first child of the element in
// Body/*/*/requestData|responseData/data. at is the message time, used for certificate validity.
func (v *Verifier) Verify(ctx context.Context, doc *etree.Document, at time.Time) (*Verified, error) {
	if doc == nil || doc.Root() == nil {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "empty document")
	}
	header, body, err := envelopeParts(doc)
	if err != nil {
		return nil, err
	}
	sec, err := findSecurityHeader(header)
	if err != nil {
		return nil, err
	}
	var wsseSig, data, envSig *etree.Element
	if sec != nil {
		wsseSig = sec.signature
	}
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

	// The Timestamp is checked whether it is signed or not, and before any cryptography: a stale
	// message costs nothing more.
	var ts *Timestamp
	if sec != nil && sec.timestamp != nil {
		t, err := readTimestamp(sec.timestamp)
		if err != nil {
			return nil, err
		}
		if err := v.cfg.Timestamps.check(t); err != nil {
			return nil, err
		}
		ts = &t
	}

	var vd *Verified
	if wsseSig != nil {
		vd, err = v.verifyHeader(ctx, sec, header, body, scan.ids, ts, at)
	} else {
		vd, err = v.verifyEnveloped(ctx, envSig, data, sec, scan.ids, at)
	}
	if err != nil {
		return nil, err
	}
	vd.Timestamp = ts
	return vd, nil
}

// verifyHeader verifies the signature of the Security header. Its References must cover the Body
// exactly once, and may cover the Security header's Timestamp and WS-Addressing headers; nothing
// else.
func (v *Verifier) verifyHeader(ctx context.Context, sec *securityHeader, header, body *etree.Element, ids idIndex, ts *Timestamp, at time.Time) (*Verified, error) {
	covered := map[*etree.Element]bool{}
	var bodyRef *reference
	resolve := func(ref *reference) (*etree.Element, error) {
		t, ok := ids[strings.TrimPrefix(ref.uri, "#")]
		if !ok {
			return nil, siobroker.Errorf(siobroker.CodeSigReference, "the Reference URI %q names no element of the message", ref.uri)
		}
		var what string
		switch {
		case t.el == body:
			what, bodyRef = "the Body", ref
		case sec.timestamp != nil && t.el == sec.timestamp:
			what = "the wsu:Timestamp"
		case isAddressingHeader(t.el, header):
			what = "the WS-Addressing header " + t.el.Tag
		default:
			return nil, siobroker.Errorf(siobroker.CodeSigReference,
				"the Reference URI %q names %s, which a header signature may not cover (the Body, the wsu:Timestamp of the Security header and WS-Addressing headers may be)", ref.uri, t.el.FullTag())
		}
		if !t.wsu && !t.plain {
			return nil, siobroker.Errorf(siobroker.CodeSigReference, "%s is named by an identifier other than wsu:Id or Id", what)
		}
		if covered[t.el] {
			return nil, siobroker.Errorf(siobroker.CodeSigReference, "%s is referenced more than once", what)
		}
		covered[t.el] = true
		return t.el, nil
	}
	res, err := v.verifySignature(ctx, sec.signature, sec, ids, resolve, body, at)
	if err != nil {
		return nil, err
	}
	defer res.last.release()
	if bodyRef == nil {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "no Reference of the header signature covers the Body")
	}
	if ts != nil {
		ts.Signed = covered[sec.timestamp]
	}
	if v.cfg.Timestamps.Require && (ts == nil || !ts.Signed) {
		return nil, siobroker.Errorf(siobroker.CodeTimestamp, "this broker requires a wsu:Timestamp in the wsse:Security header, covered by the signature")
	}
	signed, err := parseCanonical(res.last.Bytes())
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "canonical form of the Body does not parse")
	}
	placement := PlacementWSSE
	switch {
	case res.key.byRef && ts != nil:
		placement = PlacementWSSETokenTimestamp
	case res.key.byRef:
		placement = PlacementWSSEToken
	}
	return res.verified(placement, signed, bodyRef.digestMethod), nil
}

// verifyEnveloped verifies an enveloped signature: one Reference, to the data element that holds
// it, with the enveloped-signature transform.
func (v *Verifier) verifyEnveloped(ctx context.Context, sig, data *etree.Element, sec *securityHeader, ids idIndex, at time.Time) (*Verified, error) {
	id := data.SelectAttrValue("Id", "")
	var only *reference
	resolve := func(ref *reference) (*etree.Element, error) {
		what := data.Tag + " element"
		switch {
		case only != nil:
			return nil, siobroker.Errorf(siobroker.CodeSigReference, "SignedInfo has more than one Reference; exactly one is accepted in the enveloped placement")
		case id == "":
			return nil, siobroker.Errorf(siobroker.CodeSigReference, "the signed %s carries no Id", what)
		case ref.uri != "#"+id:
			return nil, siobroker.Errorf(siobroker.CodeSigReference, "the Reference URI %q does not name the %s (Id %q)", ref.uri, what, id)
		case !ref.enveloped:
			return nil, siobroker.Errorf(siobroker.CodeSigReference, "the enveloped signature does not apply the enveloped-signature transform")
		}
		only = ref
		return data, nil
	}
	if v.cfg.Timestamps.Require {
		// An enveloped signature covers the query alone: no Timestamp can be signed with it.
		return nil, siobroker.Errorf(siobroker.CodeTimestamp,
			"this broker requires a signed wsu:Timestamp, which an enveloped signature cannot cover; sign in the wsse:Security header")
	}
	res, err := v.verifySignature(ctx, sig, sec, ids, resolve, data, at)
	if err != nil {
		return nil, err
	}
	defer res.last.release()
	signed, err := parseCanonical(res.last.Bytes())
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "canonical form of %s does not parse", only.uri)
	}
	return res.verified(PlacementEnveloped, signed, only.digestMethod), nil
}

// signatureResult is what verifySignature established.
type signatureResult struct {
	sigAlg string
	key    signerKey
	cert   *x509.Certificate
	iin    string
	// last holds the digested bytes of the element verifySignature was given as last (the Body,
	// or the data element), in a pooled buffer: the caller parses them and then releases it.
	last pooledC14N
}

func (r signatureResult) verified(p Placement, signed *etree.Element, digestMethod string) *Verified {
	return &Verified{
		Placement: p, Signed: signed, Certificate: r.cert, CertificateInMessage: len(r.key.certs) > 0,
		KeyForm: r.key.form, SignerIIN: r.iin, SignatureMethod: r.sigAlg, DigestMethod: digestMethod,
	}
}

// verifySignature checks sig: its SignedInfo, every Reference (resolve names the element each one
// may cover, or refuses it), the signer's key from KeyInfo, the SignatureValue and the
// certificate chain, and last the digests, last of all that of last (the Body, or the data
// element), the costliest.
//
// The order puts the cheap checks first, because until the SignatureValue and the chain have
// been verified the sender is anyone: the algorithm allowlist and the References' targets (a
// look-up), then one signature verification over the small SignedInfo and the chain, and only
// then the canonicalisation of what the References cover. An unsigned envelope, or one with an
// untrusted certificate or a SignatureValue that does not verify, never pays for canonicalising
// the Body (issue 16). Every check still has to pass, so the order changes only which refusal
// an envelope with several faults gets.
func (v *Verifier) verifySignature(ctx context.Context, sig *etree.Element, sec *securityHeader, ids idIndex,
	resolve func(*reference) (*etree.Element, error), last *etree.Element, at time.Time) (signatureResult, error) {
	var res signatureResult
	parts, err := splitSignature(sig)
	if err != nil {
		return res, err
	}
	canonicalSignedInfo, refs, err := readCanonicalSignedInfo(parts.signedInfo, &res)
	if err != nil {
		return res, err
	}
	// The canonical SignedInfo is read only until the SignatureValue has been checked over it.
	defer canonicalSignedInfo.release()
	targets := make([]*etree.Element, len(refs))
	for i := range refs {
		if refs[i].uri == "" {
			return res, siobroker.Errorf(siobroker.CodeSigReference, "the Reference URI %q is not a same-document #Id reference", refs[i].uri)
		}
		if targets[i], err = resolve(&refs[i]); err != nil {
			return res, err
		}
	}
	if res.key, err = readKeyInfo(parts.keyInfo, sec, ids); err != nil {
		return res, err
	}
	if res.cert, err = v.chooseSigner(ctx, res.key, res.sigAlg, canonicalSignedInfo.Bytes(), parts.signatureValue, at); err != nil {
		return res, err
	}
	if v.cfg.AnySigner {
		res.iin, _ = SubjectIIN(res.cert)
	} else {
		if res.iin, err = SubjectIIN(res.cert); err != nil {
			return res, err
		}
		// After the IIN, so that a certificate without one is refused as before (SIO-CERT-NO-IIN):
		// what is new here are certificates that carry a person's IIN but are not meant to sign
		// requests with (a CA's, a TLS or authentication one).
		if err := v.cfg.Usage.Check(res.cert); err != nil {
			return res, err
		}
	}
	res.last, err = v.digestReferences(sig, refs, targets, last)
	return res, err
}

// readCanonicalSignedInfo canonicalises SignedInfo as it sits in the document and reads
// everything back from the canonical bytes, so that what is interpreted is exactly what the
// SignatureValue covers. It sets res.sigAlg and returns the canonical bytes, which the caller
// releases, and the References.
func readCanonicalSignedInfo(si *etree.Element, res *signatureResult) (pooledC14N, []reference, error) {
	var none pooledC14N
	cmEls := children(si, nsDSig, "CanonicalizationMethod")
	if len(cmEls) != 1 {
		return none, nil, siobroker.Errorf(siobroker.CodeSigInvalid, "SignedInfo has %d CanonicalizationMethod elements, expected one", len(cmEls))
	}
	cmAlg := cmEls[0].SelectAttrValue("Algorithm", "")
	cm, ok := c14nMethods[cmAlg]
	if !ok {
		return none, nil, siobroker.Errorf(siobroker.CodeSigAlgorithm, "canonicalization algorithm %s is not allowed", cmAlg)
	}
	cmPrefixes, err := inclusivePrefixList(cmEls[0], cm)
	if err != nil {
		return none, nil, err
	}
	canonical, err := canonicalizePooled(si, cm, cmPrefixes, nil)
	if err != nil {
		return none, nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "SignedInfo cannot be canonicalised")
	}
	signedInfo, err := parseCanonical(canonical.Bytes())
	if err != nil {
		canonical.release()
		return none, nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "canonical SignedInfo does not parse")
	}
	sigAlg, refs, err := readSignedInfo(signedInfo, cmAlg)
	res.sigAlg = sigAlg
	if err != nil {
		canonical.release()
		return none, refs, err
	}
	return canonical, refs, nil
}

// digestReferences checks the digest of every Reference of sig (targets are the elements they
// cover, in order, last's after all the others) and returns the digested bytes of last, in a
// pooled buffer the caller releases; those of the other elements are dropped once hashed. A bare
// "#id" URI selects the element without comments, whatever the canonicalisation says. The
// enveloped-signature transform removes the signature from what it covers, and changes nothing
// where the signature is not inside (node-soap applies it to every Reference).
func (v *Verifier) digestReferences(sig *etree.Element, refs []reference, targets []*etree.Element, last *etree.Element) (pooledC14N, error) {
	var kept pooledC14N
	order := make([]int, 0, len(refs))
	for i := range refs {
		if targets[i] != last {
			order = append(order, i)
		}
	}
	for i := range refs {
		if targets[i] == last {
			order = append(order, i)
		}
	}
	for _, i := range order {
		ref, target := &refs[i], targets[i]
		var exclude *etree.Element
		if ref.enveloped {
			exclude = sig
		}
		if v.onDigest != nil {
			v.onDigest(target)
		}
		content, err := canonicalizePooled(target, c14nMethod{exclusive: ref.c14n.exclusive}, ref.prefixList, exclude)
		if err != nil {
			kept.release()
			return pooledC14N{}, siobroker.Wrap(siobroker.CodeSigInvalid, err, "%s cannot be canonicalised", ref.uri)
		}
		h := digestMethods[ref.digestMethod]()
		h.Write(content.Bytes())
		if subtle.ConstantTimeCompare(h.Sum(nil), ref.digestValue) != 1 {
			content.release()
			kept.release()
			return pooledC14N{}, siobroker.Errorf(siobroker.CodeSigInvalid, "digest of %s does not match", ref.uri)
		}
		if target != last {
			content.release()
			continue
		}
		// resolve refuses an element referenced twice; should one get through, the later
		// bytes are kept, as the map of them used to keep.
		kept.release()
		kept = content
	}
	return kept, nil
}

// chooseSigner returns the certificate whose key verifies the SignatureValue over the canonical
// SignedInfo and which chains to the trusted roots at time at. An identifier may name more than
// one certificate the broker holds (a key certified twice): the first that verifies and chains
// wins, and otherwise the first refusal stands.
func (v *Verifier) chooseSigner(ctx context.Context, key signerKey, sigAlg string, canonicalSignedInfo []byte,
	signatureValue *etree.Element, at time.Time) (*x509.Certificate, error) {
	candidates, err := key.resolve(ctx, v.cfg.Directory)
	if err != nil {
		return nil, err
	}
	var intermediates []*x509.Certificate
	if len(key.certs) > 0 {
		candidates, intermediates = candidates[:1], candidates[1:]
	}
	sigText, ok := textContent(signatureValue)
	if !ok {
		return nil, siobroker.Errorf(siobroker.CodeSigInvalid, "SignatureValue is not plain text")
	}
	sigValue, err := base64.StdEncoding.DecodeString(stripSpace(sigText))
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeSigInvalid, err, "SignatureValue is not base64")
	}
	if v.cfg.Trust == nil {
		return nil, siobroker.Errorf(siobroker.CodeInternal, "the verifier has no trust store")
	}
	var firstErr error
	for _, cert := range candidates {
		// The path to a root first: without a network question, and remembered for a signer seen
		// before, it refuses a certificate of the sender's own making (a trusted CA's name is
		// public) at the price of one verification, not two with the SignatureValue's. Then the
		// SignatureValue, and only for a signature that verified the certificate's status, which
		// may ask an OCSP responder.
		path, err := v.cfg.Trust.verifyPath(cert, intermediates, at)
		if err == nil {
			err = verifySignatureValue(cert, sigAlg, signatureMethods[sigAlg], canonicalSignedInfo, sigValue)
		}
		if err == nil {
			err = v.cfg.Trust.checkStatus(ctx, path.chains, cert, at)
		}
		if err == nil {
			v.cfg.Trust.rememberPath(path)
			return cert, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
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
		return p, siobroker.Errorf(siobroker.CodeKeyInfo, "ds:Signature has no KeyInfo naming the signer's certificate")
	}
	return p, nil
}

// reference is one parsed Reference of a SignedInfo.
type reference struct {
	uri          string
	enveloped    bool // the enveloped-signature transform is applied
	c14n         c14nMethod
	prefixList   string
	digestMethod string
	digestValue  []byte
}

// readSignedInfo checks the structure of the canonical SignedInfo and returns its signature
// algorithm and its References, in order.
func readSignedInfo(si *etree.Element, cmAlg string) (string, []reference, error) {
	kids := si.ChildElements()
	if len(kids) > maxSignedInfoChildren {
		return "", nil, siobroker.Errorf(siobroker.CodeSigReference, "SignedInfo has %d child elements; at most %d References are accepted", len(kids), maxReferences)
	}
	var cms, sms, refEls []*etree.Element
	for _, c := range kids {
		switch {
		case is(c, nsDSig, "CanonicalizationMethod"):
			cms = append(cms, c)
		case is(c, nsDSig, "SignatureMethod"):
			sms = append(sms, c)
		case is(c, nsDSig, "Reference"):
			refEls = append(refEls, c)
		default:
			return "", nil, siobroker.Errorf(siobroker.CodeSigInvalid, "SignedInfo carries an unexpected element %s", c.FullTag())
		}
	}
	if len(cms) != 1 || cms[0].SelectAttrValue("Algorithm", "") != cmAlg {
		return "", nil, siobroker.Errorf(siobroker.CodeSigInvalid, "SignedInfo must carry one CanonicalizationMethod")
	}
	if len(sms) != 1 {
		return "", nil, siobroker.Errorf(siobroker.CodeSigInvalid, "SignedInfo has %d SignatureMethod elements, expected one", len(sms))
	}
	sigAlg := sms[0].SelectAttrValue("Algorithm", "")
	if _, ok := signatureMethods[sigAlg]; !ok {
		return "", nil, siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s is not allowed", sigAlg)
	}
	if len(sms[0].ChildElements()) != 0 {
		// HMACOutputLength and other parameters: none of the allowed algorithms takes any.
		return "", nil, siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s takes no parameters", sigAlg)
	}
	if len(refEls) == 0 { // more than maxReferences are refused with the children above
		return "", nil, siobroker.Errorf(siobroker.CodeSigReference, "SignedInfo has no Reference")
	}
	refs := make([]reference, len(refEls))
	for i, r := range refEls {
		ref, err := readReference(r)
		if err != nil {
			return "", nil, err
		}
		refs[i] = ref
	}
	return sigAlg, refs, nil
}

func readReference(r *etree.Element) (reference, error) {
	ref := reference{c14n: c14nMethods[AlgC14N10]} // the default when no canonicalising transform is given
	uriAttr := r.SelectAttr("URI")
	if uriAttr == nil {
		return ref, siobroker.Errorf(siobroker.CodeSigReference, "the Reference has no URI")
	}
	ref.uri = uriAttr.Value
	// "" is the whole document, which only VerifyDocument takes; verifySignature refuses it.
	if ref.uri != "" && (!strings.HasPrefix(ref.uri, "#") || len(ref.uri) < 2) {
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

// verifySignatureValue checks value over the canonical SignedInfo with the certificate's key.
func verifySignatureValue(cert *x509.Certificate, alg string, m signatureMethod, signedInfo, value []byte) error {
	if m.key == keyGOST || gostx509.HasGOSTKey(cert) {
		return verifyGOSTSignatureValue(cert, alg, m, signedInfo, value)
	}
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

// maxCanonicalDepth is the nesting etree's reader took by default (1024), which parseCanonical
// keeps: the reader's own limit (http.max_depth) may be set higher.
const maxCanonicalDepth = 1024

// parseCanonical parses canonical bytes into a fresh document and returns its root. The bytes
// are this process's own canonical form of a document that passed the reader's limits; only the
// nesting bound of etree's reader, which parsed them before, is kept (maxCanonicalDepth), so that
// what verifies is what verified then.
func parseCanonical(b []byte) (*etree.Element, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	depth := 0
	doc, err := xmltree.Parse(dec, func(tok xml.Token, _ int64) error {
		switch tok.(type) {
		case xml.StartElement:
			if depth++; depth > maxCanonicalDepth {
				return fmt.Errorf("elements are nested deeper than %d", maxCanonicalDepth)
			}
		case xml.EndElement:
			depth--
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parse canonical XML: %w", err)
	}
	if doc.Root() == nil {
		return nil, fmt.Errorf("parse canonical XML: no root element")
	}
	return doc.Root(), nil
}
