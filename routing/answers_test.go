package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// memAnswers is an AnswerStore in memory, for the dispatcher's logic; the SQLite one is tested in
// package sqlite. failures makes that many KeepAnswer calls fail first, and then timeouts that
// many time out as a locked store's do (siobroker.ErrWriteTimeout).
type memAnswers struct {
	mu       sync.Mutex
	held     map[string][]byte
	sums     map[string][]byte
	keeps    int
	lookups  int
	failures int
	timeouts int
}

func newMemAnswers() *memAnswers {
	return &memAnswers{held: map[string][]byte{}, sums: map[string][]byte{}}
}

func (m *memAnswers) KeepAnswer(_ context.Context, key string, payload, sum []byte, _ time.Time) (bool, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keeps++
	if m.failures > 0 {
		m.failures--
		return false, false, errors.New("database is locked")
	}
	if m.timeouts > 0 {
		m.timeouts--
		return false, false, fmt.Errorf("keep answer: %w", siobroker.ErrWriteTimeout)
	}
	if held, ok := m.sums[key]; ok {
		return false, bytes.Equal(held, sum), nil
	}
	m.held[key], m.sums[key] = payload, sum
	return true, true, nil
}

func (m *memAnswers) Answer(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	p, ok := m.held[key]
	return p, ok, nil
}

func withAnswers(a AnswerStore) envOption {
	return func(c *envConfig) { c.dispatcher.Answers = a }
}

func countingBackend(calls *atomic.Int32) adapters.Backend {
	return adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		calls.Add(1)
		return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "row", Fields: []siobroker.Field{{Name: "a", Value: "1"}}}}}, nil
	})
}

// TestAnswerKeptBeforeAcknowledged: an answer the store could not keep is given back to the
// transport, not handed on; delivered again, it is kept and reaches its wait.
func TestAnswerKeptBeforeAcknowledged(t *testing.T) {
	answers := newMemAnswers()
	answers.failures = 1
	var calls atomic.Int32
	env := newTestEnv(t, map[int]adapters.Backend{1: countingBackend(&calls)}, withAnswers(answers))
	out := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("r-kept", 1, "810803325634")}, timeouts(5*time.Second, nil))
	if out[0].Result.Status != siobroker.StatusOK {
		t.Fatalf("result %+v", out[0].Result)
	}
	if _, ok, _ := answers.Answer(context.Background(), CorrelationKey("r-kept", 1)); !ok {
		t.Fatal("the answer was handed on without being kept")
	}
	if answers.keeps != 2 {
		t.Fatalf("KeepAnswer called %d times, want 2: failed, then kept on redelivery", answers.keeps)
	}
}

// TestAnswerHeldWhileStoreLocked: an answer the store does not take within its write timeout
// (a locked store) is held and kept once the store takes writes, not given back: RabbitMQ counts
// each return toward the reply queue's delivery limit, and a lock outlasting a few write
// timeouts would dead-letter every answer that came meanwhile.
func TestAnswerHeldWhileStoreLocked(t *testing.T) {
	answers := newMemAnswers()
	answers.timeouts = 3
	env := newTestEnv(t, nil, withAnswers(answers))
	resp := schemas.ServiceResponse{RequestID: "r-locked", Service: 1, Result: siobroker.ServiceResult{Status: siobroker.StatusOK}}
	msg, err := newJSONMessage(CorrelationKey("r-locked", 1), resp, map[string]string{schemas.MetaCorrelation: CorrelationKey("r-locked", 1)})
	if err != nil {
		t.Fatal(err)
	}
	signAnswer(msg)
	if err := env.dispatcher.handleReply(msg); err != nil {
		t.Fatalf("the reply failed while the store was locked: %v; want it held until kept", err)
	}
	if _, ok, _ := answers.Answer(context.Background(), CorrelationKey("r-locked", 1)); !ok || answers.keeps != 4 {
		t.Fatalf("kept %v after %d attempts, want kept at the 4th", ok, answers.keeps)
	}
}

