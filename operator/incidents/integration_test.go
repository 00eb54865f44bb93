package incidents_test

import (
	"context"
	"io"
	"log/slog"
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
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(runCtx) }()
	defer func() {
		cancel()
		_ = router.Close()
		<-done
	}()
	<-router.Running()

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
