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

// Schedule is the maintenance schedule of one broker: the windows operators announced, kept in
// the store, and the windows of the configuration file. Active is on every request's path, so it
// reads an in-memory copy; Refresh reloads the announced windows, which other processes (the
// command line) may have changed: call it periodically.
type Schedule struct {
	store Store
	clock siobroker.Clock

	mu        sync.RWMutex
	announced []siobroker.MaintenanceWindow
	file      []siobroker.MaintenanceWindow
}

// NewSchedule returns a schedule over store. Call Refresh before use.
func NewSchedule(store Store, clock siobroker.Clock) *Schedule {
	return &Schedule{store: store, clock: clock}
}

// Refresh reloads the announced windows that have not ended.
func (s *Schedule) Refresh(ctx context.Context) error {
	ws, err := s.store.MaintenanceWindows(ctx, s.clock.Now())
	if err != nil {
		return fmt.Errorf("maintenance windows: %w", err)
	}
	s.mu.Lock()
	s.announced = ws
	s.mu.Unlock()
	return nil
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

// Announce records a new window announced by w.AnnouncedBy. It may not end in the past; it may
// start now, for an emergency, but §36 asks that planned work be announced in advance.
func (s *Schedule) Announce(ctx context.Context, w siobroker.MaintenanceWindow) (siobroker.MaintenanceWindow, error) {
	now := s.clock.Now()
	w.Reason, w.AnnouncedBy = strings.TrimSpace(w.Reason), strings.TrimSpace(w.AnnouncedBy)
	if err := w.Validate(); err != nil {
		return siobroker.MaintenanceWindow{}, fmt.Errorf("announce maintenance: %w", err)
	}
	if w.AnnouncedBy == "" {
		return siobroker.MaintenanceWindow{}, errors.New("announce maintenance: who announces it is required")
	}
	if !w.End.After(now) {
		return siobroker.MaintenanceWindow{}, fmt.Errorf("announce maintenance: the window ends at %s, which is past", w.End.In(siobroker.Astana).Format(time.RFC3339))
	}
	slices.Sort(w.Services)
	w.AnnouncedAt, w.Source, w.Cancelled = now.In(siobroker.Astana), siobroker.WindowAnnounced, time.Time{}
	w.Start, w.End = w.Start.In(siobroker.Astana), w.End.In(siobroker.Astana)
	got, err := s.store.AddWindow(ctx, w)
	if err != nil {
		return siobroker.MaintenanceWindow{}, fmt.Errorf("announce maintenance: %w", err)
	}
	return got, s.Refresh(ctx)
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
