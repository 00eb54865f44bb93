package revocation

import (
	"context"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/internal/testpki"
	"github.com/sio-pso/siobroker/signing"
)

// responder is a local OCSP responder: it answers every request with what respond returns for
// the serial number asked about, which the test changes.
type responder struct {
	srv     *httptest.Server
	url     string
	mu      sync.Mutex
	respond func(req *ocsp.Request) []byte
	delay   time.Duration
	hits    int
}

func newResponder(t *testing.T) *responder {
	t.Helper()
	r := &responder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/ocsp-request" {
			http.Error(w, "not an OCSP request", http.StatusBadRequest)
			return
		}
		ocspReq, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		respond, delay := r.respond, r.delay
		r.hits++
		r.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(respond(ocspReq))
	}))
	t.Cleanup(r.srv.Close)
	r.url = r.srv.URL + "/ocsp"
	return r
}

func (r *responder) set(respond func(*ocsp.Request) []byte) {
	r.mu.Lock()
	r.respond = respond
	r.mu.Unlock()
}

func (r *responder) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

// ocspStore is a trust store of root with the OCSP checker o under policy, and crls from files.
func ocspStore(t *testing.T, root *testpki.CA, o signing.OCSPChecker, policy signing.OCSPPolicy, crls ...[]byte) *signing.TrustStore {
	t.Helper()
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, testpki.PEM("CERTIFICATE", root.Cert.Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	var crlFiles []string
	for i, der := range crls {
		f := filepath.Join(dir, "crl"+string(rune('0'+i))+".crl")
		if err := os.WriteFile(f, der, 0o600); err != nil {
			t.Fatal(err)
		}
		crlFiles = append(crlFiles, f)
	}
	store, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{rootFile}, CRLFiles: crlFiles,
		CRLStaleGrace: time.Hour, OCSP: o, OCSPPolicy: policy})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// TestOCSPRevokedAndCached (issue 16, item 3): a user's certificate names a local OCSP responder.
