package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestLimitsDefaultsAndOverrides: the shipped file and the defaults agree; an environment
// override reaches the limits, and the allowlist takes addresses and CIDRs, comma-separated.
func TestLimitsDefaultsAndOverrides(t *testing.T) {
	shipped, err := Load("../configs/broker.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	if got, d := shipped.HTTP.Limits, Defaults().HTTP.Limits; got.PerClientRate != d.PerClientRate || got.PerClientBurst != d.PerClientBurst ||
		got.PerClientConnections != d.PerClientConnections || got.PerSignerRate != d.PerSignerRate ||
		got.PerSignerBurst != d.PerSignerBurst || got.PerSignerConcurrent != d.PerSignerConcurrent || len(got.Allow) != 0 {
		t.Errorf("configs/broker.yaml limits %+v, defaults %+v", got, d)
	}
	t.Setenv("SIOBROKER_HTTP_LIMITS_PER_SIGNER_RATE", "0")
	t.Setenv("SIOBROKER_HTTP_LIMITS_PER_CLIENT_CONNECTIONS", "16")
	t.Setenv("SIOBROKER_HTTP_LIMITS_PER_SIGNER_CONCURRENT", "4")
	t.Setenv("SIOBROKER_HTTP_LIMITS_ALLOW", "192.0.2.10,198.51.100.0/28, 2001:db8::/64,::ffff:203.0.113.5")
	cfg, err := Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Limits.PerSignerRate != 0 || cfg.HTTP.Limits.PerClientConnections != 16 || cfg.HTTP.Limits.PerSignerConcurrent != 4 {
		t.Errorf("limits %+v, want per_signer_rate 0, per_client_connections 16 and per_signer_concurrent 4 from the environment", cfg.HTTP.Limits)
	}
	got, err := cfg.HTTP.Limits.AllowPrefixes()
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("198.51.100.0/28"),
		netip.MustParsePrefix("2001:db8::/64"), netip.MustParsePrefix("203.0.113.5/32")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("AllowPrefixes() = %v, %v; want %v", got, err, want)
	}
}

func TestLimitsValidated(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*Limits)
		want string
	}{
		{"negative rate", func(l *Limits) { l.PerClientRate = -1 }, "http.limits.per_client_rate: -1 is out of range"},
		{"negative signer burst", func(l *Limits) { l.PerSignerBurst = -1 }, "http.limits.per_signer_burst: -1 is out of range"},
		{"burst below the rate", func(l *Limits) { l.PerClientRate, l.PerClientBurst = 50, 10 }, "http.limits.per_client_burst: 10 is below"},
		{"negative connections", func(l *Limits) { l.PerClientConnections = -2 }, "http.limits.per_client_connections: -2 is out of range"},
		{"negative signer concurrency", func(l *Limits) { l.PerSignerConcurrent = -1 }, "http.limits.per_signer_concurrent: -1 is out of range"},
		{"not an address", func(l *Limits) { l.Allow = []string{"gateway.example"} }, `http.limits.allow: "gateway.example"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.set(&c.HTTP.Limits)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want it to name %q", err, tt.want)
			}
		})
	}
	c := Defaults()
	c.HTTP.Limits = Limits{} // every limit off
	if err := c.Validate(); err != nil {
		t.Errorf("limits off refused: %v", err)
	}
}
