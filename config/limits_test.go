package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestLimitsDefaultsAndOverrides: the shipped file and the defaults agree; an environment
// override reaches the limits, and the allowlist takes addresses and CIDRs.
func TestLimitsDefaultsAndOverrides(t *testing.T) {
	shipped, err := Load("../configs/broker.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	if d := Defaults().HTTP.Limits; shipped.HTTP.Limits.PerClientRate != d.PerClientRate || shipped.HTTP.Limits.PerClientBurst != d.PerClientBurst ||
		shipped.HTTP.Limits.PerClientConcurrent != d.PerClientConcurrent || shipped.HTTP.Limits.PerSignerRate != d.PerSignerRate ||
		shipped.HTTP.Limits.PerSignerBurst != d.PerSignerBurst || len(shipped.HTTP.Limits.Allow) != 0 {
		t.Errorf("configs/broker.yaml limits %+v, defaults %+v", shipped.HTTP.Limits, d)
	}
	t.Setenv("SIOBROKER_HTTP_LIMITS_PER_SIGNER_RATE", "0")
	t.Setenv("SIOBROKER_HTTP_LIMITS_ALLOW", "192.0.2.10,198.51.100.0/28,2001:db8::/64")
	cfg, err := Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Limits.PerSignerRate != 0 {
		t.Errorf("per_signer_rate %v, want 0 from the environment", cfg.HTTP.Limits.PerSignerRate)
	}
	got, err := cfg.HTTP.Limits.AllowPrefixes()
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("198.51.100.0/28"), netip.MustParsePrefix("2001:db8::/64")}
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
		{"negative rate", func(l *Limits) { l.PerClientRate = -1 }, "http.limits.per_client_rate"},
		{"negative signer burst", func(l *Limits) { l.PerSignerBurst = -1 }, "http.limits.per_signer_burst"},
		{"burst below the rate", func(l *Limits) { l.PerClientRate, l.PerClientBurst = 50, 10 }, "http.limits.per_client_burst: 10 is below"},
		{"negative concurrency", func(l *Limits) { l.PerClientConcurrent = -2 }, "http.limits.per_client_concurrent"},
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
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "http.limits") {
		t.Errorf("limits off refused: %v", err)
	}
}
