package postgres_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

// TestIntegrationUnreachableDatabaseRetriedThenDeadLettered: a postgres backend whose database
// refuses connections is asked retry.attempts times by the adapter runtime; then the broker is
// answered ADAPTER_ERROR and the request goes to the dead-letter topic with the reason, as for
// an http source that is down.
func TestIntegrationUnreachableDatabaseRetriedThenDeadLettered(t *testing.T) {
	testDB(t) // skips or fails without a server
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	inner := newBackend(t, poolAt(t, closed, appName(t)), specsByNo[1])
	var attempts atomic.Int32
	backend := adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		attempts.Add(1)
		return inner.Query(ctx, req)
	})

	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := routing.NewAdapterRuntime(routing.AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "pg", Backends: map[int]adapters.Backend{1: backend},
		Publisher: pubsub, Clock: siobroker.SystemClock{}, Logger: slog.New(slog.DiscardHandler), Attempts: 3, Backoff: time.Millisecond,
		DeadLetters: "sio.dlq"})
	if err != nil {
		t.Fatal(err)
	}
	rt.AddHandlers(router, pubsub)
	replies, err := pubsub.Subscribe(t.Context(), "sio.reply.pg-test")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := pubsub.Subscribe(t.Context(), "sio.dlq")
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

	req := adaptertest.Request(1, person1)
	req.RequestID, req.ReplyTo, req.Deadline = "pg-down", "sio.reply.pg-test", time.Now().Add(10*time.Second)
	payload, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("pg-down/1", payload)
	msgauthtest.SignRequest(msg.Metadata, msg.Payload) // as the broker makes it
	if err := pubsub.Publish(schemas.ServiceTopic(1), msg); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	select {
	case m := <-dead:
		m.Ack()
		reason, ok := schemas.ParseDeadReason(m.Metadata.Get(schemas.MetaDeadReason))
		if !ok || m.Metadata.Get(schemas.MetaDeadAttempts) != "3" || reason.Error != schemas.ErrorConnectionRefused ||
			!strings.Contains(reason.String(), "3 times") || !strings.Contains(reason.String(), "connection refused") {
			t.Errorf("dead letter %v", m.Metadata)
		}
	case <-timeout:
		t.Fatal("no dead letter")
	}
	select {
	case m := <-replies:
		m.Ack()
		var resp schemas.ServiceResponse
		if err := json.Unmarshal(m.Payload, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Result.Status != siobroker.StatusError || resp.Result.Reason != siobroker.ReasonAdapterError {
			t.Errorf("answer %+v, want ADAPTER_ERROR", resp.Result)
		}
	case <-timeout:
		t.Fatal("no answer")
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("the database was tried %d times, want 3", n)
	}
}
