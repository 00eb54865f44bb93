package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
)

// The results of a CRL fetch, the values of the label of siobroker_crl_fetches_total.
const (
	FetchApplied   = "applied"   // a new CRL is in force
	FetchUnchanged = "unchanged" // the CRL in force from this source was served again
	FetchRefused   = "refused"   // a CRL was served but not put in force: it does not verify, or is older than the one in force
	FetchFailed    = "failed"    // no CRL was had: unreachable, out of time, an HTTP error, too large, or not a CRL
)

// FetchResults are every result of a fetch, for metrics that export each from the start.
var FetchResults = []string{FetchApplied, FetchUnchanged, FetchRefused, FetchFailed}

// retryAfter is how soon a source is tried again after a failed fetch, or after it served a CRL
// already past its nextUpdate (an issuer late to publish): often enough that a new CRL is in force
// within a minute of its publication, seldom enough not to hammer a distribution point that is
// down.
const retryAfter = time.Minute

// maxRedirects bounds the redirects a distribution point may send a fetch through.
const maxRedirects = 3

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	// URLs are CRL URLs to fetch whatever the certificates name (trust.crl_urls).
	URLs []string
	// DistributionPoints also fetches the HTTP distribution points the trust store has seen
	// (trust.crl_distribution_points).
	DistributionPoints bool
	// Every is the longest time between two fetches of a source (trust.crl_fetch_every); a CRL's
	// nextUpdate brings its next fetch forward.
	Every time.Duration
	// Timeout bounds one fetch, connection to last byte (trust.crl_fetch_timeout).
	Timeout time.Duration
	// MaxBytes bounds the size of a CRL fetched (trust.crl_max_bytes).
	MaxBytes int64
	// CacheDir is where the CRLs put in force are cached; empty: no cache.
	CacheDir string
	// Tick is how often Run looks for fetches due; default 1s. The schedule is kept by Clock, so
	// a test that moves its clock sees the fetch within a tick.
	Tick time.Duration
	// Clock tells the time of the schedule and of the CRLs' validity; default the system clock.
	Clock siobroker.Clock
	// Logger; default discards.
	Logger *slog.Logger
	// Client fetches; default a client with Timeout and at most maxRedirects redirects, through
	// the proxy of the environment (HTTP_PROXY), as government networks often require.
	Client *http.Client
}

// setDefaults fills what c leaves empty.
func (c *FetcherConfig) setDefaults() {
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.Clock == nil {
		c.Clock = siobroker.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Timeout: c.Timeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= maxRedirects {
					return fmt.Errorf("more than %d redirects", maxRedirects)
				}
				return nil
			},
		}
	}
}

// Validate checks c.
func (c FetcherConfig) Validate() error {
	var errs []error
	if c.Every <= 0 || c.Timeout <= 0 || c.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("revocation: a fetcher needs a positive schedule, timeout and size limit (every %s, timeout %s, max %d bytes)",
			c.Every, c.Timeout, c.MaxBytes))
	}
	for _, u := range c.URLs {
		if !signing.FetchableURL(u) {
			errs = append(errs, fmt.Errorf("revocation: CRL URL %q is not an absolute http or https URL", u))
		}
	}
	return errors.Join(errs...)
}

// Fetcher keeps the fetched CRLs of a trust store current. Its methods are safe for concurrent
// use; Run is called once.
type Fetcher struct {
	cfg   FetcherConfig
	trust *signing.TrustStore

	counts *tally // by FetchResults

	mu      sync.Mutex
	sources map[string]*source
}

// source is one URL fetched, and its schedule.
type source struct {
	url  string
	next time.Time // due at or after this; zero: at once
}

// NewFetcher returns a fetcher of cfg's CRLs into trust. It fetches nothing yet: LoadCache puts
// the cached CRLs in force, FetchDue fetches what is due, and Run keeps fetching.
func NewFetcher(cfg FetcherConfig, trust *signing.TrustStore) (*Fetcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if trust == nil {
		return nil, errors.New("revocation: a fetcher needs a trust store")
	}
	cfg.setDefaults()
	f := &Fetcher{cfg: cfg, trust: trust, counts: newTally(FetchResults), sources: map[string]*source{}}
	for _, u := range cfg.URLs {
		f.sources[u] = &source{url: u}
	}
	return f, nil
}

// Counts returns how many fetches had each result of FetchResults, for the metrics
// (siobroker_crl_fetches_total).
func (f *Fetcher) Counts() map[string]uint64 { return f.counts.read() }

