package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal/archive"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// journalSource is an in-memory journal of n chained records.
type journalSource []siobroker.JournalRecord

func (s journalSource) Query(_ context.Context, f siobroker.JournalFilter) ([]siobroker.JournalRecord, error) {
	var out []siobroker.JournalRecord
	for _, r := range s {
		if r.Seq > f.AfterSeq && (f.Limit == 0 || len(out) < f.Limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

func newJournalSource(n int) journalSource {
	var out journalSource
	prev := ""
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, siobroker.Astana)
	for seq := int64(1); seq <= int64(n); seq++ {
		r := siobroker.JournalRecord{Seq: seq, At: at.Add(time.Duration(seq) * time.Second), Kind: siobroker.JournalRequest,
			RequestID: "req", Data: []byte("<x/>"), PrevHash: prev}
		r.Hash = r.ComputeHash()
		prev = r.Hash
		out = append(out, r)
	}
	return out
}

func runJournal(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cmdJournal(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestJournalVerifyCommand(t *testing.T) {
	pkiDir := t.TempDir()
	m, err := devpki.Generate(pkiDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.LoadSigner(filepath.Join(pkiDir, m.BrokerCert), filepath.Join(pkiDir, m.BrokerKey))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sealer, err := archive.NewSealer(archive.Config{Dir: dir, MaxRecords: 10}, newJournalSource(25), signer, siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sealer.SealNow(ctx); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(pkiDir, m.CA)
	crl := filepath.Join(pkiDir, m.CRL)

	// All well, with the flags after DIR or before it.
	for _, args := range [][]string{
		{"verify", dir, "--ca", ca, "--crl", crl},
		{"verify", "--ca", ca + "," + ca, dir},
	} {
		code, out, errOut := runJournal(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		t.Logf("%v:\n%s", args, out)
		for _, want := range []string{"verified", "archives:      3 (journal-000001 to journal-000003)", "records:       25 (seq 1 to 25)"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: the report lacks %q:\n%s", args, want, out)
			}
		}
	}

	// An empty directory has nothing to verify.
	if code, out, _ := runJournal("verify", t.TempDir(), "--ca", ca); code != 0 || !strings.Contains(out, "none sealed yet") {
		t.Errorf("empty directory: exit %d\n%s", code, out)
	}

	// The first problem is named, exit 1.
	if err := os.Remove(filepath.Join(dir, "journal-000002.jsonl.gz")); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runJournal("verify", dir, "--ca", ca)
	t.Logf("a missing file:\n%s", out)
	if code != 1 || !strings.Contains(out, "PROBLEM\n  journal-000002.jsonl.gz is missing\n") || !strings.Contains(out, "verified before it: 1 archives, records 1 to 10") {
		t.Errorf("a missing file: exit %d\n%s", code, out)
	}

	// Trust files that cannot be read, and a directory that does not exist: exit 1.
	if code, _, errOut := runJournal("verify", dir, "--ca", filepath.Join(pkiDir, "none.pem")); code != 1 || !strings.Contains(errOut, "none.pem") {
		t.Errorf("missing CA: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runJournal("verify", filepath.Join(dir, "none"), "--ca", ca); code != 1 || errOut == "" {
		t.Errorf("missing directory: exit %d, %s", code, errOut)
	}

	// Usage errors: exit 2; help: exit 0.
	for _, args := range [][]string{{}, {"verify"}, {"verify", dir, dir}, {"verify", dir, "--nope"}, {"verify", dir, "--ca", ""}, {"seal"}} {
		if code, _, _ := runJournal(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	for _, args := range [][]string{{"help"}, {"verify", "-h"}} {
		if code, _, _ := runJournal(args...); code != 0 {
			t.Errorf("%q: exit %d, want 0", args, code)
		}
	}
}
