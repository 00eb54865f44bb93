package revocation

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/internal/testpki"
	"github.com/sio-pso/siobroker/signing"
)

// start is the tests' time: Astana, as the broker's clock is.
var start = time.Date(2026, 12, 1, 10, 0, 0, 0, siobroker.Astana)

// crlServer is a local distribution point: it serves one body, which the test changes.
type crlServer struct {
	srv   *httptest.Server
	url   string
	mu    sync.Mutex
	body  []byte
	delay time.Duration
	hits  int
}

func newCRLServer(t *testing.T) *crlServer {
	t.Helper()
	s := &crlServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, delay := s.body, s.delay
		s.hits++
		s.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	s.url = s.srv.URL + "/nca_rsa.crl"
	return s
}

func (s *crlServer) serve(der []byte) {
	s.mu.Lock()
	s.body = der
	s.mu.Unlock()
}

func (s *crlServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// counts reads a fetcher's or OCSP checker's Counts.
type counts func() map[string]uint64

func (c counts) get(result string) int { return int(c()[result]) }

func wantCode(t *testing.T, what string, err error, code siobroker.Code) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("%s: %v, want accepted", what, err)
		}
		return
	}
	if err == nil || siobroker.ErrorCode(err) != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

// eventually waits up to 5 s for cond, which the fetcher's goroutine makes true.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newStore(t *testing.T, roots ...*x509.Certificate) *signing.TrustStore {
	t.Helper()
	store, err := signing.NewTrustStore(roots, nil)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// TestFetcherRevokesWithinSchedule (issue 16, item 3): a user's certificate names a local
