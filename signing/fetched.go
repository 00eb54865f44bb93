package signing

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/sio-pso/siobroker/signing/gostx509"
)

// Bounds of what verified chains teach a trust store. Every chain was issued under a trusted root,
// so the sets grow only as far as the national PKI's CAs go (a handful), but a bound keeps a
// misbehaving CA from growing them without end.
const (
	maxLearnedCAs    = 64
	maxLearnedPoints = 64
)

// ErrCRLOlder is why PutFetchedCRL refused a CRL older than one of the same issuer in force: a
// distribution point that serves an old CRL (a stale mirror, or a replay by whoever sits on the
// plain-HTTP path) must not take back revocations.
var ErrCRLOlder = errors.New("older than the CRL of its issuer in force")

// FetchedCRL is a CRL fetched from a distribution point, for PutFetchedCRL.
type FetchedCRL struct {
	// Source names where it came from (its URL); a later CRL of the same source replaces it.
	Source string
	CRL    *x509.RevocationList
	// Issuer, when not nil, is a CA certificate to verify the CRL against beside those the store
	// knows (a disk cache keeps the one that verified it). It must itself chain to a trusted root.
	Issuer *x509.Certificate
}

// PutFetchedCRL puts f.CRL in force beside the CRL files, in place of the CRL fetched before from
// f.Source. It must verify against a CA the store trusts: a root, a configured intermediate, one
// met in a verified chain, or f.Issuer if that chains to a root at time at. It must not be older
// than a CRL of the same issuer in force (ErrCRLOlder). It returns the CA it verified against,
// and whether the CRLs in force changed: the same CRL fetched again changes nothing. On an error
// nothing changes.
func (t *TrustStore) PutFetchedCRL(f FetchedCRL, at time.Time) (issuer *x509.Certificate, changed bool, err error) {
	crl := f.CRL
	if crl == nil || f.Source == "" {
		return nil, false, errors.New("trust store: a fetched CRL needs its CRL and its source")
	}
	if issuer = t.issuerOfCRL(crl, f.Issuer, at); issuer == nil {
		return nil, false, fmt.Errorf("trust store: the CRL of %s from %s does not verify against any CA the broker trusts", crl.Issuer, f.Source)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.crls.Load()
	if prev := set.fetched[f.Source]; prev != nil && bytes.Equal(prev.Raw, crl.Raw) {
		return issuer, false, nil
	}
	for _, inForce := range set.crls {
		if ofIssuer(inForce, issuer) && olderCRL(crl, inForce) {
			return nil, false, fmt.Errorf("trust store: the CRL of %s number %v of %s from %s: %w (number %v of %s)", crl.Issuer, crl.Number,
				crl.ThisUpdate.UTC().Format(time.RFC3339), f.Source, ErrCRLOlder, inForce.Number, inForce.ThisUpdate.UTC().Format(time.RFC3339))
		}
	}
	fetched := make(map[string]*x509.RevocationList, len(set.fetched)+1)
	for k, v := range set.fetched {
		fetched[k] = v
	}
	fetched[f.Source] = crl
	t.crls.Store(newCRLSet(set.files, fetched))
	return issuer, true, nil
}

// issuerOfCRL returns the CA crl verifies against: a root, a configured or learnt intermediate, or
// hint where hint chains to a root at time at; nil if none. The signature check (crypto/x509's
// CheckSignatureFrom, or gostx509's for a GOST CRL) also holds the CA to its cRLSign key usage.
func (t *TrustStore) issuerOfCRL(crl *x509.RevocationList, hint *x509.Certificate, at time.Time) *x509.Certificate {
	candidates := slices.Concat(t.roots, t.intermediates, t.seen.cas())
	if hint != nil && hint.IsCA && t.chainsToRoot(hint, at) {
		candidates = append(candidates, hint)
	}
	for _, c := range candidates {
		if bytes.Equal(crl.RawIssuer, c.RawSubject) && checkCRLSignature(crl, c) == nil {
			return c
		}
	}
	return nil
}

// chainsToRoot reports whether the CA certificate c chains to a trusted root at time at.
func (t *TrustStore) chainsToRoot(c *x509.Certificate, at time.Time) bool {
	inter := x509.NewCertPool()
	for _, i := range slices.Concat(t.intermediates, t.seen.cas()) {
		inter.AddCert(i)
	}
	verify := c.Verify
	if gostx509.IsGOSTSigned(c.Raw) {
		verify = t.gostVerify(c, t.seen.cas()) // crypto/x509 cannot check a GOST signature
	}
	_, err := verify(x509.VerifyOptions{Roots: t.pool, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// DistributionPoints returns the HTTP and HTTPS CRL distribution points of the configured CAs and
// of every certificate but the root of the chains verified so far, sorted.
func (t *TrustStore) DistributionPoints() []string { return t.seen.points() }

// DistributionPointsChanged is signalled (without blocking; one signal may stand for several)
// when a verified chain names a distribution point not seen before, so that a fetcher can fetch
// its CRL at once rather than at its next round.
func (t *TrustStore) DistributionPointsChanged() <-chan struct{} { return t.seen.changedCh() }

// OCSPResponders returns the HTTP and HTTPS OCSP responders cert names in its authority
// information access, in its order.
func OCSPResponders(cert *x509.Certificate) []string { return httpURLs(cert.OCSPServer) }

// FetchableURL reports whether s is an absolute http or https URL: the forms of distribution
// point and OCSP responder a broker fetches (LDAP ones are left out).
func FetchableURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// httpURLs returns those of urls that are FetchableURL.
func httpURLs(urls []string) []string {
	var out []string
	for _, s := range urls {
		if FetchableURL(s) {
			out = append(out, s)
		}
	}
	return out
}

// learned is what verified chains have taught a trust store: the CAs between the signers and the
// roots (to verify fetched CRLs against), and the CRL distribution points named along the way.
// Every request passes through chain, so what is known already is found without a lock (known).
type learned struct {
	known    sync.Map // string(CA DER) and "url:"+distribution point, as named, of everything seen
	mu       sync.Mutex
	caList   []*x509.Certificate
	pointSet map[string]bool
	named    int // entries of known that name a distribution point, fetchable or not
	changed  chan struct{}
}

// changedCh returns the channel signalled when a distribution point is added.
func (l *learned) changedCh() chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{}, 1)
	}
	return l.changed
}

// chain learns the CAs and distribution points of a verified chain (leaf first, root last).
func (l *learned) chain(chain []*x509.Certificate, t *TrustStore) {
	for i, c := range chain {
		if i == len(chain)-1 {
			break // the root: nobody above it publishes a CRL that covers it
		}
		l.addPoints(c)
		if i > 0 {
			l.addCA(c, t)
		}
	}
}

// addCA remembers the CA certificate c of a verified chain, unless it is configured.
func (l *learned) addCA(c *x509.Certificate, t *TrustStore) {
	if _, ok := l.known.Load(string(c.Raw)); ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.caList) >= maxLearnedCAs {
		return
	}
	if _, ok := l.known.LoadOrStore(string(c.Raw), true); ok {
		return
	}
	if !slices.ContainsFunc(t.intermediates, c.Equal) {
		l.caList = append(l.caList, c)
	}
}

// addPoints remembers the HTTP distribution points c names, and signals a new one.
func (l *learned) addPoints(c *x509.Certificate) {
	fresh := false
	for _, u := range c.CRLDistributionPoints {
		if _, ok := l.known.Load("url:" + u); !ok {
			fresh = true
			break
		}
	}
	if !fresh {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	added := false
	for _, u := range c.CRLDistributionPoints {
		if l.named >= maxLearnedPoints {
			break
		}
		if _, ok := l.known.LoadOrStore("url:"+u, true); ok {
			continue
		}
		l.named++
		if FetchableURL(u) {
			if l.pointSet == nil {
				l.pointSet = map[string]bool{}
			}
			l.pointSet[u] = true
			added = true
		}
	}
	if added && l.changed != nil {
		select {
		case l.changed <- struct{}{}:
		default: // a signal is pending already; the fetcher reads every point when it wakes
		}
	}
}

// cas returns the learnt CAs.
func (l *learned) cas() []*x509.Certificate {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.caList)
}

// points returns the learnt distribution points, sorted.
func (l *learned) points() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.pointSet))
	for u := range l.pointSet {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}
