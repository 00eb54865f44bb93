package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/routing/routes"
)

// cmdRoutes prints the effective routing table: what a broker started with the same
// configuration routes each service to, with the queue name as RabbitMQ knows it.
func cmdRoutes(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", app.DefaultConfigFile, "the broker's configuration; routing.routes_file names the table")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := config.Load(*configFile, explicit)
	if err != nil {
		fmt.Fprintf(stderr, "siobroker routes: %v\n", err)
		return 1
	}
	tbl, err := routes.Load(cfg.Routing.RoutesFile)
	if err != nil {
		fmt.Fprintf(stderr, "siobroker routes: %v\n", err)
		return 1
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
			fmt.Fprintf(stderr, "siobroker routes: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "routing table %s (transport %s, default timeout %s)\n", cfg.Routing.RoutesFile, cfg.Transport, tbl.DefaultTimeout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tQUEUE\tADAPTER\tBACKEND\tTIMEOUT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Service, r.TransportQueue, r.Adapter, r.Backend, r.TimeoutText)
	}
	tw.Flush()
	return 0
}
