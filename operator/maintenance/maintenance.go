// Package maintenance holds the planned maintenance windows of the broker's services (§36, 42 of
// the Rules): the service is available around the clock except in emergencies and in maintenance
// announced in advance. A window is announced by an operator (dashboard or command line) or
// configured in a file; while one is open, requests for its services get an answer that names it.
package maintenance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sio-pso/siobroker"
)

// Store keeps announced windows (sqlite.DB implements it).
type Store interface {
	// AddWindow records w (its ID and Source are set by the store) and returns it as stored.
	AddWindow(ctx context.Context, w siobroker.MaintenanceWindow) (siobroker.MaintenanceWindow, error)
	// CancelWindow marks window id cancelled at at by by. A window that does not exist, or is
	// cancelled already, is an error wrapping ErrNotFound or ErrCancelled.
	CancelWindow(ctx context.Context, id int64, at time.Time, by string) error
	// MaintenanceWindows returns the windows that end after since (all when since is zero),
	// cancelled ones included, by start.
	MaintenanceWindows(ctx context.Context, since time.Time) ([]siobroker.MaintenanceWindow, error)
}

// Emergencies records the windows announced as emergencies in the journal of emergencies
// (incidents.Service implements it). OpenEmergency records a window once: for a window recorded
// before it returns that incident, created false.
type Emergencies interface {
	OpenEmergency(ctx context.Context, w siobroker.MaintenanceWindow) (inc siobroker.Incident, created bool, err error)
}

// Policy is what the schedule asks of an announcement.
type Policy struct {
	// MinNotice is the least time between a window's announcement and its start
	// (maintenance_min_notice, whose default is siobroker.DefaultMaintenanceMinNotice); zero asks
	// for none. A window with less notice, or announced after it began, is refused unless it is
	// an emergency.
	MinNotice time.Duration
	// Emergencies records the emergency windows, announced or of the file, as incidents; nil
	// refuses an emergency announcement, for there would be no record of it.
	Emergencies Emergencies
}

// Schedule is the maintenance schedule of one broker: the windows operators announced, kept in
// the store, and the windows of the configuration file. Active is on every request's path, so it
// reads an in-memory copy; Refresh reloads the announced windows, which other processes (the
// command line) may have changed: call it periodically.
type Schedule struct {
	store  Store
	clock  siobroker.Clock
	policy Policy

	mu        sync.RWMutex
	announced []siobroker.MaintenanceWindow
	file      []siobroker.MaintenanceWindow
	// recorded holds the causes of the emergency windows whose incident is known to exist, so
	// that Refresh asks the store about each only until it is recorded.
	recorded map[siobroker.IncidentCause]bool
}

// NewSchedule returns a schedule over store that announces under policy. Call Refresh before use.
func NewSchedule(store Store, clock siobroker.Clock, policy Policy) *Schedule {
	return &Schedule{store: store, clock: clock, policy: policy, recorded: make(map[siobroker.IncidentCause]bool)}
}

// MinNotice is the least notice an announcement must give, unless it is an emergency.
func (s *Schedule) MinNotice() time.Duration { return s.policy.MinNotice }

// Refresh reloads the announced windows that have not ended, and makes sure that every
// emergency window among them and the file's has its incident: one whose incident could not be
// opened when it was announced or loaded (the store or the journal failed) gets it here.
func (s *Schedule) Refresh(ctx context.Context) error {
	ws, err := s.store.MaintenanceWindows(ctx, s.clock.Now())
	if err != nil {
		return fmt.Errorf("maintenance windows: %w", err)
	}
	s.mu.Lock()
	s.announced = ws
	s.mu.Unlock()
	return s.RecordEmergencies(ctx)
}

