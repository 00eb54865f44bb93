package siobroker

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	// Emergency marks a window announced with less notice than the minimum, or after its start:
	// not planned work (§36, 42) but an emergency (§39–41), which opens an incident in the
	// journal of emergencies so that the outage is on record there.
	Emergency bool `json:"emergency"`
}

// DefaultMaintenanceMinNotice is the default of the least time between a window's announcement
// and its start (maintenance_min_notice). The Rules ask that planned work be published on the
// portal (§36, 42) without naming a period; 24 hours is the period the same Rules give a
// participant to send its applications on a transfer or a dismissal (§14, 15), and one in which
// a participant that looks at the schedule once a day sees every window before it begins.
const DefaultMaintenanceMinNotice = 24 * time.Hour

// ErrShortNotice is wrapped by the refusal of a window announced with less than the minimum
// notice, or after its start, without being marked an emergency.
var ErrShortNotice = errors.New("not announced in advance")

// CheckNotice refuses a window that is not an emergency and starts less than minNotice after it
// was announced (AnnouncedAt), or before: such a window is not planned work announced in advance
// (§36, 42), and accepting it quietly would keep an outage out of the journal of emergencies.
func (w MaintenanceWindow) CheckNotice(minNotice time.Duration) error {
	if w.Emergency {
		return nil
	}
	start, announced := w.Start.In(Astana).Format(time.RFC3339), w.AnnouncedAt.In(Astana).Format(time.RFC3339)
	if w.Start.Before(w.AnnouncedAt) {
		return fmt.Errorf("%w: the window starts at %s, before it is announced at %s, and work that has begun is an emergency, not planned work (§36, 42)",
			ErrShortNotice, start, announced)
	}
	if notice := w.Start.Sub(w.AnnouncedAt); notice < minNotice {
		return fmt.Errorf("%w: the window starts at %s, %s after it is announced at %s, and planned work is announced at least %s ahead (maintenance_min_notice, §36, 42)",
			ErrShortNotice, start, notice.Round(time.Second), announced, minNotice)
	}
	return nil
}

// IncidentCause is the cause under which the incident of an emergency window is recorded: the
// window's one service, if it names exactly one, and the window itself in place of a queue. An
// announced window is named by its number, a window of the file by its period and services, so
// that reloading the file finds the incident opened for it before.
func (w MaintenanceWindow) IncidentCause() IncidentCause {
	c := IncidentCause{}
	if len(w.Services) == 1 {
		c.Service = w.Services[0]
	}
	if w.ID > 0 {
		c.Queue = fmt.Sprintf("maintenance window %d", w.ID)
		return c
	}
	c.Queue = fmt.Sprintf("maintenance file window %s..%s services %s",
		w.Start.In(Astana).Format(time.RFC3339), w.End.In(Astana).Format(time.RFC3339), w.ServiceList())
	return c
}

// ServiceList writes the window's services in order, "11,12", or "all" when it names none.
func (w MaintenanceWindow) ServiceList() string {
	if len(w.Services) == 0 {
		return "all"
	}
	parts := make([]string, len(w.Services))
	for i, n := range slices.Sorted(slices.Values(w.Services)) {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
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
	if w.Emergency {
		b.WriteString("emergency maintenance")
	} else {
		b.WriteString("planned maintenance")
	}
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
