package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/operator/health"
)

// NoDeadLetterQueue is what the page says when the transport has no dead-letter queue.
const NoDeadLetterQueue = "this broker runs on the in-process GoChannel transport, which has no dead-letter queue: " +
	"a message that cannot be delivered is answered as an error at once. The dead-letter queue exists with transport: amqp (RabbitMQ)."

// NoMaintenance is what the page says when no maintenance schedule is wired in.
const NoMaintenance = "this broker has no schedule of maintenance windows"

// sessionView is GET api/session.
type sessionView struct {
	IIN          string `json:"iin"`
	Name         string `json:"name"`
	Organisation string `json:"organisation"`
	Channel      string `json:"channel"`
	CSRF         string `json:"csrf,omitempty"`
	Expires      string `json:"expires,omitempty"`
	Now          string `json:"now"`
	// Operator and Reports say what the page shows: the operator's sections, the reports form.
	Operator bool `json:"operator"`
	Reports  bool `json:"reports"`
}

func (h *handler) apiSession(_ context.Context, op operator) (any, error) {
	v := sessionView{IIN: op.user.IIN, Name: op.user.FullName, Organisation: op.user.Organisation, Channel: op.channel,
		Now: siobroker.FormatTime(h.cfg.Clock.Now()), Operator: op.user.OperatorRight, Reports: op.user.ReportsRight && h.cfg.Reports != nil}
	if op.session != nil {
		v.CSRF, v.Expires = op.session.csrf, siobroker.FormatTime(op.session.expires)
	}
	return v, nil
}

func (h *handler) logout(_ context.Context, _ *http.Request, op operator, _ *journal.Operator, _ *journal.OperatorAction) (any, error) {
	h.sessions.drop(op.session.id)
	return map[string]string{"loggedOut": siobroker.FormatTime(h.cfg.Clock.Now())}, nil
}

// serviceRow is one service in GET api/services. Durations are in seconds; -1 means unknown.
type serviceRow struct {
	Service     int     `json:"service"`
	Name        string  `json:"name,omitempty"`    // in Russian, as Appendix 2 names it
	Adapter     string  `json:"adapter,omitempty"` // the adapter its route names
	Queue       string  `json:"queue"`             // as RabbitMQ names it, with the deployment's prefix
	QueueDepth  int64   `json:"queueDepth"`
	DeadLetters int64   `json:"deadLetters"`
	InFlight    int     `json:"inFlight"`
	OldestAge   float64 `json:"oldestAgeSeconds"`
	Dispatched  uint64  `json:"dispatched"`
	Answered    uint64  `json:"answered"`
	Errors      uint64  `json:"errors"`
	Timeouts    uint64  `json:"timeouts"` // no result within the service's limit, whether or not its answer came later
	LateAnswers uint64  `json:"lateAnswers"`
	ErrorRate   float64 `json:"errorRate"`
	// BusyHour and BusyDay tell whether the service is busy, as the table's default "busy only"
	// view shows it: it had traffic in the last hour (day), or messages in its queue or in flight,
	// or an open incident.
	BusyHour     bool `json:"busyHour"`
	BusyDay      bool `json:"busyDay"`
	OpenIncident bool `json:"openIncident"`
}

type servicesView struct {
	AsOf     string       `json:"asOf"`
	Services []serviceRow `json:"services"`
}

func (h *handler) apiServices(ctx context.Context, _ operator) (any, error) {
	states, err := h.cfg.Services(ctx)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the state of the services cannot be read now")
	}
	out := servicesView{AsOf: siobroker.FormatTime(h.cfg.Clock.Now()), Services: make([]serviceRow, 0, len(states))}
	var hour, day map[int]uint64
	if h.cfg.Traffic != nil {
		hour, day = h.cfg.Traffic(false), h.cfg.Traffic(true)
	}
	incidentOf := make(map[int]bool)
	if open, err := h.cfg.Incidents.Incidents(ctx, false); err != nil {
		// The table is worth more than the filter: its rows stay, marked by their traffic only.
		h.log.WarnContext(ctx, "the open incidents cannot be read for the busy services", "error", err)
	} else {
		for _, inc := range open {
			if inc.Status == siobroker.IncidentOpen && inc.Cause.Service > 0 {
				incidentOf[inc.Cause.Service] = true
			}
		}
	}
	for _, s := range states {
		row := rowOf(s)
		row.OpenIncident = incidentOf[s.Service]
		waiting := s.QueueDepth > 0 || s.InFlight > 0 || row.OpenIncident
		row.BusyHour, row.BusyDay = waiting || hour[s.Service] > 0, waiting || day[s.Service] > 0
		if h.cfg.ServiceInfo != nil && s.Service > 0 {
			row.Name, row.Adapter = h.cfg.ServiceInfo(s.Service)
		}
		if row.Queue != "" {
			row.Queue = h.cfg.QueuePrefix + row.Queue
		}
		out.Services = append(out.Services, row)
	}
	return out, nil
}

