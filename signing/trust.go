package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// TrustConfig names the PEM files of the trusted roots and of the CRLs to check, and how the
// signer's certificate is checked online.
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
	// OCSP asks the OCSP responder a leaf certificate names (its authority information access)
	// for its status; nil never asks. OCSPPolicy says what its answer, or its silence, does.
	OCSP       OCSPChecker
	OCSPPolicy OCSPPolicy
}

// TrustStore holds the trusted roots and the CRLs. It is safe for concurrent use. The roots and
// intermediates never change; the CRLs come from two sources, the CRL files (replaced as a whole
// by SetCRLs or ReloadCRLs) and CRLs fetched from distribution points (PutFetchedCRL, one per
// source), because revocation must take effect in a running broker (a CRL frozen at start-up
// answers revoked users and, past its nextUpdate, refuses everyone until a restart).
type TrustStore struct {
	roots []*x509.Certificate
	pool  *x509.CertPool
	// intermediates are the configured intermediate CAs, offered to every chain.
	intermediates []*x509.Certificate
	// crlFiles are the files ReloadCRLs reads (LoadTrustStore's TrustConfig.CRLFiles).
	crlFiles []string
	// staleGrace is TrustConfig.CRLStaleGrace.
	staleGrace time.Duration
	// ocsp and ocspPolicy are TrustConfig.OCSP and OCSPPolicy.
	ocsp       OCSPChecker
	ocspPolicy OCSPPolicy

	// mu orders the writers of crls (SetCRLs, PutFetchedCRL), each of which builds the next set
	// from the one in force: without it, a file reload and a fetch at once would lose one of the two.
	mu sync.Mutex
	// crls is the CRL set in force. A request loads it once, so that it sees one set whole even
	// while a reload swaps in the next.
	crls atomic.Pointer[crlSet]
	// seen is what verified chains taught the store: their CAs and distribution points.
	seen learned
	// paths remembers the certificates whose path to a root verified (verifyPath).
	paths pathCache
}

