package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// The prosecutor's export is a workflow (§51–53): §52 lets the prosecutor ask the operator for
// the users' requests and what they obtained, so the operator, not the prosecutor's signature
// alone, releases them. Each step is a JournalReport record of the permanent journal, and the
// state of a request is read back from those records only, so that what was asked, attached,
// decided and delivered cannot be told apart from what the journal shows:
//
//  1. q:exportQuery (RequestExport): a user of a role in Config.ExportRoles names the resolution
//     (number, date, issuing prosecutor), attaches it, and names one user or organisation and a
//     period. The record (action "export-request", code PENDING, RequestID the export's id)
//     keeps the query and the document with its SHA-256. The answer is q:exportStatus pending.
//  2. The operator approves or refuses it with a reason (ExportDesk.Decide, `siobroker exports`):
//     a record (action "export-decision", code APPROVED or REFUSED) under the same RequestID.
//  3. q:exportFetch (FetchExport), signed by the user who asked: the export of exactly the
//     approved query, as a q:report, once approved (its record is the "export" use); otherwise
//     q:exportStatus. Every fetch is journaled.

// Outcome codes of the records of the export workflow.
const (
	outcomePending  = "PENDING"
	outcomeApproved = "APPROVED"
	outcomeRefused  = "REFUSED"
)

// Actions of the records of the export workflow (useDetails.Action).
const (
	actionExportRequest  = "export-request"
	actionExportDecision = "export-decision"
	actionExportFetch    = "export-fetch"
	actionExport         = "export"
)

// CodeExportUnknown: the export request named does not exist, or is another user's.
const CodeExportUnknown = siobroker.CodeExportUnknown

// MaxDecisionText bounds the operator's name and reason in a decision.
const MaxDecisionText = 1024

// documentDetails is the resolution attached to an export request, as journaled.
type documentDetails struct {
	FileName  string `json:"fileName"`
	MediaType string `json:"mediaType"`
	Size      int    `json:"size"`
	SHA256    string `json:"sha256"`
	Content   []byte `json:"content"` // base64
}

// exportQueryDetails is the query of an export request, as journaled: what an approval covers.
type exportQueryDetails struct {
	UserIIN      string `json:"userIin,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	From         string `json:"from"`
	To           string `json:"to"`
	Format       string `json:"format"`
}

// decisionDetails is the operator's decision on an export request.
type decisionDetails struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`
	Reason   string `json:"reason,omitempty"`
}

// ExportRequest is an export request as the journal holds it.
type ExportRequest struct {
	ID             string
	At             time.Time
	RequesterIIN   string
	Organisation   string // the requester's
	ResolutionNo   string
	ResolutionDate string
	IssuedBy       string
	UserIIN        string // the export's subject: a user
	SubjectOrg     string // or an organisation
	From, To       time.Time
	Format         string
	Document       soap.Document
	DocumentSHA256 string
	Status         string // soap.ExportPending, ExportApproved or ExportRefused
	DecidedAt      time.Time
	DecidedBy      string
	Reason         string
}

// query is the approved query of e.
func (e ExportRequest) query() soap.ExportQuery {
	date, _ := time.ParseInLocation(soap.DateLayout, e.ResolutionDate, siobroker.Astana)
	return soap.ExportQuery{ResolutionNo: e.ResolutionNo, ResolutionDate: date, IssuedBy: e.IssuedBy, UserIIN: e.UserIIN,
		Organisation: e.SubjectOrg, From: e.From, To: e.To, Format: e.Format}
}

