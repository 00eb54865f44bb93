package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
)

const asyncUsage = `usage:
  siobroker async stop ID --reason TEXT [--by NAME] [--config FILE] [--data DIR]

Stops the delivery of an asynchronous request that is still ON_DELIVERY: its state becomes
DELIVERY_STOPPED, no reply is produced, and its client is told the reason (status, the gateway's
getMessageStatus). ID is the broker's id of the request, the messageId of its acknowledgement.
Answers of its services that still come are journaled as late. The broker's configuration
(--config, default configs/broker.yaml, with the SIOBROKER_* environment over it, as serve reads
it) names the data directory (--data replaces it) and the journal; the action, and an attempt
that fails, is recorded with --by as an operator record in that journal, which is opened before
anything is done.
Exit status: 0 stopped, 1 refused or failed, 2 usage error or a configuration that does not load.
`

// asyncStop runs "siobroker async stop".
func asyncStop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newOperatorFlags("async stop", asyncUsage, stdout, stderr, "who stops it")
	reason := f.String("reason", "", "why: the client is told")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("one request ID is required")
	}
	if *reason == "" {
		return f.usageError("--reason is required: the client is told why")
	}
	id := pos[0]
	db, e, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	job, found, err := db.AsyncJob(ctx, id)
	switch {
	case err != nil:
		return f.fail(exitFailed, "%v", err)
	case !found:
		return f.fail(exitFailed, "no asynchronous request %s in the %s", id, e.dataDir())
	case job.State != siobroker.AsyncOnDelivery:
		return f.fail(exitFailed, "request %s is %s already; only an ON_DELIVERY request can be stopped", id, job.State)
	}
	opJournal, closeJournal, err := e.journal(ctx, db)
	if err != nil {
		return f.fail(exitFailed, "%v; nothing was done", err)
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
			return f.fail(exitFailed, "stopped %s, but its journal record could not be written: %v", id, jerr)
		}
		return f.fail(exitFailed, "request %s was not stopped (%v), and the attempt could not be journaled: %v", id, err, jerr)
	}
	if err != nil {
		return f.fail(exitFailed, "request %s was not stopped: %v", id, err)
	}
	fmt.Fprintf(stdout, "stopped %s: DELIVERY_STOPPED\n", id)
	return exitOK
}
