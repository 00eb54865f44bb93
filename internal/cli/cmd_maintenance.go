package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/sqlite"
)

const maintenanceUsage = `usage:
  siobroker maintenance list [--all]
  siobroker maintenance announce --start TIME --end TIME --reason TEXT [--services N,N,...]
  siobroker maintenance cancel ID

Planned maintenance windows (§36, 42 of the Rules). While a window is open, requests for its
services are answered MAINTENANCE (SIO-MAINTENANCE when every requested service is in one), with
the window's period and reason, and are not sent to the adapters. TIME is RFC 3339 with an
offset, e.g. 2026-12-01T22:00:00+05:00. Without --services a window covers every service.
Windows of configs/maintenance.yaml are listed too; they are changed by editing that file. A
running broker sees an announcement within 15 seconds. Every command takes --data DIR (default
./data), the broker's data directory; announce and cancel take --by NAME (default $USER) and
--config FILE (default configs/broker.yaml), whose journal section names the journal the action
is recorded in, as the dashboard records its announcements and cancellations.
Exit status: 0 done, 1 refused or failed, 2 usage error.
`

// cmdMaintenance runs "siobroker maintenance ...".
func cmdMaintenance(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, maintenanceUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "list", "announce", "cancel":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, maintenanceUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "maintenance: unknown subcommand %q\n%s", sub, maintenanceUsage)
		return 2
	}
	f := newOperatorFlags("maintenance", sub, maintenanceUsage, stderr, sub != "list", "who announces or cancels")
	all := f.fs.Bool("all", false, "list ended and cancelled windows too")
	file := f.fs.String("file", "configs/maintenance.yaml", "the configured windows, listed with the announced ones")
	start := f.fs.String("start", "", "start, RFC 3339 with an offset")
	end := f.fs.String("end", "", "end, RFC 3339 with an offset")
	reason := f.fs.String("reason", "", "why: clients are told")
	services := f.fs.String("services", "", "comma-separated services of Appendix 2; empty: every service")
	configFile := f.fs.String("config", app.DefaultConfigFile, "announce, cancel: the broker's configuration, which names the journal the action is recorded in")
	pos, ok := f.parse(args[1:])
	if !ok {
		return 2
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "maintenance %s: %v\n", sub, err)
		return 1
	}
	defer db.Close()
	clock := siobroker.SystemClock{}
	schedule := maintenance.NewSchedule(db, clock)
	// An action is recorded in the journal: opened first, so that an action whose record could
	// not be written is not carried out.
	var opJournal siobroker.Journal
	if sub != "list" {
		j, closeJournal, err := f.journal(ctx, *configFile, db)
		if err != nil {
			fmt.Fprintf(stderr, "maintenance %s: the journal: %v; nothing was done\n", sub, err)
			return 1
		}
		defer closeJournal()
		opJournal = j
	}
	journaled := func(a journal.CommandLineAction) int {
		a.By = *f.by
		if err := journal.AppendCommandLine(ctx, opJournal, clock, a, nil); err != nil {
			fmt.Fprintf(stderr, "maintenance %s: done, but its journal record could not be written: %v\n", sub, err)
			return 1
		}
		return 0
	}
	switch sub {
	case "list":
		windows, err := maintenance.LoadFile(*file)
		if err != nil {
			fmt.Fprintf(stderr, "maintenance list: %v\n", err)
			return 1
		}
		schedule.SetFileWindows(windows)
		list, err := schedule.Windows(ctx, *all)
		if err != nil {
			fmt.Fprintf(stderr, "maintenance list: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSOURCE\tSERVICES\tSTART\tEND\tREASON\tBY\tCANCELLED")
		for _, w := range list {
			id := "-"
			if w.ID > 0 {
				id = strconv.FormatInt(w.ID, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, w.Source, serviceList(w.Services), showTime(w.Start), showTime(w.End),
				w.Reason, incidentDash(w.AnnouncedBy), showTime(w.Cancelled))
		}
		tw.Flush()
		return 0
	case "announce":
		if len(pos) > 0 {
			return f.usageError(stderr, "unexpected argument %q", pos[0])
		}
		w := siobroker.MaintenanceWindow{Reason: *reason, AnnouncedBy: *f.by}
		if w.Start, err = time.Parse(time.RFC3339, *start); err != nil {
			return f.usageError(stderr, "--start %q is not RFC 3339 with an offset", *start)
		}
		if w.End, err = time.Parse(time.RFC3339, *end); err != nil {
			return f.usageError(stderr, "--end %q is not RFC 3339 with an offset", *end)
		}
		for s := range strings.SplitSeq(*services, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			n, err := strconv.Atoi(s)
			if err != nil {
				return f.usageError(stderr, "--services: %q is not a service number", s)
			}
			w.Services = append(w.Services, n)
		}
		got, err := schedule.Announce(ctx, w)
		if err != nil {
			fmt.Fprintf(stderr, "maintenance announce: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "announced window %d: %s, services %s\n", got.ID, got.Describe(), serviceList(got.Services))
		return journaled(journal.CommandLineAction{Action: "announce", Window: &got})
	default: // cancel
		if len(pos) != 1 {
			return f.usageError(stderr, "one window ID is required")
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id <= 0 {
			return f.usageError(stderr, "%q is not a window ID", pos[0])
		}
		if err := schedule.Cancel(ctx, id, *f.by); err != nil {
			fmt.Fprintf(stderr, "maintenance cancel: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "cancelled window %d\n", id)
		return journaled(journal.CommandLineAction{Action: "cancel", WindowID: id})
	}
}

func serviceList(s []int) string {
	if len(s) == 0 {
		return "all"
	}
	parts := make([]string, len(s))
	for i, n := range slices.Sorted(slices.Values(s)) {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}
