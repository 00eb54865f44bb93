package adapterconfig_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters/adapterconfig"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestHTTPSourceOverTLS: an http backend with a tls section reaches a source that serves HTTPS
// under its own CA and requires a client certificate; without the client certificate, or
// without the source's CA, the call fails at the handshake; and the section's mistakes are
// reported when the file is loaded.
func TestHTTPSourceOverTLS(t *testing.T) {
	pki := t.TempDir()
	m, err := devpki.Generate(pki, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, devpki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(caPEM)
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(pki, devpki.BrokerFile), filepath.Join(pki, devpki.BrokerKey))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":{"vehicles":[{"plate":"TLS001","client":%q}]}}`, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	u := m.Users[0]
	ca, cert, key := filepath.Join(pki, devpki.CAFile), filepath.Join(pki, u.Cert), filepath.Join(pki, u.Key)
	config := func(tlsSection string) string {
		return head + fmt.Sprintf("services:\n  5:\n    backend: http\n    url: %q\n    record_type: vehicle\n    records_path: data.vehicles\n"+
			"    fields: {plate_number: plate}\n    timeout: 5s\n", srv.URL) + tlsSection
	}

	res, err := query(t, config(fmt.Sprintf("    tls: {ca_file: %q, cert_file: %q, key_file: %q}\n", ca, cert, key)))
	if err != nil || len(res.Records) != 1 || res.Records[0].Fields[0].Value != "TLS001" {
		t.Fatalf("with the CA and a client certificate: %+v, %v", res, err)
	}
	if _, err := query(t, config(fmt.Sprintf("    tls: {ca_file: %q}\n", ca))); err == nil {
		t.Error("without a client certificate the source answered")
	}
	if _, err := query(t, config(fmt.Sprintf("    tls: {cert_file: %q, key_file: %q}\n", cert, key))); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the source's CA: %v, want a certificate error", err)
	}

	for name, tc := range map[string]struct{ text, want string }{
		"plain http": {strings.Replace(config(fmt.Sprintf("    tls: {ca_file: %q}\n", ca)), "https://", "http://", 1), "tls: only for an https url"},
		"cert alone": {config(fmt.Sprintf("    tls: {cert_file: %q}\n", cert)), "cert_file and key_file go together"},
		"missing ca": {config("    tls: {ca_file: /nonexistent/ca.pem}\n"), "tls.ca_file"},
		"not a ca":   {config(fmt.Sprintf("    tls: {ca_file: %q}\n", key)), "holds no PEM certificate"},
		"on demo":    {head + "services: {1: {backend: demo, tls: {ca_file: x}}}\n", "tls: not a key of a demo backend"},
	} {
		if err := load(t, tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

// TestHTTPSourceHeaders: an http backend sends its configured headers, a ${env:NAME} value read
// from the environment; an unset variable, a bad name or a line break in a value is refused when
// the file is loaded, without quoting the value.
func TestHTTPSourceHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":{"vehicles":[]}}`)
	}))
	defer srv.Close()
	config := func(headers string) string {
		return head + fmt.Sprintf("services:\n  5:\n    backend: http\n    url: %q\n    record_type: vehicle\n    records_path: data.vehicles\n"+
			"    fields: {plate_number: plate}\n    headers: %s\n", srv.URL, headers)
	}
	t.Setenv("SIO_TEST_SOURCE_KEY", "k-3f9a")
	if _, err := query(t, config(`{X-Api-Key: "${env:SIO_TEST_SOURCE_KEY}", Accept-Language: ru}`)); err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Api-Key") != "k-3f9a" || got.Get("Accept-Language") != "ru" {
		t.Errorf("the source got headers %v", got)
	}

	t.Setenv("SIO_TEST_SOURCE_SECRET", "line\nbreak")
	for name, tc := range map[string]struct{ headers, want string }{
		"unset variable": {`{X-Api-Key: "${env:SIO_TEST_UNSET_VARIABLE}"}`, "SIO_TEST_UNSET_VARIABLE is not set"},
		"bad name":       {`{"X Api Key": v}`, "is not a header name"},
		"line break":     {`{X-Api-Key: "${env:SIO_TEST_SOURCE_SECRET}"}`, "control character"},
		"on postgres":    {"", ""},
	} {
		text := config(tc.headers)
		if name == "on postgres" {
			text, tc.want = head+"services: {37: {backend: postgres, dsn: \"postgres://h/db\", query: \"SELECT a FROM t WHERE b = $1\", params: [subject.bin], record_type: c, fields: {a: a}, headers: {A: b}}}\n",
				"headers: not a key of a postgres backend"
		}
		err := load(t, text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "line") {
			t.Errorf("%s: the error quotes the value: %v", name, err)
		}
	}
}

// query builds the backends of an adapter file's text and asks its service 5 about a person.
func query(t *testing.T, text string) (siobroker.ServiceResult, error) {
	t.Helper()
	cfg, err := adapterconfig.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	set, err := adapterconfig.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	return set.Backends[5].Query(context.Background(), adaptertest.Request(5, siobroker.Subject{IIN: "850101300015"}))
}
