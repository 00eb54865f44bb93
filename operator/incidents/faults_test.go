package incidents_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/sqlite"
	"github.com/sio-pso/siobroker/sqlite/sqlitetest"
)

// TestFaultOpenedAndClosedWithItsCause: a failure of the reply signer opens an incident as soon as
// the tracker runs, dated from the first failure, counting the failures, with the cause in words
// and the last error; it is closed at the moment a signing succeeds again; both are journaled. A
// success while nothing fails records nothing.
func TestFaultOpenedAndClosedWithItsCause(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	signed := f.tracker.Watch(incidents.FaultSigning)
	signed(nil)
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := f.db.Incidents(ctx, true); len(list) != 0 {
		t.Fatalf("a success opened %+v", list)
	}

	signed(errors.New("sign reply: the HSM does not answer"))
	f.clock.Advance(time.Second)
	signed(errors.New("sign reply: the HSM does not answer (2)"))
	f.clock.Advance(time.Second)
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	open, err := f.db.Incidents(ctx, false)
	if err != nil || len(open) != 1 {
		t.Fatalf("open = %+v, %v", open, err)
	}
	inc := open[0]
	if inc.Type != siobroker.IncidentSigningFailure || !inc.StartedAt.Equal(t0) || !inc.OpenedAt.Equal(t0.Add(2*time.Second)) ||
		inc.Affected != 2 || inc.Reason == "" || !strings.Contains(inc.LastError, "(2)") {
		t.Fatalf("opened %+v", inc)
	}
	signed(errors.New("sign reply: the HSM does not answer (3)"))
	if err := f.tracker.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := f.db.Incident(ctx, inc.Number); got.Affected != 3 {
		t.Fatalf("after a third failure: affected %d", got.Affected)
	}

	f.clock.Advance(time.Minute)
	cleared := f.clock.Now()
	signed(nil)
	f.clock.Advance(time.Minute) // the tracker runs a little later
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, _ := f.db.Incident(ctx, inc.Number)
	if got.Status != siobroker.IncidentClosed || !got.ClosedAt.Equal(cleared) || got.CloseNote != incidents.NoteCleared {
		t.Fatalf("after the signer recovered: %+v", got)
	}
	var codes []string
	for _, r := range f.journal.records() {
		codes = append(codes, r.Code)
	}
	if strings.Join(codes, " ") != "opened closed" {
		t.Fatalf("journal codes %v", codes)
	}

	// A failure that began and cleared between two runs of the tracker is recorded all the same.
	signed(errors.New("once"))
	f.clock.Advance(time.Second)
	signed(nil)
	f.clock.Advance(incidents.DefaultSettle)
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	all, _ := f.db.Incidents(ctx, true)
	if len(all) != 2 || all[1].Status != siobroker.IncidentClosed || all[1].Affected != 1 || all[1].LastError != "once" {
		t.Fatalf("a brief failure: %+v", all)
	}

	// A part failing on and off within the settling time is one incident.
	signed(errors.New("on"))
	f.clock.Advance(time.Second)
	signed(nil)
	f.clock.Advance(10 * time.Second)
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	signed(errors.New("off and on"))
	f.clock.Advance(time.Second)
	signed(nil)
	f.clock.Advance(incidents.DefaultSettle - time.Second)
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if all, _ = f.db.Incidents(ctx, true); len(all) != 3 || all[2].Status != siobroker.IncidentOpen || all[2].Affected != 2 {
		t.Fatalf("failing on and off: %+v", all[2:])
	}
	f.clock.Advance(time.Second)
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if all, _ = f.db.Incidents(ctx, true); len(all) != 3 || all[2].Status != siobroker.IncidentClosed {
		t.Fatalf("settled: %+v", all[2:])
	}
}

// TestJournalFailureRecordedWhenTheJournalIsBack: while another process holds the journal's store
// locked, the pipeline's appends fail; the journal-failure incident is opened in the incident
// store at once, and its journal record, which the journal cannot take then, is appended once the
// journal is back, before the record of its close.
func TestJournalFailureRecordedWhenTheJournalIsBack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	journalDir := t.TempDir()
	jdb, err := sqlite.OpenWith(ctx, journalDir, sqlite.Options{WriteTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jdb.Close() })
	tracker := newTracker(t, incidents.Config{}, f.db, jdb.Journal(), f.clock)
	pipeline := tracker.WatchJournal(jdb.Journal())
	rec := siobroker.JournalRecord{At: t0, Kind: siobroker.JournalRequest, RequestID: "r1", Data: []byte("<x/>")}

	release := sqlitetest.HoldWriteLock(t, journalDir)
	if _, err := pipeline.Append(ctx, rec); !errors.Is(err, siobroker.ErrWriteTimeout) {
		t.Fatalf("append to a locked journal = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = pipeline.Append(cancelled, rec) // the caller gave up: not counted
	f.clock.Advance(time.Second)
	if err := tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	open, _ := f.db.Incidents(ctx, false)
	if len(open) != 1 || open[0].Type != siobroker.IncidentJournalFailure || open[0].Affected != 1 || !open[0].StartedAt.Equal(t0) {
		t.Fatalf("open = %+v", open)
	}
	if n := tracker.Unjournaled(); n != 1 {
		t.Fatalf("%d records kept for the journal, want the opening", n)
	}

	release()
	f.clock.Advance(time.Minute)
	if _, err := pipeline.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(incidents.DefaultSettle)
	if err := tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if n := tracker.Unjournaled(); n != 0 {
		t.Fatalf("%d records still wait", n)
	}
	recs, err := jdb.Journal().Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalIncident}})
	if err != nil || len(recs) != 2 || recs[0].Code != "opened" || recs[1].Code != "closed" {
		t.Fatalf("journal = %+v, %v", recs, err)
	}
	var opened siobroker.Incident
	if err := json.Unmarshal(recs[0].Data, &opened); err != nil || opened.Type != siobroker.IncidentJournalFailure || !recs[0].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("the opening as journaled: %+v at %s, %v", opened, recs[0].At, err)
	}
	if got, _, _ := f.db.Incident(ctx, open[0].Number); got.Status != siobroker.IncidentClosed || !got.ClosedAt.Equal(t0.Add(61*time.Second)) {
		t.Fatalf("closed %+v", got)
	}
}

// TestFaultClosedByHandOpensAnew: an operator's close is respected: the failure going on opens no
// new incident; once the part works again, a new failure does.
func TestFaultClosedByHandOpensAnew(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.tracker.Report(incidents.FaultTransport, errors.New("amqp: not connected"))
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := incidents.NewService(f.db, f.journal, f.clock, "оператор")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Close(ctx, 1, "RabbitMQ перезапущен вручную"); err != nil {
		t.Fatal(err)
	}
	f.tracker.Report(incidents.FaultTransport, errors.New("amqp: not connected"))
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if all, _ := f.db.Incidents(ctx, true); len(all) != 1 {
		t.Fatalf("the outage going on after the operator's close opened %+v", all[1:])
	}
	f.tracker.Report(incidents.FaultTransport, nil)
	f.clock.Advance(incidents.DefaultSettle)
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	f.tracker.Report(incidents.FaultTransport, errors.New("amqp: not connected again"))
	if err := f.tracker.CheckFaults(ctx); err != nil {
		t.Fatal(err)
	}
	all, _ := f.db.Incidents(ctx, true)
	if len(all) != 2 || all[0].CloseNote != "RabbitMQ перезапущен вручную" || all[1].Status != siobroker.IncidentOpen {
		t.Fatalf("incidents %+v", all)
	}
}
