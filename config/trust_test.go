package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTrustKeyUsageDefaults: the shipped file and a file without the keys give the national
// PKI's signing EKU and no nonRepudiation requirement; a file and the environment set them.
func TestTrustKeyUsageDefaults(t *testing.T) {
	for name, cfg := range shippedAndBare(t) {
		if !slices.Equal(cfg.Trust.SigningEKUs, []string{"1.3.6.1.5.5.7.3.4"}) || cfg.Trust.RequireNonRepudiation {
			t.Errorf("%s: trust.signing_ekus %v, require_non_repudiation %v; want [1.3.6.1.5.5.7.3.4], false",
				name, cfg.Trust.SigningEKUs, cfg.Trust.RequireNonRepudiation)
		}
	}
	set, err := Load(writeConfig(t, "trust:\n  signing_ekus: [\"1.3.6.1.5.5.7.3.4\", \"1.2.398.3.3.4.1.2.2\"]\n  require_non_repudiation: true\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(set.Trust.SigningEKUs, []string{"1.3.6.1.5.5.7.3.4", "1.2.398.3.3.4.1.2.2"}) || !set.Trust.RequireNonRepudiation {
		t.Errorf("from the file: %+v", set.Trust)
	}
	t.Setenv("SIOBROKER_TRUST_SIGNING_EKUS", "1.3.6.1.5.5.7.3.4,1.2.398.3.3.4.1.1")
	env, err := Load(writeConfig(t, "listen: 127.0.0.1:8080\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(env.Trust.SigningEKUs, []string{"1.3.6.1.5.5.7.3.4", "1.2.398.3.3.4.1.1"}) {
		t.Errorf("from the environment: %v", env.Trust.SigningEKUs)
	}
}

func TestTrustSigningEKUsValidated(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"trust:\n  signing_ekus: []\n", "trust.signing_ekus: empty"},
		{"trust:\n  signing_ekus: [\"1.3.6.1.5.5.7.3.4\", \"emailProtection\"]\n", `trust.signing_ekus[1]: "emailProtection" is not a dotted OID`},
		{"trust:\n  signing_ekus: [\"3.1\"]\n", `trust.signing_ekus[0]: "3.1" is not a dotted OID`},
		{"trust:\n  signing_ekus: [\"1.02.3\"]\n", `trust.signing_ekus[0]: "1.02.3" is not a dotted OID`},
		{"trust:\n  signing_ekus: [\"1\"]\n", `trust.signing_ekus[0]: "1" is not a dotted OID`},
	} {
		_, err := Load(writeConfig(t, tc.yaml), true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestTrustCRLStalePolicy: the shipped file and a bare file keep a stale CRL for 24 h; refuse
// gives no grace; a policy or grace out of range is refused with the key and the fix.
func TestTrustCRLStalePolicy(t *testing.T) {
	for name, cfg := range shippedAndBare(t) {
		if cfg.Trust.CRLStale != CRLStaleGrace || cfg.Trust.StaleGrace() != 24*time.Hour {
			t.Errorf("%s: trust.crl_stale %q, grace %s; want grace, 24h", name, cfg.Trust.CRLStale, cfg.Trust.StaleGrace())
		}
	}
	refuse, err := Load(writeConfig(t, "trust:\n  crl_stale: refuse\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if refuse.Trust.StaleGrace() != 0 {
		t.Errorf("refuse: grace %s, want 0", refuse.Trust.StaleGrace())
	}
	for _, tc := range []struct{ yaml, want string }{
		{"trust:\n  crl_stale: lenient\n", `trust.crl_stale: "lenient"`},
		{"trust:\n  crl_stale_grace: 0s\n", "trust.crl_stale_grace: 0s"},
		{"trust:\n  crl_stale_grace: 2400h\n", "trust.crl_stale_grace: 2400h0m0s"},
	} {
		_, err := Load(writeConfig(t, tc.yaml), true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestTrustCRLPoll: the CRL files are polled every 2s by default; a file sets another period, and
// one out of range is refused with the key and the range.
func TestTrustCRLPoll(t *testing.T) {
	bare, err := Load(writeConfig(t, "listen: 127.0.0.1:8080\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if bare.Trust.CRLPoll != 2*time.Second {
		t.Errorf("default trust.crl_poll %s, want 2s", bare.Trust.CRLPoll)
	}
	set, err := Load(writeConfig(t, "trust:\n  crl_poll: 250ms\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if set.Trust.CRLPoll != 250*time.Millisecond {
		t.Errorf("trust.crl_poll from the file: %s, want 250ms", set.Trust.CRLPoll)
	}
	for _, bad := range []string{"0s", "10ms", "1h"} {
		_, err := Load(writeConfig(t, "trust:\n  crl_poll: "+bad+"\n"), true)
		if err == nil || !strings.Contains(err.Error(), "trust.crl_poll: ") || !strings.Contains(err.Error(), "use 100ms to 10m0s") {
			t.Errorf("crl_poll %s: %v, want refused with the range", bad, err)
		}
	}
}

// TestTrustFetchAndOCSP: the shipped file and a bare file fetch the distribution points hourly
// and prefer OCSP; a file sets every key; values out of range are refused with the key.
func TestTrustFetchAndOCSP(t *testing.T) {
	for name, cfg := range shippedAndBare(t) {
		tr := cfg.Trust
		if len(tr.CRLURLs) != 0 || !tr.CRLDistributionPoints || tr.CRLFetchEvery != time.Hour || tr.CRLFetchTimeout != 30*time.Second ||
			tr.CRLMaxBytes != 64<<20 || tr.OCSP != OCSPPrefer || tr.OCSPTimeout != 3*time.Second || tr.OCSPCache != 5*time.Minute {
			t.Errorf("%s: %+v; want no URLs, distribution points, 1h, 30s, 64 MiB, prefer, 3s, 5m", name, tr)
		}
	}
	set, err := Load(writeConfig(t, "trust:\n  crl_urls: [\"http://crl.pki.gov.kz/nca_rsa.crl\"]\n  crl_distribution_points: false\n"+
		"  crl_fetch_every: 30m\n  crl_fetch_timeout: 10s\n  crl_max_bytes: 1048576\n  ocsp: require\n  ocsp_timeout: 2s\n  ocsp_cache: 0s\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if tr := set.Trust; !slices.Equal(tr.CRLURLs, []string{"http://crl.pki.gov.kz/nca_rsa.crl"}) || tr.CRLDistributionPoints ||
		tr.CRLFetchEvery != 30*time.Minute || tr.CRLFetchTimeout != 10*time.Second || tr.CRLMaxBytes != 1<<20 ||
		tr.OCSP != OCSPRequire || tr.OCSPTimeout != 2*time.Second || tr.OCSPCache != 0 {
		t.Errorf("from the file: %+v", tr)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"trust:\n  crl_urls: [\"ldap://crl.invalid/x\"]\n", `trust.crl_urls[0]: "ldap://crl.invalid/x" is not an absolute http or https URL`},
		{"trust:\n  crl_fetch_every: 0s\n", "trust.crl_fetch_every: 0s is out of range"},
		{"trust:\n  crl_fetch_every: 48h\n", "trust.crl_fetch_every: 48h0m0s is out of range"},
		{"trust:\n  crl_fetch_timeout: 10m\n", "trust.crl_fetch_timeout: 10m0s is out of range"},
		{"trust:\n  crl_max_bytes: 100\n", "trust.crl_max_bytes: 100 is out of range"},
		{"trust:\n  ocsp: sometimes\n", `trust.ocsp: "sometimes"`},
		{"trust:\n  ocsp_timeout: 1m\n", "trust.ocsp_timeout: 1m0s is out of range"},
		{"trust:\n  ocsp_cache: -1s\n", "trust.ocsp_cache: -1s is out of range"},
		{"http:\n  write_timeout: 2s\ntrust:\n  ocsp_timeout: 3s\nstore:\n  write_timeout: 1s\n", "trust.ocsp_timeout: 3s is not below http.write_timeout"},
	} {
		_, err := Load(writeConfig(t, tc.yaml), true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// shippedAndBare loads the shipped configs/broker.yaml and a file that sets nothing of note, by
// those names: whatever a key's default is, both must give it.
func shippedAndBare(t *testing.T) map[string]Broker {
	t.Helper()
	shipped, err := Load("../configs/broker.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := Load(writeConfig(t, "listen: 127.0.0.1:8080\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Broker{"shipped": shipped, "bare": bare}
}
