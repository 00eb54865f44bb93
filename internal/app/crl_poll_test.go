package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sio-pso/siobroker/signing"
)

// TestCRLPollIsConfigurable: the watcher looks at the CRL files every trust.crl_poll, apart from
// the poll of the other files: with the other poll at an hour and crl_poll at 20ms, a CRL file
// rewritten with a new CRL is in force within a second, without SIGHUP.
func TestCRLPollIsConfigurable(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "poll root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	rootFile, crlFile := filepath.Join(dir, "root.pem"), filepath.Join(dir, "crl.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	writeCRL := func(number int64) {
		t.Helper()
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number),
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, root, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCRL(1)
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{rootFile}, CRLFiles: []string{crlFile}})
	if err != nil {
		t.Fatal(err)
	}
	l := &liveConfig{}
	l.attachTrust(trust)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.watch(ctx, nil, time.Hour, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()

	writeCRL(2)
	deadline := time.Now().Add(time.Second)
	for trust.CRLs()[0].Number.Int64() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the CRL file's new content was not in force within a second with crl_poll 20ms (number %v)", trust.CRLs()[0].Number)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