func rowOf(s health.ServiceState) serviceRow {
	return serviceRow{Service: s.Service, Queue: s.Queue, QueueDepth: s.QueueDepth, DeadLetters: s.DeadLetters, InFlight: s.InFlight,
		OldestAge: s.OldestAge.Seconds(), Dispatched: s.Dispatched, Answered: s.Answered, Errors: s.Errors, Timeouts: s.Timeouts,
		LateAnswers: s.LateAnswers, ErrorRate: s.ErrorRate}
}

type incidentsView struct {
	AsOf   string               `json:"asOf"`
	Open   []siobroker.Incident `json:"open"`
	Recent []siobroker.Incident `json:"recent"` // closed within RecentIncidents, newest first
	// Overdue are the numbers of the actions past their maximum time at AsOf, by incident number
	// (open and recent ones); incidents without any are left out.
	Overdue map[int64][]int `json:"overdue"`
	// Kinds are the six kinds of emergency of Appendix 7 with their plans, for the form that opens
	// one; PlansNote says why none can be opened, PlansExample that the plans are the shipped
	// example.
	Kinds        []kindView `json:"kinds"`
	PlansNote    string     `json:"plansNote,omitempty"`
	PlansExample bool       `json:"plansExample,omitempty"`
	// Threshold is the configured delay that opens a delivery-delay incident, in words.
	Threshold string `json:"threshold"`
}

// thresholdWords says a delay as the page's heading does: "an hour", "90 minutes", "2 hours".
func thresholdWords(d time.Duration) string {
	switch {
	case d <= 0 || d == time.Hour:
		return "an hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	}
	return d.String()
}

// maxRecentIncidents bounds the closed incidents on the page.
const maxRecentIncidents = 50

func (h *handler) apiIncidents(ctx context.Context, _ operator) (any, error) {
	all, err := h.cfg.Incidents.Incidents(ctx, true)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the incidents cannot be read now")
	}
	now := h.cfg.Clock.Now()
	out := incidentsView{AsOf: siobroker.FormatTime(now), Open: []siobroker.Incident{}, Recent: []siobroker.Incident{}}
	for _, inc := range all {
		switch {
		case inc.Status == siobroker.IncidentOpen:
			out.Open = append(out.Open, inc)
		case now.Sub(inc.ClosedAt) <= RecentIncidents:
			out.Recent = append(out.Recent, inc)
		}
	}
	slices.SortFunc(out.Recent, func(a, b siobroker.Incident) int { return b.ClosedAt.Compare(a.ClosedAt) })
	if len(out.Recent) > maxRecentIncidents {
		out.Recent = out.Recent[:maxRecentIncidents]
	}
	out.Overdue = overdueOf(append(slices.Clone(out.Open), out.Recent...), now)
	out.Threshold = thresholdWords(h.cfg.IncidentThreshold)
	out.Kinds = h.emergencyKinds()
	if h.cfg.Plans == nil {
		out.PlansNote = NoPlans
	} else {
		out.PlansExample = h.cfg.Plans.Example
	}
	return out, nil
}

