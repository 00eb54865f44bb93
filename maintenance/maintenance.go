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

// Window is one announced maintenance window.
type Window struct {
	ID int64 `json:"id"` // 0 for a window from the file
	// Services are the services of Appendix 2 the window affects; empty means every service.
	Services    []int     `json:"services,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Reason      string    `json:"reason"`
	AnnouncedBy string    `json:"announcedBy"`
	AnnouncedAt time.Time `json:"announcedAt"`
	// Source is "announced" (operator, kept in the store) or "file" (configuration, reloaded).
	Source    string    `json:"source"`
	Cancelled time.Time `json:"cancelled,omitzero"` // zero while in force
}

// Sources of a window.
const (
	SourceAnnounced = "announced"
	SourceFile      = "file"
)

// Affects reports whether w covers service n at t: the window is not cancelled, t is in
// [Start, End), and n is one of its services (or it names none, meaning all).
func (w Window) Affects(n int, t time.Time) bool {
	if !w.Cancelled.IsZero() || t.Before(w.Start) || !t.Before(w.End) {
		return false
	}
	return len(w.Services) == 0 || slices.Contains(w.Services, n)
}

// Describe names the window in words a client can act on: its period in Astana time, its reason
// and, for an announced window, its number.
func (w Window) Describe() string {
	var b strings.Builder
	b.WriteString("planned maintenance")
	if w.ID > 0 {
		fmt.Fprintf(&b, " no. %d", w.ID)
	}
	fmt.Fprintf(&b, " from %s to %s", w.Start.In(siobroker.Astana).Format(time.RFC3339), w.End.In(siobroker.Astana).Format(time.RFC3339))
	if w.Reason != "" {
		fmt.Fprintf(&b, " (%s)", w.Reason)
	}
	return b.String()
}

// Validate checks a window before it is announced or loaded: a reason, an end after the start,
// and services of Appendix 2 only, each once.
func (w Window) Validate() error {
	var errs []error
	if strings.TrimSpace(w.Reason) == "" {
		errs = append(errs, errors.New("a reason is required: clients are told why the service is down"))
	}
	if w.Start.IsZero() || w.End.IsZero() {
		errs = append(errs, errors.New("start and end are required"))
	} else if !w.End.After(w.Start) {
		errs = append(errs, fmt.Errorf("end %s must be after start %s", w.End.Format(time.RFC3339), w.Start.Format(time.RFC3339)))
	}
	seen := map[int]bool{}
	for _, n := range w.Services {
		switch {
		case n < siobroker.FirstService || n > siobroker.LastService:
			errs = append(errs, fmt.Errorf("service %d is not in Appendix 2 (%d..%d)", n, siobroker.FirstService, siobroker.LastService))
		case seen[n]:
			errs = append(errs, fmt.Errorf("service %d is listed twice", n))
		}
		seen[n] = true
	}
	return errors.Join(errs...)
}

// Store keeps announced windows (store.DB implements it).
type Store interface {
	// AddWindow records w (its ID and Source are set by the store) and returns it as stored.
	AddWindow(ctx context.Context, w Window) (Window, error)
	// CancelWindow marks window id cancelled at at by by. A window that does not exist, or is
	// cancelled already, is an error wrapping ErrNotFound or ErrCancelled.
	CancelWindow(ctx context.Context, id int64, at time.Time, by string) error
	// MaintenanceWindows returns the windows that end after since (all when since is zero),
	// cancelled ones included, by start.
	MaintenanceWindows(ctx context.Context, since time.Time) ([]Window, error)
}

// Errors of CancelWindow.
var (
	ErrNotFound  = errors.New("no such maintenance window")
	ErrCancelled = errors.New("the maintenance window is cancelled already")
)

// Schedule is the maintenance schedule of one broker: the windows operators announced, kept in
// the store, and the windows of the configuration file. Active is on every request's path, so it
// reads an in-memory copy; Refresh reloads the announced windows, which other processes (the
// command line) may have changed: call it periodically.
type Schedule struct {
	store Store
	clock siobroker.Clock

	mu        sync.RWMutex
	announced []Window
	file      []Window
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
func (s *Schedule) SetFileWindows(ws []Window) {
	ws = slices.Clone(ws)
	for i := range ws {
		ws[i].Source, ws[i].ID = SourceFile, 0
	}
	s.mu.Lock()
	s.file = ws
	s.mu.Unlock()
}

// FileWindows returns the windows of the configuration file.
func (s *Schedule) FileWindows() []Window {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.file)
}

// Active returns the window covering service n at t, if any. Where several do, the one ending
// last is returned: that is when the client may try again.
func (s *Schedule) Active(n int, t time.Time) (Window, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found Window
	ok := false
	for _, list := range [][]Window{s.announced, s.file} {
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
func (s *Schedule) Windows(ctx context.Context, includeEnded bool) ([]Window, error) {
	since := s.clock.Now()
	if includeEnded {
		since = time.Time{}
	}
	ws, err := s.store.MaintenanceWindows(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("maintenance windows: %w", err)
	}
	if !includeEnded {
		ws = slices.DeleteFunc(ws, func(w Window) bool { return !w.Cancelled.IsZero() })
	}
	now := s.clock.Now()
	for _, w := range s.FileWindows() {
		if includeEnded || w.End.After(now) {
			ws = append(ws, w)
		}
	}
	slices.SortStableFunc(ws, func(a, b Window) int { return a.Start.Compare(b.Start) })
	return ws, nil
}

// Announce records a new window announced by w.AnnouncedBy. It may not end in the past; it may
// start now, for an emergency, but §36 asks that planned work be announced in advance.
func (s *Schedule) Announce(ctx context.Context, w Window) (Window, error) {
	now := s.clock.Now()
	w.Reason, w.AnnouncedBy = strings.TrimSpace(w.Reason), strings.TrimSpace(w.AnnouncedBy)
	if err := w.Validate(); err != nil {
		return Window{}, fmt.Errorf("announce maintenance: %w", err)
	}
	if w.AnnouncedBy == "" {
		return Window{}, errors.New("announce maintenance: who announces it is required")
	}
	if !w.End.After(now) {
		return Window{}, fmt.Errorf("announce maintenance: the window ends at %s, which is past", w.End.In(siobroker.Astana).Format(time.RFC3339))
	}
	slices.Sort(w.Services)
	w.AnnouncedAt, w.Source, w.Cancelled = now.In(siobroker.Astana), SourceAnnounced, time.Time{}
	w.Start, w.End = w.Start.In(siobroker.Astana), w.End.In(siobroker.Astana)
	got, err := s.store.AddWindow(ctx, w)
	if err != nil {
		return Window{}, fmt.Errorf("announce maintenance: %w", err)
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
