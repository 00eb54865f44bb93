package amqp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// subscriber is a message.Subscriber on amqp091-go that survives the loss of its connection:
// each consumer, when its channel closes (RabbitMQ restarted, the connection dropped, the server
// cancelled the consumer), waits for the consuming connection to come back and consumes its
// queue again. Unacknowledged messages of a lost channel go back to the queue on the server's
// side and are delivered again. (watermill-amqp's subscriber raced on its reconnect path.)
type subscriber struct {
	t *Transport

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup // consumer goroutines
}

// Subscribe starts Config.Concurrency consumers on the queue named after topic, each on its own
// channel with Config.Prefetch, and merges their messages. A consumer hands over one message at
// a time and waits for its Ack or Nack before the next, so at most Concurrency messages are in
// the handlers at once. The returned channel closes when ctx ends or the transport closes.
//
// The queue must exist (Declare): Subscribe checks it and fails otherwise, and fails when the
// consuming connection is down at the time of the call.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	queue := s.t.cfg.name(topic)
	conn := s.t.subConn.get()
	if conn == nil || conn.IsClosed() {
		return nil, fmt.Errorf("amqp: subscribe %s: %w", queue, ErrNotConnected)
	}
	if err := checkQueue(conn, queue); err != nil {
		return nil, fmt.Errorf("amqp: subscribe %s: %w", queue, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	var consumers sync.WaitGroup
	for i := range s.t.cfg.Concurrency {
		consumers.Add(1)
		s.running.Go(func() {
			defer consumers.Done()
			s.consume(ctx, queue, i, out)
		})
	}
	s.running.Go(func() {
		consumers.Wait()
		cancel()
		close(out)
	})
	return out, nil
}

// Close does nothing: Transport.Close stops the subscriptions.
func (s *subscriber) Close() error { return nil }

// stop waits for the consumers to return; the caller has closed the transport's closing channel.
func (s *subscriber) stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.running.Wait()
}

// consume runs consumer n on queue until ctx ends or the transport closes, consuming again with
// back-off whenever its channel is lost.
func (s *subscriber) consume(ctx context.Context, queue string, n int, out chan<- *message.Message) {
	fields := watermill.LogFields{"queue": queue, "consumer": n}
	wait := s.t.cfg.ReconnectMin
	for lost := 0; ; lost++ {
		conn := s.t.subConn.wait(ctx)
		if conn == nil {
			return
		}
		if lost > 0 {
			s.t.logger.Info("amqp: consuming again", fields)
		}
		consumed, err := s.session(ctx, conn, queue, out)
		if s.stopping(ctx) {
			return
		}
		if consumed {
			// The back-off is for a queue that refuses the consumer, not for the outages a
			// consumer lived through: after one, it consumes again as soon as the connection is
			// back.
			wait = s.t.cfg.ReconnectMin
		}
		if conn.IsClosed() {
			// The connection went (its node died, RabbitMQ restarted), whether before or after
			// the server accepted the consumer: subConn.wait blocks until it is dialled again, to
			// this node or another of the cluster, with the dial's own back-off, so this loop
			// cannot spin, and a pause would only add to the outage (ReconnectMin/2 to
			// ReconnectMin; up to ReconnectMax for a consumer that lost its connection while
			// opening its channel). A channel lost on a live connection (the server refused or
			// cancelled the consumer) still pauses.
			s.t.logger.Error("amqp: consumer lost with its connection, consuming again once it is back", err, fields)
			continue
		}
		s.t.logger.Error("amqp: consumer lost, consuming again after a pause", err, fields)
		sleep := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		select {
		case <-ctx.Done():
			return
		case <-s.t.closing:
			return
		case <-time.After(sleep):
		}
		if wait *= 2; wait > s.t.cfg.ReconnectMax {
			wait = s.t.cfg.ReconnectMax
		}
	}
}

func (s *subscriber) stopping(ctx context.Context) bool {
	select {
	case <-s.t.closing:
		return true
	default:
		return ctx.Err() != nil
	}
}

