package amqp

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/routing"
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
	if err := pub.Publish(schemas.ServiceTopic(service), brokerMade(t, "poison/11", payload)); err != nil {
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

// TestPoisonOnServiceQueueDeadLetteredWithReason: garbage on a service queue, and a request that
// names no reply topic, cannot be answered (both authenticated, as a broker of another version
// could make them: see permissions_test.go for unauthenticated ones); the adapter puts each in the dead-letter queue with
// why, once (never silently away), and answers the good request behind them.
func TestPoisonOnServiceQueueDeadLetteredWithReason(t *testing.T) {
	const service = 12
	cfg := testConfig(t, []int{service}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	d := startBroker(t, cfg, "broker-garbage")
	counts := newCounter()
	adapterTr := newTransport(t, cfg)
	rt := newAdapterRuntime(t, routing.AdapterConfig{Name: "poisoned", Backends: map[int]adapters.Backend{
		service: counts.backend("poisoned", service)}, Publisher: adapterTr.Publisher(), DeadLetters: adapterTr.DeadLetterTopic()})
	runRouter(t, func(r *message.Router) { rt.AddHandlers(r, adapterTr.Subscriber()) })

	pub := newTransport(t, cfg).Publisher()
	if err := pub.Publish(schemas.ServiceTopic(service), brokerMade(t, "garbage-1", []byte("\x00not a request"))); err != nil {
		t.Fatal(err)
	}
	noReply, err := json.Marshal(schemas.ServiceRequest{RequestID: "noreply", MessageID: "m-noreply", Service: service,
		Subject: siobroker.Subject{IIN: "750312300458"}, Deadline: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(schemas.ServiceTopic(service), brokerMade(t, "noreply/12", noReply)); err != nil {
		t.Fatal(err)
	}
	out := d.Dispatch(ctxFor(t, 20*time.Second), []schemas.ServiceRequest{{RequestID: "good", Service: service,
		Subject: siobroker.Subject{IIN: "750312300458"}}}, func(int) time.Duration { return 10 * time.Second })
	if out[0].Result.Status != siobroker.StatusOK {
		t.Fatalf("good request behind the poison: %+v", out[0].Result)
	}

	ctx := ctxFor(t, 30*time.Second)
	byID := map[string]DeadLetter{}
	waitFor(t, 15*time.Second, func() bool {
		letters, err := ListDeadLetters(ctx, cfg, 10)
		if err != nil {
			t.Fatal(err)
		}
		clear(byID)
		for _, l := range letters {
			byID[l.MessageID] = l
		}
		return len(letters) >= 2
	}, "both poison messages in the dead-letter queue")
	queue := cfg.name(schemas.ServiceTopic(service))
	for id, want := range map[string]string{
		"garbage-1":  "the message is not a service request (adapter poisoned); last error: not valid JSON",
		"noreply/12": "the service request names no reply topic",
	} {
		l, ok := byID[id]
		if !ok || l.Queue != queue || !strings.Contains(l.Reason, want) || !strings.Contains(l.Reason, "adapter poisoned") || l.DiedAt.IsZero() {
			t.Errorf("dead letter %s: %+v (found %v), want queue %s and a reason with %q", id, l, ok, queue, want)
		}
	}
	if len(byID) != 2 {
		t.Errorf("dead letters %+v, want the two poison messages only", byID)
	}
	counts.mu.Lock()
	n := counts.byAdapt["poisoned"]
	counts.mu.Unlock()
	if n != 1 {
		t.Errorf("the source was asked %d times, want once (the good request)", n)
	}
}
