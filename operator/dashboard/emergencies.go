package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/operator/incidents"
)

// The emergencies of Appendix 7 on the dashboard: opening one by hand, recording its actions'
// starts and ends, and the register in the form of Appendix 7.

// NoPlans is what the page says when no emergency action plans are configured.
const NoPlans = "this broker has no emergency action plans (incidents.emergency_plans_file): an emergency cannot be opened here"

// kindView is one kind of emergency of Appendix 7, for the form that opens one.
type kindView struct {
	Kind    string `json:"kind"`
	Section int    `json:"section"`
	Title   string `json:"title"`
	Actions int    `json:"actions"` // of its plan
}

// emergencyKinds are the six kinds with the length of their plans.
func (h *handler) emergencyKinds() []kindView {
	out := make([]kindView, 0, 6)
	for _, k := range siobroker.EmergencyKinds() {
		out = append(out, kindView{Kind: string(k), Section: k.Section(), Title: k.Title(), Actions: len(h.cfg.Plans.Plan(k))})
	}
	return out
}

// overdueOf are the numbers of the actions of the incidents past their maximum time at now, by
// incident; those without any are left out.
func overdueOf(list []siobroker.Incident, now time.Time) map[int64][]int {
	out := make(map[int64][]int)
	for _, inc := range list {
		for _, a := range inc.Overdue(now) {
			out[inc.Number] = append(out[inc.Number], a.No)
		}
	}
	return out
}

func (h *handler) openEmergency(ctx context.Context, r *http.Request, op operator, rec *journal.Operator, d *journal.OperatorAction) (any, error) {
	if h.cfg.Plans == nil {
		return nil, siobroker.Errorf(siobroker.CodeDashboardUnsupported, "%s", NoPlans)
	}
	now := h.cfg.Clock.Now().In(siobroker.Astana)
	d.Kind, d.Cause = strings.TrimSpace(r.PostFormValue("kind")), strings.TrimSpace(r.PostFormValue("cause"))
	kind, err := siobroker.ParseEmergencyKind(d.Kind)
	if err != nil {
		return nil, siobroker.FieldError("kind", "%v", err)
	}
	if d.Cause == "" {
		return nil, siobroker.FieldError("cause", "is required: the causes of the emergency (§41)")
	}
	if err := maxLen("cause", d.Cause, 2000); err != nil {
		return nil, err
	}
	var started time.Time
	if s := strings.TrimSpace(r.PostFormValue("started")); s != "" {
		if started, err = parseAstana("started", s); err != nil {
			return nil, err
		}
		if started.After(now) {
			return nil, siobroker.FieldError("started", "the onset %s is after now (%s)", siobroker.FormatTime(started), siobroker.FormatTime(now))
		}
		d.Started = siobroker.FormatTime(started)
	}
	inc, err := h.cfg.Incidents.RecordEmergencyBy(ctx, op.by(), incidents.Emergency{Kind: kind, Reason: d.Cause, StartedAt: started}, h.cfg.Plans.Plan(kind))
	d.Incident, d.Started = inc.Number, formatTime(inc.StartedAt)
	switch {
	case errors.Is(err, incidents.ErrEmergencyOpen):
		return nil, siobroker.Errorf(siobroker.CodeDashboardConflict, "emergency %d (%s) is open already, since %s: record on it, or close it first",
			inc.Number, kind.Title(), siobroker.FormatTime(inc.StartedAt))
	case errors.Is(err, incidents.ErrNotJournaled):
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "emergency %d was opened, but its journal record could not be written", inc.Number)
	case err != nil:
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the emergency cannot be opened now; retry later")
	}
	return inc, nil
}