// foldExports reads the export requests out of journal records of kind JournalReport, in Seq
// order: a request record opens one, the first decision record after it decides it, and any
// other record is ignored. A decision without its request, or a second one, is ignored too:
// Decide never writes either.
func foldExports(recs []siobroker.JournalRecord) (map[string]*ExportRequest, []string, error) {
	out := map[string]*ExportRequest{}
	var order []string
	for _, r := range recs {
		if r.Kind != siobroker.JournalReport {
			continue
		}
		var d useDetails
		if err := json.Unmarshal(r.Data, &d); err != nil {
			continue // not a record of the workflow (an older use, or a refusal without details)
		}
		switch {
		case d.Action == actionExportRequest && r.Code == outcomePending && d.Export != nil && d.Resolution != nil && d.Document != nil:
			e := &ExportRequest{ID: r.RequestID, At: r.At, RequesterIIN: r.SignerIIN, Organisation: r.Organisation,
				ResolutionNo: d.Resolution.No, ResolutionDate: d.Resolution.Date, IssuedBy: d.Resolution.IssuedBy,
				UserIIN: d.Export.UserIIN, SubjectOrg: d.Export.Organisation, Format: d.Export.Format,
				Document:       soap.Document{FileName: d.Document.FileName, MediaType: d.Document.MediaType, Content: d.Document.Content},
				DocumentSHA256: d.Document.SHA256, Status: soap.ExportPending}
			var err error
			if e.From, err = parseTime(d.Export.From); err != nil {
				return nil, nil, fmt.Errorf("reports: export request %s: from: %w", r.RequestID, err)
			}
			if e.To, err = parseTime(d.Export.To); err != nil {
				return nil, nil, fmt.Errorf("reports: export request %s: to: %w", r.RequestID, err)
			}
			if _, seen := out[e.ID]; !seen {
				out[e.ID] = e
				order = append(order, e.ID)
			}
		case d.Action == actionExportDecision && d.Decision != nil:
			e := out[r.RequestID]
			if e == nil || e.Status != soap.ExportPending {
				continue
			}
			e.Status, e.DecidedAt, e.DecidedBy, e.Reason = soap.ExportRefused, r.At, d.Decision.By, d.Decision.Reason
			if d.Decision.Approved {
				e.Status = soap.ExportApproved
			}
		}
	}
	return out, order, nil
}

// exportRequest reads the export request id from j; ok is false when there is none.
func exportRequest(ctx context.Context, j siobroker.JournalReader, id string) (ExportRequest, bool, error) {
	recs, err := j.Query(ctx, siobroker.JournalFilter{RequestID: id, Kinds: []siobroker.JournalKind{siobroker.JournalReport}})
	if err != nil {
		return ExportRequest{}, false, fmt.Errorf("reports: read export request %s: %w", id, err)
	}
	m, _, err := foldExports(recs)
	if err != nil {
		return ExportRequest{}, false, err
	}
	e, ok := m[id]
	if !ok {
		return ExportRequest{}, false, nil
	}
	return *e, true, nil
}

// RequestExport records the prosecutor's export request q (step 1): callerIIN must be authorised
// by the user registry and be of a role in Config.ExportRoles, and q complete. The answer is its
// status, pending, under a new export id. Nothing of the journal is given out here.
func (s *Service) RequestExport(ctx context.Context, callerIIN string, q soap.ExportQuery) (soap.ExportStatus, error) {
	return s.requestExport(ctx, callerIIN, q, use{})
}

// requestExport is RequestExport as a use over a channel; the export's id is u.requestID (a new
// one when it has none).
func (s *Service) requestExport(ctx context.Context, callerIIN string, q soap.ExportQuery, u use) (soap.ExportStatus, error) {
	if u.requestID == "" {
		u.requestID = uuid.NewString()
	}
	rec := s.record(callerIIN, 0, u)
	d := useDetails{Action: actionExportRequest, Channel: u.channel, Format: q.Format, SignedRequest: u.signedRequest, Filter: filterDetails{
		Organisation: q.Organisation, UserIIN: q.UserIIN, From: formatTime(q.From), To: formatTime(q.To),
	}, Resolution: &resolution{No: q.ResolutionNo, Date: formatDate(q.ResolutionDate), IssuedBy: q.IssuedBy}}
	fail := func(err error) (soap.ExportStatus, error) { return soap.ExportStatus{}, s.refuse(ctx, rec, d, err) }

	if err := s.checkExportQuery(q); err != nil {
		return fail(err)
	}
	if err := checkResolution(q); err != nil {
		return fail(err)
	}
	if err := s.authorizeExporter(ctx, callerIIN, &rec); err != nil {
		return fail(err)
	}
	sum := sha256.Sum256(q.Document.Content)
	d.Document = &documentDetails{FileName: q.Document.FileName, MediaType: q.Document.MediaType, Size: len(q.Document.Content),
		SHA256: hex.EncodeToString(sum[:]), Content: q.Document.Content}
	d.Export = &exportQueryDetails{UserIIN: q.UserIIN, Organisation: q.Organisation, From: formatTime(q.From), To: formatTime(q.To), Format: q.Format}
	rec.Code = outcomePending
	var err error
	if rec.Data, err = json.Marshal(d); err != nil {
		return soap.ExportStatus{}, fmt.Errorf("reports: encode export request: %w", err)
	}
	if _, err := s.journal.Append(ctx, rec); err != nil {
		return soap.ExportStatus{}, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the export request now; retry later")
	}
	s.logger.InfoContext(ctx, "export requested; it waits for the operator", "export_id", rec.RequestID, "signer_iin", callerIIN,
		"resolution", q.ResolutionNo, "document_sha256", d.Document.SHA256)
	return soap.ExportStatus{ExportID: rec.RequestID, Status: soap.ExportPending}, nil
}

