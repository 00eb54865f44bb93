package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/client"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestTLSClientCertificates: with http.tls on and client_auth require, a client presenting a
// certificate from the trusted roots is served over HTTPS, and one presenting none, or one from
// another CA, does not get past the handshake.
func TestTLSClientCertificates(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	copyDir(t, src.pki, pki)

	cfg := testConfig(dir)
	cfg.HTTP.TLS.Enabled = true
	cfg.HTTP.TLS.CertFile = filepath.Join(pki, devpki.BrokerFile)
	cfg.HTTP.TLS.KeyFile = filepath.Join(pki, devpki.BrokerKey)
	cfg.HTTP.TLS.ClientAuth = "require"
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
	httpsClient := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
		}}
	}

	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(pki, u.Cert), filepath.Join(pki, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.LoadSigner(filepath.Join(pki, u.Cert), filepath.Join(pki, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{filepath.Join(pki, devpki.CAFile)}})
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{
		URL: b.BaseURL() + cfg.Endpoint, Signer: signer, Verifier: mustVerifier(t, signing.VerifierConfig{Trust: trust, AnySigner: true}),
		Placement: signing.PlacementWSSE, HTTP: httpsClient(clientCert), Clock: siobroker.SystemClock{},
		SenderID: "TLS_TEST", ServiceID: "SIO_PSO_QUERY",
	}
	if b.BaseURL()[:8] != "https://" {
		t.Fatalf("broker base URL %s, want https", b.BaseURL())
	}
	q := siobroker.Query{Basis: siobroker.BasisCriminal, Case: userCase(t, u, siobroker.BasisCriminal).Ref(),
		Subject: siobroker.Subject{IIN: src.subject}, Services: []int{1}, Purpose: "tls"}
	ex, err := c.Send(context.Background(), q)
	if err != nil {
		t.Fatalf("send over TLS with a trusted client certificate: %v", err)
	}
	if len(ex.Result.Services) != 1 || ex.Result.Services[0].Status != siobroker.StatusOK {
		t.Fatalf("results %+v", ex.Result.Services)
	}

	c.HTTP = httpsClient()
	if _, err := c.Send(context.Background(), q); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	otherDir, _ := foreignPKI(t)
	other, err := devpki.LoadManifest(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.LoadX509KeyPair(filepath.Join(otherDir, other.Users[0].Cert), filepath.Join(otherDir, other.Users[0].Key))
	if err != nil {
		t.Fatal(err)
	}
	c.HTTP = httpsClient(foreign)
	if _, err := c.Send(context.Background(), q); err == nil {
		t.Fatal("a client with a certificate from another CA was served")
	}
}
