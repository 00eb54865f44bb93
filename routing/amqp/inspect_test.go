package amqp

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker/schemas"
)

// TestQueueDepthsAndDeadLetters: the depths of the service queues are read with passive
// declares (a missing queue is left out), the dead letters are counted by their service header
// and stay in the queue, and the queue is looked at again only when its depth changes (each look
// counts as a delivery of every message on a quorum queue).
func TestQueueDepthsAndDeadLetters(t *testing.T) {
	cfg := testConfig(t, []int{3, 4}, nil)
	cfg.setDefaults()
	ctx := ctxFor(t, 60*time.Second)
	if err := Declare(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	tr := newBroker(t, cfg, "inspect")

	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish := func(queue string, headers amqp091.Table) {
		t.Helper()
		conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
			amqp091.Publishing{Headers: headers, DeliveryMode: amqp091.Persistent, Body: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := conf.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish to %s not confirmed: %v", queue, err)
		}
	}
	s3, s4 := schemas.ServiceTopic(3), schemas.ServiceTopic(4)
	publish(cfg.name(s3), amqp091.Table{schemas.MetaService: "3"})
	publish(cfg.name(s3), amqp091.Table{schemas.MetaService: "3"})

	var depths map[string]int64
	waitFor(t, 10*time.Second, func() bool {
		depths, err = tr.QueueDepths(ctx, []string{s3, "sio.service.999", s4})
		return err == nil && depths[s3] == 2
	}, "the depth of service 3's queue")
	if want := map[string]int64{s3: 2, s4: 0}; !maps.Equal(depths, want) {
		t.Fatalf("depths %v, want %v", depths, want)
	}

	dlq := cfg.name(cfg.DeadLetterQueue)
	counts, err := tr.DeadLettersByService(ctx)
	if err != nil || len(counts) != 0 {
		t.Fatalf("empty dead-letter queue: %v, %v", counts, err)
	}
	publish(dlq, amqp091.Table{schemas.MetaService: "4"})
	publish(dlq, amqp091.Table{schemas.MetaService: int32(3)}) // a number header counts too
	publish(dlq, amqp091.Table{schemas.MetaRequestID: "a case check"})
	want := map[int]int64{3: 1, 4: 1}
	waitFor(t, 10*time.Second, func() bool {
		counts, err = tr.DeadLettersByService(ctx)
		return err == nil && maps.Equal(counts, want)
	}, "the dead letters counted by service")
	for range 3 {
		if counts, err = tr.DeadLettersByService(ctx); err != nil || !maps.Equal(counts, want) {
			t.Fatalf("dead letters %v, %v; want %v", counts, err, want)
		}
	}
	// Every message is still there, looked at once: the unchanged depth spared the later looks.
	waitFor(t, 10*time.Second, func() bool {
		q, err := ch.QueueDeclarePassive(dlq, true, false, false, false, nil)
		return err == nil && q.Messages == 3
	}, "the dead letters back in their queue")
	d, ok, err := ch.Get(dlq, false)
	if err != nil || !ok {
		t.Fatalf("get a dead letter: %v %v", ok, err)
	}
	if count, _ := headerString(d.Headers[MetaDeliveryCount]); count != "" && count != "1" {
		t.Errorf("a dead letter was delivered %s times by the counting, want once", count)
	}
	_ = ch.Nack(d.DeliveryTag, false, true)

	// A new dead letter changes the depth: the queue is counted again.
	publish(dlq, amqp091.Table{schemas.MetaService: "4"})
	waitFor(t, 10*time.Second, func() bool {
		counts, err = tr.DeadLettersByService(ctx)
		return err == nil && counts[4] == 2
	}, "the new dead letter counted")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tr.QueueDepths(cancelled, []string{s3}); !errors.Is(err, context.Canceled) {
		t.Errorf("QueueDepths with an ended context: %v", err)
	}
	_ = tr.Close()
	if _, err := tr.QueueDepths(ctx, []string{s3}); !errors.Is(err, ErrClosed) {
		t.Errorf("QueueDepths after Close: %v, want ErrClosed", err)
	}
}
