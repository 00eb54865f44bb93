package gostx509

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 5280 §4.2.1.2 defines the key identifier with SHA-1; nothing is signed with it
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"

	"github.com/sio-pso/siobroker/signing/gost"
)

// Key is a GOST public key with the key algorithm its SubjectPublicKeyInfo names: one curve
// serves several algorithms (CryptoPro-A is a GOST 34.310-2004 curve and an RFC 9215 one), so
// the point alone does not say which OIDs a certificate carries.
type Key struct {
	Public    *gost.PublicKey
	Algorithm gost.KeyAlgorithm
}

// RawSubjectPublicKeyInfo is a DER SubjectPublicKeyInfo that CreateCertificate writes as it is,
// unchecked: for tests of what a verifier does with a malformed key (a point off the curve, a
// key of the wrong length), which no gost.PublicKey can hold.
type RawSubjectPublicKeyInfo []byte

// ErrNotGOST is returned (wrapped) for a certificate whose key is not a GOST key, and for a
// signature whose algorithm is not a GOST one.
var ErrNotGOST = errors.New("gostx509: not a GOST key or signature")

// ErrAlgorithmMismatch is returned (wrapped) when a signature's algorithm is not the one the
// issuer's key signs with: a GOST 34.310-2004 key cannot have made a GOST 34.10-2015 signature.
var ErrAlgorithmMismatch = errors.New("gostx509: the signature algorithm does not fit the issuer's key")

// keyAlgorithms are the GOST key algorithms signing/gost knows, in the order they are tried.
var keyAlgorithms = []gost.KeyAlgorithm{gost.KZ2004, gost.KZ2015_256, gost.KZ2015_512, gost.TC26_256, gost.TC26_512}

// spkiAlgorithm returns the algorithm OID of a DER SubjectPublicKeyInfo.
func spkiAlgorithm(der []byte) (asn1.ObjectIdentifier, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("gostx509: SubjectPublicKeyInfo: %w", err)
	}
	return spki.Algorithm.Algorithm, nil
}

// HasGOSTKey reports whether the certificate's SubjectPublicKeyInfo names a GOST key algorithm,
// whether or not the key itself is valid (PublicKeyOf says that).
func HasGOSTKey(cert *x509.Certificate) bool {
	if cert == nil || cert.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
		return false
	}
	oid, err := spkiAlgorithm(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return false
	}
	for _, a := range keyAlgorithms {
		if a.OID().Equal(oid) {
			return true
		}
	}
	return false
}

// PublicKeyOf returns the GOST key of cert with its algorithm. A certificate whose key is not a
// GOST key is ErrNotGOST; a GOST key that is not valid (a point off the curve or outside the
// subgroup, a key of the wrong length, parameters its algorithm does not admit) is another error.
func PublicKeyOf(cert *x509.Certificate) (Key, error) {
	if cert == nil {
		return Key{}, errors.New("gostx509: nil certificate")
	}
	if !HasGOSTKey(cert) {
		return Key{}, fmt.Errorf("%w: the key of %q is %s", ErrNotGOST, cert.Subject.String(), cert.PublicKeyAlgorithm)
	}
	pub, alg, err := gost.ParsePKIXPublicKey(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return Key{}, fmt.Errorf("gostx509: the GOST key of %q: %w", cert.Subject.String(), err)
	}
	return Key{Public: pub, Algorithm: alg}, nil
}

// signedObject is the outer form of a certificate (RFC 5280 §4.1) and of a CRL (§5.1): the
// signed TBS bytes, the signature algorithm and the signature.
type signedObject struct {
	TBS       asn1.RawValue
	Algorithm pkix.AlgorithmIdentifier
	Signature asn1.BitString
}

