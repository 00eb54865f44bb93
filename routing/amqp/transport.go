package amqp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker/routing"
)

// Errors of the transport.
var (
	ErrClosed = errors.New("amqp: transport closed")
	// ErrNotConnected: the connection is down or being replaced. It wraps
	// routing.ErrTransportUnavailable, so that the dispatcher publishes again.
	ErrNotConnected = fmt.Errorf("amqp: not connected to RabbitMQ: %w", routing.ErrTransportUnavailable)
	// ErrUnroutable: the server returned a mandatory publish, because no queue of that name
	// exists (Declare was not run for it).
	ErrUnroutable = errors.New("amqp: message returned unroutable: no such queue")
	// ErrNotConfirmed: the server nacked the publish, or did not confirm it in time, or the
	// channel closed first. The message may or may not be on the queue: publish again (the
	// routing package recognises a duplicate answer by its correlation key). It wraps
	// routing.ErrTransportUnavailable.
	ErrNotConfirmed = fmt.Errorf("amqp: publish not confirmed: %w", routing.ErrTransportUnavailable)
)

// MetaDeliveryCount is the metadata key under which a quorum queue's redelivery count arrives
// (a decimal string; absent on the first delivery).
const MetaDeliveryCount = "x-delivery-count"

// Transport is a RabbitMQ connection pair (one for publishing, one for consuming) with the
// watermill Publisher and Subscriber the routing package uses.
type Transport struct {
	cfg    Config
	logger watermill.LoggerAdapter

	marshaler wamqp.DefaultMarshaler

	pubConn *connManager
	pub     *publisher

	subConn *connManager
	sub     *subscriber

	dlq dlqLook // DeadLettersByService's last look

	closed    atomic.Bool
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New connects to RabbitMQ, retrying the first connection with back-off until ctx ends, and
// reconnects by itself afterwards. It checks that the service and registry queues of cfg exist
// (run Declare first) but declares nothing.
func New(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	t := &Transport{
		cfg:     cfg,
		logger:  logger,
		closing: make(chan struct{}),
		marshaler: wamqp.DefaultMarshaler{
			PreprocessDelivery: stringHeaders,
			PostprocessPublishing: func(p amqp091.Publishing) amqp091.Publishing {
				if id, ok := p.Headers[wamqp.DefaultMessageUUIDHeaderKey].(string); ok {
					p.MessageId = id // lets a basic.return be matched to its publish
				}
				return p
			},
		},
	}

	conn, err := dialRetry(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	t.pubConn = newConnManager(conn, "publishing", cfg, logger, t.closing)
	t.pub = &publisher{t: t, slots: make(chan *pubChannel, cfg.ChannelPoolSize)}
	for range cfg.ChannelPoolSize {
		t.pub.slots <- nil // opened on first use
	}

	if err := t.checkQueues(conn, cfg.workQueues()); err != nil {
		_ = t.Close()
		return nil, err
	}
	if err := checkExchange(conn, cfg.name(ReplyExchange)); err != nil {
		_ = t.Close()
		return nil, err
	}

	// A separate connection for consuming, as RabbitMQ advises: flow control blocks publishing
	// connections.
	subConn, err := dialRetry(ctx, cfg, logger)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	t.subConn = newConnManager(subConn, "consuming", cfg, logger, t.closing)
	t.sub = &subscriber{t: t}
	return t, nil
}

// NewBrokerTransport is New for a broker instance: it first declares the instance's reply queue
// "sio.reply.<Instance>" (cfg.Instance is required), and binds it to the reply exchange
// (ReplyExchange, declared too), under its own name, through which adapters answer.
//
// The reply queue is durable (quorum, or classic durable), neither exclusive nor auto-delete, so
// that answers survive a broker restart and a RabbitMQ restart. The trade-off is cleanup: a
// queue per instance id stays until deleted, so instance ids must be stable (host or pod name,
// not a random id per start), and a retired instance's queue must be deleted by an operator
// (rabbitmqctl delete_queue sio.reply.<instance>); the answers left in it are late by then and the
// dispatcher would drop them anyway.
func NewBrokerTransport(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Transport, error) {
	if cfg.Instance == "" {
		return nil, errors.New("amqp: a broker transport needs an instance id")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	conn, err := dialRetry(ctx, cfg, watermill.NopLogger{})
	if err != nil {
		return nil, err
	}
	_, err = declareQueue(conn, cfg, cfg.replyQueue(), true)
	if err == nil {
		err = bindReplyQueue(conn, cfg)
	}
	_ = conn.Close()
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, logger)
}

// ReplyExchange is the direct exchange answers are published to, with the reply queue's name as
// the routing key: publishing there, and to the dead-letter exchange, is all an adapter's
// RabbitMQ user needs to be allowed to write (no write permission on the default exchange, which
// reaches every queue). Each broker binds its reply queue to it.
const ReplyExchange = "sio.replies"

// declareReplyExchange declares ReplyExchange (durable, direct), idempotently.
func declareReplyExchange(conn *amqp091.Connection, cfg Config) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(cfg.name(ReplyExchange), amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
		return fmt.Errorf("amqp: declare reply exchange %s: %w", cfg.name(ReplyExchange), err)
	}
	return nil
}

// bindReplyQueue binds this instance's reply queue to ReplyExchange under its name, declaring the
// exchange first.
func bindReplyQueue(conn *amqp091.Connection, cfg Config) error {
	if err := declareReplyExchange(conn, cfg); err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.QueueBind(cfg.replyQueue(), cfg.replyQueue(), cfg.name(ReplyExchange), false, nil); err != nil {
		return fmt.Errorf("amqp: bind reply queue %s to %s: %w", cfg.replyQueue(), cfg.name(ReplyExchange), err)
	}
	return nil
}

// route is where a publish to topic goes: an answer to a reply topic through ReplyExchange, a
// dead letter through the dead-letter exchange (a fanout to the dead-letter queue), anything
// else through the default exchange straight to the queue named after the topic. exchange ""
// is the default exchange; key is the routing key.
func (c Config) route(topic string) (exchange, key string) {
	switch {
	case strings.HasPrefix(topic, routing.ReplyTopicPrefix):
		return c.name(ReplyExchange), c.name(topic)
	case topic == c.DeadLetterQueue:
		return c.name(c.DeadLetterExchange), ""
	}
	return "", c.name(topic)
}

// ReplyTopic is the topic of this instance's reply queue (routing.ReplyTopicPrefix + Instance):
// pass it as routing.DispatcherConfig.ReplyTopic.
func (t *Transport) ReplyTopic() string { return routing.ReplyTopicPrefix + t.cfg.Instance }

// DeadLetterTopic is the topic of the dead-letter queue (Config.DeadLetterQueue): pass it as
// routing.AdapterConfig.DeadLetters.
func (t *Transport) DeadLetterTopic() string { return t.cfg.DeadLetterQueue }

// Publisher publishes to the queue named after the topic. Its Close does nothing: Transport.Close
// releases the connections.
func (t *Transport) Publisher() message.Publisher { return t.pub }

// Subscriber consumes the queue named after the topic, with Config.Concurrency consumers per
// Subscribe, consuming again by itself after the connection is lost. Its Close does nothing:
// Transport.Close stops the subscriptions.
func (t *Transport) Subscriber() message.Subscriber { return t.sub }

// Ready reports whether both connections are up.
func (t *Transport) Ready() error {
	if t.closed.Load() {
		return ErrClosed
	}
	if c := t.pubConn.get(); c == nil || c.IsClosed() {
		return fmt.Errorf("%w (publishing connection)", ErrNotConnected)
	}
	if c := t.subConn.get(); c == nil || c.IsClosed() {
		return fmt.Errorf("%w (consuming connection)", ErrNotConnected)
	}
	return nil
}

// Close stops the subscriptions (unacknowledged messages go back to their queues) and closes
// the connections.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		close(t.closing)
		var errs []error
		if t.sub != nil {
			t.sub.stop()
		}
		if t.subConn != nil {
			errs = append(errs, t.subConn.close())
		}
		if t.pubConn != nil {
			errs = append(errs, t.pubConn.close())
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// checkExchange verifies with a passive declare that the exchange exists: answers go through it,
// and a publish to an exchange that does not exist closes the channel instead of failing.
func checkExchange(conn *amqp091.Connection, name string) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: open channel: %w", err)
	}
	if err := ch.ExchangeDeclarePassive(name, amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
		return fmt.Errorf("amqp: exchange %s not declared (a broker of this version declares it when it starts): %w", name, err)
	}
	_ = ch.Close()
	return nil
}

