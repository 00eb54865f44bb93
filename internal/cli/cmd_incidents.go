package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/sqlite"
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
list shows the open incidents (--all: every one). Every command takes --data DIR (default
./data), the broker's data directory, and annotate and close take --by NAME (who acts; default
$USER). Every change is kept in the incident's history. Times are Astana time.
Exit status: 0 done, 1 refused or failed, 2 usage error.
`

// cmdIncidents runs "siobroker incidents ...": the operator's view of the journal of emergencies.
func cmdIncidents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, incidentsUsage)
		return incidentsExitUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list":
		return incidentsList(ctx, rest, stdout, stderr)
	case "show":
		return incidentsShow(ctx, rest, stdout, stderr)
	case "annotate":
		return incidentsAnnotate(ctx, rest, stdout, stderr)
	case "close":
		return incidentsClose(ctx, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, incidentsUsage)
		return incidentsExitOK
	}
	fmt.Fprintf(stderr, "incidents: unknown subcommand %q\n%s", sub, incidentsUsage)
	return incidentsExitUsage
}

// incidentsFlags are the operator's flags, and for changes the configuration that names the
// journal they are recorded in.
type incidentsFlags struct {
	*operatorFlags
	config *string
}

func newIncidentsFlags(name string, stderr io.Writer, mutating bool) *incidentsFlags {
	f := &incidentsFlags{operatorFlags: newOperatorFlags("incidents", name, incidentsUsage, stderr, mutating, "who acts")}
	if mutating {
		f.config = f.fs.String("config", app.DefaultConfigFile, "the broker's configuration: names the journal the action is recorded in")
	}
	return f
}

// number parses the one positional argument N.
func (f *incidentsFlags) number(stderr io.Writer, pos []string) (int64, int) {
	if len(pos) != 1 {
		return 0, f.usageError(stderr, "one incident number N is required")
	}
	n, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || n <= 0 {
		return 0, f.usageError(stderr, "%q is not an incident number", pos[0])
	}
	return n, incidentsExitOK
}

// incidentsService returns the operator's actions over db, journaled in the journal the broker's
// configuration names (§39: an incident is also recorded in the journal), beside the store's
// append-only incident history. The returned func closes the journal.
func (f *incidentsFlags) incidentsService(ctx context.Context, db *sqlite.DB) (*incidents.Service, func(), error) {
	j, closeJournal, err := f.journal(ctx, *f.config, db)
	if err != nil {
		return nil, nil, err
	}
	svc, err := incidents.NewService(db, j, siobroker.SystemClock{}, *f.by)
	if err != nil {
		closeJournal()
		return nil, nil, err
	}
	return svc, closeJournal, nil
}

func incidentsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newIncidentsFlags("list", stderr, false)
	all := f.fs.Bool("all", false, "list every incident, closed ones too")
	pos, ok := f.parse(args)
	if !ok {
		return incidentsExitUsage
	}
	if len(pos) > 0 {
		return f.usageError(stderr, "unexpected argument %q", pos[0])
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "incidents list: %v\n", err)
		return incidentsExitFailed
	}
	defer db.Close()
	list, err := db.Incidents(ctx, *all)
	if err != nil {
		fmt.Fprintf(stderr, "incidents list: %v\n", err)
		return incidentsExitFailed
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
	f := newIncidentsFlags("show", stderr, false)
	pos, ok := f.parse(args)
	if !ok {
		return incidentsExitUsage
	}
	n, code := f.number(stderr, pos)
	if code != incidentsExitOK {
		return code
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "incidents show: %v\n", err)
		return incidentsExitFailed
	}
	defer db.Close()
	inc, ok, err := db.Incident(ctx, n)
	if err != nil {
		fmt.Fprintf(stderr, "incidents show: %v\n", err)
		return incidentsExitFailed
	}
	if !ok {
		fmt.Fprintf(stderr, "incidents show: incident %d: %v\n", n, siobroker.ErrIncidentNotFound)
		return incidentsExitFailed
	}
	events, err := db.IncidentEvents(ctx, n)
	if err != nil {
		fmt.Fprintf(stderr, "incidents show: %v\n", err)
		return incidentsExitFailed
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
	f := newIncidentsFlags("annotate", stderr, true)
	measures := f.fs.String("measures", "", "the measures taken to remove the delay")
	responsible := f.fs.String("responsible", "", "who was responsible for them")
	pos, ok := f.parse(args)
	if !ok {
		return incidentsExitUsage
	}
	n, code := f.number(stderr, pos)
	if code != incidentsExitOK {
		return code
	}
	if *measures == "" && *responsible == "" {
		return f.usageError(stderr, "--measures or --responsible is required")
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "incidents annotate: %v\n", err)
		return incidentsExitFailed
	}
	defer db.Close()
	svc, closeJournal, err := f.incidentsService(ctx, db)
	if err != nil {
		fmt.Fprintf(stderr, "incidents annotate: %v\n", err)
		return incidentsExitFailed
	}
	defer closeJournal()
	inc, err := svc.Annotate(ctx, n, *measures, *responsible)
	if err != nil {
		fmt.Fprintf(stderr, "incidents annotate: %v\n", err)
		return incidentsExitFailed
	}
	fmt.Fprintf(stdout, "annotated incident %d (%s): measures: %s; responsible: %s\n", inc.Number, inc.Status,
		incidentDash(inc.Measures), incidentDash(inc.Responsible))
	return incidentsExitOK
}

func incidentsClose(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newIncidentsFlags("close", stderr, true)
	note := f.fs.String("note", "", "why the incident is closed (required)")
	pos, ok := f.parse(args)
	if !ok {
		return incidentsExitUsage
	}
	n, code := f.number(stderr, pos)
	if code != incidentsExitOK {
		return code
	}
	if *note == "" {
		return f.usageError(stderr, "--note is required")
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "incidents close: %v\n", err)
		return incidentsExitFailed
	}
	defer db.Close()
	svc, closeJournal, err := f.incidentsService(ctx, db)
	if err != nil {
		fmt.Fprintf(stderr, "incidents close: %v\n", err)
		return incidentsExitFailed
	}
	defer closeJournal()
	inc, err := svc.Close(ctx, n, *note)
	if err != nil {
		if errors.Is(err, siobroker.ErrIncidentClosed) {
			fmt.Fprintf(stderr, "incidents close: incident %d is closed already\n", n)
		} else {
			fmt.Fprintf(stderr, "incidents close: %v\n", err)
		}
		return incidentsExitFailed
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