// checkResolution wants the issuing prosecutor and the resolution itself: the operator judges the
// request by them (§52).
func checkResolution(q soap.ExportQuery) error {
	const p = "exportQuery"
	switch {
	case strings.TrimSpace(q.IssuedBy) == "":
		return siobroker.FieldError(p+"/issuedBy", "is required: the prosecutor who issued the resolution")
	case len(q.Document.Content) == 0:
		return siobroker.FieldError(p+"/resolutionDocument", "is required: attach the resolution, which the operator checks (§52 of the Rules)")
	case strings.TrimSpace(q.Document.FileName) == "" || strings.TrimSpace(q.Document.MediaType) == "":
		return siobroker.FieldError(p+"/resolutionDocument", "needs its fileName and mediaType")
	}
	return nil
}

// FetchExport answers the prosecutor's q:exportFetch (step 3): the export of the approved query
// of request id, if callerIIN asked for it and the operator approved it (status approved); else
// its status. The caller is authorised again, and must still hold a role of Config.ExportRoles.
// A request of another user is answered as unknown, so that ids cannot be probed.
func (s *Service) FetchExport(ctx context.Context, callerIIN, id string) (st soap.ExportStatus, format string, count int, body []byte, err error) {
	return s.fetchExport(ctx, callerIIN, id, use{})
}

func (s *Service) fetchExport(ctx context.Context, callerIIN, id string, u use) (st soap.ExportStatus, format string, count int, body []byte, err error) {
	rec := s.record(callerIIN, 0, u)
	d := useDetails{Action: actionExportFetch, Channel: u.channel, SignedRequest: u.signedRequest, ExportID: id}
	fail := func(err error) (soap.ExportStatus, string, int, []byte, error) {
		return soap.ExportStatus{}, "", 0, nil, s.refuse(ctx, rec, d, err)
	}
	if err := s.authorizeExporter(ctx, callerIIN, &rec); err != nil {
		return fail(err)
	}
	e, ok, err := exportRequest(ctx, s.journal, id)
	switch {
	case err != nil:
		return fail(siobroker.Wrap(siobroker.CodeUnavailable, err, "the journal cannot be read now; retry later"))
	case !ok || e.RequesterIIN != callerIIN:
		return fail(siobroker.Errorf(CodeExportUnknown, "there is no export request %q of user %s", id, callerIIN))
	}
	st = soap.ExportStatus{ExportID: id, Status: e.Status, Reason: e.Reason}
	if e.Status != soap.ExportApproved {
		rec.Code = strings.ToUpper(e.Status)
		if rec.Data, err = json.Marshal(d); err != nil {
			return st, "", 0, nil, fmt.Errorf("reports: encode export fetch: %w", err)
		}
		if _, err := s.journal.Append(ctx, rec); err != nil {
			return st, "", 0, nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the fetch now; retry later")
		}
		return st, "", 0, nil, nil
	}
	format, count, body, err = s.export(ctx, callerIIN, e.query(), u, id)
	return st, format, count, body, err
}

