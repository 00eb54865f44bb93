package incidents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/sqlite"
)

// memJournal is an in-memory fake of the permanent journal.
type memJournal struct {
	mu   sync.Mutex
	recs []siobroker.JournalRecord
}

func (j *memJournal) Append(_ context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := range recs {
		recs[i].Seq = int64(len(j.recs) + 1)
		j.recs = append(j.recs, recs[i])
	}
	return recs, nil
}

func (j *memJournal) records() []siobroker.JournalRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]siobroker.JournalRecord(nil), j.recs...)
}

var t0 = time.Date(2026, 3, 10, 9, 0, 0, 0, siobroker.Astana)

var (
	causeA = siobroker.IncidentCause{Service: 7, Queue: "sio.service.007", Adapter: "demo-7"}
	causeB = siobroker.IncidentCause{Service: 12, Queue: "sio.service.012", Adapter: "demo-12"}
)

type fixture struct {
	t       *testing.T
	db      *sqlite.DB
	clock   *testclock.Clock
	journal *memJournal
	tracker *incidents.Tracker
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, clock: testclock.New(t0), journal: &memJournal{}}
	f.tracker = newTracker(t, incidents.Config{}, db, f.journal, f.clock)
	return f
}

// newTracker is NewTracker, failing the test on an error.
func newTracker(t *testing.T, cfg incidents.Config, store incidents.Store, journal siobroker.JournalWriter, clock siobroker.Clock) *incidents.Tracker {
	t.Helper()
	tr, err := incidents.NewTracker(cfg, store, journal, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestNewTrackerValidates: a missing collaborator or a negative setting is refused, naming it;
// zero settings take the defaults and a nil logger discards.
func TestNewTrackerValidates(t *testing.T) {
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	type args struct {
		cfg     incidents.Config
		store   incidents.Store
		journal siobroker.JournalWriter
		clock   siobroker.Clock
	}
	full := args{incidents.Config{}, db, &memJournal{}, testclock.New(t0)}
	if _, err := incidents.NewTracker(full.cfg, full.store, full.journal, full.clock, nil); err != nil {
		t.Fatalf("NewTracker with every collaborator: %v", err)
	}
	for _, tt := range []struct {
		want string
		mod  func(*args)
	}{
		{"incidents: NewTracker: store is required", func(a *args) { a.store = nil }},
		{"incidents: NewTracker: journal is required", func(a *args) { a.journal = nil }},
		{"incidents: NewTracker: clock is required", func(a *args) { a.clock = nil }},
		{"incidents: Config.Threshold must not be negative", func(a *args) { a.cfg.Threshold = -time.Minute }},
		{"incidents: Config.CheckEvery must not be negative", func(a *args) { a.cfg.CheckEvery = -time.Minute }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			a := full
			tt.mod(&a)
			_, err := incidents.NewTracker(a.cfg, a.store, a.journal, a.clock, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewTracker: %v, want %q", err, tt.want)
			}
		})
	}
}

// at moves the clock to t0+d and runs Check.
func (f *fixture) checkAt(d time.Duration) {
	f.t.Helper()
	f.clock.Set(t0.Add(d))
	if err := f.tracker.Check(context.Background()); err != nil {
		f.t.Fatalf("Check at +%s: %v", d, err)
	}
}

func (f *fixture) incidents(all bool) []siobroker.Incident {
	f.t.Helper()
	list, err := f.db.Incidents(context.Background(), all)
	if err != nil {
		f.t.Fatal(err)
	}
	return list
}

func (f *fixture) incident(n int64) siobroker.Incident {
	f.t.Helper()
	inc, ok, err := f.db.Incident(context.Background(), n)
	if err != nil || !ok {
		f.t.Fatalf("incident %d: ok %v, %v", n, ok, err)
	}
	return inc
}

func TestStoppedAdapter(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tr := f.tracker

	// The adapter of service 7 is stopped: five requests go out and none is answered.
	for i := range 5 {
		tr.Sent(fmt.Sprintf("req-%d/7", i), causeA, t0.Add(time.Duration(i)*time.Minute))
	}
	tr.Failed(causeA, errors.New("dial tcp 10.0.0.7:443: connection refused"))

	f.checkAt(59 * time.Minute)
	if got := f.incidents(true); len(got) != 0 {
		t.Fatalf("after 59 min: %d incidents, want none: %+v", len(got), got)
	}
	if n := len(f.journal.records()); n != 0 {
		t.Fatalf("after 59 min: %d journal records", n)
	}

	f.checkAt(61 * time.Minute)
	open := f.incidents(false)
	if len(open) != 1 {
		t.Fatalf("after 61 min: %d open incidents, want 1", len(open))
	}
	inc := open[0]
	if inc.Number != 1 || inc.Type != siobroker.IncidentDeliveryDelay || inc.Cause != causeA || inc.Status != siobroker.IncidentOpen {
		t.Fatalf("incident: %+v", inc)
	}
	if inc.Affected != 5 {
		t.Errorf("Affected = %d, want 5", inc.Affected)
	}
	if !inc.StartedAt.Equal(t0) || !inc.OpenedAt.Equal(t0.Add(61*time.Minute)) {
		t.Errorf("started %s, opened %s; want %s and +61m", inc.StartedAt, inc.OpenedAt, t0)
	}
	if inc.StartedAt.Location() != siobroker.Astana {
		t.Errorf("StartedAt in %s, want Astana time", inc.StartedAt.Location())
	}
	if inc.LastError != "dial tcp 10.0.0.7:443: connection refused" {
		t.Errorf("LastError = %q", inc.LastError)
	}
	recs := f.journal.records()
	if len(recs) != 1 {
		t.Fatalf("%d journal records after opening, want 1", len(recs))
	}
	r := recs[0]
	if r.Kind != siobroker.JournalIncident || r.Code != siobroker.IncidentEventOpened || r.Service != 7 || !r.At.Equal(t0.Add(61*time.Minute)) {
		t.Errorf("journal record: %+v", r)
	}
	var journaled siobroker.Incident
	if err := json.Unmarshal(r.Data, &journaled); err != nil {
		t.Fatalf("journal data %s: %v", r.Data, err)
	}
	if journaled.Number != 1 || journaled.Affected != 5 || journaled.Status != siobroker.IncidentOpen || !journaled.StartedAt.Equal(t0) {
		t.Errorf("journaled incident: %+v", journaled)
	}
	var raw map[string]any
	_ = json.Unmarshal(r.Data, &raw)
	if raw["startedAt"] != "2026-03-10T09:00:00.000+05:00" {
		t.Errorf("startedAt in the journal = %v, want Astana time with its offset", raw["startedAt"])
	}

	// Checking again changes nothing.
	f.checkAt(62 * time.Minute)
	if n := len(f.journal.records()); n != 1 {
		t.Fatalf("%d journal records after a quiet check", n)
	}

	// More messages for the same cause: still one incident, and the count follows.
	for i := range 3 {
		tr.Sent(fmt.Sprintf("req-late-%d/7", i), causeA, t0.Add(62*time.Minute))
	}
	tr.Failed(causeA, errors.New("dial tcp 10.0.0.7:443: i/o timeout"))
	f.checkAt(63 * time.Minute)
	open = f.incidents(false)
	if len(open) != 1 || open[0].Number != 1 || open[0].Affected != 8 {
		t.Fatalf("after more messages: %+v, want incident 1 with 8 affected", open)
	}
	if open[0].LastError != "dial tcp 10.0.0.7:443: i/o timeout" {
		t.Errorf("LastError = %q after a new failure", open[0].LastError)
	}
	// A message counted once stays counted once.
	f.checkAt(64 * time.Minute)
	if got := f.incident(1).Affected; got != 8 {
		t.Errorf("Affected = %d after another check, want 8", got)
	}

	// A second cause gets a second incident.
	tr.Sent("req-b1/12", causeB, t0.Add(30*time.Minute))
	f.checkAt(91 * time.Minute)
	open = f.incidents(false)
	if len(open) != 2 || open[1].Number != 2 || open[1].Cause != causeB || open[1].Affected != 1 ||
		!open[1].StartedAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("second cause: %+v", open)
	}
	oldest := tr.Oldest()
	if oldest[causeA] != 91*time.Minute || oldest[causeB] != 61*time.Minute || len(oldest) != 2 {
		t.Errorf("Oldest = %v", oldest)
	}

	// The adapter comes back: the old messages are answered, one by one. While one of them is
	// still waiting, the incident stays open.
	keys := []string{"req-0/7", "req-1/7", "req-2/7", "req-3/7", "req-late-0/7", "req-late-1/7", "req-late-2/7"}
	for _, k := range keys {
		tr.Delivered(k, t0.Add(95*time.Minute))
	}
	f.checkAt(96 * time.Minute)
	if inc := f.incident(1); inc.Status != siobroker.IncidentOpen {
		t.Fatalf("incident 1 closed while req-4/7 is still late: %+v", inc)
	}
	tr.Delivered("req-4/7", t0.Add(97*time.Minute))
	tr.Delivered("req-4/7", t0.Add(97*time.Minute)) // a duplicate answer is harmless
	f.checkAt(98 * time.Minute)
	inc = f.incident(1)
	if inc.Status != siobroker.IncidentClosed || !inc.ClosedAt.Equal(t0.Add(98*time.Minute)) || inc.CloseNote != incidents.NoteResumed {
		t.Fatalf("incident 1 after delivery resumed: %+v", inc)
	}
	if inc.Affected != 8 {
		t.Errorf("closed incident Affected = %d, want 8", inc.Affected)
	}
	if inc := f.incident(2); inc.Status != siobroker.IncidentOpen {
		t.Fatalf("incident 2 closed with it: %+v", inc)
	}
	recs = f.journal.records()
	if len(recs) != 3 || recs[1].Code != siobroker.IncidentEventOpened || recs[2].Code != siobroker.IncidentEventClosed || recs[2].Service != 7 {
		t.Fatalf("journal: %+v", recs)
	}
	if _, ok := tr.Oldest()[causeA]; ok {
		t.Errorf("Oldest still lists %v", causeA)
	}

	// Cause B: a fresh message is waiting, the late one is answered. Delivery has resumed even
	// though something (not late) is still pending.
	tr.Sent("req-b2/12", causeB, t0.Add(92*time.Minute))
	tr.Delivered("req-b1/12", t0.Add(100*time.Minute))
	f.checkAt(101 * time.Minute)
	if inc := f.incident(2); inc.Status != siobroker.IncidentClosed || !inc.ClosedAt.Equal(t0.Add(101*time.Minute)) {
		t.Fatalf("incident 2: %+v", inc)
	}
	// And if that one waits an hour in its turn, it is a new incident.
	f.checkAt(153 * time.Minute)
	open = f.incidents(false)
	if len(open) != 1 || open[0].Number != 3 || open[0].Cause != causeB || !open[0].StartedAt.Equal(t0.Add(92*time.Minute)) {
		t.Fatalf("a new delay: %+v", open)
	}

	// The history of incident 1 is complete and cannot be edited.
	events, err := f.db.IncidentEvents(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	if fmt.Sprint(kinds) != "[opened updated closed]" {
		t.Errorf("history of incident 1: %v", kinds)
	}
}

func TestManualCloseIsRespected(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.tracker.Sent("m1", causeA, t0)
	f.checkAt(61 * time.Minute)
	if len(f.incidents(false)) != 1 {
		t.Fatal("no incident")
	}
	// The operator closes it from another process (the store and the journal, not the tracker).
	svc, err := incidents.NewService(f.db, f.journal, f.clock, "оператор")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(70 * time.Minute))
	if _, err := svc.Close(ctx, 1, "false alarm: the adapter was under planned maintenance"); err != nil {
		t.Fatal(err)
	}
	f.checkAt(71 * time.Minute)
	f.checkAt(200 * time.Minute)
	if got := f.incidents(true); len(got) != 1 {
		t.Fatalf("the message waiting at the manual close reopened an incident: %+v", got)
	}
	// A message sent after the close that waits an hour is a new incident.
	f.tracker.Sent("m2", causeA, t0.Add(201*time.Minute))
	f.checkAt(262 * time.Minute)
	open := f.incidents(false)
	if len(open) != 1 || open[0].Number != 2 || !open[0].StartedAt.Equal(t0.Add(201*time.Minute)) || open[0].Affected != 2 {
		t.Fatalf("after a later delay: %+v", open)
	}
	// Closing through the tracker works alike, and records who closed it.
	if _, err := f.tracker.AnnotateBy(ctx, "ИВАНОВ ИВАН (750312300458)", 2, "адаптер перезапущен", "Петров П."); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tracker.CloseBy(ctx, "ИВАНОВ ИВАН (750312300458)", 2, "adapter restarted by hand"); err != nil {
		t.Fatal(err)
	}
	events, err := f.db.IncidentEvents(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(events); n < 2 || events[n-1].Kind != siobroker.IncidentEventClosed || events[n-1].By != "ИВАНОВ ИВАН (750312300458)" ||
		events[n-2].Kind != siobroker.IncidentEventAnnotated || events[n-2].By != "ИВАНОВ ИВАН (750312300458)" {
		t.Fatalf("history of incident 2: %+v", events)
	}
	if _, err := f.tracker.Close(ctx, 2, "again"); !errors.Is(err, siobroker.ErrIncidentClosed) {
		t.Fatalf("second close: %v, want ErrClosed", err)
	}
	f.checkAt(300 * time.Minute)
	if got := f.incidents(false); len(got) != 0 {
		t.Fatalf("reopened after a tracker close: %+v", got)
	}
	// Opened, closed by the operator's Service, opened, annotated and closed through the tracker:
	// every change is journaled, whichever way it came (§39).
	want := []string{siobroker.IncidentEventOpened, siobroker.IncidentEventClosed, siobroker.IncidentEventOpened,
		siobroker.IncidentEventAnnotated, siobroker.IncidentEventClosed}
	recs := f.journal.records()
	if len(recs) != len(want) {
		t.Fatalf("journal has %d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, r := range recs {
		if r.Code != want[i] {
			t.Errorf("journal record %d: %s, want %s", i+1, r.Code, want[i])
		}
	}
}

func TestOpenIncidentSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	f.tracker.Sent("m1", causeA, t0)
	f.checkAt(61 * time.Minute)

	// The broker restarts: a new tracker over the same store knows no message.
	restarted := newTracker(t, incidents.Config{}, f.db, f.journal, f.clock)
	f.tracker = restarted
	f.checkAt(70 * time.Minute)
	if open := f.incidents(false); len(open) != 1 {
		t.Fatalf("the open incident was closed on restart: %+v", open)
	}
	// Still stuck: new messages are counted in the adopted incident, not in a new one.
	restarted.Sent("m2", causeA, t0.Add(71*time.Minute))
	f.checkAt(72 * time.Minute)
	f.checkAt(140 * time.Minute)
	open := f.incidents(true)
	if len(open) != 1 || open[0].Affected != 2 || open[0].Status != siobroker.IncidentOpen {
		t.Fatalf("after restart: %+v", open)
	}
	// Delivery resumes.
	restarted.Delivered("m2", t0.Add(141*time.Minute))
	f.checkAt(142 * time.Minute)
	if inc := f.incident(1); inc.Status != siobroker.IncidentClosed {
		t.Fatalf("adopted incident not closed: %+v", inc)
	}
}

func TestLegs(t *testing.T) {
	f := newFixture(t)
	answers := siobroker.IncidentCause{Queue: "sio.broker.replies.1", Adapter: "demo-7"}
	// The request reaches the adapter quickly; its answer is stuck on the way back.
	f.tracker.Sent("r1/7", causeA, t0)
	f.tracker.Sent("r1/7", causeA, t0.Add(time.Minute)) // redelivered: still waiting since t0
	f.tracker.Sent("r1/7", answers, t0.Add(2*time.Minute))
	f.checkAt(63 * time.Minute)
	open := f.incidents(false)
	if len(open) != 1 || open[0].Cause != answers || !open[0].StartedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("incidents: %+v", open)
	}
	if _, ok := f.tracker.Oldest()[causeA]; ok {
		t.Error("the request leg is still tracked")
	}
}

