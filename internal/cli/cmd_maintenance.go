package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/maintenance"
)

const maintenanceUsage = `usage:
  siobroker maintenance list [--all] [--file FILE]
  siobroker maintenance announce --start TIME --end TIME --reason TEXT [--services N,N,...] [--emergency]
  siobroker maintenance cancel ID

Planned maintenance windows (§36, 42 of the Rules). While a window is open, requests for its
services are answered MAINTENANCE (SIO-MAINTENANCE when every requested service is in one), with
the window's period and reason, and are not sent to the adapters. TIME is RFC 3339 with an
offset, e.g. 2026-12-01T22:00:00+05:00. Without --services a window covers every service.
A window must start at least maintenance_min_notice (default 24h) after it is announced: planned
work is announced in advance. One with less notice, or that has begun, is refused unless it is
announced --emergency, which opens an incident in the journal of emergencies (§39–41) at once.
The configured windows (--file, default: the configuration's maintenance_file) are listed too;
they are changed by editing that file. A running broker sees an announcement within 15 seconds.
Every command takes --config FILE (default configs/broker.yaml, with the SIOBROKER_* environment
over it, as serve reads it) and --data DIR (default: its data_dir), the broker's data directory;
announce and cancel take --by NAME (default $USER) and are recorded in the journal the
configuration names, as the dashboard records its announcements and cancellations.
Exit status: 0 done, 1 refused or failed, 2 usage error or a configuration that does not load.
`

// maintenanceFlags are the flags of every maintenance subcommand. They are the same for the
// three, as they always were, so that a script may give each the same common flags.
type maintenanceFlags struct {
	*operatorFlags
	all, emergency                     *bool
	file, start, end, reason, services *string
}

func newMaintenanceFlags(sub string, stdout, stderr io.Writer) *maintenanceFlags {
	by := ""
	if sub != "list" {
		by = "who announces or cancels"
	}
	f := &maintenanceFlags{operatorFlags: newOperatorFlags("maintenance "+sub, maintenanceUsage, stdout, stderr, by)}
	f.all = f.Bool("all", false, "list: ended and cancelled windows too")
	f.file = f.String("file", "", "list: the configured windows, listed with the announced ones (default: the configuration's maintenance_file)")
	f.start = f.String("start", "", "announce: the start, RFC 3339 with an offset")
	f.end = f.String("end", "", "announce: the end, RFC 3339 with an offset")
	f.reason = f.String("reason", "", "announce: why; clients are told")
	f.services = f.String("services", "", "announce: comma-separated services of Appendix 2; empty: every service")
	f.emergency = f.Bool("emergency", false, "announce: an emergency, with less than maintenance_min_notice or begun already; opens an incident (§39–41)")
	return f
}

func maintenanceList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newMaintenanceFlags("list", stdout, stderr)
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	db, e, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	file := *f.file
	if file == "" {
		file = e.cfg.Maintenance
	}
	clock := siobroker.SystemClock{}
	windows, err := maintenance.LoadFile(file, maintenance.FileRules{MinNotice: e.cfg.MaintenanceMinNotice, Now: clock.Now()})
	if err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	// Listing records nothing: an emergency window's incident is opened by whoever announced
	// it, or by the broker that loads the file.
	schedule := maintenance.NewSchedule(db, clock, maintenance.Policy{MinNotice: e.cfg.MaintenanceMinNotice})
	schedule.SetFileWindows(windows)
	list, err := schedule.Windows(ctx, *f.all)
	if err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tKIND\tSERVICES\tSTART\tEND\tREASON\tBY\tANNOUNCED\tCANCELLED")
	for _, w := range list {
		id := "-"
		if w.ID > 0 {
			id = strconv.FormatInt(w.ID, 10)
		}
		kind := "planned"
		if w.Emergency {
			kind = "emergency"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, w.Source, kind, serviceList(w.Services), showTime(w.Start), showTime(w.End),
			w.Reason, incidentDash(w.AnnouncedBy), showTime(w.AnnouncedAt), showTime(w.Cancelled))
	}
	tw.Flush()
	return exitOK
}

