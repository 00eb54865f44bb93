package routing

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

// signRequest authenticates msg, a service message, as the tests' broker does for
// msgauthtest.Adapter.
func signRequest(t *testing.T, msg *message.Message, deadline time.Time) {
	t.Helper()
	if err := msgauthtest.Broker().SignRequest(msgauthtest.Adapter, msg.Metadata, msg.Payload, deadline); err != nil {
		t.Fatal(err)
	}
}

// signAnswer authenticates msg, an answer, as the tests' adapter does.
func signAnswer(msg *message.Message) {
	msgauthtest.AdapterKeys(msgauthtest.Adapter).SignAnswer(msgauth.Key{}, msg.Metadata, msg.Payload)
}

// TestForgedServiceMessageIsNotAsked: a service message the broker did not make for the
// adapter (none at all, another adapter's key, an altered one) is refused before it is read:
// the source is never asked and nothing is answered; the refusal is logged and counted.
func TestForgedServiceMessageIsNotAsked(t *testing.T) {
	var calls atomic.Int32
	var refused []msgauth.Reason
	refusals := make(chan msgauth.Reason, 8)
	env := newTestEnv(t, map[int]adapters.Backend{
		7: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			calls.Add(1)
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "weapon"}}}, nil
		}),
	}, func(c *envConfig) { c.adapter.ObserveRefusal = func(r msgauth.Reason) { refusals <- r } })
	answers, err := env.pubsub.Subscribe(context.Background(), ReplyTopicPrefix+"forger")
	if err != nil {
		t.Fatal(err)
	}
	req := request("forged-1", 7, "810803325634")
	req.ReplyTo, req.Deadline = ReplyTopicPrefix+"forger", time.Now().Add(time.Minute)
	newMsg := func() *message.Message {
		msg, err := newJSONMessage(CorrelationKey(req.RequestID, 7), req, requestMetadata(req))
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	unsigned := newMsg()
	otherAdapter := newMsg()
	if err := msgauthtest.Broker().SignRequest("vehicles", otherAdapter.Metadata, otherAdapter.Payload, req.Deadline); err != nil {
		t.Fatal(err)
	}
	otherKey := newMsg()
	signAnswerAs(otherKey, "vehicles") // another adapter forging with its own key
	altered := newMsg()
	signRequest(t, altered, req.Deadline)
	altered.Payload = []byte(strings.Replace(string(altered.Payload), "810803325634", "810803325635", 1))
	for _, m := range []*message.Message{unsigned, otherAdapter, otherKey, altered} {
		if err := env.pubsub.Publish(schemas.ServiceTopic(7), m); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		select {
		case r := <-refusals:
			refused = append(refused, r)
		case <-time.After(3 * time.Second):
			t.Fatalf("refusals %v, want 4", refused)
		}
	}
	env.logs.waitFor(t, "unauthenticated service message dropped", "queue=sio.service.007", "auth_refusals=4")
	counts := map[msgauth.Reason]int{}
	for _, r := range refused {
		counts[r]++
	}
	// In any order: the handlers run side by side.
	if counts[msgauth.ReasonMissing] != 1 || counts[msgauth.ReasonWrongAdapter] != 2 || counts[msgauth.ReasonMismatch] != 1 {
		t.Errorf("refusals %v, want one missing, two for the wrong adapter and one altered", refused)
	}
	select {
	case m := <-answers:
		t.Fatalf("a forged message was answered: %s", m.Payload)
	case <-time.After(200 * time.Millisecond):
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the source was asked %d times for forged messages", n)
	}

	// The broker's own message is answered, authenticated with the adapter's key.
	genuine := newMsg()
	signRequest(t, genuine, req.Deadline)
	if err := env.pubsub.Publish(schemas.ServiceTopic(7), genuine); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-answers:
		m.Ack()
		if err := msgauthtest.Broker().CheckAnswer(msgauthtest.Adapter, m.Metadata, m.Payload, time.Now()); err != nil {
			t.Errorf("the answer is not authenticated: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the broker's own message was not answered")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the source was asked %d times, want 1", n)
	}
}

// TestForgedAnswerIsRefused: an answer the service's adapter did not authenticate is neither
// given to the request waiting for it nor taken for a late answer (which the broker would journal
// with nobody's signer): the waiting request gets the adapter's own answer.
func TestForgedAnswerIsRefused(t *testing.T) {
	release := make(chan struct{})
	late := make(chan LateAnswer, 4)
	refused := make(chan msgauth.Reason, 4)
	env := newTestEnv(t, map[int]adapters.Backend{
		11: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			<-release
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "pension", Fields: []siobroker.Field{{Name: "by", Value: "adapter"}}}}}, nil
		}),
	}, func(c *envConfig) {
		c.dispatcher.OnLateAnswer = func(_ context.Context, a LateAnswer) error { late <- a; return nil }
		c.dispatcher.ObserveRefusedAnswer = func(_ int, r msgauth.Reason) { refused <- r }
	})
	forge := func(key string, sign func(*message.Message)) {
		requestID, service, _ := splitKey(key)
		payload, _ := json.Marshal(schemas.ServiceResponse{RequestID: requestID, Service: service, Adapter: "forger",
			Result: siobroker.ServiceResult{Service: service, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK,
				Records: []siobroker.Record{{Type: "pension", Fields: []siobroker.Field{{Name: "by", Value: "forger"}}}}}})
		msg := message.NewMessage(watermill.NewUUID(), payload)
		msg.Metadata.Set(schemas.MetaCorrelation, key)
		sign(msg)
		if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), msg); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan Outcome, 1)
	go func() {
		done <- env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("wait-1", 11, "810803325634")},
			timeouts(5*time.Second, nil))[0]
	}()
	for deadline := time.Now().Add(3 * time.Second); env.dispatcher.Pending() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request was not dispatched")
		}
	}
	forge("wait-1/11", func(*message.Message) {})                                // no authenticator
	forge("wait-1/11", func(m *message.Message) { signAnswerAs(m, "vehicles") }) // another adapter's
	forge("nobody/11", func(*message.Message) {})                                // a "late" answer to nothing
	for range 3 {
		select {
		case <-refused:
		case <-time.After(3 * time.Second):
			t.Fatal("a forged answer was not refused")
		}
	}
	close(release)
	out := <-done
	if r := out.Result; r.Status != siobroker.StatusOK || len(r.Records) != 1 || field(r.Records[0], "by") != "adapter" {
		t.Fatalf("the request got %+v, want the adapter's own answer", r)
	}
	select {
	case a := <-late:
		t.Fatalf("a forged answer was taken for a late one: %+v", a)
	case <-time.After(200 * time.Millisecond):
	}
	env.logs.waitFor(t, "unauthenticated answer refused", "correlation_id=nobody/11")

	// An authenticated answer nobody waits for is still a late answer.
	forge("nobody/11", signAnswer)
	if a := waitLate(t, late); a.Key != "nobody/11" {
		t.Errorf("late answer %+v", a)
	}
}

// signAnswerAs authenticates msg with adapter's key of the tests' master key.
func signAnswerAs(msg *message.Message, adapter string) {
	msgauthtest.AdapterKeys(adapter).SignAnswer(msgauth.Key{}, msg.Metadata, msg.Payload)
}
