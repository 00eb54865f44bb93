package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// Signer signs envelopes with one certificate and its private key. It is safe for concurrent use
// (the documents it is given are not).
type Signer struct {
	cert  *x509.Certificate
	key   crypto.Signer
	chain []*x509.Certificate
	iin   string
	// certTexts is the base64 of cert and then of each of chain, as KeyInfo carries them: encoded
	// once, not for every reply (issue 20). It holds the certificates it was encoded from, so a
	// copy of the Signer given another certificate does not send the old one.
	certTexts certTextCache

	signatureMethod string
	digestMethod    string
	ecdsaSize       int // coordinate size for r||s; 0 for RSA
	// gost is the key algorithm of a GOST key (gostsig.go), 0 for RSA and ECDSA.
	gost gost.KeyAlgorithm

	clock siobroker.Clock // the time of the wsu:Timestamp of PlacementWSSEToken
}

// WithClock returns a copy of s that takes the time of its wsu:Timestamps from clock (by default
// the system clock).
func (s *Signer) WithClock(clock siobroker.Clock) *Signer {
	c := *s
	c.clock = clock
	return &c
}

// NewSigner returns a signer for cert and key; chain (intermediates) is added to KeyInfo after
// cert. RSA keys sign with rsa-sha256, ECDSA P-256 keys with ecdsa-sha256 (r||s); the digest is
// sha256. GOST keys of the national PKI sign with the GOST algorithm of their kind and its hash
// as the digest (AlgGOST2015_512 and AlgDigestGOST2015_512, and so on).
func NewSigner(cert *x509.Certificate, key crypto.Signer, chain ...*x509.Certificate) (*Signer, error) {
	if cert == nil || key == nil {
		return nil, errors.New("signer: certificate and key are required")
	}
	if gostx509.HasGOSTKey(cert) {
		return newGOSTSigner(cert, key, chain)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("signer: the private key does not belong to certificate %q", cert.Subject.String())
	}
	s := &Signer{cert: cert, key: key, chain: append([]*x509.Certificate(nil), chain...), digestMethod: AlgDigestSHA256,
		clock: siobroker.SystemClock{}}
	s.certTexts = newCertTextCache(s.cert, s.chain)
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("signer: RSA key of %d bits is too short", k.N.BitLen())
		}
		s.signatureMethod = AlgRSASHA256
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signer: ECDSA curve %s is not supported; use P-256", k.Curve.Params().Name)
		}
		s.signatureMethod = AlgECDSASHA256
		s.ecdsaSize = 32
	default:
		return nil, fmt.Errorf("signer: %T keys are not supported", cert.PublicKey)
	}
	// The broker's own certificate carries a BIN, not an IIN: a missing IIN is fine here.
	if iin, err := SubjectIIN(cert); err == nil {
		s.iin = iin
	}
	return s, nil
}

// LoadSigner reads a PEM certificate (optionally followed by its intermediates) and a PEM private
// key in PKCS#8, PKCS#1 or SEC1 form; a GOST key in unencrypted PKCS#8 (gost.ParsePKCS8PrivateKey).
func LoadSigner(certFile, keyFile string) (*Signer, error) {
	certs, err := readCertificates(certFile)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	key, err := readPrivateKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return NewSigner(certs[0], key, certs[1:]...)
}

func readPrivateKey(file string) (crypto.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM private key block", file)
		}
		var key any
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				// crypto/x509 knows no GOST key: signing/gost does, and says when it is not one.
				gk, _, gerr := gost.ParsePKCS8PrivateKey(block.Bytes)
				switch {
				case gerr == nil:
					key, err = gk, nil
				case !errors.Is(gerr, gost.ErrUnknownAlgorithm):
					err = gerr
				}
			}
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%s: encrypted private keys are not supported", file)
		default:
			continue // e.g. "EC PARAMETERS" written by openssl ecparam
		}
		if err != nil {
			return nil, fmt.Errorf("%s: parse %s: %w", file, block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: %T is not a signing key", file, key)
		}
		return signer, nil
	}
}

// Certificate returns the signer's certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// IIN returns the IIN of the signer's certificate subject, or "" if it carries none.
func (s *Signer) IIN() string { return s.iin }

