package amqp

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// TestPoisonMessageEndsInDeadLetterQueue: a message that always fails (its answer can never be
// delivered: the reply queue it names does not exist) is redelivered up to the delivery limit and
// then dead-lettered with its reason, while the good messages behind it are answered.
func TestPoisonMessageEndsInDeadLetterQueue(t *testing.T) {
	const service = 11
	cfg := testConfig(t, []int{service}, nil)
	cfg.DeliveryLimit = 2
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	d := startBroker(t, cfg, "broker-poison")
	startAdapter(t, cfg, "adapter", []int{service}, newCounter())

	// The poison: a well-formed request whose reply topic belongs to no broker.
	pub := newTransport(t, cfg).Publisher()
	payload, err := json.Marshal(schemas.ServiceRequest{RequestID: "poison", Service: service,
		Subject: siobroker.Subject{IIN: "750312300458"}, ReplyTo: "sio.reply.gone", Deadline: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(schemas.ServiceTopic(service), message.NewMessage("poison/11", payload)); err != nil {
		t.Fatal(err)
	}

	// Good requests behind it are answered: the poison does not block the queue.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		out := d.Dispatch(ctx, []schemas.ServiceRequest{{RequestID: "good-" + string(rune('a'+i)), Service: service,
			Subject: siobroker.Subject{IIN: "750312300458"}}}, func(int) time.Duration { return 10 * time.Second })
		if out[0].Result.Status != siobroker.StatusOK {
			t.Fatalf("good request %d: %+v", i, out[0].Result)
		}
	}

	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		letters, err := ListDeadLetters(ctx, cfg, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(letters) == 1 {
			if letters[0].MessageID != "poison/11" || letters[0].Queue != cfg.name(schemas.ServiceTopic(service)) || letters[0].Reason == "" {
				t.Fatalf("dead letter %+v", letters[0])
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the poison message never reached the dead-letter queue")
}
