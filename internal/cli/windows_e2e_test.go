package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/operator/maintenance/publish"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestMaintenanceWindowsPublished runs `serve`'s wiring with http.tls and client_auth request:
// a registered user's TLS client certificate reads the schedule as Atom and JSON on the public
// listener, a request without one is refused 403 SIO-WINDOWS-DENIED, and GetMaintenanceWindows,
// signed, is answered on the SyncChannel and AsyncChannel endpoints with a reply the broker
// signed, naming the emergency window announced.
func TestMaintenanceWindowsPublished(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	copyDir(t, src.pki, pki)
	cfg := testConfig(dir)
	cfg.HTTP.TLS.Enabled = true
	cfg.HTTP.TLS.CertFile = filepath.Join(pki, devpki.BrokerFile)
	cfg.HTTP.TLS.KeyFile = filepath.Join(pki, devpki.BrokerKey)
	cfg.HTTP.TLS.ClientAuth = "request"
	b, err := app.Start(context.Background(), cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	now := siobroker.SystemClock{}.Now()
	w, err := b.Maintenance().Announce(context.Background(), siobroker.MaintenanceWindow{Services: []int{7}, Start: now.Add(-5 * time.Minute),
		End: now.Add(time.Hour), Reason: "отказ СХД", AnnouncedBy: "operator on duty", Emergency: true})
	if err != nil {
		t.Fatal(err)
	}

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
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, u.Cert), filepath.Join(pki, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(c *http.Client, method, path, contentType string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, b.BaseURL()+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, out
	}

	resp, body := fetch(httpsClient(cert), http.MethodGet, publish.AtomPath, "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Emergency maintenance no. ") || !strings.Contains(string(body), "отказ СХД") {
		t.Fatalf("the Atom feed with a client certificate: HTTP %d\n%s", resp.StatusCode, body)
	}
	resp, body = fetch(httpsClient(cert), http.MethodGet, publish.JSONPath, "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"emergency":true`) {
		t.Fatalf("the JSON feed with a client certificate: HTTP %d\n%s", resp.StatusCode, body)
	}
	resp, body = fetch(httpsClient(), http.MethodGet, publish.JSONPath, "", nil)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-SIO-Error-Code") != string(siobroker.CodeWindowsDenied) {
		t.Fatalf("the feed without a certificate: HTTP %d %s", resp.StatusCode, body)
	}

	signer, err := signing.LoadSigner(filepath.Join(pki, u.Cert), filepath.Join(pki, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{filepath.Join(pki, devpki.CAFile)}})
	if err != nil {
		t.Fatal(err)
	}
	verifier := mustVerifier(t, signing.VerifierConfig{Trust: trust, AnySigner: true})
	for _, path := range []string{cfg.Endpoint, app.AsyncPath} {
		doc := soap.NewMaintenanceQueryRequest(siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "SIO_PSO_MAINTENANCE",
			SenderID: "E2E", MessageDate: siobroker.SystemClock{}.Now()})
		if err := signer.Sign(doc, signing.PlacementWSSE); err != nil {
			t.Fatal(err)
		}
		raw, err := soap.Serialize(doc)
		if err != nil {
			t.Fatal(err)
		}
		// No client certificate: the signature is what authenticates this way.
		resp, body := fetch(httpsClient(), http.MethodPost, path, "text/xml; charset=utf-8", raw)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GetMaintenanceWindows at %s: HTTP %d\n%s", path, resp.StatusCode, body)
		}
		reply, _, err := soap.ReadOperationResponseEnvelope(bytes.NewReader(body), "text/xml", soap.Limits{}, soap.OpGetMaintenanceWindows)
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifier.Verify(context.Background(), reply, time.Now())
		if err != nil {
			t.Fatalf("the reply's signature at %s: %v", path, err)
		}
		_, m, err := soap.ParseMaintenanceWindowsResponse(v.Signed)
		if err != nil || len(m.Windows) != 1 || m.Windows[0].Number != w.ID || !m.Windows[0].Emergency || m.MinNotice != cfg.MaintenanceMinNotice {
			t.Fatalf("the reply at %s: %+v %v", path, m, err)
		}
	}
}
