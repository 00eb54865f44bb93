package amqp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
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

// quorumSettle is how long a new quorum queue is left before its node is killed (see
// TestAnswerPublishedBeforeCrashIsDelivered).
const quorumSettle = 3 * time.Second

// privateConfig is a test config on a private node (no cleanup needed: the node goes away).
func privateConfig(n *rabbitnode.Node, services []int) Config {
	return Config{
		URL:          n.URL(),
		Prefix:       "test-" + watermill.NewShortUUID() + ".",
		Services:     services,
		ReconnectMin: 100 * time.Millisecond,
		ReconnectMax: time.Second,
	}
}

// load dispatches requests from workers until stop is closed, each for every service, and
// checks that each is answered by the adapter with its own data.
type load struct {
	t        *testing.T
	d        *routing.Dispatcher
	services []int
	started  atomic.Int64
	answered atomic.Int64
	mu       sync.Mutex
	failures []string
}

func (l *load) run(workers int, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < 2000; i++ { // bounded; stop ends it long before
				select {
				case <-stop:
					return
				default:
				}
				l.one(fmt.Sprintf("w%d-%d", w, i))
			}
		})
	}
	return wg.Wait
}

func (l *load) one(reqID string) {
	l.started.Add(1)
	iin := fmt.Sprintf("%012d", l.started.Load())
	reqs := make([]schemas.ServiceRequest, 0, len(l.services))
	for _, s := range l.services {
		reqs = append(reqs, schemas.ServiceRequest{RequestID: reqID, MessageID: "msg-" + reqID, Service: s,
			Basis: siobroker.BasisCriminal, Subject: siobroker.Subject{IIN: iin}})
	}
	// Long enough to span a restart: an accepted request waits the outage out.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	outs := l.d.Dispatch(ctx, reqs, func(int) time.Duration { return 2 * time.Minute })
	ok := true
	for j, o := range outs {
		r := o.Result
		if r.Status != siobroker.StatusOK || len(r.Records) != 1 || field(r.Records[0], "request") != reqID ||
			field(r.Records[0], "service") != strconv.Itoa(l.services[j]) {
			ok = false
			l.mu.Lock()
			l.failures = append(l.failures, fmt.Sprintf("%s service %d: %+v", reqID, l.services[j], r))
			l.mu.Unlock()
		}
	}
	if ok {
		l.answered.Add(1)
	}
}

func (l *load) check(phase string) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, f := range l.failures {
		if i == 10 {
			l.t.Errorf("%s: ... and %d more", phase, len(l.failures)-10)
			break
		}
		l.t.Errorf("%s: %s", phase, f)
	}
	if s, a := l.started.Load(), l.answered.Load(); s != a || s == 0 {
		l.t.Errorf("%s: %d requests started, %d answered", phase, s, a)
	} else {
		l.t.Logf("%s: %d requests, every one answered", phase, s)
	}
}

// waitAnswered waits until the load has answered at least n more requests than it had.
func (l *load) waitAnswered(t *testing.T, n int64, within time.Duration, what string) {
	t.Helper()
	base := l.answered.Load()
	waitFor(t, within, func() bool { return l.answered.Load() >= base+n }, what)
}

