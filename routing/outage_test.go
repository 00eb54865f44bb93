package routing

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

// outagePublisher fails with ErrTransportUnavailable while down, then publishes to next.
type outagePublisher struct {
	next  message.Publisher
	down  atomic.Bool
	calls atomic.Int32
}

func (p *outagePublisher) Publish(topic string, msgs ...*message.Message) error {
	p.calls.Add(1)
	if p.down.Load() {
		return fmt.Errorf("amqp: not connected: %w", ErrTransportUnavailable)
	}
	return p.next.Publish(topic, msgs...)
}
func (p *outagePublisher) Close() error { return nil }

// TestDispatchWaitsOutTransportOutage: while the transport is unavailable the dispatcher
// publishes again until it is back, within the service's time limit, and the request is
// answered; an outage that outlasts the limit ends in UNAVAILABLE at the limit.
func TestDispatchWaitsOutTransportOutage(t *testing.T) {
	logs := newLogRecorder()
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	pub := &outagePublisher{next: pubsub}
	pub.down.Store(true)
	d, err := NewDispatcher(DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter), RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: pub, ReplyTopic: ReplyTopicPrefix + "outage",
		Clock: siobroker.SystemClock{}, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewAdapterRuntime(AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "outage", Backends: map[int]adapters.Backend{1: echoBackend(1)},
		Publisher: pubsub, Clock: siobroker.SystemClock{}, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	d.AddHandlers(router, pubsub)
	rt.AddHandlers(router, pubsub)
	go func() { _ = router.Run(context.Background()) }()
	t.Cleanup(func() { _ = router.Close() })
	select {
	case <-router.Running():
	case <-time.After(5 * time.Second):
		t.Fatal("router did not start")
	}

	done := make(chan []Outcome, 1)
	go func() {
		done <- d.Dispatch(context.Background(), []schemas.ServiceRequest{request("o1", 1, "750312300458")}, timeouts(10*time.Second, nil))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for pub.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if pub.calls.Load() < 3 {
		t.Fatalf("%d publish attempts while the transport is down, want repeated attempts", pub.calls.Load())
	}
	logs.waitFor(t, "message transport unavailable; publishing again", "correlation_id=o1/1")
	pub.down.Store(false)
	select {
	case outs := <-done:
		if r := outs[0].Result; r.Status != siobroker.StatusOK || field(r.Records[0], "request") != "o1" {
			t.Fatalf("after the outage: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not answered after the transport came back")
	}

	pub.down.Store(true)
	start := time.Now()
	outs := d.Dispatch(context.Background(), []schemas.ServiceRequest{request("o2", 1, "750312300458")}, timeouts(300*time.Millisecond, nil))
	if r := outs[0].Result; r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonUnavailable {
		t.Fatalf("an outage past the limit: %+v, want UNAVAILABLE", r)
	}
	if e := time.Since(start); e < 300*time.Millisecond || e > 3*time.Second {
		t.Errorf("gave up after %s, want at the 300ms limit", e)
	}
	if d.Pending() != 0 {
		t.Errorf("Pending() = %d", d.Pending())
	}
}

// TestAdapterAnswerWaitsOutTransportOutage: an adapter whose publishing connection is down holds
// the request and publishes its answer once the transport is back, instead of failing the
// delivery: a failed delivery is requeued at once, and a few of those in a row reach the queue's
// delivery limit and dead-letter a request nothing was wrong with (seen in the RabbitMQ-restart
// test: the consuming connection came back before the publishing one). Past the request's
// deadline too: a copy that waited through the outage is late when it comes, and failing it
// loops at once (issue 15: the fault test's false dead letter; routing/amqp
// TestLateCopyWaitsForThePublisher shows it on RabbitMQ). Only the subscription's end ends the
// wait.
func TestAdapterAnswerWaitsOutTransportOutage(t *testing.T) {
	logs := newLogRecorder()
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	answers, err := pubsub.Subscribe(context.Background(), ReplyTopicPrefix+"adapter-outage")
	if err != nil {
		t.Fatal(err)
	}
	pub := &outagePublisher{next: pubsub}
	pub.down.Store(true)
	rt, err := NewAdapterRuntime(AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "outage", Backends: map[int]adapters.Backend{1: echoBackend(1)},
		Publisher: pub, Clock: siobroker.SystemClock{}, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}

	deliver := func(id string, deadline time.Time) chan error {
		req := request(id, 1, "750312300458")
		req.ReplyTo, req.Deadline = ReplyTopicPrefix+"adapter-outage", deadline
		msg, err := newJSONMessage(CorrelationKey(id, 1), req, requestMetadata(req))
		if err != nil {
			t.Fatal(err)
		}
		signRequest(t, msg, deadline)
		handled := make(chan error, 1)
		handle := rt.stack(schemas.ServiceTopic(1), []int{1})
		go func() {
			_, err := handle(msg)
			handled <- err
		}()
		return handled
	}

	handled := deliver("a1", time.Now().Add(time.Minute))
	logs.waitFor(t, "message transport unavailable; publishing again", "correlation_id=a1/1")
	heldUntilTransportBack(t, pub, handled, answers, 300*time.Millisecond, "a1/1", "the delivery")

	pub.down.Store(true)
	late := deliver("a2", time.Now().Add(-time.Minute))
	logs.waitFor(t, "message transport unavailable; publishing again", "correlation_id=a2/1")
	heldUntilTransportBack(t, pub, late, answers, 500*time.Millisecond, "a2/1", "a copy past its deadline")
}

// heldUntilTransportBack checks that the handling whose end handled reports is held for hold while
// pub is down (what it is names it in the failures), ends without an error once pub is back,
// and that its answer, under correlation key, is then on answers.
func heldUntilTransportBack(t *testing.T, pub *outagePublisher, handled <-chan error, answers <-chan *message.Message,
	hold time.Duration, key, what string) {
	t.Helper()
	select {
	case err := <-handled:
		t.Fatalf("%s ended while the transport was down: %v; want it held until the answer is out", what, err)
	case <-time.After(hold):
	}
	pub.down.Store(false)
	select {
	case err := <-handled:
		if err != nil {
			t.Fatalf("%s, after the outage: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the answer was not published after the transport came back", what)
	}
	select {
	case m := <-answers:
		m.Ack()
		if got := m.Metadata.Get(schemas.MetaCorrelation); got != key {
			t.Errorf("%s: answer for %q, want %s", what, got, key)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no answer on the reply topic", what)
	}
}

// TestCaseCheckWaitsOutTransportOutage: a case registry's answer waits for the transport past
// the check's deadline rather than failing the delivery at it, and a check that comes after its
// deadline is dropped without asking the registry. Failed, such a check was requeued, came
// straight back once RabbitMQ was, failed again at once and reached the queue's delivery limit
// within a second (the fault test's false dead letter on sio.registry.erdr).
func TestCaseCheckWaitsOutTransportOutage(t *testing.T) {
	logs := newLogRecorder()
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	answers, err := pubsub.Subscribe(context.Background(), ReplyTopicPrefix+"case-outage")
	if err != nil {
		t.Fatal(err)
	}
	pub := &outagePublisher{next: pubsub}
	pub.down.Store(true)
	var asked atomic.Int32
	registry := adapters.CaseRegistryFunc(func(context.Context, schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
		asked.Add(1)
		return schemas.CaseCheckResponse{Found: true}, nil
	})
	rr, err := NewRegistryRuntime(RegistryConfig{Name: "erdr", Registry: registry, Publisher: pub,
		Clock: siobroker.SystemClock{}, Logger: slog.New(logs), Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter)})
	if err != nil {
		t.Fatal(err)
	}
	check := func(id string, deadline time.Time) chan error {
		req := schemas.CaseCheckRequest{RequestID: id, ReplyTo: ReplyTopicPrefix + "case-outage", Deadline: deadline}
		msg, err := newJSONMessage(id+"/case", req, map[string]string{schemas.MetaRequestID: id})
		if err != nil {
			t.Fatal(err)
		}
		handled := make(chan error, 1)
		go func() { handled <- rr.handle(msg) }()
		return handled
	}

	handled := check("c1", time.Now().Add(300*time.Millisecond))
	// held past the check's deadline
	heldUntilTransportBack(t, pub, handled, answers, 800*time.Millisecond, "c1/case", "the check")

	before := asked.Load()
	if err := <-check("c2", time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("a check past its deadline: %v, want it dropped", err)
	}
	if asked.Load() != before {
		t.Error("the registry was asked a check past its deadline")
	}
	logs.waitFor(t, "case check past its deadline dropped", "correlation_id=c2/case")
	select {
	case m := <-answers:
		t.Errorf("answered a check past its deadline: %s", m.Metadata.Get(schemas.MetaCorrelation))
	case <-time.After(100 * time.Millisecond):
	}
}
