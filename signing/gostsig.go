package signing

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// GOST signatures of the national PKI in XML-DSig, in detached signatures and in the broker's own
// signer. The algorithms and their byte convention are in algorithms.go; the cryptography is
// signing/gost's, the certificates' keys signing/gostx509's.
//
// A key signs with exactly one algorithm: a GOST 34.310-2004 key with gost34310-gost34311, a
// GOST 34.10-2015 key with the URI of its size. Anything else is refused with SIO-SIG-ALGORITHM,
// as an RSA URI over an ECDSA key is: a GOST signature claiming an RSA URI, an RSA key claiming
// a GOST URI, a 2004 key claiming a 2015 URI. A certificate whose GOST key is not valid (a point
// off its curve or outside the subgroup, a key of the wrong length, parameters its algorithm
// does not admit) is refused with SIO-CERT-CHAIN, as a certificate that does not parse is; a
// signature of the wrong length, or whose r or s is outside [1, q-1], with SIO-SIG-INVALID.

// verifyGOSTSignatureValue is verifySignatureValue for a GOST key or a GOST SignatureMethod.
func verifyGOSTSignatureValue(cert *x509.Certificate, alg string, m signatureMethod, signedInfo, value []byte) error {
	if !gostx509.HasGOSTKey(cert) {
		return siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s does not fit the certificate's %s key", alg, cert.PublicKeyAlgorithm)
	}
	if m.key != keyGOST {
		return siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s does not fit the certificate's GOST key", alg)
	}
	key, err := gostx509.PublicKeyOf(cert)
	if err != nil {
		return siobroker.Wrap(siobroker.CodeCertChain, err, "the GOST key of certificate %q is not valid", cert.Subject.String())
	}
	if key.Algorithm != m.gost {
		return siobroker.Errorf(siobroker.CodeSigAlgorithm, "signature algorithm %s does not fit the certificate's %s key, which signs with %s",
			alg, key.Algorithm, gostSignatureMethod(key.Algorithm))
	}
	h := m.gost.NewHash()
	h.Write(signedInfo)
	if err := gost.Kazakh.Verify(key.Public, h.Sum(nil), value); err != nil {
		return siobroker.Wrap(siobroker.CodeSigInvalid, err, "SignatureValue does not verify with the key of %q", cert.Subject.String())
	}
	return nil
}

// gostSignatureMethod names the SignatureMethod of keys of alg, for refusals.
func gostSignatureMethod(alg gost.KeyAlgorithm) string {
	if m, ok := gostMethods[alg]; ok {
		return m[0]
	}
	return "no XML-DSig algorithm of the national PKI"
}

// newGOSTSigner is NewSigner for a certificate with a GOST key: key must be its private key (a
// *gost.PrivateKey, or a crypto.Signer whose public key is a *gost.PublicKey and which takes
// gost.SignerOpts), and the key algorithm one of the national PKI's.
func newGOSTSigner(cert *x509.Certificate, key crypto.Signer, chain []*x509.Certificate) (*Signer, error) {
	pub, err := gostx509.PublicKeyOf(cert)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	if !pub.Public.Equal(key.Public()) {
		return nil, fmt.Errorf("signer: the private key does not belong to certificate %q", cert.Subject.String())
	}
	methods, ok := gostMethods[pub.Algorithm]
	if !ok {
		return nil, fmt.Errorf("signer: %s keys have no XML-DSig algorithm of the national PKI; use a GOST 34.10-2015 or 34.310-2004 key", pub.Algorithm)
	}
	s := &Signer{cert: cert, key: key, chain: append([]*x509.Certificate(nil), chain...),
		signatureMethod: methods[0], digestMethod: methods[1], gost: pub.Algorithm, clock: siobroker.SystemClock{}}
	s.certTexts = newCertTextCache(s.cert, s.chain)
	if iin, err := SubjectIIN(cert); err == nil {
		s.iin = iin
	}
	return s, nil
}

// signGOST signs data with the signer's GOST key: the hash of its algorithm, the Kazakh
// convention (r then s, each little-endian).
func (s *Signer) signGOST(data []byte) ([]byte, error) {
	h := s.gost.NewHash()
	h.Write(data)
	value, err := s.key.Sign(rand.Reader, h.Sum(nil), gost.SignerOpts{Convention: gost.Kazakh})
	if err != nil {
		return nil, fmt.Errorf("sign with the GOST key: %w", err)
	}
	return value, nil
}

// verifyGOSTDetached is VerifyDetached for a certificate with a GOST key.
func verifyGOSTDetached(cert *x509.Certificate, data, sig []byte) error {
	key, err := gostx509.PublicKeyOf(cert)
	if err != nil {
		return siobroker.Wrap(siobroker.CodeCertChain, err, "the GOST key of certificate %q is not valid", cert.Subject.String())
	}
	if _, ok := gostMethods[key.Algorithm]; !ok {
		return siobroker.Errorf(siobroker.CodeSigAlgorithm, "%s keys do not sign detached signatures here", key.Algorithm)
	}
	h := key.Algorithm.NewHash()
	h.Write(data)
	if err := gost.Kazakh.Verify(key.Public, h.Sum(nil), sig); err != nil {
		return siobroker.Wrap(siobroker.CodeSigInvalid, err, "the detached signature does not verify with the key of %q", cert.Subject.String())
	}
	return nil
}