// window is the window announce's flags describe.
func (f *maintenanceFlags) window() (siobroker.MaintenanceWindow, error) {
	w := siobroker.MaintenanceWindow{Reason: *f.reason, AnnouncedBy: *f.by, Emergency: *f.emergency}
	var err error
	if w.Start, err = time.Parse(time.RFC3339, *f.start); err != nil {
		return w, fmt.Errorf("--start %q is not RFC 3339 with an offset", *f.start)
	}
	if w.End, err = time.Parse(time.RFC3339, *f.end); err != nil {
		return w, fmt.Errorf("--end %q is not RFC 3339 with an offset", *f.end)
	}
	for s := range strings.SplitSeq(*f.services, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return w, fmt.Errorf("--services: %q is not a service number", s)
		}
		w.Services = append(w.Services, n)
	}
	return w, nil
}

// scheduleAction opens the store, the schedule over it and the journal the action is recorded
// in: opened first, so that an action whose record could not be written is not carried out.
// schedule nil means return code; record journals the action done; done closes everything.
func (f *maintenanceFlags) scheduleAction(ctx context.Context) (schedule *maintenance.Schedule, record func(journal.CommandLineAction) int, done func(), code int) {
	db, e, code := f.openStore(ctx)
	if db == nil {
		return nil, nil, nil, code
	}
	opJournal, closeJournal, err := e.journal(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, nil, f.fail(exitFailed, "%v; nothing was done", err)
	}
	clock := siobroker.SystemClock{}
	record = func(a journal.CommandLineAction) int {
		a.By = *f.by
		if err := journal.AppendCommandLine(ctx, opJournal, clock, a, nil); err != nil {
			return f.fail(exitFailed, "done, but its journal record could not be written: %v", err)
		}
		return exitOK
	}
	// An emergency window is recorded in the journal of emergencies here, at once, in the
	// journal the configuration names, as `incidents` records its actions.
	emergencies, err := incidents.NewService(db, opJournal, clock, *f.by)
	if err != nil {
		closeJournal()
		db.Close()
		return nil, nil, nil, f.fail(exitFailed, "%v; nothing was done", err)
	}
	policy := maintenance.Policy{MinNotice: e.cfg.MaintenanceMinNotice, Emergencies: emergencies}
	return maintenance.NewSchedule(db, clock, policy), record, func() { closeJournal(); db.Close() }, exitOK
}

func maintenanceAnnounce(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newMaintenanceFlags("announce", stdout, stderr)
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	w, err := f.window()
	if err != nil {
		return f.usageError("%v", err)
	}
	schedule, record, done, code := f.scheduleAction(ctx)
	if schedule == nil {
		return code
	}
	defer done()
	got, inc, err := schedule.AnnounceWithIncident(ctx, w)
	if got.ID > 0 {
		fmt.Fprintf(stdout, "announced window %d: %s, services %s\n", got.ID, got.Describe(), serviceList(got.Services))
		if code := record(journal.CommandLineAction{Action: "announce", Window: &got}); code != exitOK {
			return code
		}
	}
	if err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	if inc.Number > 0 {
		fmt.Fprintf(stdout, "emergency: incident %d is open in the journal of emergencies (§39–41); record the measures with `siobroker incidents annotate %d`\n",
			inc.Number, inc.Number)
	}
	return exitOK
}

func maintenanceCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newMaintenanceFlags("cancel", stdout, stderr)
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("one window ID is required")
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return f.usageError("%q is not a window ID", pos[0])
	}
	schedule, record, done, code := f.scheduleAction(ctx)
	if schedule == nil {
		return code
	}
	defer done()
	if err := schedule.Cancel(ctx, id, *f.by); err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "cancelled window %d\n", id)
	return record(journal.CommandLineAction{Action: "cancel", WindowID: id})
}

func serviceList(s []int) string {
	return siobroker.MaintenanceWindow{Services: s}.ServiceList()
}
