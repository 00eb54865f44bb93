package amqp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// connManager holds one connection (publishing or consuming) and replaces it when it closes.
type connManager struct {
	cfg     Config
	logger  watermill.LoggerAdapter
	closing <-chan struct{}
	role    string // "publishing" or "consuming", for the logs

	mu   sync.Mutex
	conn *amqp091.Connection // nil while reconnecting
	up   chan struct{}       // closed while conn is set; a new one is made when it is lost

	done chan struct{}
}

func newConnManager(conn *amqp091.Connection, role string, cfg Config, logger watermill.LoggerAdapter, closing <-chan struct{}) *connManager {
	up := make(chan struct{})
	close(up)
	m := &connManager{cfg: cfg, logger: logger.With(watermill.LogFields{"connection": role}), closing: closing, role: role,
		conn: conn, up: up, done: make(chan struct{})}
	go m.watch()
	return m
}

func (m *connManager) get() *amqp091.Connection {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conn
}

// wait returns an open connection, waiting while it is being replaced; nil when ctx ends or the
// transport closes first.
func (m *connManager) wait(ctx context.Context) *amqp091.Connection {
	for {
		m.mu.Lock()
		conn, up := m.conn, m.up
		m.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn
		}
		if conn != nil {
			// Closed, and the watcher has not noticed yet: it will within moments.
			up = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.closing:
			return nil
		case <-up:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *connManager) watch() {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		conn := m.get()
		notify := conn.NotifyClose(make(chan *amqp091.Error, 1)) // buffered, as amqp091 requires
		select {
		case <-m.closing:
			return
		case amqpErr := <-notify:
			m.logger.Error("amqp: "+m.role+" connection lost, reconnecting", amqpErr, nil)
		}
		m.mu.Lock()
		m.conn, m.up = nil, make(chan struct{})
		m.mu.Unlock()
		conn, err := dialRetry(ctx, m.cfg, m.logger)
		if err != nil {
			return // closing
		}
		m.mu.Lock()
		m.conn = conn
		close(m.up)
		m.mu.Unlock()
		m.logger.Info("amqp: "+m.role+" connection restored", watermill.LogFields{"node": NodeAddr(conn)})
	}
}

// close closes the connection and waits for the watcher (the caller has closed m.closing).
func (m *connManager) close() error {
	<-m.done
	if c := m.get(); c != nil && !c.IsClosed() {
		return c.Close()
	}
	return nil
}

// pubChannel is one confirm-mode channel, used by one publish at a time.
type pubChannel struct {
	ch      *amqp091.Channel
	closed  chan *amqp091.Error
	returns chan amqp091.Return
}

func (p *pubChannel) usable() bool {
	if p == nil || p.ch.IsClosed() {
		return false
	}
	select {
	case <-p.closed:
		return false
	default:
		return true
	}
}

// publisher is a message.Publisher with publisher confirms and mandatory routing.
type publisher struct {
	t     *Transport
	slots chan *pubChannel // ChannelPoolSize slots; nil until opened or after a failure
}

func (p *publisher) open() (*pubChannel, error) {
	conn := p.t.pubConn.get()
	if conn == nil || conn.IsClosed() {
		return nil, ErrNotConnected
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("%w: open channel: %w", ErrNotConnected, err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("%w: confirm mode: %w", ErrNotConnected, err)
	}
	pc := &pubChannel{
		ch:     ch,
		closed: ch.NotifyClose(make(chan *amqp091.Error, 1)),
		// Returns are drained after every publish; the buffer keeps the connection's reader
		// from blocking should several arrive.
		returns: ch.NotifyReturn(make(chan amqp091.Return, 16)),
	}
	return pc, nil
}

// Publish publishes each message, persistent and mandatory, to the queue named after topic (see
// Config.route for the exchange it goes through), and returns once the server has confirmed it.
// The first failure stops it.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		if err := p.publishOne(topic, msg); err != nil {
			return err
		}
	}
	return nil
}

func (p *publisher) publishOne(topic string, msg *message.Message) (err error) {
	if p.t.closed.Load() {
		return ErrClosed
	}
	exchange, key := p.t.cfg.route(topic)
	queue := key // for the errors: the queue, or the exchange and routing key
	if exchange != "" {
		queue = fmt.Sprintf("exchange %s (key %q)", exchange, key)
	}
	publishing, err := p.t.marshaler.Marshal(msg)
	if err != nil {
		return fmt.Errorf("amqp: marshal message %s: %w", msg.UUID, err)
	}
	publishing.MessageId = msg.UUID

	timeout := p.t.cfg.ConfirmTimeout
	ctx, cancel := context.WithTimeout(msg.Context(), timeout)
	defer cancel()

	var pc *pubChannel
	select {
	case pc = <-p.slots:
	case <-p.t.closing:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("amqp: publish to %s: no channel free: %w", queue, ctx.Err())
	}
	keep := false
	defer func() {
		if !keep && pc != nil {
			_ = pc.ch.Close()
			pc = nil
		}
		p.slots <- pc
	}()
	if !pc.usable() {
		if pc, err = p.open(); err != nil {
			return fmt.Errorf("amqp: publish to %s: %w", queue, err)
		}
	}

	dc, err := pc.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, publishing)
	if err != nil {
		if connectionLost(err) {
			err = fmt.Errorf("%w: %w", ErrNotConnected, err)
		}
		return fmt.Errorf("amqp: publish to %s: %w", queue, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		// The channel's state is unknown: it is dropped (keep is false).
		return fmt.Errorf("amqp: publish to %s: %w within %s: %w", queue, ErrNotConfirmed, timeout, err)
	}
	if !acked {
		// A nack, or the channel closed before the confirm. The channel is dropped either way
		// (keep is false): after the leader of a quorum queue died with its node, a channel of
		// the pool that had published to it could go on failing publishes to it for tens of
		// seconds, while a fresh channel published at once (the cluster test's case checks,
		// refused SIO-UNAVAILABLE now and then for 40 s after the kill). A nack is rare enough
		// that opening a channel after one costs nothing.
		return fmt.Errorf("amqp: publish to %s: %w (nack or channel closed)", queue, ErrNotConfirmed)
	}
	keep = true
	// The server sends basic.return before the basic.ack of the same message, and amqp091
	// dispatches both in order from one goroutine: the return, if any, is already buffered.
	if drainReturns(pc.returns, msg.UUID) {
		return fmt.Errorf("amqp: publish to %s: %w", queue, ErrUnroutable)
	}
	return nil
}

// drainReturns empties returns of what is buffered in it and reports whether the message
// messageID is among them.
func drainReturns(returns <-chan amqp091.Return, messageID string) bool {
	returned := false
	for {
		select {
		case r, open := <-returns:
			if !open {
				// The channel closed after the ack (its connection lost): nothing more can be
				// buffered, and a closed channel would hand out empty returns for ever.
				return returned
			}
			if r.MessageId == messageID {
				returned = true
			}
		default:
			return returned
		}
	}
}

// Close does nothing: the Transport owns the connection.
func (p *publisher) Close() error { return nil }

// connectionLost reports whether a publish failed because the connection went away under it:
// amqp091's ErrClosed once it knows, but a write racing the server's death fails first with the
// socket's own error ("connection reset by peer", a broken pipe), before amqp091 has shut the
// connection down. Either way the message may be published again once the transport reconnects
// (a copy that did arrive is recognised by its correlation key); taken for a failure of the
// message, it ended an accepted request UNAVAILABLE in the RabbitMQ-restart test.
func connectionLost(err error) bool {
	var opErr *net.OpError
	return errors.Is(err, amqp091.ErrClosed) || errors.As(err, &opErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
