package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	amqptransport "github.com/sio-pso/siobroker/transport/amqp"
)

// cmdDLQ shows the RabbitMQ dead-letter queue and sends its messages back to the queues they
// died in.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(stderr, "usage: siobroker dlq list|replay [--config FILE] [--max N]")
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("dlq "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", defaultConfigFile, "the broker's configuration (its amqp section)")
	max := fs.Int("max", 100, "at most this many messages")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *max < 1 {
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := config.Load(*configFile, explicit)
	if err != nil {
		fmt.Fprintf(stderr, "siobroker dlq: %v\n", err)
		return 2
	}
	acfg := amqpConfig(cfg.AMQP, "dlq", nil)
	switch verb {
	case "list":
		letters, err := amqptransport.ListDeadLetters(ctx, acfg, *max)
		if err != nil {
			fmt.Fprintf(stderr, "siobroker dlq list: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%d dead letter(s)\n", len(letters))
		for _, d := range letters {
			died := fmt.Sprintf("died %d time(s), last at %s", d.Count, siobroker.FormatTime(d.DiedAt))
			if d.Attempts > 0 {
				died = fmt.Sprintf("given up after %d attempts at %s", d.Attempts, siobroker.FormatTime(d.DiedAt))
			}
			fmt.Fprintf(stdout, "  %s  from %s  reason %s  %s  %d bytes\n", d.MessageID, d.Queue, d.Reason, died, d.PayloadSize)
		}
	case "replay":
		n, err := amqptransport.ReplayDeadLetters(ctx, acfg, *max)
		fmt.Fprintf(stdout, "%d dead letter(s) sent back to their queues\n", n)
		if err != nil {
			fmt.Fprintf(stderr, "siobroker dlq replay: %v\n", err)
			return 1
		}
	}
	return 0
}
