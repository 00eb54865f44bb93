package amqp

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// connManager holds the publishing connection and replaces it when it closes.
type connManager struct {
	cfg     Config
	logger  watermill.LoggerAdapter
	closing <-chan struct{}

	mu   sync.RWMutex
	conn *amqp091.Connection // nil while reconnecting

	done chan struct{}
}

func newConnManager(conn *amqp091.Connection, cfg Config, logger watermill.LoggerAdapter, closing <-chan struct{}) *connManager {
	m := &connManager{cfg: cfg, logger: logger, closing: closing, conn: conn, done: make(chan struct{})}
	go m.watch()
	return m
}

func (m *connManager) get() *amqp091.Connection {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.conn
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
			m.logger.Error("amqp: publishing connection lost, reconnecting", amqpErr, nil)
		}
		m.mu.Lock()
		m.conn = nil
		m.mu.Unlock()
		conn, err := dialRetry(ctx, m.cfg, m.logger)
		if err != nil {
			return // closing
		}
		m.mu.Lock()
		m.conn = conn
		m.mu.Unlock()
		m.logger.Info("amqp: publishing connection restored", nil)
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
		return nil, fmt.Errorf("amqp: open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("amqp: confirm mode: %w", err)
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

// Publish publishes each message, persistent and mandatory, to the queue named after topic,
// and returns once the server has confirmed it. The first failure stops it.
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
	queue := p.t.cfg.name(topic)
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

	dc, err := pc.ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, publishing)
	if err != nil {
		return fmt.Errorf("amqp: publish to %s: %w", queue, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		// The channel's state is unknown: it is dropped (keep is false).
		return fmt.Errorf("amqp: publish to %s: %w within %s: %w", queue, ErrNotConfirmed, timeout, err)
	}
	if !acked {
		// A nack, or the channel closed before the confirm.
		keep = pc.usable()
		return fmt.Errorf("amqp: publish to %s: %w (nack or channel closed)", queue, ErrNotConfirmed)
	}
	keep = true
	// The server sends basic.return before the basic.ack of the same message, and amqp091
	// dispatches both in order from one goroutine: the return, if any, is already buffered.
	returned := false
	for drained := false; !drained; {
		select {
		case r := <-pc.returns:
			if r.MessageId == msg.UUID {
				returned = true
			}
		default:
			drained = true
		}
	}
	if returned {
		return fmt.Errorf("amqp: publish to %s: %w", queue, ErrUnroutable)
	}
	return nil
}

// Close does nothing: the Transport owns the connection.
func (p *publisher) Close() error { return nil }

// subscriber subscribes n consumers per topic and merges them.
type subscriber struct {
	inner   message.Subscriber
	n       int
	closing <-chan struct{}
}

// Subscribe starts n consumers on the queue named after topic. The returned channel closes when
// ctx ends or the transport closes. A message that cannot be handed over then is nacked (back to
// the queue).
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, ErrClosed
	default:
	}
	ctx, cancel := context.WithCancel(ctx)
	ins := make([]<-chan *message.Message, 0, s.n)
	for range s.n {
		in, err := s.inner.Subscribe(ctx, topic)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("amqp: subscribe %s: %w", topic, err)
		}
		ins = append(ins, in)
	}
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Go(func() {
			for msg := range in {
				select {
				case out <- msg:
				case <-ctx.Done():
					msg.Nack()
				case <-s.closing:
					msg.Nack()
				}
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out, nil
}

// Close does nothing: Transport.Close stops the subscriptions.
func (s *subscriber) Close() error { return nil }
