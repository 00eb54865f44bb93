package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/sio-pso/siobroker/routing/routes"
	"github.com/sio-pso/siobroker/schemas"
)

const routesUsage = `usage:
  siobroker routes [--config FILE] [--json]

Prints the effective routing table: what a broker started with the same configuration routes
each service to (queue, adapter, backend, timeout), with the queue name as RabbitMQ knows it
(amqp.prefix in front, with transport amqp). The configuration is --config (default
configs/broker.yaml) with the SIOBROKER_* environment over it, as serve reads it; its
routing.routes_file names the table.
Exit status: 0 printed, 1 the routing table does not load, 2 usage error or a configuration that
does not load.
`

// cmdRoutes prints the effective routing table: what a broker started with the same
// configuration routes each service to, with the queue name as RabbitMQ knows it.
func cmdRoutes(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("routes", routesUsage, stdout, stderr)
	b := addBrokerFlags(f, false)
	asJSON := f.Bool("json", false, "print JSON")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	e, code, ok := b.loadOrFail()
	if !ok {
		return code
	}
	cfg := e.cfg
	tbl, err := routes.Load(cfg.Routing.RoutesFile)
	if err != nil {
		return f.fail(exitFailed, "the routing table (%s): %v", e.describe("routing.routes_file", cfg.Routing.RoutesFile), err)
	}
	prefix := ""
	if cfg.Transport == "amqp" {
		prefix = cfg.AMQP.Prefix
	}
	type row struct {
		routes.Route
		TransportQueue string `json:"transportQueue"`
		TimeoutText    string `json:"timeoutText"`
	}
	rows := make([]row, 0, len(tbl.Routes()))
	for _, r := range tbl.Routes() {
		text := r.Timeout.String()
		if !r.TimeoutSet {
			text += " (default)"
		}
		rows = append(rows, row{Route: r, TransportQueue: prefix + r.Queue, TimeoutText: text})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return f.fail(exitFailed, "%v", err)
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "routing table %s (transport %s, default timeout %s)\n", cfg.Routing.RoutesFile, cfg.Transport, tbl.DefaultTimeout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tQUEUE\tADAPTER\tBACKEND\tTIMEOUT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Service, r.TransportQueue, r.Adapter, r.Backend, r.TimeoutText)
	}
	tw.Flush()
	// The registries' routes: which adapter's key the broker authenticates each case check with.
	fmt.Fprintf(stdout, "case registries (§5; the check waits cases.check_timeout, %s)\n", cfg.Cases.CheckTimeout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REGISTRY\tQUEUE\tADAPTER")
	for _, name := range tbl.Registries() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, prefix+schemas.RegistryTopic(name), tbl.RegistryAdapter(name))
	}
	tw.Flush()
	return exitOK
}
