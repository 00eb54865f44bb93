package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/sqlite"
)

func newClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 11, 23, 10, 0, 0, 0, siobroker.Astana))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// routed is a dispatcher with a delay tracker and demo-like adapters over a real GoChannel.
func routed(t *testing.T, clock siobroker.Clock, backends map[int]adapters.Backend) (*routing.Dispatcher, *incidents.Tracker) {
	t.Helper()
	ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	// The monitor reads only the tracker's memory (Oldest); a real store and journal make it a
	// tracker as the broker builds one, though no Check runs here.
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tracker, err := incidents.NewTracker(incidents.Config{}, db, db.Journal(), clock, quiet)
	if err != nil {
		t.Fatal(err)
	}
	d, err := routing.NewDispatcher(routing.DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter), RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: ps, ReplyTopic: routing.ReplyTopicPrefix + watermill.NewUUID(),
		Clock: clock, Logger: quiet, Tracker: incidents.DispatcherTracker{T: tracker}})
	if err != nil {
		t.Fatal(err)
	}
	d.AddHandlers(router, ps)
	rt, err := routing.NewAdapterRuntime(routing.AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "test", Backends: backends, Publisher: ps, Clock: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rt.AddHandlers(router, ps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = router.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		_ = router.Close()
		_ = ps.Close()
		<-done
	})
	select {
	case <-router.Running():
	case <-time.After(5 * time.Second):
		t.Fatal("router did not start")
	}
	return d, tracker
}

func req(id string, service int) schemas.ServiceRequest {
	return schemas.ServiceRequest{RequestID: id, MessageID: "m-" + id, Service: service, Basis: siobroker.BasisCriminal,
		Subject: siobroker.Subject{IIN: "810803325634"}, SignerIIN: "750312300458"}
}

func wait(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }

// TestNewMonitorValidates: a missing source or a negative duration is refused, naming the field.
func TestNewMonitorValidates(t *testing.T) {
	clock := newClock()
	full := MonitorConfig{Dispatcher: noStats{}, Delays: fixedDelays{}, Clock: clock}
	if _, err := NewMonitor(full); err != nil {
		t.Fatalf("NewMonitor with every source: %v", err)
	}
	for _, tt := range []struct {
		want string
		mod  func(*MonitorConfig)
	}{
		{"health: MonitorConfig.Dispatcher is required", func(c *MonitorConfig) { c.Dispatcher = nil }},
		{"health: MonitorConfig.Delays is required", func(c *MonitorConfig) { c.Delays = nil }},
		{"health: MonitorConfig.Clock is required", func(c *MonitorConfig) { c.Clock = nil }},
		{"health: MonitorConfig.DepthTTL must not be negative", func(c *MonitorConfig) { c.DepthTTL = -time.Second }},
		{"health: MonitorConfig.DeadLetterTTL must not be negative", func(c *MonitorConfig) { c.DeadLetterTTL = -time.Second }},
		{"health: MonitorConfig.ReadTimeout must not be negative", func(c *MonitorConfig) { c.ReadTimeout = -time.Second }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c := full
			tt.mod(&c)
			if _, err := NewMonitor(c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewMonitor: %v, want %q", err, tt.want)
			}
		})
	}
}

// noStats is a DispatchStats with nothing dispatched.
type noStats struct{}

func (noStats) Stats() map[int]routing.ServiceStats { return nil }

// fixedDelays is a DelayTracker with nothing waiting.
type fixedDelays struct{}

func (fixedDelays) Oldest() map[siobroker.IncidentCause]time.Duration { return nil }