// SignatureAlgorithm returns the signatureAlgorithm OID of a DER certificate or CRL.
func SignatureAlgorithm(der []byte) (asn1.ObjectIdentifier, error) {
	var s signedObject
	rest, err := asn1.Unmarshal(der, &s)
	if err != nil {
		return nil, fmt.Errorf("gostx509: signed object: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("gostx509: trailing data after the signed object")
	}
	return s.Algorithm.Algorithm, nil
}

// KeyAlgorithmOfSignature returns the key algorithm whose signatures carry the algorithm OID
// sig, and false when sig is not a GOST signature algorithm.
func KeyAlgorithmOfSignature(sig asn1.ObjectIdentifier) (gost.KeyAlgorithm, bool) {
	for _, a := range keyAlgorithms {
		if a.SignatureOID().Equal(sig) {
			return a, true
		}
	}
	return 0, false
}

// IsGOSTSigned reports whether a DER certificate or CRL is signed with a GOST algorithm.
func IsGOSTSigned(der []byte) bool {
	oid, err := SignatureAlgorithm(der)
	if err != nil {
		return false
	}
	_, ok := KeyAlgorithmOfSignature(oid)
	return ok
}

// CheckSignature verifies signature, made with the algorithm sigAlg over signed, with the GOST
// key of issuer: the hash of the issuer's key algorithm over signed, the signature read in that
// algorithm's convention. sigAlg must be the signature algorithm of the issuer's key
// (ErrAlgorithmMismatch). The errors of gost (ErrSignature, ErrSignatureRange, ErrLength) are
// wrapped.
func CheckSignature(issuer *x509.Certificate, sigAlg asn1.ObjectIdentifier, signed, signature []byte) error {
	key, err := PublicKeyOf(issuer)
	if err != nil {
		return err
	}
	if want := key.Algorithm.SignatureOID(); !want.Equal(sigAlg) {
		return fmt.Errorf("%w: a signature of algorithm %s, and the %s key of %q signs with %s",
			ErrAlgorithmMismatch, sigAlg, key.Algorithm, issuer.Subject.String(), want)
	}
	h := key.Algorithm.NewHash()
	h.Write(signed)
	if err := key.Algorithm.Convention().Verify(key.Public, h.Sum(nil), signature); err != nil {
		return fmt.Errorf("gostx509: the %s signature does not verify with the key of %q: %w", key.Algorithm, issuer.Subject.String(), err)
	}
	return nil
}

// CheckCertificateSignature checks that parent signed cert. A GOST signature is verified here,
// with the constraints crypto/x509's Certificate.CheckSignatureFrom puts on the parent (a v3
// parent must be a CA, and have keyCertSign when it has a key usage); any other signature is
// left to CheckSignatureFrom.
func CheckCertificateSignature(cert, parent *x509.Certificate) error {
	if cert == nil || parent == nil {
		return errors.New("gostx509: nil certificate")
	}
	oid, err := SignatureAlgorithm(cert.Raw)
	if err != nil {
		return err
	}
	if _, ok := KeyAlgorithmOfSignature(oid); !ok {
		if HasGOSTKey(parent) {
			return fmt.Errorf("%w: %q is signed with %s, which the GOST key of %q does not make", ErrAlgorithmMismatch,
				cert.Subject.String(), oid, parent.Subject.String())
		}
		return cert.CheckSignatureFrom(parent)
	}
	if (parent.Version == 3 && !parent.BasicConstraintsValid) || (parent.BasicConstraintsValid && !parent.IsCA) {
		return x509.ConstraintViolationError{}
	}
	if parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return x509.ConstraintViolationError{}
	}
	return CheckSignature(parent, oid, cert.RawTBSCertificate, cert.Signature)
}

// CheckCRLSignature checks that issuer signed crl, as CheckCertificateSignature does for a
// certificate: GOST here (the issuer a CA with cRLSign when it has a key usage, as in crypto/x509),
// anything else by RevocationList.CheckSignatureFrom.
func CheckCRLSignature(crl *x509.RevocationList, issuer *x509.Certificate) error {
	if crl == nil || issuer == nil {
		return errors.New("gostx509: nil CRL or issuer")
	}
	oid, err := SignatureAlgorithm(crl.Raw)
	if err != nil {
		return err
	}
	if _, ok := KeyAlgorithmOfSignature(oid); !ok {
		if HasGOSTKey(issuer) {
			return fmt.Errorf("%w: the CRL of %s is signed with %s, which the GOST key of %q does not make", ErrAlgorithmMismatch,
				crl.Issuer, oid, issuer.Subject.String())
		}
		return crl.CheckSignatureFrom(issuer)
	}
	if (issuer.Version == 3 && !issuer.BasicConstraintsValid) || (issuer.BasicConstraintsValid && !issuer.IsCA) {
		return x509.ConstraintViolationError{}
	}
	if issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return x509.ConstraintViolationError{}
	}
	return CheckSignature(issuer, oid, crl.RawTBSRevocationList, crl.Signature)
}

// gostSigner returns priv's GOST public key, or nil when priv is not a GOST key.
func gostSigner(priv crypto.Signer) *gost.PublicKey {
	if priv == nil {
		return nil
	}
	pub, _ := priv.Public().(*gost.PublicKey)
	return pub
}

