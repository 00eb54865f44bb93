package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/revocation"
)

// crlCacheDir is where fetched CRLs are cached, under the data directory.
const crlCacheDir = "crls"

// liveRevocation is the network side of revocation: the fetcher of CRLs from distribution points
// and the OCSP checker (nil under trust.ocsp: off).
type liveRevocation struct {
	fetcher *revocation.Fetcher
	ocsp    *revocation.OCSP
}

// ocspPolicies maps trust.ocsp to the trust store's policy.
var ocspPolicies = map[string]signing.OCSPPolicy{
	config.OCSPOff: signing.OCSPOff, config.OCSPPrefer: signing.OCSPPrefer, config.OCSPRequire: signing.OCSPRequire,
}

// newOCSP returns the OCSP checker and policy of cfg, for the trust store: none under off.
func newOCSP(cfg config.Broker, clock siobroker.Clock, logger *slog.Logger) (*revocation.OCSP, signing.OCSPPolicy, error) {
	policy, ok := ocspPolicies[cfg.Trust.OCSP]
	if !ok {
		return nil, 0, fmt.Errorf("trust.ocsp: %q is not a policy", cfg.Trust.OCSP) // config.Validate refuses it first
	}
	if policy == signing.OCSPOff {
		return nil, policy, nil
	}
	o, err := revocation.NewOCSP(revocation.OCSPConfig{Timeout: cfg.Trust.OCSPTimeout, Cache: cfg.Trust.OCSPCache, Clock: clock,
		Logger: logger.With("component", "ocsp")})
	if err != nil {
		return nil, 0, fmt.Errorf("OCSP: %w", err)
	}
	return o, policy, nil
}

// startRevocation builds the CRL fetcher over trust, puts the cached CRLs in force and fetches
// every source once before the broker takes requests (each fetch bounded by
// trust.crl_fetch_timeout, all at once): a broker must not start answering on revocation
// information older than it can have. A distribution point that is down only delays the start
// by that timeout; the cached CRL, or the files', stays in force. Run keeps fetching (startJobs).
func (b *Broker) startRevocation(ctx context.Context, cfg config.Broker, trust *signing.TrustStore, o *revocation.OCSP,
	clock siobroker.Clock, logger *slog.Logger) error {
	logger = logger.With("component", "crl-fetch")
	f, err := revocation.NewFetcher(revocation.FetcherConfig{
		URLs: cfg.Trust.CRLURLs, DistributionPoints: cfg.Trust.CRLDistributionPoints,
		Every: cfg.Trust.CRLFetchEvery, Timeout: cfg.Trust.CRLFetchTimeout, MaxBytes: cfg.Trust.CRLMaxBytes,
		CacheDir: filepath.Join(cfg.DataDir, crlCacheDir), Clock: clock, Logger: logger,
	}, trust)
	if err != nil {
		return fmt.Errorf("CRL fetcher: %w", err)
	}
	b.revocation = liveRevocation{fetcher: f, ocsp: o}
	if _, err := f.LoadCache(); err != nil {
		// Not fatal: the fetch below, the files and the stale policy still hold.
		logger.Warn("the CRL cache cannot be read; starting without it", "error", err)
	}
	f.FetchDue(ctx)
	logger.Info("revocation", "crl_sources", f.Sources(), "crl_fetch_every", cfg.Trust.CRLFetchEvery, "ocsp", cfg.Trust.OCSP)
	return nil
}
