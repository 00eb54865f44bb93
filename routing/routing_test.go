package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

// logRecorder is a slog.Handler that keeps every record, so that tests can wait for a log line.
type logRecorder struct {
	mu      sync.Mutex
	records []string
	notify  chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{notify: make(chan struct{}, 1)} }

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler    { return withAttrs{h, as} }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

// withAttrs is a logRecorder under a logger's With attributes.
type withAttrs struct {
	h  *logRecorder
	as []slog.Attr
}

func (w withAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (w withAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return withAttrs{w.h, append(append([]slog.Attr(nil), w.as...), as...)}
}
func (w withAttrs) WithGroup(string) slog.Handler { return w }
func (w withAttrs) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(w.as...)
	return w.h.Handle(ctx, r)
}
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, b.String())
	h.mu.Unlock()
	select {
	case h.notify <- struct{}{}:
	default:
	}
	return nil
}

// find returns the first record containing every part.
func (h *logRecorder) find(parts ...string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
next:
	for _, r := range h.records {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue next
			}
		}
		return r, true
	}
	return "", false
}

// waitFor waits up to two seconds for a record containing every part.
func (h *logRecorder) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		if r, ok := h.find(parts...); ok {
			return r
		}
		select {
		case <-h.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			h.mu.Lock()
			all := strings.Join(h.records, "\n")
			h.mu.Unlock()
			t.Fatalf("no log record with %q; records:\n%s", parts, all)
		}
	}
}

// testEnv is a dispatcher and one adapter runtime over a real GoChannel and watermill Router.
type testEnv struct {
	pubsub     *gochannel.GoChannel
	dispatcher *Dispatcher
	runtime    *AdapterRuntime
	logs       *logRecorder
}

const adapterName = "test"

// envConfig is what newTestEnv builds env's dispatcher and runtime from, and envOption a test's
// change to it.
type envConfig struct {
	dispatcher DispatcherConfig
	adapter    AdapterConfig
	registries []RegistryConfig // case registries served beside the adapter; Publisher, Clock and Logger are the env's
}

type envOption func(*envConfig)

// observeAnswers makes env's dispatcher report every answer in time to f.
func observeAnswers(f func(service int, status siobroker.ResultStatus, latency time.Duration)) envOption {
	return func(c *envConfig) { c.dispatcher.ObserveAnswer = f }
}

// onLateAnswer makes env's dispatcher hand its late answers to f.
func onLateAnswer(f func(context.Context, LateAnswer) (bool, error)) envOption {
	return func(c *envConfig) { c.dispatcher.OnLateAnswer = f }
}

// retry makes env's runtime put a request to its backend attempts times, the first retry after backoff.
func retry(attempts int, backoff time.Duration) envOption {
	return func(c *envConfig) { c.adapter.Attempts, c.adapter.Backoff = attempts, backoff }
}

// deadLetters makes env's runtime send a request whose attempts are exhausted to topic.
func deadLetters(topic string) envOption {
	return func(c *envConfig) { c.adapter.DeadLetters = topic }
}

// withLedger makes env's runtime claim every request in l.
func withLedger(l siobroker.Ledger) envOption {
	return func(c *envConfig) { c.adapter.Ledger = l }
}

func newTestEnv(t *testing.T, backends map[int]adapters.Backend, opts ...envOption) *testEnv {
	t.Helper()
	return newTestEnvClock(t, backends, siobroker.SystemClock{}, opts...)
}

func newTestEnvClock(t *testing.T, backends map[int]adapters.Backend, clock siobroker.Clock, opts ...envOption) *testEnv {
	t.Helper()
	return newTestEnvQueues(t, backends, clock, nil, opts...)
}