// TestMonitorSnapshot: the snapshot holds every service in order, with the dispatcher's counts,
// the messages in flight, the age of the oldest undelivered one on the injected clock and the
// recent error rate; on GoChannel the queue figures are -1.
func TestMonitorSnapshot(t *testing.T) {
	clock := newClock()
	release := make(chan struct{})
	d, tracker := routed(t, clock, map[int]adapters.Backend{
		1: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			return siobroker.ServiceResult{}, nil
		}),
		2: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			return siobroker.ServiceResult{}, errors.New("down")
		}),
		5: adapters.BackendFunc(func(ctx context.Context, _ schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return siobroker.ServiceResult{}, nil
		}),
	})
	m, err := NewMonitor(MonitorConfig{Dispatcher: d, Delays: tracker, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	d.Dispatch(context.Background(), []schemas.ServiceRequest{req("a", 1), req("a", 2), req("a", 3)}, wait(50*time.Millisecond))
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Dispatch(context.Background(), []schemas.ServiceRequest{req("b", 5)}, wait(10*time.Second))
	}()
	deadline := time.Now().Add(2 * time.Second)
	for d.InFlight()[5] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("service 5 never in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
	clock.Advance(90 * time.Second)

	states, err := m.Services(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != siobroker.LastService-siobroker.FirstService+1 {
		t.Fatalf("%d states", len(states))
	}
	for i, st := range states {
		if st.Service != siobroker.FirstService+i || st.Queue != schemas.ServiceTopic(st.Service) ||
			st.QueueDepth != -1 || st.DeadLetters != -1 {
			t.Errorf("state %d: %+v", i, st)
		}
	}
	check := func(st, want ServiceState) {
		t.Helper()
		want.Queue, want.QueueDepth, want.DeadLetters = schemas.ServiceTopic(want.Service), -1, -1
		if st != want {
			t.Errorf("service %d: %+v\nwant %+v", want.Service, st, want)
		}
	}
	check(states[0], ServiceState{Service: 1, Dispatched: 1, Answered: 1, NoData: 1}) // its backend found nothing
	check(states[1], ServiceState{Service: 2, Dispatched: 1, Answered: 1, Errors: 1, ErrorAnswers: 1, ErrorRate: 1})
	// Service 3 has no adapter: a timeout, and its message is still undelivered 90s later.
	check(states[2], ServiceState{Service: 3, Dispatched: 1, Timeouts: 1, ErrorRate: 1, OldestAge: 90 * time.Second})
	check(states[4], ServiceState{Service: 5, Dispatched: 1, InFlight: 1, OldestAge: 90 * time.Second})

	close(release)
	<-done
	clock.Advance(routing.RecentWindow)
	states, _ = m.Services(context.Background())
	check(states[1], ServiceState{Service: 2, Dispatched: 1, Answered: 1, Errors: 1, ErrorAnswers: 1})
	check(states[4], ServiceState{Service: 5, Dispatched: 1, Answered: 1, NoData: 1})
}

// countingReader is a QueueReader whose answers the test sets, counting how often it is read.
type countingReader struct {
	depthReads, deadReads atomic.Int32
	slow                  chan struct{} // when set, reads wait for it
	fail                  atomic.Bool
	names                 atomic.Value // the queue names of the last depth read
}

func (r *countingReader) QueueDepths(ctx context.Context, names []string) (map[string]int64, error) {
	r.depthReads.Add(1)
	r.names.Store(names)
	if r.slow != nil {
		<-r.slow
	}
	if r.fail.Load() {
		return nil, errors.New("connection refused")
	}
	out := map[string]int64{}
	for i, n := range names {
		if i != 1 { // the second queue does not exist
			out[n] = int64(i * 10)
		}
	}
	return out, nil
}

func (r *countingReader) DeadLettersByService(context.Context) (map[int]int64, error) {
	r.deadReads.Add(1)
	if r.fail.Load() {
		return nil, errors.New("connection refused")
	}
	return map[int]int64{4: 2}, nil
}

// TestMonitorCachesTheMessageServer: the queue depths are read at most once per DepthTTL and the
// dead letters once per DeadLetterTTL on the injected clock, however many ask at once; a failed
// read gives -1 and an error, and is not retried before its TTL.
func TestMonitorCachesTheMessageServer(t *testing.T) {
	clock := newClock()
	d, tracker := routed(t, clock, nil)
	r := &countingReader{slow: make(chan struct{})}
	m, err := NewMonitor(MonitorConfig{Dispatcher: d, Delays: tracker, Clock: clock, Queues: r,
		QueueName: func(n int) string { return fmt.Sprintf("routes.%d", n) }})
	if err != nil {
		t.Fatal(err)
	}

	// A storm of first callers waits for one read.
	var wg sync.WaitGroup
	results := make([][]ServiceState, 20)
	for i := range results {
		wg.Go(func() {
			states, err := m.Services(context.Background())
			if err != nil {
				t.Error(err)
			}
			results[i] = states
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(r.slow)
	wg.Wait()
	if n := r.depthReads.Load(); n != 1 {
		t.Errorf("%d depth reads for 20 callers, want 1", n)
	}
	for _, states := range results {
		if states[0].Queue != "routes.1" || states[0].QueueDepth != 0 || states[1].QueueDepth != -1 ||
			states[2].QueueDepth != 20 || states[3].DeadLetters != 2 || states[0].DeadLetters != 0 {
			t.Fatalf("states %+v", states[:4])
		}
	}
	if names := r.names.Load().([]string); len(names) != 93 || names[92] != "routes.93" {
		t.Errorf("queue names read: %v", names)
	}

	clock.Advance(DefaultDepthTTL - time.Millisecond)
	m.Services(context.Background())
	if r.depthReads.Load() != 1 || r.deadReads.Load() != 1 {
		t.Errorf("reads before the TTL: depths %d, dead letters %d", r.depthReads.Load(), r.deadReads.Load())
	}
	clock.Advance(time.Millisecond)
	m.Services(context.Background())
	if r.depthReads.Load() != 2 || r.deadReads.Load() != 1 {
		t.Errorf("after the depth TTL: depths %d, dead letters %d; want 2, 1", r.depthReads.Load(), r.deadReads.Load())
	}
	clock.Advance(DefaultDeadLetterTTL)
	r.fail.Store(true)
	states, err := m.Services(context.Background())
	if err == nil || states[2].QueueDepth != -1 || states[3].DeadLetters != -1 {
		t.Errorf("a failed read: err %v, states %+v", err, states[:4])
	}
	if r.depthReads.Load() != 3 || r.deadReads.Load() != 2 {
		t.Errorf("after both TTLs: depths %d, dead letters %d; want 3, 2", r.depthReads.Load(), r.deadReads.Load())
	}
	if _, err := m.Services(context.Background()); err == nil || r.depthReads.Load() != 3 {
		t.Errorf("the failure is not reused: err %v, %d reads", err, r.depthReads.Load())
	}
}
