// Command siobroker is the СИО ПСО integration broker: it serves signed SOAP requests
// (serve), sends them (send), makes a development PKI (devpki) and explains the access rights
// (rights). It is the only place where the broker's packages are wired together.
package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
)

type command struct {
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	summary string
}

var commands = map[string]command{
	"load":        {cmdLoad, "send signed requests at a rate or concurrency and report throughput, latency, errors and memory"},
	"dlq":         {cmdDLQ, "list the RabbitMQ dead-letter queue, or replay it to the queues its messages died in"},
	"adapter":     {cmdAdapter, "run an adapter process for the services its config names, over RabbitMQ"},
	"serve":       {cmdServe, "start the broker (embedded default: in-process transport, demo adapters, development PKI)"},
	"send":        {cmdSend, "sign a request with a user's certificate, post it, verify the signed reply"},
	"devpki":      {cmdDevPKI, "write a development PKI: root CA, CRL, broker and demo user certificates"},
	"rights":      {cmdRights, "export the access-rights tables, or explain one decision"},
	"users":       {cmdUsers, "manage the user registry: import, register, move, block, unblock, delete, list, show"},
	"incidents":   {cmdIncidents, "list, show, annotate and close delivery-delay incidents (§39-41)"},
	"journal":     {cmdJournal, "verify the sealed journal archives offline (§38)"},
	"reports":     {cmdReports, "run a journal report (§10) or the prosecutor's export (§51-53)"},
	"status":      {cmdStatus, "ask the delivery state of an asynchronous request (send --async)"},
	"async":       {cmdAsyncOperator, "stop the delivery of an asynchronous request (DELIVERY_STOPPED), as an operator"},
	"fetch":       {cmdFetch, "fetch and verify the signed result of an asynchronous request"},
	"services":    {cmdServices, "the state of every service of a running broker: queued, dead letters, in flight, oldest, errors"},
	"routes":      {cmdRoutes, "print the effective routing table: service, queue, adapter, backend and timeout"},
	"maintenance": {cmdMaintenance, "list, announce and cancel planned maintenance windows (§36, 42)"},
	"config":      {cmdConfig, "check the broker, routes, rights, adapter and maintenance files without starting anything"},
	"dashboard":   {cmdDashboard, "log in to the operator's web dashboard: prints a one-time link for the browser"},
}

// Main runs the siobroker command line with args (without the program name) and returns its exit
// status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "siobroker: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: siobroker COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'siobroker COMMAND -h' for a command's flags.")
}