// newTestEnvQueues routes through queueOf (nil: each service's own queue) on both sides.
func newTestEnvQueues(t *testing.T, backends map[int]adapters.Backend, clock siobroker.Clock, queueOf func(int) string, opts ...envOption) *testEnv {
	t.Helper()
	logs := newLogRecorder()
	logger := slog.New(logs)
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	c := envConfig{
		dispatcher: DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter), RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: pubsub, ReplyTopic: ReplyTopicPrefix + watermill.NewUUID(),
			Clock: clock, Logger: logger, QueueOf: queueOf},
		adapter: AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: adapterName, Backends: backends, Publisher: pubsub,
			Clock: clock, Logger: logger, QueueOf: queueOf},
	}
	for _, o := range opts {
		o(&c)
	}
	d, err := NewDispatcher(c.dispatcher)
	if err != nil {
		t.Fatal(err)
	}
	d.AddHandlers(router, pubsub)
	rt, err := NewAdapterRuntime(c.adapter)
	if err != nil {
		t.Fatal(err)
	}
	rt.AddHandlers(router, pubsub)
	for _, rc := range c.registries {
		rc.Publisher, rc.Clock, rc.Logger = pubsub, clock, logger
		rr, err := NewRegistryRuntime(rc)
		if err != nil {
			t.Fatal(err)
		}
		rr.AddHandlers(router, pubsub)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := router.Run(ctx); err != nil {
			t.Errorf("router.Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = router.Close()
		_ = pubsub.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("router did not stop")
		}
	})
	select {
	case <-router.Running():
	case <-time.After(5 * time.Second):
		t.Fatal("router did not start")
	}
	return &testEnv{pubsub: pubsub, dispatcher: d, runtime: rt, logs: logs}
}

func timeouts(def time.Duration, per map[int]time.Duration) func(int) time.Duration {
	return func(n int) time.Duration {
		if d, ok := per[n]; ok {
			return d
		}
		return def
	}
}

func request(requestID string, service int, iin string) schemas.ServiceRequest {
	return schemas.ServiceRequest{
		RequestID: requestID, MessageID: "msg-" + requestID, Service: service,
		Basis: siobroker.BasisCriminal, Subject: siobroker.Subject{IIN: iin}, SignerIIN: "750312300458",
	}
}

// echoBackend answers one record that names the request, the service and the subject it was asked.
func echoBackend(service int) adapters.Backend {
	return adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // shuffle the answer order
		return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "echo", Fields: []siobroker.Field{
			{Name: "backend", Value: fmt.Sprint(service)},
			{Name: "service", Value: fmt.Sprint(req.Service)},
			{Name: "request", Value: req.RequestID},
			{Name: "subject", Value: req.Subject.IIN},
		}}}}, nil
	})
}

func field(r siobroker.Record, name string) string {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func TestDispatchCorrelatesUnderConcurrency(t *testing.T) {
	services := []int{1, 5, 11, 37, 93}
	backends := map[int]adapters.Backend{}
	for _, s := range services {
		backends[s] = echoBackend(s)
	}
	env := newTestEnv(t, backends)

	const requests = 50
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			requestID := fmt.Sprintf("req-%02d", i)
			iin := fmt.Sprintf("%012d", i)
			// Each request asks a different subset, in a different order.
			order := append([]int(nil), services...)
			rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			order = order[:2+i%4]
			reqs := make([]schemas.ServiceRequest, len(order))
			for j, s := range order {
				reqs[j] = request(requestID, s, iin)
			}
			outs := env.dispatcher.Dispatch(context.Background(), reqs, timeouts(2*time.Second, nil))
			if len(outs) != len(reqs) {
				t.Errorf("%s: %d outcomes for %d requests", requestID, len(outs), len(reqs))
				return
			}
			for j, o := range outs {
				s := order[j]
				r := o.Result
				if r.Service != s || r.Status != siobroker.StatusOK || r.Reason != siobroker.ReasonOK || len(r.Records) != 1 {
					t.Errorf("%s slot %d (service %d): %+v", requestID, j, s, r)
					continue
				}
				rec := r.Records[0]
				if field(rec, "backend") != fmt.Sprint(s) || field(rec, "service") != fmt.Sprint(s) ||
					field(rec, "request") != requestID || field(rec, "subject") != iin {
					t.Errorf("%s slot %d (service %d) got another answer: %+v", requestID, j, s, rec.Fields)
				}
				if o.Adapter != adapterName || o.DispatchedAt.IsZero() || o.AnsweredAt.IsZero() || o.AnsweredAt.Before(o.DispatchedAt) {
					t.Errorf("%s service %d: outcome %+v", requestID, s, o)
				}
			}
		})
	}
	wg.Wait()
	if n := env.dispatcher.Pending(); n != 0 {
		t.Fatalf("Pending() = %d after every Dispatch returned", n)
	}
}

