package amqp

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// TestAskedAgainAnsweredFromTheLedger: a broker that crashed asks again for a request an adapter
// process answered (the same request id and service). Another adapter process, which never saw
// the request, answers it from the answer the shared ledger kept, without asking the source; the
// broker gets the same answer instead of a timeout. Once the ledger has forgotten the answer
// (past its retention), a copy is not answered and goes to the dead-letter queue with why.
func TestAskedAgainAnsweredFromTheLedger(t *testing.T) {
	const service = 15
	dsn := pgtest.Schema(t, "sio_amqp_again_")
	cfg := testConfig(t, []int{service}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	d := startBroker(t, cfg, "broker-again")
	c := newCounter()
	openLedger := func(owner string) *postgres.Ledger {
		l, err := postgres.OpenLedger(t.Context(), dsn, owner, 0, quietLogger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		return l
	}
	ask := func(wait time.Duration) routing.Outcome {
		ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
		defer cancel()
		return d.Dispatch(ctx, []schemas.ServiceRequest{{RequestID: "again-1", Service: service,
			Subject: siobroker.Subject{IIN: "750312300458"}}}, func(int) time.Duration { return wait })[0]
	}

	// process starts an adapter process with its own memory of answers and the shared ledger; stop
	// ends it.
	process := func(name string, l *postgres.Ledger) (stop func()) {
		tr, err := New(ctxFor(t, 10*time.Second), cfg, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		rt := newAdapterRuntime(t, routing.AdapterConfig{Name: name, Backends: map[int]adapters.Backend{service: c.backend(name, service)},
			Publisher: tr.Publisher(), Ledger: l, DeadLetters: tr.DeadLetterTopic()})
		router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		rt.AddHandlers(router, tr.Subscriber())
		done := make(chan struct{})
		go func() { defer close(done); _ = router.Run(context.Background()) }()
		<-router.Running()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				_ = tr.Close()
				_ = router.Close()
				<-done
			})
		}
		t.Cleanup(stop)
		return stop
	}

	// The first adapter process answers, and goes away.
	stop := process("first", openLedger("first"))
	answered := ask(10 * time.Second)
	if answered.Result.Status != siobroker.StatusOK || answered.Adapter != "first" {
		t.Fatalf("first answer %+v", answered)
	}
	stop()

	// The broker asks again; the second process answers from the ledger.
	secondLedger := openLedger("second")
	stop = process("second", secondLedger)
	again := ask(10 * time.Second)
	if again.Result.Status != siobroker.StatusOK || again.Adapter != "first" || len(again.Result.Records) != 1 ||
		field(again.Result.Records[0], "request") != "again-1" {
		t.Fatalf("asked again: %+v, want the first process's answer", again)
	}
	c.mu.Lock()
	asked := c.byKey["again-1/15"]
	c.mu.Unlock()
	if asked != 1 {
		t.Fatalf("the source was asked %d times, want once", asked)
	}
	stop() // its memory of answers would give the answer again

	// Past the answer retention the answer is forgotten: a copy reaching a third process is
	// dead-lettered, unanswered.
	process("third", openLedger("third"))
	if forgotten, _, err := secondLedger.Prune(t.Context(), time.Now().Add(siobroker.DefaultAnswerRetention+time.Minute)); err != nil || forgotten != 1 {
		t.Fatalf("forgot %d answers, %v", forgotten, err)
	}
	if late := ask(time.Second); late.Result.Status != siobroker.StatusTimeout {
		t.Fatalf("after the retention: %+v, want no answer", late.Result)
	}
	// Every copy on the queue is one (the earlier processes stopped right after answering, so
	// their acknowledgements may have been lost with them, as in a crash).
	var letters []DeadLetter
	waitFor(t, 10*time.Second, func() bool {
		var err error
		letters, err = ListDeadLetters(ctxFor(t, 10*time.Second), cfg, 10)
		return err == nil && len(letters) >= 1
	}, "the forgotten copy in the dead-letter queue")
	for _, l := range letters {
		if l.MessageID != "again-1/15" || l.Queue != cfg.name(schemas.ServiceTopic(service)) ||
			!strings.Contains(l.Reason, "answered by adapter process first at") || !strings.Contains(l.Reason, "no longer keeps that answer") {
			t.Errorf("dead letter %+v", l)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.byKey["again-1/15"]; n != 1 {
		t.Errorf("the source was asked %d times, want once", n)
	}
}