// TestRabbitMQRestartDuringLoad: a broker and two adapter processes run a load on a private
// RabbitMQ node, which is stopped in order, started again, then killed and started again. The
// transports reconnect and consume again by themselves; while RabbitMQ is down they are not
// Ready (the broker refuses new requests on that); every request already dispatched is
// answered after the restart, none is lost; and the load goes on after it.
func TestRabbitMQRestartDuringLoad(t *testing.T) {
	node := rabbitnode.Start(t)
	services := []int{1, 2}
	cfg := privateConfig(node, services)
	if err := Declare(ctxFor(t, 30*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	c := newCounter()
	var adapterTransports []*Transport
	for _, name := range []string{"a1", "a2"} {
		tr := newTransport(t, cfg)
		adapterTransports = append(adapterTransports, tr)
		backends := map[int]adapters.Backend{}
		for _, s := range services {
			backends[s] = c.backend(name, s)
		}
		rt := newAdapterRuntime(t, routing.AdapterConfig{Name: name, Backends: backends, Publisher: tr.Publisher()})
		runRouter(t, func(r *message.Router) { rt.AddHandlers(r, tr.Subscriber()) })
	}
	bcfg := cfg
	bcfg.Instance = "broker-restart"
	broker, err := NewBrokerTransport(ctxFor(t, 30*time.Second), bcfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: broker.Publisher(), ReplyTopic: broker.ReplyTopic()})
	runRouter(t, func(r *message.Router) { d.AddHandlers(r, broker.Subscriber()) })
	all := append([]*Transport{broker}, adapterTransports...)

	l := &load{t: t, d: d, services: services}
	stop := make(chan struct{})
	wait := l.run(4, stop)
	l.waitAnswered(t, 20, 30*time.Second, "the load to run")

	for _, outage := range []struct {
		name string
		stop func()
	}{{"stop (SIGTERM)", node.Stop}, {"kill (SIGKILL)", node.Kill}} {
		outage.stop()
		inflight := l.started.Load() - l.answered.Load()
		for i, tr := range all {
			waitFor(t, 10*time.Second, func() bool { return errors.Is(tr.Ready(), ErrNotConnected) },
				fmt.Sprintf("transport %d not ready after %s", i, outage.name))
		}
		// A request accepted now is not lost either: its publish waits for the connection.
		time.Sleep(time.Second)
		t.Logf("%s: %d requests in flight", outage.name, inflight)
		node.Start()
		for i, tr := range all {
			waitFor(t, 30*time.Second, func() bool { return tr.Ready() == nil },
				fmt.Sprintf("transport %d ready again after %s", i, outage.name))
		}
		l.waitAnswered(t, inflight+20, 90*time.Second, "the requests in flight and new ones answered after "+outage.name)
	}
	close(stop)
	wait()
	l.check("load across two restarts")
	if n := d.Pending(); n != 0 {
		t.Errorf("%d answers still awaited", n)
	}
	c.mu.Lock()
	t.Logf("work per adapter: %v", c.byAdapt)
	c.mu.Unlock()
}

// TestAnswerPublishedBeforeCrashIsDelivered: an adapter's answer that is on the broker's reply
// queue when RabbitMQ is killed reaches the broker, which still holds the request, once
// RabbitMQ is back.
func TestAnswerPublishedBeforeCrashIsDelivered(t *testing.T) {
	node := rabbitnode.Start(t)
	const service = 3
	cfg := privateConfig(node, []int{service})
	if err := Declare(ctxFor(t, 30*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	startAdapter(t, cfg, "a1", []int{service}, newCounter())
	bcfg := cfg
	bcfg.Instance = "broker-crash"
	broker, err := NewBrokerTransport(ctxFor(t, 30*time.Second), bcfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: broker.Publisher(), ReplyTopic: broker.ReplyTopic()})

	// The broker's reply handler is not running yet: the answer stays on the reply queue.
	var out []routing.Outcome
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out = d.Dispatch(ctx, []schemas.ServiceRequest{{RequestID: "crash-1", Service: service,
			Subject: siobroker.Subject{IIN: "750312300458"}}}, func(int) time.Duration { return 90 * time.Second })
	}()
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool {
		q, err := ch.QueueDeclarePassive(bcfg.replyQueue(), true, false, false, false, nil)
		return err == nil && q.Messages == 1
	}, "the answer on the reply queue")
	_ = conn.Close()

	// RabbitMQ 3.10 loses a quorum queue killed within about a second of its creation (its Raft
	// server does not recover: the queue exists, and times out). Queues are declared long
	// before a crash in a deployment; here the reply queue is seconds old.
	time.Sleep(quorumSettle)
	node.Kill()
	node.Start()
	waitFor(t, 30*time.Second, func() bool { return broker.Ready() == nil }, "the broker transport ready again")
	runRouter(t, func(r *message.Router) { d.AddHandlers(r, broker.Subscriber()) })
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the request was not answered after the restart")
	}
	if len(out) != 1 || out[0].Result.Status != siobroker.StatusOK || field(out[0].Result.Records[0], "request") != "crash-1" {
		t.Fatalf("outcome %+v", out)
	}
}
