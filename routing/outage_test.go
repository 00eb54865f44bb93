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
	d := NewDispatcher(pub, ReplyTopicPrefix+"outage", siobroker.SystemClock{}, slog.New(logs))
	rt := NewAdapterRuntime("outage", map[int]adapters.Backend{1: echoBackend(1)}, pubsub, siobroker.SystemClock{}, slog.New(logs))
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
