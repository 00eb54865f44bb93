package signing

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

// VerifyDocument verifies the XML-DSig signatures of any document, as `xmlsec1 --verify` does
// and as `siobroker verify` shows it: not a SOAP request of the broker's placements, but any
// enveloped or WS-Security signature of the algorithms the broker accepts (algorithms.go). It is
// for people checking what a system signs, not for the signed path: Verifier.Verify is.
//
// What it checks of each ds:Signature is what the broker checks of a request's, less the rules of
// the broker's placements: SignedInfo read from its canonical form, the algorithm allowlist, the
// key from KeyInfo (any form; a key identifier resolved against DocumentOptions.Directory, the
// trusted certificates for the command), the SignatureValue, the chain to DocumentOptions.Trust
// with its CRLs at DocumentOptions.At, then every Reference's digest. A Reference names the whole
// document (URI="") or an element by its Id, ID, id, xml:id or one of IDAttributes; an identifier
// carried twice, a DOCTYPE, or a Reference to anything else (XPointer, another document) is
// refused. Key usage and IIN are reported, not required. ds:Object is refused, as in requests.
//
// Co-signatures. Kalkan adds a signature to an enveloped document after those already there,
// each over the whole document as it then was, so an earlier signature's digest covers nothing of
// the later ones; NCANode (XML.verify) checks them last first, removing each once checked. A
// signature whose digest does not match the document is therefore checked once more without the
// ds:Signature elements that follow it, and when it verifies so, DocumentSignature.LaterRemoved
// says how many were removed for it. Every signature is still checked on its own, so a later one
// that does not verify makes the document invalid.
func VerifyDocument(ctx context.Context, doc *etree.Document, opts DocumentOptions) ([]DocumentSignature, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if doc == nil || doc.Root() == nil {
		return nil, siobroker.Errorf(siobroker.CodeMalformed, "the document has no root element")
	}
	for _, t := range doc.Child {
		if _, ok := t.(*etree.Directive); ok {
			return nil, siobroker.Errorf(siobroker.CodeDoctype, "the document has a DOCTYPE, which is not read: name identifier attributes with IDAttributes (--id-attr)")
		}
	}
	sigs := scanDocument(doc.Root()).signatures
	if len(sigs) == 0 {
		return nil, siobroker.Errorf(siobroker.CodeSigMissing, "the document carries no ds:Signature")
	}
	if opts.Signature > len(sigs) {
		return nil, fmt.Errorf("signing: signature %d asked for, and the document has %d", opts.Signature, len(sigs))
	}
	if _, err := documentIDs(doc.Root(), opts.IDAttributes); err != nil {
		return nil, err
	}
	var out []DocumentSignature
	for i := range sigs {
		if opts.Signature != 0 && opts.Signature != i+1 {
			continue
		}
		ds := verifyDocumentSignature(ctx, doc, i, opts, false)
		if ds.digestFailed && i+1 < len(sigs) {
			if again := verifyDocumentSignature(ctx, doc, i, opts, true); again.Err == nil {
				ds = again
			}
		}
		out = append(out, ds)
	}
	return out, nil
}

// DocumentOptions is what VerifyDocument holds signatures to.
type DocumentOptions struct {
	// Trust holds the roots (CA certificates, or a signer's own certificate pinned as its trust
	// anchor) and the CRLs. Required.
	Trust *TrustStore
	// Directory resolves key identifiers that carry no certificate; nil refuses them.
	Directory CertificateDirectory
	// IDAttributes are more attribute names (local names, in any namespace) that carry the
	// identifiers References name, beside Id, ID, id and xml:id.
	IDAttributes []string
	// At is the time certificates and CRLs are checked at.
	At time.Time
	// Signature, when not 0, is the one signature to verify: 1 is the first ds:Signature in
	// document order.
	Signature int
}

func (o DocumentOptions) validate() error {
	switch {
	case o.Trust == nil:
		return errors.New("signing: DocumentOptions.Trust is required")
	case o.At.IsZero():
		return errors.New("signing: DocumentOptions.At is required")
	case o.Signature < 0:
		return errors.New("signing: DocumentOptions.Signature is negative")
	}
	for _, a := range o.IDAttributes {
		if a == "" || strings.ContainsAny(a, ": \t") {
			return fmt.Errorf("signing: identifier attribute %q is not a local name", a)
		}
	}
	return nil
}

// DocumentSignature is what VerifyDocument found of one ds:Signature. Err is nil when it verified;
// otherwise the fields hold what was read before the refusal.
type DocumentSignature struct {
	Index int    // 1 is the first ds:Signature in document order
	Path  string // where it sits, e.g. /Envelope/Header/Security/Signature
	// Certificate is the signer's: the one that verified, or the first the message carried.
	Certificate            *x509.Certificate
	KeyForm                KeyForm
	SignatureMethod        string
	CanonicalizationMethod string
	References             []DocumentReference
	// LaterRemoved is the number of later ds:Signature elements it was checked without (a
	// Kalkan co-signature; see VerifyDocument), 0 when it verified on the document as it is.
	LaterRemoved int
	Err          error

	digestFailed bool // the refusal was a digest that does not match
}

