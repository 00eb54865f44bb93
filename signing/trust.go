package signing

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sio-pso/siobroker"
)

// TrustConfig names the PEM files of the trusted roots and of the CRLs to check.
type TrustConfig struct {
	RootFiles []string // PEM, one or more CERTIFICATE blocks per file
	// IntermediateFiles are CA certificates (PEM) that chains may pass through without the
	// message carrying them; they are not roots.
	IntermediateFiles []string
	CRLFiles          []string // PEM "X509 CRL" blocks, or a single DER CRL
	// CRLStaleGrace is how long past its nextUpdate a CRL is still used, its revocations in force,
	// before every certificate of its issuer is refused. Zero refuses at nextUpdate. A grace keeps
	// the service up while an issuer is late to publish, at the price of missing revocations of
	// that window; it is a stated policy (trust.crl_stale), not an accident of start-up.
	CRLStaleGrace time.Duration
}

// TrustStore holds the trusted roots and the CRLs. It is safe for concurrent use. The roots and
// intermediates never change; the CRLs are replaced as a whole by SetCRLs or ReloadCRLs, because
// revocation must take effect in a running broker (a CRL frozen at start-up answers revoked users
// and, past its nextUpdate, refuses everyone until a restart).
type TrustStore struct {
	roots []*x509.Certificate
	pool  *x509.CertPool
	// intermediates are the configured intermediate CAs, offered to every chain.
	intermediates []*x509.Certificate
	// crlFiles are the files ReloadCRLs reads (LoadTrustStore's TrustConfig.CRLFiles).
	crlFiles []string
	// staleGrace is TrustConfig.CRLStaleGrace.
	staleGrace time.Duration
	// crls is the CRL set in force. A request loads it once, so that it sees one set whole even
	// while a reload swaps in the next.
	crls atomic.Pointer[crlSet]
}

// crlSet is one generation of CRLs with the cache of their verified signatures.
type crlSet struct {
	crls []*x509.RevocationList
	// verified remembers the CRLs whose signature verified against an issuer certificate
	// (crlIssuer keys), so that each request does not verify the same CRL again: that RSA
	// verification was a few per cent of the broker's CPU under load. Only successes are kept.
	// It belongs to the set, so that a reload starts with an empty cache: the indexes change.
	verified sync.Map
}

// crlIssuer names one CRL of the store and one issuer certificate, by its DER bytes.
type crlIssuer struct {
	crl    int
	issuer string
}

// LoadTrustStore reads the roots and CRLs named by cfg.
func LoadTrustStore(cfg TrustConfig) (*TrustStore, error) {
	var roots []*x509.Certificate
	for _, f := range cfg.RootFiles {
		certs, err := readCertificates(f)
		if err != nil {
			return nil, fmt.Errorf("trusted roots: %w", err)
		}
		roots = append(roots, certs...)
	}
	var intermediates []*x509.Certificate
	for _, f := range cfg.IntermediateFiles {
		certs, err := readCertificates(f)
		if err != nil {
			return nil, fmt.Errorf("intermediate CAs: %w", err)
		}
		for _, c := range certs {
			if !c.IsCA {
				return nil, fmt.Errorf("intermediate CAs: %s: %q is not a CA certificate", f, c.Subject.String())
			}
		}
		intermediates = append(intermediates, certs...)
	}
	var crls []*x509.RevocationList
	for _, f := range cfg.CRLFiles {
		list, err := readCRLs(f)
		if err != nil {
			return nil, fmt.Errorf("CRLs: %w", err)
		}
		crls = append(crls, list...)
	}
	t, err := NewTrustStore(roots, crls)
	if err != nil {
		return nil, err
	}
	t.intermediates = intermediates
	t.crlFiles = append([]string(nil), cfg.CRLFiles...)
	if cfg.CRLStaleGrace < 0 {
		return nil, fmt.Errorf("trust store: negative CRL grace %s", cfg.CRLStaleGrace)
	}
	t.staleGrace = cfg.CRLStaleGrace
	return t, nil
}

