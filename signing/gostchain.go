package signing

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// Chains of certificates signed with GOST. crypto/x509's Verify cannot check a GOST signature,
// so a certificate signed with one is chained here instead: the path is searched from the signer
// up through the message's and the configured intermediates to a trusted root, each link held to
// what crypto/x509 holds its own to (RFC 5280 §6.1, as far as the national PKI uses it):
//
//   - the issuer's subject is the child's issuer, byte for byte, and its key verifies the child's
//     signature (gostx509.CheckCertificateSignature: GOST here, anything else by crypto/x509);
//   - every certificate of the path is within its validity at the message time;
//   - an issuer is a CA (basicConstraints CA:TRUE), has keyCertSign when it has a key usage,
//     and its pathLenConstraint bounds the intermediates below it;
//   - no certificate of the path has a critical extension crypto/x509 did not handle.
//
// Name constraints and certificate policies are not checked: crypto/x509 checks no policies
// either, and the НУЦ РК CAs carry no name constraints. A certificate that is itself a trusted
// root (a signer's certificate pinned as its own trust anchor) is a path of one, as in
// crypto/x509. Certificates not signed with GOST keep crypto/x509's Verify (VerifyChain).

// gostVerify returns a stand-in for leaf.Verify that builds the path here (gostChain), so that
// VerifyChain treats both alike: an expired certificate of the path comes back as crypto/x509's
// CertificateInvalidError with the Expired reason, anything else as an error to be refused as a
// broken chain. Only opts.CurrentTime is read: the roots and intermediates are the store's and
// extra's.
func (t *TrustStore) gostVerify(leaf *x509.Certificate, extra []*x509.Certificate) func(x509.VerifyOptions) ([][]*x509.Certificate, error) {
	return func(opts x509.VerifyOptions) ([][]*x509.Certificate, error) {
		chain, err := t.gostChain(leaf, extra, opts.CurrentTime)
		if err != nil {
			if siobroker.ErrorCode(err) == siobroker.CodeCertExpired {
				return nil, x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired, Detail: siobroker.ErrorMessage(err)}
			}
			return nil, err
		}
		return [][]*x509.Certificate{chain}, nil
	}
}

// maxChainLength bounds a searched path, the root included: the national PKI's are three long.
const maxChainLength = 8

// maxChainSignatureChecks bounds the signature verifications of one path search, as crypto/x509
// bounds its own (to 100, for cheaper algorithms): a sender's own key can make certificates that
// name a trusted root as subject and issuer and all verify against one another, and KeyInfo's
// seven of them made the search try every ordering, about 17,000 GOST verifications (seconds of
// CPU per request, a minute with 512-bit keys). No link is verified twice either. A path of the
// national PKI takes two or three; a CA renewed under its name adds one per candidate.
const maxChainSignatureChecks = 16

