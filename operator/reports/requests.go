package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// DefaultIndexCatchUp is Config.IndexCatchUp when it is 0.
const DefaultIndexCatchUp = 20000

// Report runs a report for callerIIN and returns it whole: for the signed channel, whose
// q:report is signed as one document. It holds at most Config.MaxRows rows (requests or summary
// rows); a larger selection is refused with CodeReportsTooLarge. Refusals are *siobroker.Error
// values with CodeReportsDenied, a registry code, CodeSchema, CodeReportsTooLarge or
// CodeUnavailable.
func (s *Service) Report(ctx context.Context, callerIIN string, q soap.ReportQuery) (format string, count int, body []byte, err error) {
	return s.reportBytes(ctx, callerIIN, q, use{})
}

func (s *Service) reportBytes(ctx context.Context, callerIIN string, q soap.ReportQuery, u use) (string, int, []byte, error) {
	var buf bytes.Buffer
	n, err := s.report(ctx, callerIIN, q, u, s.cfg.MaxRows, func(string, int) (io.Writer, error) { return &buf, nil })
	if err != nil {
		return "", 0, nil, err
	}
	return q.Format, n, buf.Bytes(), nil
}

// StreamReport runs a report for callerIIN and writes it as it is read, without a bound on its
// rows: for a channel that can stream (the form by client certificate, the dashboard). channel
// names it in the journal. Once the report is allowed and its use journaled, open is called with
// the format, the number of rows and the id of the use, and the report is written to the writer
// it returns. An error before open is a refusal, journaled as one; an error after it is a failure
// to deliver, which the caller can only signal by cutting the response short.
func (s *Service) StreamReport(ctx context.Context, callerIIN, channel string, q soap.ReportQuery,
	open func(format string, count int, requestID string) (io.Writer, error)) (int, error) {
	u := use{channel: channel, requestID: uuid.NewString()}
	return s.report(ctx, callerIIN, q, u, 0, func(format string, count int) (io.Writer, error) {
		return open(format, count, u.requestID)
	})
}

// errDelivery marks an error after the report was allowed and journaled: it is not a refusal.
type errDelivery struct{ err error }

func (e errDelivery) Error() string { return e.err.Error() }
func (e errDelivery) Unwrap() error { return e.err }

