package siobroker

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The journal of emergencies (§39–41 and Appendix 7 of the Rules, Журнал аварийных ситуаций). An
// Incident is either one the broker records by itself, when message delivery is delayed by more
// than the threshold (§39), one of its own parts fails (the transport, the journal, the reply
// signer) or a maintenance window is announced as an emergency (§36, 42), or an emergency of one
// of the six kinds of Appendix 7 that an operator opens by hand (§40–41), with the plan of actions
// of its kind. The incidents package tracks them; the stores keep
// them and their append-only history.

// The types of the incidents the broker records by itself.
const (
	// IncidentDeliveryDelay: messages of one queue waited for delivery longer than the threshold.
	IncidentDeliveryDelay = "delivery-delay"
	// IncidentTransportOutage: the message transport (RabbitMQ) could not be reached.
	IncidentTransportOutage = "transport-outage"
	// IncidentJournalFailure: records could not be written to the journal.
	IncidentJournalFailure = "journal-failure"
	// IncidentSigningFailure: replies could not be signed.
	IncidentSigningFailure = "signing-failure"
	// IncidentPublishFailed: service messages could not be published to their queue; each one is
	// counted in Affected, so that no failed publish goes unrecorded.
	IncidentPublishFailed = "publish-failed"
	// IncidentEmergencyMaintenance is the type of an incident opened because a maintenance window
	// was announced as an emergency: with less than the minimum notice, or after it began.
	IncidentEmergencyMaintenance = "emergency-maintenance"
)

// EmergencyKind is one of the six kinds of emergency of Appendix 7. An emergency an operator
// opens is an Incident whose Type is its kind.
type EmergencyKind string

// The kinds of emergency, in the order of Appendix 7.
const (
	EmergencyServerEquipment EmergencyKind = "server-equipment" // серьезное повреждение оборудования в серверной
	EmergencyPremises        EmergencyKind = "premises"         // частичное повреждение помещений ЦА
	EmergencyFireAlarm       EmergencyKind = "fire-alarm"       // пожарная тревога
	EmergencyAirConditioning EmergencyKind = "air-conditioning" // отказ кондиционеров
	EmergencyPowerFailure    EmergencyKind = "power-failure"    // отказ электропитания
	EmergencyFlooding        EmergencyKind = "flooding"         // затопление
)

// emergencyTitles are the headings of the six tables of Appendix 7, as the Rules write them.
var emergencyTitles = map[EmergencyKind]string{
	EmergencyServerEquipment: "Действия в случае серьезного повреждения оборудования, расположенного в серверной",
	EmergencyPremises:        "Действия при частичном повреждении помещений ЦА",
	EmergencyFireAlarm:       "Действия в случае пожарной тревоги",
	EmergencyAirConditioning: "Действия в случае отказа кондиционеров",
	EmergencyPowerFailure:    "Действия при отказе электропитания",
	EmergencyFlooding:        "Действия в случае затопления",
}

// EmergencyKinds returns the six kinds in the order of Appendix 7.
func EmergencyKinds() []EmergencyKind {
	return []EmergencyKind{EmergencyServerEquipment, EmergencyPremises, EmergencyFireAlarm,
		EmergencyAirConditioning, EmergencyPowerFailure, EmergencyFlooding}
}

// Title is the heading of the kind's table in Appendix 7; "" for a string that is not a kind.
func (k EmergencyKind) Title() string { return emergencyTitles[k] }

// Section is the number of the kind's table in Appendix 7 (1–6); 0 for a string that is not a kind.
func (k EmergencyKind) Section() int {
	for i, kind := range EmergencyKinds() {
		if kind == k {
			return i + 1
		}
	}
	return 0
}

// ParseEmergencyKind reads a kind by its name (server-equipment, ...).
func ParseEmergencyKind(s string) (EmergencyKind, error) {
	k := EmergencyKind(s)
	if k.Section() == 0 {
		return "", fmt.Errorf("%q is not a kind of emergency of Appendix 7; the kinds are %s", s, emergencyKindList())
	}
	return k, nil
}