func TestSlowBackendTimesOut(t *testing.T) {
	release := make(chan struct{})
	var ignoredReturned atomic.Bool
	env := newTestEnv(t, map[int]adapters.Backend{
		1: echoBackend(1),
		// Ignores ctx, blocks on a channel that only closes at the end of the test.
		2: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			<-release
			return siobroker.ServiceResult{}, nil
		}),
		// Ignores ctx: blocks until the test lets it go.
		3: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			<-release
			ignoredReturned.Store(true)
			return siobroker.ServiceResult{}, nil
		}),
		4: echoBackend(4),
	})
	t.Cleanup(func() { close(release) }) // runs before the router closes

	start := time.Now()
	outs := env.dispatcher.Dispatch(context.Background(),
		[]schemas.ServiceRequest{request("r1", 1, "750312300458"), request("r1", 2, "750312300458"), request("r1", 3, "750312300458"), request("r1", 4, "750312300458")},
		timeouts(2*time.Second, map[int]time.Duration{2: 50 * time.Millisecond, 3: 50 * time.Millisecond}))
	elapsed := time.Since(start)
	if elapsed > time.Second {
		t.Fatalf("Dispatch took %s; the slow services should have cut it at about 50ms", elapsed)
	}
	want := []struct {
		service int
		status  siobroker.ResultStatus
		reason  string
	}{
		{1, siobroker.StatusOK, siobroker.ReasonOK},
		{2, siobroker.StatusTimeout, siobroker.ReasonTimeout},
		{3, siobroker.StatusTimeout, siobroker.ReasonTimeout},
		{4, siobroker.StatusOK, siobroker.ReasonOK},
	}
	for i, w := range want {
		r := outs[i].Result
		if r.Service != w.service || r.Status != w.status || r.Reason != w.reason {
			t.Errorf("slot %d: %+v, want service %d %s %s", i, r, w.service, w.status, w.reason)
		}
		if w.status == siobroker.StatusTimeout {
			if !strings.Contains(r.Message, "50ms") {
				t.Errorf("service %d timeout message %q does not name the timeout", w.service, r.Message)
			}
			if !outs[i].AnsweredAt.IsZero() || outs[i].Adapter != "" {
				t.Errorf("service %d: a timeout has no answer, got %+v", w.service, outs[i])
			}
		}
	}
	if n := env.dispatcher.Pending(); n != 0 {
		t.Fatalf("Pending() = %d", n)
	}
	if ignoredReturned.Load() {
		t.Fatal("the blocked backend returned before it was released")
	}
}

