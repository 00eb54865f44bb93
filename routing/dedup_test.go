package routing

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// TestRedeliveredRequestIsAskedOnce: a second copy of a request the adapter has answered gets
// the same answer again, and the source system is asked once.
func TestRedeliveredRequestIsAskedOnce(t *testing.T) {
	var calls atomic.Int32
	env := newTestEnv(t, map[int]adapters.Backend{
		3: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			calls.Add(1)
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "x"}}}, nil
		}),
	})
	// The dispatcher's first copy is answered normally.
	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{{RequestID: "dup", Service: 3}},
		timeouts(2*time.Second, nil))
	if outs[0].Result.Status != siobroker.StatusOK {
		t.Fatalf("first answer %+v", outs[0].Result)
	}
	// A redelivered copy arrives: its answer goes to the reply topic, without a second query.
	answers, err := env.pubsub.Subscribe(context.Background(), "sio.reply.dedup-test")
	if err != nil {
		t.Fatal(err)
	}
	req := schemas.ServiceRequest{RequestID: "dup", Service: 3, ReplyTo: "sio.reply.dedup-test", Deadline: time.Now().Add(time.Minute)}
	msg, err := newJSONMessage("dup/3", req, requestMetadata(req))
	if err != nil {
		t.Fatal(err)
	}
	signRequest(t, msg, req.Deadline)
	if err := env.pubsub.Publish(schemas.ServiceTopic(3), msg); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-answers:
		m.Ack()
		var resp schemas.ServiceResponse
		if err := json.Unmarshal(m.Payload, &resp); err != nil || resp.RequestID != "dup" || resp.Result.Status != siobroker.StatusOK {
			t.Fatalf("redelivery answer %+v, %v", resp, err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the redelivered copy was not answered")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the source was asked %d times, want 1", n)
	}
}

func TestAnsweredCacheForgetsOldestFirst(t *testing.T) {
	c := newAnsweredCache(2)
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, schemas.ServiceResponse{RequestID: k})
	}
	if _, ok := c.get("a"); ok {
		t.Error("the oldest answer was kept past the bound")
	}
	for _, k := range []string{"b", "c"} {
		if r, ok := c.get(k); !ok || r.RequestID != k {
			t.Errorf("answer %s lost", k)
		}
	}
}