func emergencyKindList() string {
	var s string
	for i, k := range EmergencyKinds() {
		if i > 0 {
			s += ", "
		}
		s += string(k)
	}
	return s
}

// IncidentAction is one row of an emergency's table in Appendix 7: an action of the plan of its
// kind, with the maximum time it may take, who is responsible, and when it started and ended.
type IncidentAction struct {
	No          int           // its number in the plan, from 1 (№ п/п)
	Action      string        // what is to be done (Действия)
	Max         time.Duration // the time it may take at most (Необходимое время (max)); 0: no limit
	Responsible string        // Ответственный
	StartedAt   time.Time     // Дата и время начала; zero until recorded
	EndedAt     time.Time     // Дата и время окончания; zero until recorded
}

// Elapsed is how long the action has taken: to its end, or to now while it runs; 0 before it starts.
func (a IncidentAction) Elapsed(now time.Time) time.Duration {
	switch {
	case a.StartedAt.IsZero():
		return 0
	case !a.EndedAt.IsZero():
		return a.EndedAt.Sub(a.StartedAt)
	}
	return now.Sub(a.StartedAt)
}

// Overdue reports whether the action has taken longer than its maximum time: it ended after it, or
// it is still running past it at now. The time is counted from the action's own start, as the
// form's column is the time the action needs; an action not started is not overdue.
func (a IncidentAction) Overdue(now time.Time) bool {
	return a.Max > 0 && a.Elapsed(now) > a.Max
}

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
	// The start or the end of an action of an emergency was recorded; the note names the action.
	IncidentEventActionStarted = "action-started"
	IncidentEventActionEnded   = "action-ended"
)

// Errors of the operations on incidents. The store wraps them.
var (
	ErrIncidentNotFound = errors.New("no such incident")
	ErrIncidentClosed   = errors.New("the incident is closed")
	// ErrActionNotFound: the incident has no action of that number.
	ErrActionNotFound = errors.New("no such action")
	// ErrActionRecorded: the start (or end) of the action was recorded already. A record is never
	// replaced: the table of Appendix 7 is a journal.
	ErrActionRecorded = errors.New("recorded already")
	// ErrActionOrder: an end before the action's start, or before it was started at all.
	ErrActionOrder = errors.New("an action ends after it starts")
)

// IncidentCause is what an incident is about: the service, the queue or topic its messages wait on, and
// the adapter behind it; for a failure of the broker's own parts, the part (Queue: "journal",
// "transport", ...); for an emergency, nothing. There is at most one open incident per type and
// cause, so one open emergency of each kind.
type IncidentCause struct {
	Service int    // the service number (Appendix 2); 0 when the queue serves no single service
	Queue   string // the queue or topic, e.g. sio.service.007, or the broker's reply topic
	Adapter string // the adapter, where known
}

func (c IncidentCause) String() string {
	if c.Service == 0 && c.Adapter == "" {
		return c.Queue
	}
	s := fmt.Sprintf("service %d, queue %s", c.Service, c.Queue)
	if c.Adapter != "" {
		s += ", adapter " + c.Adapter
	}
	return s
}

// Incident is one entry of the journal of emergencies (Appendix 7).
type Incident struct {
	Number int64  // sequential, never reused
	Type   string // IncidentDeliveryDelay, another Incident* type, or an EmergencyKind
	Cause  IncidentCause
	// Reason is the cause in words (§41: причины): the operator's for an emergency, the broker's
	// for a failure of its own parts.
	Reason    string
	LastError string    // the last error seen for the cause, if any
	StartedAt time.Time // when it began: the send time of the oldest waiting message, the first failure, the onset of an emergency
	OpenedAt  time.Time // when the incident was recorded
	Affected  int       // how many messages (or failed operations) it held up
	// Actions are an emergency's rows of Appendix 7, copied from the plan of its kind when it was
	// opened, by No; none for the incidents the broker records by itself.
	Actions     []IncidentAction
	Measures    string    // the measures taken, filled by the operator
	Responsible string    // who was responsible for them, filled by the operator
	ClosedAt    time.Time // zero while open
	CloseNote   string    // why it was closed: "delivery resumed", or the operator's note
	Status      IncidentStatus
}

