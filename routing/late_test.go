package routing

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// collectLate returns the option that makes env's dispatcher hand its late answers to the
// returned channel.
func collectLate() (<-chan LateAnswer, envOption) {
	ch := make(chan LateAnswer, 16)
	return ch, onLateAnswer(func(_ context.Context, a LateAnswer) (bool, error) {
		select {
		case ch <- a:
		default:
			panic("more late answers than the test expects")
		}
		return true, nil
	})
}

func waitLate(t *testing.T, ch <-chan LateAnswer) LateAnswer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(2 * time.Second):
		t.Fatal("no late answer reached the hook")
		return LateAnswer{}
	}
}

// publishReply puts an answer on env's reply topic as an adapter would, correlated by key and
// authenticated.
func publishReply(t *testing.T, env *testEnv, key string, v any) {
	t.Helper()
	payload, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(schemas.MetaCorrelation, key)
	msg.Metadata.Set(schemas.MetaMessageID, "msg-"+key)
	signAnswer(msg)
	if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), msg); err != nil {
		t.Fatal(err)
	}
}

func okResponse(requestID string, service int) schemas.ServiceResponse {
	return schemas.ServiceResponse{RequestID: requestID, Service: service, Adapter: "copy", AnsweredAt: time.Now(),
		Result: siobroker.ServiceResult{Service: service, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK}}
}

// captureReplies keeps the first answer of each correlation key that reaches env's reply topic
// (GoChannel gives every subscriber every message), for a test to send a copy of it.
func captureReplies(t *testing.T, env *testEnv) func(key string) []byte {
	t.Helper()
	msgs, err := env.pubsub.Subscribe(context.Background(), env.dispatcher.ReplyTopic())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string][]byte{}
	go func() {
		for m := range msgs { // closed with the pubsub
			mu.Lock()
			if k := m.Metadata.Get(schemas.MetaCorrelation); seen[k] == nil {
				seen[k] = m.Payload
			}
			mu.Unlock()
			m.Ack()
		}
	}()
	return func(key string) []byte {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			mu.Lock()
			p := seen[key]
			mu.Unlock()
			if p != nil {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer of %s was seen", key)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// publishRaw puts payload on env's reply topic as a new message correlated by key: a copy of an
// answer, as an adapter gives it again from its cache.
func publishRaw(t *testing.T, env *testEnv, key string, payload []byte) {
	t.Helper()
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(schemas.MetaCorrelation, key)
	signAnswer(msg)
	if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), msg); err != nil {
		t.Fatal(err)
	}
}

// TestDuplicateAnswerIsNotLate: a copy of an answer its waiter already had (the same bytes) is
// only logged; a different answer to the same key (a dead letter replayed after the adapter
// gave up) and an answer whose wait ended unanswered go to the hook, even when an earlier wait
// for the same key was answered (the request routed again).
func TestDuplicateAnswerIsNotLate(t *testing.T) {
	late, lateOpt := collectLate()
	env := newTestEnv(t, map[int]adapters.Backend{3: echoBackend(3)}, lateOpt)
	answer := captureReplies(t, env)

	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("dup-1", 3, "750312300458")},
		timeouts(2*time.Second, nil))
	if outs[0].Result.Status != siobroker.StatusOK {
		t.Fatalf("first answer %+v", outs[0].Result)
	}
	publishRaw(t, env, "dup-1/3", answer("dup-1/3"))
	env.logs.waitFor(t, "duplicate answer", "dup-1/3")
	// The reply handler takes one message at a time, in order: once this marker reached the
	// hook, the copy before it was decided.
	publishReply(t, env, "marker-1/3", okResponse("marker-1", 3))
	if a := waitLate(t, late); a.Key != "marker-1/3" {
		t.Fatalf("the duplicate went to the hook: %+v", a)
	}
	// Another answer to the answered key is a result nobody received.
	publishReply(t, env, "dup-1/3", okResponse("dup-1", 3))
	if a := waitLate(t, late); a.Key != "dup-1/3" || a.Adapter != "copy" {
		t.Fatalf("late answer %+v, want the second, different answer of dup-1/3", a)
	}

	// The same key waited for anew, and that wait times out: its answer is late.
	env.dispatcher.mu.Lock()
	env.dispatcher.answeredKeys.put("dup-2/4", [32]byte{})
	env.dispatcher.mu.Unlock()
	outs = env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{{RequestID: "dup-2", Service: 4}},
		timeouts(20*time.Millisecond, nil)) // service 4 has no backend here: nothing answers
	if outs[0].Result.Status != siobroker.StatusTimeout {
		t.Fatalf("unanswered dispatch: %+v", outs[0].Result)
	}
	publishRaw(t, env, "dup-2/4", make([]byte, 0))
	if a := waitLate(t, late); a.Key != "dup-2/4" || a.Service != 4 {
		t.Fatalf("late answer %+v", a)
	}
}

