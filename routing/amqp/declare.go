package amqp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// QueueKind says what kind of queue was declared.
type QueueKind string

// Queue kinds.
const (
	Quorum  QueueKind = "quorum"
	Classic QueueKind = "classic"
)

// Declare declares the topology idempotently: the durable fanout dead-letter exchange, the
// durable direct reply exchange (ReplyExchange), the durable dead-letter queue bound to the
// former, and a durable queue per service ("sio.service.NNN") and
// per registry ("sio.registry.NAME") and per shared queue of Config.Queues, each with x-dead-letter-exchange set. Queues are quorum
// queues unless cfg.ClassicQueues, or unless the server refuses one (then classic durable).
// It dials once with back-off until ctx ends.
func Declare(ctx context.Context, cfg Config) error {
	_, err := DeclareTopology(ctx, cfg)
	return err
}

// Declared is what DeclareTopology found and did.
type Declared struct {
	ServerVersion   string    // RabbitMQ's, as the server announced it
	DeadLetterQueue QueueKind // the kind of the dead-letter queue
	// Warnings are conditions of the server that put messages at risk and that the broker
	// cannot change by itself; the caller logs them.
	Warnings []string
}

// DeclareTopology is Declare, also reporting the server's version and what in it needs an
// operator's attention.
func DeclareTopology(ctx context.Context, cfg Config) (Declared, error) {
	var out Declared
	if err := cfg.Validate(); err != nil {
		return out, err
	}
	cfg.setDefaults()
	conn, err := dialRetry(ctx, cfg, watermill.NopLogger{})
	if err != nil {
		return out, err
	}
	defer conn.Close()
	out.ServerVersion, _ = conn.Properties["version"].(string)
	if err := declareAll(conn, cfg, &out); err != nil {
		return out, err
	}
	if w := deadLetterLimitWarning(out.ServerVersion, out.DeadLetterQueue, cfg.name(cfg.DeadLetterQueue)); w != "" {
		out.Warnings = append(out.Warnings, w)
	}
	return out, nil
}

// deadLetterLimitWarning warns of RabbitMQ 4.0 to 4.2, which give every quorum queue a delivery
// limit (20 by default) and count each return of a message toward it. `dlq list`, the dashboard's
// counts and `dlq replay` read the dead-letter queue by taking its messages and giving them back,
// so there a dead letter looked at 20 times would be dropped: the dead-letter queue has no
// dead-letter exchange of its own. RabbitMQ 4.3 counts only failed deliveries (basic.reject),
// and these reads give messages back with basic.nack; RabbitMQ 3 has no default limit.
func deadLetterLimitWarning(version string, kind QueueKind, queue string) string {
	if kind != Quorum {
		return ""
	}
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil || major != 4 || minor >= 3 {
		return ""
	}
	return fmt.Sprintf("RabbitMQ %s drops a message of the quorum queue %s once it has been given back 20 times (its default "+
		"delivery limit), and every `siobroker dlq list`, dashboard count and `dlq replay` gives the dead letters back: "+
		"unless a policy lifts the limit, dead letters will be lost. Lift it: rabbitmqctl set_policy sio-dlq '^%s$' "+
		"'{\"delivery-limit\": -1}' --apply-to quorum_queues (or upgrade RabbitMQ to 4.3 or later)", version, queue, regexp.QuoteMeta(queue))
}

// declareAll declares the exchange and every queue of cfg on conn.
func declareAll(conn *amqp091.Connection, cfg Config, out *Declared) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: open channel: %w", err)
	}
	if err := ch.ExchangeDeclare(cfg.name(cfg.DeadLetterExchange), amqp091.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("amqp: declare dead-letter exchange %s: %w", cfg.name(cfg.DeadLetterExchange), err)
	}
	_ = ch.Close()
	if err := declareReplyExchange(conn, cfg); err != nil {
		return err
	}

	kind, err := declareQueue(conn, cfg, cfg.name(cfg.DeadLetterQueue), false)
	if err != nil {
		return err
	}
	out.DeadLetterQueue = kind
	if ch, err = conn.Channel(); err != nil {
		return fmt.Errorf("amqp: open channel: %w", err)
	}
	if err := ch.QueueBind(cfg.name(cfg.DeadLetterQueue), "", cfg.name(cfg.DeadLetterExchange), false, nil); err != nil {
		return fmt.Errorf("amqp: bind dead-letter queue: %w", err)
	}
	_ = ch.Close()

	for _, q := range cfg.workQueues() {
		if _, err := declareQueue(conn, cfg, q, true); err != nil {
			return err
		}
	}
	return nil
}

// name is the queue or exchange name of a topic or configured name.
func (c Config) name(s string) string { return c.Prefix + s }

// workQueues are the service and registry queues of c.
func (c Config) workQueues() []string {
	out := make([]string, 0, len(c.Services)+len(c.Registries))
	for _, n := range c.Services {
		out = append(out, c.name(schemas.ServiceTopic(n)))
	}
	for _, r := range c.Registries {
		out = append(out, c.name(schemas.RegistryTopic(r)))
	}
	for _, q := range c.Queues {
		out = append(out, c.name(q))
	}
	return out
}

// replyQueue is the queue of this instance's reply topic.
func (c Config) replyQueue() string { return c.name(routing.ReplyTopicPrefix + c.Instance) }