// TestLateAnswerGoesToHook: an answer that comes after its wait timed out is not delivered to
// anyone; it is handed to the OnLateAnswer hook, with what the journal needs, and counted.
func TestLateAnswerGoesToHook(t *testing.T) {
	release := make(chan struct{})
	late, lateOpt := collectLate()
	var calls atomic.Int32
	env := newTestEnv(t, map[int]adapters.Backend{
		7: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			if calls.Add(1) == 1 {
				<-release // the first call ignores its deadline and answers late
			}
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "late", Fields: []siobroker.Field{{Name: "request", Value: req.RequestID}}}}}, nil
		}),
	}, lateOpt)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("late-1", 7, "750312300458")},
		timeouts(50*time.Millisecond, nil))
	if r := outs[0].Result; r.Status != siobroker.StatusTimeout || r.Reason != siobroker.ReasonTimeout {
		t.Fatalf("first dispatch: %+v, want timeout", r)
	}
	if n := env.dispatcher.Pending(); n != 0 {
		t.Fatalf("Pending() = %d after the timeout", n)
	}

	// Let the backend answer now: the dispatcher hands the answer to the hook, not to a waiter.
	once.Do(func() { close(release) })
	a := waitLate(t, late)
	if a.Key != "late-1/7" || a.RequestID != "late-1" || a.Service != 7 || a.CaseCheck || a.MessageID != "msg-late-1" ||
		!a.Readable || a.Status != siobroker.StatusOK || a.Reason != siobroker.ReasonOK || a.Adapter != adapterName ||
		a.Records != 1 || a.AnsweredAt.IsZero() || a.ReceivedAt.IsZero() {
		t.Fatalf("late answer %+v", a)
	}
	var resp schemas.ServiceResponse
	if err := json.Unmarshal(a.Payload, &resp); err != nil || field(resp.Result.Records[0], "request") != "late-1" {
		t.Fatalf("late answer payload %s: %v", a.Payload, err)
	}
	env.logs.waitFor(t, "late answer", "late-1")
	if n := env.dispatcher.Pending(); n != 0 {
		t.Fatalf("Pending() = %d after the late answer", n)
	}
	if st := env.dispatcher.Stats()[7]; st.LateAnswers != 1 || st.Timeouts != 1 || st.Answered != 0 {
		t.Fatalf("stats of service 7: %+v, want one timeout and one late answer", st)
	}

	// The runtime still serves the service, and the next request gets its own answer.
	outs = env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("late-2", 7, "750312300458")},
		timeouts(2*time.Second, nil))
	r := outs[0].Result
	if r.Status != siobroker.StatusOK || len(r.Records) != 1 || field(r.Records[0], "request") != "late-2" {
		t.Fatalf("second dispatch: %+v", r)
	}
	if n := env.dispatcher.Pending(); n != 0 {
		t.Fatalf("Pending() = %d", n)
	}
}

func TestBackendErrorAndPanic(t *testing.T) {
	const secret = "ORA-01017: invalid username/password at db.internal.example:1521"
	var panics atomic.Int32
	env := newTestEnv(t, map[int]adapters.Backend{
		1: echoBackend(1),
		20: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			return siobroker.ServiceResult{}, errors.New(secret)
		}),
		21: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			if panics.Add(1) <= 2 {
				panic(secret)
			}
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "ok"}}}, nil
		}),
		22: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			var records []siobroker.Record
			return siobroker.ServiceResult{Records: records[:len(secret)]}, nil // a runtime panic (slice bounds), not a panic(value)
		}),
	})
	tests := []struct {
		name    string
		service int
	}{
		{"error", 20},
		{"panic", 21},
		{"runtime panic", 22},
	}
	for round := range 2 {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/round%d", tt.name, round), func(t *testing.T) {
				rid := fmt.Sprintf("%s-%d", tt.name, round)
				outs := env.dispatcher.Dispatch(context.Background(),
					[]schemas.ServiceRequest{request(rid, tt.service, "750312300458"), request(rid, 1, "750312300458")},
					timeouts(2*time.Second, nil))
				r := outs[0].Result
				if r.Service != tt.service || r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonAdapterError {
					t.Fatalf("result %+v, want error ADAPTER_ERROR", r)
				}
				if r.Message == "" || strings.Contains(r.Message, "ORA") || strings.Contains(r.Message, "db.internal") ||
					strings.Contains(r.Message, "nil map") || len(r.Records) != 0 {
					t.Fatalf("result leaks the backend's failure: %+v", r)
				}
				if o := outs[1].Result; o.Status != siobroker.StatusOK {
					t.Fatalf("the healthy service beside it: %+v", o)
				}
			})
		}
	}
	// The cause reaches the log, not the client.
	env.logs.waitFor(t, "backend error", "ORA-01017")
	env.logs.waitFor(t, "backend panicked", "ORA-01017")

	// After two panics the runtime still serves service 21.
	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("after-panic", 21, "750312300458")}, timeouts(2*time.Second, nil))
	if r := outs[0].Result; r.Status != siobroker.StatusOK || r.Reason != siobroker.ReasonOK {
		t.Fatalf("after the panics: %+v", r)
	}
}