// Sign signs doc in placement p. PlacementEnveloped signs the element carried in
// requestData|responseData/data.
func (s *Signer) Sign(doc *etree.Document, p Placement) error {
	switch p {
	case PlacementWSSE:
		return s.SignWSSE(doc)
	case PlacementWSSEToken, PlacementWSSETokenTimestamp:
		return s.signHeader(doc, p)
	case PlacementEnveloped:
		_, body, err := envelopeParts(doc)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		el, err := dataElement(body)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		return s.SignEnveloped(el)
	default:
		return fmt.Errorf("sign: unknown placement %q", p)
	}
}

// SignWSSE gives the Body a wsu:Id if it has none and adds a ds:Signature over it in
// Header/wsse:Security, creating both if needed. KeyInfo carries the certificates as ds:X509Data.
func (s *Signer) SignWSSE(doc *etree.Document) error {
	return s.signHeader(doc, PlacementWSSE)
}

// ReplyTimestampTTL is how long after its creation the wsu:Timestamp of a
// PlacementWSSETokenTimestamp signature expires: WSS4J's default time to live.
const ReplyTimestampTTL = 5 * time.Minute

func (s *Signer) signHeader(doc *etree.Document, p Placement) error {
	if doc == nil {
		return fmt.Errorf("sign %s: nil document", p)
	}
	header, body, err := envelopeParts(doc)
	if err != nil {
		return fmt.Errorf("sign %s: %w", p, err)
	}
	root := doc.Root()
	soapPrefix := root.Space // the prefix the Envelope is written with; "" if it uses a default namespace
	if header == nil {
		header = etree.NewElement(qualified(soapPrefix, "Header"))
		root.InsertChildAt(body.Index(), header)
	}
	var security *etree.Element
	switch secs := children(header, nsWSSE, "Security"); len(secs) {
	case 0:
		security = header.CreateElement("wsse:Security")
		security.CreateAttr("xmlns:wsse", nsWSSE)
		if soapPrefix == "" {
			soapPrefix = "soapenv"
			security.CreateAttr("xmlns:soapenv", schemas.NSSoapEnv)
		}
		security.CreateAttr(soapPrefix+":mustUnderstand", "1")
	case 1:
		security = secs[0]
		if len(children(security, nsDSig, "Signature")) > 0 {
			return fmt.Errorf("sign %s: wsse:Security already carries a ds:Signature", p)
		}
	default:
		return fmt.Errorf("sign %s: the Header has %d wsse:Security elements", p, len(secs))
	}
	id, err := ensureBodyID(doc, body)
	if err != nil {
		return fmt.Errorf("sign %s: %w", p, err)
	}
	ids, targets := []string{id}, []*etree.Element{body}
	keyInfo := s.x509DataKeyInfo()
	var added []*etree.Element
	if p == PlacementWSSEToken || p == PlacementWSSETokenTimestamp {
		// As WSS4J lays a header out: the Timestamp first, then the token, then the signature
		// that refers to both.
		if !hasWSUPrefix(security) {
			security.CreateAttr("xmlns:wsu", nsWSU)
		}
		if p == PlacementWSSETokenTimestamp {
			ts := s.timestamp(freshID(root, "TS-"+id))
			security.AddChild(ts)
			added = append(added, ts)
			ids, targets = append(ids, ts.SelectAttrValue("wsu:Id", "")), append(targets, ts)
		}
		bst := s.binarySecurityToken(freshID(root, "X509-"+id))
		security.AddChild(bst)
		added = append(added, bst)
		keyInfo = tokenReferenceKeyInfo(bst.SelectAttrValue("wsu:Id", ""))
	}
	sig := s.newSignature(ids, false, keyInfo)
	security.AddChild(sig)
	if err := s.complete(sig, targets, nil); err != nil {
		security.RemoveChild(sig)
		for _, el := range added {
			security.RemoveChild(el)
		}
		return fmt.Errorf("sign %s: %w", p, err)
	}
	return nil
}

// hasWSUPrefix reports whether the prefix wsu is bound to the WS-Security utility namespace at el.
func hasWSUPrefix(el *etree.Element) bool {
	uri, _ := namespacesInScope(el).lookup("wsu")
	return uri == nsWSU
}

