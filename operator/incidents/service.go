package incidents

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
)

// Store is what incidents need of the store (sqlite.DB implements it). Every method that changes
// an incident also appends an Event to its history, in the same transaction. Methods on a number
// that does not exist return an error wrapping ErrNotFound.
type Store interface {
	// OpenIncident records inc (its Number, Status and ClosedAt are ignored) as a new open
	// incident. If an incident of the same type and cause is open already, nothing is written
	// and that one is returned with created false.
	OpenIncident(ctx context.Context, inc siobroker.Incident, by string) (got siobroker.Incident, created bool, err error)
	// UpdateIncident adds addAffected to the affected count of an open incident and, if
	// lastError is not "", records it as the last error seen. On a closed incident it changes
	// nothing and returns the incident (with its ClosedAt) and an error wrapping ErrClosed.
	UpdateIncident(ctx context.Context, number int64, addAffected int, lastError string, at time.Time, by string) (siobroker.Incident, error)
	// AnnotateIncident records the measures taken and who was responsible; "" keeps the value
	// recorded. Closed incidents may be annotated too: measures are often written up after.
	AnnotateIncident(ctx context.Context, number int64, measures, responsible string, at time.Time, by string) (siobroker.Incident, error)
	// CloseIncident closes an open incident at at, with a note. On a closed incident it returns
	// an error wrapping ErrClosed.
	CloseIncident(ctx context.Context, number int64, note string, at time.Time, by string) (siobroker.Incident, error)
	// Incident returns the incident with the number; ok is false when there is none.
	Incident(ctx context.Context, number int64) (inc siobroker.Incident, ok bool, err error)
	// Incidents returns the open incidents, or all of them when all is true, by number.
	Incidents(ctx context.Context, all bool) ([]siobroker.Incident, error)
	// IncidentOf returns the last incident of the type and cause, open or closed; ok is false
	// when there is none.
	IncidentOf(ctx context.Context, typ string, cause siobroker.IncidentCause) (inc siobroker.Incident, ok bool, err error)
}

// Service carries the operator's actions on incidents. It needs only the store and the journal,
// so it works in any process that can open them.
type Service struct {
	store   Store
	journal siobroker.JournalWriter // a JournalIncident record for every annotation and close (§39)
	clock   siobroker.Clock
	by      string // who acts: the operator's name; "siobroker" for the tracker
}

// NewService returns the actions on incidents over store, journaled in journal, taken by by
// ("operator" when empty).
func NewService(store Store, journal siobroker.JournalWriter, clock siobroker.Clock, by string) (*Service, error) {
	if store == nil || journal == nil || clock == nil {
		return nil, errors.New("incidents: NewService needs the store, the journal and the clock")
	}
	if by == "" {
		by = "operator"
	}
	return &Service{store: store, journal: journal, clock: clock, by: by}, nil
}

// Annotate records the measures taken against incident number and who was responsible for them
// (Appendix 7). An empty value keeps the one recorded; at least one must be given.
func (s *Service) Annotate(ctx context.Context, number int64, measures, responsible string) (siobroker.Incident, error) {
	measures, responsible = strings.TrimSpace(measures), strings.TrimSpace(responsible)
	if measures == "" && responsible == "" {
		return siobroker.Incident{}, fmt.Errorf("annotate incident %d: give the measures or the person responsible", number)
	}
	now := s.clock.Now().In(siobroker.Astana)
	inc, err := s.store.AnnotateIncident(ctx, number, measures, responsible, now, s.by)
	if err != nil {
		return siobroker.Incident{}, err
	}
	return inc, s.journalEvent(ctx, siobroker.IncidentEventAnnotated, inc, now)
}

// Close closes incident number by hand, with the operator's note (why: the cause was removed, a
// false alarm, ...). The end time is now.
func (s *Service) Close(ctx context.Context, number int64, note string) (siobroker.Incident, error) {
	note = strings.TrimSpace(note)
	if note == "" {
		return siobroker.Incident{}, fmt.Errorf("close incident %d: a note is required", number)
	}
	now := s.clock.Now().In(siobroker.Astana)
	inc, err := s.store.CloseIncident(ctx, number, note, now, s.by)
	if err != nil {
		return siobroker.Incident{}, err
	}
	return inc, s.journalEvent(ctx, siobroker.IncidentEventClosed, inc, now)
}

// OpenEmergency records maintenance window w, announced as an emergency, in the journal of
// emergencies (§39–41, Appendix 7): an incident of type IncidentEmergencyMaintenance, started at
// the window's start, with its reason, and responsible whoever announced it; and its opening in
// the journal. It is recorded once per window: when an incident of its cause exists already,
// open or closed by the operator, that one is returned with created false and nothing is
// written, so that a reload of the file or a retry does not record the same emergency twice.
func (s *Service) OpenEmergency(ctx context.Context, w siobroker.MaintenanceWindow) (inc siobroker.Incident, created bool, err error) {
	if !w.Emergency {
		return siobroker.Incident{}, false, fmt.Errorf("open emergency incident: %s is not an emergency", w.Describe())
	}
	cause := w.IncidentCause()
	if inc, ok, err := s.store.IncidentOf(ctx, siobroker.IncidentEmergencyMaintenance, cause); err != nil || ok {
		return inc, false, err
	}
	now := s.clock.Now().In(siobroker.Astana)
	by := cmp.Or(strings.TrimSpace(w.AnnouncedBy), s.by)
	inc, created, err = s.store.OpenIncident(ctx, siobroker.Incident{
		Type:        siobroker.IncidentEmergencyMaintenance,
		Cause:       cause,
		LastError:   w.Describe(),
		StartedAt:   w.Start.In(siobroker.Astana),
		OpenedAt:    now,
		Responsible: strings.TrimSpace(w.AnnouncedBy),
	}, by)
	if err != nil || !created {
		return inc, false, err
	}
	return inc, true, s.journalEvent(ctx, siobroker.IncidentEventOpened, inc, now)
}

// journal appends the JournalIncident record of event. The store has the change already: an
// error here leaves the incident recorded and its journal record missing, and is returned so
// that the caller logs or reports it.
func (s *Service) journalEvent(ctx context.Context, event string, inc siobroker.Incident, at time.Time) error {
	data, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("journal incident %d %s: %w", inc.Number, event, err)
	}
	if _, err := s.journal.Append(ctx, siobroker.JournalRecord{
		At:      at,
		Kind:    siobroker.JournalIncident,
		Service: inc.Cause.Service,
		Code:    event,
		Data:    data,
	}); err != nil {
		return fmt.Errorf("journal incident %d %s: %w", inc.Number, event, err)
	}
	return nil
}