// declareQueue declares a durable queue (quorum, or classic on refusal), dead-lettering to the
// DLX when withDLX. Each attempt uses its own channel: a refused declare closes the channel.
func declareQueue(conn *amqp091.Connection, cfg Config, name string, withDLX bool) (QueueKind, error) {
	args := amqp091.Table{}
	if withDLX {
		args["x-dead-letter-exchange"] = cfg.name(cfg.DeadLetterExchange)
	}
	try := func(kind QueueKind) error {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("amqp: open channel: %w", err)
		}
		a := amqp091.Table{}
		for k, v := range args {
			a[k] = v
		}
		if kind == Quorum {
			a[amqp091.QueueTypeArg] = amqp091.QueueTypeQuorum
			if withDLX && cfg.DeliveryLimit > 0 {
				a["x-delivery-limit"] = int64(cfg.DeliveryLimit)
			}
		}
		_, err = ch.QueueDeclare(name, true, false, false, false, a)
		if err == nil {
			_ = ch.Close()
		}
		return err
	}
	if !cfg.ClassicQueues {
		err := try(Quorum)
		if err == nil {
			return Quorum, nil
		}
		var amqpErr *amqp091.Error
		if !errors.As(err, &amqpErr) || conn.IsClosed() {
			return "", fmt.Errorf("amqp: declare queue %s: %w", name, err)
		}
		// The server refused a quorum queue on this channel only: take a classic one.
	}
	if err := try(Classic); err != nil {
		return "", fmt.Errorf("amqp: declare queue %s: %w", name, err)
	}
	return Classic, nil
}

// Prompt reconnection. While RabbitMQ refuses connections (it is stopped, or restarting) the
// back-off between attempts grows to Config.ReconnectMax, 30 s by default; sleeping it out would
// leave a process unready for up to that long after RabbitMQ is back. So while the last attempt
// failed to open the TCP connection at all, the pause is cut short as soon as a cheap TCP probe
// of the server's port, every probeInterval, is accepted; and for comebackGrace after that (a
// node that just opened its port may refuse logins for a moment while it finishes booting)
// attempts follow each other every comebackRetry. The back-off still spaces the attempts, and
// the log lines, while the server stays away or refuses the login for longer (wrong credentials,
// a missing vhost).
const (
	probeInterval = 250 * time.Millisecond
	probeTimeout  = time.Second
	comebackGrace = 10 * time.Second
	comebackRetry = 250 * time.Millisecond
)

// dialRetry dials cfg.URL until it succeeds or ctx ends, with exponential back-off and jitter
// between ReconnectMin and ReconnectMax, cut short once a server is back (see probeInterval).
// Each attempt tries every node of cfg.URL once (see SplitURLs), so with several nodes a
// connection goes on to a surviving one at once; the back-off applies only when none accepts.
func dialRetry(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*amqp091.Connection, error) {
	addrs := serverAddrs(cfg.URL)
	wait := cfg.ReconnectMin
	var back time.Time // when the probe found a server's port open again
	for attempt := 1; ; attempt++ {
		conn, refused, err := dialNodes(cfg)
		if err == nil {
			if attempt > 1 || len(addrs) > 1 {
				logger.Info("amqp: connected to RabbitMQ", watermill.LogFields{"node": NodeAddr(conn), "attempt": attempt})
			}
			return conn, nil
		}
		if refused {
			back = time.Time{}
		}
		sleep := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1)) // full jitter: 50–100 % of wait
		probe := refused && len(addrs) > 0
		if !back.IsZero() && time.Since(back) < comebackGrace {
			sleep, probe = comebackRetry, false
		} else {
			logger.Error("amqp: dial RabbitMQ failed, retrying", err, watermill.LogFields{"attempt": attempt, "wait": wait.String()})
		}
		woken, perr := pause(ctx, sleep, probe, addrs)
		if perr != nil {
			return nil, fmt.Errorf("amqp: dial RabbitMQ: %w (last error: %w)", perr, err)
		}
		if woken {
			back = time.Now()
			logger.Info("amqp: RabbitMQ accepts connections again; dialling now", nil)
		}
		if wait *= 2; wait > cfg.ReconnectMax {
			wait = cfg.ReconnectMax
		}
	}
}

// pause waits d, or, with probe, until a TCP connection to one of addrs is accepted (tried every
// probeInterval), and reports whether the probe ended it; it fails when ctx ends first.
func pause(ctx context.Context, d time.Duration, probe bool, addrs []string) (bool, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	var tick <-chan time.Time
	if probe {
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		tick = t.C
	}
	dialer := net.Dialer{Timeout: probeTimeout}
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timer.C:
			return false, nil
		case <-tick:
			for _, addr := range addrs {
				c, err := dialer.DialContext(ctx, "tcp", addr)
				if err == nil {
					_ = c.Close()
					return true, nil
				}
			}
		}
	}
}

// serverAddr is the host:port of the AMQP URI url; "" when it does not parse (Validate has
// refused it already).
func serverAddr(url string) string {
	u, err := amqp091.ParseURI(url)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// tcpFailed reports whether err is a failure to open the TCP connection (refused, unreachable,
// timed out), rather than of what came after it on an open connection.
func tcpFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
