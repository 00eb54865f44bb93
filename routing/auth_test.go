package routing

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
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

// signAnswer authenticates msg, an answer, as the tests' adapter does: a case answer (key
// "request/case") as the answer of the registry its payload names.
func signAnswer(msg *message.Message) {
	keys := msgauthtest.AdapterKeys(msgauthtest.Adapter)
	if strings.HasSuffix(msg.Metadata.Get(schemas.MetaCorrelation), "/"+caseKeySuffix) {
		var resp schemas.CaseCheckResponse
		_ = json.Unmarshal(msg.Payload, &resp)
		keys.SignCaseAnswer(msgauth.Key{}, resp.Registry, msg.Metadata, msg.Payload)
		return
	}
	keys.SignAnswer(msgauth.Key{}, msg.Metadata, msg.Payload)
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
		c.dispatcher.OnLateAnswer = func(_ context.Context, a LateAnswer) (bool, error) { late <- a; return true, nil }
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

// withRegistry serves the case registry rc.Name in env with the tests' adapter keys.
func withRegistry(rc RegistryConfig) envOption {
	return func(c *envConfig) {
		if rc.Auth == nil {
			rc.Auth = msgauthtest.AdapterKeys(msgauthtest.Adapter)
		}
		c.registries = append(c.registries, rc)
	}
}

// TestForgedCaseCheckIsNotAsked: a case check (§5) on a registry's queue that the broker did not
// make for that registry's adapter and that registry (none at all, a service message's MAC, one
// made for another registry, another adapter's key) is refused before the registry is asked, so
// that publishing to the queue does not tell anyone which cases exist and whose they are. The
// broker's own check is answered.
func TestForgedCaseCheckIsNotAsked(t *testing.T) {
	var asked atomic.Int32
	refusals := make(chan msgauth.Reason, 8)
	erdr := adapters.CaseRegistryFunc(func(_ context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
		asked.Add(1)
		return schemas.CaseCheckResponse{RequestID: req.RequestID, Found: true, InProceedings: true}, nil
	})
	env := newTestEnv(t, nil, withRegistry(RegistryConfig{Name: "erdr", Registry: erdr,
		ObserveRefusal: func(r msgauth.Reason) { refusals <- r }}))

	check := schemas.CaseCheckRequest{RequestID: "forged-1", Basis: siobroker.BasisCriminal, SignerIIN: "750312300458",
		Case: siobroker.CaseRef{Number: "251234567890123"}, ReplyTo: env.dispatcher.ReplyTopic(), Deadline: time.Now().Add(time.Minute)}
	payload, err := json.Marshal(check)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for _, tt := range []struct {
		name   string
		sign   func(meta map[string]string)
		reason msgauth.Reason
	}{
		{"unauthenticated", func(map[string]string) {}, msgauth.ReasonMissing},
		{"a service message's MAC", func(meta map[string]string) {
			meta[schemas.MetaService] = "1"
			if err := msgauthtest.Broker().SignRequest(msgauthtest.Adapter, meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
		}, msgauth.ReasonWrongRegistry},
		{"made for another registry", func(meta map[string]string) {
			if err := msgauthtest.Broker().SignCaseCheck(msgauthtest.Adapter, "courts", meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
		}, msgauth.ReasonWrongRegistry},
		{"relabelled from another registry", func(meta map[string]string) {
			if err := msgauthtest.Broker().SignCaseCheck(msgauthtest.Adapter, "courts", meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
			meta[schemas.MetaRegistry] = "erdr"
		}, msgauth.ReasonMismatch},
		{"made for another adapter", func(meta map[string]string) {
			if err := msgauthtest.Broker().SignCaseCheck("other-adapter", "erdr", meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
		}, msgauth.ReasonWrongAdapter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := message.NewMessage(watermill.NewUUID(), payload)
			msg.Metadata.Set(schemas.MetaRequestID, "forged-1")
			msg.Metadata.Set(schemas.MetaReplyTo, env.dispatcher.ReplyTopic())
			tt.sign(msg.Metadata)
			if err := env.pubsub.Publish(schemas.RegistryTopic("erdr"), msg); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-refusals:
				if r != tt.reason {
					t.Errorf("refused as %s, want %s", r, tt.reason)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the forged case check was not refused")
			}
		})
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the registry was asked %d forged checks", n)
	}

	resp, err := env.dispatcher.CheckCase(context.Background(), "erdr", schemas.CaseCheckRequest{RequestID: "real-1", MessageID: "m-1",
		Basis: siobroker.BasisCriminal, SignerIIN: "750312300458", Case: siobroker.CaseRef{Number: "251234567890123"}}, 5*time.Second)
	if err != nil || !resp.Found || !resp.InProceedings || resp.Registry != "erdr" {
		t.Fatalf("the broker's own check: %+v, %v", resp, err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the registry was asked %d times, want once", n)
	}
}

// TestForgedCaseAnswerIsNotTaken: while the broker waits for a registry's verdict, an answer
// "found, in proceedings" that the registry's adapter did not make for that registry is refused
// and never passes the check: the wait ends without an answer, and the request would be refused
// as unverifiable rather than let through.
func TestForgedCaseAnswerIsNotTaken(t *testing.T) {
	refused := make(chan msgauth.Reason, 8)
	env := newTestEnv(t, nil, func(c *envConfig) {
		c.dispatcher.RegistryAdapterOf = func(name string) string {
			if name == "erdr" {
				return "erdr-adapter"
			}
			return msgauthtest.Adapter
		}
		c.dispatcher.ObserveRefusedAnswer = func(_ int, r msgauth.Reason) { refused <- r }
	})
	// Nothing serves erdr here: the check waits, and the forgeries are all that come back.
	checks, err := env.pubsub.Subscribe(context.Background(), schemas.RegistryTopic("erdr"))
	if err != nil {
		t.Fatal(err)
	}
	verdict, err := json.Marshal(schemas.CaseCheckResponse{RequestID: "c-1", Found: true, InProceedings: true, Registry: "erdr"})
	if err != nil {
		t.Fatal(err)
	}
	forgeries := []struct {
		reason msgauth.Reason
		sign   func(meta map[string]string)
	}{
		{msgauth.ReasonMissing, func(meta map[string]string) { meta[schemas.MetaRegistry] = "erdr" }},
		{msgauth.ReasonWrongAdapter, func(meta map[string]string) {
			// Another adapter's own key: it serves services, not this registry.
			msgauthtest.AdapterKeys(msgauthtest.Adapter).SignCaseAnswer(msgauth.Key{}, "erdr", meta, verdict)
		}},
		{msgauth.ReasonMismatch, func(meta map[string]string) {
			// The registry adapter's answer for another registry, relabelled.
			msgauthtest.AdapterKeys("erdr-adapter").SignCaseAnswer(msgauth.Key{}, "courts", meta, verdict)
			meta[schemas.MetaRegistry] = "erdr"
		}},
		{msgauth.ReasonMismatch, func(meta map[string]string) {
			// A service answer's MAC of the registry's adapter.
			meta[schemas.MetaRegistry] = "erdr"
			msgauthtest.AdapterKeys("erdr-adapter").SignAnswer(msgauth.Key{}, meta, verdict)
		}},
	}
	go func() {
		m := <-checks // the broker's check is out: its wait is registered
		m.Ack()
		for _, f := range forgeries {
			msg := message.NewMessage(watermill.NewUUID(), verdict)
			msg.Metadata.Set(schemas.MetaCorrelation, "c-1/case")
			f.sign(msg.Metadata)
			if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), msg); err != nil {
				t.Error(err)
			}
		}
	}()
	// The wait is long enough for every forgery to arrive and be refused (each is counted before
	// the wait ends below); it ends without an answer.
	resp, err := env.dispatcher.CheckCase(context.Background(), "erdr", schemas.CaseCheckRequest{RequestID: "c-1", MessageID: "m-1"}, 2*time.Second)
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("CheckCase: %+v, %v; want no answer", resp, err)
	}
	// Compared as sets: the reply handler takes them in no guaranteed order.
	var want, got []string
	for _, f := range forgeries {
		want = append(want, string(f.reason))
		select {
		case r := <-refused:
			got = append(got, string(r))
		default:
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("refusals %v, want %v: every forgery refused within the wait", got, want)
	}
}
