package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/journal/archive"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/sqlite"
)

// Exit codes of the journal command.
const (
	journalExitOK      = 0 // verified
	journalExitProblem = 1 // a problem found, or the archives or the trust files could not be read
	journalExitUsage   = 2 // bad command line
)

const journalUsage = `usage:
  siobroker journal verify DIR [--ca FILE[,FILE]] [--crl FILE[,FILE]]
  siobroker journal check [--config FILE] [--data DIR]
  siobroker journal reindex [--config FILE] [--data DIR]

verify checks the sealed archives of the journal in DIR offline (§38 of the Rules): every
archive from journal-000001 on; its signature by the broker's certificate, which must chain to a
root of --ca at the time the archive was sealed (and not be revoked by --crl, if given); the link
of each manifest to the one before; and every record: unchanged, none missing, in order. It
prints the report, or the first problem.

check checks the live journal the broker's configuration names (--config, default
configs/broker.yaml, with the SIOBROKER_* environment over it, as serve reads it: the broker's
store in its data_dir, or --data, or PostgreSQL), beside a running broker, which it only reads:
every record from the first, unchanged, none missing, in order; and that it agrees with the last
sealed archive (the record the archive ends with is in the journal, with the same hash), so that
a journal rebuilt or cut back after a seal is caught.
The records not yet sealed are checked only here and when they are sealed.

reindex rebuilds the request index that reports read (§9–10) from the live journal alone: every
request with its basis, case, subject, services and outcome, read from the journaled request, and
the signer's organisation, ЕРДР code and department as the user registry had them at the time
(its applications). It empties the index and folds the whole journal into it again; a running
broker goes on beside it, and its reports are refused SIO-UNAVAILABLE until the index has caught
up. Run it once after upgrading a broker whose journal is older than the index (the broker also
folds such a backlog by itself in the background), or whenever the index is in doubt: it holds
nothing the journal does not.

Exit status: 0 verified (or rebuilt), 1 a problem found (or the files or the journal could not be
read, or the index not written), 2 usage error or a configuration that does not load.
`

func journalVerify(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("journal verify", journalUsage, stdout, stderr)
	ca := f.String("ca", "./data/pki/ca.pem", "the trusted root certificates (PEM), comma-separated")
	crl := f.String("crl", "", "CRLs to check the signing certificates against (PEM or DER), comma-separated")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 || pos[0] == "" {
		return f.usageError("one archive directory DIR is required")
	}
	if journalFiles(*ca) == nil {
		return f.usageError("--ca names no file")
	}
	dir := pos[0]
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: journalFiles(*ca), CRLFiles: journalFiles(*crl)})
	if err != nil {
		return f.fail(journalExitProblem, "%v", err)
	}
	rep, err := archive.Verify(dir, trust)
	var p *archive.Problem
	switch {
	case errors.As(err, &p):
		fmt.Fprintf(stdout, "journal archives in %s: PROBLEM\n  %s\n", dir, p.Message)
		if rep.Archives > 0 {
			fmt.Fprintf(stdout, "  verified before it: %d archives, records %d to %d\n", rep.Archives, rep.FirstSeq, rep.LastSeq)
		}
		return journalExitProblem
	case err != nil:
		return f.fail(journalExitProblem, "%v", err)
	case rep.Archives == 0:
		fmt.Fprintf(stdout, "journal archives in %s: none sealed yet\n", dir)
		return journalExitOK
	}
	fmt.Fprintf(stdout, "journal archives in %s: verified\n", dir)
	fmt.Fprintf(stdout, "  archives:      %d (journal-000001 to journal-%06d)\n", rep.Archives, rep.Archives)
	fmt.Fprintf(stdout, "  records:       %d (seq %d to %d)\n", rep.Records, rep.FirstSeq, rep.LastSeq)
	fmt.Fprintf(stdout, "  last hash:     %s\n", rep.LastHash)
	fmt.Fprintf(stdout, "  last manifest: sha256 %s, sealed %s\n", rep.LastManifestSHA256, rep.LastSealedAt)
	fmt.Fprintln(stdout, "  note: whole archives removed from the end cannot be seen offline: compare the last seq and hash with the journal")
	return journalExitOK
}

// liveJournal is what journal check reads of the configured journal.
type liveJournal interface {
	Verify(ctx context.Context) error
	Head(ctx context.Context) (seq int64, hash string, err error)
	Query(ctx context.Context, f siobroker.JournalFilter) ([]siobroker.JournalRecord, error)
}

// Both journal stores can be checked.
var (
	_ liveJournal = (*sqlite.Journal)(nil)
	_ liveJournal = (*postgres.Journal)(nil)
)

func journalCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("journal check", journalUsage, stdout, stderr)
	b := addBrokerFlags(f, true)
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	e, code, ok := b.loadOrFail()
	if !ok {
		return code
	}
	cfg := e.cfg
	// The broker's own store, never a new empty one: an empty journal in a wrong directory would
	// check as verified.
	j, closeJournal, err := e.journalOnly(ctx)
	if err != nil {
		return f.fail(journalExitProblem, "%v", err)
	}
	defer closeJournal()
	live, ok := j.(liveJournal)
	if !ok {
		return f.fail(journalExitProblem, "the %s journal cannot be checked", cfg.Journal.Driver)
	}
	archiveDir := cfg.Journal.ArchiveDir
	if archiveDir == "" {
		archiveDir = filepath.Join(cfg.DataDir, "archive")
	}
	// The head is read first: records appended during the walk are checked too, and are past it.
	seq, hash, err := live.Head(ctx)
	if err == nil {
		err = live.Verify(ctx)
	}
	var chainErr *journal.ChainError
	switch {
	case errors.As(err, &chainErr):
		fmt.Fprintf(stdout, "journal: PROBLEM\n  %s\n", chainErr)
		return journalExitProblem
	case err != nil:
		return f.fail(journalExitProblem, "the journal (%s): %v", e.describe("journal.driver", cfg.Journal.Driver), err)
	}
	sealed, problem, err := agreesWithArchive(ctx, live, archiveDir, seq)
	switch {
	case err != nil:
		return f.fail(journalExitProblem, "the archives in %s: %v", archiveDir, err)
	case problem != "":
		fmt.Fprintf(stdout, "journal: PROBLEM\n  %s\n", problem)
		return journalExitProblem
	}
	fmt.Fprintln(stdout, "journal: verified")
	fmt.Fprintf(stdout, "  records:  %d (every one from the first, chained; more may have been appended since)\n", seq)
	fmt.Fprintf(stdout, "  head:     %s\n", hash)
	if sealed > 0 {
		fmt.Fprintf(stdout, "  archives: sealed up to record %d, which the journal holds unchanged (%s)\n", sealed, archiveDir)
	} else {
		fmt.Fprintf(stdout, "  archives: none sealed yet (%s)\n", archiveDir)
	}
	return journalExitOK
}

// agreesWithArchive checks that the live journal, whose head was headSeq, holds the record the
// last sealed archive in dir ends with, with the same hash. It returns the archive's last seq (0
// when none is sealed), and a problem to report, if any.
func agreesWithArchive(ctx context.Context, live liveJournal, dir string, headSeq int64) (int64, string, error) {
	m, err := archive.LastManifest(dir)
	if err != nil || m.LastSeq == 0 {
		return 0, "", err
	}
	if headSeq < m.LastSeq {
		return m.LastSeq, fmt.Sprintf("the journal ends at record %d, but the archives were sealed up to record %d: records were removed, or the journal was replaced", headSeq, m.LastSeq), nil
	}
	recs, err := live.Query(ctx, siobroker.JournalFilter{AfterSeq: m.LastSeq - 1, Limit: 1})
	if err != nil {
		return 0, "", fmt.Errorf("read journal record %d: %w", m.LastSeq, err)
	}
	if len(recs) == 0 || recs[0].Seq != m.LastSeq {
		return m.LastSeq, fmt.Sprintf("journal record %d, the last one sealed, is missing", m.LastSeq), nil
	}
	if recs[0].Hash != m.LastHash {
		return m.LastSeq, fmt.Sprintf("journal record %d differs from the archive it was sealed into: hash %s in the journal, %s in the archive; the journal was replaced after the seal",
			m.LastSeq, recs[0].Hash, m.LastHash), nil
	}
	return m.LastSeq, "", nil
}

// journalFiles splits a comma-separated list of file names, dropping empty items.
func journalFiles(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func journalReindex(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("journal reindex", journalUsage, stdout, stderr)
	b := addBrokerFlags(f, true)
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	e, code, ok := b.loadOrFail()
	if !ok {
		return code
	}
	// The broker's own store (its registry's history, and the index of the embedded journal),
	// never a new empty one.
	db, err := e.existingStore(ctx)
	if err != nil {
		return f.fail(journalExitProblem, "%v", err)
	}
	defer db.Close()
	j, closeJournal, err := e.journal(ctx, db)
	if err != nil {
		return f.fail(journalExitProblem, "%v", err)
	}
	defer closeJournal()
	indexer, err := app.NewIndexer(e.cfg, j, db, nil, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return f.fail(journalExitProblem, "%v", err)
	}
	head, _, err := j.Head(ctx)
	if err != nil {
		return f.fail(journalExitProblem, "the journal (%s): %v", e.describe("journal.driver", e.cfg.Journal.Driver), err)
	}
	fmt.Fprintf(stdout, "request index: rebuilding from the journal's %d records\n", head)
	through, err := indexer.Rebuild(ctx, func(through int64) {
		fmt.Fprintf(stdout, "  folded up to record %d of %d\n", through, head)
	})
	if err != nil {
		return f.fail(journalExitProblem, "rebuilding the request index (folded up to record %d): %v", through, err)
	}
	n := 0
	if err := app.RequestIndexOf(j, db).ScanRequests(ctx, siobroker.RequestFilter{ThroughSeq: through}, func(c int) error {
		n = c
		return errStopScan
	}, func(siobroker.RequestEntry) error { return nil }); err != nil && !errors.Is(err, errStopScan) {
		return f.fail(journalExitProblem, "the rebuilt request index: %v", err)
	}
	fmt.Fprintf(stdout, "request index: rebuilt, %d requests, the journal folded up to record %d\n", n, through)
	return journalExitOK
}

// errStopScan ends a scan once its count is known.
var errStopScan = errors.New("counted")
