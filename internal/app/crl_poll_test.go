package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sio-pso/siobroker/internal/testpki"
	"github.com/sio-pso/siobroker/signing"
)

// TestCRLPollIsConfigurable: the watcher looks at the CRL files every trust.crl_poll, apart from
// the poll of the other files: with the other poll at an hour and crl_poll at 20ms, a CRL file
// rewritten with a new CRL is in force within a second, without SIGHUP.
func TestCRLPollIsConfigurable(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	root := testpki.NewRoot(t, "poll root", now)
	rootFile, crlFile := filepath.Join(dir, "root.pem"), filepath.Join(dir, "crl.pem")
	if err := os.WriteFile(rootFile, testpki.PEM("CERTIFICATE", root.Cert.Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	writeCRL := func(number int64) {
		t.Helper()
		crl := root.CRL(t, number, now.Add(-time.Minute), now.Add(time.Hour))
		if err := os.WriteFile(crlFile, testpki.PEM("X509 CRL", crl), 0o600); err != nil {
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