func (h *handler) annotate(ctx context.Context, r *http.Request, op operator, rec *journal.Operator, d *journal.OperatorAction) (any, error) {
	n, err := pathNumber(r, "number")
	if err != nil {
		return nil, err
	}
	d.Incident = n
	d.Measures, d.Responsible = strings.TrimSpace(r.PostFormValue("measures")), strings.TrimSpace(r.PostFormValue("responsible"))
	if d.Measures == "" && d.Responsible == "" {
		return nil, siobroker.FieldError("measures", "give the measures taken or the person responsible (Appendix 7)")
	}
	if err := maxLen("measures", d.Measures, 2000); err != nil {
		return nil, err
	}
	if err := maxLen("responsible", d.Responsible, 300); err != nil {
		return nil, err
	}
	inc, err := h.cfg.Incidents.AnnotateBy(ctx, op.by(), n, d.Measures, d.Responsible)
	rec.Service = inc.Cause.Service
	return inc, incidentError(n, inc, err)
}

func (h *handler) closeIncident(ctx context.Context, r *http.Request, op operator, rec *journal.Operator, d *journal.OperatorAction) (any, error) {
	n, err := pathNumber(r, "number")
	if err != nil {
		return nil, err
	}
	d.Incident = n
	if d.Note = strings.TrimSpace(r.PostFormValue("note")); d.Note == "" {
		return nil, siobroker.FieldError("note", "is required: say why the incident is closed")
	}
	if err := maxLen("note", d.Note, 2000); err != nil {
		return nil, err
	}
	inc, err := h.cfg.Incidents.CloseBy(ctx, op.by(), n, d.Note)
	rec.Service = inc.Cause.Service
	return inc, incidentError(n, inc, err)
}

// incidentError turns the errors of an action on incident n into refusals.
func incidentError(n int64, inc siobroker.Incident, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, siobroker.ErrIncidentNotFound):
		return siobroker.Errorf(siobroker.CodeDashboardNotFound, "there is no incident %d", n)
	case errors.Is(err, siobroker.ErrIncidentClosed):
		return siobroker.Errorf(siobroker.CodeDashboardConflict, "incident %d was closed already, at %s", n, siobroker.FormatTime(inc.ClosedAt))
	case inc.Number != 0:
		// The store has the change; its journal record is missing.
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "incident %d was changed, but the incident journal record could not be written", n)
	}
	return siobroker.Wrap(siobroker.CodeUnavailable, err, "incident %d cannot be changed now; retry later", n)
}

type deadLetterRow struct {
	MessageID   string `json:"messageId"`
	Queue       string `json:"queue"`
	Reason      string `json:"reason"`
	Count       int64  `json:"count"`
	DiedAt      string `json:"diedAt,omitempty"`
	PayloadSize int    `json:"payloadSize"`
}

type deadLettersView struct {
	AsOf      string          `json:"asOf"`
	Available bool            `json:"available"`
	Note      string          `json:"note,omitempty"`
	Max       int             `json:"max"`
	Letters   []deadLetterRow `json:"letters"`
}

func (h *handler) apiDeadLetters(ctx context.Context, _ operator) (any, error) {
	out := deadLettersView{AsOf: siobroker.FormatTime(h.cfg.Clock.Now()), Max: MaxDeadLetters, Letters: []deadLetterRow{}}
	if h.cfg.DeadLetters == nil {
		out.Note = NoDeadLetterQueue
		return out, nil
	}
	out.Available = true
	letters, err := h.cfg.DeadLetters.List(ctx, MaxDeadLetters)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the dead-letter queue cannot be read now")
	}
	for _, l := range letters {
		row := deadLetterRow{MessageID: l.MessageID, Queue: l.Queue, Reason: l.Reason, Count: l.Count, PayloadSize: l.PayloadSize}
		if !l.DiedAt.IsZero() {
			row.DiedAt = siobroker.FormatTime(l.DiedAt)
		}
		out.Letters = append(out.Letters, row)
	}
	return out, nil
}

func (h *handler) replayDeadLetters(ctx context.Context, r *http.Request, _ operator, _ *journal.Operator, d *journal.OperatorAction) (any, error) {
	if h.cfg.DeadLetters == nil {
		return nil, siobroker.Errorf(siobroker.CodeDashboardUnsupported, "nothing to replay: %s", NoDeadLetterQueue)
	}
	d.Max = MaxDeadLetters
	if s := strings.TrimSpace(r.PostFormValue("max")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxDeadLetters {
			return nil, siobroker.FieldError("max", "must be an integer from 1 to %d, got %q", MaxDeadLetters, s)
		}
		d.Max = n
	}
	n, err := h.cfg.DeadLetters.Replay(ctx, d.Max)
	d.Replayed = &n
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "%d dead letter(s) were sent back, then the replay failed; retry later", n)
	}
	return map[string]int{"replayed": n}, nil
}