// DocumentReference is one Reference of a signature.
type DocumentReference struct {
	URI          string
	Covers       string // the path of the element, or "the whole document"
	Enveloped    bool   // the enveloped-signature transform is applied
	Transform    string // the canonicalisation applied to what is covered
	DigestMethod string
}

// verifyDocumentSignature checks the index-th signature of doc; without, on a copy of doc from
// which the signatures after it are removed.
func verifyDocumentSignature(ctx context.Context, doc *etree.Document, index int, opts DocumentOptions, without bool) DocumentSignature {
	ds := DocumentSignature{Index: index + 1}
	if without {
		doc = doc.Copy()
	}
	sigs := scanDocument(doc.Root()).signatures
	sig := sigs[index]
	ds.Path = sig.GetPath()
	if without {
		for _, later := range sigs[index+1:] {
			if p := later.Parent(); p != nil {
				p.RemoveChild(later)
				ds.LaterRemoved++
			}
		}
	}
	ids, err := documentIDs(doc.Root(), opts.IDAttributes)
	if err != nil {
		ds.Err = err
		return ds
	}
	parts, err := splitSignature(sig)
	if err != nil {
		ds.Err = err
		return ds
	}
	if cm := parts.signedInfo.SelectElement("CanonicalizationMethod"); cm != nil {
		ds.CanonicalizationMethod = cm.SelectAttrValue("Algorithm", "")
	}
	var res signatureResult
	canonicalSignedInfo, refs, err := readCanonicalSignedInfo(parts.signedInfo, &res)
	ds.SignatureMethod = res.sigAlg
	if err != nil {
		ds.Err = err
		return ds
	}
	defer canonicalSignedInfo.release()
	targets := make([]*etree.Element, len(refs))
	for i, ref := range refs {
		dr := DocumentReference{URI: ref.uri, Enveloped: ref.enveloped, DigestMethod: ref.digestMethod, Transform: AlgC14N10}
		if ref.c14n.exclusive {
			dr.Transform = AlgExcC14N
		}
		if ref.uri == "" {
			targets[i], dr.Covers = doc.Root(), "the whole document"
		} else if t, ok := ids[strings.TrimPrefix(ref.uri, "#")]; ok {
			targets[i], dr.Covers = t.el, t.el.GetPath()
		}
		ds.References = append(ds.References, dr)
		if targets[i] == nil {
			ds.Err = siobroker.Errorf(siobroker.CodeSigReference, "the Reference URI %q names no element of the document (identifiers are Id, ID, id, xml:id and those named with --id-attr)", ref.uri)
			return ds
		}
	}
	var sec *securityHeader
	if p := sig.Parent(); is(p, nsWSSE, "Security") {
		sec = &securityHeader{el: p, signature: sig}
	}
	key, err := readKeyInfo(parts.keyInfo, sec, ids)
	ds.KeyForm = key.form
	if len(key.certs) > 0 {
		ds.Certificate = key.certs[0]
	}
	if err != nil {
		ds.Err = err
		return ds
	}
	v := &Verifier{cfg: VerifierConfig{Trust: opts.Trust, Directory: opts.Directory, AnySigner: true}}
	cert, err := v.chooseSigner(ctx, key, res.sigAlg, canonicalSignedInfo.Bytes(), parts.signatureValue, opts.At)
	if cert != nil {
		ds.Certificate = cert
	}
	if err != nil {
		ds.Err = err
		return ds
	}
	if _, err := v.digestReferences(sig, refs, targets, nil); err != nil {
		ds.Err, ds.digestFailed = err, true
	}
	return ds
}

// documentIDs indexes the identifiers of a document: Id, ID, id and xml:id (scanDocument), and
// the attributes named extra, in any namespace. An identifier carried twice is refused: which
// element it names is what a wrapping attack plays on.
func documentIDs(root *etree.Element, extra []string) (idIndex, error) {
	scan := scanDocument(root)
	if scan.duplicateID != "" {
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "the identifier %q is carried by more than one element", scan.duplicateID)
	}
	if len(extra) == 0 {
		return scan.ids, nil
	}
	names := map[string]bool{}
	for _, n := range extra {
		if !idAttrNames[n] {
			names[n] = true
		}
	}
	var err error
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		for _, a := range el.Attr {
			if !names[a.Key] || isNamespaceDecl(a) {
				continue
			}
			if _, seen := scan.ids[a.Value]; seen && err == nil {
				err = siobroker.Errorf(siobroker.CodeSigReference, "the identifier %q is carried by more than one element", a.Value)
			}
			scan.ids[a.Value] = idTarget{el: el, plain: a.Space == ""}
		}
		for _, c := range el.ChildElements() {
			walk(c)
		}
	}
	walk(root)
	return scan.ids, err
}
