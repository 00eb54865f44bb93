package signing

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testpki"
)

func parseCRL(t *testing.T, der []byte) *x509.RevocationList {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func wantCode(t *testing.T, what string, err error, code siobroker.Code) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("%s: %v, want accepted", what, err)
		}
		return
	}
	if got := siobroker.ErrorCode(err); err == nil || got != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

// TestPutFetchedCRL: a CRL fetched from a distribution point is in force beside the CRL files. It
// must verify against a CA the store trusts (a CRL signed by another key that names the CA is
// refused), and must not be older than the CRL of its issuer in force; the same CRL again
// changes nothing. A newer fetched CRL revokes; a file reload keeps the fetched CRLs; and a
// current fetched CRL keeps an out-of-date file CRL of the same issuer from refusing everyone.
func TestPutFetchedCRL(t *testing.T) {
	now := time.Now()
	root := testpki.NewRoot(t, "fetch root", now)
	leaf := root.Issue(t, pkix.Name{CommonName: "fetch user"}, now, "http://crl.invalid/root.crl", "")
	// The file's CRL is out of date beyond any grace: alone it refuses every certificate.
	fileCRL := parseCRL(t, root.CRL(t, 1, now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
	store, err := NewTrustStore([]*x509.Certificate{root.Cert}, []*x509.RevocationList{fileCRL})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "with an out-of-date CRL only", store.VerifyChain(leaf.Cert, nil, now), siobroker.CodeCertChain)

	const src = "http://crl.invalid/root.crl"
	forged := parseCRL(t, root.CRLSignedBy(t, testpki.Key(t), 5, now.Add(-time.Minute), now.Add(time.Hour), leaf.Cert))
	if _, changed, err := store.PutFetchedCRL(FetchedCRL{Source: src, CRL: forged}, now); err == nil || changed {
		t.Fatalf("a CRL signed by another key: changed %v, %v; want refused", changed, err)
	}
	fresh := parseCRL(t, root.CRL(t, 2, now.Add(-time.Minute), now.Add(time.Hour)))
	issuer, changed, err := store.PutFetchedCRL(FetchedCRL{Source: src, CRL: fresh}, now)
	if err != nil || !changed || !issuer.Equal(root.Cert) {
		t.Fatalf("a current CRL of the root: issuer %v, changed %v, %v", issuer, changed, err)
	}
	wantCode(t, "a current fetched CRL beside the out-of-date file", store.VerifyChain(leaf.Cert, nil, now), "")
	if _, changed, err := store.PutFetchedCRL(FetchedCRL{Source: src, CRL: fresh}, now); err != nil || changed {
		t.Fatalf("the same CRL again: changed %v, %v; want no change", changed, err)
	}

	revoking := parseCRL(t, root.CRL(t, 3, now, now.Add(time.Hour), leaf.Cert))
	if _, changed, err := store.PutFetchedCRL(FetchedCRL{Source: src, CRL: revoking}, now); err != nil || !changed {
		t.Fatalf("a newer CRL: changed %v, %v", changed, err)
	}
	wantCode(t, "revoked by the fetched CRL", store.VerifyChain(leaf.Cert, nil, now), siobroker.CodeCertRevoked)

	// An older CRL, even from another source, must not lift the revocation.
	if _, _, err := store.PutFetchedCRL(FetchedCRL{Source: "http://mirror.invalid/root.crl", CRL: fresh}, now); !errors.Is(err, ErrCRLOlder) {
		t.Fatalf("an older CRL: %v, want ErrCRLOlder", err)
	}
	wantCode(t, "after an older CRL was offered", store.VerifyChain(leaf.Cert, nil, now), siobroker.CodeCertRevoked)

	// The files are reloaded apart: the fetched CRL stays in force.
	if err := store.SetCRLs([]*x509.RevocationList{fileCRL}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "after a file reload", store.VerifyChain(leaf.Cert, nil, now), siobroker.CodeCertRevoked)
	if got := len(store.CRLs()); got != 2 {
		t.Errorf("%d CRLs in force, want the file's and the fetched one", got)
	}
}

// TestFetchedCRLOfAnIntermediate: the CRL of an intermediate CA that is not configured verifies
// once a verified chain has taught the store the intermediate, or when the fetcher offers the
// intermediate itself (its disk cache keeps it), provided that chains to a root; a CA that
// chains to no root does not make its CRL acceptable.
func TestFetchedCRLOfAnIntermediate(t *testing.T) {
	now := time.Now()
	root := testpki.NewRoot(t, "root", now)
	inter := root.NewIntermediate(t, "issuing CA", now, "http://crl.invalid/root.crl")
	leaf := inter.Issue(t, pkix.Name{CommonName: "user"}, now, "http://crl.invalid/inter.crl", "")
	crl := parseCRL(t, inter.CRL(t, 1, now.Add(-time.Minute), now.Add(time.Hour), leaf.Cert))

	store, err := NewTrustStore([]*x509.Certificate{root.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.PutFetchedCRL(FetchedCRL{Source: "http://crl.invalid/inter.crl", CRL: crl}, now); err == nil {
		t.Fatal("a CRL of an intermediate the store does not know was accepted")
	}
	stranger := testpki.NewRoot(t, "issuing CA", now) // the same name, chained to nothing
	if _, _, err := store.PutFetchedCRL(FetchedCRL{Source: "http://crl.invalid/inter.crl", CRL: crl, Issuer: stranger.Cert}, now); err == nil {
		t.Fatal("a CRL was accepted on the word of a CA that chains to no root")
	}
	if _, changed, err := store.PutFetchedCRL(FetchedCRL{Source: "http://crl.invalid/inter.crl", CRL: crl, Issuer: inter.Cert}, now); err != nil || !changed {
		t.Fatalf("with the intermediate offered: changed %v, %v", changed, err)
	}
	wantCode(t, "revoked by the intermediate's fetched CRL", store.VerifyChain(leaf.Cert, []*x509.Certificate{inter.Cert}, now), siobroker.CodeCertRevoked)

	// Learnt from a chain: a second store sees the user's chain first.
	store2, err := NewTrustStore([]*x509.Certificate{root.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := store2.DistributionPointsChanged()
	wantCode(t, "before any CRL", store2.VerifyChain(leaf.Cert, []*x509.Certificate{inter.Cert}, now), "")
	select {
	case <-changed:
	default:
		t.Error("a chain naming new distribution points did not signal them")
	}
	if got, want := store2.DistributionPoints(), []string{"http://crl.invalid/inter.crl", "http://crl.invalid/root.crl"}; !slices.Equal(got, want) {
		t.Errorf("distribution points %v, want %v", got, want)
	}
	if _, _, err := store2.PutFetchedCRL(FetchedCRL{Source: "http://crl.invalid/inter.crl", CRL: crl}, now); err != nil {
		t.Fatalf("the intermediate learnt from a chain: %v", err)
	}
	wantCode(t, "revoked once learnt", store2.VerifyChain(leaf.Cert, []*x509.Certificate{inter.Cert}, now), siobroker.CodeCertRevoked)
}

// fakeOCSP answers CheckOCSP with a fixed answer or error and counts the questions.
type fakeOCSP struct {
	answer OCSPAnswer
	err    error
	asked  int
}

func (f *fakeOCSP) CheckOCSP(context.Context, *x509.Certificate, *x509.Certificate) (OCSPAnswer, error) {
	f.asked++
	return f.answer, f.err
}

// TestOCSPPolicy: what each trust.ocsp policy does with each answer of the responder, with and
// without a CRL of the issuer in force. A certificate naming no responder is not asked about.
func TestOCSPPolicy(t *testing.T) {
	now := time.Now()
	root := testpki.NewRoot(t, "ocsp root", now)
	leaf := root.Issue(t, pkix.Name{CommonName: "ocsp user"}, now, "", "http://ocsp.invalid/")
	noResponder := root.Issue(t, pkix.Name{CommonName: "no responder"}, now, "", "")
	crl := parseCRL(t, root.CRL(t, 1, now.Add(-time.Minute), now.Add(time.Hour)))
	good := OCSPAnswer{Status: OCSPGood}
	revoked := OCSPAnswer{Status: OCSPRevoked, RevokedAt: now}
	unknown := OCSPAnswer{Status: OCSPUnknown}
	down := errors.New("connection refused")
	for _, tc := range []struct {
		policy  OCSPPolicy
		withCRL bool
		answer  OCSPAnswer
		err     error
		want    siobroker.Code
	}{
		{OCSPOff, false, revoked, nil, ""}, // not asked
		{OCSPPrefer, false, good, nil, ""},
		{OCSPPrefer, true, revoked, nil, siobroker.CodeCertRevoked},
		{OCSPPrefer, true, OCSPAnswer{}, down, ""},
		{OCSPPrefer, true, unknown, nil, ""},
		{OCSPPrefer, false, OCSPAnswer{}, down, siobroker.CodeCertStatus},
		{OCSPPrefer, false, unknown, nil, siobroker.CodeCertStatus},
		{OCSPRequire, true, good, nil, ""},
		{OCSPRequire, true, revoked, nil, siobroker.CodeCertRevoked},
		{OCSPRequire, true, OCSPAnswer{}, down, siobroker.CodeCertStatus},
		{OCSPRequire, true, unknown, nil, siobroker.CodeCertStatus},
	} {
		var crls []*x509.RevocationList
		if tc.withCRL {
			crls = []*x509.RevocationList{crl}
		}
		store, err := NewTrustStore([]*x509.Certificate{root.Cert}, crls)
		if err != nil {
			t.Fatal(err)
		}
		fake := &fakeOCSP{answer: tc.answer, err: tc.err}
		store.ocsp, store.ocspPolicy = fake, tc.policy
		what := tc.policy.String()
		if tc.withCRL {
			what += " with a CRL"
		}
		err = store.VerifyChain(leaf.Cert, nil, now)
		wantCode(t, what+", answer "+strings.TrimSpace(tc.answer.describe()+" "+errString(tc.err)), err, tc.want)
		if (fake.asked == 0) != (tc.policy == OCSPOff) {
			t.Errorf("%s: asked %d times", what, fake.asked)
		}
		if tc.want == siobroker.CodeCertStatus && tc.err != nil && !errors.Is(err, down) {
			t.Errorf("%s: the refusal does not keep its cause for the log: %v", what, err)
		}
		fake.asked = 0
		wantCode(t, what+": a certificate naming no responder", store.VerifyChain(noResponder.Cert, nil, now), "")
		if fake.asked != 0 {
			t.Errorf("%s: a certificate naming no responder was asked about", what)
		}
	}
}

func (a OCSPAnswer) describe() string {
	return map[OCSPStatus]string{OCSPGood: "good", OCSPRevoked: "revoked", OCSPUnknown: "unknown"}[a.Status]
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