// report authorises the caller, scopes the query, brings the index up to the journal's end, and
// reads the report; once its rows are counted it journals the use (a report is never delivered
// without its record), opens the output and writes the rows. limit bounds the rows (0: none).
func (s *Service) report(ctx context.Context, callerIIN string, q soap.ReportQuery, u use, limit int,
	open func(format string, count int) (io.Writer, error)) (int, error) {
	if q.Kind == "" {
		q.Kind = soap.ReportRequests
	}
	rec := s.record(callerIIN, q.Service, u)
	d := useDetails{Action: "report", Channel: u.channel, Format: q.Format, SignedRequest: u.signedRequest, Filter: filterDetails{
		Kind: q.Kind, Organisation: q.Organisation, ERDRCode: q.ERDRCode, Department: q.Department, UserIIN: q.UserIIN,
		From: formatTime(q.From), To: formatTime(q.To), Basis: int(q.Basis), Service: q.Service, Outcome: q.Outcome,
	}}
	var out sheet // set once the use is journaled and the output opened
	fail := func(err error) (int, error) {
		var de errDelivery
		if errors.As(err, &de) || out != nil {
			// Allowed and journaled already: a failure to deliver, not a refusal.
			s.logger.ErrorContext(ctx, "journal report not delivered whole", "signer_iin", rec.SignerIIN, "rows", d.Rows, "error", err)
			if errors.As(err, &de) {
				return 0, de.err
			}
			return 0, err
		}
		return 0, s.refuse(ctx, rec, d, err)
	}

	if err := checkReportQuery(q); err != nil {
		return fail(err)
	}
	user, err := s.users.Authorize(ctx, callerIIN)
	if err != nil {
		return fail(err)
	}
	rec.Organisation = user.Organisation
	f, err := s.scope(user, q)
	if err != nil {
		return fail(err)
	}
	d.Filter.Organisation, d.Filter.ERDRCode, d.Filter.AllOrgs = f.Organisation, f.ERDRCode, f.ERDRCode == "" && f.Organisation == ""
	through, done, err := s.index.CatchUp(ctx, s.cfg.IndexCatchUp)
	switch {
	case err != nil:
		return fail(siobroker.Wrap(siobroker.CodeUnavailable, err, "the request index cannot be brought up to date with the journal now; retry later"))
	case !done:
		return fail(siobroker.Errorf(siobroker.CodeUnavailable,
			"the request index is still being built from the journal (up to record %d so far); retry in a while, or have the operator run `siobroker journal reindex`", through))
	}
	d.Filter.IndexedThrough = through

	// deliver journals the allowed use with its row count, then opens the output.
	deliver := func(count int, name string, columns []string) error {
		if limit > 0 && count > limit {
			return siobroker.Errorf(CodeReportsTooLarge, "the report holds %d rows, more than %d; choose a shorter period or narrower filters, or take it by form or from the dashboard, which stream it", count, limit)
		}
		d.Rows, rec.Code = count, outcomeOK
		if err := s.journalUse(ctx, &rec, d); err != nil {
			return errDelivery{err}
		}
		w, err := open(q.Format, count)
		if err != nil {
			return errDelivery{err}
		}
		sh, err := newSheet(q.Format, name, columns, w, s.cfg.TempDir)
		if err != nil {
			return errDelivery{err}
		}
		out = sh
		return nil
	}
	if q.Kind == soap.ReportSummary {
		err = s.summary(ctx, f, deliver, func() sheet { return out })
	} else {
		err = s.requests(ctx, f, own(user), deliver, func() sheet { return out })
	}
	if err != nil {
		return fail(err)
	}
	if err := out.close(); err != nil {
		return fail(errDelivery{err})
	}
	s.logger.InfoContext(ctx, "journal report delivered", "signer_iin", rec.SignerIIN, "organisation", rec.Organisation,
		"kind", q.Kind, "rows", d.Rows, "format", q.Format, "channel", d.Channel)
	return d.Rows, nil
}

// requests streams the entries f selects: deliver once they are counted, then each row.
func (s *Service) requests(ctx context.Context, f siobroker.RequestFilter, own func(siobroker.RequestEntry) bool,
	deliver func(count int, name string, columns []string) error, out func() sheet) error {
	dropped := 0
	err := s.index.index.ScanRequests(ctx, f, func(n int) error {
		return deliver(n, "requests", requestColumns)
	}, func(e siobroker.RequestEntry) error {
		// The store is trusted to filter, and checked: an entry outside the scope never leaves.
		if !f.Match(e) {
			dropped++
			return nil
		}
		r := newRequestRow(e, own(e))
		if err := out().row(r, r.cells()); err != nil {
			return errDelivery{err}
		}
		return nil
	})
	if dropped > 0 {
		s.logger.ErrorContext(ctx, "the request index returned entries outside the filter; they were dropped", "dropped", dropped)
	}
	var de errDelivery
	if err != nil && !errors.As(err, &de) && !isRefusal(err) {
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the request index cannot be read now; retry later")
	}
	return err
}

// summary collects the monthly summary of the entries f selects and delivers it. Its rows are one
// per month, organisation and department, not per request: they are held until counted.
func (s *Service) summary(ctx context.Context, f siobroker.RequestFilter, deliver func(count int, name string, columns []string) error, out func() sheet) error {
	var rows []summaryRow
	err := s.index.index.SummariseRequests(ctx, f, func(r siobroker.RequestSummary) error {
		if f.ERDRCode != "" && r.ERDRCode != f.ERDRCode || f.ERDRCode == "" && f.Organisation != "" && (r.ERDRCode != "" || r.Organisation != f.Organisation) {
			return fmt.Errorf("the request index summarised organisation %q (%s) outside the filter", r.Organisation, r.ERDRCode)
		}
		rows = append(rows, newSummaryRow(r))
		return nil
	})
	if err != nil {
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the request index cannot be read now; retry later")
	}
	if err := deliver(len(rows), "summary", summaryColumns); err != nil {
		return err
	}
	for _, r := range rows {
		if err := out().row(r, r.cells()); err != nil {
			return errDelivery{err}
		}
	}
	return nil
}