// ExportDesk is the operator's side of the export workflow (step 2): the requests, and the
// decisions on them. It needs the journal only, not the user registry.
type ExportDesk struct {
	journal Journal
	clock   siobroker.Clock
}

// NewExportDesk returns the operator's desk over journal.
func NewExportDesk(journal Journal, clock siobroker.Clock) (*ExportDesk, error) {
	if journal == nil || clock == nil {
		return nil, errors.New("reports: NewExportDesk needs a journal and a clock")
	}
	return &ExportDesk{journal: journal, clock: clock}, nil
}

// List returns the export requests made since since, oldest first; pendingOnly keeps those
// waiting for a decision.
func (x *ExportDesk) List(ctx context.Context, since time.Time, pendingOnly bool) ([]ExportRequest, error) {
	recs, err := x.journal.Query(ctx, siobroker.JournalFilter{From: since, Kinds: []siobroker.JournalKind{siobroker.JournalReport}})
	if err != nil {
		return nil, fmt.Errorf("reports: read export requests: %w", err)
	}
	m, order, err := foldExports(recs)
	if err != nil {
		return nil, err
	}
	var out []ExportRequest
	for _, id := range order {
		if e := m[id]; !pendingOnly || e.Status == soap.ExportPending {
			out = append(out, *e)
		}
	}
	return out, nil
}

// Get returns the export request id.
func (x *ExportDesk) Get(ctx context.Context, id string) (ExportRequest, bool, error) {
	return exportRequest(ctx, x.journal, id)
}

// ErrExportDecided is returned by Decide for a request that is not pending.
var ErrExportDecided = errors.New("the export request has been decided already")

// ErrExportNotFound is returned by Decide for an id that names no export request.
var ErrExportNotFound = errors.New("no such export request")

// Decide approves or refuses the pending export request id, as by (the operator), with reason
// (required for a refusal: the prosecutor reads it). The decision is journaled; a request that
// is not pending is left as it is.
func (x *ExportDesk) Decide(ctx context.Context, id string, approve bool, by, reason string) (ExportRequest, error) {
	by, reason = strings.TrimSpace(by), strings.TrimSpace(reason)
	switch {
	case by == "":
		return ExportRequest{}, errors.New("reports: a decision names the operator who takes it")
	case !approve && reason == "":
		return ExportRequest{}, errors.New("reports: a refusal gives its reason, which the prosecutor is told")
	case utf8.RuneCountInString(by) > MaxDecisionText || utf8.RuneCountInString(reason) > MaxDecisionText:
		return ExportRequest{}, fmt.Errorf("reports: the operator's name and the reason are at most %d characters", MaxDecisionText)
	}
	e, ok, err := exportRequest(ctx, x.journal, id)
	switch {
	case err != nil:
		return ExportRequest{}, err
	case !ok:
		return ExportRequest{}, fmt.Errorf("export request %q: %w", id, ErrExportNotFound)
	case e.Status != soap.ExportPending:
		return e, fmt.Errorf("export request %s (%s by %s at %s): %w", id, e.Status, e.DecidedBy, siobroker.FormatTime(e.DecidedAt), ErrExportDecided)
	}
	d := useDetails{Action: actionExportDecision, ExportID: id, Decision: &decisionDetails{Approved: approve, By: by, Reason: reason}}
	rec := siobroker.JournalRecord{At: x.clock.Now().In(siobroker.Astana), Kind: siobroker.JournalReport, RequestID: id,
		Organisation: e.Organisation, Code: outcomeRefused}
	if approve {
		rec.Code = outcomeApproved
	}
	if rec.Data, err = json.Marshal(d); err != nil {
		return e, fmt.Errorf("reports: encode decision: %w", err)
	}
	// Two operators deciding at once both see it pending; the fold takes the first record only,
	// so the journal, not this check, says which decision holds.
	if _, err := x.journal.Append(ctx, rec); err != nil {
		return e, fmt.Errorf("reports: journal the decision on export request %s: %w", id, err)
	}
	e, _, err = exportRequest(ctx, x.journal, id)
	return e, err
}

// parseTime reads a time as formatTime wrote it.
func parseTime(s string) (time.Time, error) { return time.Parse(siobroker.TimeLayout, s) }
