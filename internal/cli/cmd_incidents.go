package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
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
  siobroker incidents open --kind KIND --cause TEXT [--started RFC3339] [--plans FILE]
  siobroker incidents action N I --start|--end [--at RFC3339]
  siobroker incidents annotate N [--measures TEXT] [--responsible NAME]
  siobroker incidents close N --note TEXT
  siobroker incidents register [--from RFC3339] [--to RFC3339] [--format csv|html] [--out FILE]

The journal of emergencies (§39–41, Appendix 7 of the Rules). The broker opens an incident by
itself when messages of one service wait for delivery more than an hour (§39), when its message
transport is unavailable, when the journal cannot be written, when replies cannot be signed, and
when service messages cannot be published to their queue; each is closed when its cause clears.
An operator opens an emergency of one of the six kinds of Appendix 7 by hand (open: §41, the
onset and its causes), with the action plan of its kind (incidents.emergency_plans_file, or
--plans), and records the start and the end of each action I of emergency N (action; --at:
when, default now). list and show mark the actions past their maximum time (OVERDUE). annotate
records the measures taken and who was responsible; close closes an incident by hand. register
prints the journal in the form of Appendix 7: --format html (the default) for the browser's
print, or csv; --from and --to bound the onsets, --out writes a file instead of stdout.

KIND is one of server-equipment, premises, fire-alarm, air-conditioning, power-failure, flooding.
Every command takes --config FILE (default configs/broker.yaml, with the SIOBROKER_* environment
over it, as serve reads it) and --data DIR (default: its data_dir), the broker's data directory;
open, action, annotate and close take --by NAME (who acts; default $USER), and are recorded in the
journal the configuration names (§39): the incident as it is after the change, and an operator
record with --by. Every change is kept in the incident's history. Times are Astana time.
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
	return parseIncidentNumber(f, pos[0])
}

func parseIncidentNumber(f *operatorFlags, s string) (int64, int) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, f.usageError("%q is not an incident number", s)
	}
	return n, incidentsExitOK
}

// incidentAction is an operator's action on the journal of emergencies: the service that carries
// it out, and record, which journals who did it (an operator record, "cli" channel, --by) once it
// is done.
type incidentAction struct {
	svc    *incidents.Service
	env    *brokerEnv
	record func(action string, inc siobroker.Incident, d journal.OperatorAction) int
	done   func()
}

// openIncidents opens the store and the operator's actions over it, journaled in the journal
// the broker's configuration names (§39: an incident is also recorded in the journal), beside the
// store's append-only incident history. The journal is opened first, so that an action whose
// records could not be written is not taken. a nil means return code.
func openIncidents(ctx context.Context, f *operatorFlags) (a *incidentAction, code int) {
	db, e, code := f.openStore(ctx)
	if db == nil {
		return nil, code
	}
	j, closeJournal, err := e.journal(ctx, db)
	if err != nil {
		db.Close()
		return nil, f.fail(incidentsExitFailed, "%v; nothing was done", err)
	}
	clock := siobroker.SystemClock{}
	svc, err := incidents.NewService(db, j, clock, *f.by)
	if err != nil {
		closeJournal()
		db.Close()
		return nil, f.fail(incidentsExitFailed, "%v", err)
	}
	record := func(action string, inc siobroker.Incident, d journal.OperatorAction) int {
		if err := journal.AppendCommandLine(ctx, j, clock, journal.CommandLineAction{Action: action, By: *f.by, Incident: &inc, Details: d}, nil); err != nil {
			return f.fail(incidentsExitFailed, "done, but its operator record could not be written to the journal: %v", err)
		}
		return incidentsExitOK
	}
	return &incidentAction{svc: svc, env: e, record: record, done: func() { closeJournal(); db.Close() }}, incidentsExitOK
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
	now := siobroker.SystemClock{}.Now()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tSTATUS\tTYPE\tSERVICE\tQUEUE\tADAPTER\tSTARTED\tOPENED\tCLOSED\tAFFECTED\tACTIONS\tOVERDUE\tRESPONSIBLE\tCAUSE")
	for _, inc := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", inc.Number, inc.Status, inc.Type,
			serviceOf(inc), incidentDash(inc.Cause.Queue), incidentDash(inc.Cause.Adapter), showTime(inc.StartedAt), showTime(inc.OpenedAt),
			showTime(inc.ClosedAt), inc.Affected, actionsDone(inc), overdueNumbers(inc, now), incidentDash(inc.Responsible),
			incidents.Describe(inc))
	}
	tw.Flush()
	what := "open incidents"
	if *all {
		what = "incidents"
	}
	fmt.Fprintf(stdout, "%d %s\n", len(list), what)
	return incidentsExitOK
}

