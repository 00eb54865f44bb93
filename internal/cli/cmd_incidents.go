package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/incidents"
)

// Exit codes of the incidents command.
const (
	incidentsExitOK     = 0 // done
	incidentsExitFailed = 1 // no such incident, already closed, or the store could not be used
	incidentsExitUsage  = 2 // bad command line
)

const incidentsUsage = `usage:
  siobroker incidents list [--all]
  siobroker incidents show N
  siobroker incidents annotate N [--measures TEXT] [--responsible NAME]
  siobroker incidents close N --note TEXT

The journal of emergencies (§39–41, Appendix 7 of the Rules). The broker opens an incident when
messages of one service wait for delivery more than an hour and closes it when delivery resumes;
the operator records the measures taken and who was responsible, and may close one by hand.
list shows the open incidents (--all: every one). Every command takes --config FILE (default
configs/broker.yaml, with the SIOBROKER_* environment over it, as serve reads it) and --data DIR
(default: its data_dir), the broker's data directory; annotate and close take --by NAME (who
acts; default $USER), and are recorded in the journal the configuration names too (§39). Every
change is kept in the incident's history. Times are Astana time.
Exit status: 0 done, 1 refused or failed, 2 usage error or a configuration that does not load.
`

// incidentsFlags are the operator's flags of an incidents subcommand.
func incidentsFlags(name string, stdout, stderr io.Writer, mutating bool) *operatorFlags {
	by := ""
	if mutating {
		by = "who acts"
	}
	return newOperatorFlags("incidents "+name, incidentsUsage, stdout, stderr, by)
}

// incidentNumber parses the one positional argument N.
func incidentNumber(f *operatorFlags, pos []string) (int64, int) {
	if len(pos) != 1 {
		return 0, f.usageError("one incident number N is required")
	}
	n, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || n <= 0 {
		return 0, f.usageError("%q is not an incident number", pos[0])
	}
	return n, incidentsExitOK
}

// openIncidents opens the store and the operator's actions over it, journaled in the journal
// the broker's configuration names (§39: an incident is also recorded in the journal), beside the
// store's append-only incident history. svc nil means return code; done closes both.
func openIncidents(ctx context.Context, f *operatorFlags) (svc *incidents.Service, done func(), code int) {
	db, e, code := f.openStore(ctx)
	if db == nil {
		return nil, nil, code
	}
	j, closeJournal, err := e.journal(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, f.fail(incidentsExitFailed, "%v", err)
	}
	if svc, err = incidents.NewService(db, j, siobroker.SystemClock{}, *f.by); err != nil {
		closeJournal()
		db.Close()
		return nil, nil, f.fail(incidentsExitFailed, "%v", err)
	}
	return svc, func() { closeJournal(); db.Close() }, incidentsExitOK
}

func incidentsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := incidentsFlags("list", stdout, stderr, false)
	all := f.Bool("all", false, "list every incident, closed ones too")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	db, _, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	list, err := db.Incidents(ctx, *all)
	if err != nil {
		return f.fail(incidentsExitFailed, "%v", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tSTATUS\tTYPE\tSERVICE\tQUEUE\tADAPTER\tSTARTED\tOPENED\tCLOSED\tAFFECTED\tRESPONSIBLE")
	for _, inc := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", inc.Number, inc.Status, inc.Type, inc.Cause.Service,
			inc.Cause.Queue, incidentDash(inc.Cause.Adapter), showTime(inc.StartedAt), showTime(inc.OpenedAt), showTime(inc.ClosedAt),
			inc.Affected, incidentDash(inc.Responsible))
	}
	tw.Flush()
	what := "open incidents"
	if *all {
		what = "incidents"
	}
	fmt.Fprintf(stdout, "%d %s\n", len(list), what)
	return incidentsExitOK
}

func incidentsShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := incidentsFlags("show", stdout, stderr, false)
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	n, code := incidentNumber(f, pos)
	if code != incidentsExitOK {
		return code
	}
	db, e, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	inc, ok, err := db.Incident(ctx, n)
	if err != nil {
		return f.fail(incidentsExitFailed, "%v", err)
	}
	if !ok {
		return f.fail(incidentsExitFailed, "incident %d: %v (in the %s)", n, siobroker.ErrIncidentNotFound, e.dataDir())
	}
	events, err := db.IncidentEvents(ctx, n)
	if err != nil {
		return f.fail(incidentsExitFailed, "%v", err)
	}
	printIncident(stdout, inc, events)
	return incidentsExitOK
}

func printIncident(w io.Writer, inc siobroker.Incident, events []siobroker.IncidentEvent) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range [][2]string{
		{"number", fmt.Sprint(inc.Number)}, {"type", inc.Type}, {"status", string(inc.Status)},
		{"service", fmt.Sprint(inc.Cause.Service)}, {"queue", inc.Cause.Queue}, {"adapter", incidentDash(inc.Cause.Adapter)},
		{"last error", incidentDash(inc.LastError)}, {"started", showTime(inc.StartedAt)}, {"opened", showTime(inc.OpenedAt)},
		{"affected", fmt.Sprint(inc.Affected)}, {"measures", incidentDash(inc.Measures)}, {"responsible", incidentDash(inc.Responsible)},
		{"closed", showTime(inc.ClosedAt)}, {"close note", incidentDash(inc.CloseNote)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	tw.Flush()
	fmt.Fprintf(w, "\nhistory (%d):\n", len(events))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range events {
		fmt.Fprintf(tw, "  %s\t%s\t%s\taffected %d\t%s\n", siobroker.FormatTime(e.At), e.Kind, e.By, e.Incident.Affected, e.Note)
	}
	tw.Flush()
}

func incidentsAnnotate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := incidentsFlags("annotate", stdout, stderr, true)
	measures := f.String("measures", "", "the measures taken to remove the delay")
	responsible := f.String("responsible", "", "who was responsible for them")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	n, code := incidentNumber(f, pos)
	if code != incidentsExitOK {
		return code
	}
	if *measures == "" && *responsible == "" {
		return f.usageError("--measures or --responsible is required")
	}
	svc, done, code := openIncidents(ctx, f)
	if svc == nil {
		return code
	}
	defer done()
	inc, err := svc.Annotate(ctx, n, *measures, *responsible)
	if err != nil {
		return f.fail(incidentsExitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "annotated incident %d (%s): measures: %s; responsible: %s\n", inc.Number, inc.Status,
		incidentDash(inc.Measures), incidentDash(inc.Responsible))
	return incidentsExitOK
}

func incidentsClose(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := incidentsFlags("close", stdout, stderr, true)
	note := f.String("note", "", "why the incident is closed (required)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	n, code := incidentNumber(f, pos)
	if code != incidentsExitOK {
		return code
	}
	if *note == "" {
		return f.usageError("--note is required")
	}
	svc, done, code := openIncidents(ctx, f)
	if svc == nil {
		return code
	}
	defer done()
	inc, err := svc.Close(ctx, n, *note)
	if err != nil {
		if errors.Is(err, siobroker.ErrIncidentClosed) {
			return f.fail(incidentsExitFailed, "incident %d is closed already", n)
		}
		return f.fail(incidentsExitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "closed incident %d at %s: %s\n", inc.Number, siobroker.FormatTime(inc.ClosedAt), inc.CloseNote)
	return incidentsExitOK
}

func incidentDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