// EmergencyKind returns the kind of an emergency; ok is false for the incidents the broker
// records by itself.
func (i Incident) EmergencyKind() (kind EmergencyKind, ok bool) {
	k := EmergencyKind(i.Type)
	return k, k.Section() > 0
}

// Overdue returns the actions of the incident that have taken longer than their maximum time at now.
func (i Incident) Overdue(now time.Time) []IncidentAction {
	var out []IncidentAction
	for _, a := range i.Actions {
		if a.Overdue(now) {
			out = append(out, a)
		}
	}
	return out
}

// IncidentEvent is one entry of an incident's append-only history: what happened, and the incident as
// it was afterwards.
type IncidentEvent struct {
	ID       int64
	Number   int64
	Kind     string // an IncidentEvent* kind
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
	Reason      string         `json:"reason,omitempty"`
	LastError   string         `json:"lastError,omitempty"`
	StartedAt   string         `json:"startedAt"`
	OpenedAt    string         `json:"openedAt"`
	Affected    int            `json:"affected"`
	Measures    string         `json:"measures,omitempty"`
	Responsible string         `json:"responsible,omitempty"`
	ClosedAt    string         `json:"closedAt,omitempty"`
	CloseNote   string         `json:"closeNote,omitempty"`
	Status      IncidentStatus `json:"status"`
	Actions     []actionJSON   `json:"actions,omitempty"`
}

// actionJSON is the stable JSON form of an IncidentAction: Max as a Go duration ("30m0s").
type actionJSON struct {
	No          int    `json:"no"`
	Action      string `json:"action"`
	Max         string `json:"max"`
	Responsible string `json:"responsible"`
	StartedAt   string `json:"startedAt,omitempty"`
	EndedAt     string `json:"endedAt,omitempty"`
}

// MarshalJSON writes the incident in its stable form.
func (i Incident) MarshalJSON() ([]byte, error) {
	j := incidentJSON{
		Number: i.Number, Type: i.Type, Service: i.Cause.Service, Queue: i.Cause.Queue, Adapter: i.Cause.Adapter,
		Reason: i.Reason, LastError: i.LastError, StartedAt: formatOptionalTime(i.StartedAt), OpenedAt: formatOptionalTime(i.OpenedAt),
		Affected: i.Affected, Measures: i.Measures, Responsible: i.Responsible,
		ClosedAt: formatOptionalTime(i.ClosedAt), CloseNote: i.CloseNote, Status: i.Status,
	}
	for _, a := range i.Actions {
		j.Actions = append(j.Actions, actionJSON{No: a.No, Action: a.Action, Max: a.Max.String(), Responsible: a.Responsible,
			StartedAt: formatOptionalTime(a.StartedAt), EndedAt: formatOptionalTime(a.EndedAt)})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (i *Incident) UnmarshalJSON(b []byte) error {
	var j incidentJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := Incident{
		Number: j.Number, Type: j.Type, Cause: IncidentCause{Service: j.Service, Queue: j.Queue, Adapter: j.Adapter},
		Reason: j.Reason, LastError: j.LastError, Affected: j.Affected, Measures: j.Measures, Responsible: j.Responsible,
		CloseNote: j.CloseNote, Status: j.Status,
	}
	type timeField struct {
		dst *time.Time
		src string
	}
	times := []timeField{{&out.StartedAt, j.StartedAt}, {&out.OpenedAt, j.OpenedAt}, {&out.ClosedAt, j.ClosedAt}}
	out.Actions = make([]IncidentAction, len(j.Actions))
	for n, a := range j.Actions {
		limit, err := time.ParseDuration(a.Max)
		if err != nil {
			return fmt.Errorf("incident %d action %d: max: %w", j.Number, a.No, err)
		}
		out.Actions[n] = IncidentAction{No: a.No, Action: a.Action, Max: limit, Responsible: a.Responsible}
		times = append(times, timeField{&out.Actions[n].StartedAt, a.StartedAt}, timeField{&out.Actions[n].EndedAt, a.EndedAt})
	}
	if len(out.Actions) == 0 {
		out.Actions = nil
	}
	var err error
	for _, f := range times {
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
