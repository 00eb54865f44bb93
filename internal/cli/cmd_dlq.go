package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/journal"
	amqptransport "github.com/sio-pso/siobroker/routing/amqp"
)

const dlqUsage = `usage:
  siobroker dlq list [--config FILE] [--max N]
  siobroker dlq replay [--config FILE] [--data DIR] [--max N] [--by NAME]

The RabbitMQ dead-letter queue of a broker with transport amqp: amqp.prefix + sio.dlq on
amqp.url, both read from the broker's configuration (--config, default configs/broker.yaml) and
the SIOBROKER_* environment, as serve reads them. list shows up to N messages without taking them
(each is fetched and put back); replay sends them back to the queues they died in, and records
the replay, with --by, in the journal the configuration names (opened first: nothing is replayed
if the record could not be written).
Exit status: 0 listed or replayed, 1 failed (RabbitMQ, the queue or the journal), 2 usage error
or a configuration that does not load.
`

// dlqCommand is a parsed dlq list or replay.
type dlqCommand struct {
	f   *cmdFlags
	e   *brokerEnv
	max int
	by  string // replay only
}

// parseDLQ parses the flags dlq list and replay share; nil means return code.
func parseDLQ(verb string, args []string, stdout, stderr io.Writer) (*dlqCommand, int) {
	f := newFlags("dlq "+verb, dlqUsage, stdout, stderr)
	b := addBrokerFlags(f, verb == "replay")
	max := f.Int("max", 100, "at most this many messages")
	var by *string
	if verb == "replay" {
		by = f.byFlag("who replays, for the journal")
	}
	if code, ok := f.parseNoArgs(args); !ok {
		return nil, code
	}
	if *max < 1 {
		return nil, f.usageError("--max must be at least 1")
	}
	e, code, ok := b.loadOrFail()
	if !ok {
		return nil, code
	}
	c := &dlqCommand{f: f, e: e, max: *max}
	if by != nil {
		c.by = *by
	}
	return c, exitOK
}

// dlqList shows the dead-letter queue.
func dlqList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, code := parseDLQ("list", args, stdout, stderr)
	if c == nil {
		return code
	}
	letters, err := amqptransport.ListDeadLetters(ctx, c.e.amqp("dlq"), c.max)
	if err != nil {
		return c.f.fail(exitFailed, "%s", dlqProblem(c.e, err, "nothing was listed"))
	}
	fmt.Fprintf(stdout, "%d dead letter(s)\n", len(letters))
	for _, d := range letters {
		died := fmt.Sprintf("died %d time(s), last at %s", d.Count, siobroker.FormatTime(d.DiedAt))
		if d.Attempts > 0 {
			died = fmt.Sprintf("given up after %d attempts at %s", d.Attempts, siobroker.FormatTime(d.DiedAt))
		}
		fmt.Fprintf(stdout, "  %s  from %s  reason %s  %s  %d bytes\n", d.MessageID, d.Queue, d.Reason, died, d.PayloadSize)
	}
	return exitOK
}

// dlqReplay sends dead letters back and records the replay in the broker's journal, as the
// dashboard's replay is. The journal is opened first, so that a replay whose record could not be
// written is not carried out; a replay that fails part-way is recorded with how many it sent
// back.
func dlqReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, code := parseDLQ("replay", args, stdout, stderr)
	if c == nil {
		return code
	}
	opJournal, closeJournal, err := c.e.journalOnly(ctx)
	if err != nil {
		return c.f.fail(exitFailed, "%v; nothing was replayed", err)
	}
	defer closeJournal()
	// The broker's key renews the authenticators of the requests sent back: one that waited in
	// the dead-letter queue longer than amqp.message_validity would be refused as expired.
	renew, err := app.Renewer(c.e.cfg, siobroker.SystemClock{})
	if err != nil {
		return c.f.fail(exitFailed, "%v; nothing was replayed (dlq replay renews the authenticators of the requests it sends back, "+
			"so it needs the broker's transport key)", err)
	}
	res, err := amqptransport.ReplayDeadLetters(ctx, c.e.amqp("dlq"), c.max, renew)
	n := res.Replayed
	fmt.Fprintf(stdout, "%d dead letter(s) sent back to their queues, %d with a renewed authenticator\n", n, res.Renewed)
	for _, why := range slices.Sorted(maps.Keys(res.NotRenewed)) {
		fmt.Fprintf(stdout, "%d sent back as they were, not made by this broker (%s): their adapter refuses them again\n", res.NotRenewed[why], why)
	}
	var failed error
	if err != nil {
		failed = siobroker.Wrap(siobroker.CodeUnavailable, err, "%d dead letter(s) were sent back, then the replay failed", n)
		c.f.fail(exitFailed, "%s", dlqProblem(c.e, err, fmt.Sprintf("%d sent back", n)))
	}
	action := journal.CommandLineAction{Action: "replay", By: c.by, Max: c.max, Replayed: &n}
	if jerr := journal.AppendCommandLine(context.WithoutCancel(ctx), opJournal, siobroker.SystemClock{}, action, failed); jerr != nil {
		return c.f.fail(exitFailed, "%d sent back, but the replay's journal record could not be written: %v", n, jerr)
	}
	if failed != nil {
		return exitFailed
	}
	return exitOK
}

// dlqProblem explains a failure to reach the dead-letter queue: which RabbitMQ and which queue
// were tried, where their names came from, and what to change. A queue RabbitMQ does not know is
// nearly always a prefix or a URL that is not the running broker's.
func dlqProblem(e *brokerEnv, err error, done string) string {
	queue := e.cfg.AMQP.Prefix + amqptransport.DefaultDeadLetterQueue
	var b strings.Builder
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
		fmt.Fprintf(&b, "RabbitMQ has no queue %q (%s); %s.\n", queue, amqpErr.Reason, done)
	} else {
		fmt.Fprintf(&b, "the dead-letter queue %q: %v; %s.\n", queue, err, done)
	}
	fmt.Fprintf(&b, "  The dead-letter queue is amqp.prefix + %q on amqp.url; the configuration %s gave\n  %s\n  %s\n",
		amqptransport.DefaultDeadLetterQueue, e.file, e.describe("amqp.prefix", e.cfg.AMQP.Prefix), e.describe("amqp.url", redactURL(e.cfg.AMQP.URL)))
	if e.cfg.Transport != "amqp" {
		fmt.Fprintf(&b, "  and %s: a broker on the in-process transport has no dead-letter queue.\n",
			e.describe("transport", e.cfg.Transport))
	}
	fmt.Fprintf(&b, "  A broker with transport amqp declares the queue when it starts. To use the running broker's, set\n"+
		"  amqp.prefix and amqp.url in %s, or SIOBROKER_AMQP_PREFIX and SIOBROKER_AMQP_URL, as the broker has\n"+
		"  them, or give the broker's own configuration with --config.", e.file)
	return b.String()
}