// "good" is answered and cached until the response's nextUpdate: no second question before it.
// The responder then says "revoked": once the cached answer is out of date the user is refused
// SIO-CERT-REVOKED, the code a CRL's revocation gives.
func TestOCSPRevokedAndCached(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test НУЦ РК", start)
	resp := newResponder(t)
	user := root.Issue(t, pkix.Name{CommonName: "user"}, start, "", resp.url)
	status := ocsp.Good
	var mu sync.Mutex
	resp.set(func(req *ocsp.Request) []byte {
		mu.Lock()
		defer mu.Unlock()
		now := clock.Now()
		return root.OCSPResponse(t, user.Cert, status, now.Add(-time.Minute), now.Add(10*time.Minute), nil)
	})
	checker, err := NewOCSP(OCSPConfig{Timeout: 2 * time.Second, Cache: time.Hour, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	results := counts(checker.Counts)
	store := ocspStore(t, root, checker, signing.OCSPRequire)
	wantCode(t, "good", store.VerifyChain(user.Cert, nil, clock.Now()), "")
	clock.Advance(9 * time.Minute)
	wantCode(t, "good, from the cache", store.VerifyChain(user.Cert, nil, clock.Now()), "")
	if n := resp.requests(); n != 1 {
		t.Fatalf("%d questions within the response's validity, want 1", n)
	}

	mu.Lock()
	status = ocsp.Revoked
	mu.Unlock()
	clock.Advance(2 * time.Minute) // past the nextUpdate of the first response
	err = store.VerifyChain(user.Cert, nil, clock.Now())
	wantCode(t, "revoked at the responder", err, siobroker.CodeCertRevoked)
	if !strings.Contains(siobroker.ErrorMessage(err), "(OCSP)") {
		t.Errorf("message %q does not say the responder revoked it", siobroker.ErrorMessage(err))
	}
	if results.get(OCSPResultGood) != 1 || results.get(OCSPResultRevoked) != 1 || resp.requests() != 2 {
		t.Errorf("results %v after %d questions, want one good and one revoked", results(), resp.requests())
	}
}

// TestOCSPUnreachable: the responder is down (its server closed). Under off it is not asked;
// under prefer a CRL of the issuer in force decides (the user is answered) and without one the
// user is refused SIO-CERT-STATUS-UNKNOWN; under require the user is refused
// SIO-CERT-STATUS-UNKNOWN even with a CRL. A CRL that revokes the user refuses under every policy.
func TestOCSPUnreachable(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test НУЦ РК", start)
	resp := newResponder(t)
	user := root.Issue(t, pkix.Name{CommonName: "user"}, start, "", resp.url)
	resp.srv.Close()
	crl := root.CRL(t, 1, start, start.Add(24*time.Hour))
	revoking := root.CRL(t, 2, start, start.Add(24*time.Hour), user.Cert)
	for _, tc := range []struct {
		policy signing.OCSPPolicy
		crls   [][]byte
		want   siobroker.Code
	}{
		{signing.OCSPOff, nil, ""},
		{signing.OCSPPrefer, [][]byte{crl}, ""},
		{signing.OCSPPrefer, nil, siobroker.CodeCertStatus},
		{signing.OCSPRequire, [][]byte{crl}, siobroker.CodeCertStatus},
		{signing.OCSPRequire, nil, siobroker.CodeCertStatus},
		{signing.OCSPOff, [][]byte{revoking}, siobroker.CodeCertRevoked},
		{signing.OCSPPrefer, [][]byte{revoking}, siobroker.CodeCertRevoked},
		{signing.OCSPRequire, [][]byte{revoking}, siobroker.CodeCertRevoked},
	} {
		checker, err := NewOCSP(OCSPConfig{Timeout: time.Second, Cache: time.Hour, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		results := counts(checker.Counts)
		store := ocspStore(t, root, checker, tc.policy, tc.crls...)
		what := tc.policy.String()
		if len(tc.crls) > 0 {
			what += " with a CRL"
		}
		err = store.VerifyChain(user.Cert, nil, clock.Now())
		wantCode(t, what+", the responder down", err, tc.want)
		asked := results.get(OCSPResultFailed)
		if tc.want == siobroker.CodeCertRevoked || tc.policy == signing.OCSPOff {
			if asked != 0 {
				t.Errorf("%s: the responder was asked %d times", what, asked)
			}
		} else if asked != 1 {
			t.Errorf("%s: results %v, want one failed question", what, results())
		}
		if tc.want == siobroker.CodeCertStatus && !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s: the refusal %v does not keep why for the log", what, err)
		}
	}
}

// TestOCSPResponderHangs: a responder that does not answer is given up after the timeout, and
// then not asked again for a while: the following requests go to the policy's fallback without
// waiting. After the back-off it is asked again.
func TestOCSPResponderHangs(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test root", start)
	resp := newResponder(t)
	user := root.Issue(t, pkix.Name{CommonName: "user"}, start, "", resp.url)
	resp.set(func(*ocsp.Request) []byte {
		return root.OCSPResponse(t, user.Cert, ocsp.Good, start, start.Add(time.Hour), nil)
	})
	resp.mu.Lock()
	resp.delay = 5 * time.Second
	resp.mu.Unlock()
	checker, err := NewOCSP(OCSPConfig{Timeout: 200 * time.Millisecond, Cache: time.Hour, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	store := ocspStore(t, root, checker, signing.OCSPPrefer, root.CRL(t, 1, start, start.Add(24*time.Hour)))
	began := time.Now()
	wantCode(t, "the responder hangs, a CRL in force", store.VerifyChain(user.Cert, nil, clock.Now()), "")
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("the question took %s; the timeout is 200ms", took)
	}
	began = time.Now()
	for range 5 {
		wantCode(t, "while backing off", store.VerifyChain(user.Cert, nil, clock.Now()), "")
	}
	if took := time.Since(began); took > 100*time.Millisecond || resp.requests() != 1 {
		t.Fatalf("5 requests while backing off took %s and asked %d times in all, want no question", took, resp.requests())
	}
	resp.mu.Lock()
	resp.delay = 0
	resp.mu.Unlock()
	clock.Advance(responderBackoff)
	wantCode(t, "after the back-off", store.VerifyChain(user.Cert, nil, clock.Now()), "")
	if resp.requests() != 2 {
		t.Errorf("%d questions, want the responder asked again after the back-off", resp.requests())
	}
}

// TestOCSPResponseVerification: only a response signed by the certificate's issuer, or by a
// responder it certified for OCSP signing, about this certificate of this issuer, and current,
// is believed. Every other is no answer; under require the user is then refused
// SIO-CERT-STATUS-UNKNOWN, whatever the response claimed.
func TestOCSPResponseVerification(t *testing.T) {
	clock := testclock.New(start)
	now := start
	root := testpki.NewRoot(t, "test НУЦ РК", start)
	impostor := testpki.NewRoot(t, "test НУЦ РК", start) // the same name, another key
	other := testpki.NewRoot(t, "another CA", start)
	resp := newResponder(t)
	user := root.Issue(t, pkix.Name{CommonName: "user"}, start, "", resp.url)
	delegated := root.Responder(t, start, true)
	noEKU := root.Responder(t, start, false)
	foreignResponder := other.Responder(t, start, true)
	for _, tc := range []struct {
		name    string
		respond func() []byte
		want    siobroker.Code
	}{
		{"signed by the issuer", func() []byte {
			return root.OCSPResponse(t, user.Cert, ocsp.Good, now.Add(-time.Minute), now.Add(time.Hour), nil)
		}, ""},
		{"signed by a delegated responder", func() []byte {
			return root.OCSPResponse(t, user.Cert, ocsp.Good, now.Add(-time.Minute), now.Add(time.Hour), delegated)
		}, ""},
		{"revoked, signed by a delegated responder", func() []byte {
			return root.OCSPResponse(t, user.Cert, ocsp.Revoked, now.Add(-time.Minute), now.Add(time.Hour), delegated)
		}, siobroker.CodeCertRevoked},
		{"without nextUpdate", func() []byte {
			return root.OCSPResponse(t, user.Cert, ocsp.Good, now.Add(-time.Minute), time.Time{}, nil)
		}, ""},
		{"unknown", func() []byte {
			return root.OCSPResponse(t, user.Cert, ocsp.Unknown, now.Add(-time.Minute), now.Add(time.Hour), nil)
		}, siobroker.CodeCertStatus},
		{"signed by another key under the issuer's name", func() []byte {
			return impostor.OCSPResponse(t, user.Cert, ocsp.Good, now.Add(-time.Minute), now.Add(time.Hour), nil)
		}, siobroker.CodeCertStatus},
		{"signed by a responder without the OCSPSigning usage", func() []byte {
			return root.OCSPResponse(t, user.Cert, ocsp.Good, now.Add(-time.Minute), now.Add(time.Hour), noEKU)
		}, siobroker.CodeCertStatus},
		{"signed by another CA's responder", func() []byte {
			r, err := ocsp.CreateResponse(root.Cert, foreignResponder.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: user.Cert.SerialNumber,
				ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), Certificate: foreignResponder.Cert}, foreignResponder.Key)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, siobroker.CodeCertStatus},
		{"about the same serial under another issuer", func() []byte {
			r, err := ocsp.CreateResponse(other.Cert, root.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: user.Cert.SerialNumber,
				ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, root.Key)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, siobroker.CodeCertStatus},
		{"out of date", func() []byte {
			return root.OCSPResponse(t, user.Cert, ocsp.Good, now.Add(-2*time.Hour), now.Add(-time.Hour), nil)
		}, siobroker.CodeCertStatus},
		{"from the future", func() []byte {
			return root.OCSPResponse(t, user.Cert, ocsp.Good, now.Add(time.Hour), now.Add(2*time.Hour), nil)
		}, siobroker.CodeCertStatus},
		{"not an OCSP response", func() []byte { return []byte("<html>proxy error</html>") }, siobroker.CodeCertStatus},
		{"an OCSP error status", func() []byte { return ocsp.TryLaterErrorResponse }, siobroker.CodeCertStatus},
	} {
		resp.set(func(*ocsp.Request) []byte { return tc.respond() })
		checker, err := NewOCSP(OCSPConfig{Timeout: 2 * time.Second, Cache: time.Hour, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		// A CRL in force, so that require alone makes an unverified answer a refusal.
		store := ocspStore(t, root, checker, signing.OCSPRequire, root.CRL(t, 1, start, start.Add(24*time.Hour)))
		err = store.VerifyChain(user.Cert, nil, clock.Now())
		if tc.want == "" && err != nil || tc.want != "" && siobroker.ErrorCode(err) != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestOCSPSharesOneQuestion: requests about one certificate at once share one question.
func TestOCSPSharesOneQuestion(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test root", start)
	resp := newResponder(t)
	user := root.Issue(t, pkix.Name{CommonName: "user"}, start, "", resp.url)
	resp.set(func(*ocsp.Request) []byte {
		return root.OCSPResponse(t, user.Cert, ocsp.Good, start, start.Add(time.Hour), nil)
	})
	resp.mu.Lock()
	resp.delay = 100 * time.Millisecond
	resp.mu.Unlock()
	checker, err := NewOCSP(OCSPConfig{Timeout: 2 * time.Second, Cache: time.Hour, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if a, err := checker.CheckOCSP(context.Background(), user.Cert, root.Cert); err != nil || a.Status != signing.OCSPGood {
				t.Errorf("answer %+v, %v", a, err)
			}
		})
	}
	wg.Wait()
	if n := resp.requests(); n != 1 {
		t.Errorf("8 requests at once asked %d times, want 1", n)
	}
}