// TestLateCaseCheckAnswer: a case registry's answer after the check gave up is late too, with
// service 0 and the registry's verdict.
func TestLateCaseCheckAnswer(t *testing.T) {
	late, lateOpt := collectLate()
	env := newTestEnv(t, nil, lateOpt)
	_, err := env.dispatcher.CheckCase(context.Background(), "nobody",
		schemas.CaseCheckRequest{RequestID: "case-1", MessageID: "m-1"}, 20*time.Millisecond)
	if err == nil {
		t.Fatal("a check nobody answers succeeded")
	}
	publishReply(t, env, "case-1/case", schemas.CaseCheckResponse{RequestID: "case-1", Found: true, InProceedings: false,
		Registry: "nobody", AnsweredAt: time.Now()})
	a := waitLate(t, late)
	if !a.CaseCheck || a.Service != 0 || a.RequestID != "case-1" || !a.Readable || !a.Found || a.InProceedings ||
		a.Adapter != "nobody" || a.Status != "" || a.MessageID != "msg-case-1/case" {
		t.Fatalf("late case check %+v", a)
	}
	for n, st := range env.dispatcher.Stats() {
		if st.LateAnswers != 0 {
			t.Errorf("a case check counted as a late answer of service %d", n)
		}
	}
}

// TestUnreadableLateAnswer: a late answer that cannot be read still goes to the hook, raw.
func TestUnreadableLateAnswer(t *testing.T) {
	late, lateOpt := collectLate()
	env := newTestEnv(t, nil, lateOpt)
	msg := message.NewMessage(watermill.NewUUID(), []byte("{garbage"))
	msg.Metadata.Set(schemas.MetaCorrelation, "junk-1/12")
	signAnswer(msg)
	if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), msg); err != nil {
		t.Fatal(err)
	}
	a := waitLate(t, late)
	if a.Readable || a.Service != 12 || a.RequestID != "junk-1" || string(a.Payload) != "{garbage" {
		t.Fatalf("late answer %+v", a)
	}
}

// TestAnsweredMemoryIsBounded: the dispatcher remembers only the most recent answered keys; the
// copy of an answer older than that is taken for a late one (a superfluous record, never a lost
// one).
func TestAnsweredMemoryIsBounded(t *testing.T) {
	late, lateOpt := collectLate()
	env := newTestEnv(t, map[int]adapters.Backend{3: echoBackend(3)}, lateOpt)
	env.dispatcher.answeredKeys = newBoundedCache[[32]byte](2) // before any answer flows
	answer := captureReplies(t, env)
	for _, id := range []string{"b-1", "b-2", "b-3"} {
		env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request(id, 3, "750312300458")}, timeouts(2*time.Second, nil))
	}
	if n := env.dispatcher.answeredKeys.len(); n != 2 {
		t.Fatalf("%d answered keys remembered, bound 2", n)
	}
	publishRaw(t, env, "b-3/3", answer("b-3/3")) // remembered: a duplicate
	publishRaw(t, env, "b-1/3", answer("b-1/3")) // forgotten: late
	if a := waitLate(t, late); a.Key != "b-1/3" {
		t.Fatalf("late answer %+v, want b-1/3", a)
	}
	env.logs.waitFor(t, "duplicate answer", "b-3/3")
}