func TestResultDefaults(t *testing.T) {
	rec := []siobroker.Record{{Type: "person", Fields: []siobroker.Field{{Name: "name", Value: "ИВАНОВ"}}}}
	tests := []struct {
		name       string
		result     siobroker.ServiceResult
		wantStatus siobroker.ResultStatus
		wantReason string
		wantN      int
	}{
		{"no records no reason", siobroker.ServiceResult{}, siobroker.StatusOK, siobroker.ReasonNoData, 0},
		{"empty records slice", siobroker.ServiceResult{Records: []siobroker.Record{}}, siobroker.StatusOK, siobroker.ReasonNoData, 0},
		{"records", siobroker.ServiceResult{Records: rec}, siobroker.StatusOK, siobroker.ReasonOK, 1},
		{"explicit NO_DATA", siobroker.ServiceResult{Reason: siobroker.ReasonNoData}, siobroker.StatusOK, siobroker.ReasonNoData, 0},
		{"reason kept", siobroker.ServiceResult{Status: siobroker.StatusOK, Reason: "PARTIAL_SOURCE"}, siobroker.StatusOK, "PARTIAL_SOURCE", 0},
		{"wrong service number overwritten", siobroker.ServiceResult{Service: 99, Records: rec}, siobroker.StatusOK, siobroker.ReasonOK, 1},
	}
	var current atomic.Value
	env := newTestEnv(t, map[int]adapters.Backend{
		12: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			return current.Load().(siobroker.ServiceResult), nil
		}),
	})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current.Store(tt.result)
			outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request(fmt.Sprint("d", i), 12, "750312300458")}, timeouts(2*time.Second, nil))
			r := outs[0].Result
			if r.Service != 12 || r.Status != tt.wantStatus || r.Reason != tt.wantReason || len(r.Records) != tt.wantN {
				t.Fatalf("result %+v, want service 12 %s %s with %d records", r, tt.wantStatus, tt.wantReason, tt.wantN)
			}
		})
	}
}

// failingPublisher refuses every message.
type failingPublisher struct{ calls atomic.Int32 }

func (p *failingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.calls.Add(1)
	return errors.New("amqp: connection refused to broker.internal:5672")
}
func (p *failingPublisher) Close() error { return nil }

func TestPublishFailureIsUnavailable(t *testing.T) {
	pub := &failingPublisher{}
	d, err := NewDispatcher(DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter), RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: pub, ReplyTopic: ReplyTopicPrefix + "x",
		Clock: siobroker.SystemClock{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	outs := d.Dispatch(context.Background(),
		[]schemas.ServiceRequest{request("p1", 1, "750312300458"), request("p1", 2, "750312300458")},
		timeouts(5*time.Second, nil))
	if time.Since(start) > time.Second {
		t.Fatalf("a failed publish waited for the timeout (%s)", time.Since(start))
	}
	for i, s := range []int{1, 2} {
		r := outs[i].Result
		if r.Service != s || r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonUnavailable {
			t.Errorf("slot %d: %+v, want error UNAVAILABLE", i, r)
		}
		if strings.Contains(r.Message, "amqp") || strings.Contains(r.Message, "internal") {
			t.Errorf("message leaks the transport error: %q", r.Message)
		}
	}
	if pub.calls.Load() != 2 {
		t.Errorf("Publish called %d times, want 2", pub.calls.Load())
	}
	if d.Pending() != 0 {
		t.Errorf("Pending() = %d", d.Pending())
	}
}

func TestDispatchCancelled(t *testing.T) {
	release := make(chan struct{})
	env := newTestEnv(t, map[int]adapters.Backend{
		30: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return siobroker.ServiceResult{}, nil
		}),
	})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	outs := env.dispatcher.Dispatch(ctx, []schemas.ServiceRequest{request("c1", 30, "750312300458")}, timeouts(5*time.Second, nil))
	if time.Since(start) > time.Second {
		t.Fatalf("Dispatch ignored the cancelled context (%s)", time.Since(start))
	}
	if r := outs[0].Result; r.Status != siobroker.StatusTimeout || r.Reason != siobroker.ReasonTimeout {
		t.Fatalf("result %+v", r)
	}
	if env.dispatcher.Pending() != 0 {
		t.Fatalf("Pending() = %d", env.dispatcher.Pending())
	}
}

