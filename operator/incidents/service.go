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
	// RecordIncidentAction records the start (end false) or the end (end true) of action no of an
	// emergency, once each: a second record wraps siobroker.ErrActionRecorded, an end before the
	// start siobroker.ErrActionOrder, a number the incident has not siobroker.ErrActionNotFound.
	RecordIncidentAction(ctx context.Context, number int64, no int, end bool, at time.Time, by string) (siobroker.Incident, error)
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

// ErrNotJournaled is wrapped by the error of an action the store took but whose journal record
// could not be written: the incident is changed; its record in the journal is missing.
var ErrNotJournaled = errors.New("the change is recorded in the store, but not in the journal")

// Emergency is what an operator gives when opening an emergency by hand (§41: the date and time
// of its onset and its causes).
type Emergency struct {
	Kind siobroker.EmergencyKind
	// Reason is the cause in words, as known when it is opened (причины).
	Reason string
	// StartedAt is the onset; zero means now. It may lie before the opening (an emergency noticed
	// late, or recorded after the first measures), never after it.
	StartedAt time.Time
}

// ErrEmergencyOpen is wrapped when an emergency of the kind is open already: one is recorded at a
// time, so that two operators do not record one emergency twice. Record the new facts on it, or
// close it first.
var ErrEmergencyOpen = errors.New("an emergency of this kind is open already")

// RecordEmergency records e as a new open emergency with the actions of plan (the plan of its kind,
// Plans.Plan), and journals it. If one of its kind is open already, nothing is written and that
// one is returned with an error wrapping ErrEmergencyOpen.
func (s *Service) RecordEmergency(ctx context.Context, e Emergency, plan []siobroker.IncidentAction) (siobroker.Incident, error) {
	now := s.clock.Now().In(siobroker.Astana)
	reason := strings.TrimSpace(e.Reason)
	switch {
	case e.Kind.Section() == 0:
		return siobroker.Incident{}, fmt.Errorf("open an emergency: %q is not a kind of Appendix 7", e.Kind)
	case reason == "":
		return siobroker.Incident{}, errors.New("open an emergency: give its cause (§41: причины)")
	case len(plan) == 0:
		return siobroker.Incident{}, fmt.Errorf("open an emergency: there is no action plan for %s (%s); configure incidents.emergency_plans_file",
			e.Kind, e.Kind.Title())
	case e.StartedAt.After(now):
		return siobroker.Incident{}, fmt.Errorf("open an emergency: its onset %s is after now (%s)", siobroker.FormatTime(e.StartedAt), siobroker.FormatTime(now))
	}
	started := e.StartedAt
	if started.IsZero() {
		started = now
	}
	inc, created, err := s.store.OpenIncident(ctx, siobroker.Incident{Type: string(e.Kind), Reason: reason,
		StartedAt: started.In(siobroker.Astana), OpenedAt: now, Actions: plan}, s.by)
	if err != nil {
		return siobroker.Incident{}, err
	}
	if !created {
		return inc, fmt.Errorf("emergency %d (%s), opened at %s: %w", inc.Number, e.Kind, siobroker.FormatTime(inc.OpenedAt), ErrEmergencyOpen)
	}
	return inc, s.journalEvent(ctx, siobroker.IncidentEventOpened, inc, now)
}

// RecordAction records that action no of emergency number started (end false) or ended (end
// true) at at (zero: now), and journals it. at may lie in the past (actions are often written up
// as they are reported), never after now.
func (s *Service) RecordAction(ctx context.Context, number int64, no int, end bool, at time.Time) (siobroker.Incident, error) {
	now := s.clock.Now().In(siobroker.Astana)
	if at.IsZero() {
		at = now
	}
	if at.After(now) {
		return siobroker.Incident{}, fmt.Errorf("incident %d: action %d: %s is after now (%s)", number, no, siobroker.FormatTime(at), siobroker.FormatTime(now))
	}
	inc, err := s.store.RecordIncidentAction(ctx, number, no, end, at.In(siobroker.Astana), s.by)
	if err != nil {
		return inc, err
	}
	event := siobroker.IncidentEventActionStarted
	if end {
		event = siobroker.IncidentEventActionEnded
	}
	return inc, s.journalEvent(ctx, event, inc, now)
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
	rec, err := incidentRecord(event, inc, at)
	if err != nil {
		return err
	}
	if _, err := s.journal.Append(ctx, rec); err != nil {
		return fmt.Errorf("journal incident %d %s: %w: %w", inc.Number, event, ErrNotJournaled, err)
	}
	return nil
}

// incidentRecord is the JournalIncident record of event: the incident as it is after it.
func incidentRecord(event string, inc siobroker.Incident, at time.Time) (siobroker.JournalRecord, error) {
	data, err := json.Marshal(inc)
	if err != nil {
		return siobroker.JournalRecord{}, fmt.Errorf("journal incident %d %s: %w", inc.Number, event, err)
	}
	return siobroker.JournalRecord{At: at, Kind: siobroker.JournalIncident, Service: inc.Cause.Service, Code: event, Data: data}, nil
}