// TestBoundedCacheForget: a key forgotten and put again is not evicted when its old slot is
// overwritten, and the bound holds.
func TestBoundedCacheForget(t *testing.T) {
	c := newBoundedCache[int](3)
	c.put("a", 1) // slot 0
	c.put("b", 2) // slot 1
	c.forget("a")
	if _, ok := c.get("a"); ok {
		t.Fatal("a still remembered after forget")
	}
	c.put("a", 3) // slot 2
	c.put("c", 4) // slot 0, a's old one: a stays
	if v, ok := c.get("a"); !ok || v != 3 {
		t.Fatalf("a = %d, %v: evicted through its old slot", v, ok)
	}
	c.put("d", 5) // slot 1: b goes
	if _, ok := c.get("b"); ok {
		t.Fatal("b kept past the bound")
	}
	if c.len() != 3 {
		t.Fatalf("len %d, want 3", c.len())
	}
	c.put("a", 9) // the first value is kept
	if v, _ := c.get("a"); v != 3 {
		t.Fatalf("a overwritten: %d", v)
	}
}

// TestLateAnswerRedeliveredUntilRecorded: a late answer whose record failed is not acknowledged:
// the transport delivers it again and the hook gets it again, and it is counted once it is
// recorded. A copy of a recorded late answer is a duplicate, not a second result.
func TestLateAnswerRedeliveredUntilRecorded(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	env := newTestEnv(t, nil, onLateAnswer(func(_ context.Context, a LateAnswer) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, a.Key)
		if len(calls) == 1 {
			return true, errors.New("journal unavailable")
		}
		return true, nil
	}))
	resp := okResponse("redo-1", 5)
	payload, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, env, "redo-1/5", payload)
	env.logs.waitFor(t, "late answer: its wait had ended", "redo-1/5")
	publishRaw(t, env, "redo-1/5", payload) // the adapter's copy
	env.logs.waitFor(t, "duplicate answer", "redo-1/5")
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[0] != "redo-1/5" || calls[1] != "redo-1/5" {
		t.Fatalf("hook calls %v, want the failed record and its redelivery", calls)
	}
	if n := env.dispatcher.Stats()[5].LateAnswers; n != 1 {
		t.Fatalf("%d late answers counted, want 1", n)
	}
}

// TestNotLateIsNotCounted: an answer the hook says is not late after all (a copy of the answer
// its request's reply carried) is neither counted nor logged as late; the next answer nobody
// waits for is, once.
func TestNotLateIsNotCounted(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	env := newTestEnv(t, nil, onLateAnswer(func(_ context.Context, a LateAnswer) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, a.Key)
		return a.Key != "held-1/5", nil
	}))
	for _, key := range []string{"held-1/5", "late-1/5"} {
		payload, err := json.Marshal(okResponse(key[:len(key)-len("/5")], 5))
		if err != nil {
			t.Fatal(err)
		}
		publishRaw(t, env, key, payload)
	}
	env.logs.waitFor(t, "late answer: its wait had ended", "late-1/5")
	hooked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(calls)
	}
	for deadline := time.Now().Add(2 * time.Second); hooked() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the hook had %d answers, want both", hooked())
		}
	}
	if n := env.dispatcher.Stats()[5].LateAnswers; n != 1 {
		t.Errorf("%d late answers counted, want 1: the answer not late is not", n)
	}
	if r, found := env.logs.find("late answer: its wait had ended", "held-1/5"); found {
		t.Errorf("the answer not late was logged as late: %s", r)
	}
}