// session consumes queue on a new channel of conn until the channel's deliveries end, ctx ends
// or the transport closes. It reports whether it consumed (the server accepted the consumer).
func (s *subscriber) session(ctx context.Context, conn *amqp091.Connection, queue string, out chan<- *message.Message) (consumed bool, err error) {
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	defer func() { _ = ch.Close() }() // its unacknowledged messages go back to the queue
	if err := ch.Qos(s.t.cfg.Prefetch, 0, false); err != nil {
		return false, fmt.Errorf("qos: %w", err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("consume %s: %w", queue, err)
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return true, errors.New("deliveries ended: the channel or connection closed, or the server cancelled the consumer")
			}
			if !s.handOver(ctx, d, out) {
				return true, nil
			}
		case <-ctx.Done():
			return true, nil
		case <-s.t.closing:
			return true, nil
		}
	}
}

// handOver gives one delivery to the handler and settles it as the handler says: Ack acks,
// Nack requeues as a failed delivery. It reports false when the subscription stops before the
// handler took it.
//
// A failure is returned with basic.reject and a message merely given back (the subscription
// ending) with basic.nack: RabbitMQ 4.3 counts only the former toward a quorum queue's delivery
// limit, so with nack a poison message would loop there for ever, and with reject a broker
// restarted 20 times would dead-letter messages nothing was wrong with. Earlier versions count
// both.
func (s *subscriber) handOver(ctx context.Context, d amqp091.Delivery, out chan<- *message.Message) bool {
	msg, err := s.t.marshaler.Unmarshal(d)
	if err != nil {
		// It cannot become a message, now or on redelivery: reject it to the dead-letter queue.
		s.t.logger.Error("amqp: undecodable delivery rejected", err, watermill.LogFields{"message_id": d.MessageId})
		_ = d.Reject(false)
		return true
	}
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(msgCtx)
	select {
	case out <- msg:
	case <-ctx.Done():
		_ = d.Nack(false, true)
		return false
	case <-s.t.closing:
		_ = d.Nack(false, true)
		return false
	}
	// The handler has it: wait for its verdict even if the subscription is ending (a router
	// that closes lets its handlers finish), unless the transport closes.
	select {
	case <-msg.Acked():
		if err := d.Ack(false); err != nil {
			// The channel is gone: RabbitMQ delivers the message again, and the routing
			// handlers recognise the copy.
			s.t.logger.Info("amqp: ack lost with the channel; the message will be delivered again",
				watermill.LogFields{"message_id": d.MessageId, "error": err.Error()})
		}
	case <-msg.Nacked():
		// Held a moment before it is given back, longer each time: given back at once, a
		// delivery that failed for a passing reason (a store busy while the broker starts, a
		// source restarting) came straight back, failed again within milliseconds, and reached
		// the queue's delivery limit before the reason passed. The pause keeps this consumer's
		// slot, which slows a failing queue rather than spinning on it.
		t := time.NewTimer(failedBackoff(d.Headers[MetaDeliveryCount]))
		defer t.Stop()
		select {
		case <-t.C:
			_ = d.Reject(true)
		case <-s.t.closing:
			_ = d.Nack(false, true)
			return false
		}
	case <-s.t.closing:
		_ = d.Nack(false, true)
		return false
	}
	return true
}

// Pause before a failed delivery is given back: failedBackoffMin after its first delivery,
// doubling with each redelivery RabbitMQ counted, up to failedBackoffMax. With the default
// delivery limit of 5, a delivery that keeps failing is dead-lettered after about 8 s.
const (
	failedBackoffMin = 250 * time.Millisecond
	failedBackoffMax = 5 * time.Second
)

// failedBackoff is the pause before a failed delivery whose x-delivery-count header is count
// (absent on a first delivery) is given back.
func failedBackoff(count any) time.Duration {
	// The header's integer type is the server's choice (RabbitMQ 3.10 sends a small count as
	// a byte); its decimal form is the same whatever it is.
	n, _ := strconv.ParseInt(fmt.Sprint(count), 10, 64)
	wait := failedBackoffMin
	for i := int64(0); i < n && wait < failedBackoffMax; i++ {
		wait *= 2
	}
	return min(wait, failedBackoffMax)
}

// checkQueue verifies with a passive declare that queue exists, so that a subscription to a
// queue Declare did not create fails instead of waiting forever.
func checkQueue(conn *amqp091.Connection, queue string) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("queue %s (run Declare first): %w", queue, err) // the server closed the channel
	}
	_ = ch.Close()
	return nil
}
