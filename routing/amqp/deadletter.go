package amqp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker/schemas"
)

// DeadLetter is a message in the dead-letter queue, with why it is there. Two kinds arrive: those
// RabbitMQ dead-lettered (a queue's delivery limit, a rejection), described by its x-death
// header, and those an adapter gave up on after its attempts (routing.AdapterConfig.DeadLetters),
// described by the schemas.MetaDead* headers it set.
type DeadLetter struct {
	MessageID   string
	Queue       string // the queue it died in, where Replay sends it back
	Reason      string // delivery_limit, rejected, expired, ... or the adapter's reason (schemas.DeadReason.String)
	Count       int64  // how many times it died in that queue
	Attempts    int    // how often the adapter asked the source, for a letter an adapter gave up on
	DiedAt      time.Time
	PayloadSize int
}

// ListDeadLetters returns up to max messages of the dead-letter queue without removing them:
// each is fetched and put back, so the list is a look, not a consumption.
func ListDeadLetters(ctx context.Context, cfg Config, max int) ([]DeadLetter, error) {
	var out []DeadLetter
	cfg.setDefaults()
	err := withDLQ(ctx, cfg, max, func(ch *amqp091.Channel, d amqp091.Delivery) (bool, error) {
		out = append(out, deadLetterOf(cfg, d))
		return false, nil
	})
	return out, err
}

// Renewer gives a dead letter that the broker authenticated (its string headers meta, its body)
// a fresh authenticator before it is sent back, changing meta in place (msgauth.Broker.Renew): an
// adapter refuses a service message past its expiry, and a letter may wait in the dead-letter
// queue longer than that. It reports whether it renewed the letter; a letter it does not renew
// is sent back as it is.
type Renewer func(meta map[string]string, body []byte) (renewed bool, err error)

// ReplayResult counts what ReplayDeadLetters did.
type ReplayResult struct {
	Replayed int // sent back to the queue they died in
	Renewed  int // of those, given a fresh authenticator by the Renewer
	// NotRenewed are those the Renewer refused (forged, altered, or of another master key), by
	// why: sent back as they were, they are refused where they arrive and die again.
	NotRenewed map[string]int
}

// ReplayDeadLetters sends up to max dead letters back to the queue they died in, each
// published persistent with a confirm before it is removed from the dead-letter queue, and
// returns how many were replayed. A letter whose queue is unknown stays where it is. With renew,
// each letter's authenticator is renewed first (see Renewer).
func ReplayDeadLetters(ctx context.Context, cfg Config, max int, renew Renewer) (ReplayResult, error) {
	res := ReplayResult{NotRenewed: map[string]int{}}
	cfg.setDefaults()
	err := withDLQ(ctx, cfg, max, func(ch *amqp091.Channel, d amqp091.Delivery) (bool, error) {
		dl := deadLetterOf(cfg, d)
		if dl.Queue == "" {
			return false, nil
		}
		headers := amqp091.Table{}
		for k, v := range d.Headers {
			if !deathHeader(k) {
				headers[k] = v
			}
		}
		renewed := false
		if renew != nil {
			meta := map[string]string{}
			for k, v := range headers {
				if s, ok := v.(string); ok {
					meta[k] = s
				}
			}
			ok, err := renew(meta, d.Body)
			switch {
			case ok:
				for k, v := range meta {
					headers[k] = v
				}
				renewed = true
			case err != nil:
				res.NotRenewed[renewReason(err)]++
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
		res.Replayed++
		if renewed {
			res.Renewed++
		}
		return true, nil
	})
	return res, err
}

// renewReason is the short reason of a Renewer's refusal, for the count: its Reason when it has
// one (a msgauth.Error), else its text.
func renewReason(err error) string {
	var r interface{ AuthReason() string }
	if errors.As(err, &r) {
		return r.AuthReason()
	}
	return err.Error()
}

// withDLQ fetches up to max messages of the dead-letter queue one by one and calls f; f says
// whether to remove the message (ack) or put it back (nack with requeue). The messages put back
// are only nacked after the walk, so that the same message is not fetched twice.
func withDLQ(ctx context.Context, cfg Config, max int, f func(*amqp091.Channel, amqp091.Delivery) (bool, error)) error {
	cfg.setDefaults()
	conn, err := Dial(cfg.URL)
	if err != nil {
		return err
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

// deathHeader reports whether header k describes a death (RabbitMQ's or an adapter's), or a
// delivery count: a replayed message starts afresh without them.
func deathHeader(k string) bool {
	switch k {
	case "x-death", "x-first-death-queue", "x-first-death-reason", "x-first-death-exchange",
		"x-last-death-queue", "x-last-death-reason", "x-last-death-exchange", MetaDeliveryCount,
		schemas.MetaDeadReason, schemas.MetaDeadTopic, schemas.MetaDeadAttempts, schemas.MetaDeadAt:
		return true
	}
	return false
}

// unrecognisedReason is shown for a reason header that is not a schemas.DeadReason: one an
// earlier version wrote, which may quote a source's error and with it a person's name or IIN, or
// one set by whoever else published to the queue. Its text is never shown.
const unrecognisedReason = "a reason not in the broker's vocabulary (an earlier version's, or not an adapter's): not shown, as it may quote a source"

func deadLetterOf(cfg Config, d amqp091.Delivery) DeadLetter {
	dl := DeadLetter{MessageID: d.MessageId, PayloadSize: len(d.Body)}
	if header, ok := d.Headers[schemas.MetaDeadReason].(string); ok {
		// Put here by an adapter that gave up; RabbitMQ never dead-lettered it.
		dl.Reason = unrecognisedReason
		if reason, ok := schemas.ParseDeadReason(header); ok {
			dl.Reason = reason.String()
		}
		if topic, ok := d.Headers[schemas.MetaDeadTopic].(string); ok && topic != "" {
			dl.Queue = cfg.name(topic)
		}
		dl.Count = 1
		if n, ok := d.Headers[schemas.MetaDeadAttempts].(string); ok {
			dl.Attempts, _ = strconv.Atoi(n)
		}
		if at, ok := d.Headers[schemas.MetaDeadAt].(string); ok {
			dl.DiedAt, _ = time.Parse(time.RFC3339, at)
		}
		return dl
	}
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