func TestThresholdAndRun(t *testing.T) {
	f := newFixture(t)
	f.tracker = newTracker(t, incidents.Config{Threshold: 10 * time.Minute, CheckEvery: time.Millisecond}, f.db, f.journal, f.clock)
	f.tracker.Sent("m1", causeA, t0)
	f.clock.Set(t0.Add(11 * time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.tracker.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.incidents(false)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run opened no incident")
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestConcurrent runs the hot-path calls beside Check, for the race detector.
func TestConcurrent(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("w%d-%d", w, i)
				c := causeA
				if i%2 == 1 {
					c = causeB
				}
				f.tracker.Sent(key, c, t0)
				f.tracker.Failed(c, errors.New("boom"))
				if i%3 == 0 {
					f.tracker.Delivered(key, t0.Add(time.Minute))
				}
				_ = f.tracker.Oldest()
			}
		})
	}
	for i := range 20 {
		f.clock.Set(t0.Add(time.Duration(30+i) * time.Minute)) // under the threshold: the count stays exact
		if err := f.tracker.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	f.checkAt(2 * time.Hour)
	open := f.incidents(false)
	if len(open) != 2 {
		t.Fatalf("%d open incidents, want 2", len(open))
	}
	pending := 0
	for _, inc := range open {
		pending += inc.Affected
	}
	if pending != 4*200-4*67 {
		t.Errorf("affected %d in all, want %d", pending, 4*200-4*67)
	}
}