// CRLFiles returns the CRL files the store was loaded from, which ReloadCRLs reads again.
func (t *TrustStore) CRLFiles() []string { return append([]string(nil), t.crlFiles...) }

// ReloadCRLs reads the store's CRL files again and, if every one parses and each CRL of a root
// verifies against it, puts them in force together (SetCRLs). Otherwise it returns why and the
// CRLs in force stay: a half-written or forged file must not lift revocations.
func (t *TrustStore) ReloadCRLs() error {
	var crls []*x509.RevocationList
	for _, f := range t.crlFiles {
		list, err := readCRLs(f)
		if err != nil {
			return fmt.Errorf("CRLs: %w", err)
		}
		crls = append(crls, list...)
	}
	return t.SetCRLs(crls)
}

// SetCRLs replaces the CRLs in force with crls, checked as NewTrustStore checks them; on an error
// nothing changes. Requests already verifying finish with the set they started with.
func (t *TrustStore) SetCRLs(crls []*x509.RevocationList) error {
	if err := checkCRLs(t.roots, crls); err != nil {
		return err
	}
	t.crls.Store(&crlSet{crls: append([]*x509.RevocationList(nil), crls...)})
	return nil
}

// CRLs returns the CRLs in force.
func (t *TrustStore) CRLs() []*x509.RevocationList {
	return append([]*x509.RevocationList(nil), t.crls.Load().crls...)
}

// checkCRLs checks that no CRL is nil and that each CRL issued by one of roots verifies against it.
func checkCRLs(roots []*x509.Certificate, crls []*x509.RevocationList) error {
	for i, crl := range crls {
		if crl == nil {
			return fmt.Errorf("trust store: CRL %d is nil", i)
		}
		for _, r := range roots {
			if bytes.Equal(crl.RawIssuer, r.RawSubject) {
				if err := crl.CheckSignatureFrom(r); err != nil {
					return fmt.Errorf("trust store: CRL of %s does not verify against the root: %w", crl.Issuer, err)
				}
			}
		}
	}
	return nil
}

// NewTrustStore builds a trust store. A CRL issued by one of the roots must verify against it now;
// CRLs of other issuers (intermediates) are checked against the issuer found in each chain.
func NewTrustStore(roots []*x509.Certificate, crls []*x509.RevocationList) (*TrustStore, error) {
	if len(roots) == 0 {
		return nil, errors.New("trust store: no trusted root certificates")
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		if r == nil {
			return nil, errors.New("trust store: nil root certificate")
		}
		pool.AddCert(r)
	}
	if err := checkCRLs(roots, crls); err != nil {
		return nil, err
	}
	t := &TrustStore{roots: append([]*x509.Certificate(nil), roots...), pool: pool}
	t.crls.Store(&crlSet{crls: append([]*x509.RevocationList(nil), crls...)})
	return t, nil
}

// Roots returns the trusted roots.
func (t *TrustStore) Roots() []*x509.Certificate {
	return append([]*x509.Certificate(nil), t.roots...)
}