func serviceOf(inc siobroker.Incident) string {
	if inc.Cause.Service == 0 {
		return "-"
	}
	return strconv.Itoa(inc.Cause.Service)
}

// actionsDone is "ended/all" of an emergency's actions; "-" without actions.
func actionsDone(inc siobroker.Incident) string {
	if len(inc.Actions) == 0 {
		return "-"
	}
	ended := 0
	for _, a := range inc.Actions {
		if !a.EndedAt.IsZero() {
			ended++
		}
	}
	return fmt.Sprintf("%d/%d", ended, len(inc.Actions))
}

// overdueNumbers are the numbers of the actions past their maximum time at now, "-" for none.
func overdueNumbers(inc siobroker.Incident, now time.Time) string {
	var nos []string
	for _, a := range inc.Overdue(now) {
		nos = append(nos, strconv.Itoa(a.No))
	}
	if len(nos) == 0 {
		return "-"
	}
	return strings.Join(nos, ",")
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
	printIncident(stdout, inc, events, siobroker.SystemClock{}.Now())
	return incidentsExitOK
}

func printIncident(w io.Writer, inc siobroker.Incident, events []siobroker.IncidentEvent, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := [][2]string{{"number", fmt.Sprint(inc.Number)}, {"type", inc.Type}}
	if kind, ok := inc.EmergencyKind(); ok {
		rows = append(rows, [2]string{"emergency", fmt.Sprintf("%d. %s (Appendix 7)", kind.Section(), kind.Title())})
	}
	rows = append(rows, [][2]string{
		{"status", string(inc.Status)}, {"cause", incidents.Describe(inc)},
		{"service", serviceOf(inc)}, {"queue", incidentDash(inc.Cause.Queue)}, {"adapter", incidentDash(inc.Cause.Adapter)},
		{"last error", incidentDash(inc.LastError)}, {"started", showTime(inc.StartedAt)}, {"opened", showTime(inc.OpenedAt)},
		{"affected", fmt.Sprint(inc.Affected)}, {"measures", incidentDash(inc.Measures)}, {"responsible", incidentDash(inc.Responsible)},
		{"closed", showTime(inc.ClosedAt)}, {"close note", incidentDash(inc.CloseNote)},
	}...)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	tw.Flush()
	if len(inc.Actions) > 0 {
		fmt.Fprintf(w, "\nactions (%d), as of %s:\n", len(inc.Actions), siobroker.FormatTime(now))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  I\tACTION\tMAX\tRESPONSIBLE\tSTARTED\tENDED\t")
		for _, a := range inc.Actions {
			mark := ""
			if a.Overdue(now) {
				mark = "OVERDUE: " + incidents.FormatMax(a.Elapsed(now)) + " of " + incidents.FormatMax(a.Max)
				if a.EndedAt.IsZero() {
					mark += ", still running"
				}
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.No, a.Action, incidents.FormatMax(a.Max), a.Responsible,
				showTime(a.StartedAt), showTime(a.EndedAt), mark)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nhistory (%d):\n", len(events))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range events {
		fmt.Fprintf(tw, "  %s\t%s\t%s\taffected %d\t%s\n", siobroker.FormatTime(e.At), e.Kind, e.By, e.Incident.Affected, e.Note)
	}
	tw.Flush()
}

// parseOptionalTime reads flag value s, RFC 3339 with an offset, into Astana time; "" is zero.
func parseOptionalTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q is not RFC 3339 with an offset, e.g. 2026-12-03T14:05:00+05:00", name, s)
	}
	return t.In(siobroker.Astana), nil
}

