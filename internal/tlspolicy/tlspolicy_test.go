package tlspolicy

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// TestSuitesAreForwardSecretAEAD: every TLS 1.2 suite of the policy is one Go considers secure,
// with an ECDHE key exchange and an AEAD cipher; none is CBC, none an RSA key exchange.
func TestSuitesAreForwardSecretAEAD(t *testing.T) {
	secure := map[uint16]*tls.CipherSuite{}
	for _, s := range tls.CipherSuites() {
		secure[s.ID] = s
	}
	for _, id := range CipherSuites {
		s, ok := secure[id]
		name := tls.CipherSuiteName(id)
		if !ok {
			t.Errorf("%s is not among Go's secure suites", name)
			continue
		}
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			t.Errorf("%s is not a TLS 1.2 suite", name)
		}
		if !strings.HasPrefix(name, "TLS_ECDHE_") || strings.Contains(name, "CBC") ||
			!(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("%s is not ECDHE with an AEAD cipher", name)
		}
	}
	cfg := Apply(&tls.Config{})
	if cfg.MinVersion != tls.VersionTLS12 || !slices.Equal(cfg.CipherSuites, CipherSuites) {
		t.Errorf("Apply: min version %x, suites %v", cfg.MinVersion, cfg.CipherSuites)
	}
	cfg.CipherSuites[0] = tls.TLS_RSA_WITH_AES_128_CBC_SHA
	if CipherSuites[0] == tls.TLS_RSA_WITH_AES_128_CBC_SHA {
		t.Error("Apply shares the policy's list with the config it set")
	}
}
