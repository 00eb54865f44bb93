package cli

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal/archive"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
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
	code := Main(context.Background(), append([]string{"journal"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// sealingPKI generates a development PKI and returns its directory, its manifest and the
// broker's signer, which seals the archives.
func sealingPKI(t *testing.T) (string, *devpki.Manifest, *signing.Signer) {
	t.Helper()
	pkiDir := t.TempDir()
	m, err := devpki.Generate(pkiDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.LoadSigner(filepath.Join(pkiDir, m.BrokerCert), filepath.Join(pkiDir, m.BrokerKey))
	if err != nil {
		t.Fatal(err)
	}
	return pkiDir, m, signer
}

func TestJournalVerifyCommand(t *testing.T) {
	pkiDir, m, signer := sealingPKI(t)
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

// TestJournalCheckCommand: journal check walks the live chain of the configured journal and
// compares it with the last sealed archive; a record changed behind the triggers, and a journal
// cut back below what was sealed, are reported with exit 1.
func TestJournalCheckCommand(t *testing.T) {
	ctx := t.Context()
	_, _, signer := sealingPKI(t)
	// fill opens a store in a new data directory with n records appended, closed again.
	fill := func(n int) string {
		dir := t.TempDir()
		db, err := sqlite.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for i := range n {
			rec := siobroker.JournalRecord{At: time.Now().In(siobroker.Astana), Kind: siobroker.JournalRequest,
				RequestID: fmt.Sprintf("r%d", i), Data: []byte(`{}`)}
			if _, err := db.Journal().Append(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	config := func(dataDir, archiveDir string) string {
		file := filepath.Join(t.TempDir(), "broker.yaml")
		text := fmt.Sprintf("data_dir: %s\njournal:\n  driver: sqlite\n  archive_dir: %s\n", dataDir, archiveDir)
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}

	dataDir := fill(25)
	archiveDir := filepath.Join(dataDir, "archive")
	// Nothing sealed yet.
	code, out, errOut := runJournal("check", "--config", config(dataDir, archiveDir))
	if code != 0 || !strings.Contains(out, "records:  25") || !strings.Contains(out, "none sealed yet") {
		t.Fatalf("before a seal: exit %d\n%s%s", code, out, errOut)
	}
	db, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := archive.NewSealer(archive.Config{Dir: archiveDir, MaxRecords: 10}, db.Journal(), signer, siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.SealNow(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cfg := config(dataDir, archiveDir)
	code, out, errOut = runJournal("check", "--config", cfg)
	t.Logf("sealed:\n%s", out)
	if code != 0 || !strings.Contains(out, "journal: verified") || !strings.Contains(out, "sealed up to record 25") {
		t.Fatalf("after a seal: exit %d\n%s%s", code, out, errOut)
	}

	// A journal replaced by a shorter one, under the same archives.
	code, out, _ = runJournal("check", "--config", config(fill(12), archiveDir))
	if code != 1 || !strings.Contains(out, "ends at record 12, but the archives were sealed up to record 25") {
		t.Errorf("a shorter journal: exit %d\n%s", code, out)
	}
	// A journal of the same length, written anew: its last sealed record differs.
	code, out, _ = runJournal("check", "--config", config(fill(25), archiveDir))
	if code != 1 || !strings.Contains(out, "journal record 25 differs from the archive") {
		t.Errorf("a replaced journal: exit %d\n%s", code, out)
	}

	// A record changed behind the append-only triggers.
	raw, err := sql.Open("sqlite", filepath.Join(dataDir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`DROP TRIGGER journal_no_update`, `UPDATE journal SET data = '{"changed":true}' WHERE seq = 7`} {
		if _, err := raw.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	code, out, _ = runJournal("check", "--config", cfg)
	t.Logf("changed:\n%s", out)
	if code != 1 || !strings.Contains(out, "PROBLEM") || !strings.Contains(out, "journal record 7") {
		t.Errorf("a changed record: exit %d\n%s", code, out)
	}

	// Usage.
	if code, _, _ := runJournal("check", "extra"); code != 2 {
		t.Errorf("an argument: exit %d, want 2", code)
	}
}

// TestJournalReindexCommand: journal reindex rebuilds the request index of an existing store from
// its journal, the requests' queries read from the journaled envelopes, and refuses a data
// directory without a store.
func TestJournalReindexCommand(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().In(siobroker.Astana).Add(-time.Hour)
	for i := range 3 {
		raw, err := soap.Serialize(soap.NewRequest(siobroker.RequestInfo{MessageID: fmt.Sprintf("m%d", i), MessageDate: at},
			siobroker.Query{Basis: siobroker.BasisSearch, Case: siobroker.CaseRef{Number: "26150003100012" + fmt.Sprint(i)},
				Subject: siobroker.Subject{IIN: "870315123455"}, Services: []int{1}, Purpose: "розыск"}))
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("r%d", i)
		if _, err := db.Journal().Append(ctx,
			siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: id, SignerIIN: "900101300123", Organisation: "ДП", Data: raw},
			siobroker.JournalRecord{At: at, Kind: siobroker.JournalReport, RequestID: "use" + id, Data: []byte(`{}`)},
		); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	file := filepath.Join(t.TempDir(), "broker.yaml")
	if err := os.WriteFile(file, []byte("data_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runJournal("reindex", "--config", file)
	if code != 0 || !strings.Contains(out, "rebuilt, 3 requests, the journal folded up to record 6") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	db, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.RequestEntries(ctx, []string{"r2"})
	if err != nil || len(got) != 1 || got[0].Basis != siobroker.BasisSearch || got[0].Case != "261500031000122" || got[0].Outcome != siobroker.RequestPending {
		t.Errorf("entry r2: %+v, %v", got, err)
	}
	code, _, errOut = runJournal("reindex", "--data", t.TempDir(), "--config", file)
	if code != 1 || !strings.Contains(errOut, "no broker store") {
		t.Errorf("no store: exit %d: %s", code, errOut)
	}
}