// isRefusal reports whether err carries a code of its own: a refusal, not a store's failure.
func isRefusal(err error) bool {
	var e *siobroker.Error
	return errors.As(err, &e)
}

// journalUse appends the record of an allowed use; without it nothing is delivered.
func (s *Service) journalUse(ctx context.Context, rec *siobroker.JournalRecord, d useDetails) error {
	var err error
	if rec.Data, err = json.Marshal(d); err != nil {
		return fmt.Errorf("reports: encode journal details: %w", err)
	}
	if _, err := s.journal.Append(ctx, *rec); err != nil {
		s.logger.ErrorContext(ctx, "cannot journal a use of reports; nothing delivered", "action", d.Action, "signer_iin", rec.SignerIIN, "error", err)
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the use of reports now; retry later")
	}
	return nil
}

// scope is the filter of q for user: the organisation it may cover, and q's narrowing fields.
//
// A report covers the caller's own organisation, named by the caller's ЕРДР code in the user
// registry (a caller who has none is scoped by the organisation's name among the requests of
// users who had none either), unless the caller's role is one of Config.OversightRoles: such a
// caller chooses an organisation by its ЕРДР code, or sees every organisation.
func (s *Service) scope(user siobroker.User, q soap.ReportQuery) (siobroker.RequestFilter, error) {
	oversight := slices.Contains(s.cfg.OversightRoles, user.Role)
	switch {
	case !user.ReportsRight:
		return siobroker.RequestFilter{}, siobroker.Errorf(CodeReportsDenied,
			"user %s has no access to the Reports function; the operator grants it on a motivated letter of the organisation (§10 of the Rules)", user.IIN)
	case strings.TrimSpace(user.Organisation) == "" && user.ERDRCode == "":
		return siobroker.RequestFilter{}, siobroker.Errorf(CodeReportsDenied, "user %s has no organisation in the user registry, so no report can be scoped", user.IIN)
	case q.Organisation != "" && q.Organisation != user.Organisation && oversight:
		return siobroker.RequestFilter{}, siobroker.FieldError("reportQuery/organisation",
			"names the caller's own organisation only; choose another organisation by its ЕРДР code (erdrCode)")
	case q.Organisation != "" && q.Organisation != user.Organisation,
		q.ERDRCode != "" && q.ERDRCode != user.ERDRCode && !oversight:
		asked := q.ERDRCode
		if asked == "" {
			asked = q.Organisation
		}
		return siobroker.RequestFilter{}, siobroker.Errorf(CodeReportsDenied,
			"a report covers only the caller's own organisation (%s, ЕРДР code %q), not %q (§10, §44 of the Rules)",
			user.Organisation, user.ERDRCode, asked)
	}
	f := siobroker.RequestFilter{From: q.From, To: q.To, Department: q.Department, SignerIIN: q.UserIIN, Basis: q.Basis,
		Service: q.Service, Outcome: siobroker.RequestOutcome(q.Outcome)}
	switch {
	case q.ERDRCode != "":
		f.ERDRCode = q.ERDRCode
	case oversight:
		// every organisation
	case user.ERDRCode != "":
		f.ERDRCode = user.ERDRCode
	default:
		f.Organisation = user.Organisation
	}
	return f, nil
}

// own tells the entries of user's own organisation from those only an oversight role sees.
func own(user siobroker.User) func(siobroker.RequestEntry) bool {
	return func(e siobroker.RequestEntry) bool {
		if user.ERDRCode != "" {
			return e.ERDRCode == user.ERDRCode
		}
		return e.ERDRCode == "" && e.Organisation == user.Organisation
	}
}
