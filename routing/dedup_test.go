package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
	c := newAnsweredCache(2, answeredCacheBytes)
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

// TestAnsweredCacheBoundedByBytes: answers past the byte bound push out the oldest first, however
// few they are; an answer larger than the whole bound is not remembered; forgetting gives its
// bytes back.
func TestAnsweredCacheBoundedByBytes(t *testing.T) {
	answer := func(id string, size int) schemas.ServiceResponse {
		return schemas.ServiceResponse{RequestID: id, Result: siobroker.ServiceResult{Records: []siobroker.Record{
			{Fields: []siobroker.Field{{Name: "n", Value: strings.Repeat("x", size)}}}}}}
	}
	c := newAnsweredCache(100, 10_000)
	for _, k := range []string{"a", "b", "c", "d"} {
		c.put(k, answer(k, 3000))
	}
	if c.bytes > c.maxBytes {
		t.Fatalf("%d bytes remembered, bound %d", c.bytes, c.maxBytes)
	}
	if _, ok := c.get("a"); ok {
		t.Error("the oldest answer kept past the byte bound")
	}
	for _, k := range []string{"c", "d"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("answer %s lost, though within the bound", k)
		}
	}
	c.put("huge", answer("huge", 20_000))
	if _, ok := c.get("huge"); ok {
		t.Error("an answer larger than the bound was remembered")
	}
	if _, ok := c.get("d"); !ok {
		t.Error("an answer too large to remember pushed out the others")
	}
	before := c.bytes
	c.forget("d")
	if c.bytes >= before || c.bytes < 0 {
		t.Errorf("forgetting left %d bytes of %d", c.bytes, before)
	}
	// After many more, the sum stays within the bound and matches the entries.
	for i := range 1000 {
		c.put(fmt.Sprint("k", i), answer("k", i%4000))
	}
	sum := 0
	for k, e := range c.byKey {
		sum += answerSize(k, e.v)
	}
	if sum != c.bytes || c.bytes > c.maxBytes || len(c.byKey) > 100 {
		t.Errorf("bytes %d, the entries' sum %d, bound %d, %d entries", c.bytes, sum, c.maxBytes, len(c.byKey))
	}
}