// subjectKeyID is the key identifier of RFC 5280 §4.2.1.2, method 1: the SHA-1 of the
// subjectPublicKey BIT STRING's bytes.
func subjectKeyID(spki []byte) ([]byte, error) {
	var s struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &s); err != nil {
		return nil, fmt.Errorf("gostx509: SubjectPublicKeyInfo: %w", err)
	}
	sum := sha1.Sum(s.PublicKey.Bytes)
	return sum[:], nil
}

// CreateCertificate is x509.CreateCertificate for GOST keys: pub may be a Key (or a
// RawSubjectPublicKeyInfo), and priv a GOST key (*gost.PrivateKey, or any crypto.Signer whose
// public key is a *gost.PublicKey and which takes gost.SignerOpts). When neither is GOST it is
// x509.CreateCertificate itself.
//
// crypto/x509 builds the TBSCertificate, with a throwaway ECDSA key in place of each GOST one;
// the GOST SubjectPublicKeyInfo and the GOST signature AlgorithmIdentifier are then put in, and
// the TBS is signed with priv in its algorithm's convention. The issuer's algorithm is that of
// parent's key, or of pub when the certificate is self-signed (parent == template). A GOST
// subject key needs a GOST issuer here. A missing SubjectKeyId is set from the real key.
func CreateCertificate(rnd io.Reader, template, parent *x509.Certificate, pub any, priv crypto.Signer) ([]byte, error) {
	if template == nil || parent == nil {
		return nil, errors.New("gostx509: nil template or parent")
	}
	signerPub := gostSigner(priv)
	var spki []byte
	switch k := pub.(type) {
	case Key:
		der, err := gost.MarshalPKIXPublicKey(k.Public, k.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("gostx509: subject key: %w", err)
		}
		spki = der
	case *Key:
		return CreateCertificate(rnd, template, parent, *k, priv)
	case RawSubjectPublicKeyInfo:
		spki = append([]byte(nil), k...)
	case *gost.PublicKey:
		return nil, errors.New("gostx509: give a GOST subject key as a Key, with its algorithm")
	}
	if signerPub == nil {
		if spki != nil {
			return nil, errors.New("gostx509: a GOST subject key needs a GOST issuer key")
		}
		return x509.CreateCertificate(rnd, template, parent, pub, priv)
	}

	selfSigned := parent == template
	var alg gost.KeyAlgorithm
	if selfSigned {
		k, ok := pub.(Key)
		if !ok || !k.Public.Equal(signerPub) {
			return nil, errors.New("gostx509: a self-signed GOST certificate needs pub as the Key of priv")
		}
		alg = k.Algorithm
	} else {
		k, err := PublicKeyOf(parent)
		if err != nil {
			return nil, fmt.Errorf("gostx509: issuer: %w", err)
		}
		if !k.Public.Equal(signerPub) {
			return nil, fmt.Errorf("gostx509: the private key is not the key of the issuer %q", parent.Subject.String())
		}
		alg = k.Algorithm
	}

	placeholder, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("gostx509: placeholder key: %w", err)
	}
	tmpl := *template
	tmpl.SignatureAlgorithm = x509.UnknownSignatureAlgorithm
	tmpl.PublicKey = nil
	subjectPub := pub
	if spki != nil {
		subjectPub = placeholder.Public()
		if len(tmpl.SubjectKeyId) == 0 {
			if tmpl.SubjectKeyId, err = subjectKeyID(spki); err != nil {
				return nil, err
			}
		}
	}
	issuerTmpl := parent
	if selfSigned {
		issuerTmpl = &tmpl
	}
	der, err := x509.CreateCertificate(rnd, &tmpl, issuerTmpl, subjectPub, placeholder)
	if err != nil {
		return nil, fmt.Errorf("gostx509: the TBSCertificate: %w", err)
	}
	var cert signedObject
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		return nil, fmt.Errorf("gostx509: re-reading the certificate: %w", err)
	}
	elems, err := sequenceElements(cert.TBS.FullBytes)
	if err != nil {
		return nil, fmt.Errorf("gostx509: TBSCertificate: %w", err)
	}
	// TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject,
	// subjectPublicKeyInfo, ... (RFC 5280 §4.1); crypto/x509 always writes the version.
	first := 0
	if len(elems) > 0 && elems[0].Class == asn1.ClassContextSpecific && elems[0].Tag == 0 {
		first = 1
	}
	if len(elems) < first+6 {
		return nil, errors.New("gostx509: TBSCertificate too short")
	}
	sigAlg, err := signatureAlgorithmIdentifier(alg)
	if err != nil {
		return nil, err
	}
	elems[first+1] = asn1.RawValue{FullBytes: sigAlg}
	if spki != nil {
		elems[first+5] = asn1.RawValue{FullBytes: spki}
	}
	return signTBS(rnd, elems, sigAlg, alg, priv)
}

