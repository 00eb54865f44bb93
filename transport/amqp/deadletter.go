package amqp

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// DeadLetter is a message in the dead-letter queue, with why it is there.
type DeadLetter struct {
	MessageID   string
	Queue       string // the queue it died in (x-death), where Replay sends it back
	Reason      string // rejected, expired, delivery_limit, ...
	Count       int64  // how many times it died in that queue
	DiedAt      time.Time
	PayloadSize int
}

// ListDeadLetters returns up to max messages of the dead-letter queue without removing them:
// each is fetched and put back, so the list is a look, not a consumption.
func ListDeadLetters(ctx context.Context, cfg Config, max int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := withDLQ(ctx, cfg, max, func(ch *amqp091.Channel, d amqp091.Delivery) (bool, error) {
		out = append(out, deadLetterOf(d))
		return false, nil
	})
	return out, err
}

// ReplayDeadLetters sends up to max dead letters back to the queue they died in, each
// published persistent with a confirm before it is removed from the dead-letter queue, and
// returns how many were replayed. A letter whose queue is unknown stays where it is.
func ReplayDeadLetters(ctx context.Context, cfg Config, max int) (int, error) {
	replayed := 0
	err := withDLQ(ctx, cfg, max, func(ch *amqp091.Channel, d amqp091.Delivery) (bool, error) {
		dl := deadLetterOf(d)
		if dl.Queue == "" {
			return false, nil
		}
		headers := amqp091.Table{}
		for k, v := range d.Headers {
			if k != "x-death" && k != "x-first-death-queue" && k != "x-first-death-reason" && k != "x-first-death-exchange" &&
				k != "x-last-death-queue" && k != "x-last-death-reason" && k != "x-last-death-exchange" {
				headers[k] = v
			}
		}
		conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", dl.Queue, true, false, amqp091.Publishing{
			Headers: headers, ContentType: d.ContentType, DeliveryMode: amqp091.Persistent,
			MessageId: d.MessageId, Body: d.Body,
		})
		if err != nil {
			return false, fmt.Errorf("replay %s to %s: %w", d.MessageId, dl.Queue, err)
		}
		ok, err := conf.WaitContext(ctx)
		if err != nil || !ok {
			return false, fmt.Errorf("replay %s to %s: %w", d.MessageId, dl.Queue, errors.Join(err, ErrNotConfirmed))
		}
		replayed++
		return true, nil
	})
	return replayed, err
}

// withDLQ fetches up to max messages of the dead-letter queue one by one and calls f; f says
// whether to remove the message (ack) or put it back (nack with requeue). The messages put back
// are only nacked after the walk, so that the same message is not fetched twice.
func withDLQ(ctx context.Context, cfg Config, max int, f func(*amqp091.Channel, amqp091.Delivery) (bool, error)) error {
	cfg.setDefaults()
	conn, err := amqp091.DialConfig(cfg.URL, amqp091.Config{Dial: amqp091.DefaultDial(10 * time.Second)})
	if err != nil {
		return fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("confirm mode: %w", err)
	}
	var keep []uint64
	defer func() {
		for _, tag := range keep {
			_ = ch.Nack(tag, false, true)
		}
	}()
	for range max {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, ok, err := ch.Get(cfg.name(cfg.DeadLetterQueue), false)
		if err != nil {
			return fmt.Errorf("read the dead-letter queue %s: %w", cfg.name(cfg.DeadLetterQueue), err)
		}
		if !ok {
			return nil
		}
		remove, err := f(ch, d)
		if err != nil {
			keep = append(keep, d.DeliveryTag)
			return err
		}
		if remove {
			if err := ch.Ack(d.DeliveryTag, false); err != nil {
				return fmt.Errorf("remove %s from the dead-letter queue: %w", d.MessageId, err)
			}
		} else {
			keep = append(keep, d.DeliveryTag)
		}
	}
	return nil
}

func deadLetterOf(d amqp091.Delivery) DeadLetter {
	dl := DeadLetter{MessageID: d.MessageId, PayloadSize: len(d.Body)}
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if first, ok := deaths[0].(amqp091.Table); ok {
			dl.Queue, _ = first["queue"].(string)
			dl.Reason, _ = first["reason"].(string)
			dl.Count, _ = first["count"].(int64)
			dl.DiedAt, _ = first["time"].(time.Time)
		}
	}
	return dl
}