// gostChain returns one path from leaf (whose own validity the caller checked) to a trusted
// root, through extra (the message's certificates) and the configured intermediates.
func (t *TrustStore) gostChain(leaf *x509.Certificate, extra []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	subject := leaf.Subject.String()
	if len(leaf.UnhandledCriticalExtensions) > 0 {
		return nil, siobroker.Errorf(siobroker.CodeCertChain, "certificate %q has a critical extension %s that is not understood",
			subject, leaf.UnhandledCriticalExtensions[0])
	}
	for _, r := range t.roots {
		if r.Equal(leaf) {
			return []*x509.Certificate{leaf}, nil
		}
	}
	candidates := append(append([]*x509.Certificate(nil), extra...), t.intermediates...)
	var firstErr error
	note := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	type link struct{ child, issuer *x509.Certificate }
	checked := map[link]error{}
	var exhausted error
	verify := func(child, issuer *x509.Certificate) error {
		if err, ok := checked[link{child, issuer}]; ok {
			return err
		}
		if len(checked) == maxChainSignatureChecks {
			exhausted = siobroker.Errorf(siobroker.CodeCertChain, "certificate %q does not chain to a trusted root: no path found in %d signature checks",
				subject, maxChainSignatureChecks)
			return exhausted
		}
		err := checkCertificateSignature(child, issuer)
		checked[link{child, issuer}] = err
		return err
	}
	var search func(chain []*x509.Certificate) []*x509.Certificate
	search = func(chain []*x509.Certificate) []*x509.Certificate {
		child := chain[len(chain)-1]
		for _, r := range t.roots {
			if exhausted != nil {
				return nil
			}
			if !bytes.Equal(child.RawIssuer, r.RawSubject) {
				continue
			}
			if err := checkLink(child, r, len(chain)-1, at, verify); err != nil {
				note(err)
				continue
			}
			return append(chain, r)
		}
		if len(chain)+1 >= maxChainLength {
			note(siobroker.Errorf(siobroker.CodeCertChain, "the chain of %q is longer than %d certificates", subject, maxChainLength))
			return nil
		}
		for _, c := range candidates {
			if exhausted != nil {
				return nil
			}
			if !bytes.Equal(child.RawIssuer, c.RawSubject) || inChain(chain, c) {
				continue
			}
			if err := checkLink(child, c, len(chain)-1, at, verify); err != nil {
				note(err)
				continue
			}
			if found := search(append(chain[:len(chain):len(chain)], c)); found != nil {
				return found
			}
		}
		return nil
	}
	if chain := search([]*x509.Certificate{leaf}); chain != nil {
		return chain, nil
	}
	if exhausted != nil {
		return nil, exhausted
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, siobroker.Errorf(siobroker.CodeCertChain, "certificate %q does not chain to a trusted root: no trusted root or intermediate is its issuer %q",
		subject, leaf.Issuer.String())
}

// checkLink checks that issuer may have issued child and did, its signature checked by verify:
// below is the number of intermediates between issuer and the leaf (0 when child is the leaf).
func checkLink(child, issuer *x509.Certificate, below int, at time.Time, verify func(child, issuer *x509.Certificate) error) error {
	name := issuer.Subject.String()
	switch {
	case at.Before(issuer.NotBefore):
		return siobroker.Errorf(siobroker.CodeCertExpired, "the CA certificate %q in the chain of %q is not valid before %s (message time %s)",
			name, child.Subject.String(), siobroker.FormatTime(issuer.NotBefore), siobroker.FormatTime(at))
	case at.After(issuer.NotAfter):
		return siobroker.Errorf(siobroker.CodeCertExpired, "the CA certificate %q in the chain of %q expired at %s (message time %s)",
			name, child.Subject.String(), siobroker.FormatTime(issuer.NotAfter), siobroker.FormatTime(at))
	case len(issuer.UnhandledCriticalExtensions) > 0:
		return siobroker.Errorf(siobroker.CodeCertChain, "the CA certificate %q has a critical extension %s that is not understood",
			name, issuer.UnhandledCriticalExtensions[0])
	case !issuer.BasicConstraintsValid || !issuer.IsCA:
		return siobroker.Errorf(siobroker.CodeCertChain, "%q, the issuer of %q, is not a CA certificate (basicConstraints CA:TRUE)", name, child.Subject.String())
	case issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCertSign == 0:
		return siobroker.Errorf(siobroker.CodeCertChain, "%q, the issuer of %q, lacks the keyCertSign key usage", name, child.Subject.String())
	case issuer.MaxPathLen >= 0 && below > issuer.MaxPathLen:
		return siobroker.Errorf(siobroker.CodeCertChain, "the CA certificate %q allows %d intermediate CA(s) below it, and the chain of %q has %d",
			name, issuer.MaxPathLen, child.Subject.String(), below)
	}
	if err := verify(child, issuer); err != nil {
		return siobroker.Wrap(siobroker.CodeCertChain, err, "the signature of %q does not verify with the key of %q", child.Subject.String(), name)
	}
	return nil
}

// checkCertificateSignature is gostx509.CheckCertificateSignature; a test counts its calls.
var checkCertificateSignature = gostx509.CheckCertificateSignature

func inChain(chain []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range chain {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// checkCRLSignature checks that issuer signed crl, GOST or not (gostx509.CheckCRLSignature).
func checkCRLSignature(crl *x509.RevocationList, issuer *x509.Certificate) error {
	if err := gostx509.CheckCRLSignature(crl, issuer); err != nil {
		return fmt.Errorf("the CRL's signature: %w", err)
	}
	return nil
}
