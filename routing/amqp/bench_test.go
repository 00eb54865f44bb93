package amqp

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// BenchmarkRawRoundTrip is the transport baseline: a persistent, confirmed request to a queue, a
// responder that answers with a persistent, confirmed reply, on amqp091-go alone, with
// SIOBENCH_INFLIGHT requests in flight (default 8) and SIOBENCH_QUEUE_TYPE queues (default
// classic), so that scripts/bench.sh can match the load's concurrency and the broker's queues. It reports ops/s; the broker's figures over RabbitMQ are reported as ratios to it
// (docs/benchmarks.md).
func BenchmarkRawRoundTrip(b *testing.B) {
	inflight := 8
	if v := os.Getenv("SIOBENCH_INFLIGHT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1024 {
			b.Fatalf("SIOBENCH_INFLIGHT=%q: want 1..1024", v)
		}
		inflight = n
	}
	conn, err := amqp091.Dial(testURL)
	if err != nil {
		b.Skipf("RabbitMQ not reachable: %v", err)
	}
	defer conn.Close()
	prefix := "bench-" + watermill.NewShortUUID()
	reqQ, repQ := prefix+".req", prefix+".rep"
	setup, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	// SIOBENCH_QUEUE_TYPE=quorum declares quorum queues, as the broker does by default.
	var args amqp091.Table
	switch qt := os.Getenv("SIOBENCH_QUEUE_TYPE"); qt {
	case "", "classic":
	case "quorum":
		args = amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}
	default:
		b.Fatalf("SIOBENCH_QUEUE_TYPE=%q: want classic or quorum", qt)
	}
	for _, q := range []string{reqQ, repQ} {
		if _, err := setup.QueueDeclare(q, true, false, false, false, args); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, q := range []string{reqQ, repQ} {
			_, _ = setup.QueueDelete(q, false, false, false)
		}
		setup.Close()
	}()

	confirming := func() *amqp091.Channel {
		ch, err := conn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		if err := ch.Confirm(false); err != nil {
			b.Fatal(err)
		}
		return ch
	}
	publish := func(ch *amqp091.Channel, mu *sync.Mutex, q, id string) {
		mu.Lock()
		conf, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", q, true, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, CorrelationId: id, Body: []byte(`{"service":1}`)})
		mu.Unlock()
		if err != nil {
			b.Error(err)
			return
		}
		if ok, err := conf.WaitContext(context.Background()); !ok || err != nil {
			b.Error("not confirmed", err)
		}
	}

	// The responder: answers every request on the reply queue.
	resCh, resMu := confirming(), &sync.Mutex{}
	deliveries, err := resCh.Consume(reqQ, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for d := range deliveries {
			go func() {
				publish(resCh, resMu, repQ, d.CorrelationId)
				_ = d.Ack(false)
			}()
		}
	}()

	// The requester: a correlation map, as the broker's dispatcher has.
	var waiting sync.Map
	repCh, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	replies, err := repCh.Consume(repQ, "", true, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for d := range replies {
			if ch, ok := waiting.LoadAndDelete(d.CorrelationId); ok {
				ch.(chan struct{}) <- struct{}{}
			}
		}
	}()
	reqCh, reqMu := confirming(), &sync.Mutex{}
	var seq, issued atomic.Int64
	b.ResetTimer()
	var workers sync.WaitGroup
	for range inflight {
		workers.Go(func() {
			for issued.Add(1) <= int64(b.N) {
				id := strconv.FormatInt(seq.Add(1), 10)
				done := make(chan struct{}, 1)
				waiting.Store(id, done)
				publish(reqCh, reqMu, reqQ, id)
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					b.Error("no reply in 10s")
					return
				}
			}
		})
	}
	workers.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
