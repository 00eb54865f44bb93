package dashboard

import (
	"net/http"
	"net/url"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/operator/reports"
)

// report answers the page's reports form (POST ReportsPath) with the report itself, streamed as
// it is read (reports.WriteReport): CSV or XLSX to download, or JSON for the page to show. It
// needs a session and its CSRF token, as every action does; the reports service then checks the
// reports right and the organisation, and journals the use, allowed or refused, as on its other
// channels. A form refused before it reaches the service is journaled as a refused action.
//
// The form takes reports.FormParams; from and to may be calendar dates (Astana time), to
// included, as the page's date fields give them, or RFC 3339 instants, to excluded.
func (h *handler) report(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if h.cfg.Reports == nil {
		h.notFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	op, iin, err := h.identify(r)
	rec := journal.Operator{IIN: iin, Organisation: op.user.Organisation}
	d := journal.OperatorAction{Action: "report", Channel: op.channel}
	if err != nil {
		h.log.InfoContext(ctx, "dashboard report refused", "signer_iin", iin, "code", string(siobroker.ErrorCode(err)))
		if iin != "" {
			err = h.refused(ctx, rec, d, err)
		}
		writeError(w, err)
		return
	}
	d.By = op.by()
	if err := r.ParseForm(); err != nil {
		writeError(w, h.refused(ctx, rec, d, siobroker.FieldError("form", "cannot be read: %v", err)))
		return
	}
	if err := checkCSRF(r, op.session); err != nil {
		h.log.InfoContext(ctx, "dashboard report refused", "signer_iin", iin, "code", string(siobroker.ErrorCode(err)), "reason", siobroker.ErrorMessage(err))
		writeError(w, h.refused(ctx, rec, d, err))
		return
	}
	params := url.Values{}
	for k, v := range r.PostForm {
		if k != "csrf" {
			params[k] = v
		}
	}
	datesToPeriod(params)
	q, err := reports.ParseForm(params)
	if err != nil {
		writeError(w, h.refused(ctx, rec, d, err))
		return
	}
	reports.WriteReport(w, r, h.cfg.Reports, iin, "dashboard", q)
}

// datesToPeriod turns the calendar dates of the page's from and to fields into the period they
// mean in Astana time: from the first day's midnight to the midnight after the last day.
func datesToPeriod(v url.Values) {
	for name, days := range map[string]int{"from": 0, "to": 1} {
		if d, err := time.ParseInLocation(time.DateOnly, v.Get(name), siobroker.Astana); err == nil && len(v[name]) == 1 {
			v.Set(name, d.AddDate(0, 0, days).Format(time.RFC3339))
		}
	}
}