// timestamp returns a wsu:Timestamp created now. WS-Security 1.1 (§10) asks for UTC here, so these
// two times are written in UTC, unlike every other time of the broker.
func (s *Signer) timestamp(id string) *etree.Element {
	now := s.clock.Now().UTC()
	ts := etree.NewElement("wsu:Timestamp")
	ts.CreateAttr("wsu:Id", id)
	ts.CreateElement("wsu:Created").SetText(now.Format(timestampLayout))
	ts.CreateElement("wsu:Expires").SetText(now.Add(ReplyTimestampTTL).Format(timestampLayout))
	return ts
}

// timestampLayout is xs:dateTime in UTC with milliseconds, as WSS4J writes it.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// binarySecurityToken returns the signer's certificate as a wsse:BinarySecurityToken.
func (s *Signer) binarySecurityToken(id string) *etree.Element {
	bst := etree.NewElement("wsse:BinarySecurityToken")
	bst.CreateAttr("EncodingType", EncodingBase64Binary)
	bst.CreateAttr("ValueType", ValueTypeX509v3)
	bst.CreateAttr("wsu:Id", id)
	bst.SetText(s.certificateTexts()[0])
	return bst
}

// tokenReferenceKeyInfo returns a ds:KeyInfo whose SecurityTokenReference names the token bstID.
func tokenReferenceKeyInfo(bstID string) *etree.Element {
	ki := etree.NewElement("ds:KeyInfo")
	ref := ki.CreateElement("wsse:SecurityTokenReference").CreateElement("wsse:Reference")
	ref.CreateAttr("URI", "#"+bstID)
	ref.CreateAttr("ValueType", ValueTypeX509v3)
	return ki
}

// x509DataKeyInfo returns a ds:KeyInfo carrying the signer's certificate and its chain.
func (s *Signer) x509DataKeyInfo() *etree.Element {
	ki := etree.NewElement("ds:KeyInfo")
	x509Data := ki.CreateElement("ds:X509Data")
	for _, text := range s.certificateTexts() {
		x509Data.CreateElement("ds:X509Certificate").SetText(text)
	}
	return ki
}

// certificateTexts returns the base64 of the signer's certificate and then of its chain.
func (s *Signer) certificateTexts() []string {
	if s.certTexts.cert == s.cert && slices.Equal(s.certTexts.chain, s.chain) {
		return s.certTexts.texts
	}
	return newCertTextCache(s.cert, s.chain).texts
}

// certTextCache is the base64 of cert and then of each of chain.
type certTextCache struct {
	cert  *x509.Certificate
	chain []*x509.Certificate
	texts []string
}

func newCertTextCache(cert *x509.Certificate, chain []*x509.Certificate) certTextCache {
	c := certTextCache{cert: cert, chain: slices.Clone(chain), texts: make([]string, 0, 1+len(chain))}
	for _, x := range append([]*x509.Certificate{cert}, chain...) {
		c.texts = append(c.texts, base64.StdEncoding.EncodeToString(x.Raw))
	}
	return c
}

// SignEnveloped gives el an Id if it has none and inserts a ds:Signature over it as its first
// child.
func (s *Signer) SignEnveloped(el *etree.Element) error {
	if el == nil {
		return errors.New("sign enveloped: nil element")
	}
	if is(firstChildElement(el), nsDSig, "Signature") {
		return fmt.Errorf("sign enveloped: %s already carries a ds:Signature", el.Tag)
	}
	id := el.SelectAttrValue("Id", "")
	if id == "" {
		id = freshID(rootOf(el), "id-"+el.Tag)
		el.CreateAttr("Id", id)
	}
	sig := s.newSignature([]string{id}, true, s.x509DataKeyInfo())
	el.InsertChildAt(0, sig)
	if err := s.complete(sig, []*etree.Element{el}, sig); err != nil {
		el.RemoveChild(sig)
		return fmt.Errorf("sign enveloped: %w", err)
	}
	return nil
}

// newSignature builds the ds:Signature skeleton: SignedInfo with a Reference per id and empty
// DigestValues, an empty SignatureValue and keyInfo. No white space is added, so nothing depends
// on how a verifier treats it.
func (s *Signer) newSignature(ids []string, enveloped bool, keyInfo *etree.Element) *etree.Element {
	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", nsDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", AlgExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", s.signatureMethod)
	for _, id := range ids {
		ref := si.CreateElement("ds:Reference")
		ref.CreateAttr("URI", "#"+id)
		transforms := ref.CreateElement("ds:Transforms")
		if enveloped {
			transforms.CreateElement("ds:Transform").CreateAttr("Algorithm", AlgEnvelopedSignature)
		}
		transforms.CreateElement("ds:Transform").CreateAttr("Algorithm", AlgExcC14N)
		ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", s.digestMethod)
		ref.CreateElement("ds:DigestValue")
	}
	sig.CreateElement("ds:SignatureValue")
	sig.AddChild(keyInfo)
	return sig
}

