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
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/sqlite"
)

var t0 = time.Date(2026, 12, 1, 21, 0, 0, 0, siobroker.Astana)

// The store keeps what a Schedule announces.
var _ maintenance.Store = (*sqlite.DB)(nil)

func newSchedule(t *testing.T) (*maintenance.Schedule, *testclock.Clock, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := testclock.New(t0)
	s := maintenance.NewSchedule(db, clock)
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, clock, db
}

func TestAnnounceActiveCancel(t *testing.T) {
	ctx := context.Background()
	s, clock, db := newSchedule(t)
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
	other := maintenance.NewSchedule(db, clock)
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
	s, _, _ := newSchedule(t)
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
	s, _, _ := newSchedule(t)
	path := filepath.Join(t.TempDir(), "maintenance.yaml")
	if ws, err := maintenance.LoadFile(path); err != nil || ws != nil {
		t.Fatalf("missing file: %v %v", ws, err)
	}
	good := "windows:\n  - services: [3]\n    start: 2026-12-01T22:00:00+05:00\n    end: 2026-12-01T23:00:00+05:00\n    reason: registry upgrade\n"
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	ws, err := maintenance.LoadFile(path)
	if err != nil || len(ws) != 1 {
		t.Fatalf("LoadFile = %v, %v", ws, err)
	}
	s.SetFileWindows(ws)
	if w, ok := s.Active(3, t0.Add(90*time.Minute)); !ok || w.Source != siobroker.WindowFromFile {
		t.Errorf("file window not active: %+v %v", w, ok)
	}
	bad := good + "  - services: [3]\n    start: tomorrow\n    end: 2026-12-01T23:00:00+05:00\n    reason: x\n  - start: 2026-12-01T22:00:00+05:00\n    end: 2026-12-01T23:00:00+05:00\n"
	_, err = maintenance.ParseFile("m.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "m.yaml:6: window 2: start:") || !strings.Contains(err.Error(), "m.yaml:10: window 3: a reason is required") {
		t.Errorf("ParseFile errors = %v", err)
	}
	if _, err := maintenance.ParseFile("m.yaml", []byte("windows:\n  - servces: [3]\n")); err == nil || !strings.Contains(err.Error(), "servces") {
		t.Errorf("unknown key: %v", err)
	}
	// The shipped file has no windows and passes.
	if ws, err := maintenance.LoadFile("../../configs/maintenance.yaml"); err != nil || len(ws) != 0 {
		t.Errorf("shipped file: %v %v", ws, err)
	}
}
