package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/journal"
	amqptransport "github.com/sio-pso/siobroker/routing/amqp"
	"github.com/sio-pso/siobroker/sqlite"
)

// cmdDLQ shows the RabbitMQ dead-letter queue and sends its messages back to the queues they
// died in. A replay is an operator's action, recorded in the journal as the dashboard's replay is.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(stderr, "usage: siobroker dlq list [--config FILE] [--max N]\n       siobroker dlq replay [--config FILE] [--max N] [--by NAME]")
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("dlq "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", app.DefaultConfigFile, "the broker's configuration: its amqp section, and for replay the journal and data directory the replay is recorded in")
	max := fs.Int("max", 100, "at most this many messages")
	by := os.Getenv("USER")
	if by == "" {
		by = "operator"
	}
	if verb == "replay" {
		fs.StringVar(&by, "by", by, "who replays, for the journal")
	}
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
	acfg := app.AMQPConfig(cfg.AMQP, "dlq", nil)
	if verb == "replay" {
		return dlqReplay(ctx, cfg, acfg, *max, by, stdout, stderr)
	}
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
	return 0
}

// dlqReplay sends dead letters back and records the replay in the broker's journal. The journal
// is opened first, so that a replay whose record could not be written is not carried out; a
// replay that fails part-way is recorded with how many it sent back.
func dlqReplay(ctx context.Context, cfg config.Broker, acfg amqptransport.Config, max int, by string, stdout, stderr io.Writer) int {
	var db *sqlite.DB
	if cfg.Journal.Driver != "postgres" {
		// The journal is the broker's store: open the broker's, never a new one elsewhere.
		if _, err := os.Stat(filepath.Join(cfg.DataDir, sqlite.FileName)); err != nil {
			fmt.Fprintf(stderr, "siobroker dlq replay: no broker store in the data directory %s (the configuration's data_dir): %v; nothing was replayed\n", cfg.DataDir, err)
			return 1
		}
		var err error
		if db, err = sqlite.Open(ctx, cfg.DataDir); err != nil {
			fmt.Fprintf(stderr, "siobroker dlq replay: the data directory: %v; nothing was replayed\n", err)
			return 1
		}
		defer db.Close()
	}
	opJournal, closeJournal, err := app.OpenJournal(ctx, cfg, db)
	if err != nil {
		fmt.Fprintf(stderr, "siobroker dlq replay: the journal: %v; nothing was replayed\n", err)
		return 1
	}
	defer closeJournal()
	n, err := amqptransport.ReplayDeadLetters(ctx, acfg, max)
	fmt.Fprintf(stdout, "%d dead letter(s) sent back to their queues\n", n)
	var failed error
	if err != nil {
		failed = siobroker.Wrap(siobroker.CodeUnavailable, err, "%d dead letter(s) were sent back, then the replay failed", n)
		fmt.Fprintf(stderr, "siobroker dlq replay: %v\n", err)
	}
	action := journal.CommandLineAction{Action: "replay", By: by, Max: max, Replayed: &n}
	if jerr := journal.AppendCommandLine(context.WithoutCancel(ctx), opJournal, siobroker.SystemClock{}, action, failed); jerr != nil {
		fmt.Fprintf(stderr, "siobroker dlq replay: %d sent back, but the replay's journal record could not be written: %v\n", n, jerr)
		return 1
	}
	if failed != nil {
		return 1
	}
	return 0
}
