package amqp

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

// TestDeadLettersListAndReplay: a message rejected until its delivery limit ends in the
// dead-letter queue with the queue it died in; listing leaves it there; replaying sends it back
// to that queue, confirmed, and removes it from the dead-letter queue. A service message the
// broker authenticated, dead longer than its validity, goes back with a fresh authenticator its
// adapter accepts; an unauthenticated one goes back as it was.
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
	// A request the broker made two hours ago, which its adapter gave up on.
	expiredBody := []byte(`{"requestId":"old","service":7}`)
	expiredMeta := map[string]string{schemas.MetaRequestID: "old", schemas.MetaService: "7", schemas.MetaReplyTo: "sio.reply.b"}
	if err := msgauthtest.Broker().SignRequest(msgauthtest.Adapter, expiredMeta, expiredBody, time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	headers := amqp091.Table{}
	for k, v := range expiredMeta {
		headers[k] = v
	}
	if err := ch.PublishWithContext(ctx, "", queue, true, false, amqp091.Publishing{
		MessageId: "expired-1", DeliveryMode: amqp091.Persistent, Headers: headers, Body: expiredBody,
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
		if len(letters) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(letters) != 2 || letters[0].Queue != queue || letters[1].Queue != queue || letters[0].Reason == "" {
		t.Fatalf("dead letters %+v, want poison-1 and expired-1 from %s with a reason", letters, queue)
	}
	if again, err := ListDeadLetters(ctx, cfg, 10); err != nil || len(again) != 2 {
		t.Fatalf("listing consumed the dead letters: %+v, %v", again, err)
	}

	renewer := func(meta map[string]string, body []byte) (bool, error) {
		return msgauthtest.Broker().Renew(meta, body, time.Now())
	}
	res, err := ReplayDeadLetters(ctx, cfg, 10, renewer)
	if err != nil || res.Replayed != 2 || res.Renewed != 1 || len(res.NotRenewed) != 0 {
		t.Fatalf("replayed %+v, %v; want 2, one renewed", res, err)
	}
	if left, err := ListDeadLetters(ctx, cfg, 10); err != nil || len(left) != 0 {
		t.Fatalf("after replay the dead-letter queue holds %+v, %v", left, err)
	}
	keys := msgauthtest.AdapterKeys(msgauthtest.Adapter)
	for range 2 {
		d, ok, err := ch.Get(queue, true)
		if err != nil || !ok {
			t.Fatalf("replayed message on %s: %v %v", queue, ok, err)
		}
		switch d.MessageId {
		case "poison-1":
			if string(d.Body) != `{"requestId":"r"}` || d.Headers[schemas.MetaAuthMAC] != nil {
				t.Errorf("the unauthenticated letter came back changed: %v %s", d.Headers, d.Body)
			}
		case "expired-1":
			meta := map[string]string{}
			for k, v := range d.Headers {
				if s, ok := v.(string); ok {
					meta[k] = s
				}
			}
			if _, err := keys.CheckRequest(meta, d.Body, time.Now()); err != nil {
				t.Errorf("the renewed request is refused by its adapter: %v", err)
			}
		default:
			t.Errorf("unexpected message %q", d.MessageId)
		}
	}
}
