package maintenance_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/sqlite"
)

var t0 = time.Date(2026, 12, 1, 21, 0, 0, 0, siobroker.Astana)

// The store keeps what a Schedule announces.
var _ maintenance.Store = (*sqlite.DB)(nil)

// newSchedule returns a schedule asking minNotice, whose emergencies are recorded in the store's
// journal of emergencies and its journal.
func newSchedule(t *testing.T, minNotice time.Duration) (*maintenance.Schedule, *testclock.Clock, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := testclock.New(t0)
	emergencies, err := incidents.NewService(db, db.Journal(), clock, "siobroker")
	if err != nil {
		t.Fatal(err)
	}
	s := maintenance.NewSchedule(db, clock, maintenance.Policy{MinNotice: minNotice, Emergencies: emergencies})
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, clock, db
}

func TestAnnounceActiveCancel(t *testing.T) {
	ctx := context.Background()
	// No notice asked: this test is about the schedule, TestAnnounceNotice about the notice.
	s, clock, db := newSchedule(t, 0)
	w, err := s.Announce(ctx, siobroker.MaintenanceWindow{Services: []int{12, 11}, Start: t0.Add(time.Hour), End: t0.Add(3 * time.Hour),
		Reason: "КГД database upgrade", AnnouncedBy: "operator Askarov"})
	if err != nil {
		t.Fatalf("Announce = %v", err)
	}
	if w.ID == 0 || w.Source != siobroker.WindowAnnounced || w.Services[0] != 11 || !w.AnnouncedAt.Equal(t0) {
		t.Fatalf("announced %+v", w)
	}
	if _, ok := s.Active(11, t0); ok {
		t.Error("active before its start")
	}
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour), t0.Add(3*time.Hour - time.Nanosecond)} {
		got, ok := s.Active(11, at)
		if !ok || got.ID != w.ID {
			t.Errorf("Active(11, %s) = %v, %v", at, got, ok)
		}
	}
	if _, ok := s.Active(11, t0.Add(3*time.Hour)); ok {
		t.Error("active at its end")
	}
	if _, ok := s.Active(13, t0.Add(2*time.Hour)); ok {
		t.Error("service 13 is not in the window")
	}
	d := w.Describe()
	for _, want := range []string{"no. 1", "2026-12-01T22:00:00+05:00", "2026-12-02T00:00:00+05:00", "КГД database upgrade"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe = %q, want %q", d, want)
		}
	}

	// Another process (the command line) announces through its own schedule on the same store;
	// this one sees it at its next refresh.
	other := maintenance.NewSchedule(db, clock, maintenance.Policy{})
	all, err := other.Announce(ctx, siobroker.MaintenanceWindow{Start: t0, End: t0.Add(time.Hour), Reason: "network", AnnouncedBy: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Active(50, t0.Add(time.Minute)); ok {
		t.Error("seen before refresh")
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Active(50, t0.Add(time.Minute)); !ok || got.ID != all.ID {
		t.Errorf("a window of every service: %v %v", got, ok)
	}

	if err := s.Cancel(ctx, w.ID, "operator Askarov"); err != nil {
		t.Fatalf("Cancel = %v", err)
	}
	if _, ok := s.Active(11, t0.Add(2*time.Hour)); ok {
		t.Error("cancelled window still active")
	}
	if err := s.Cancel(ctx, w.ID, "x"); !errors.Is(err, siobroker.ErrWindowCancelled) {
		t.Errorf("second cancel = %v", err)
	}
	if err := s.Cancel(ctx, 999, "x"); !errors.Is(err, siobroker.ErrWindowNotFound) {
		t.Errorf("cancel unknown = %v", err)
	}
	// Cancelled windows are kept, and listed.
	ws, err := s.Windows(ctx, true)
	if err != nil || len(ws) != 2 || ws[1].Cancelled.IsZero() {
		t.Fatalf("Windows = %+v, %v", ws, err)
	}
	clock.Set(t0.Add(5 * time.Hour))
	if ws, _ := s.Windows(ctx, false); len(ws) != 0 {
		t.Errorf("ended windows listed as current: %+v", ws)
	}
}

func TestAnnounceRefusals(t *testing.T) {
	s, _, _ := newSchedule(t, 0)
	for name, w := range map[string]siobroker.MaintenanceWindow{
		"no reason":         {Start: t0, End: t0.Add(time.Hour), AnnouncedBy: "x"},
		"end before start":  {Start: t0, End: t0.Add(-time.Hour), Reason: "r", AnnouncedBy: "x"},
		"ended already":     {Start: t0.Add(-2 * time.Hour), End: t0.Add(-time.Hour), Reason: "r", AnnouncedBy: "x"},
		"unknown service":   {Services: []int{94}, Start: t0, End: t0.Add(time.Hour), Reason: "r", AnnouncedBy: "x"},
		"service twice":     {Services: []int{5, 5}, Start: t0, End: t0.Add(time.Hour), Reason: "r", AnnouncedBy: "x"},
		"nobody announcing": {Start: t0, End: t0.Add(time.Hour), Reason: "r"},
	} {
		if _, err := s.Announce(context.Background(), w); err == nil {
			t.Errorf("%s: announced", name)
		}
	}
}

func TestFileWindows(t *testing.T) {
	s, _, _ := newSchedule(t, 0)
	rules := maintenance.FileRules{Now: t0}
	path := filepath.Join(t.TempDir(), "maintenance.yaml")
	if ws, err := maintenance.LoadFile(path, rules); err != nil || ws != nil {
		t.Fatalf("missing file: %v %v", ws, err)
	}
	good := "windows:\n  - services: [3]\n    start: 2026-12-01T22:00:00+05:00\n    end: 2026-12-01T23:00:00+05:00\n    reason: registry upgrade\n    announced_at: 2026-11-28T10:00:00+05:00\n"
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	ws, err := maintenance.LoadFile(path, rules)
	if err != nil || len(ws) != 1 {
		t.Fatalf("LoadFile = %v, %v", ws, err)
	}
	s.SetFileWindows(ws)
	if w, ok := s.Active(3, t0.Add(90*time.Minute)); !ok || w.Source != siobroker.WindowFromFile {
		t.Errorf("file window not active: %+v %v", w, ok)
	}
	bad := good + "  - services: [3]\n    start: tomorrow\n    end: 2026-12-01T23:00:00+05:00\n    reason: x\n    announced_at: 2026-11-28T10:00:00+05:00\n" +
		"  - start: 2026-12-01T22:00:00+05:00\n    end: 2026-12-01T23:00:00+05:00\n    announced_at: 2026-11-28T10:00:00+05:00\n"
	_, err = maintenance.ParseFile("m.yaml", []byte(bad), rules)
	if err == nil || !strings.Contains(err.Error(), "m.yaml:7: window 2: start:") || !strings.Contains(err.Error(), "m.yaml:12: window 3: a reason is required") {
		t.Errorf("ParseFile errors = %v", err)
	}
	if _, err := maintenance.ParseFile("m.yaml", []byte("windows:\n  - servces: [3]\n"), rules); err == nil || !strings.Contains(err.Error(), "servces") {
		t.Errorf("unknown key: %v", err)
	}
	// The shipped file has no windows and passes.
	if ws, err := maintenance.LoadFile("../../configs/maintenance.yaml", maintenance.FileRules{MinNotice: siobroker.DefaultMaintenanceMinNotice, Now: t0}); err != nil || len(ws) != 0 {
		t.Errorf("shipped file: %v %v", ws, err)
	}
}

// TestAnnounceNotice: a window is announced at least the minimum notice before it starts (§36,
// 42); one with less, or that has begun, only as an emergency, which opens an incident in the
// journal of emergencies (§39–41) once, journaled, and is not opened again by a refresh, even
// after the operator closed it.
func TestAnnounceNotice(t *testing.T) {
	ctx := context.Background()
	s, clock, db := newSchedule(t, 24*time.Hour)
	window := func(start time.Time, emergency bool) siobroker.MaintenanceWindow {
		return siobroker.MaintenanceWindow{Services: []int{7}, Start: start, End: start.Add(2 * time.Hour), Reason: "замена диска",
			AnnouncedBy: "operator Askarov", Emergency: emergency}
	}
	for name, start := range map[string]time.Time{
		"begun a minute ago":   t0.Add(-time.Minute),
		"a nanosecond ago":     t0.Add(-time.Nanosecond),
		"with 23 hours notice": t0.Add(23 * time.Hour),
	} {
		_, err := s.Announce(ctx, window(start, false))
		if !errors.Is(err, siobroker.ErrShortNotice) || !strings.Contains(err.Error(), "emergency") {
			t.Errorf("%s: Announce = %v, want a refusal for short notice that names the emergency", name, err)
		}
	}
	if w, err := s.Announce(ctx, window(t0.Add(24*time.Hour), false)); err != nil || w.Emergency {
		t.Fatalf("24 hours ahead: %+v %v", w, err)
	}
	if open, _ := db.Incidents(ctx, true); len(open) != 0 {
		t.Fatalf("a planned window opened incidents: %+v", open)
	}

	begun := t0.Add(-10 * time.Minute)
	w, inc, err := s.AnnounceWithIncident(ctx, window(begun, true))
	if err != nil || !w.Emergency || w.ID == 0 {
		t.Fatalf("an emergency that has begun: %+v %v", w, err)
	}
	if inc.Number == 0 || inc.Type != siobroker.IncidentEmergencyMaintenance || inc.Status != siobroker.IncidentOpen ||
		!inc.StartedAt.Equal(begun) || !inc.OpenedAt.Equal(t0) || inc.Cause.Service != 7 || inc.Responsible != "operator Askarov" ||
		!strings.Contains(inc.LastError, "emergency maintenance no. 2") || !strings.Contains(inc.LastError, "замена диска") {
		t.Fatalf("the emergency's incident: %+v", inc)
	}
	if got, ok := s.Active(7, t0); !ok || got.ID != w.ID {
		t.Errorf("the emergency window is not in force: %+v %v", got, ok)
	}
	recs, err := db.Journal().Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalIncident}})
	if err != nil || len(recs) != 1 || recs[0].Code != siobroker.IncidentEventOpened || !strings.Contains(string(recs[0].Data), `"type":"emergency-maintenance"`) {
		t.Fatalf("journal of the emergency: %+v %v", recs, err)
	}

	// Refreshes, here and in another process, find the incident and open no other, even once the
	// operator has closed it.
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ops, err := incidents.NewService(db, db.Journal(), clock, "operator Askarov")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Close(ctx, inc.Number, "диск заменён"); err != nil {
		t.Fatal(err)
	}
	other := maintenance.NewSchedule(db, clock, maintenance.Policy{MinNotice: 24 * time.Hour, Emergencies: ops})
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if all, _ := db.Incidents(ctx, true); len(all) != 1 {
		t.Fatalf("incidents after the refreshes: %+v", all)
	}

	// A schedule with no journal of emergencies refuses an emergency: it could not be recorded.
	bare := maintenance.NewSchedule(db, clock, maintenance.Policy{MinNotice: 24 * time.Hour})
	if _, err := bare.Announce(ctx, window(t0, true)); err == nil || !strings.Contains(err.Error(), "journal of emergencies") {
		t.Errorf("an emergency without a journal of emergencies: %v", err)
	}
}

