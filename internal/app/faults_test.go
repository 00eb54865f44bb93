package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/sqlite"
)

// faultTracker is an incident tracker over a store of its own, at clock.
func faultTracker(t *testing.T, clock siobroker.Clock) (*incidents.Tracker, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tracker, err := incidents.NewTracker(incidents.Config{}, db, db.Journal(), clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tracker, db
}

type failingSigner struct{ err error }

func (s *failingSigner) Sign(*etree.Document, signing.Placement) error { return s.err }

// TestSigningFailureOpensAnIncident: the pipeline's signer reports every signing; one that fails
// opens the signing-failure incident with its error, and it is closed once signing works again.
func TestSigningFailureOpensAnIncident(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 12, 3, 10, 0, 0, 0, siobroker.Astana))
	tracker, db := faultTracker(t, clock)
	inner := &failingSigner{err: errors.New("the signing key is unreadable")}
	s := watchedSigner{Signer: inner, report: tracker.Watch(incidents.FaultSigning)}
	if err := s.Sign(etree.NewDocument(), signing.PlacementWSSE); err == nil {
		t.Fatal("the failure was not passed on")
	}
	if err := tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	open, _ := db.Incidents(ctx, false)
	if len(open) != 1 || open[0].Type != siobroker.IncidentSigningFailure || open[0].LastError != "the signing key is unreadable" {
		t.Fatalf("open %+v", open)
	}
	inner.err = nil
	if err := s.Sign(etree.NewDocument(), signing.PlacementWSSE); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if open, _ := db.Incidents(ctx, false); len(open) != 0 {
		t.Fatalf("still open %+v", open)
	}
}

// TestTransportOutageReported: a transport that is not ready (here the router does not run)
// opens the transport-outage incident; nothing is reported once the broker is closing, when the
// router stops on purpose.
func TestTransportOutageReported(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 12, 3, 10, 0, 0, 0, siobroker.Astana))
	tracker, db := faultTracker(t, clock)
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{msg: messaging{router: router}}
	report := tracker.Watch(incidents.FaultTransport)

	b.closing.Store(true)
	b.reportTransport(ctx, report)
	if err := tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if all, _ := db.Incidents(ctx, true); len(all) != 0 {
		t.Fatalf("a closing broker reported an outage: %+v", all)
	}
	b.closing.Store(false)
	b.reportTransport(ctx, report)
	if err := tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	open, _ := db.Incidents(ctx, false)
	if len(open) != 1 || open[0].Type != siobroker.IncidentTransportOutage || open[0].LastError != "the message router is not running" {
		t.Fatalf("open %+v", open)
	}
}

// TestEmergencyPlansAtStart: the shipped plans load (an example, said in the log); a missing
// file leaves the broker without plans; a broken one refuses the start.
func TestEmergencyPlansAtStart(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Defaults()
	cfg.Incidents.EmergencyPlans = "../../configs/emergencies.yaml"
	if plans, err := loadEmergencyPlans(cfg, logger); err != nil || plans == nil || !plans.Example {
		t.Fatalf("shipped plans: %+v, %v", plans, err)
	}
	cfg.Incidents.EmergencyPlans = t.TempDir() + "/none.yaml"
	if plans, err := loadEmergencyPlans(cfg, logger); err != nil || plans != nil {
		t.Fatalf("missing plans: %+v, %v", plans, err)
	}
	cfg.Incidents.EmergencyPlans = "../../configs/maintenance.yaml"
	if _, err := loadEmergencyPlans(cfg, logger); err == nil {
		t.Fatal("a file that is not plans was taken")
	}
}
