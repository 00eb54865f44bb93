package amqp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

const testURL = "amqp://guest:guest@127.0.0.1:5672/"

// requireRabbit skips the test when RabbitMQ cannot be reached, or fails it when CI=true.
func requireRabbit(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:5672", 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RabbitMQ at 127.0.0.1:5672 is required when CI=true: %v", err)
		}
		t.Skipf("RabbitMQ at 127.0.0.1:5672 not reachable: %v", err)
	}
	_ = c.Close()
}

// testConfig returns a config with a prefix unique to this test run, and deletes every queue and
// the exchange it names when the test ends.
func testConfig(t *testing.T, services []int, registries []string) Config {
	t.Helper()
	requireRabbit(t)
	cfg := Config{
		URL:          testURL,
		Prefix:       "test-" + watermill.NewShortUUID() + ".",
		Services:     services,
		Registries:   registries,
		ReconnectMin: 50 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond,
	}
	t.Cleanup(func() { deleteTopology(t, cfg) })
	return cfg
}

var extraQueues sync.Map // prefix → *[]string of additional queue names (reply queues)

func deleteTopology(t *testing.T, cfg Config) {
	cfg.setDefaults()
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	names := append(cfg.workQueues(), cfg.name(cfg.DeadLetterQueue))
	if v, ok := extraQueues.Load(cfg.Prefix); ok {
		names = append(names, *v.(*[]string)...)
	}
	for _, q := range names {
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		_, _ = ch.QueueDelete(q, false, false, false) // a missing queue closes only this channel
		_ = ch.Close()
	}
	if ch, err := conn.Channel(); err == nil {
		_ = ch.ExchangeDelete(cfg.name(cfg.DeadLetterExchange), false, false)
		_ = ch.ExchangeDelete(cfg.name(ReplyExchange), false, false)
		_ = ch.Close()
	}
}

