package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// SignDetached returns a detached signature of data with the signer's key: SHA-256 with RSA
// PKCS#1 v1.5, or SHA-256 with ECDSA P-256 in ASN.1 DER form. Both are what
// "openssl dgst -sha256 -sign KEY" writes, so a signature can be checked offline with
// "openssl dgst -sha256 -verify PUBKEY -signature SIG DATA" as well as with VerifyDetached. A GOST
// key signs the hash of its algorithm (Streebog of its size, GOST 34.311-95 for a 2004 key) in
// the Kazakh convention, r then s, each little-endian, as in its XML signatures.
func (s *Signer) SignDetached(data []byte) ([]byte, error) {
	if s.gost != 0 {
		return s.signGOST(data)
	}
	digest := sha256.Sum256(data)
	// For an RSA key, crypto.SHA256 as the options selects PKCS#1 v1.5; an ECDSA key returns DER.
	sig, err := s.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign detached: %w", err)
	}
	return sig, nil
}

// Chain returns the intermediate certificates that follow the signer's certificate, if any.
func (s *Signer) Chain() []*x509.Certificate {
	return append([]*x509.Certificate(nil), s.chain...)
}

// VerifyDetached checks a detached signature made by SignDetached: sig over data with the key of
// cert. It checks the signature only, not the certificate: verify the chain with
// TrustStore.VerifyChain. A signature that does not verify is CodeSigInvalid; a key the broker does
// not sign with (RSA under 2048 bits, a curve other than P-256) is CodeSigAlgorithm. A GOST key's
// signature is checked as SignDetached makes it.
func VerifyDetached(cert *x509.Certificate, data, sig []byte) error {
	if cert == nil {
		return siobroker.Errorf(siobroker.CodeSigInvalid, "detached signature: no certificate")
	}
	if gostx509.HasGOSTKey(cert) {
		return verifyGOSTDetached(cert, data, sig)
	}
	digest := sha256.Sum256(data)
	bad := func(cause error) error {
		return siobroker.Wrap(siobroker.CodeSigInvalid, cause, "the detached signature does not verify with the key of %q", cert.Subject.String())
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return siobroker.Errorf(siobroker.CodeSigAlgorithm, "RSA key of %d bits is too short; at least %d are required", pub.N.BitLen(), minRSABits)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return bad(err)
		}
		return nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return siobroker.Errorf(siobroker.CodeSigAlgorithm, "elliptic curve %s is not allowed for detached signatures; use P-256", pub.Curve.Params().Name)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return bad(errors.New("ECDSA signature mismatch"))
		}
		return nil
	default:
		return siobroker.Errorf(siobroker.CodeSigAlgorithm, "the certificate's %T key is not supported", cert.PublicKey)
	}
}
