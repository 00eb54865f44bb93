package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/sqlite"
)

const asyncUsage = `usage:
  siobroker async stop ID --reason TEXT [--by NAME] [--data DIR] [--config FILE]

Stops the delivery of an asynchronous request that is still ON_DELIVERY: its state becomes
DELIVERY_STOPPED, no reply is produced, and its client is told the reason (status, the gateway's
getMessageStatus). ID is the broker's id of the request, the messageId of its acknowledgement.
Answers of its services that still come are journaled as late. The action, and an attempt that
fails, is recorded with --by as an operator record in the journal the broker's configuration
(--config, default configs/broker.yaml) names; the journal is opened before anything is done.
Exit status: 0 stopped, 1 refused or failed, 2 usage error.
`

// cmdAsyncOperator runs "siobroker async ...".
func cmdAsyncOperator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, asyncUsage)
		return 2
	}
	switch args[0] {
	case "stop":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, asyncUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "async: unknown subcommand %q\n%s", args[0], asyncUsage)
		return 2
	}
	f := newOperatorFlags("async", "stop", asyncUsage, stderr, true, "who stops it")
	reason := f.fs.String("reason", "", "why: the client is told")
	configFile := f.fs.String("config", app.DefaultConfigFile, "the broker's configuration, which names the journal the action is recorded in")
	pos, ok := f.parse(args[1:])
	if !ok {
		return 2
	}
	if len(pos) != 1 {
		return f.usageError(stderr, "one request ID is required")
	}
	if *reason == "" {
		return f.usageError(stderr, "--reason is required: the client is told why")
	}
	id := pos[0]
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "async stop: %v\n", err)
		return 1
	}
	defer db.Close()
	job, found, err := db.AsyncJob(ctx, id)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "async stop: %v\n", err)
		return 1
	case !found:
		fmt.Fprintf(stderr, "async stop: no asynchronous request %s in %s\n", id, *f.data)
		return 1
	case job.State != siobroker.AsyncOnDelivery:
		fmt.Fprintf(stderr, "async stop: request %s is %s already; only an ON_DELIVERY request can be stopped\n", id, job.State)
		return 1
	}
	opJournal, closeJournal, err := f.journal(ctx, *configFile, db)
	if err != nil {
		fmt.Fprintf(stderr, "async stop: the journal: %v; nothing was done\n", err)
		return 1
	}
	defer closeJournal()
	clock := siobroker.SystemClock{}
	a := journal.CommandLineAction{Action: "stop", By: *f.by, Request: id, Reason: *reason}
	stopped, err := db.StopAsync(ctx, id, *reason, clock.Now())
	if err == nil && !stopped {
		err = siobroker.Errorf(siobroker.CodeDashboardConflict, "request %s was answered meanwhile", id)
	}
	// The attempt is journaled whatever came of it, as a refused dashboard action is.
	if jerr := journal.AppendCommandLine(ctx, opJournal, clock, a, err); jerr != nil {
		if err == nil {
			fmt.Fprintf(stderr, "async stop: stopped %s, but its journal record could not be written: %v\n", id, jerr)
		} else {
			fmt.Fprintf(stderr, "async stop: request %s was not stopped (%v), and the attempt could not be journaled: %v\n", id, err, jerr)
		}
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "async stop: request %s was not stopped: %v\n", id, err)
		return 1
	}
	fmt.Fprintf(stdout, "stopped %s: DELIVERY_STOPPED\n", id)
	return 0
}
