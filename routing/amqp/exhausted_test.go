package amqp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// deliveries records which answers reached the broker, late ones too.
type deliveries struct {
	mu  sync.Mutex
	got map[string]int
}

func (d *deliveries) Sent(string, int, string, time.Time) {}
func (d *deliveries) Abandon(string)                      {}
func (d *deliveries) Published(int, string)               {}
func (d *deliveries) Failed(int, string, error)           {}
func (d *deliveries) Delivered(key string, _ time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got[key]++
}
func (d *deliveries) count(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got[key]
}

// TestExhaustedAttemptsDeadLetterAndReplay: an adapter whose source fails transiently on each of
// its attempts puts the request in the dead-letter queue with the reason, and answers the broker
// ADAPTER_ERROR at once. `dlq list` (ListDeadLetters) shows the queue it came from, the reason and
// the attempts; `dlq replay` sends it back, the adapter asks the source again, and the late
// answer reaches the broker, which records and drops it.
func TestExhaustedAttemptsDeadLetterAndReplay(t *testing.T) {
	const service = 14
	cfg := testConfig(t, []int{service}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var healthy atomic.Bool
	adapterTr := newTransport(t, cfg)
	rt := newAdapterRuntime(t, routing.AdapterConfig{Name: "flaky", Backends: map[int]adapters.Backend{
		service: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			calls.Add(1)
			if !healthy.Load() {
				return siobroker.ServiceResult{}, adapters.Transient(fmt.Errorf("connect to source: %w", syscall.ECONNREFUSED))
			}
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "person"}}}, nil
		}),
	}, Publisher: adapterTr.Publisher(), Attempts: 3, Backoff: 5 * time.Millisecond, DeadLetters: adapterTr.DeadLetterTopic()})
	runRouter(t, func(r *message.Router) { rt.AddHandlers(r, adapterTr.Subscriber()) })

	brokerTr := newBroker(t, cfg, "broker-dlq")
	seen := &deliveries{got: map[string]int{}}
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: brokerTr.Publisher(), ReplyTopic: brokerTr.ReplyTopic(), Tracker: seen})
	runRouter(t, func(r *message.Router) { d.AddHandlers(r, brokerTr.Subscriber()) })

	start := time.Now()
	outs := d.Dispatch(ctxFor(t, 30*time.Second), []schemas.ServiceRequest{{RequestID: "flaky-1", Service: service,
		Subject: siobroker.Subject{IIN: "750312300458"}}}, func(int) time.Duration { return 20 * time.Second })
	if r := outs[0].Result; r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonAdapterError {
		t.Fatalf("result %+v, want ADAPTER_ERROR", r)
	}
	if e := time.Since(start); e > 10*time.Second || calls.Load() != 3 {
		t.Fatalf("answered after %s and %d attempts, want at once after 3", e, calls.Load())
	}

	ctx := ctxFor(t, 30*time.Second)
	var letters []DeadLetter
	waitFor(t, 10*time.Second, func() bool {
		var err error
		letters, err = ListDeadLetters(ctx, cfg, 10)
		return err == nil && len(letters) == 1
	}, "the request in the dead-letter queue")
	l := letters[0]
	if l.MessageID != "flaky-1/14" || l.Queue != cfg.name(schemas.ServiceTopic(service)) || l.Attempts != 3 ||
		!strings.Contains(l.Reason, "3 times") || !strings.Contains(l.Reason, "connection refused") || l.DiedAt.IsZero() {
		t.Fatalf("dead letter %+v", l)
	}
	t.Logf("dlq list: %+v", l)

	healthy.Store(true)
	if res, err := ReplayDeadLetters(ctx, cfg, 10, nil); err != nil || res.Replayed != 1 {
		t.Fatalf("replayed %+v, %v", res, err)
	}
	waitFor(t, 10*time.Second, func() bool { return seen.count("flaky-1/14") == 2 }, "the late answer of the replay at the broker")
	if n := calls.Load(); n != 4 {
		t.Errorf("%d calls, want 4: the replay asks the source once more", n)
	}
	if left, err := ListDeadLetters(ctx, cfg, 10); err != nil || len(left) != 0 {
		t.Errorf("dead-letter queue after the replay: %+v %v", left, err)
	}
	if d.Pending() != 0 {
		t.Errorf("pending %d", d.Pending())
	}
}
