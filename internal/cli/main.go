// Package cli is the siobroker command line: it serves signed SOAP requests (serve), sends them
// (send), runs adapter processes (adapter) and gives operators their commands. Every command
// speaks in one voice: a written usage on stdout for -h, a usage error on stderr with exit 2, its
// exit codes in its usage; and every command that acts on a broker's resources reads the
// broker's configuration as serve does (brokerFlags). The wiring of a running broker is
// internal/app.
package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

type runFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// command is one command of the table. A command with subcommands and no run of its own is
// dispatched by its first argument; usage is then its written usage.
type command struct {
	name    string
	group   string
	summary string
	run     runFunc
	usage   string
	subs    []subcommand
}

// subcommand is one subcommand; run is nil when the command's own run handles it (reports export).
type subcommand struct {
	name    string
	summary string
	run     runFunc
}

// The groups of the command list, in its order.
const (
	groupBroker   = "The broker"
	groupClient   = "Clients of a broker (signed requests over HTTP)"
	groupOperator = "Operators, on a broker's store, journal and queues (--config, read as serve reads it)"
	groupFiles    = "Files, offline"
)

// commands is the command table: Main dispatches on it and help lists it, in this order.
var commands = []command{
	{name: "serve", group: groupBroker, run: cmdServe,
		summary: "start the broker (embedded default: in-process transport, demo adapters, development PKI)"},
	{name: "adapter", group: groupBroker, run: cmdAdapter,
		summary: "run an adapter process for the services its config names, over RabbitMQ"},
	{name: "version", group: groupBroker, run: cmdVersion,
		summary: "print the version and the commit the binary was built from (also: siobroker --version)"},

	{name: "send", group: groupClient, run: cmdSend,
		summary: "sign a request with a user's certificate, post it, verify the signed reply"},
	{name: "status", group: groupClient, run: cmdStatus,
		summary: "ask the delivery state of an asynchronous request (send --async)"},
	{name: "fetch", group: groupClient, run: cmdFetch,
		summary: "fetch and verify the signed result of an asynchronous request"},
	{name: "reports", group: groupClient, run: cmdReports,
		summary: "run a journal report of your organisation's requests (§10)",
		subs: []subcommand{{name: "export", summary: "the prosecutor's request for an export under a resolution (§51-53): answered pending"},
			{name: "fetch", summary: "the export once the operator approved it, with the raw request and reply XML; else its status"}}},
	{name: "dashboard", group: groupClient, usage: dashboardUsage, subs: []subcommand{
		{"login", "sign a dashboard login and print a one-time link to the operator's web dashboard", cmdDashboardLogin}}},
	{name: "load", group: groupClient, run: cmdLoad,
		summary: "send signed requests at a rate or concurrency; report throughput, latency, errors, memory"},

	{name: "users", group: groupOperator, usage: usersUsage, subs: usersCommands},
	{name: "incidents", group: groupOperator, usage: incidentsUsage, subs: []subcommand{
		{"list", "list the open incidents and emergencies (§39-41), or every one, with the overdue actions", incidentsList},
		{"show", "show an incident, its actions and its history", incidentsShow},
		{"open", "open an emergency of Appendix 7 by hand, with the action plan of its kind", incidentsOpen},
		{"action", "record the start or the end of an action of an emergency", incidentsAction},
		{"annotate", "record the measures taken and who was responsible", incidentsAnnotate},
		{"close", "close an incident by hand, with a note", incidentsClose},
		{"register", "print the journal of emergencies in the form of Appendix 7 (HTML for print, or CSV)", incidentsRegister}}},
	{name: "maintenance", group: groupOperator, usage: maintenanceUsage, subs: []subcommand{
		{"list", "list the planned maintenance windows (§36, 42), announced and configured", maintenanceList},
		{"announce", "announce a maintenance window", maintenanceAnnounce},
		{"cancel", "cancel an announced maintenance window", maintenanceCancel}}},
	{name: "exports", group: groupOperator, usage: exportsUsage, subs: []subcommand{
		{"list", "list the prosecutors' export requests waiting for a decision (§52), or every one", exportsList},
		{"show", "show an export request and write its resolution document to a file", exportsShow},
		{"approve", "approve an export request: the prosecutor may then fetch it", exportsApprove},
		{"refuse", "refuse an export request, with the reason the prosecutor is told", exportsRefuse}}},
	{name: "async", group: groupOperator, usage: asyncUsage, subs: []subcommand{
		{"stop", "stop the delivery of an asynchronous request (DELIVERY_STOPPED)", asyncStop}}},
	{name: "dlq", group: groupOperator, usage: dlqUsage, subs: []subcommand{
		{"list", "list the RabbitMQ dead-letter queue", dlqList},
		{"replay", "send dead letters back to the queues they died in", dlqReplay}}},
	{name: "services", group: groupOperator, run: cmdServices,
		summary: "the state of every service of a running broker: queued, dead, in flight, oldest, errors"},
	{name: "routes", group: groupOperator, run: cmdRoutes,
		summary: "print the effective routing table: service, queue, adapter, backend and timeout"},
	{name: "journal", group: groupOperator, usage: journalUsage, subs: []subcommand{
		{"check", "check the live journal's chain and its agreement with the last archive", journalCheck},
		{"reindex", "rebuild the request index that reports read from the journal (§9–10)", journalReindex},
		{"verify", "verify the sealed journal archives in a directory, offline (§38)", journalVerify}}},

	{name: "config", group: groupFiles, usage: configUsage, subs: []subcommand{
		{"check", "check the broker, routes, rights, adapter and maintenance files", configCheck}}},
	{name: "rights", group: groupFiles, usage: rightsUsage, subs: []subcommand{
		{"export", "print the access-rights tables (Appendices 1 and 2) as JSON", rightsExport},
		{"check", "explain whether a role may ask for a service under a basis", rightsCheck}}},
	{name: "transport-key", group: groupFiles, usage: transportKeyUsage, subs: []subcommand{
		{"new", "write a new master key of the messages between the broker and its adapters", transportKeyNew},
		{"derive", "print or write an adapter's key, derived from the broker's master key", transportKeyDerive}}},
	{name: "devpki", group: groupFiles, run: cmdDevPKI,
		summary: "write a development PKI (RSA, ECDSA or GOST): root CA, CRL, broker and demo user certificates"},
	{name: "sign", group: groupFiles, run: cmdSign,
		summary: "sign an XML document enveloped (a user's consent of §17, or any document to check with verify)"},
	{name: "verify", group: groupFiles, run: cmdVerify,
		summary: "verify the XML-DSig signatures of a file (enveloped or WS-Security; RSA, ECDSA or GOST) against trusted certificates and CRLs, as xmlsec1 --verify does"},
}

