package siobroker

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The journal of emergencies (§39–41 and Appendix 7 of the Rules, Журнал аварийных ситуаций): an
// Incident is recorded when message delivery is delayed by more than the threshold. The incidents
// package tracks them; the stores keep them and their append-only history.

// The types of incident.
const (
	// IncidentDeliveryDelay is the type of an incident opened because messages waited too long.
	IncidentDeliveryDelay = "delivery-delay"
	// IncidentEmergencyMaintenance is the type of an incident opened because a maintenance window
	// was announced as an emergency: with less than the minimum notice, or after it began.
	IncidentEmergencyMaintenance = "emergency-maintenance"
)

// IncidentStatus is whether an incident is still open.
type IncidentStatus string

// The statuses of an incident.
const (
	IncidentOpen   IncidentStatus = "open"
	IncidentClosed IncidentStatus = "closed"
)

// The kinds of the events in an incident's history (and the Code of its journal records).
const (
	IncidentEventOpened    = "opened"    // the incident was opened
	IncidentEventUpdated   = "updated"   // its affected count or last error changed
	IncidentEventAnnotated = "annotated" // the operator recorded measures or the person responsible
	IncidentEventClosed    = "closed"    // it was closed: delivery resumed, or by the operator
)

// Errors of the operations on incidents. The store wraps them.
var (
	ErrIncidentNotFound = errors.New("no such incident")
	ErrIncidentClosed   = errors.New("the incident is closed")
)

// IncidentCause is what an incident is about: the service, the queue or topic its messages wait on, and
// the adapter behind it. There is at most one open incident per cause.
type IncidentCause struct {
	Service int    // the service number (Appendix 2); 0 when the queue serves no single service
	Queue   string // the queue or topic, e.g. sio.service.007, or the broker's reply topic
	Adapter string // the adapter, where known
}

func (c IncidentCause) String() string {
	s := fmt.Sprintf("service %d, queue %s", c.Service, c.Queue)
	if c.Adapter != "" {
		s += ", adapter " + c.Adapter
	}
	return s
}

// Incident is one entry of the journal of emergencies (Appendix 7).
type Incident struct {
	Number      int64  // sequential, never reused
	Type        string // IncidentDeliveryDelay
	Cause       IncidentCause
	LastError   string    // the last error seen for the cause, if any
	StartedAt   time.Time // when the delay began: the send time of the oldest waiting message
	OpenedAt    time.Time // when the incident was recorded
	Affected    int       // how many messages the delay held up
	Measures    string    // the measures taken, filled by the operator
	Responsible string    // who was responsible for them, filled by the operator
	ClosedAt    time.Time // zero while open
	CloseNote   string    // why it was closed: "delivery resumed", or the operator's note
	Status      IncidentStatus
}

// IncidentEvent is one entry of an incident's append-only history: what happened, and the incident as
// it was afterwards.
type IncidentEvent struct {
	ID       int64
	Number   int64
	Kind     string // IncidentEventOpened, IncidentEventUpdated, IncidentEventAnnotated or IncidentEventClosed
	At       time.Time
	By       string // "siobroker" for the tracker, the operator's name otherwise
	Note     string
	Incident Incident
}

// incidentJSON is the stable JSON form of an Incident, used in the journal and in the store's
// history: times in Astana time with the offset written out (siobroker.FormatTime), "" for zero.
// Journal records are hashed and kept forever, so this form only ever gains fields.
type incidentJSON struct {
	Number      int64          `json:"number"`
	Type        string         `json:"type"`
	Service     int            `json:"service"`
	Queue       string         `json:"queue"`
	Adapter     string         `json:"adapter,omitempty"`
	LastError   string         `json:"lastError,omitempty"`
	StartedAt   string         `json:"startedAt"`
	OpenedAt    string         `json:"openedAt"`
	Affected    int            `json:"affected"`
	Measures    string         `json:"measures,omitempty"`
	Responsible string         `json:"responsible,omitempty"`
	ClosedAt    string         `json:"closedAt,omitempty"`
	CloseNote   string         `json:"closeNote,omitempty"`
	Status      IncidentStatus `json:"status"`
}

// MarshalJSON writes the incident in its stable form.
func (i Incident) MarshalJSON() ([]byte, error) {
	return json.Marshal(incidentJSON{
		Number: i.Number, Type: i.Type, Service: i.Cause.Service, Queue: i.Cause.Queue, Adapter: i.Cause.Adapter,
		LastError: i.LastError, StartedAt: formatOptionalTime(i.StartedAt), OpenedAt: formatOptionalTime(i.OpenedAt),
		Affected: i.Affected, Measures: i.Measures, Responsible: i.Responsible,
		ClosedAt: formatOptionalTime(i.ClosedAt), CloseNote: i.CloseNote, Status: i.Status,
	})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (i *Incident) UnmarshalJSON(b []byte) error {
	var j incidentJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := Incident{
		Number: j.Number, Type: j.Type, Cause: IncidentCause{Service: j.Service, Queue: j.Queue, Adapter: j.Adapter},
		LastError: j.LastError, Affected: j.Affected, Measures: j.Measures, Responsible: j.Responsible,
		CloseNote: j.CloseNote, Status: j.Status,
	}
	var err error
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&out.StartedAt, j.StartedAt}, {&out.OpenedAt, j.OpenedAt}, {&out.ClosedAt, j.ClosedAt}} {
		if *f.dst, err = parseOptionalTime(f.src); err != nil {
			return fmt.Errorf("incident %d: %w", j.Number, err)
		}
	}
	*i = out
	return nil
}

func formatOptionalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return FormatTime(t)
}

func parseOptionalTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.In(Astana), nil
}
