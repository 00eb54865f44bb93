package amqp

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/rabbitnode"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
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

// TestLateCopyWaitsForThePublisher: the false dead letter of the fault test (issue 15). After a
// RabbitMQ restart an adapter's consuming connection can be back before its publishing one. A
// request that waited through the outage is past its deadline; the adapter answered it by
// failing the delivery at the first refused publish, RabbitMQ handed the request straight back,
// and within a second the failures passed the queue's delivery limit and dead-lettered a
// request nothing was wrong with. Here the adapter's publishing connection is closed and kept
// away (a connection limit on the user) while its consumer takes a request past its deadline:
// the adapter holds the request until it can publish, the answer goes out once the connection
// is back, and nothing is dead-lettered.
func TestLateCopyWaitsForThePublisher(t *testing.T) {
	node := rabbitnode.Start(t)
	const service = 1
	cfg := privateConfig(node, []int{service})
	cfg.DeliveryLimit = 2
	if err := Declare(ctxFor(t, 30*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	bcfg := cfg
	bcfg.Instance = "broker-late"
	broker := newBroker(t, bcfg, "broker-late")
	// The broker's reply handler does not run: the answer is looked for on its reply queue.
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: broker.Publisher(), ReplyTopic: broker.ReplyTopic()})

	// No adapter yet: the request times out and waits on the queue, its deadline passed.
	out := d.Dispatch(ctxFor(t, 30*time.Second), []schemas.ServiceRequest{{RequestID: "late-1", Service: service,
		Subject: siobroker.Subject{IIN: "750312300458"}}}, func(int) time.Duration { return 100 * time.Millisecond })
	if len(out) != 1 || out[0].Result.Status == siobroker.StatusOK {
		t.Fatalf("answered with no adapter: %+v", out)
	}

	tr := newTransport(t, cfg)
	pub := tr.pubConn.get()
	if pub == nil {
		t.Fatal("the adapter's publishing connection is not up")
	}
	// Keep the publishing connection away: no new connection for guest beyond those open now,
	// less the one closed below.
	open := connectionsOf(t, node, "guest")
	if _, err := node.Ctl("set_user_limits", "guest", fmt.Sprintf(`{"max-connections": %d}`, len(open)-1)); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(pub.LocalAddr().(*net.TCPAddr).Port)
	if _, err := node.Ctl("close_connection", open[port], "test: the publishing connection lost"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return errors.Is(tr.Ready(), ErrNotConnected) }, "the adapter transport not ready")

	c := newCounter()
	rt := newAdapterRuntime(t, routing.AdapterConfig{Name: "a-late", Backends: map[int]adapters.Backend{service: c.backend("a-late", service)},
		Publisher: tr.Publisher(), DeadLetters: tr.DeadLetterTopic()})
	runRouter(t, func(r *message.Router) { rt.AddHandlers(r, tr.Subscriber()) })
	waitFor(t, 10*time.Second, func() bool { return c.times("late-1/1") > 0 }, "the adapter to take the request")
	time.Sleep(2 * time.Second) // the publishing connection stays away; a failing delivery loops meanwhile

	if _, err := node.Ctl("clear_user_limits", "guest", "max-connections"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { return tr.Ready() == nil }, "the adapter transport ready again")
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	depth := func(queue string) int {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages
	}
	var letters []DeadLetter
	waitFor(t, 30*time.Second, func() bool {
		if letters, err = ListDeadLetters(ctxFor(t, 30*time.Second), cfg, 100); err != nil {
			t.Fatal(err)
		}
		return len(letters) > 0 || depth(bcfg.replyQueue()) == 1
	}, "the answer on the broker's reply queue")
	for _, dl := range letters {
		t.Fatalf("dead-lettered (%s, %d times, from %s): %s; the adapter asked its source %d times", dl.Reason, dl.Count, dl.Queue, dl.MessageID, c.times("late-1/1"))
	}
	waitFor(t, 30*time.Second, func() bool { return depth(cfg.name(schemas.ServiceTopic(service))) == 0 }, "the request acknowledged")
}

// times reports how often the backend was asked key (request/service).
func (c *counter) times(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKey[key]
}

// connectionsOf returns the node's connections of user, by their client's port: the connection's
// process id, which close_connection takes.
func connectionsOf(t *testing.T, node *rabbitnode.Node, user string) map[string]string {
	t.Helper()
	out, err := node.Ctl("list_connections", "--quiet", "--no-table-headers", "user", "peer_port", "pid")
	if err != nil {
		t.Fatal(err)
	}
	conns := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == user {
			conns[f[1]] = f[2]
		}
	}
	return conns
}
