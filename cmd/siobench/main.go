// Command siobench is the load benchmark of `make bench` and `make bench-soak` (scripts/bench.sh
// runs it). It starts, on 127.0.0.1 with a temporary data directory and a queue prefix of its own,
// a broker on the machine's RabbitMQ and a separate demo adapter process, as a deployment runs
// them; drives it with `siobroker load`; measures the baselines in the same run (goxmldsig and our
// signing verifying the same request envelope and signing a reply of its size, raw amqp091-go
// round trips at the same concurrency); stops everything, deletes its queues, and prints a
// summary table of figures and ratios. `siobench soak` runs one long load and samples the
// broker's memory every --sample to report its slope.
//
// `siobench --cluster` measures several brokers (one PostgreSQL journal) and adapter processes
// instead (cluster.go).
//
// It is a development tool: it loads only brokers it started itself, on loopback.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "soak" {
		return cmdSoak(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, "usage: siobench [flags]        the load benchmark and its baselines\n       siobench --cluster --journal-dsn DSN [flags]   brokers and adapter processes against throughput and CPU per request\n       siobench soak [flags]   one long load, the broker's memory sampled\nRun either with -h for its flags.")
		return 0
	}
	return cmdBench(ctx, args, stdout, stderr)
}