// TestFileNotice: the windows of the file count their notice from announced_at, which is
// required; a window that began after it was announced still loads (the broker restarts during
// its maintenance), and an emergency of the file opens its incident once, across reloads.
func TestFileNotice(t *testing.T) {
	ctx := context.Background()
	rules := maintenance.FileRules{MinNotice: 24 * time.Hour, Now: t0}
	const head = "windows:\n"
	item := func(start, announced string, extra string) string {
		return "  - services: [7]\n    start: " + start + "\n    end: 2026-12-02T06:00:00+05:00\n    reason: замена диска\n" +
			announced + extra
	}
	for name, c := range map[string]struct{ text, want string }{
		"no announced_at": {item("2026-12-02T01:00:00+05:00", "", ""), "m.yaml:2: window 1: announced_at is required: the time the window was published (§42)"},
		"announced in the future": {item("2026-12-05T01:00:00+05:00", "    announced_at: 2026-12-01T22:00:00+05:00\n", ""),
			"m.yaml:2: window 1: announced_at 2026-12-01T22:00:00+05:00 is in the future"},
		"short notice": {item("2026-12-02T01:00:00+05:00", "    announced_at: 2026-12-01T20:00:00+05:00\n", ""),
			"m.yaml:2: window 1: not announced in advance: the window starts at 2026-12-02T01:00:00+05:00, 5h0m0s after it is announced at 2026-12-01T20:00:00+05:00, and planned work is announced at least 24h0m0s ahead (maintenance_min_notice, §36, 42); start it later, or set emergency: true"},
		"begun before it was announced": {item("2026-12-01T20:00:00+05:00", "    announced_at: 2026-12-01T20:30:00+05:00\n", ""),
			"m.yaml:2: window 1: not announced in advance: the window starts at 2026-12-01T20:00:00+05:00, before it is announced at 2026-12-01T20:30:00+05:00"},
	} {
		_, err := maintenance.ParseFile("m.yaml", []byte(head+c.text), rules)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ParseFile = %v\nwant %q", name, err, c.want)
		}
	}

	text := head + item("2026-12-01T20:00:00+05:00", "    announced_at: 2026-11-28T10:00:00+05:00\n", "") +
		item("2026-12-01T20:30:00+05:00", "    announced_at: 2026-12-01T20:45:00+05:00\n", "    emergency: true\n")
	ws, err := maintenance.ParseFile("m.yaml", []byte(text), rules)
	if err != nil || len(ws) != 2 || ws[0].Emergency || !ws[1].Emergency {
		t.Fatalf("a planned window in force and an emergency: %+v %v", ws, err)
	}
	s, _, db := newSchedule(t, 24*time.Hour)
	for range 2 { // a reload of the same file records nothing more
		s.SetFileWindows(ws)
		if err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.Incidents(ctx, true)
	if err != nil || len(all) != 1 || all[0].Type != siobroker.IncidentEmergencyMaintenance || !all[0].StartedAt.Equal(ws[1].Start) ||
		!strings.Contains(all[0].Cause.Queue, "maintenance file window 2026-12-01T20:30:00+05:00") {
		t.Fatalf("incidents of the file: %+v %v", all, err)
	}
}