// crlSet is one generation of CRLs with the cache of their verified signatures.
type crlSet struct {
	files []*x509.RevocationList // from the CRL files, in their order
	// fetched are the CRLs fetched from distribution points, by source URL.
	fetched map[string]*x509.RevocationList
	// crls is what requests check: files, then fetched by source.
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

// newCRLSet returns the set of files and fetched, checked in that order.
func newCRLSet(files []*x509.RevocationList, fetched map[string]*x509.RevocationList) *crlSet {
	s := &crlSet{files: files, fetched: fetched}
	s.crls = append(s.crls, files...)
	for _, src := range slices.Sorted(maps.Keys(fetched)) {
		s.crls = append(s.crls, fetched[src])
	}
	return s
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
	if err := checkCRLs(intermediates, crls); err != nil {
		return nil, err
	}
	t.intermediates = intermediates
	t.crlFiles = append([]string(nil), cfg.CRLFiles...)
	if cfg.CRLStaleGrace < 0 {
		return nil, fmt.Errorf("trust store: negative CRL grace %s", cfg.CRLStaleGrace)
	}
	t.staleGrace = cfg.CRLStaleGrace
	if cfg.OCSPPolicy < OCSPOff || cfg.OCSPPolicy > OCSPRequire {
		return nil, fmt.Errorf("trust store: OCSP policy %d is not one of OCSPOff, OCSPPrefer, OCSPRequire", cfg.OCSPPolicy)
	}
	t.ocsp, t.ocspPolicy = cfg.OCSP, cfg.OCSPPolicy
	// The configured CAs name the distribution points of the CRLs that cover them (an
	// intermediate's is its root's CRL): a fetcher has them before the first request.
	for _, c := range slices.Concat(roots, intermediates) {
		t.seen.addPoints(c)
	}
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

// SetCRLs replaces the CRLs of the files with crls, checked as NewTrustStore checks them (and
// those of the configured intermediates against them); on an error nothing changes. A new set may
// not lift a revocation by what it leaves out: each CRL in force from the files must have a
// successor of the same issuer, no older (its number and thisUpdate), or the set is refused. So a
// file swapped for a CRL of another issuer, a foreign one, or an older one of the same issuer,
// leaves the CRLs in force as they are; a CA's CRL is withdrawn only by a restart with another
// configuration. The fetched CRLs stay. Requests already verifying finish with the set they
// started with.
func (t *TrustStore) SetCRLs(crls []*x509.RevocationList) error {
	if err := checkCRLs(slices.Concat(t.roots, t.intermediates), crls); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := noRevocationLifted(t.crls.Load().files, crls); err != nil {
		return err
	}
	t.crls.Store(newCRLSet(slices.Clone(crls), t.crls.Load().fetched))
	return nil
}

// noRevocationLifted returns why next cannot replace cur: a CRL of cur whose issuer has no CRL in
// next, or only an older one.
func noRevocationLifted(cur, next []*x509.RevocationList) error {
	var errs []error
	for _, old := range cur {
		var newest *x509.RevocationList
		for _, c := range next {
			if sameIssuer(c, old) && (newest == nil || newer(c, newest)) {
				newest = c
			}
		}
		switch {
		case newest == nil:
			errs = append(errs, fmt.Errorf("trust store: the new CRL files hold no CRL of %s, whose CRL number %v is in force: "+
				"a file change cannot lift its revocations (restart with another trust.crls to retire a CA's CRL)", old.Issuer, old.Number))
		case newer(old, newest):
			errs = append(errs, fmt.Errorf("trust store: the new CRL of %s (number %v of %s) is older than the one in force (number %v of %s): "+
				"an older CRL cannot lift revocations made since", old.Issuer, newest.Number, newest.ThisUpdate.Format(time.RFC3339),
				old.Number, old.ThisUpdate.Format(time.RFC3339)))
		}
	}
	return errors.Join(errs...)
}

// sameIssuer reports whether a and b are CRLs of one issuer: the same name, whatever its
// encoding (a PrintableString and a UTF8String of one name are one issuer to a reader).
func sameIssuer(a, b *x509.RevocationList) bool {
	return bytes.Equal(a.RawIssuer, b.RawIssuer) || a.Issuer.String() == b.Issuer.String()
}

// newer reports whether a supersedes b: a higher CRL number, or without numbers a later
// thisUpdate.
func newer(a, b *x509.RevocationList) bool {
	if a.Number != nil && b.Number != nil && a.Number.Cmp(b.Number) != 0 {
		return a.Number.Cmp(b.Number) > 0
	}
	return a.ThisUpdate.After(b.ThisUpdate)
}

// CRLs returns the CRLs in force: those of the files, then the fetched ones by source.
func (t *TrustStore) CRLs() []*x509.RevocationList {
	return append([]*x509.RevocationList(nil), t.crls.Load().crls...)
}

// checkCRLs checks that no CRL is nil and that each CRL that names one of cas as its issuer
// verifies against it. The name is compared as a name, not as bytes: a CRL that spells a CA's
// name in another string type is still that CA's, and must be signed by it.
func checkCRLs(cas []*x509.Certificate, crls []*x509.RevocationList) error {
	for i, crl := range crls {
		if crl == nil {
			return fmt.Errorf("trust store: CRL %d is nil", i)
		}
		for _, ca := range cas {
			if bytes.Equal(crl.RawIssuer, ca.RawSubject) || crl.Issuer.String() == ca.Subject.String() {
				if err := checkCRLSignature(crl, ca); err != nil {
					return fmt.Errorf("trust store: CRL of %s does not verify against the root (or intermediate CA) of that name: %w", crl.Issuer, err)
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
	t.crls.Store(newCRLSet(slices.Clone(crls), nil))
	return t, nil
}

// Roots returns the trusted roots.
func (t *TrustStore) Roots() []*x509.Certificate {
	return append([]*x509.Certificate(nil), t.roots...)
}

// VerifyChain is VerifyChainContext without a request's context, for callers that have none (a
// TLS client certificate, an archive's seal): an OCSP question is still bounded by its timeout.
func (t *TrustStore) VerifyChain(cert *x509.Certificate, intermediates []*x509.Certificate, at time.Time) error {
	return t.VerifyChainContext(context.Background(), cert, intermediates, at)
}

// VerifyChainContext verifies cert, with the given intermediates, against the trusted roots at
// time at, then checks every certificate of the chain but the root against the CRLs of its
// issuer, and last, where the store has an OCSP checker, asks cert's OCSP responder under the
// store's OCSPPolicy. ctx bounds the OCSP question.
func (t *TrustStore) VerifyChainContext(ctx context.Context, cert *x509.Certificate, intermediates []*x509.Certificate, at time.Time) error {
	path, err := t.verifyPath(cert, intermediates, at)
	if err != nil {
		return err
	}
	return t.checkStatus(ctx, path.chains, cert, at)
}

// verifiedChains is what verifyPath found: the chains, and under which key rememberPath keeps
// them (cached: they were remembered already).
type verifiedChains struct {
	chains [][]*x509.Certificate
	key    [sha256.Size]byte
	cached bool
}

// rememberPath keeps a path verifyPath found, once its signer has proved its key with it (a
// SignatureValue that verified) and its status was checked: a certificate anyone can copy from a
// directory does not take room in the cache.
func (t *TrustStore) rememberPath(p verifiedChains) {
	if !p.cached {
		t.paths.put(p.key, p.chains)
	}
}

// verifyPath is the first half of VerifyChainContext: cert's validity at at and its path to a
// trusted root, the signatures along it checked. It costs no network and, for a signer whose
// path was remembered (rememberPath), nothing but a look-up (pathCache): a GOST path costs a GOST
// verification per link, which every request of a GOST signer paid again.
func (t *TrustStore) verifyPath(cert *x509.Certificate, intermediates []*x509.Certificate, at time.Time) (verifiedChains, error) {
	if cert == nil {
		return verifiedChains{}, siobroker.Errorf(siobroker.CodeCertChain, "no signer certificate")
	}
	subject := cert.Subject.String()
	// Checked first so that an expired certificate is reported as such, not as a broken chain.
	if at.Before(cert.NotBefore) {
		return verifiedChains{}, siobroker.Errorf(siobroker.CodeCertExpired, "certificate %q is not valid before %s (message time %s)",
			subject, siobroker.FormatTime(cert.NotBefore), siobroker.FormatTime(at))
	}
	if at.After(cert.NotAfter) {
		return verifiedChains{}, siobroker.Errorf(siobroker.CodeCertExpired, "certificate %q expired at %s (message time %s)",
			subject, siobroker.FormatTime(cert.NotAfter), siobroker.FormatTime(at))
	}
	key := pathKey(cert, intermediates)
	if chains, ok := t.paths.get(key, at); ok {
		return verifiedChains{chains: chains, key: key, cached: true}, nil
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	for _, c := range t.intermediates {
		inter.AddCert(c)
	}
	verify := cert.Verify
	if gostx509.IsGOSTSigned(cert.Raw) {
		// crypto/x509 cannot check a GOST signature: the path is built in gostchain.go.
		verify = t.gostVerify(cert, intermediates)
	}
	chains, err := verify(x509.VerifyOptions{
		Roots:         t.pool,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return verifiedChains{}, siobroker.Wrap(siobroker.CodeCertExpired, err, "a certificate in the chain of %q is outside its validity at %s", subject, siobroker.FormatTime(at))
		}
		return verifiedChains{}, siobroker.Wrap(siobroker.CodeCertChain, err, "certificate %q does not chain to a trusted root", subject)
	}
	// Learnt before revocation is checked: a signer refused now still names where its issuer's
	// CRL is published, and that is most useful when the issuer has no CRL in force yet.
	t.seen.chain(chains[0], t)
	return verifiedChains{chains: chains, key: key}, nil
}

// checkStatus is the second half of VerifyChainContext: the revocation of every certificate of
// chains but the roots by the CRLs in force, then cert's OCSP responder. It runs on every
// request, whatever verifyPath remembered.
func (t *TrustStore) checkStatus(ctx context.Context, chains [][]*x509.Certificate, cert *x509.Certificate, at time.Time) error {
	set := t.crls.Load()
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			if err := set.checkRevocation(chain[i], chain[i+1], at, t.staleGrace); err != nil {
				return err
			}
		}
	}
	// A trusted root used as a signer's certificate has no issuer to ask about it.
	if t.ocsp != nil && t.ocspPolicy != OCSPOff && len(OCSPResponders(cert)) > 0 && len(chains[0]) > 1 {
		return t.checkOCSP(ctx, set, cert, chains[0][1])
	}
	return nil
}

// ofIssuer reports whether crl may speak for the certificates issuer issued: it names issuer's
// subject and, where both say which key, issuer's key. A CA that renewed its key under the same
// name publishes a CRL per key; one signed by the other key says nothing of these certificates.
func ofIssuer(crl *x509.RevocationList, issuer *x509.Certificate) bool {
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return false
	}
	return len(crl.AuthorityKeyId) == 0 || len(issuer.SubjectKeyId) == 0 || bytes.Equal(crl.AuthorityKeyId, issuer.SubjectKeyId)
}

// checkRevocation looks cert up in every CRL of issuer, from the files and fetched alike: listed
// in any is revoked. If the issuer has CRLs but none is current (within its nextUpdate and the
// grace), every certificate is refused, with the newest of them named; a newer CRL from another
// source is enough to keep an old file's CRL from refusing.
func (t *crlSet) checkRevocation(cert, issuer *x509.Certificate, at time.Time, grace time.Duration) error {
	var stale *x509.RevocationList // the newest CRL of the issuer that is out of date, while none is current
	current := false
	for i, crl := range t.crls {
		if !bytes.Equal(crl.RawIssuer, cert.RawIssuer) || !ofIssuer(crl, issuer) {
			continue
		}
		key := crlIssuer{crl: i, issuer: string(issuer.Raw)}
		if _, ok := t.verified.Load(key); !ok {
			if err := checkCRLSignature(crl, issuer); err != nil {
				return siobroker.Wrap(siobroker.CodeCertChain, err, "the CRL of %s does not verify against the issuer's key", crl.Issuer)
			}
			t.verified.Store(key, struct{}{})
		}
		for _, entry := range crl.RevokedCertificateEntries {
			if entry.SerialNumber != nil && entry.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return siobroker.Errorf(siobroker.CodeCertRevoked, "certificate %q (serial %X) was revoked at %s",
					cert.Subject.String(), cert.SerialNumber, siobroker.FormatTime(entry.RevocationTime))
			}
		}
		switch {
		case crl.NextUpdate.IsZero() || !at.After(crl.NextUpdate.Add(grace)):
			current = true
		case stale == nil || olderCRL(stale, crl):
			stale = crl
		}
	}
	// A stale CRL fails closed once its grace is over: it can no longer vouch that nothing was
	// revoked since. The message is stable; operators and tests match on it.
	if current || stale == nil {
		return nil
	}
	if grace == 0 {
		return siobroker.Errorf(siobroker.CodeCertChain, "the CRL of %s is out of date (next update was due %s)",
			stale.Issuer, siobroker.FormatTime(stale.NextUpdate))
	}
	return siobroker.Errorf(siobroker.CodeCertChain, "the CRL of %s is out of date (next update was due %s; the grace of %s ended %s)",
		stale.Issuer, siobroker.FormatTime(stale.NextUpdate), grace, siobroker.FormatTime(stale.NextUpdate.Add(grace)))
}

// hasCRL reports whether the set holds a CRL of the issuer of cert. After checkRevocation passed,
// that CRL is in force under the stale policy: current, or within its grace.
func (t *crlSet) hasCRL(cert, issuer *x509.Certificate) bool {
	for _, crl := range t.crls {
		if bytes.Equal(crl.RawIssuer, cert.RawIssuer) && ofIssuer(crl, issuer) {
			return true
		}
	}
	return false
}

// olderCRL reports whether a is older than b, two CRLs of one issuer: by their CRL numbers, which
// an issuer increases with every CRL it publishes (RFC 5280, section 5.2.3), where both carry one;
// otherwise by thisUpdate.
func olderCRL(a, b *x509.RevocationList) bool {
	if a.Number != nil && b.Number != nil {
		return a.Number.Cmp(b.Number) < 0
	}
	return a.ThisUpdate.Before(b.ThisUpdate)
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