func incidentsOpen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := incidentsFlags("open", stdout, stderr, true)
	kindFlag := f.String("kind", "", "the kind of emergency of Appendix 7 (required): server-equipment, premises, fire-alarm, air-conditioning, power-failure, flooding")
	cause := f.String("cause", "", "its causes, as known now (required; §41)")
	started := f.String("started", "", "its onset, RFC 3339 with an offset (default now)")
	plansFile := f.String("plans", "", "the action plans (default: the configuration's incidents.emergency_plans_file)")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	kind, err := siobroker.ParseEmergencyKind(*kindFlag)
	if err != nil {
		return f.usageError("--kind: %v", err)
	}
	if strings.TrimSpace(*cause) == "" {
		return f.usageError("--cause is required: the causes of the emergency (§41)")
	}
	onset, err := parseOptionalTime("started", *started)
	if err != nil {
		return f.usageError("%v", err)
	}
	a, code := openIncidents(ctx, f)
	if a == nil {
		return code
	}
	defer a.done()
	path := *plansFile
	if path == "" {
		path = a.env.cfg.Incidents.EmergencyPlans
	}
	plans, err := incidents.LoadPlans(path)
	if err != nil {
		return f.fail(incidentsExitFailed, "%v; nothing was done", err)
	}
	if plans.Example {
		fmt.Fprintf(stderr, "siobroker incidents open: note: the action plans of %s are the shipped example (example: true); adapt them\n", path)
	}
	inc, err := a.svc.RecordEmergency(ctx, incidents.Emergency{Kind: kind, Reason: *cause, StartedAt: onset}, plans.Plan(kind))
	switch {
	case errors.Is(err, incidents.ErrEmergencyOpen):
		return f.fail(incidentsExitFailed, "%v: record on it (incidents action %d ...), or close it first", err, inc.Number)
	case err != nil && !errors.Is(err, incidents.ErrNotJournaled):
		return f.fail(incidentsExitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "opened emergency %d: %d. %s; onset %s; %d actions:\n", inc.Number, kind.Section(), kind.Title(),
		siobroker.FormatTime(inc.StartedAt), len(inc.Actions))
	for _, act := range inc.Actions {
		fmt.Fprintf(stdout, "  %d. %s (max %s; %s)\n", act.No, act.Action, incidents.FormatMax(act.Max), act.Responsible)
	}
	if err != nil {
		return f.fail(incidentsExitFailed, "opened, but %v", err)
	}
	return a.record("open", inc, journal.OperatorAction{Kind: string(kind), Cause: inc.Reason, Started: siobroker.FormatTime(inc.StartedAt)})
}

