package httpsource

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// tlsSource is an HTTPS source with the given TLS settings (nil: Go's defaults), and a CA file
// holding its certificate.
func tlsSource(t *testing.T, cfg *tls.Config) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "{}")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	if cfg != nil {
		srv.TLS = cfg
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

// TestClientTLSPolicy: an adapter's client reaches a source speaking TLS 1.3 or TLS 1.2 with an
// AEAD suite, and refuses one that offers TLS 1.2 with CBC suites only.
func TestClientTLSPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server *tls.Config
		ok     bool
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 ECDHE AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, true},
		{"TLS 1.2 CBC only", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
				tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, ca := tlsSource(t, tc.server)
			c, err := TLSFiles{CAFile: ca}.Client()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if tc.ok && err != nil {
				t.Fatalf("GET over %s: %v", tc.name, err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("GET over %s succeeded: %s", tc.name, tls.CipherSuiteName(resp.TLS.CipherSuite))
			}
		})
	}
}
