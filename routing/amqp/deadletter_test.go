package amqp

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker/schemas"
)

// TestDeadLettersListAndReplay: a message rejected until its delivery limit ends in the
// dead-letter queue with the queue it died in; listing leaves it there; replaying sends it back
// to that queue, confirmed, and removes it from the dead-letter queue.
func TestDeadLettersListAndReplay(t *testing.T) {
	cfg := testConfig(t, []int{7}, nil)
	cfg.DeliveryLimit = 1
	ctx := ctxFor(t, 30*time.Second)
	if err := Declare(ctx, cfg); err != nil {
		t.Fatal(err)
	}
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
	queue := cfg.name(schemas.ServiceTopic(7))
	if err := ch.PublishWithContext(ctx, "", queue, true, false, amqp091.Publishing{
		MessageId: "poison-1", DeliveryMode: amqp091.Persistent, Body: []byte(`{"requestId":"r"}`),
	}); err != nil {
		t.Fatal(err)
	}
	// Reject it until RabbitMQ dead-letters it (delivery limit 1: the second return kills it). A
	// requeued message may not be visible to the very next Get, so poll the dead-letter queue.
	deadline := time.Now().Add(15 * time.Second)
	var letters []DeadLetter
	for time.Now().Before(deadline) {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			_ = ch.Nack(d.DeliveryTag, false, true)
		}
		if letters, err = ListDeadLetters(ctx, cfg, 10); err != nil {
			t.Fatal(err)
		}
		if len(letters) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(letters) != 1 || letters[0].MessageID != "poison-1" || letters[0].Queue != queue || letters[0].Reason == "" {
		t.Fatalf("dead letters %+v, want poison-1 from %s with a reason", letters, queue)
	}
	if again, err := ListDeadLetters(ctx, cfg, 10); err != nil || len(again) != 1 {
		t.Fatalf("listing consumed the dead letters: %+v, %v", again, err)
	}

	n, err := ReplayDeadLetters(ctx, cfg, 10)
	if err != nil || n != 1 {
		t.Fatalf("replayed %d, %v; want 1", n, err)
	}
	if left, err := ListDeadLetters(ctx, cfg, 10); err != nil || len(left) != 0 {
		t.Fatalf("after replay the dead-letter queue holds %+v, %v", left, err)
	}
	d, ok, err := ch.Get(queue, true)
	if err != nil || !ok || d.MessageId != "poison-1" || string(d.Body) != `{"requestId":"r"}` {
		t.Fatalf("replayed message on %s: %v %v %+v", queue, ok, err, d.MessageId)
	}
}
