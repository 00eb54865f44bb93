package routing

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
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

// dispatchInBackground dispatches req in env with timeout and returns its outcome's channel, once
// the dispatcher waits for its answer. req's service has no backend in env: the test answers for
// its adapter.
func dispatchInBackground(t *testing.T, env *testEnv, req schemas.ServiceRequest, timeout time.Duration) <-chan Outcome {
	t.Helper()
	done := make(chan Outcome, 1)
	go func() {
		done <- env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{req}, timeouts(timeout, nil))[0]
	}()
	for deadline := time.Now().Add(3 * time.Second); env.dispatcher.Pending() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request was not dispatched")
		}
	}
	return done
}

// TestAdapterTimeoutAnswerIsATimeout: an adapter's answer that its source did not answer in time
// (status timeout, as middleware.Outcome gives one at the request's deadline) is given to the
// request, and counted as a timeout, not as an answer.
func TestAdapterTimeoutAnswerIsATimeout(t *testing.T) {
	var observed []siobroker.ResultStatus
	env := newTestEnv(t, nil, observeAnswers(func(_ int, status siobroker.ResultStatus, _ time.Duration) {
		observed = append(observed, status) // called by the waiter, before Dispatch returns
	}))
	done := dispatchInBackground(t, env, request("to-1", 21, "810803325634"), time.Minute)
	publishReply(t, env, "to-1/21", schemas.ServiceResponse{RequestID: "to-1", Service: 21, Adapter: "test", AnsweredAt: time.Now(),
		Result: siobroker.ServiceResult{Service: 21, Status: siobroker.StatusTimeout, Reason: siobroker.ReasonTimeout,
			Message: "the source system did not answer in time"}})
	out := <-done
	if out.Result.Status != siobroker.StatusTimeout || out.Late {
		t.Fatalf("outcome %+v, want the adapter's timeout", out)
	}
	want := ServiceStats{Dispatched: 1, Timeouts: 1, RecentEnded: 1, RecentFailed: 1}
	if s := env.dispatcher.Stats()[21]; s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	if len(observed) != 1 || observed[0] != siobroker.StatusTimeout {
		t.Errorf("observed answers %v, want the one timeout's latency", observed)
	}
}

// TestUnauthenticatedAnswerCounted: an answer the service's adapter did not make is refused and
// counted as refused for its service; the message it claimed to answer ends as what it was, a
// timeout when no real answer comes.
func TestUnauthenticatedAnswerCounted(t *testing.T) {
	env := newTestEnv(t, nil)
	done := dispatchInBackground(t, env, request("forged-1", 21, "810803325634"), 300*time.Millisecond)
	payload, err := json.Marshal(schemas.ServiceResponse{RequestID: "forged-1", Service: 21, Adapter: "forger",
		Result: siobroker.ServiceResult{Service: 21, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK}})
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(schemas.MetaCorrelation, "forged-1/21")
	signAnswerAs(msg, "vehicles") // another adapter's key
	if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), msg); err != nil {
		t.Fatal(err)
	}
	env.logs.waitFor(t, "unauthenticated answer refused", "forged-1/21") // counted before it is logged
	out := <-done
	if out.Result.Status != siobroker.StatusTimeout {
		t.Fatalf("outcome %+v, want a timeout: the forged answer is not one", out)
	}
	want := ServiceStats{Dispatched: 1, Timeouts: 1, RefusedAnswers: 1, RecentEnded: 1, RecentFailed: 1}
	if s := env.dispatcher.Stats()[21]; s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	// A forged answer naming a number outside Appendix 2 is refused without a counter of its own.
	msg = message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(schemas.MetaCorrelation, "forged-2/1000")
	if err := env.pubsub.Publish(env.dispatcher.ReplyTopic(), msg); err != nil {
		t.Fatal(err)
	}
	env.logs.waitFor(t, "unauthenticated answer refused", "forged-2/1000")
	if _, ok := env.dispatcher.Stats()[1000]; ok {
		t.Error("service 1000 has counters: a forger could grow them without bound")
	}
}