// lookup returns the command named name.
func lookup(name string) (*command, bool) {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i], true
		}
	}
	return nil, false
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// Main runs the siobroker command line with args (without the program name) and returns its exit
// status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		listCommands(stderr)
		return exitUsage
	case args[0] == "help" && len(args) > 1:
		// "siobroker help users import" is "siobroker users import -h".
		return Main(ctx, slices.Concat(args[1:], []string{"-h"}), stdout, stderr)
	case isHelp(args[0]):
		listCommands(stdout)
		return exitOK
	case args[0] == "--version" || args[0] == "-version":
		return cmdVersion(ctx, args[1:], stdout, stderr)
	}
	cmd, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "siobroker: unknown command %q\nRun 'siobroker -h' for the commands.\n", args[0])
		return exitUsage
	}
	if cmd.run != nil {
		if len(args) > 1 && args[1] == "help" {
			// None of these commands takes a positional argument: "send help" can only ask.
			return cmd.run(ctx, []string{"-h"}, stdout, stderr)
		}
		return cmd.run(ctx, args[1:], stdout, stderr)
	}
	return cmd.dispatch(ctx, args[1:], stdout, stderr)
}

// dispatch runs the subcommand args[0] of a command that has only subcommands.
func (c *command) dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, c.usage)
		return exitUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, c.usage)
		return exitOK
	}
	for _, s := range c.subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "siobroker %s: unknown subcommand %q\nRun 'siobroker %s -h' for the usage.\n", c.name, args[0], c.name)
	return exitUsage
}

// listWidth is the width the command list fits in.
const listWidth = 100

// listCommands writes the usage of siobroker: every command and subcommand, by group, each with
// its summary wrapped to fit listWidth columns.
func listCommands(w io.Writer) {
	type row struct{ name, summary string }
	var groups []string
	rows := map[string][]row{}
	nameWidth := 0
	for _, c := range commands {
		if len(rows[c.group]) == 0 {
			groups = append(groups, c.group)
		}
		if c.run != nil {
			rows[c.group] = append(rows[c.group], row{c.name, c.summary})
		}
		for _, s := range c.subs {
			rows[c.group] = append(rows[c.group], row{c.name + " " + s.name, s.summary})
		}
		for _, r := range rows[c.group] {
			nameWidth = max(nameWidth, len(r.name))
		}
	}
	fmt.Fprint(w, "usage: siobroker COMMAND [SUBCOMMAND] [ARGUMENTS] [flags]\n\n"+
		"siobroker is the СИО ПСО integration broker and its command line.\n")
	indent := strings.Repeat(" ", 2+nameWidth+2)
	for _, g := range groups {
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, r := range rows[g] {
			lines := wrap(r.summary, listWidth-len(indent))
			fmt.Fprintf(w, "  %-*s  %s\n", nameWidth, r.name, lines[0])
			for _, l := range lines[1:] {
				fmt.Fprintf(w, "%s%s\n", indent, l)
			}
		}
	}
	fmt.Fprint(w, "\nRun 'siobroker COMMAND -h' (or 'siobroker help COMMAND [SUBCOMMAND]') for a command's usage,\n"+
		"flags and exit codes. Exit status of siobroker alone: 0 for help, 2 for a usage error.\n")
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}
