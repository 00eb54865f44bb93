package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// revokeInDevCRL signs, with the development CA's key, a CRL that lists what the current one
// lists plus cert, and writes it over the broker's CRL file as an issuer's publication would.
func revokeInDevCRL(t *testing.T, pki string, cert *x509.Certificate, number int64) {
	t.Helper()
	crlPEM, err := os.ReadFile(filepath.Join(pki, devpki.CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	old, err := signing.ParseCRLs(crlPEM)
	if err != nil {
		t.Fatal(err)
	}
	entries := append(old[0].RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: time.Now()})
	writeDevCRL(t, pki, number, entries)
}

// writeDevCRL publishes the development CA's CRL number, listing entries, in the PKI's CRL file.
func writeDevCRL(t *testing.T, pki string, number int64, entries []x509.RevocationListEntry) {
	t.Helper()
	cas, err := signing.LoadCertificates(filepath.Join(pki, devpki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(pki, devpki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("the development CA key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("the development CA key: %v", err)
	}
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, cas[0], parsed.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	// Written beside and renamed, as a publisher should: the poll never sees half a file.
	tmp := filepath.Join(pki, "crl.pem.new")
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(pki, devpki.CRLFile)); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRevokesWithoutRestart (issue 16, item 3): a user is answered; a CRL revoking them is
// published in the broker's CRL file; after a reload by the SIGHUP path the user is refused
// SIO-CERT-REVOKED, without a restart. A broken CRL file is refused and the revocation in force
// stays, and so does it when the original, older CRL is put back (a rollback cannot lift it). The
// file changing alone is enough too: the watcher's poll puts a newer CRL in force that no longer
// lists the user (answered again), then one revoking them anew (refused again). /metrics counts
// the applied and refused CRL reloads.
func TestReloadRevokesWithoutRestart(t *testing.T) {
	e, _, _, _ := reloadableBroker(t)
	user := e.signer(t, findUserByRole(t, e.manifest, 1))
	if status, body := e.sendOne(t, user, 1); status != 200 {
		t.Fatalf("before the revocation: HTTP %d %s", status, truncate(body))
	}
	crlFile := filepath.Join(e.pki, devpki.CRLFile)
	original, err := os.ReadFile(crlFile)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	revokeInDevCRL(t, e.pki, user.Certificate(), 2)
	if err := e.b.Reload(ctx, "SIGHUP", logger); err != nil {
		t.Fatalf("reload with a new CRL: %v", err)
	}
	status, body := e.sendOne(t, user, 1)
	wantFault(t, status, body, 0, siobroker.CodeCertRevoked)
	if !strings.Contains(logs.String(), "crls: in force") {
		t.Errorf("the reload did not log the new CRL:\n%s", logs.String())
	}

	// A broken CRL file is refused: the revocation stays in force.
	if err := os.WriteFile(crlFile, []byte("-----BEGIN X509 CRL-----\nnot a CRL"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Reload(ctx, "SIGHUP", logger); err == nil || !strings.Contains(err.Error(), "CRL reload refused") {
		t.Fatalf("reload with a broken CRL = %v, want refused", err)
	}
	status, body = e.sendOne(t, user, 1)
	wantFault(t, status, body, 0, siobroker.CodeCertRevoked)
	// Counted on /metrics: at least once each (the poll may have seen a file before Reload did).
	metrics := scrape(t, e)
	for _, result := range []string{"applied", "refused"} {
		if n, ok := metric(metrics, "siobroker_crl_reloads_total", `result="`+result+`"`); !ok || n < 1 {
			t.Errorf("siobroker_crl_reloads_total{result=%q} = %v (found %v), want at least 1", result, n, ok)
		}
	}

	// The file changing alone: the poll reloads it, both ways.
	waitFor := func(what string, answered bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, body := e.sendOne(t, user, 1)
			if (status == 200) == answered {
				if !answered {
					wantFault(t, status, body, 0, siobroker.CodeCertRevoked)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reloaded within 20 s (HTTP %d %s)", what, status, truncate(body))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The original CRL (number 1) put back is older than the one in force: refused.
	if err := os.WriteFile(crlFile, original, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Reload(ctx, "SIGHUP", logger); err == nil || !strings.Contains(err.Error(), "older than the one in force") {
		t.Fatalf("reload with the older CRL = %v, want refused as older", err)
	}
	status, body = e.sendOne(t, user, 1)
	wantFault(t, status, body, 0, siobroker.CodeCertRevoked)
	orig, err := signing.ParseCRLs(original)
	if err != nil {
		t.Fatal(err)
	}
	writeDevCRL(t, e.pki, 3, orig[0].RevokedCertificateEntries)
	waitFor("a newer CRL that no longer lists the user", true)
	revokeInDevCRL(t, e.pki, user.Certificate(), 4)
	waitFor("a CRL revoking the user", false)
}
