package amqp

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/rabbitnode"
	"github.com/sio-pso/siobroker/routing"
)

// TestNoFalseDeadLettersAcrossRestarts: RabbitMQ 3 counts every return of a message toward a
// quorum queue's delivery limit, a lost channel's too, and dead-letters it (delivery_limit) at
// the return that passes the limit, which after a restart is the moment the node recovers. A
// load with a backlog runs while the node is stopped and killed three times, with a delivery limit
// of 2: more outages than the limit allows a message to live through in a consumer's hands.
// Every request is answered, and nothing is dead-lettered: a message is dead-lettered only when
// it failed, never for having waited in a consumer's prefetch, or in its handler, while RabbitMQ
// went away.
func TestNoFalseDeadLettersAcrossRestarts(t *testing.T) {
	node := rabbitnode.Start(t)
	services := []int{1}
	cfg := privateConfig(node, services)
	cfg.DeliveryLimit = 2
	cfg.Concurrency = 2
	if err := Declare(ctxFor(t, 30*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	c := newCounter()
	var all []*Transport
	for _, name := range []string{"a1", "a2"} {
		tr := newTransport(t, cfg)
		all = append(all, tr)
		rt := newAdapterRuntime(t, routing.AdapterConfig{Name: name, Backends: map[int]adapters.Backend{1: c.backend(name, 1)},
			Publisher: tr.Publisher(), DeadLetters: tr.DeadLetterTopic()})
		runRouter(t, func(r *message.Router) { rt.AddHandlers(r, tr.Subscriber()) })
	}
	bcfg := cfg
	bcfg.Instance = "broker-falsedead"
	broker, err := NewBrokerTransport(ctxFor(t, 30*time.Second), bcfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	all = append(all, broker)
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: broker.Publisher(), ReplyTopic: broker.ReplyTopic()})
	runRouter(t, func(r *message.Router) { d.AddHandlers(r, broker.Subscriber()) })

	// More requests at once than the adapters' four handlers take: a backlog waits on the queue,
	// where a consumer may prefetch it.
	l := &load{t: t, d: d, services: services}
	stop := make(chan struct{})
	wait := l.run(24, stop)
	l.waitAnswered(t, 50, 30*time.Second, "the load to run")
	for i, outage := range []func(){node.Stop, node.Kill, node.Kill} {
		outage()
		for j, tr := range all {
			waitFor(t, 10*time.Second, func() bool { return errors.Is(tr.Ready(), ErrNotConnected) },
				fmt.Sprintf("transport %d not ready in outage %d", j, i))
		}
		node.Start()
		for j, tr := range all {
			waitFor(t, 30*time.Second, func() bool { return tr.Ready() == nil }, fmt.Sprintf("transport %d ready after outage %d", j, i))
		}
		l.waitAnswered(t, 50, 90*time.Second, fmt.Sprintf("requests answered after outage %d", i))
	}
	close(stop)
	wait()
	l.check("load across three outages")

	letters, err := ListDeadLetters(ctxFor(t, 30*time.Second), cfg, 1000)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, dl := range letters {
		t.Errorf("dead-lettered (%s, %d times, from %s): %s; the adapters answered it %d times",
			dl.Reason, dl.Count, dl.Queue, dl.MessageID, c.byKey[dl.MessageID])
	}
	t.Logf("%d requests; work per adapter %v", l.started.Load(), c.byAdapt)
}