// complete fills in the DigestValues (one per target, in the order of the References) and the
// SignatureValue of sig, which already sits in the document, using the same canonicaliser the
// verifier uses.
func (s *Signer) complete(sig *etree.Element, targets []*etree.Element, exclude *etree.Element) error {
	si := sig.SelectElement("ds:SignedInfo")
	refs := si.SelectElements("ds:Reference")
	if len(refs) != len(targets) {
		return fmt.Errorf("%d References for %d elements", len(refs), len(targets))
	}
	for i, target := range targets {
		content, err := canonicalizePooled(target, c14nMethods[AlgExcC14N], "", exclude)
		if err != nil {
			return fmt.Errorf("canonicalise %s: %w", target.Tag, err)
		}
		h := digestMethods[s.digestMethod]()
		h.Write(content.Bytes())
		content.release()
		refs[i].SelectElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
	canonicalSI, err := canonicalizePooled(si, c14nMethods[AlgExcC14N], "", nil)
	if err != nil {
		return fmt.Errorf("canonicalise SignedInfo: %w", err)
	}
	value, err := s.signBytes(canonicalSI.Bytes())
	canonicalSI.release()
	if err != nil {
		return err
	}
	sig.SelectElement("ds:SignatureValue").SetText(base64.StdEncoding.EncodeToString(value))
	return nil
}

// signBytes signs data with the signer's SignatureMethod, in XML-DSig encoding.
func (s *Signer) signBytes(data []byte) ([]byte, error) {
	if s.gost != 0 {
		return s.signGOST(data)
	}
	hash := signatureMethods[s.signatureMethod].hash
	h := hash.New()
	h.Write(data)
	value, err := s.key.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		return nil, fmt.Errorf("sign SignedInfo: %w", err)
	}
	if s.ecdsaSize > 0 {
		return derToRS(value, s.ecdsaSize)
	}
	return value, nil
}

// ensureBodyID returns the Body's wsu:Id, adding one (and the wsu namespace) if it has none.
func ensureBodyID(doc *etree.Document, body *etree.Element) (string, error) {
	scope := namespacesInScope(body)
	for _, a := range body.Attr {
		if a.Key == "Id" && a.Space != "" && a.Space != "xmlns" && scope.bound(a.Space) == nsWSU {
			if a.Value == "" {
				return "", errors.New("the Body's wsu:Id is empty")
			}
			return a.Value, nil
		}
	}
	prefix := ""
	for p, b := range scope.bindings {
		if b[len(b)-1] == schemas.NSWSU && p != "" {
			prefix = p
			break
		}
	}
	if prefix == "" {
		if _, taken := scope.lookup("wsu"); taken {
			return "", errors.New("the prefix wsu is bound to another namespace on the Body")
		}
		prefix = "wsu"
		body.CreateAttr("xmlns:wsu", schemas.NSWSU)
	}
	id := freshID(doc.Root(), "id-body")
	body.CreateAttr(prefix+":Id", id)
	return id, nil
}

// freshID returns want, or want with a random suffix if some element already uses it.
func freshID(root *etree.Element, want string) string {
	used := map[string]bool{}
	var walk func(*etree.Element)
	walk = func(el *etree.Element) {
		for _, a := range el.Attr {
			if idAttrNames[a.Key] {
				used[a.Value] = true
			}
		}
		for _, c := range el.ChildElements() {
			walk(c)
		}
	}
	walk(root)
	id := want
	for used[id] {
		var b [6]byte
		_, _ = rand.Read(b[:])
		id = want + "-" + hex.EncodeToString(b[:])
	}
	return id
}

// rootOf returns the topmost ancestor of el (the Document's own element if el is in a document).
func rootOf(el *etree.Element) *etree.Element {
	for el.Parent() != nil {
		el = el.Parent()
	}
	return el
}

func qualified(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}
