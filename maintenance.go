package siobroker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaintenanceWindow is one planned maintenance window (§36, 42 of the Rules): announced by an
// operator and kept in the store, or configured in a file. The maintenance package schedules them.
type MaintenanceWindow struct {
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
	WindowAnnounced = "announced"
	WindowFromFile  = "file"
)

// Affects reports whether w covers service n at t: the window is not cancelled, t is in
// [Start, End), and n is one of its services (or it names none, meaning all).
func (w MaintenanceWindow) Affects(n int, t time.Time) bool {
	if !w.Cancelled.IsZero() || t.Before(w.Start) || !t.Before(w.End) {
		return false
	}
	return len(w.Services) == 0 || slices.Contains(w.Services, n)
}

// Describe names the window in words a client can act on: its period in Astana time, its reason
// and, for an announced window, its number.
func (w MaintenanceWindow) Describe() string {
	var b strings.Builder
	b.WriteString("planned maintenance")
	if w.ID > 0 {
		fmt.Fprintf(&b, " no. %d", w.ID)
	}
	fmt.Fprintf(&b, " from %s to %s", w.Start.In(Astana).Format(time.RFC3339), w.End.In(Astana).Format(time.RFC3339))
	if w.Reason != "" {
		fmt.Fprintf(&b, " (%s)", w.Reason)
	}
	return b.String()
}

// Validate checks a window before it is announced or loaded: a reason, an end after the start,
// and services of Appendix 2 only, each once.
func (w MaintenanceWindow) Validate() error {
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
		case n < FirstService || n > LastService:
			errs = append(errs, fmt.Errorf("service %d is not in Appendix 2 (%d..%d)", n, FirstService, LastService))
		case seen[n]:
			errs = append(errs, fmt.Errorf("service %d is listed twice", n))
		}
		seen[n] = true
	}
	return errors.Join(errs...)
}

// Errors of cancelling a maintenance window.
var (
	ErrWindowNotFound  = errors.New("no such maintenance window")
	ErrWindowCancelled = errors.New("the maintenance window is cancelled already")
)
