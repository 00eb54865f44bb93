package incidents_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/sqlite"
)

// TestIncidentFromAStuckAdapter drives the real dispatcher, adapter runtime, store and journal:
// an adapter that stops answering, the clock moved past one hour, an incident opened while the
// message still waits; the adapter back, the incident closed. No test sleeps for an hour.
// The store implements what the tracker and the service need of it.
var _ incidents.Store = (*sqlite.DB)(nil)

func TestIncidentFromAStuckAdapter(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, siobroker.Astana))
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tracker, err := incidents.NewTracker(incidents.Config{Threshold: time.Hour, CheckEvery: time.Minute}, db, db.Journal(), clock, logger)
	if err != nil {
		t.Fatal(err)
	}

	const stuckService = 7
	release := make(chan struct{})
	backends := map[int]adapters.Backend{
		stuckService: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			<-release // a stuck source system ignores the deadline
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "x"}}}, nil
		}),
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	dispatcher, err := routing.NewDispatcher(routing.DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter), RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: pubsub, ReplyTopic: routing.ReplyTopicPrefix + "incident-test",
		Clock: clock, Logger: logger, Tracker: incidents.DispatcherTracker{T: tracker}})
	if err != nil {
		t.Fatal(err)
	}
	dispatcher.AddHandlers(router, pubsub)
	rt, err := routing.NewAdapterRuntime(routing.AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "stuck", Backends: backends, Publisher: pubsub, Clock: clock, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	rt.AddHandlers(router, pubsub)
	runRouter(t, router)

	out := dispatcher.Dispatch(ctx, []schemas.ServiceRequest{{RequestID: "r1", Service: stuckService, Subject: siobroker.Subject{IIN: "750312300458"}}},
		func(int) time.Duration { return 50 * time.Millisecond })
	if out[0].Result.Status != siobroker.StatusTimeout {
		t.Fatalf("result %+v, want timeout", out[0].Result)
	}

	clock.Advance(59 * time.Minute)
	if err := tracker.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if open, _ := db.Incidents(ctx, false); len(open) != 0 {
		t.Fatalf("incident opened before the threshold: %+v", open)
	}

	clock.Advance(2 * time.Minute)
	if err := tracker.Check(ctx); err != nil {
		t.Fatal(err)
	}
	open, err := db.Incidents(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Cause.Service != stuckService || open[0].Affected != 1 || open[0].Status != siobroker.IncidentOpen {
		t.Fatalf("open incidents %+v, want one for service %d with one message", open, stuckService)
	}
	if recs, _ := db.Journal().Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalIncident}}); len(recs) != 1 {
		t.Fatalf("%d incident journal records, want 1", len(recs))
	}

	close(release) // the adapter is back: its late answer is the message's delivery
	deadline := time.Now().Add(5 * time.Second)
	for len(tracker.Oldest()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	clock.Advance(time.Minute)
	if err := tracker.Check(ctx); err != nil {
		t.Fatal(err)
	}
	inc, ok, err := db.Incident(ctx, open[0].Number)
	if err != nil || !ok {
		t.Fatalf("incident %d: %v", open[0].Number, err)
	}
	if inc.Status != siobroker.IncidentClosed || inc.ClosedAt.IsZero() {
		t.Fatalf("incident after delivery resumed: %+v", inc)
	}
}

// refusingPublisher refuses every publish while refuse is set, as a transport that lost a
// queue does, and publishes to next otherwise.
type refusingPublisher struct {
	next   message.Publisher
	refuse atomic.Bool
}

func (p *refusingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.refuse.Load() {
		return errors.New("amqp: message returned unroutable: no such queue")
	}
	return p.next.Publish(topic, msgs...)
}
func (p *refusingPublisher) Close() error { return nil }

// TestFailedPublishIsRecorded drives the real dispatcher: a service message the transport refuses
// is not dropped without a record (issue 19): it is counted at once in the publish-failed incident
// of its queue, with the error, and the incident is closed when a message of the queue is
// published again. The request's own result says the service was unavailable.
func TestFailedPublishIsRecorded(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, siobroker.Astana))
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tracker, err := incidents.NewTracker(incidents.Config{}, db, db.Journal(), clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16}, watermill.NopLogger{})
	pub := &refusingPublisher{next: pubsub}
	pub.refuse.Store(true)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	dispatcher, err := routing.NewDispatcher(routing.DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter),
		RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: pub, ReplyTopic: routing.ReplyTopicPrefix + "publish-test",
		Clock: clock, Logger: slog.New(slog.DiscardHandler), Tracker: incidents.DispatcherTracker{T: tracker}})
	if err != nil {
		t.Fatal(err)
	}
	dispatcher.AddHandlers(router, pubsub)
	rt, err := routing.NewAdapterRuntime(routing.AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "a",
		Backends: map[int]adapters.Backend{7: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "x"}}}, nil
		})}, Publisher: pubsub, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rt.AddHandlers(router, pubsub)
	runRouter(t, router)
	dispatch := func(id string) routing.Outcome {
		return dispatcher.Dispatch(ctx, []schemas.ServiceRequest{{RequestID: id, Service: 7, Subject: siobroker.Subject{IIN: "750312300458"}}},
			func(int) time.Duration { return 5 * time.Second })[0]
	}

	for _, id := range []string{"r1", "r2"} {
		if out := dispatch(id); out.Result.Status != siobroker.StatusError || out.Result.Reason != siobroker.ReasonUnavailable {
			t.Fatalf("%s: %+v, want unavailable", id, out.Result)
		}
	}
	if err := tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	open, err := db.Incidents(ctx, false)
	if err != nil || len(open) != 1 {
		t.Fatalf("open incidents %+v, %v; want the queue's publish-failed incident", open, err)
	}
	inc := open[0]
	if inc.Type != siobroker.IncidentPublishFailed || inc.Cause.Service != 7 || inc.Cause.Queue != schemas.ServiceTopic(7) ||
		inc.Affected != 2 || !strings.Contains(inc.LastError, "unroutable") {
		t.Fatalf("incident %+v", inc)
	}

	pub.refuse.Store(false)
	clock.Advance(time.Minute)
	cleared := clock.Now()
	if out := dispatch("r3"); out.Result.Status != siobroker.StatusOK {
		t.Fatalf("r3: %+v", out.Result)
	}
	clock.Advance(incidents.DefaultSettle)
	if err := tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := db.Incident(ctx, inc.Number); got.Status != siobroker.IncidentClosed || !got.ClosedAt.Equal(cleared) {
		t.Fatalf("after the queue took a message again: %+v", got)
	}
}

// runRouter runs router until the test ends.
func runRouter(t *testing.T, router *message.Router) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = router.Close()
		<-done
	})
	<-router.Running()
}