// TestHeldAnswerNotAskedAgain: a service whose answer is held (a request resumed after a crash)
// is answered from it, and its adapter is not asked.
func TestHeldAnswerNotAskedAgain(t *testing.T) {
	answers := newMemAnswers()
	var calls atomic.Int32
	env := newTestEnv(t, map[int]adapters.Backend{5: countingBackend(&calls)}, withAnswers(answers))
	first := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("r-held", 5, "810803325634")}, timeouts(5*time.Second, nil))
	again := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("r-held", 5, "810803325634")}, timeouts(5*time.Second, nil))
	if calls.Load() != 1 {
		t.Fatalf("the adapter was asked %d times, want once", calls.Load())
	}
	if again[0].Result.Status != siobroker.StatusOK || len(again[0].Result.Records) != len(first[0].Result.Records) {
		t.Fatalf("resumed result %+v, first %+v", again[0].Result, first[0].Result)
	}
}

// TestFirstDispatchLooksUpNoAnswer: the first dispatch of a request (FirstDispatch) does not read
// the store for held answers; a dispatch of another request under the same context does, and is
// answered from them; so does the same request's next dispatch without the mark.
func TestFirstDispatchLooksUpNoAnswer(t *testing.T) {
	answers := newMemAnswers()
	var calls atomic.Int32
	env := newTestEnv(t, map[int]adapters.Backend{5: countingBackend(&calls)}, withAnswers(answers))
	first := FirstDispatch(context.Background(), "r-first")
	out := env.dispatcher.Dispatch(first, []schemas.ServiceRequest{request("r-first", 5, "810803325634")}, timeouts(5*time.Second, nil))
	if out[0].Result.Status != siobroker.StatusOK || calls.Load() != 1 {
		t.Fatalf("first dispatch: %+v, adapter asked %d times", out[0].Result, calls.Load())
	}
	answers.mu.Lock()
	lookups, keeps := answers.lookups, answers.keeps
	answers.mu.Unlock()
	if lookups != 0 || keeps != 1 {
		t.Fatalf("the first dispatch looked up %d held answers and kept %d, want 0 and 1", lookups, keeps)
	}
	// Another request under the mark, and the same request again without it (resumed): both are
	// looked up, and answered from what is held.
	again := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("r-first", 5, "810803325634")}, timeouts(5*time.Second, nil))
	held, err := json.Marshal(schemas.ServiceResponse{RequestID: "r-other", Service: 5, Result: out[0].Result, Adapter: "held"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := answers.KeepAnswer(context.Background(), CorrelationKey("r-other", 5), held, []byte("sum"), time.Now()); err != nil {
		t.Fatal(err)
	}
	other := env.dispatcher.Dispatch(first, []schemas.ServiceRequest{request("r-other", 5, "810803325634")}, timeouts(5*time.Second, nil))
	if calls.Load() != 1 {
		t.Fatalf("the adapter was asked %d times, want once: held answers were not used", calls.Load())
	}
	answers.mu.Lock()
	lookups = answers.lookups
	answers.mu.Unlock()
	if lookups != 2 || again[0].Result.Status != siobroker.StatusOK || other[0].Adapter != "held" {
		t.Fatalf("%d look-ups, want 2; results %+v, %+v", lookups, again[0].Result, other[0].Result)
	}
}

// TestUnreadableReplyDeadLettered: a reply that cannot be read or correlated goes to the
// dead-letter queue with the reason, rather than away.
func TestUnreadableReplyDeadLettered(t *testing.T) {
	env := newTestEnv(t, nil, func(c *envConfig) { c.dispatcher.DeadLetters = "dead-letters" })
	dead, err := env.pubsub.Subscribe(context.Background(), "dead-letters")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), message.NewMessage("poison-1", []byte("not json"))); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-dead:
		msg.Ack()
		if msg.UUID != "poison-1" || msg.Metadata.Get(schemas.MetaDeadReason) == "" ||
			msg.Metadata.Get(schemas.MetaDeadTopic) != env.dispatcher.ReplyTopic() {
			t.Fatalf("dead letter %s %v", msg.UUID, msg.Metadata)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unreadable reply was not dead-lettered")
	}
}