// Sources returns the URLs the fetcher fetches, sorted.
func (f *Fetcher) Sources() []string {
	f.refreshSources()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.sources))
	for u := range f.sources {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// refreshSources adds the distribution points the trust store has seen since, due at once.
func (f *Fetcher) refreshSources() {
	if !f.cfg.DistributionPoints {
		return
	}
	points := f.trust.DistributionPoints()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range points {
		if f.sources[u] == nil {
			f.sources[u] = &source{url: u}
		}
	}
}

// wanted reports whether url is a source of this fetcher's configuration: configured, or a
// distribution point where those are fetched. The cache may hold others, from an earlier one.
func (f *Fetcher) wanted(url string) bool {
	return f.cfg.DistributionPoints || slices.Contains(f.cfg.URLs, url)
}

// Run fetches what is due every Tick, and at once when the trust store sees a new distribution
// point, until ctx ends.
func (f *Fetcher) Run(ctx context.Context) {
	ticker := time.NewTicker(f.cfg.Tick)
	defer ticker.Stop()
	points := f.trust.DistributionPointsChanged()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-points:
		}
		f.FetchDue(ctx)
	}
}

// FetchDue fetches every source due now, at once, and returns when all are done (each within
// Timeout).
func (f *Fetcher) FetchDue(ctx context.Context) {
	f.refreshSources()
	now := f.cfg.Clock.Now()
	f.mu.Lock()
	var due []*source
	for _, s := range f.sources {
		if !now.Before(s.next) {
			due = append(due, s)
		}
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range due {
		wg.Go(func() {
			next := f.fetch(ctx, s.url)
			f.mu.Lock()
			s.next = next
			f.mu.Unlock()
		})
	}
	wg.Wait()
}

// fetch fetches url once, offers its CRLs to the trust store, counts and logs the result, and
// returns when url is due again.
func (f *Fetcher) fetch(ctx context.Context, url string) time.Time {
	logger := f.cfg.Logger.With("source", url)
	crls, err := f.get(ctx, url)
	now := f.cfg.Clock.Now()
	if err != nil {
		f.counts.add(FetchFailed)
		next := now.Add(min(retryAfter, f.cfg.Every))
		logger.Warn("CRL fetch failed; the CRLs in force stay, under trust.crl_stale", "error", err,
			"next_attempt", siobroker.FormatTime(next))
		return next
	}
	next := now.Add(f.cfg.Every)
	for _, crl := range crls {
		// The schedule follows what the source serves: at its nextUpdate, or soon if it is past.
		switch nu := crl.NextUpdate; {
		case nu.IsZero():
		case nu.After(now):
			next = minTime(next, nu)
		default:
			next = minTime(next, now.Add(min(retryAfter, f.cfg.Every)))
		}
		issuer, changed, err := f.trust.PutFetchedCRL(signing.FetchedCRL{Source: url, CRL: crl}, now)
		switch {
		case err != nil && errors.Is(err, signing.ErrCRLOlder):
			f.counts.add(FetchRefused)
			logger.Warn("fetched CRL refused: older than the CRL of its issuer in force, which stays", "error", err)
		case err != nil:
			f.counts.add(FetchRefused)
			next = now.Add(min(retryAfter, f.cfg.Every))
			logger.Error("fetched CRL refused: it does not verify; the CRLs in force stay", "error", err,
				"next_attempt", siobroker.FormatTime(next))
		case !changed:
			f.counts.add(FetchUnchanged)
			logger.Debug("fetched CRL unchanged", "issuer", crl.Issuer.String(), "number", crl.Number)
		default:
			f.counts.add(FetchApplied)
			logger.Info("fetched CRL in force", "issuer", crl.Issuer.String(), "number", crl.Number,
				"this_update", siobroker.FormatTime(crl.ThisUpdate), "next_update", siobroker.FormatTime(crl.NextUpdate),
				"revoked", len(crl.RevokedCertificateEntries))
			if err := f.writeCache(url, crl, issuer); err != nil {
				logger.Warn("caching the fetched CRL failed; a restart while the distribution point is down would not have it", "error", err)
			}
		}
	}
	return next
}

// get fetches url and parses what it serves (DER or PEM) within Timeout and MaxBytes.
func (f *Fetcher) get(ctx context.Context, url string) ([]*x509.RevocationList, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: HTTP %s", url, resp.Status)
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, fmt.Errorf("fetch %s: %d bytes exceed trust.crl_max_bytes (%d)", url, resp.ContentLength, f.cfg.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: read: %w", url, err)
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		return nil, fmt.Errorf("fetch %s: more than trust.crl_max_bytes (%d bytes)", url, f.cfg.MaxBytes)
	}
	crls, err := signing.ParseCRLs(body)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	return crls, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