// checkQueues verifies with passive declares that every queue exists.
func (t *Transport) checkQueues(conn *amqp091.Connection, queues []string) error {
	var missing []string
	for _, q := range queues {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("amqp: open channel: %w", err)
		}
		if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
			var amqpErr *amqp091.Error
			if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
				missing = append(missing, q)
				continue // the channel is closed by the server
			}
			return fmt.Errorf("amqp: check queue %s: %w", q, err)
		}
		_ = ch.Close()
	}
	if len(missing) > 0 {
		return fmt.Errorf("amqp: queues not declared (run Declare first): %s", strings.Join(missing, ", "))
	}
	return nil
}

// stringHeaders makes every header a string, as watermill's metadata must be: numbers, booleans
// and times are formatted, tables, arrays, byte slices and decimals (x-death) are dropped.
func stringHeaders(d amqp091.Delivery) amqp091.Delivery {
	for k, v := range d.Headers {
		if s, ok := headerString(v); ok {
			d.Headers[k] = s
		} else {
			delete(d.Headers, k)
		}
	}
	return d
}

func headerString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int:
		return strconv.FormatInt(int64(x), 10), true
	case int8:
		return strconv.FormatInt(int64(x), 10), true
	case int16:
		return strconv.FormatInt(int64(x), 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint8:
		return strconv.FormatUint(uint64(x), 10), true
	case uint16:
		return strconv.FormatUint(uint64(x), 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case time.Time:
		return x.UTC().Format(time.RFC3339), true
	default:
		return "", false
	}
}