type maintenanceView struct {
	AsOf      string               `json:"asOf"`
	Available bool                 `json:"available"`
	Note      string               `json:"note,omitempty"`
	Windows   []journal.WindowView `json:"windows"`
}

func (h *handler) apiMaintenance(ctx context.Context, _ operator) (any, error) {
	now := h.cfg.Clock.Now()
	out := maintenanceView{AsOf: siobroker.FormatTime(now), Windows: []journal.WindowView{}}
	if h.cfg.Maintenance == nil {
		out.Note = NoMaintenance
		return out, nil
	}
	out.Available = true
	// Ended and cancelled windows stay on the page for RecentIncidents, so that a cancel shows.
	windows, err := h.cfg.Maintenance.Windows(ctx, true)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the maintenance windows cannot be read now")
	}
	for _, w := range windows {
		if now.Sub(w.End) <= RecentIncidents && (w.Cancelled.IsZero() || now.Sub(w.Cancelled) <= RecentIncidents) {
			out.Windows = append(out.Windows, journal.ViewOfWindow(w, now))
		}
	}
	return out, nil
}

func (h *handler) announce(ctx context.Context, r *http.Request, op operator, _ *journal.Operator, d *journal.OperatorAction) (any, error) {
	if h.cfg.Maintenance == nil {
		return nil, siobroker.Errorf(siobroker.CodeDashboardUnsupported, "%s", NoMaintenance)
	}
	now := h.cfg.Clock.Now()
	w := siobroker.MaintenanceWindow{Reason: strings.TrimSpace(r.PostFormValue("reason")), AnnouncedBy: op.by(),
		AnnouncedAt: now.In(siobroker.Astana), Source: siobroker.WindowAnnounced}
	var err error
	if w.Emergency, err = parseFlag("emergency", r.PostFormValue("emergency")); err != nil {
		return nil, err
	}
	if w.Services, err = parseServices(r.PostFormValue("services")); err != nil {
		return nil, err
	}
	if w.Start, err = parseAstana("start", r.PostFormValue("start")); err != nil {
		return nil, err
	}
	if w.End, err = parseAstana("end", r.PostFormValue("end")); err != nil {
		return nil, err
	}
	view := journal.ViewOfWindow(w, now)
	d.Window = &view
	switch {
	case !w.End.After(w.Start):
		return nil, siobroker.FieldError("end", "must be after the start (%s), got %s", view.Start, view.End)
	case !w.End.After(now):
		return nil, siobroker.FieldError("end", "must be in the future, got %s", view.End)
	case w.Reason == "":
		return nil, siobroker.FieldError("reason", "is required: clients are told why the service is down")
	}
	if err := w.Validate(); err != nil {
		return nil, siobroker.FieldError("window", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if err := maxLen("reason", w.Reason, 1000); err != nil {
		return nil, err
	}
	got, err := h.cfg.Maintenance.Announce(ctx, w)
	if err != nil {
		return nil, maintenanceError(err, "the maintenance window cannot be announced")
	}
	view = journal.ViewOfWindow(got, now)
	d.Window, d.WindowID = &view, got.ID
	return view, nil
}

func (h *handler) cancel(ctx context.Context, r *http.Request, op operator, _ *journal.Operator, d *journal.OperatorAction) (any, error) {
	if h.cfg.Maintenance == nil {
		return nil, siobroker.Errorf(siobroker.CodeDashboardUnsupported, "%s", NoMaintenance)
	}
	id, err := pathNumber(r, "id")
	if err != nil {
		return nil, err
	}
	d.WindowID = id
	if err := h.cfg.Maintenance.Cancel(ctx, id, op.by()); err != nil {
		return nil, maintenanceError(err, fmt.Sprintf("maintenance window %d cannot be cancelled", id))
	}
	return map[string]any{"cancelled": id, "at": siobroker.FormatTime(h.cfg.Clock.Now())}, nil
}

// maintenanceError turns the errors of the schedule into refusals: a window with too little
// notice is the form's start; the rest of the window was checked before it was announced, so
// what remains is the store's.
func maintenanceError(err error, what string) error {
	switch {
	case errors.Is(err, siobroker.ErrWindowNotFound):
		return siobroker.Errorf(siobroker.CodeDashboardNotFound, "%s: no such announced window (a window of the file is cancelled by editing the file)", what)
	case errors.Is(err, siobroker.ErrWindowCancelled):
		return siobroker.Errorf(siobroker.CodeDashboardConflict, "%s: it is cancelled already", what)
	case errors.Is(err, siobroker.ErrShortNotice):
		return siobroker.FieldError("start", "%s", strings.TrimPrefix(err.Error(), "announce maintenance: "))
	}
	return siobroker.Wrap(siobroker.CodeUnavailable, err, "%s now; retry later", what)
}

// parseFlag reads a checkbox: "" or "false" is false, "true", "on" or "1" true.
func parseFlag(field, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "0":
		return false, nil
	case "true", "on", "1":
		return true, nil
	}
	return false, siobroker.FieldError(field, "must be true or false, got %q", v)
}

// parseServices reads "1, 5,7" (or "" / "all": every service).
func parseServices(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "all") {
		return nil, nil
	}
	var out []int
	for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < siobroker.FirstService || n > siobroker.LastService {
			return nil, siobroker.FieldError("services", "must be service numbers from %d to %d separated by commas, or empty for all; %q is not one",
				siobroker.FirstService, siobroker.LastService, f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// parseAstana reads a time as a browser's datetime-local input gives it (taken as Astana time),
// or RFC 3339 with an offset.
func parseAstana(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, siobroker.FieldError(field, "is required (Astana time, e.g. 2026-11-28T22:00)")
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, siobroker.Astana); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(siobroker.Astana), nil
	}
	return time.Time{}, siobroker.FieldError(field, "must be a time such as 2026-11-28T22:00 (Astana time) or RFC 3339 with an offset, got %q", s)
}

func pathNumber(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, siobroker.FieldError(name, "must be a positive integer, got %q", s)
	}
	return n, nil
}

