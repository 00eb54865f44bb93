package amqp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker/schemas"
)

// MaxDeadLettersCounted bounds how many messages of the dead-letter queue DeadLettersByService
// looks at: past it, the counts cover the first MaxDeadLettersCounted messages only.
const MaxDeadLettersCounted = 1000

// QueueDepths returns the number of messages ready in each of the queues of topics (the Prefix is
// put in front, as for publishing), read with passive declares on a channel of the publishing
// connection. A queue that does not exist is left out of the map. It returns when ctx ends, even
// if RabbitMQ does not answer.
func (t *Transport) QueueDepths(ctx context.Context, topics []string) (map[string]int64, error) {
	out := make(map[string]int64, len(topics))
	err := t.onChannel(ctx, func(open func() (*amqp091.Channel, error)) error {
		ch, err := open()
		if err != nil {
			return err
		}
		for _, topic := range topics {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			q, err := ch.QueueDeclarePassive(t.cfg.name(topic), true, false, false, false, nil)
			if err != nil {
				var amqpErr *amqp091.Error
				if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
					// The server closed the channel; the other queues need another one.
					if ch, err = open(); err != nil {
						return err
					}
					continue
				}
				return fmt.Errorf("amqp: depth of queue %s: %w", t.cfg.name(topic), err)
			}
			out[topic] = int64(q.Messages)
		}
		return nil
	})
	return out, err
}

// DeadLettersByService counts the messages of the dead-letter queue per service, by the service
// header (schemas.MetaService) they were published with; messages without one (case checks,
// answers) are not counted. It looks at no more than MaxDeadLettersCounted messages.
//
// Looking at a message means fetching it and returning it to the queue, and a quorum queue counts
// every return as a delivery: RabbitMQ 4.0 to 4.2 drop a message of a queue without its own
// x-delivery-limit after 20 (their default limit). So the queue is looked at only when its depth
// changed since the last look; while it stays the same the last counts are returned.
func (t *Transport) DeadLettersByService(ctx context.Context) (map[int]int64, error) {
	t.dlq.mu.Lock()
	defer t.dlq.mu.Unlock()
	last := t.dlq.look
	var look dlqCounts
	// f touches only look: after ctx ends it may still be running, and its result is dropped.
	err := t.onChannel(ctx, func(open func() (*amqp091.Channel, error)) error {
		ch, err := open()
		if err != nil {
			return err
		}
		name := t.cfg.name(t.cfg.DeadLetterQueue)
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("amqp: depth of the dead-letter queue %s: %w", name, err)
		}
		look = dlqCounts{known: true, depth: int64(q.Messages), counts: map[int]int64{}}
		if look.depth == 0 {
			return nil
		}
		if last.known && look.depth == last.depth {
			look.counts = last.counts
			return nil
		}
		// Fetched without ack: when onChannel closes the channel, every message returns to the queue.
		want, seen := min(look.depth, MaxDeadLettersCounted), int64(0)
		var lastTag uint64
		defer func() {
			if lastTag == 0 {
				return
			}
			// Put them back now and wait until the queue shows them again: a look that came
			// right after this one would otherwise find them still in flight, and count none.
			if err := ch.Nack(lastTag, true, true); err != nil {
				return
			}
			for range 50 {
				q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
				if err != nil || int64(q.Messages) >= seen {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		for range want {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, ok, err := ch.Get(name, false)
			if err != nil {
				return fmt.Errorf("amqp: read the dead-letter queue %s: %w", name, err)
			}
			if !ok {
				break
			}
			seen++
			lastTag = d.DeliveryTag
			if service, ok := serviceHeader(d.Headers); ok {
				look.counts[service]++
			}
		}
		// Messages held by another consumer were not seen: look again next time.
		look.known = seen == want
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.dlq.look = look
	out := make(map[int]int64, len(look.counts))
	for k, v := range look.counts {
		out[k] = v
	}
	return out, nil
}

// dlqLook is what DeadLettersByService saw at its last look at the dead-letter queue.
type dlqLook struct {
	mu   sync.Mutex // one look at a time
	look dlqCounts
}

type dlqCounts struct {
	known  bool
	depth  int64
	counts map[int]int64 // never changed once made
}

func serviceHeader(h amqp091.Table) (int, bool) {
	s, ok := headerString(h[schemas.MetaService])
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// onChannel runs f, which opens channels on the publishing connection through open, and returns
// when f does or ctx ends; then every channel f opened is closed, which also ends a call that
// RabbitMQ does not answer.
func (t *Transport) onChannel(ctx context.Context, f func(open func() (*amqp091.Channel, error)) error) error {
	if t.closed.Load() {
		return ErrClosed
	}
	conn := t.pubConn.get()
	if conn == nil || conn.IsClosed() {
		return ErrNotConnected
	}
	var mu sync.Mutex
	var opened []*amqp091.Channel
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range opened {
			_ = ch.Close()
		}
		opened = nil
	}
	open := func() (*amqp091.Channel, error) {
		ch, err := conn.Channel()
		if err != nil {
			return nil, fmt.Errorf("amqp: open channel: %w", err)
		}
		mu.Lock()
		opened = append(opened, ch)
		mu.Unlock()
		return ch, nil
	}
	done := make(chan error, 1)
	go func() { done <- f(open) }()
	select {
	case err := <-done:
		closeAll()
		return err
	case <-ctx.Done():
		closeAll()
		return fmt.Errorf("amqp: %w", ctx.Err())
	}
}
