package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/schemas/soap"
)

const exportsUsage = `usage:
  siobroker exports list [--all] [--days N]
  siobroker exports show ID [--document FILE]
  siobroker exports approve ID
  siobroker exports refuse ID --reason TEXT

The prosecutors' export requests (§51–53 of the Rules). A prosecutor asks for the requests of a
user or an organisation over a period under a resolution, which the request names and attaches
(siobroker reports export); nothing is exported until the operator approves it here; the
prosecutor then fetches exactly what was asked (siobroker reports fetch). A refusal gives the
reason the prosecutor is told. Every request and decision is a record of the permanent journal,
and these commands read the requests from it.
list shows the requests waiting for a decision (--all: every one) of the last --days (default
90). show prints one, and writes its resolution document to --document FILE (checked against the
SHA-256 journaled with it). Every command takes --config FILE (default configs/broker.yaml, with
the SIOBROKER_* environment over it, as serve reads it) and --data DIR; approve and refuse take
--by NAME (who decides; default $USER). Times are Astana time.
Exit status: 0 done, 1 no such request, already decided, or the journal could not be used, 2
usage error or a configuration that does not load.
`

// openExportDesk opens the journal the broker's configuration names and the operator's desk over
// it; desk nil means return code; done closes what was opened.
func openExportDesk(ctx context.Context, f *operatorFlags) (desk *reports.ExportDesk, done func(), code int) {
	e, code, ok := f.env()
	if !ok {
		return nil, nil, code
	}
	j, closeJournal, err := e.journalOnly(ctx)
	if err != nil {
		return nil, nil, f.fail(exitFailed, "%v", err)
	}
	if desk, err = reports.NewExportDesk(j, siobroker.SystemClock{}); err != nil {
		closeJournal()
		return nil, nil, f.fail(exitFailed, "%v", err)
	}
	return desk, closeJournal, exitOK
}

func exportsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newOperatorFlags("exports list", exportsUsage, stdout, stderr, "")
	all := f.Bool("all", false, "list every request, decided ones too")
	days := f.Int("days", 90, "list the requests of the last N days")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *days <= 0 {
		return f.usageError("--days must be positive")
	}
	desk, done, code := openExportDesk(ctx, f)
	if desk == nil {
		return code
	}
	defer done()
	since := siobroker.SystemClock{}.Now().Add(-time.Duration(*days) * 24 * time.Hour)
	list, err := desk.List(ctx, since, !*all)
	if err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tASKED\tBY (IIN)\tORGANISATION\tRESOLUTION\tSUBJECT\tPERIOD")
	for _, x := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s of %s\t%s\t%s – %s\n", x.ID, x.Status, showTime(x.At), x.RequesterIIN, x.Organisation,
			x.ResolutionNo, x.ResolutionDate, exportSubject(x), showTime(x.From), showTime(x.To))
	}
	tw.Flush()
	what := "export requests waiting for a decision"
	if *all {
		what = "export requests"
	}
	fmt.Fprintf(stdout, "%d %s\n", len(list), what)
	return exitOK
}

// exportSubject is whom an export request covers.
func exportSubject(x reports.ExportRequest) string {
	if x.UserIIN != "" {
		return "user " + x.UserIIN
	}
	return "organisation " + x.SubjectOrg
}

// exportID parses the one positional argument ID.
func exportID(f *operatorFlags, args []string) (string, int, bool) {
	pos, code, ok := f.parse(args)
	if !ok {
		return "", code, false
	}
	if len(pos) != 1 || pos[0] == "" {
		return "", f.usageError("one export request ID is required"), false
	}
	return pos[0], exitOK, true
}

func exportsShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newOperatorFlags("exports show", exportsUsage, stdout, stderr, "")
	document := f.String("document", "", "write the resolution document to FILE (not replacing one)")
	id, code, ok := exportID(f, args)
	if !ok {
		return code
	}
	desk, done, code := openExportDesk(ctx, f)
	if desk == nil {
		return code
	}
	defer done()
	x, ok, err := desk.Get(ctx, id)
	switch {
	case err != nil:
		return f.fail(exitFailed, "%v", err)
	case !ok:
		return f.fail(exitFailed, "export request %q: %v", id, reports.ErrExportNotFound)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, row := range [][2]string{
		{"id", x.ID}, {"status", x.Status}, {"asked", showTime(x.At)}, {"by", x.RequesterIIN + " (" + x.Organisation + ")"},
		{"resolution", x.ResolutionNo + " of " + x.ResolutionDate + ", issued by " + x.IssuedBy},
		{"document", fmt.Sprintf("%s (%s, %d bytes, SHA-256 %s)", x.Document.FileName, x.Document.MediaType, len(x.Document.Content), x.DocumentSHA256)},
		{"subject", exportSubject(x)}, {"period", showTime(x.From) + " – " + showTime(x.To)}, {"format", x.Format},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	if x.Status != soap.ExportPending {
		fmt.Fprintf(tw, "decided\t%s by %s\n", showTime(x.DecidedAt), x.DecidedBy)
		if x.Reason != "" {
			fmt.Fprintf(tw, "reason\t%s\n", x.Reason)
		}
	}
	tw.Flush()
	if *document != "" {
		if err := writeNew(*document, x.Document.Content); err != nil {
			return f.fail(exitFailed, "--document: %v", err)
		}
		fmt.Fprintf(stdout, "resolution document written to %s\n", *document)
	}
	return exitOK
}

// writeNew writes content to a new file at path, readable by its owner only: a resolution names
// people and cases.
func writeNew(path string, content []byte) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(content); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func exportsApprove(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newOperatorFlags("exports approve", exportsUsage, stdout, stderr, "who decides")
	return exportsDecide(ctx, f, args, true, nil)
}

func exportsRefuse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newOperatorFlags("exports refuse", exportsUsage, stdout, stderr, "who decides")
	reason := f.String("reason", "", "why, as the prosecutor is told (required)")
	return exportsDecide(ctx, f, args, false, reason)
}

// exportsDecide approves or refuses the export request of args, as f's --by.
func exportsDecide(ctx context.Context, f *operatorFlags, args []string, approve bool, reason *string) int {
	id, code, ok := exportID(f, args)
	if !ok {
		return code
	}
	text := ""
	if reason != nil {
		if text = *reason; text == "" {
			return f.usageError("--reason is required: the prosecutor is told why")
		}
	}
	desk, done, code := openExportDesk(ctx, f)
	if desk == nil {
		return code
	}
	defer done()
	x, err := desk.Decide(ctx, id, approve, *f.by, text)
	if err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(f.stdout, "export request %s %s by %s; journaled\n", x.ID, x.Status, x.DecidedBy)
	return exitOK
}