func incidentsAction(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := incidentsFlags("action", stdout, stderr, true)
	start := f.Bool("start", false, "record the action's start")
	end := f.Bool("end", false, "record the action's end")
	atFlag := f.String("at", "", "when, RFC 3339 with an offset (default now)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return f.usageError("the incident number N and the action number I are required")
	}
	n, code := parseIncidentNumber(f, pos[0])
	if code != incidentsExitOK {
		return code
	}
	no, err := strconv.Atoi(pos[1])
	if err != nil || no <= 0 {
		return f.usageError("%q is not an action number", pos[1])
	}
	if *start == *end {
		return f.usageError("give one of --start and --end")
	}
	at, err := parseOptionalTime("at", *atFlag)
	if err != nil {
		return f.usageError("%v", err)
	}
	a, code := openIncidents(ctx, f)
	if a == nil {
		return code
	}
	defer a.done()
	inc, err := a.svc.RecordAction(ctx, n, no, *end, at)
	if err != nil && !errors.Is(err, incidents.ErrNotJournaled) {
		return f.fail(incidentsExitFailed, "%v", err)
	}
	phase := "start"
	if *end {
		phase = "end"
	}
	act := inc.Actions[no-1]
	when := act.StartedAt
	if *end {
		when = act.EndedAt
	}
	fmt.Fprintf(stdout, "incident %d, action %d (%s): %s recorded at %s\n", inc.Number, no, act.Action, phase, siobroker.FormatTime(when))
	now := siobroker.SystemClock{}.Now()
	if act.Overdue(now) {
		fmt.Fprintf(stdout, "OVERDUE: it has taken %s; its maximum is %s\n", incidents.FormatMax(act.Elapsed(now)), incidents.FormatMax(act.Max))
	}
	if err != nil {
		return f.fail(incidentsExitFailed, "recorded, but %v", err)
	}
	return a.record("action", inc, journal.OperatorAction{ActionNo: no, Phase: phase, At: siobroker.FormatTime(when)})
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
	a, code := openIncidents(ctx, f)
	if a == nil {
		return code
	}
	defer a.done()
	inc, err := a.svc.Annotate(ctx, n, *measures, *responsible)
	if err != nil {
		return f.fail(incidentsExitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "annotated incident %d (%s): measures: %s; responsible: %s\n", inc.Number, inc.Status,
		incidentDash(inc.Measures), incidentDash(inc.Responsible))
	return a.record("annotate", inc, journal.OperatorAction{Measures: inc.Measures, Responsible: inc.Responsible})
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
	a, code := openIncidents(ctx, f)
	if a == nil {
		return code
	}
	defer a.done()
	inc, err := a.svc.Close(ctx, n, *note)
	if err != nil {
		if errors.Is(err, siobroker.ErrIncidentClosed) {
			return f.fail(incidentsExitFailed, "incident %d is closed already", n)
		}
		return f.fail(incidentsExitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "closed incident %d at %s: %s\n", inc.Number, siobroker.FormatTime(inc.ClosedAt), inc.CloseNote)
	return a.record("close", inc, journal.OperatorAction{Note: inc.CloseNote})
}

func incidentsRegister(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := incidentsFlags("register", stdout, stderr, false)
	fromFlag := f.String("from", "", "the first onset included, RFC 3339 with an offset (default: the first incident)")
	toFlag := f.String("to", "", "the onsets before this are included, RFC 3339 with an offset (default: no bound)")
	format := f.String("format", "html", "html (for the browser's print) or csv")
	out := f.String("out", "", "write to this file instead of stdout")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	from, err := parseOptionalTime("from", *fromFlag)
	if err != nil {
		return f.usageError("%v", err)
	}
	to, err := parseOptionalTime("to", *toFlag)
	if err != nil {
		return f.usageError("%v", err)
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return f.usageError("--to must be after --from")
	}
	if *format != "html" && *format != "csv" {
		return f.usageError("--format %q: use html or csv", *format)
	}
	db, _, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	all, err := db.Incidents(ctx, true)
	if err != nil {
		return f.fail(incidentsExitFailed, "%v", err)
	}
	reg := incidents.NewRegister(all, from, to, siobroker.SystemClock{}.Now())
	w := stdout
	var file *os.File
	if *out != "" {
		if file, err = os.Create(*out); err != nil {
			return f.fail(incidentsExitFailed, "%v", err)
		}
		w = file
	}
	if *format == "csv" {
		err = reg.WriteCSV(w)
	} else {
		err = reg.WriteHTML(w, incidents.HTMLOptions{})
	}
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return f.fail(incidentsExitFailed, "%v", err)
	}
	if file != nil {
		fmt.Fprintf(stdout, "wrote the journal of emergencies (%s) to %s\n", *format, *out)
	}
	return incidentsExitOK
}

func incidentDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