func maxLen(field, s string, max int) error {
	if n := len([]rune(s)); n > max {
		return siobroker.FieldError(field, "is %d characters long; at most %d", n, max)
	}
	return nil
}

// applicationsView is the page's view of the applications waiting for the operator (§12–15).
type applicationsView struct {
	AsOf      string            `json:"asOf"`
	Available bool              `json:"available"`
	Pending   []applicationView `json:"pending"`
	Overdue   int               `json:"overdue"`
}

type applicationView struct {
	ID           int64  `json:"id"`
	Kind         string `json:"kind"`
	IIN          string `json:"iin"`
	Name         string `json:"name"`
	Organisation string `json:"organisation"`
	SubmittedAt  string `json:"submittedAt"`
	By           string `json:"by"`
	Deadline     string `json:"deadline"`
	Overdue      bool   `json:"overdue"`
	Reason       string `json:"reason"`
}

// apiApplications lists the applications waiting for a decision, with their deadlines and those
// past it (§13: the operator decides within a day). Deciding is the command line's (users
// approve|refuse), where the refusal is signed with the operator's EDS.
func (h *handler) apiApplications(ctx context.Context, _ operator) (any, error) {
	now := h.cfg.Clock.Now()
	out := applicationsView{AsOf: siobroker.FormatTime(now), Pending: []applicationView{}}
	if h.cfg.Applications == nil {
		return out, nil
	}
	pending, err := h.cfg.Applications.SubmittedApplications(ctx, true)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the applications cannot be read now")
	}
	out.Available = true
	for _, sa := range pending {
		a := sa.Application
		v := applicationView{ID: sa.ID, Kind: string(a.Kind), IIN: a.IIN, Name: a.User.FullName, Organisation: a.User.Organisation,
			SubmittedAt: siobroker.FormatTime(a.At), By: a.By, Deadline: siobroker.FormatTime(sa.Deadline), Overdue: sa.Overdue(now),
			Reason: a.Reason}
		if v.Overdue {
			out.Overdue++
		}
		out.Pending = append(out.Pending, v)
	}
	return out, nil
}