// VerifyChain verifies cert, with the given intermediates, against the trusted roots at time at,
// then checks every certificate of the chain but the root against the CRLs of its issuer.
func (t *TrustStore) VerifyChain(cert *x509.Certificate, intermediates []*x509.Certificate, at time.Time) error {
	if cert == nil {
		return siobroker.Errorf(siobroker.CodeCertChain, "no signer certificate")
	}
	subject := cert.Subject.String()
	// Checked first so that an expired certificate is reported as such, not as a broken chain.
	if at.Before(cert.NotBefore) {
		return siobroker.Errorf(siobroker.CodeCertExpired, "certificate %q is not valid before %s (message time %s)",
			subject, siobroker.FormatTime(cert.NotBefore), siobroker.FormatTime(at))
	}
	if at.After(cert.NotAfter) {
		return siobroker.Errorf(siobroker.CodeCertExpired, "certificate %q expired at %s (message time %s)",
			subject, siobroker.FormatTime(cert.NotAfter), siobroker.FormatTime(at))
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	for _, c := range t.intermediates {
		inter.AddCert(c)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         t.pool,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return siobroker.Wrap(siobroker.CodeCertExpired, err, "a certificate in the chain of %q is outside its validity at %s", subject, siobroker.FormatTime(at))
		}
		return siobroker.Wrap(siobroker.CodeCertChain, err, "certificate %q does not chain to a trusted root", subject)
	}
	set := t.crls.Load()
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			if err := set.checkRevocation(chain[i], chain[i+1], at, t.staleGrace); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkRevocation looks cert up in every CRL of issuer; a CRL past its nextUpdate by more than
// grace refuses every certificate.
func (t *crlSet) checkRevocation(cert, issuer *x509.Certificate, at time.Time, grace time.Duration) error {
	for i, crl := range t.crls {
		if !bytes.Equal(crl.RawIssuer, cert.RawIssuer) {
			continue
		}
		key := crlIssuer{crl: i, issuer: string(issuer.Raw)}
		if _, ok := t.verified.Load(key); !ok {
			if err := crl.CheckSignatureFrom(issuer); err != nil {
				return siobroker.Wrap(siobroker.CodeCertChain, err, "the CRL of %s does not verify against the issuer's key", crl.Issuer)
			}
			t.verified.Store(key, struct{}{})
		}
		// A stale CRL fails closed once its grace is over: it can no longer vouch that nothing was
		// revoked since. The message is stable; operators and tests match on it.
		if !crl.NextUpdate.IsZero() && at.After(crl.NextUpdate.Add(grace)) {
			if grace == 0 {
				return siobroker.Errorf(siobroker.CodeCertChain, "the CRL of %s is out of date (next update was due %s)",
					crl.Issuer, siobroker.FormatTime(crl.NextUpdate))
			}
			return siobroker.Errorf(siobroker.CodeCertChain, "the CRL of %s is out of date (next update was due %s; the grace of %s ended %s)",
				crl.Issuer, siobroker.FormatTime(crl.NextUpdate), grace, siobroker.FormatTime(crl.NextUpdate.Add(grace)))
		}
		for _, entry := range crl.RevokedCertificateEntries {
			if entry.SerialNumber != nil && entry.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return siobroker.Errorf(siobroker.CodeCertRevoked, "certificate %q (serial %X) was revoked at %s",
					cert.Subject.String(), cert.SerialNumber, siobroker.FormatTime(entry.RevocationTime))
			}
		}
	}
	return nil
}

// LoadCertificates reads every CERTIFICATE block of a PEM file, in order.
func LoadCertificates(file string) ([]*x509.Certificate, error) { return readCertificates(file) }

// readCertificates reads every CERTIFICATE block of a PEM file.
func readCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return certs, nil
}

// ParseCertificates reads every CERTIFICATE block of PEM data, in order; other blocks are
// skipped. No certificate at all is an error.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return certs, nil
}

// readCRLs reads the CRLs of a file (ParseCRLs).
func readCRLs(file string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	crls, err := ParseCRLs(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return crls, nil
}

// ParseCRLs parses the X509 CRL blocks of PEM data or, when there are none, one DER CRL: the forms
// issuers publish CRLs in. The trust store and `siobroker config check` read CRLs with it.
func ParseCRLs(data []byte) ([]*x509.RevocationList, error) {
	var crls []*x509.RevocationList
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("a CRL does not parse: %w", err)
		}
		crls = append(crls, crl)
	}
	if len(crls) == 0 {
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("neither a PEM X509 CRL nor a DER CRL: %w", err)
		}
		crls = append(crls, crl)
	}
	return crls, nil
}