// TestDispatchLateCountsTheLimit: past the service's limit, DispatchLate counts the message a
// timeout and tells the caller, and goes on waiting; the answer that comes then is returned as
// Late and counted late, not answered, and the sum still holds.
func TestDispatchLateCountsTheLimit(t *testing.T) {
	release := make(chan struct{})
	env := newTestEnv(t, map[int]adapters.Backend{
		8: adapters.BackendFunc(func(ctx context.Context, _ schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			<-release
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "row"}}}, nil
		}),
	})
	overdue := make(chan struct{})
	done := make(chan Outcome, 1)
	go func() {
		done <- env.dispatcher.DispatchLate(context.Background(), request("late-1", 8, "810803325634"), 20*time.Millisecond, time.Minute,
			func() { close(overdue) })
	}()
	<-overdue
	want := ServiceStats{Dispatched: 1, Timeouts: 1, Overdue: 1, RecentEnded: 1, RecentFailed: 1}
	if s := env.dispatcher.Stats()[8]; s != want {
		t.Errorf("stats while overdue %+v, want %+v", s, want)
	}
	close(release)
	out := <-done
	if out.Result.Status != siobroker.StatusOK || !out.Late || out.AnsweredAt.IsZero() {
		t.Fatalf("outcome %+v, want the answer, marked late", out)
	}
	want = ServiceStats{Dispatched: 1, Timeouts: 1, LateAnswers: 1, RecentEnded: 1, RecentFailed: 1}
	s := env.dispatcher.Stats()[8]
	if s != want {
		t.Errorf("stats after the late answer %+v, want %+v", s, want)
	}
	if s.Dispatched != s.Answered+s.DispatchErrors+s.Timeouts+uint64(s.InFlight) {
		t.Errorf("the sum does not hold: %+v", s)
	}

	// Answered within its limit, it is an answer like any other, and overdue is never called.
	out = env.dispatcher.DispatchLate(context.Background(), request("late-2", 8, "810803325634"), time.Minute, time.Hour,
		func() { t.Error("overdue called for an answer in time") })
	if out.Late || out.Result.Status != siobroker.StatusOK {
		t.Fatalf("outcome %+v", out)
	}
	if s := env.dispatcher.Stats()[8]; s.Answered != 1 || s.Overdue != 0 || s.InFlight != 0 {
		t.Errorf("stats after an answer in time %+v", s)
	}
}

// TestDispatchLateOverdueWhilePublishing: a limit that passes while the publish still waits out
// an outage of the transport is counted, and told, then; the dispatch error that ends the wait
// later is Late and not counted again: the message was a timeout for its client.
func TestDispatchLateOverdueWhilePublishing(t *testing.T) {
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	pub := &outagePublisher{next: pubsub}
	pub.down.Store(true)
	d, err := NewDispatcher(DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter),
		RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: pub, ReplyTopic: ReplyTopicPrefix + "overdue",
		Clock: siobroker.SystemClock{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	overdue := make(chan struct{})
	done := make(chan Outcome, 1)
	go func() {
		done <- d.DispatchLate(context.Background(), request("out-1", 8, "810803325634"), 20*time.Millisecond, 300*time.Millisecond,
			func() { close(overdue) })
	}()
	<-overdue // while the publish is still being retried
	if s := d.Stats()[8]; s.Timeouts != 1 || s.Overdue != 1 || s.InFlight != 0 {
		t.Errorf("stats while overdue %+v", s)
	}
	out := <-done
	if !out.Late || out.Result.Reason != siobroker.ReasonUnavailable {
		t.Fatalf("outcome %+v, want UNAVAILABLE, marked late", out)
	}
	want := ServiceStats{Dispatched: 1, Timeouts: 1, RecentEnded: 1, RecentFailed: 1}
	if s := d.Stats()[8]; s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

// TestAnswerDecodedOnce: an answer the dispatcher decoded to keep it reaches a single wait with
// its decoding, which answered takes as it is (a decoding that differs from the payload shows
// which one was read); several waits for one key each get the payload alone, so that none
// shares another's records; an answer no wait decoded is read from its payload; and every wait's
// outcome carries the payload's digest, taken once where it is handed.
func TestAnswerDecodedOnce(t *testing.T) {
	d, err := NewDispatcher(DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter),
		RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{}),
		ReplyTopic: ReplyTopicPrefix + "decoded", Clock: siobroker.SystemClock{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	req := request("dec-1", 8, "810803325634")
	payload := []byte(`{"requestId":"dec-1","service":8,"result":{"service":8,"status":"ok","reason":"NO_DATA"},"adapter":"from-payload"}`)
	a := decodeAnswer(payload)
	if a.resp == nil || a.resp.Adapter != "from-payload" {
		t.Fatalf("decodeAnswer = %+v", a)
	}
	a.resp.Adapter = "from-decoding"
	outcome := func(a answer) Outcome { return d.answered(Outcome{}, &waited{d: d, service: 8}, req, a) }

	key := CorrelationKey("dec-1", 8)
	one, release := d.await(key)
	defer release()
	if n := d.handToWaiters(key, a); n != 1 {
		t.Fatalf("handed to %d waits", n)
	}
	if got := outcome(<-one); got.Adapter != "from-decoding" || got.Result.Reason != siobroker.ReasonNoData || got.AnswerDigest != AnswerDigest(payload) {
		t.Errorf("a single wait read %+v, want the decoding handed to it and the payload's digest", got)
	}

	first, releaseFirst := d.await(key)
	defer releaseFirst()
	second, releaseSecond := d.await(key)
	defer releaseSecond()
	if n := d.handToWaiters(key, a); n != 2 {
		t.Fatalf("handed to %d waits", n)
	}
	for i, ch := range []<-chan answer{first, second} {
		got := <-ch
		if got.resp != nil || outcome(got).Adapter != "from-payload" || outcome(got).AnswerDigest != AnswerDigest(payload) {
			t.Errorf("wait %d of two got %+v: a decoding they would share", i, got)
		}
	}
	if got := outcome(answer{payload: payload}); got.Adapter != "from-payload" || got.Result.Reason != siobroker.ReasonNoData {
		t.Errorf("an answer not decoded read %+v", got)
	}
}