func rememberQueue(cfg Config, q string) {
	v, _ := extraQueues.LoadOrStore(cfg.Prefix, &[]string{})
	p := v.(*[]string)
	*p = append(*p, q) // tests register from one goroutine
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	tr, err := New(ctxFor(t, 10*time.Second), cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func newBroker(t *testing.T, cfg Config, instance string) *Transport {
	t.Helper()
	cfg.Instance = instance
	rememberQueue(cfg, cfg.replyQueue())
	tr, err := NewBrokerTransport(ctxFor(t, 10*time.Second), cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// runRouter runs a router with the handlers add registers, until the test ends.
func runRouter(t *testing.T, add func(*message.Router)) {
	t.Helper()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	add(router)
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
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("router did not stop")
		}
	})
	select {
	case <-router.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("router did not start")
	}
}

// quietLogger discards, unless SIO_TEST_LOG names a level (debug, info, warn, error): then the
// routing parts' log goes to stderr, to follow a message through a failed test.
var quietLogger = func() *slog.Logger {
	var level slog.Level
	if name := os.Getenv("SIO_TEST_LOG"); name != "" && level.UnmarshalText([]byte(name)) == nil {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

func TestConfigValidate(t *testing.T) {
	good := Config{URL: testURL, Instance: "broker-1", Services: []int{1, 93}, Registries: []string{"erdr"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, c := range map[string]Config{
		"no url":       {},
		"bad url":      {URL: "http://x"},
		"bad instance": {URL: testURL, Instance: "a b"},
		"bad service":  {URL: testURL, Services: []int{0}},
		"bad registry": {URL: testURL, Registries: []string{"x/y"}},
		"bad prefetch": {URL: testURL, Prefetch: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	var c Config
	c.setDefaults()
	if c.Prefetch != 1 || c.Concurrency != 4 || c.ChannelPoolSize != 8 || c.ConfirmTimeout != 5*time.Second ||
		c.DeadLetterExchange != "sio.dlx" || c.DeadLetterQueue != "sio.dlq" || c.ClassicQueues {
		t.Errorf("defaults: %+v", c)
	}
}

func TestStringHeaders(t *testing.T) {
	d := stringHeaders(amqp091.Delivery{Headers: amqp091.Table{
		"x-delivery-count": int64(3), "s": "v", "b": true, "x-death": []any{amqp091.Table{"count": int64(1)}},
	}})
	if d.Headers["x-delivery-count"] != "3" || d.Headers["s"] != "v" || d.Headers["b"] != "true" {
		t.Errorf("headers: %v", d.Headers)
	}
	if _, ok := d.Headers["x-death"]; ok {
		t.Errorf("x-death kept: %v", d.Headers)
	}
}

func TestDeclareIdempotentQuorum(t *testing.T) {
	cfg := testConfig(t, []int{1, 93}, []string{"erdr"})
	for i := range 2 {
		if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
			t.Fatalf("Declare #%d: %v", i+1, err)
		}
	}
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg.setDefaults()
	// A quorum declare with the same arguments is accepted only by an equivalent quorum queue.
	for _, q := range cfg.workQueues() {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.QueueDeclare(q, true, false, false, false, amqp091.Table{
			amqp091.QueueTypeArg: amqp091.QueueTypeQuorum, "x-dead-letter-exchange": cfg.name(cfg.DeadLetterExchange)})
		if err != nil {
			t.Errorf("queue %s is not a quorum queue with the DLX: %v", q, err)
			continue
		}
		_ = ch.Close()
	}

	// The dead-letter exchange reaches the dead-letter queue.
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), cfg.name(cfg.DeadLetterExchange), "any", false, false, amqp091.Publishing{Body: []byte("dead")})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(ctxFor(t, 5*time.Second)); err != nil || !ok {
		t.Fatalf("confirm: %v %v", ok, err)
	}
	waitFor(t, 5*time.Second, func() bool {
		q, err := ch.QueueDeclarePassive(cfg.name(cfg.DeadLetterQueue), true, false, false, false, nil)
		return err == nil && q.Messages == 1
	}, "dead-lettered message in the DLQ")
}

func TestDeclareFallsBackToClassic(t *testing.T) {
	cfg := testConfig(t, []int{7}, nil)
	cfg.setDefaults()
	// The queue exists already as a classic queue with the same dead-letter exchange: the quorum
	// declare is refused, the classic one matches.
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kind, err := declareQueue(conn, Config{ClassicQueues: true, Prefix: cfg.Prefix, DeadLetterExchange: cfg.DeadLetterExchange}, cfg.workQueues()[0], true)
	if err != nil || kind != Classic {
		t.Fatalf("classic declare: %v %v", kind, err)
	}
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatalf("Declare over a classic queue: %v", err)
	}
	kind, err = declareQueue(conn, cfg, cfg.workQueues()[0], true)
	if err != nil || kind != Classic {
		t.Fatalf("fallback: %v %v", kind, err)
	}
}

func TestNewRequiresDeclaredQueues(t *testing.T) {
	cfg := testConfig(t, []int{12}, nil)
	_, err := New(ctxFor(t, 5*time.Second), cfg, nil)
	if err == nil {
		t.Fatal("New without Declare: no error")
	}
	t.Log(err)
}

func TestNewGivesUpWhenContextEnds(t *testing.T) {
	cfg := Config{URL: "amqp://guest:guest@127.0.0.1:1/", ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}
	start := time.Now()
	_, err := New(ctxFor(t, 300*time.Millisecond), cfg, nil)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}

func TestPublishConfirmedAndUnroutable(t *testing.T) {
	cfg := testConfig(t, []int{3}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, cfg)
	if err := tr.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := tr.Publisher().Publish(schemas.ServiceTopic(3), message.NewMessage("m1", []byte("x"))); err != nil {
		t.Fatalf("publish to a declared queue: %v", err)
	}
	for i := range 3 { // the channel stays usable after a return
		err := tr.Publisher().Publish(schemas.ServiceTopic(4), message.NewMessage("m"+strconv.Itoa(i), []byte("x")))
		if !errors.Is(err, ErrUnroutable) {
			t.Fatalf("publish to an undeclared queue: %v, want ErrUnroutable", err)
		}
	}
	if _, err := tr.Subscriber().Subscribe(ctxFor(t, 5*time.Second), schemas.ServiceTopic(4)); err == nil {
		t.Fatal("subscribe to an undeclared queue: no error")
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Ready(); !errors.Is(err, ErrClosed) {
		t.Errorf("Ready after Close: %v", err)
	}
	if err := tr.Publisher().Publish(schemas.ServiceTopic(3), message.NewMessage("m9", []byte("x"))); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after Close: %v", err)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countingBackend answers one record naming the request, service and adapter, and counts what
// it served.
type counter struct {
	mu      sync.Mutex
	byKey   map[string]int // request/service → times processed
	byAdapt map[string]int
}

func newCounter() *counter { return &counter{byKey: map[string]int{}, byAdapt: map[string]int{}} }

func (c *counter) backend(adapter string, service int) adapters.Backend {
	return adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		c.mu.Lock()
		c.byKey[req.RequestID+"/"+strconv.Itoa(req.Service)]++
		c.byAdapt[adapter]++
		c.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "echo", Fields: []siobroker.Field{
			{Name: "service", Value: strconv.Itoa(service)},
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

func startAdapter(t *testing.T, cfg Config, name string, services []int, c *counter) {
	t.Helper()
	tr := newTransport(t, cfg)
	backends := map[int]adapters.Backend{}
	for _, s := range services {
		backends[s] = c.backend(name, s)
	}
	rt := newAdapterRuntime(t, routing.AdapterConfig{Name: name, Backends: backends, Publisher: tr.Publisher()})
	runRouter(t, func(r *message.Router) { rt.AddHandlers(r, tr.Subscriber()) })
}

// brokerMade is a service message as the tests' broker makes it (msgauthtest): authenticated
// for msgauthtest.Adapter, whatever its payload, so that a test reaches what the adapter does
// with it after the authentication.
func brokerMade(t *testing.T, uuid string, payload []byte) *message.Message {
	t.Helper()
	msg := message.NewMessage(uuid, payload)
	if err := msgauthtest.Broker().SignRequest(msgauthtest.Adapter, msg.Metadata, msg.Payload, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return msg
}

// newAdapterRuntime builds an adapter runtime from cfg, on the system clock and the quiet logger,
// with the tests' keys (msgauthtest) unless cfg has its own.
func newAdapterRuntime(t *testing.T, cfg routing.AdapterConfig) *routing.AdapterRuntime {
	t.Helper()
	cfg.Clock, cfg.Logger = siobroker.SystemClock{}, quietLogger
	if cfg.Auth == nil {
		cfg.Auth = msgauthtest.AdapterKeys(msgauthtest.Adapter)
	}
	rt, err := routing.NewAdapterRuntime(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func startBroker(t *testing.T, cfg Config, instance string) *routing.Dispatcher {
	t.Helper()
	tr := newBroker(t, cfg, instance)
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: tr.Publisher(), ReplyTopic: tr.ReplyTopic()})
	runRouter(t, func(r *message.Router) { d.AddHandlers(r, tr.Subscriber()) })
	return d
}

// newDispatcher builds a dispatcher from cfg, on the system clock and the quiet logger, with the
// tests' keys (msgauthtest: every service to msgauthtest.Adapter) unless cfg has its own.
func newDispatcher(t *testing.T, cfg routing.DispatcherConfig) *routing.Dispatcher {
	t.Helper()
	cfg.Clock, cfg.Logger = siobroker.SystemClock{}, quietLogger
	if cfg.Auth == nil {
		cfg.Auth, cfg.AdapterOf = msgauthtest.Broker(), msgauthtest.AllTo(msgauthtest.Adapter)
	}
	if cfg.RegistryAdapterOf == nil {
		cfg.RegistryAdapterOf = msgauthtest.AllRegistriesTo(msgauthtest.Adapter)
	}
	d, err := routing.NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// dispatchAll sends n requests concurrently, each for every service, and checks every answer
// belongs to its request and service.
func dispatchAll(t *testing.T, d *routing.Dispatcher, tag string, n int, services []int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			reqID := fmt.Sprintf("%s-%d", tag, i)
			iin := fmt.Sprintf("%012d", i)
			reqs := make([]schemas.ServiceRequest, 0, len(services))
			for _, s := range services {
				reqs = append(reqs, schemas.ServiceRequest{RequestID: reqID, MessageID: "msg-" + reqID, Service: s,
					Basis: siobroker.BasisCriminal, Subject: siobroker.Subject{IIN: iin}, SignerIIN: "750312300458"})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			outs := d.Dispatch(ctx, reqs, func(int) time.Duration { return 20 * time.Second })
			for j, o := range outs {
				s := services[j]
				if o.Result.Status != siobroker.StatusOK || len(o.Result.Records) != 1 {
					t.Errorf("%s service %d: %+v", reqID, s, o.Result)
					continue
				}
				r := o.Result.Records[0]
				if field(r, "request") != reqID || field(r, "service") != strconv.Itoa(s) || field(r, "subject") != iin {
					t.Errorf("%s service %d: answer of another request: %+v", reqID, s, r)
				}
			}
		})
	}
	wg.Wait()
}

func TestRoutingRoundTrip(t *testing.T) {
	services := []int{1, 5, 11, 37, 93}
	cfg := testConfig(t, services, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	c := newCounter()
	startAdapter(t, cfg, "a1", services, c)
	d := startBroker(t, cfg, "broker-1")
	dispatchAll(t, d, "rt", 40, services)
	if d.Pending() != 0 {
		t.Errorf("pending: %d", d.Pending())
	}
}

func TestCompetingAdaptersAndBrokers(t *testing.T) {
	services := []int{2, 17, 44}
	cfg := testConfig(t, services, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	c := newCounter()
	for _, a := range []string{"a1", "a2", "a3"} {
		startAdapter(t, cfg, a, services, c)
	}
	d1 := startBroker(t, cfg, "broker-1")
	d2 := startBroker(t, cfg, "broker-2")
	var wg sync.WaitGroup
	wg.Go(func() { dispatchAll(t, d1, "b1", 40, services) })
	wg.Go(func() { dispatchAll(t, d2, "b2", 40, services) })
	wg.Wait()

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byKey) != 2*40*len(services) {
		t.Errorf("processed %d distinct service requests, want %d", len(c.byKey), 2*40*len(services))
	}
	for k, n := range c.byKey {
		if n != 1 {
			t.Errorf("%s processed %d times", k, n)
		}
	}
	t.Logf("work per adapter: %v", c.byAdapt)
	for _, a := range []string{"a1", "a2", "a3"} {
		if c.byAdapt[a] == 0 {
			t.Errorf("adapter %s got no work: %v", a, c.byAdapt)
		}
	}
}

func TestPersistenceAcrossTransports(t *testing.T) {
	cfg := testConfig(t, []int{8}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	tr1, err := New(ctxFor(t, 10*time.Second), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("persist-1", []byte(`{"requestId":"p1"}`))
	msg.Metadata.Set(schemas.MetaRequestID, "p1")
	if err := tr1.Publisher().Publish(schemas.ServiceTopic(8), msg); err != nil {
		t.Fatal(err)
	}
	if err := tr1.Close(); err != nil {
		t.Fatal(err)
	}

	tr2 := newTransport(t, cfg)
	ctx := ctxFor(t, 10*time.Second)
	ch, err := tr2.Subscriber().Subscribe(ctx, schemas.ServiceTopic(8))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ch:
		if got.UUID != "persist-1" || string(got.Payload) != `{"requestId":"p1"}` || got.Metadata.Get(schemas.MetaRequestID) != "p1" {
			t.Errorf("got %s %q %v", got.UUID, got.Payload, got.Metadata)
		}
		got.Ack()
	case <-ctx.Done():
		t.Fatal("the message published before the close did not arrive")
	}
}

func TestNackRedeliversWithDeliveryCount(t *testing.T) {
	cfg := testConfig(t, []int{9}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, cfg)
	const failures = 3
	var attempts atomic.Int32
	var mu sync.Mutex
	var counts []string
	done := make(chan struct{})
	runRouter(t, func(r *message.Router) {
		r.AddConsumerHandler("failing", schemas.ServiceTopic(9), tr.Subscriber(), func(msg *message.Message) error {
			n := attempts.Add(1)
			mu.Lock()
			counts = append(counts, msg.Metadata.Get(MetaDeliveryCount))
			mu.Unlock()
			if n <= failures {
				return fmt.Errorf("failure %d", n)
			}
			if n == failures+1 {
				close(done)
			}
			return nil
		})
	})
	if err := tr.Publisher().Publish(schemas.ServiceTopic(9), message.NewMessage("redeliver-1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("after %d attempts the message was not handled successfully", attempts.Load())
	}
	time.Sleep(300 * time.Millisecond) // nothing more may come
	if n := attempts.Load(); n != failures+1 {
		t.Errorf("attempts = %d, want %d", n, failures+1)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("x-delivery-count per attempt: %q", counts)
	if counts[0] != "" && counts[0] != "0" {
		t.Errorf("first delivery count %q", counts[0])
	}
	if last := counts[len(counts)-1]; last != strconv.Itoa(failures) {
		// RabbitMQ 3.x and 4.x both count requeues of a quorum queue in x-delivery-count.
		t.Errorf("last delivery count %q, want %d", last, failures)
	}
}

func TestDeliveryLimitDeadLetters(t *testing.T) {
	cfg := testConfig(t, []int{10}, nil)
	cfg.DeliveryLimit = 2
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, cfg)
	var attempts atomic.Int32
	runRouter(t, func(r *message.Router) {
		r.AddConsumerHandler("poison", schemas.ServiceTopic(10), tr.Subscriber(), func(msg *message.Message) error {
			attempts.Add(1)
			return errors.New("always fails")
		})
	})
	if err := tr.Publisher().Publish(schemas.ServiceTopic(10), message.NewMessage("poison-1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	cfg.setDefaults()
	waitFor(t, 10*time.Second, func() bool {
		q, err := ch.QueueDeclarePassive(cfg.name(cfg.DeadLetterQueue), true, false, false, false, nil)
		return err == nil && q.Messages == 1
	}, "the poison message in the DLQ")
	time.Sleep(200 * time.Millisecond)
	// Delivered once, then redelivered DeliveryLimit times; the next return dead-letters it.
	if n := attempts.Load(); n != int32(cfg.DeliveryLimit)+1 {
		t.Errorf("attempts = %d, want %d", n, cfg.DeliveryLimit+1)
	}
}

func TestSubscribeRunsConcurrencyHandlers(t *testing.T) {
	cfg := testConfig(t, []int{20}, nil)
	cfg.Concurrency = 3
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, cfg)
	var inflight, maxInflight, handled atomic.Int32
	release := make(chan struct{})
	runRouter(t, func(r *message.Router) {
		r.AddConsumerHandler("slow", schemas.ServiceTopic(20), tr.Subscriber(), func(msg *message.Message) error {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				m := maxInflight.Load()
				if n <= m || maxInflight.CompareAndSwap(m, n) {
					break
				}
			}
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			handled.Add(1)
			return nil
		})
	})
	for i := range 6 {
		if err := tr.Publisher().Publish(schemas.ServiceTopic(20), message.NewMessage(fmt.Sprintf("c-%d", i), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, func() bool { return maxInflight.Load() >= 3 }, "3 handlers in flight")
	close(release)
	waitFor(t, 10*time.Second, func() bool { return handled.Load() == 6 }, "all 6 handled")
	if m := maxInflight.Load(); m != 3 {
		t.Errorf("max in flight = %d, want 3 (Concurrency)", m)
	}
}

func TestCleanupDeletesTopology(t *testing.T) {
	cfg := testConfig(t, []int{30}, []string{"courts"})
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	deleteTopology(t, cfg)
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg.setDefaults()
	for _, q := range append(cfg.workQueues(), cfg.name(cfg.DeadLetterQueue)) {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err == nil {
			t.Errorf("queue %s still exists", q)
			_ = ch.Close()
		}
	}
}

func TestPublisherReconnects(t *testing.T) {
	cfg := testConfig(t, []int{31}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, cfg)
	if err := tr.Publisher().Publish(schemas.ServiceTopic(31), message.NewMessage("r-0", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	// Drop the publishing connection under the pooled channels.
	if err := tr.pubConn.get().Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	waitFor(t, 10*time.Second, func() bool {
		err = tr.Publisher().Publish(schemas.ServiceTopic(31), message.NewMessage("r-1", []byte("x")))
		return err == nil
	}, "a publish after the connection came back")
	if err := tr.Ready(); err != nil {
		t.Errorf("Ready after reconnect: %v", err)
	}
}

// TestConnectionLost: the errors of a publish whose connection died under it are the
// transport's, to be published again, whether amqp091 noticed first or the socket did.
func TestConnectionLost(t *testing.T) {
	reset := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{amqp091.ErrClosed, true},
		{reset, true},
		{fmt.Errorf("wrapped: %w", reset), true},
		{syscall.EPIPE, true},
		{io.EOF, true},
		{errors.New("amqp: message returned unroutable"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := connectionLost(c.err); got != c.want {
			t.Errorf("connectionLost(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestDeadLetterLimitWarning: only RabbitMQ 4.0 to 4.2 with a quorum dead-letter queue count the
// dead-letter tools' reads toward a limit that drops messages; the warning names the queue and
// the policy that lifts the limit.
func TestDeadLetterLimitWarning(t *testing.T) {
	for _, tt := range []struct {
		version string
		kind    QueueKind
		warn    bool
	}{
		{"3.10.8", Quorum, false},
		{"3.13.7", Quorum, false},
		{"4.0.5", Quorum, true},
		{"4.2.1", Quorum, true},
		{"4.2.1", Classic, false},
		{"4.3.0", Quorum, false},
		{"5.0.0", Quorum, false},
		{"", Quorum, false},
	} {
		w := deadLetterLimitWarning(tt.version, tt.kind, "p.sio.dlq")
		if (w != "") != tt.warn {
			t.Errorf("RabbitMQ %q, %s dead-letter queue: warning %q, want one: %v", tt.version, tt.kind, w, tt.warn)
		}
		if w != "" && (!strings.Contains(w, `'^p\.sio\.dlq$'`) || !strings.Contains(w, `"delivery-limit": -1`)) {
			t.Errorf("warning %q does not give the policy for p.sio.dlq", w)
		}
	}
}

// TestPassingFailureOutlivesTheDeliveryLimit: a delivery that fails for a reason that passes
// within a second or so (a store busy while the broker starts) is given back after a pause that
// grows with each redelivery, not at once: given back at once, it failed again within
// milliseconds and reached the queue's delivery limit before the reason passed. Here the handler
// fails for 1.5 s under a delivery limit of 5, and the message is handled, not dead-lettered.
func TestPassingFailureOutlivesTheDeliveryLimit(t *testing.T) {
	cfg := testConfig(t, []int{8}, nil)
	cfg.DeliveryLimit = 5
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, cfg)
	var attempts atomic.Int32
	var start time.Time
	done := make(chan struct{})
	runRouter(t, func(r *message.Router) {
		r.AddConsumerHandler("failing-a-while", schemas.ServiceTopic(8), tr.Subscriber(), func(msg *message.Message) error {
			attempts.Add(1)
			if time.Since(start) < 1500*time.Millisecond {
				return errors.New("the store takes no writes yet")
			}
			close(done)
			return nil
		})
	})
	start = time.Now()
	if err := tr.Publisher().Publish(schemas.ServiceTopic(8), message.NewMessage("passing-1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		letters, _ := ListDeadLetters(ctxFor(t, 10*time.Second), cfg, 10)
		t.Fatalf("not handled after %d attempts; dead letters: %+v", attempts.Load(), letters)
	}
	if n := attempts.Load(); n > 5 {
		t.Errorf("%d attempts in 1.5 s of failure, want the pauses to space them (at most 5)", n)
	}
}
