//go:build unix

package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/private"
	"github.com/sio-pso/siobroker/journal/archive"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// walkModes reports every directory under dir that is not 0700 and every file that is not 0600,
// and returns how many files it saw.
func walkModes(t *testing.T, dir string) int {
	t.Helper()
	files, loose, err := private.Audit(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range loose {
		t.Error(l)
	}
	return files
}

// TestDataDirIsPrivate: under the common umask 0022, everything the broker writes under its data
// directory (the store written to, the development PKI, a sealed archive) is 0600, every
// directory 0700; and what an earlier version left 0644 in 0755 directories is tightened at start.
func TestDataDirIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	now := time.Now()

	// What an earlier version left: a 0755 directory with a 0644 file in it.
	earlier := filepath.Join(cfg.DataDir, "pki", "users")
	if err := os.MkdirAll(earlier, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, DemoSubjectsFile), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if err := privateDataDir(cfg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logs.Bytes(), []byte("made files and directories private")) {
		t.Errorf("tightening an earlier data directory was not logged:\n%s", logs.String())
	}

	db, err := OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j := db.Journal()
	for i := range 3 {
		if _, err := j.Append(ctx, siobroker.JournalRecord{At: now, Kind: siobroker.JournalRequest, RequestID: "r-" + string(rune('1'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	pki := filepath.Join(cfg.DataDir, "pki")
	m, _, err := devpki.Ensure(pki, now)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.LoadSigner(filepath.Join(pki, m.BrokerCert), filepath.Join(pki, m.BrokerKey))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := archive.NewSealer(archive.Config{Dir: archiveDirOf(cfg), MaxRecords: 2}, j, signer, siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	if sealed, err := sealer.SealNow(ctx); err != nil || len(sealed) == 0 {
		t.Fatalf("SealNow = %d archives, %v; want some", len(sealed), err)
	}
	// The database, its -wal and -shm, demo-subjects.json, the PKI's files (ca, key, CRL, broker,
	// users, manifest) and the archives' files.
	if n := walkModes(t, cfg.DataDir); n < 20 {
		t.Errorf("saw %d files under the data directory; the walk missed some", n)
	}
}