// TestRequestCarriesDeadlineAndReplyTopic checks what the adapter sees: the dispatcher's reply topic,
// a deadline about one timeout away, and the request's own fields.
func TestRequestCarriesDeadlineAndReplyTopic(t *testing.T) {
	type seen struct {
		req         schemas.ServiceRequest
		deadline    time.Time
		hasDeadline bool
	}
	got := make(chan seen, 1)
	env := newTestEnv(t, map[int]adapters.Backend{
		40: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			dl, ok := ctx.Deadline()
			got <- seen{req, dl, ok}
			return siobroker.ServiceResult{}, nil
		}),
	})
	before := time.Now()
	req := request("dl-1", 40, "750312300458")
	req.Article = "216"
	req.Case = siobroker.CaseRef{Number: "267100031000123"}
	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{req}, timeouts(time.Second, nil))
	if outs[0].Result.Status != siobroker.StatusOK || outs[0].Result.Reason != siobroker.ReasonNoData {
		t.Fatalf("result %+v", outs[0].Result)
	}
	s := <-got
	if s.req.ReplyTo != env.dispatcher.ReplyTopic() || !strings.HasPrefix(s.req.ReplyTo, ReplyTopicPrefix) {
		t.Errorf("ReplyTo = %q, want %q", s.req.ReplyTo, env.dispatcher.ReplyTopic())
	}
	if s.req.RequestID != "dl-1" || s.req.MessageID != "msg-dl-1" || s.req.Article != "216" ||
		s.req.Case.Number != "267100031000123" || s.req.SignerIIN != "750312300458" || s.req.SentAt.IsZero() {
		t.Errorf("request seen by the backend: %+v", s.req)
	}
	if !s.hasDeadline {
		t.Fatal("backend context has no deadline")
	}
	if s.deadline.Before(before.Add(900*time.Millisecond)) || s.deadline.After(time.Now().Add(time.Second)) {
		t.Errorf("deadline %s is not about 1s after %s", s.deadline, before)
	}
}

// TestMalformedMessagesAreDropped: garbage on a service topic or on the reply topic is logged and
// acknowledged, and neither side stops serving. The garbage is authenticated, as a broker or
// adapter of another version could send it, or it would be refused before it is read.
func TestMalformedMessagesAreDropped(t *testing.T) {
	env := newTestEnv(t, map[int]adapters.Backend{50: echoBackend(50)})
	pub := func(topic string, payload string) {
		t.Helper()
		msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
		if topic == env.dispatcher.ReplyTopic() {
			signAnswer(msg)
		} else {
			signRequest(t, msg, time.Time{})
		}
		if err := env.pubsub.Publish(topic, msg); err != nil {
			t.Fatal(err)
		}
	}
	pub(schemas.ServiceTopic(50), "{not json")
	env.logs.waitFor(t, "undecodable service request dropped", "queue=sio.service.050")
	pub(schemas.ServiceTopic(50), `{"requestId":"w1","service":51,"replyTo":"x"}`)
	env.logs.waitFor(t, "does not serve", "correlation_id=w1/51")
	pub(schemas.ServiceTopic(50), `{"requestId":"w2","service":50}`)
	env.logs.waitFor(t, "without reply topic", "correlation_id=w2/")
	pub(env.dispatcher.ReplyTopic(), "<xml/>")
	env.logs.waitFor(t, "reply dropped", "transport_id")
	pub(env.dispatcher.ReplyTopic(), `{"requestId":"nobody","service":50}`)
	env.logs.waitFor(t, "late answer", "nobody") // an answer nobody waits for

	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("m1", 50, "750312300458")}, timeouts(2*time.Second, nil))
	if r := outs[0].Result; r.Status != siobroker.StatusOK || field(r.Records[0], "request") != "m1" {
		t.Fatalf("after the garbage: %+v", r)
	}
}

