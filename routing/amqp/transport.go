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
// "sio.reply.<Instance>" (cfg.Instance is required).
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
	_ = conn.Close()
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, logger)
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