// distribution point. Its first chain teaches the store the point, and the fetcher fetches it at
// once. The CA then revokes the user at the distribution point: nothing is fetched before the
// CRL's nextUpdate, and at it the new CRL is fetched and the user refused SIO-CERT-REVOKED, with
// no SIGHUP and no file. A CRL published later is fetched on the schedule (every hour here).
func TestFetcherRevokesWithinSchedule(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test НУЦ РК", start)
	dp := newCRLServer(t)
	user := root.Issue(t, pkix.Name{CommonName: "user", SerialNumber: "IIN900101300123"}, start, dp.url, "")
	dp.serve(root.CRL(t, 1, start, start.Add(10*time.Minute)))
	store := newStore(t, root.Cert)
	f, err := NewFetcher(FetcherConfig{DistributionPoints: true, Every: time.Hour, Timeout: 2 * time.Second, MaxBytes: 1 << 20,
		Tick: 5 * time.Millisecond, Clock: clock}, store)
	if err != nil {
		t.Fatal(err)
	}
	results := counts(f.Counts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	wantCode(t, "the first request", store.VerifyChain(user.Cert, nil, clock.Now()), "")
	eventually(t, "the distribution point fetched once the chain named it", func() bool { return results.get(FetchApplied) == 1 })

	dp.serve(root.CRL(t, 2, start.Add(10*time.Minute), start.Add(48*time.Hour), user.Cert))
	time.Sleep(50 * time.Millisecond) // ten ticks: nothing is due before the CRL's nextUpdate
	if n := dp.requests(); n != 1 {
		t.Fatalf("%d fetches before the nextUpdate, want 1", n)
	}
	wantCode(t, "before the nextUpdate", store.VerifyChain(user.Cert, nil, clock.Now()), "")

	clock.Advance(10 * time.Minute) // the nextUpdate of CRL 1
	eventually(t, "the revocation in force at the nextUpdate", func() bool {
		return siobroker.ErrorCode(store.VerifyChain(user.Cert, nil, clock.Now())) == siobroker.CodeCertRevoked
	})

	dp.serve(root.CRL(t, 3, start.Add(30*time.Minute), start.Add(48*time.Hour), user.Cert))
	clock.Advance(time.Hour) // trust.crl_fetch_every
	eventually(t, "the next CRL fetched on the schedule", func() bool { return results.get(FetchApplied) == 3 })
	if got := store.CRLs(); len(got) != 1 || got[0].Number.Int64() != 3 {
		t.Errorf("CRLs in force %v, want number 3 alone", got)
	}
}

// TestFetcherRefusesForgedAndOlderCRLs: a CRL that names the CA but is signed by another key is
// not applied, nor is a CRL older than the one in force; the CRL in force stays either way, and
// the refusals are counted.
func TestFetcherRefusesForgedAndOlderCRLs(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test НУЦ РК", start)
	dp := newCRLServer(t)
	user := root.Issue(t, pkix.Name{CommonName: "user"}, start, dp.url, "")
	store := newStore(t, root.Cert)
	f, err := NewFetcher(FetcherConfig{URLs: []string{dp.url}, Every: time.Hour, Timeout: 2 * time.Second, MaxBytes: 1 << 20,
		Clock: clock}, store)
	if err != nil {
		t.Fatal(err)
	}
	results := counts(f.Counts)
	ctx := context.Background()
	dp.serve(root.CRL(t, 3, start, start.Add(48*time.Hour), user.Cert))
	f.FetchDue(ctx)
	wantCode(t, "revoked by CRL 3", store.VerifyChain(user.Cert, nil, clock.Now()), siobroker.CodeCertRevoked)

	// A forged CRL with a higher number and without the revocation.
	dp.serve(root.CRLSignedBy(t, testpki.Key(t), 9, start.Add(time.Minute), start.Add(48*time.Hour)))
	clock.Advance(time.Hour)
	f.FetchDue(ctx)
	wantCode(t, "after a forged CRL was served", store.VerifyChain(user.Cert, nil, clock.Now()), siobroker.CodeCertRevoked)
	// A genuine CRL older than the one in force (a stale mirror, or a replay).
	dp.serve(root.CRL(t, 2, start.Add(-time.Hour), start.Add(48*time.Hour)))
	clock.Advance(time.Hour)
	f.FetchDue(ctx)
	wantCode(t, "after an older CRL was served", store.VerifyChain(user.Cert, nil, clock.Now()), siobroker.CodeCertRevoked)
	if got := store.CRLs(); len(got) != 1 || got[0].Number.Int64() != 3 {
		t.Errorf("CRLs in force %v, want number 3 alone", got)
	}
	if results.get(FetchApplied) != 1 || results.get(FetchRefused) != 2 {
		t.Errorf("results %v, want 1 applied and 2 refused", results())
	}
}

// TestFetcherCacheSurvivesRestart: a CRL put in force is cached under the data directory,
// private to the broker. A broker restarted while the distribution point is down starts from the
// cached CRL, which revokes the user, even for an intermediate CA that is not configured (the
// cache keeps the CA that verified it); its fetch fails and the cached CRL stays.
func TestFetcherCacheSurvivesRestart(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test root", start)
	dp := newCRLServer(t)
	inter := root.NewIntermediate(t, "test НУЦ РК RSA", start, "")
	user := inter.Issue(t, pkix.Name{CommonName: "user"}, start, dp.url, "")
	dp.serve(inter.CRL(t, 7, start, start.Add(24*time.Hour), user.Cert))
	cache := filepath.Join(t.TempDir(), "data", "crls")
	cfg := FetcherConfig{DistributionPoints: true, Every: time.Hour, Timeout: 2 * time.Second, MaxBytes: 1 << 20, CacheDir: cache, Clock: clock}

	store := newStore(t, root.Cert)
	wantCode(t, "the first request", store.VerifyChain(user.Cert, []*x509.Certificate{inter.Cert}, clock.Now()), "")
	f, err := NewFetcher(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	f.FetchDue(context.Background())
	wantCode(t, "after the fetch", store.VerifyChain(user.Cert, []*x509.Certificate{inter.Cert}, clock.Now()), siobroker.CodeCertRevoked)
	files, err := filepath.Glob(filepath.Join(cache, "*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("cache files %v (%v), want one", files, err)
	}
	for path, want := range map[string]os.FileMode{cache: 0o700, files[0]: 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}

	dp.srv.Close() // the distribution point is down
	clock.Advance(time.Hour)
	restarted := newStore(t, root.Cert)
	f2, err := NewFetcher(cfg, restarted)
	if err != nil {
		t.Fatal(err)
	}
	results := counts(f2.Counts)
	if n, err := f2.LoadCache(); err != nil || n != 1 {
		t.Fatalf("LoadCache: %d, %v; want 1 CRL", n, err)
	}
	f2.FetchDue(context.Background())
	if results.get(FetchFailed) != 1 {
		t.Errorf("results %v, want the fetch of the cached source failed", results())
	}
	wantCode(t, "after the restart with the distribution point down", restarted.VerifyChain(user.Cert, []*x509.Certificate{inter.Cert}, clock.Now()),
		siobroker.CodeCertRevoked)
}

// TestFetcherFailureKeepsTheStalePolicy: while the distribution point is down, the CRL in force
// stays under trust.crl_stale: within the grace past its nextUpdate the user is answered, and
// after it every certificate of the issuer is refused. Each failure is counted.
func TestFetcherFailureKeepsTheStalePolicy(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test root", start)
	dp := newCRLServer(t)
	user := root.Issue(t, pkix.Name{CommonName: "user"}, start, dp.url, "")
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, testpki.PEM("CERTIFICATE", root.Cert.Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{rootFile}, CRLStaleGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFetcher(FetcherConfig{URLs: []string{dp.url}, Every: time.Hour, Timeout: 2 * time.Second, MaxBytes: 1 << 20,
		Clock: clock}, store)
	if err != nil {
		t.Fatal(err)
	}
	results := counts(f.Counts)
	dp.serve(root.CRL(t, 1, start, start.Add(10*time.Minute)))
	f.FetchDue(context.Background())
	dp.srv.Close()
	clock.Advance(10*time.Minute + time.Second)
	f.FetchDue(context.Background())
	wantCode(t, "within the grace, the distribution point down", store.VerifyChain(user.Cert, nil, clock.Now()), "")
	clock.Advance(time.Hour)
	f.FetchDue(context.Background())
	wantCode(t, "past the grace", store.VerifyChain(user.Cert, nil, clock.Now()), siobroker.CodeCertChain)
	if results.get(FetchApplied) != 1 || results.get(FetchFailed) != 2 {
		t.Errorf("results %v, want 1 applied and 2 failed", results())
	}
}

// TestFetcherBoundsTimeAndSize: a distribution point that does not answer within the timeout, or
// serves more than the size limit, fails the fetch, within the timeout.
func TestFetcherBoundsTimeAndSize(t *testing.T) {
	clock := testclock.New(start)
	root := testpki.NewRoot(t, "test root", start)
	dp := newCRLServer(t)
	store := newStore(t, root.Cert)
	f, err := NewFetcher(FetcherConfig{URLs: []string{dp.url}, Every: time.Hour, Timeout: 200 * time.Millisecond, MaxBytes: 4096,
		Clock: clock}, store)
	if err != nil {
		t.Fatal(err)
	}
	results := counts(f.Counts)
	dp.serve(make([]byte, 4097))
	f.FetchDue(context.Background())
	if results.get(FetchFailed) != 1 {
		t.Fatalf("an oversize CRL: results %v, want failed", results())
	}
	dp.serve(root.CRL(t, 1, start, start.Add(time.Hour)))
	dp.mu.Lock()
	dp.delay = 5 * time.Second
	dp.mu.Unlock()
	clock.Advance(time.Minute) // the retry after a failure
	began := time.Now()
	f.FetchDue(context.Background())
	if took := time.Since(began); took > 2*time.Second || results.get(FetchFailed) != 2 {
		t.Fatalf("a distribution point that hangs: results %v after %s, want failed within the 200ms timeout", results(), took)
	}
	if len(store.CRLs()) != 0 {
		t.Errorf("CRLs in force %v, want none", store.CRLs())
	}
}