func TestAdapterRuntimeServices(t *testing.T) {
	rt, err := NewAdapterRuntime(AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "x", Backends: map[int]adapters.Backend{93: echoBackend(93), 1: echoBackend(1), 11: echoBackend(11)},
		Publisher: &failingPublisher{}, Clock: siobroker.SystemClock{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	got := rt.Services()
	if fmt.Sprint(got) != "[1 11 93]" {
		t.Fatalf("Services() = %v", got)
	}
}

func TestTopicsAndKeys(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{{1, "sio.service.001"}, {11, "sio.service.011"}, {93, "sio.service.093"}} {
		if got := schemas.ServiceTopic(tt.n); got != tt.want {
			t.Errorf("ServiceTopic(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if CorrelationKey("a", 1) == CorrelationKey("a", 11) || CorrelationKey("a/1", 1) == CorrelationKey("a", 11) {
		t.Errorf("correlation keys collide")
	}
	if a, b := NewMessageID(), NewMessageID(); a == b {
		t.Errorf("NewMessageID repeats")
	}
}

// TestCorrelatedButUnreadableAnswer: an answer that carries the correlation header of a pending
// service but whose payload cannot be read ends that service with ADAPTER_ERROR at once, instead of
// letting it run into its timeout.
func TestCorrelatedButUnreadableAnswer(t *testing.T) {
	release := make(chan struct{})
	env := newTestEnv(t, map[int]adapters.Backend{
		60: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			<-release
			return siobroker.ServiceResult{}, nil
		}),
	})
	t.Cleanup(func() { close(release) })
	done := make(chan []Outcome, 1)
	go func() {
		done <- env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("bad-1", 60, "750312300458")}, timeouts(2*time.Second, nil))
	}()
	deadline := time.Now().Add(2 * time.Second)
	for env.dispatcher.Pending() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("dispatch never became pending")
		}
		time.Sleep(time.Millisecond)
	}
	msg := message.NewMessage(watermill.NewUUID(), []byte("{garbage"))
	msg.Metadata.Set(schemas.MetaCorrelation, CorrelationKey("bad-1", 60))
	signAnswer(msg)
	if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), msg); err != nil {
		t.Fatal(err)
	}
	select {
	case outs := <-done:
		r := outs[0].Result
		if r.Service != 60 || r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonAdapterError {
			t.Fatalf("result %+v, want error ADAPTER_ERROR", r)
		}
	case <-time.After(time.Second):
		t.Fatal("the unreadable answer did not end the wait")
	}
	if env.dispatcher.Pending() != 0 {
		t.Fatalf("Pending() = %d", env.dispatcher.Pending())
	}
}

