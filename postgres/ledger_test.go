package postgres

import (
	"context"
	"encoding/json"
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
	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// ledgerDSN returns a DSN to a fresh schema of the tests' PostgreSQL (internal/pgtest).
func ledgerDSN(t *testing.T) string { return pgtest.Schema(t, "sio_ledger_test_") }

// open opens a ledger as one adapter process would; each has its own connections.
func open(t *testing.T, dsn, owner string) *Ledger {
	t.Helper()
	p, err := OpenLedger(t.Context(), dsn, owner, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func take(t *testing.T, p *Ledger, key string, want siobroker.LedgerState) siobroker.LedgerClaim {
	t.Helper()
	c, state, err := p.Take(t.Context(), key)
	if err != nil {
		t.Fatalf("take %s: %v", key, err)
	}
	if state != want {
		t.Fatalf("take %s: state %d, want %d", key, state, want)
	}
	if (c != nil) != (state == siobroker.LedgerTaken) {
		t.Fatalf("take %s: claim %v with state %d", key, c, state)
	}
	return c
}

// TestClaims: a claim makes the other processes wait; answered, it makes them answer their copy
// from the answer it recorded; released, or lost with its process's connections, it lets the
// next one ask. Pruning forgets the answers after the answer retention and the rows after
// LedgerRetention.
func TestClaims(t *testing.T) {
	dsn := ledgerDSN(t)
	a, b := open(t, dsn, "adapter-a"), open(t, dsn, "adapter-b")

	first := take(t, a, "req-1/5", siobroker.LedgerTaken)
	take(t, b, "req-1/5", siobroker.LedgerBusy)
	take(t, a, "req-1/5", siobroker.LedgerBusy)            // a second copy in the same process
	take(t, b, "req-2/5", siobroker.LedgerTaken).Release() // other keys are free
	answer1 := []byte(`{"requestId":"req-1","service":5}`)
	if err := first.Answered(t.Context(), time.Now(), answer1); err != nil {
		t.Fatal(err)
	}
	first.Release() // after Answered: nothing
	take(t, b, "req-1/5", siobroker.LedgerAnswered)
	take(t, a, "req-1/5", siobroker.LedgerAnswered)

	// Released without an answer (given up on): asked again.
	take(t, a, "req-3/5", siobroker.LedgerTaken).Release()
	take(t, b, "req-3/5", siobroker.LedgerTaken).Release()

	// A process that dies holding a claim, or loses its lock session, loses the claim with it.
	held := take(t, a, "req-4/5", siobroker.LedgerTaken)
	take(t, b, "req-4/5", siobroker.LedgerBusy)
	a.takeTurn(t.Context())
	pid := a.lock.PgConn().PID()
	a.endTurn()
	if _, err := b.pool.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		c, state, err := b.Take(t.Context(), "req-4/5")
		if err == nil && state == siobroker.LedgerTaken {
			c.Release()
			return true
		}
		return false
	})
	// The answer went out all the same: it is recorded, and the lost lock is reported.
	if err := held.Answered(t.Context(), time.Now(), []byte(`{"requestId":"req-4"}`)); err == nil || !strings.Contains(err.Error(), "lock session was lost") {
		t.Errorf("an answer on a lost session: %v", err)
	}
	waitFor(t, func() bool { // a takes a new lock session
		_, state, err := a.Take(t.Context(), "req-4/5")
		return err == nil && state == siobroker.LedgerAnswered
	})
	take(t, a, "req-5/5", siobroker.LedgerTaken).Release()

	// The row names who answered and when, and holds the answer, which any process reads.
	got, err := b.Answer(t.Context(), "req-1/5")
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != "adapter-a" || time.Since(got.AnsweredAt) > time.Minute || string(got.Payload) != string(answer1) {
		t.Errorf("answer: %+v", got)
	}
	if got, err := b.Answer(t.Context(), "req-3/5"); err != nil || got.Payload != nil || got.Owner != "" {
		t.Errorf("answer of a key never answered: %+v, %v", got, err)
	}

	// After the answer retention the answers are forgotten, and the rows stay: a copy is still
	// known as answered, and has no answer to be given.
	forgotten, deleted, err := a.Prune(t.Context(), time.Now().Add(siobroker.DefaultAnswerRetention+time.Minute))
	if err != nil || forgotten != 2 || deleted != 0 {
		t.Fatalf("pruned: %d answers forgotten, %d rows deleted (%v), want 2 and 0", forgotten, deleted, err)
	}
	take(t, b, "req-1/5", siobroker.LedgerAnswered)
	if got, err := b.Answer(t.Context(), "req-1/5"); err != nil || got.Payload != nil || got.Owner != "adapter-a" {
		t.Errorf("answer after the retention: %+v, %v; want the row without its answer", got, err)
	}
	// After LedgerRetention the rows go too.
	forgotten, deleted, err = a.Prune(t.Context(), time.Now().Add(LedgerRetention+time.Minute))
	if err != nil || forgotten != 0 || deleted != 2 {
		t.Fatalf("pruned: %d answers forgotten, %d rows deleted (%v), want 0 and 2", forgotten, deleted, err)
	}
	take(t, a, "req-1/5", siobroker.LedgerTaken).Release()
}

// TestLedgerTableUpgradedInPlace: a table of the version that kept no answers gets the answer
// column when a process of this version opens it; its rows stay, known as answered, without an
// answer to give.
func TestLedgerTableUpgradedInPlace(t *testing.T) {
	dsn := ledgerDSN(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `CREATE TABLE sio_adapter_ledger (key TEXT PRIMARY KEY, owner TEXT NOT NULL, answered_at TIMESTAMPTZ NOT NULL);
		INSERT INTO sio_adapter_ledger VALUES ('old/1', 'adapter-old', now())`); err != nil {
		t.Fatal(err)
	}
	a := open(t, dsn, "adapter-new")
	take(t, a, "old/1", siobroker.LedgerAnswered)
	if got, err := a.Answer(t.Context(), "old/1"); err != nil || got.Owner != "adapter-old" || got.Payload != nil {
		t.Errorf("old row: %+v, %v", got, err)
	}
	c := take(t, a, "new/1", siobroker.LedgerTaken)
	if err := c.Answered(t.Context(), time.Now(), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Answer(t.Context(), "new/1"); err != nil || string(got.Payload) != "{}" {
		t.Errorf("new row: %+v, %v", got, err)
	}
	open(t, dsn, "adapter-again") // a second open finds the column there
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}

// TestTwoProcessesAskTheSourceOnce: two adapter runtimes get every copy of a request (the
// in-process pub/sub hands each subscriber every message, as a redelivery hands a copy to
// another process); with one ledger the source is asked once per request and service, and each
// copy is answered, the second from the answer the ledger kept: the same answer twice.
func TestTwoProcessesAskTheSourceOnce(t *testing.T) {
	dsn := ledgerDSN(t)
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	slow := adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		asked.Add(1)
		time.Sleep(30 * time.Millisecond) // the other process finds the claim held, and waits
		return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "row", Fields: []siobroker.Field{{Name: "request", Value: req.RequestID}}}}}, nil
	})
	for _, name := range []string{"a", "b"} {
		rt, err := routing.NewAdapterRuntime(routing.AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "adapter-" + name, Backends: map[int]adapters.Backend{5: slow},
			Publisher: pubsub, Clock: siobroker.SystemClock{}, Logger: quiet, Ledger: open(t, dsn, "adapter-"+name)})
		if err != nil {
			t.Fatal(err)
		}
		rt.AddHandlers(router, pubsub)
	}
	replyTopic := "sio.reply.ledger-test"
	replies, err := pubsub.Subscribe(t.Context(), replyTopic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { _ = router.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		_ = router.Close()
		_ = pubsub.Close()
		running.Wait()
	})
	<-router.Running()

	const requests = 5
	for i := range requests {
		req := schemas.ServiceRequest{RequestID: "ledger-" + string(rune('a'+i)), MessageID: "m", Service: 5,
			ReplyTo: replyTopic, Deadline: time.Now().Add(10 * time.Second)}
		payload, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		msg := message.NewMessage(watermill.NewUUID(), payload)
		msgauthtest.SignRequest(msg.Metadata, msg.Payload) // as the broker makes it
		if err := pubsub.Publish(schemas.ServiceTopic(5), msg); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]string{} // request → the payloads of its answers
	deadline := time.After(10 * time.Second)
	for n := 0; n < 2*requests; n++ {
		select {
		case m := <-replies:
			var resp schemas.ServiceResponse
			if err := json.Unmarshal(m.Payload, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Result.Status != siobroker.StatusOK {
				t.Errorf("answer %+v", resp.Result)
			}
			got[resp.RequestID] = append(got[resp.RequestID], string(m.Payload))
			m.Ack()
		case <-deadline:
			t.Fatalf("%d answers of %d (two copies of %d requests): %v", n, 2*requests, requests, got)
		}
	}
	for id, answers := range got {
		if len(answers) != 2 || answers[0] != answers[1] {
			t.Errorf("%s: answers %q, want the same answer to each of its two copies", id, answers)
		}
	}
	if n := asked.Load(); n != requests {
		t.Errorf("the source was asked %d times for %d requests", n, requests)
	}
}
