package cli

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/testpki"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// devCA returns the development PKI's CA of pki with its key, to issue and revoke as a test's
// national CA would.
func devCA(t *testing.T, pki string) *testpki.CA {
	t.Helper()
	cas, err := signing.LoadCertificates(filepath.Join(pki, devpki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(pki, devpki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("the development CA key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &testpki.CA{Cert: cas[0], Key: key.(crypto.Signer)}
}

// reissue gives the role-1 prosecutor of e a new certificate from the development CA that names
// the distribution point crlURL and the OCSP responder ocspURL (either may be empty), and returns
// its signer and certificate. The subject, and so the IIN, is the prosecutor's.
func reissue(t *testing.T, e *e2eBroker, crlURL, ocspURL string) (*signing.Signer, *x509.Certificate) {
	t.Helper()
	ca := devCA(t, e.pki)
	certs, err := signing.LoadCertificates(filepath.Join(e.pki, findUserByRole(t, e.manifest, 1).Cert))
	if err != nil {
		t.Fatal(err)
	}
	leaf := ca.Issue(t, certs[0].Subject, time.Now(), crlURL, ocspURL)
	s, err := signing.NewSigner(leaf.Cert, leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s, leaf.Cert
}

// servedBytes is an httptest server answering every request with the body it is given now.
type servedBytes struct {
	srv  *httptest.Server
	mu   sync.Mutex
	body func(r *http.Request) []byte
}

func newServed(t *testing.T) *servedBytes {
	t.Helper()
	s := &servedBytes{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Write(body(r))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *servedBytes) serve(body func(r *http.Request) []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// waitForFault sends as signer until the broker answers with the fault code ("" for an answer),
// for up to limit.
func waitForFault(t *testing.T, e *e2eBroker, signer *signing.Signer, code siobroker.Code, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		status, body := e.sendOne(t, signer, 1)
		if code == "" && status == http.StatusOK {
			return
		}
		if code != "" && status != http.StatusOK {
			wantFault(t, status, body, 0, code)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %q within %s: HTTP %d %s", code, limit, status, truncate(body))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFetchedCRLRevokesThroughTheBroker (issue 16, item 3): a user's certificate names a local
// distribution point. Their first request is answered and teaches the broker the point, whose
// CRL it fetches. The CA revokes the user at the distribution point only (no file changes, no
// SIGHUP): within the fetch schedule (trust.crl_fetch_every, 1s here) the user is refused
// SIO-CERT-REVOKED. The broker is then restarted with the distribution point down: the CRL it
// cached under its data directory refuses the user from the first request.
func TestFetchedCRLRevokesThroughTheBroker(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	edit := func(c *config.Broker) { c.Trust.CRLFetchEvery, c.Trust.OCSP = time.Second, config.OCSPOff }
	e, err := startE2EWith(dir, siobroker.SystemClock{}, edit)
	if err != nil {
		t.Fatalf("start a broker: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			e.b.Close()
		}
	})
	ca := devCA(t, e.pki)
	dp := newServed(t)
	crlURL := dp.srv.URL + "/nca_rsa.crl"
	now := time.Now()
	// Numbered past the development CRL file's 1: a fetched CRL older than the one in force is refused.
	fresh := ca.CRL(t, 100, now.Add(-time.Minute), now.Add(time.Hour))
	dp.serve(func(*http.Request) []byte { return fresh })
	user, cert := reissue(t, e, crlURL, "")

	if status, body := e.sendOne(t, user, 1); status != http.StatusOK {
		t.Fatalf("before the revocation: HTTP %d %s", status, truncate(body))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, ok := metric(scrape(t, e), "siobroker_crl_fetches_total", `result="applied"`); ok && n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the distribution point the first request named was not fetched within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	revoking := ca.CRL(t, 101, now, now.Add(time.Hour), cert)
	dp.serve(func(*http.Request) []byte { return revoking })
	revokedAt := time.Now()
	waitForFault(t, e, user, siobroker.CodeCertRevoked, 10*time.Second)
	t.Logf("refused %s after the distribution point published the revocation", time.Since(revokedAt).Round(10*time.Millisecond))

	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	dp.srv.Close()
	e2, err := startE2EWith(dir, siobroker.SystemClock{}, edit)
	if err != nil {
		t.Fatalf("restart the broker with the distribution point down: %v", err)
	}
	t.Cleanup(func() { e2.b.Close() })
	status, body := e2.sendOne(t, user, 1)
	wantFault(t, status, body, 0, siobroker.CodeCertRevoked)
	if n, ok := metric(scrape(t, e2), "siobroker_crl_fetches_total", `result="failed"`); !ok || n < 1 {
		t.Errorf("siobroker_crl_fetches_total{result=\"failed\"} = %v (found %v) after a start with the distribution point down", n, ok)
	}
}

// TestOCSPThroughTheBroker (issue 16, item 3): a user's certificate names a local OCSP
// responder. Under trust.ocsp: require, "good" is answered and "revoked" is refused
// SIO-CERT-REVOKED; with the responder down the user is refused SIO-CERT-STATUS-UNKNOWN (a
// SOAP Server fault: retry later). Under prefer, the development CRL in force decides and the
// user is answered.
func TestOCSPThroughTheBroker(t *testing.T) {
	start := func(policy string) *e2eBroker {
		src := sharedBroker(t)
		dir := t.TempDir()
		copyDir(t, src.pki, filepath.Join(dir, "pki"))
		e, err := startE2EWith(dir, siobroker.SystemClock{}, func(c *config.Broker) {
			// No cache, so that each answer of the responder is seen by the next request.
			c.Trust.OCSP, c.Trust.OCSPCache, c.Trust.OCSPTimeout = policy, 0, time.Second
		})
		if err != nil {
			t.Fatalf("start a broker: %v", err)
		}
		t.Cleanup(func() { e.b.Close() })
		return e
	}
	e := start(config.OCSPRequire)
	ca := devCA(t, e.pki)
	responder := newServed(t)
	user, cert := reissue(t, e, "", responder.srv.URL+"/ocsp")
	status := ocsp.Good
	var mu sync.Mutex
	responder.serve(func(r *http.Request) []byte {
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		return ca.OCSPResponse(t, cert, status, now.Add(-time.Minute), now.Add(time.Hour), nil)
	})
	if status, body := e.sendOne(t, user, 1); status != http.StatusOK {
		t.Fatalf("OCSP good: HTTP %d %s", status, truncate(body))
	}
	mu.Lock()
	status = ocsp.Revoked
	mu.Unlock()
	code, body := e.sendOne(t, user, 1)
	wantFault(t, code, body, 0, siobroker.CodeCertRevoked)

	// The responder down: require refuses, prefer lets the CRL in force decide.
	prefer := start(config.OCSPPrefer)
	responder.srv.Close()
	code, body = e.sendOne(t, user, 1)
	if f := wantFault(t, code, body, 0, siobroker.CodeCertStatus); f.Message == "" {
		t.Error("the fault has no message")
	}
	if code, body := prefer.sendOne(t, user, 1); code != http.StatusOK {
		t.Fatalf("prefer, the responder down, a CRL in force: HTTP %d %s", code, truncate(body))
	}
	metrics := scrape(t, e)
	for _, result := range []string{"good", "revoked", "failed"} {
		if n, ok := metric(metrics, "siobroker_ocsp_responses_total", `result="`+result+`"`); !ok || n < 1 {
			t.Errorf("siobroker_ocsp_responses_total{result=%q} = %v (found %v), want at least 1", result, n, ok)
		}
	}
}
