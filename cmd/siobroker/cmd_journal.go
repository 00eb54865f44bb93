package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sio-pso/siobroker/journal/archive"
	"github.com/sio-pso/siobroker/signing"
)

// Exit codes of the journal command.
const (
	journalExitOK      = 0 // verified
	journalExitProblem = 1 // a problem found, or the archives or the trust files could not be read
	journalExitUsage   = 2 // bad command line
)

const journalUsage = `usage:
  siobroker journal verify DIR [--ca FILE[,FILE]] [--crl FILE[,FILE]]

verify checks the sealed archives of the journal in DIR offline (§38 of the Rules): every
archive from journal-000001 on; its signature by the broker's certificate, which must chain to a
root of --ca at the time the archive was sealed (and not be revoked by --crl, if given); the link
of each manifest to the one before; and every record: unchanged, none missing, in order. It
prints the report, or the first problem.
Exit status: 0 verified, 1 a problem found (or the files could not be read), 2 usage error.
`

// cmdJournal runs "siobroker journal ...": the operator's commands on the journal's archives.
func cmdJournal(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, journalUsage)
		return journalExitUsage
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "verify":
		return journalVerify(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, journalUsage)
		return journalExitOK
	default:
		fmt.Fprintf(stderr, "journal: unknown subcommand %q\n%s", sub, journalUsage)
		return journalExitUsage
	}
}

func journalVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("journal verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ca := fs.String("ca", "./data/pki/ca.pem", "the trusted root certificates (PEM), comma-separated")
	crl := fs.String("crl", "", "CRLs to check the signing certificates against (PEM or DER), comma-separated")
	fs.Usage = func() {
		fmt.Fprint(stderr, journalUsage)
		fmt.Fprintln(stderr, "\nflags of journal verify:")
		fs.PrintDefaults()
	}
	// Flags may come after DIR.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return journalExitOK
			}
			return journalExitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 || pos[0] == "" || journalFiles(*ca) == nil {
		fs.Usage()
		return journalExitUsage
	}
	dir := pos[0]
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: journalFiles(*ca), CRLFiles: journalFiles(*crl)})
	if err != nil {
		fmt.Fprintf(stderr, "siobroker journal verify: %v\n", err)
		return journalExitProblem
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
		fmt.Fprintf(stderr, "siobroker journal verify: %v\n", err)
		return journalExitProblem
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
