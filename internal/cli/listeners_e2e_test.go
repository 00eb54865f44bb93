//go:build unix

package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// Issue 16, least privilege on the wire, seen from outside: the built binary's serve refuses an
// exposed plain-HTTP listener and a silent development PKI, the operator's endpoints live on a
// listener of their own, TLS speaks only AEAD suites with HSTS, and the WSDL's address is the
// configuration's, not the request's Host.

// runServe runs the built binary's serve with args and env (the operator listener on a free
// loopback port unless env names one), expecting it to exit by itself within 30 s: it returns
// the exit code and what it printed.
func runServe(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, siobrokerBinary(t), append([]string{"serve"}, args...)...)
	cmd.Dir = "../.."
	cmd.Env = append(append(os.Environ(), "SIOBROKER_OPERATOR_LISTEN="+loopbackAddr(t)), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("serve %q did not exit by itself: %v\n%s", args, err, out)
	return 0, ""
}

// TestE2EServeRefusesUnsafeStarts: serve exits 2 before writing or binding anything, naming the
// fixes, when it would listen in plain HTTP on 0.0.0.0 or on every interface (":PORT") without
// --insecure-listen, and when trust.roots and signing.* are empty without --dev.
func TestE2EServeRefusesUnsafeStarts(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(data, port string) []string
		want []string
	}{
		{"0.0.0.0 without --insecure-listen", func(data, port string) []string {
			return []string{"--dev", "--data", data, "--listen", "0.0.0.0:" + port}
		}, []string{"listen 0.0.0.0:", "plain HTTP", "http.tls", "--insecure-listen"}},
		{"every interface without --insecure-listen", func(data, port string) []string {
			return []string{"--dev", "--data", data, "--listen", ":" + port}
		}, []string{"listen :", "--insecure-listen"}},
		{"the development PKI without --dev", func(data, port string) []string {
			return []string{"--data", data, "--listen", "127.0.0.1:" + port}
		}, []string{"trust.roots and signing.cert_file not configured", "configure trust.roots", "pass --dev"}},
		{"both", func(data, port string) []string {
			return []string{"--data", data, "--listen", "0.0.0.0:" + port}
		}, []string{"--insecure-listen", "pass --dev"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			_, port, _ := net.SplitHostPort(loopbackAddr(t))
			code, out := runServe(t, nil, tc.args(data, port)...)
			if code != exitUsage {
				t.Fatalf("serve exited %d, want %d:\n%s", code, exitUsage, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("serve's refusal does not name %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("serve refused, but made %s (%v): no development PKI may be left behind", data, err)
			}
		})
	}
}

// TestE2EServeExposedOnPurpose: with --insecure-listen (and --dev), serve listens on 0.0.0.0;
// the operator's endpoints are on their own loopback listener and 404 on the public one, where
// /healthz still answers; and the WSDL gives http.public_url whatever Host the request names.
func TestE2EServeExposedOnPurpose(t *testing.T) {
	src := sharedBroker(t)
	data := filepath.Join(t.TempDir(), "data")
	copyDir(t, src.pki, filepath.Join(data, "pki")) // no key generation
	_, port, _ := net.SplitHostPort(loopbackAddr(t))
	opsAddr := loopbackAddr(t)
	const public = "https://sio-broker.example:8443"
	p := startProcess(t, "serve", []string{"SIOBROKER_OPERATOR_LISTEN=" + opsAddr, "SIOBROKER_HTTP_PUBLIC_URL=" + public},
		"serve", "--dev", "--insecure-listen", "--data", data, "--listen", "0.0.0.0:"+port)
	p.waitFor(t, "operator endpoints on http://"+opsAddr, 2*time.Minute)
	base, ops := "http://127.0.0.1:"+port, "http://"+opsAddr

	for _, tc := range []struct {
		url    string
		status int
	}{
		{base + "/metrics", http.StatusNotFound},
		{base + "/readyz", http.StatusNotFound},
		{base + "/debug/pprof/", http.StatusNotFound},
		{base + "/debug/vars", http.StatusNotFound},
		{base + "/healthz", http.StatusOK},
		{ops + "/metrics", http.StatusOK},
		{ops + "/readyz", http.StatusOK},
		{ops + "/healthz", http.StatusOK},
		{ops + "/debug/pprof/", http.StatusNotFound}, // debug.pprof is off
		{ops + "/SyncChannel/v10?wsdl", http.StatusNotFound},
	} {
		if status, _, body := do(t, http.MethodGet, tc.url, nil); status != tc.status {
			t.Errorf("GET %s: HTTP %d, want %d: %.200s", tc.url, status, tc.status, body)
		}
	}

	for _, path := range []string{"/SyncChannel/v10?wsdl", app.AsyncPath + "?wsdl=sync-channel-v10.wsdl"} {
		body := getWithHost(t, base+path, "evil.example")
		want := `location="` + public + strings.TrimSuffix(strings.TrimSuffix(path, "?wsdl"), "?wsdl=sync-channel-v10.wsdl") + `"`
		if bytes.Contains(body, []byte("evil.example")) || !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET %s with Host: evil.example: want %s and no evil.example:\n%s", path, want, truncate(body))
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// getWithHost GETs url naming host in the Host header, as any client can, and returns the body.
func getWithHost(t *testing.T, url, host string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s (Host %s): HTTP %d", url, host, resp.StatusCode)
	}
	return body
}

// TestE2EConfiguredKeysSeedNoDemoUsers: with trust.roots, signing.* and amqp.message_key_file
// configured (here a PKI made by `siobroker devpki`, standing in for the national one, and a
// master key made by `siobroker transport-key new`), serve starts without --dev, makes no
// development PKI nor transport key, and registers no demo user: none has the operator right.
func TestE2EConfiguredKeysSeedNoDemoUsers(t *testing.T) {
	pki, _ := foreignPKI(t)
	data := filepath.Join(t.TempDir(), "data")
	masterKey := filepath.Join(t.TempDir(), "transport.key")
	if code, out, errs := runMain(t, "transport-key", "new", "--out", masterKey); code != 0 {
		t.Fatalf("transport-key new exited %d: %s%s", code, out, errs)
	}
	addr := loopbackAddr(t)
	p := startProcess(t, "serve", []string{
		"SIOBROKER_OPERATOR_LISTEN=" + loopbackAddr(t), "SIOBROKER_AMQP_MESSAGE_KEY_FILE=" + masterKey,
		"SIOBROKER_TRUST_ROOTS=" + filepath.Join(pki, devpki.CAFile), "SIOBROKER_TRUST_CRLS=" + filepath.Join(pki, devpki.CRLFile),
		"SIOBROKER_SIGNING_CERT_FILE=" + filepath.Join(pki, devpki.BrokerFile), "SIOBROKER_SIGNING_KEY_FILE=" + filepath.Join(pki, devpki.BrokerKey),
	}, "serve", "--data", data, "--listen", addr)
	p.waitFor(t, "siobroker listening on", 2*time.Minute)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	for _, made := range []string{"pki", "transport.key"} {
		if _, err := os.Stat(filepath.Join(data, made)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("serve with configured keys made %s (%v)", filepath.Join(data, made), err)
		}
	}
	code, out, errs := runMain(t, "users", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "\n0 users\n") {
		t.Errorf("users list exited %d, want no user registered:\n%s%s", code, out, errs)
	}
}

// TestE2ETLSOnlyAEADWithHSTS: the broker with http.tls on, asked by real crypto/tls clients,
// refuses a client offering only CBC suites or only an RSA key exchange, and serves TLS 1.3 and
// TLS 1.2 with ECDHE and AES-GCM; every HTTPS response, a fault and a 404 too, carries
// Strict-Transport-Security for a year, and the WSDL's address is https. The plain-HTTP broker
// sends no HSTS.
func TestE2ETLSOnlyAEADWithHSTS(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	copyDir(t, src.pki, pki)
	cfg := testConfig(dir)
	cfg.HTTP.TLS.Enabled = true
	cfg.HTTP.TLS.CertFile, cfg.HTTP.TLS.KeyFile = filepath.Join(pki, devpki.BrokerFile), filepath.Join(pki, devpki.BrokerKey)
	b, err := app.Start(context.Background(), cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	caPEM, err := os.ReadFile(filepath.Join(pki, devpki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	addr := strings.TrimPrefix(b.BaseURL(), "https://")

	for _, tc := range []struct {
		name   string
		client *tls.Config
		ok     bool
	}{
		{"TLS 1.2 CBC only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, false},
		{"TLS 1.2 RSA key exchange only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_RSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 ECDHE AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.client.RootCAs = roots
			conn, err := tls.Dial("tcp", addr, tc.client)
			if err == nil {
				state := conn.ConnectionState()
				conn.Close()
				if !tc.ok {
					t.Fatalf("handshake succeeded: %s, %s", tls.VersionName(state.Version), tls.CipherSuiteName(state.CipherSuite))
				}
				return
			}
			if tc.ok {
				t.Fatalf("handshake: %v", err)
			}
		})
	}

	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}}}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/healthz"}, {http.MethodGet, "/SyncChannel/v10?wsdl"}, {http.MethodGet, "/nothing-here"},
		{http.MethodPost, "/SyncChannel/v10"}, {http.MethodGet, "/dashboard/"},
	} {
		req, err := http.NewRequest(tc.method, b.BaseURL()+tc.path, strings.NewReader("<not-soap/>"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s over TLS 1.3: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("%s %s (HTTP %d): Strict-Transport-Security %q, want max-age=31536000", tc.method, tc.path, resp.StatusCode, got)
		}
		if tc.path == "/SyncChannel/v10?wsdl" && !bytes.Contains(body, []byte(`location="`+b.BaseURL()+`/SyncChannel/v10"`)) {
			t.Errorf("the WSDL over TLS does not give %s/SyncChannel/v10:\n%s", b.BaseURL(), truncate(body))
		}
	}
	for _, path := range []string{"/healthz", "/SyncChannel/v10?wsdl"} {
		if _, hdr, _ := do(t, http.MethodGet, src.base+path, nil); hdr.Get("Strict-Transport-Security") != "" {
			t.Errorf("plain HTTP %s carries Strict-Transport-Security %q", path, hdr.Get("Strict-Transport-Security"))
		}
	}
}

// TestE2EOperatorEndpointsOffThePublicListener: on the shared broker (the embedded default under
// --dev), /metrics, /readyz and /debug/ are not found on the SOAP listener and answer on the
// operator's; /healthz answers on both.
func TestE2EOperatorEndpointsOffThePublicListener(t *testing.T) {
	e := sharedBroker(t)
	for _, tc := range []struct {
		url    string
		status int
	}{
		{e.base + "/metrics", http.StatusNotFound},
		{e.base + "/readyz", http.StatusNotFound},
		{e.base + "/debug/pprof/", http.StatusNotFound},
		{e.base + "/debug/vars", http.StatusNotFound},
		{e.base + "/healthz", http.StatusOK},
		{e.ops(t) + "/metrics", http.StatusOK},
		{e.ops(t) + "/readyz", http.StatusOK},
		{e.ops(t) + "/healthz", http.StatusOK},
	} {
		if status, _, body := do(t, http.MethodGet, tc.url, nil); status != tc.status {
			t.Errorf("GET %s: HTTP %d, want %d: %.200s", tc.url, status, tc.status, body)
		}
	}
	if host, _, _ := net.SplitHostPort(strings.TrimPrefix(e.ops(t), "http://")); host != "127.0.0.1" {
		t.Errorf("the operator listener is on %s, want loopback", e.ops(t))
	}
}

// TestE2EWSDLIgnoresHost: both channels' WSDLs, asked with Host: evil.example, give the broker's
// own address (http.public_url, here derived from listen), never the Host the request named.
func TestE2EWSDLIgnoresHost(t *testing.T) {
	e := sharedBroker(t)
	if e.b.PublicURL() != e.base {
		t.Errorf("the derived public URL is %s, want the address listened on, %s", e.b.PublicURL(), e.base)
	}
	for _, path := range []string{e.cfg.Endpoint, app.AsyncPath} {
		body := getWithHost(t, e.base+path+"?wsdl=sync-channel-v10.wsdl", "evil.example")
		want := `location="` + e.base + path + `"`
		if bytes.Contains(body, []byte("evil.example")) || !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET %s?wsdl with Host: evil.example: want %s and no evil.example:\n%s", path, want, truncate(body))
		}
	}
}