// TestCtxHonouringBackendTimesOut: a backend that honours ctx, as adapters.Backend requires, gives up
// at the deadline the dispatcher sent and returns ctx.Err(). That is a timeout, and the client must
// see "timeout", not "error", whichever of the adapter's answer and the dispatcher's timer comes
// first.
func TestCtxHonouringBackendTimesOut(t *testing.T) {
	env := newTestEnv(t, map[int]adapters.Backend{
		1: echoBackend(1),
		2: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			<-ctx.Done()
			return siobroker.ServiceResult{}, ctx.Err()
		}),
	})
	for i := range 20 {
		outs := env.dispatcher.Dispatch(context.Background(),
			[]schemas.ServiceRequest{request(fmt.Sprint("ctx-", i), 1, "750312300458"), request(fmt.Sprint("ctx-", i), 2, "750312300458")},
			timeouts(2*time.Second, map[int]time.Duration{2: 20 * time.Millisecond}))
		if r := outs[1].Result; r.Status != siobroker.StatusTimeout || r.Reason != siobroker.ReasonTimeout {
			t.Fatalf("round %d: %+v, want timeout TIMEOUT", i, r)
		}
		if r := outs[0].Result; r.Status != siobroker.StatusOK {
			t.Fatalf("round %d: the fast service: %+v", i, r)
		}
	}
}

// TestSharedQueue: services routed to one queue are consumed by one handler of the adapter and
// each answered by its own backend; a service sent to that queue which the adapter does not
// serve is answered ADAPTER_ERROR at once, naming the routing table, instead of timing out.
func TestSharedQueue(t *testing.T) {
	queueOf := func(n int) string {
		if n == 50 || n == 51 || n == 52 {
			return "sio.shared"
		}
		return schemas.ServiceTopic(n)
	}
	env := newTestEnvQueues(t, map[int]adapters.Backend{50: echoBackend(50), 51: echoBackend(51), 60: echoBackend(60)},
		siobroker.SystemClock{}, queueOf)
	reqs := []schemas.ServiceRequest{request("sq-1", 50, "750312300458"), request("sq-1", 51, "750312300458"),
		request("sq-1", 60, "750312300458"), request("sq-1", 52, "750312300458")}
	start := time.Now()
	outs := env.dispatcher.Dispatch(context.Background(), reqs, timeouts(10*time.Second, nil))
	for i, want := range []int{50, 51, 60} {
		r := outs[i].Result
		if r.Status != siobroker.StatusOK || r.Service != want || field(r.Records[0], "backend") != fmt.Sprint(want) {
			t.Errorf("service %d: %+v", want, r)
		}
	}
	if r := outs[3].Result; r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonAdapterError ||
		!strings.Contains(r.Message, "does not serve service 52") {
		t.Errorf("service 52 on a queue its adapter does not serve: %+v", r)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the unserved service waited for its timeout instead of being answered at once")
	}
}

// TestSameRequestRoutedTwice: when the same request and service are dispatched again while an
// earlier dispatch still waits (an asynchronous request picked up twice), the waiter that gives
// up first must not take the answer away from the other: it still arrives.
func TestSameRequestRoutedTwice(t *testing.T) {
	slow := adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		time.Sleep(300 * time.Millisecond)
		return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "echo", Fields: []siobroker.Field{{Name: "request", Value: req.RequestID}}}}}, nil
	})
	env := newTestEnv(t, map[int]adapters.Backend{9: slow})
	req := request("twice-1", 9, "750312300458")
	var wg sync.WaitGroup
	var short, long []Outcome
	wg.Go(func() {
		long = env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{req}, timeouts(10*time.Second, nil))
	})
	time.Sleep(20 * time.Millisecond) // the long wait registers first, as the earlier routing does
	wg.Go(func() {
		short = env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{req}, timeouts(50*time.Millisecond, nil))
	})
	wg.Wait()
	if short[0].Result.Status != siobroker.StatusTimeout {
		t.Errorf("the short wait: %+v, want a timeout", short[0].Result)
	}
	if r := long[0].Result; r.Status != siobroker.StatusOK || field(r.Records[0], "request") != "twice-1" {
		t.Errorf("the long wait lost its answer when the short one gave up: %+v", r)
	}
	if n := env.dispatcher.Pending(); n != 0 {
		t.Errorf("%d waits left registered", n)
	}
}