// CreateRevocationList is x509.CreateRevocationList for a GOST issuer key (see
// CreateCertificate); with any other key it is x509.CreateRevocationList itself. crypto/x509's
// own requirements on the issuer stand: the cRLSign key usage and a subject key identifier.
func CreateRevocationList(rnd io.Reader, template *x509.RevocationList, issuer *x509.Certificate, priv crypto.Signer) ([]byte, error) {
	signerPub := gostSigner(priv)
	if signerPub == nil {
		return x509.CreateRevocationList(rnd, template, issuer, priv)
	}
	if template == nil || issuer == nil {
		return nil, errors.New("gostx509: nil template or issuer")
	}
	k, err := PublicKeyOf(issuer)
	if err != nil {
		return nil, fmt.Errorf("gostx509: issuer: %w", err)
	}
	if !k.Public.Equal(signerPub) {
		return nil, fmt.Errorf("gostx509: the private key is not the key of the issuer %q", issuer.Subject.String())
	}
	placeholder, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("gostx509: placeholder key: %w", err)
	}
	tmpl := *template
	tmpl.SignatureAlgorithm = x509.UnknownSignatureAlgorithm
	der, err := x509.CreateRevocationList(rnd, &tmpl, issuer, placeholder)
	if err != nil {
		return nil, fmt.Errorf("gostx509: the TBSCertList: %w", err)
	}
	var crl signedObject
	if _, err := asn1.Unmarshal(der, &crl); err != nil {
		return nil, fmt.Errorf("gostx509: re-reading the CRL: %w", err)
	}
	elems, err := sequenceElements(crl.TBS.FullBytes)
	if err != nil {
		return nil, fmt.Errorf("gostx509: TBSCertList: %w", err)
	}
	// TBSCertList: version (optional, v2), signature, issuer, thisUpdate, ... (RFC 5280 §5.1).
	first := 0
	if len(elems) > 0 && elems[0].Class == asn1.ClassUniversal && elems[0].Tag == asn1.TagInteger {
		first = 1
	}
	if len(elems) < first+3 {
		return nil, errors.New("gostx509: TBSCertList too short")
	}
	sigAlg, err := signatureAlgorithmIdentifier(k.Algorithm)
	if err != nil {
		return nil, err
	}
	elems[first] = asn1.RawValue{FullBytes: sigAlg}
	return signTBS(rnd, elems, sigAlg, k.Algorithm, priv)
}

// signatureAlgorithmIdentifier is the DER AlgorithmIdentifier of alg's signatures, with NULL
// parameters as Kalkan writes them in the НУЦ РК certificates and CRLs.
func signatureAlgorithmIdentifier(alg gost.KeyAlgorithm) ([]byte, error) {
	oid := alg.SignatureOID()
	if oid == nil {
		return nil, fmt.Errorf("gostx509: unknown key algorithm %v", alg)
	}
	return asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue})
}

// sequenceElements splits a DER SEQUENCE into its elements.
func sequenceElements(der []byte) ([]asn1.RawValue, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence {
		return nil, errors.New("not one SEQUENCE")
	}
	var elems []asn1.RawValue
	for body := seq.Bytes; len(body) > 0; {
		var e asn1.RawValue
		if body, err = asn1.Unmarshal(body, &e); err != nil {
			return nil, err
		}
		elems = append(elems, e)
	}
	return elems, nil
}

// signTBS marshals the TBS SEQUENCE of elems, signs it with priv (alg's hash and convention)
// and returns the DER of the signed object: TBS, sigAlg, the signature as a BIT STRING.
func signTBS(rnd io.Reader, elems []asn1.RawValue, sigAlg []byte, alg gost.KeyAlgorithm, priv crypto.Signer) ([]byte, error) {
	var body bytes.Buffer
	for _, e := range elems {
		body.Write(e.FullBytes)
	}
	tbs, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body.Bytes()})
	if err != nil {
		return nil, err
	}
	h := alg.NewHash()
	h.Write(tbs)
	sig, err := priv.Sign(rnd, h.Sum(nil), gost.SignerOpts{Convention: alg.Convention()})
	if err != nil {
		return nil, fmt.Errorf("gostx509: signing the TBS: %w", err)
	}
	return asn1.Marshal(struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, asn1.RawValue{FullBytes: sigAlg}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}
