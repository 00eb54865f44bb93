package amqp

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
)

// suiteFeatures are what our transport offers, in the terms of watermill's shared pub/sub test
// suite (tests.Features), as it runs in production: Config's defaults, quorum queues, the
// topology Declare makes.
var suiteFeatures = tests.Features{
	// Addressing is queue-per-topic (through the default exchange, but for reply topics and the
	// dead-letter queue, which the suite does not use): every subscriber of a topic
	// consumes its one queue and competes for its messages, as the adapter processes of one
	// service do. There is no fan-out to groups; a group would be a queue of its own.
	ConsumerGroups: false,
	// At least once: a message whose ack was lost with its channel, or that was handed over
	// while its subscription ended, is delivered again. The routing package recognises copies by
	// their correlation key.
	ExactlyOnceDelivery: false,
	// Subscribe runs Config.Concurrency consumers (4 by default), each handing over its next
	// message while the others' are still unacknowledged, and processes compete on one queue:
	// messages are handled out of order, and a second one arrives before the first is acked
	// (the suite's TestNoAck). The routing package needs no order: it correlates by key.
	// TestPubSubSuiteOrder shows the order kept with one consumer.
	GuaranteedOrder:                     false,
	GuaranteedOrderWithSingleSubscriber: false,
	// Durable queues and persistent, confirmed messages: what one Transport published, another
	// consumes, and a subscription closed and opened again loses nothing.
	Persistent: true,
	// No RestartServiceCommand: it would restart the machine's RabbitMQ, which the other test
	// packages use at the same time. Restarts and kills of RabbitMQ are tested on private nodes
	// (restart_test.go, killed_test.go; internal/rabbitnode).
	RestartServiceCommand: nil,
	// A queue's messages go to whoever consumes it, once: a new subscriber gets only what is
	// still in the queue.
	NewSubscriberReceivesOldMessages: false,
	// AMQP carries headers, not a Go context.
	ContextPreserved: false,
	// The suite's full sizes (5 000 to 10 000 messages per test, 50 subscribers) take minutes
	// here with -race; the short sizes still send every test's traffic through confirms, nacks,
	// requeues and closes. SIO_PUBSUB_SUITE_FULL=1 runs the full sizes.
	ForceShort: !suiteFull(),
}

func suiteFull() bool {
	full, _ := strconv.ParseBool(os.Getenv("SIO_PUBSUB_SUITE_FULL"))
	return full
}

// TestPubSubSuite runs watermill's shared pub/sub test suite, which every watermill backend must
// pass, on this transport's Publisher and Subscriber against the machine's RabbitMQ.
func TestPubSubSuite(t *testing.T) {
	requireRabbit(t)
	tests.TestPubSub(t, suiteFeatures, newSuite(Config{}).pubSub, nil)
}

// TestPubSubSuiteOrder runs the suite's two order tests with one consumer per Subscribe
// (Concurrency 1) and one subscriber: then messages are handed over in queue order, one at a
// time, each after the last was acknowledged.
func TestPubSubSuiteOrder(t *testing.T) {
	requireRabbit(t)
	features := suiteFeatures
	features.GuaranteedOrder, features.GuaranteedOrderWithSingleSubscriber = true, true
	s := newSuite(Config{Concurrency: 1})
	for name, test := range map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
		"TestPublishSubscribeInOrder": tests.TestPublishSubscribeInOrder,
		"TestNoAck":                   tests.TestNoAck,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, s.pubSub)
		})
	}
}

// suite makes the suite's publishers and subscribers. Each test of the suite gets a prefix of its
// own, so that tests and runs do not share queues, and every queue it declared is deleted when
// it ends; the publishers and subscribers a test makes share its queues, as the suite expects.
type suite struct {
	base  Config
	run   string // this run's id
	count atomic.Int64

	mu      sync.Mutex
	perTest map[string]*suiteTest // by t.Name()
}

func newSuite(base Config) *suite {
	base.URL = testURL
	base.ReconnectMin, base.ReconnectMax = 50*time.Millisecond, 500*time.Millisecond
	return &suite{base: base, run: watermill.NewShortUUID(), perTest: map[string]*suiteTest{}}
}

// suiteTest is one test's topology: its config and the topics it declared.
type suiteTest struct {
	cfg Config

	mu     sync.Mutex
	topics map[string]*topicDeclared
}

type topicDeclared struct {
	once sync.Once
	err  error
}

// test returns t's topology, made on the first call, with its cleanup.
func (s *suite) test(t *testing.T) *suiteTest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.perTest[t.Name()]; ok {
		return st
	}
	cfg := s.base
	cfg.Prefix = "wmsuite-" + s.run + "-" + strconv.FormatInt(s.count.Add(1), 10) + "."
	st := &suiteTest{cfg: cfg, topics: map[string]*topicDeclared{}}
	s.perTest[t.Name()] = st
	// The topology without work queues (the exchanges, the dead-letter queue), as a broker
	// declares it at start-up before a transport connects: New checks the reply exchange.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Declare(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // registered first, so it runs after the transports' Close
		st.mu.Lock()
		cfg := st.cfg
		for topic := range st.topics {
			cfg.Queues = append(cfg.Queues, topic)
		}
		st.mu.Unlock()
		deleteTopology(t, cfg)
	})
	return st
}

// declare declares topic's queue (and the dead-letter topology) once per test, as Declare does at
// start-up for the configured topics: the transport itself declares nothing.
func (st *suiteTest) declare(topic string) error {
	st.mu.Lock()
	d, ok := st.topics[topic]
	if !ok {
		d = &topicDeclared{}
		st.topics[topic] = d
	}
	st.mu.Unlock()
	d.once.Do(func() {
		cfg := st.cfg
		cfg.Queues = []string{topic}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.err = Declare(ctx, cfg)
	})
	return d.err
}

// pubSub is the suite's PubSubConstructor. The publisher and the subscriber have a Transport each,
// because the suite closes one and goes on with the other; each Close closes its Transport.
func (s *suite) pubSub(t *testing.T) (message.Publisher, message.Subscriber) {
	st := s.test(t)
	return suitePublisher{s.transport(t, st)}, suiteSubscriber{s.transport(t, st), st}
}

func (s *suite) transport(t *testing.T, st *suiteTest) *Transport {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := New(ctx, st.cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() }) // for the pubsubs a test of the suite leaves open
	return tr
}

type suitePublisher struct{ tr *Transport }

func (p suitePublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.tr.Publisher().Publish(topic, msgs...)
}
func (p suitePublisher) Close() error { return p.tr.Close() }

type suiteSubscriber struct {
	tr *Transport
	st *suiteTest
}

func (s suiteSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.tr.Subscriber().Subscribe(ctx, topic)
}

// SubscribeInitialize is watermill's hook for a topic's topology, which the suite calls before it
// publishes to a topic or subscribes to it.
func (s suiteSubscriber) SubscribeInitialize(topic string) error { return s.st.declare(topic) }

func (s suiteSubscriber) Close() error { return s.tr.Close() }
