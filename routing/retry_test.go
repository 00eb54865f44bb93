package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// TestTransientErrorsAreRetried: a transient backend error is retried with back-off and the
// answer that follows is the result; a permanent one is answered ADAPTER_ERROR at once.
func TestTransientErrorsAreRetried(t *testing.T) {
	var flaky, broken atomic.Int32
	env := newTestEnv(t, map[int]adapters.Backend{
		1: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			if flaky.Add(1) <= 2 {
				return siobroker.ServiceResult{}, adapters.Transient(errors.New("connection reset"))
			}
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "person"}}}, nil
		}),
		2: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			broken.Add(1)
			return siobroker.ServiceResult{}, errors.New("syntax error in query")
		}),
	}, retry(4, 5*time.Millisecond))
	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{
		{RequestID: "r1", Service: 1}, {RequestID: "r1", Service: 2},
	}, timeouts(2*time.Second, nil))
	if r := outs[0].Result; r.Status != siobroker.StatusOK || flaky.Load() != 3 {
		t.Errorf("flaky service: %+v after %d attempts, want ok after 3", r, flaky.Load())
	}
	if r := outs[1].Result; r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonAdapterError || broken.Load() != 1 {
		t.Errorf("broken service: %+v after %d attempts, want ADAPTER_ERROR after 1", r, broken.Load())
	}
}

// TestExhaustedRetriesDeadLetter: a request whose source fails transiently on every attempt goes
// to the dead-letter topic, with the reason, the topic it came from and the attempts, and the
// broker is answered ADAPTER_ERROR at once. Sent back from there (a replay), it is asked again,
// not answered from the earlier answer, and its late answer is dropped by the broker.
func TestExhaustedRetriesDeadLetter(t *testing.T) {
	var calls atomic.Int32
	var healthy atomic.Bool
	late, lateOpt := collectLate()
	env := newTestEnv(t, map[int]adapters.Backend{
		7: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			calls.Add(1)
			if !healthy.Load() {
				return siobroker.ServiceResult{}, adapters.Transient(fmt.Errorf("dial tcp 10.0.0.7:5432 for subject 810803325634: %w", syscall.ECONNREFUSED))
			}
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "person"}}}, nil
		}),
	}, lateOpt, retry(3, time.Millisecond), deadLetters("test.dead"))
	dead, err := env.pubsub.Subscribe(context.Background(), "test.dead")
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("d1", 7, "810803325634")}, timeouts(10*time.Second, nil))
	if r := outs[0].Result; r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonAdapterError || !strings.Contains(r.Message, "3 attempts") {
		t.Fatalf("result %+v, want ADAPTER_ERROR after 3 attempts", r)
	}
	if time.Since(start) > 5*time.Second || calls.Load() != 3 {
		t.Fatalf("answered after %s and %d attempts, want promptly after 3", time.Since(start), calls.Load())
	}
	var letter *message.Message
	select {
	case letter = <-dead:
		letter.Ack()
	case <-time.After(5 * time.Second):
		t.Fatal("nothing on the dead-letter topic")
	}
	reason := letter.Metadata.Get(schemas.MetaDeadReason)
	if letter.UUID != "d1/7" || letter.Metadata.Get(schemas.MetaDeadTopic) != schemas.ServiceTopic(7) ||
		letter.Metadata.Get(schemas.MetaDeadAttempts) != "3" || !strings.Contains(reason, "error=connection-refused") ||
		letter.Metadata.Get(schemas.MetaRequestID) != "d1" || letter.Metadata.Get(schemas.MetaDeadAt) == "" {
		t.Fatalf("dead letter %s %v", letter.UUID, letter.Metadata)
	}
	if strings.Contains(reason, "810803325634") {
		t.Fatalf("the reason names the subject: %q", reason)
	}

	// The source is back; the operator replays the letter to the topic it died on.
	healthy.Store(true)
	replayed := message.NewMessage(letter.UUID, letter.Payload)
	replayed.Metadata = letter.Metadata
	if err := env.pubsub.Publish(letter.Metadata.Get(schemas.MetaDeadTopic), replayed); err != nil {
		t.Fatal(err)
	}
	// Its answer differs from the ADAPTER_ERROR the waiter had: a late answer, for the journal.
	if a := waitLate(t, late); a.Key != "d1/7" || a.Status != siobroker.StatusOK || a.Records != 1 {
		t.Fatalf("late answer %+v, want the replayed request's ok answer", a)
	}
	if n := calls.Load(); n != 4 {
		t.Fatalf("%d calls after the replay, want 4: the replay asks the source again", n)
	}
}