func (h *handler) recordAction(ctx context.Context, r *http.Request, op operator, rec *journal.Operator, d *journal.OperatorAction) (any, error) {
	n, err := pathNumber(r, "number")
	if err != nil {
		return nil, err
	}
	no, err := pathNumber(r, "no")
	if err != nil {
		return nil, err
	}
	d.Incident, d.ActionNo, d.Phase = n, int(no), r.PathValue("phase")
	if d.Phase != "start" && d.Phase != "end" {
		return nil, siobroker.Errorf(siobroker.CodeDashboardNotFound, "POST %s is not an action of the dashboard: the last part is start or end", r.URL.Path)
	}
	end := d.Phase == "end"
	var at time.Time
	if s := strings.TrimSpace(r.PostFormValue("at")); s != "" {
		if at, err = parseAstana("at", s); err != nil {
			return nil, err
		}
		if now := h.cfg.Clock.Now(); at.After(now) {
			return nil, siobroker.FieldError("at", "%s is after now (%s)", siobroker.FormatTime(at), siobroker.FormatTime(now))
		}
	}
	inc, err := h.cfg.Incidents.RecordActionBy(ctx, op.by(), n, int(no), end, at)
	rec.Service = inc.Cause.Service
	if i := int(no) - 1; i < len(inc.Actions) {
		d.At = formatTime(inc.Actions[i].StartedAt)
		if end {
			d.At = formatTime(inc.Actions[i].EndedAt)
		}
	}
	switch {
	case err == nil:
		return inc, nil
	case errors.Is(err, siobroker.ErrIncidentNotFound):
		return nil, siobroker.Errorf(siobroker.CodeDashboardNotFound, "there is no incident %d", n)
	case errors.Is(err, siobroker.ErrActionNotFound):
		return nil, siobroker.Errorf(siobroker.CodeDashboardNotFound, "incident %d has no action %d", n, no)
	case errors.Is(err, siobroker.ErrActionRecorded):
		return nil, siobroker.Errorf(siobroker.CodeDashboardConflict, "the %s of action %d of incident %d is recorded already, at %s", d.Phase, no, n, d.At)
	case errors.Is(err, siobroker.ErrActionOrder):
		return nil, siobroker.FieldError("at", "action %d of incident %d ends after it starts: record its start first, and an end after it", no, n)
	case errors.Is(err, incidents.ErrNotJournaled):
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the %s of action %d of incident %d was recorded, but its journal record could not be written", d.Phase, no, n)
	}
	return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the %s of action %d of incident %d cannot be recorded now; retry later", d.Phase, no, n)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return siobroker.FormatTime(t)
}

// register serves the journal of emergencies in the form of Appendix 7 to an identified operator:
// an HTML page for the browser's print, or CSV (?format=csv); ?from= and ?to= (Astana time or RFC
// 3339) bound the onsets. Like the page's other reads it changes nothing and is not journaled.
func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	op, iin, err := h.identify(r)
	if err == nil {
		err = op.needOperator() // a session of the reports right alone sees the reports only
	}
	if err != nil {
		h.log.InfoContext(ctx, "dashboard register refused", "signer_iin", iin, "code", string(siobroker.ErrorCode(err)))
		h.errorPage(w, err)
		return
	}
	q := r.URL.Query()
	var from, to time.Time
	if s := q.Get("from"); s != "" {
		if from, err = parseAstana("from", s); err != nil {
			h.errorPage(w, err)
			return
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = parseAstana("to", s); err != nil {
			h.errorPage(w, err)
			return
		}
	}
	format := q.Get("format")
	if format != "" && format != "html" && format != "csv" {
		h.errorPage(w, siobroker.FieldError("format", "must be html or csv, got %q", format))
		return
	}
	all, err := h.cfg.Incidents.Incidents(ctx, true)
	if err != nil {
		h.logFailure(ctx, "dashboard register", err)
		h.errorPage(w, siobroker.Wrap(siobroker.CodeUnavailable, err, "the incidents cannot be read now"))
		return
	}
	reg := incidents.NewRegister(all, from, to, h.cfg.Clock.Now())
	var b strings.Builder
	if format == "csv" {
		err = reg.WriteCSV(&b)
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="journal-of-emergencies-%s.csv"`,
			h.cfg.Clock.Now().In(siobroker.Astana).Format("2006-01-02")))
	} else {
		err = reg.WriteHTML(&b, incidents.HTMLOptions{Stylesheet: Path + "static/register.css"})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	if err != nil {
		w.Header().Del("Content-Disposition")
		h.errorPage(w, err)
		return
	}
	_, _ = w.Write([]byte(b.String()))
}