// RecordEmergencies opens the incident of every emergency window, announced or of the file, that
// has none yet. Without Policy.Emergencies it does nothing: that process (the command line
// listing windows) records nothing.
func (s *Schedule) RecordEmergencies(ctx context.Context) error {
	if s.policy.Emergencies == nil {
		return nil
	}
	s.mu.RLock()
	var todo []siobroker.MaintenanceWindow
	for _, list := range [][]siobroker.MaintenanceWindow{s.announced, s.file} {
		for _, w := range list {
			if w.Emergency && !s.recorded[w.IncidentCause()] {
				todo = append(todo, w)
			}
		}
	}
	s.mu.RUnlock()
	var errs []error
	for _, w := range todo {
		if _, err := s.recordEmergency(ctx, w); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// recordEmergency opens the incident of emergency window w, if it has none, and remembers that
// it has one.
func (s *Schedule) recordEmergency(ctx context.Context, w siobroker.MaintenanceWindow) (siobroker.Incident, error) {
	inc, _, err := s.policy.Emergencies.OpenEmergency(ctx, w)
	if err != nil {
		return inc, fmt.Errorf("the incident of %s: %w", w.Describe(), err)
	}
	s.mu.Lock()
	s.recorded[w.IncidentCause()] = true
	s.mu.Unlock()
	return inc, nil
}

// SetFileWindows replaces the windows of the configuration file (on start and on reload).
func (s *Schedule) SetFileWindows(ws []siobroker.MaintenanceWindow) {
	ws = slices.Clone(ws)
	for i := range ws {
		ws[i].Source, ws[i].ID = siobroker.WindowFromFile, 0
	}
	s.mu.Lock()
	s.file = ws
	s.mu.Unlock()
}

// FileWindows returns the windows of the configuration file.
func (s *Schedule) FileWindows() []siobroker.MaintenanceWindow {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.file)
}

// Active returns the window covering service n at t, if any. Where several do, the one ending
// last is returned: that is when the client may try again.
func (s *Schedule) Active(n int, t time.Time) (siobroker.MaintenanceWindow, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found siobroker.MaintenanceWindow
	ok := false
	for _, list := range [][]siobroker.MaintenanceWindow{s.announced, s.file} {
		for _, w := range list {
			if w.Affects(n, t) && (!ok || w.End.After(found.End)) {
				found, ok = w, true
			}
		}
	}
	return found, ok
}

// Windows returns the announced and file windows, by start: those in force or to come (not
// ended, not cancelled), or, when includeEnded is true, every one kept, ended and cancelled
// ones too.
func (s *Schedule) Windows(ctx context.Context, includeEnded bool) ([]siobroker.MaintenanceWindow, error) {
	since := s.clock.Now()
	if includeEnded {
		since = time.Time{}
	}
	ws, err := s.store.MaintenanceWindows(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("maintenance windows: %w", err)
	}
	if !includeEnded {
		ws = slices.DeleteFunc(ws, func(w siobroker.MaintenanceWindow) bool { return !w.Cancelled.IsZero() })
	}
	now := s.clock.Now()
	for _, w := range s.FileWindows() {
		if includeEnded || w.End.After(now) {
			ws = append(ws, w)
		}
	}
	slices.SortStableFunc(ws, func(a, b siobroker.MaintenanceWindow) int { return a.Start.Compare(b.Start) })
	return ws, nil
}

// Announce records a new window announced by w.AnnouncedBy, now. It may not end in the past. It
// must start at least the minimum notice from now (§36, 42: planned work is announced in
// advance) unless it is marked an emergency; an emergency window, which may have begun already,
// is recorded in the journal of emergencies at once (§39–41), and the incident is returned with
// it. A window whose incident could not be opened is kept, with the error: the next Refresh
// opens it.
func (s *Schedule) Announce(ctx context.Context, w siobroker.MaintenanceWindow) (siobroker.MaintenanceWindow, error) {
	got, _, err := s.AnnounceWithIncident(ctx, w)
	return got, err
}

// AnnounceWithIncident is Announce, returning also the incident of an emergency window.
func (s *Schedule) AnnounceWithIncident(ctx context.Context, w siobroker.MaintenanceWindow) (siobroker.MaintenanceWindow, siobroker.Incident, error) {
	got, inc, err := s.announce(ctx, w)
	if err != nil {
		return got, inc, fmt.Errorf("announce maintenance: %w", err)
	}
	return got, inc, nil
}

func (s *Schedule) announce(ctx context.Context, w siobroker.MaintenanceWindow) (siobroker.MaintenanceWindow, siobroker.Incident, error) {
	var none siobroker.MaintenanceWindow
	var noIncident siobroker.Incident
	now := s.clock.Now()
	w.Reason, w.AnnouncedBy = strings.TrimSpace(w.Reason), strings.TrimSpace(w.AnnouncedBy)
	if err := w.Validate(); err != nil {
		return none, noIncident, err
	}
	if w.AnnouncedBy == "" {
		return none, noIncident, errors.New("who announces it is required")
	}
	if !w.End.After(now) {
		return none, noIncident, fmt.Errorf("the window ends at %s, which is past", w.End.In(siobroker.Astana).Format(time.RFC3339))
	}
	w.AnnouncedAt = now.In(siobroker.Astana)
	if err := w.CheckNotice(s.policy.MinNotice); err != nil {
		return none, noIncident, fmt.Errorf("%w; start it later, or announce it as an emergency, which records it in the journal of emergencies (§39–41)", err)
	}
	if w.Emergency && s.policy.Emergencies == nil {
		return none, noIncident, errors.New("an emergency window opens an incident, and this schedule has no journal of emergencies to record it in")
	}
	slices.Sort(w.Services)
	w.Source, w.Cancelled = siobroker.WindowAnnounced, time.Time{}
	w.Start, w.End = w.Start.In(siobroker.Astana), w.End.In(siobroker.Astana)
	got, err := s.store.AddWindow(ctx, w)
	if err != nil {
		return none, noIncident, err
	}
	var inc siobroker.Incident
	if got.Emergency {
		if inc, err = s.recordEmergency(ctx, got); err != nil {
			return got, noIncident, fmt.Errorf("window %d is announced, but %w; the broker opens it at its next refresh", got.ID, err)
		}
	}
	return got, inc, s.Refresh(ctx)
}

// Cancel cancels announced window id. File windows are cancelled by editing the file.
func (s *Schedule) Cancel(ctx context.Context, id int64, by string) error {
	if strings.TrimSpace(by) == "" {
		return errors.New("cancel maintenance: who cancels it is required")
	}
	if err := s.store.CancelWindow(ctx, id, s.clock.Now().In(siobroker.Astana), by); err != nil {
		return fmt.Errorf("cancel maintenance window %d: %w", id, err)
	}
	return s.Refresh(ctx)
}
