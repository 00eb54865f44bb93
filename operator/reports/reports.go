// Package reports is the "Reports" function of §9–10 of the Rules and the prosecutor's export of
// §51–53, both read from the permanent journal.
//
// A report shows the requests of the users of one organisation: the departmental control of §10
// runs it at least monthly, and judges from it whether each request was justified (§9). Only a
// user who holds the reports right (User.ReportsRight, granted by the operator on a motivated
// letter) may run one, and only over the user's own organisation, named by its ЕРДР code, unless
// the user's role is one of Config.OversightRoles. A report reads the request index (index.go),
// which the Indexer derives from the journal: every request with its basis, case reference,
// subject, services, outcome, signer, department and time, filtered by period, department, user,
// basis, service and outcome; or the monthly summary per organisation and department. It is
// CSV, JSON or XLSX, and is streamed as it is read (Service.StreamReport) where the channel
// allows. It never carries the signed bytes of a request or reply, nor an answer, which hold the
// personal data §44 protects.
//
// An export is the prosecutor's (§51–52): a user of a role in Config.ExportRoles (by default role
// 1 of Appendix 1, the prosecutor) names the resolution (постановление) it is made under and one
// user or one organisation, and gets the same records with the raw request and reply XML.
//
// Every use, allowed or refused, is itself appended to the journal as a JournalReport record:
// who asked, with which filter, how many rows were given, the resolution of an export, or the code
// of the refusal. An allowed report is delivered only once that record is written.
//
// Service.Handler serves both over HTTP: a signed SyncChannel envelope (POST), and for reports a
// plain GET identified by the TLS client certificate.
package reports

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// Codes of the refusals of this package. They are siobroker.Code values like the others, and
// soap.WriteFault renders them as any other code.
const (
	// CodeReportsDenied: the caller may not use reports (no reports right, no organisation, or
	// another organisation than the caller's) or may not order an export (role), or did not
	// identify itself with a client certificate.
	CodeReportsDenied = siobroker.CodeReportsDenied
	// CodeReportsTooLarge: the selection holds more than Config.MaxRows records; a narrower
	// period is needed. Nothing is delivered truncated.
	CodeReportsTooLarge = siobroker.CodeReportsTooLarge
	// CodeReportsCSRF: a report by client certificate whose form did not carry the CSRF token
	// matching its cookie, or that a browser says came from another origin.
	CodeReportsCSRF = siobroker.CodeReportsCSRF
)

// Journal is what reports need of the journal: they read it, and journal every use of it.
type Journal interface {
	siobroker.JournalReader
	siobroker.JournalWriter
}

// Users is the user registry: the caller's role, organisation and reports right come from here,
// by the IIN of the signing or client certificate.
type Users interface {
	Authorize(ctx context.Context, iin string) (siobroker.User, error)
}

// Config holds the settings of reports.
type Config struct {
	// ExportRoles are the roles of Appendix 1 that may order an export. nil means [1], the
	// prosecutor; an empty non-nil slice lets no one.
	ExportRoles []int
	// OversightRoles are the roles of Appendix 1 whose holders of the reports right report
	// across organisations (every one, or one chosen by its ЕРДР code). None by default: §10
	// makes reports a departmental control of the organisation's own users, and §51–53 give the
	// prosecutor the requests of other organisations through the operator, under a resolution
	// (the export), not through reports. A deployment names here a role that oversees several
	// organisations by the operator's decision.
	OversightRoles []int
	// MaxRows bounds the rows of a report or export built in memory: one answered on the signed
	// channel (q:report is signed whole), and every export. 0 means 100000, and a negative value is
	// refused. A larger selection is refused with CodeReportsTooLarge. A report streamed by form
	// or from the dashboard (StreamReport) has no bound.
	MaxRows int
	// TempDir is where an XLSX report keeps its rows beyond 16 MB while it is written (they hold
	// the requests' subjects: give a directory of the broker's own, 0700); "" is the system's.
	TempDir string
	// IndexCatchUp bounds the journal records a report folds into the request index before it
	// reads it; 0 means DefaultIndexCatchUp, and a negative value is refused. The broker's
	// background catch-up keeps the index within seconds of the journal; an index further behind
	// (a journal older than the index, not yet rebuilt) has the report refused SIO-UNAVAILABLE
	// rather than delivered incomplete, or after minutes.
	IndexCatchUp int
	// VerifyClientCert, when set, is applied to the client certificate of a GET report after the
	// TLS handshake verified it: give it signing.TrustStore.VerifyChain so that the CRLs apply,
	// which crypto/tls does not check.
	VerifyClientCert func(cert *x509.Certificate, intermediates []*x509.Certificate, at time.Time) error
}

// DefaultMaxRows is MaxRows when none is configured.
const DefaultMaxRows = 100000

func (c *Config) setDefaults() {
	if c.ExportRoles == nil {
		c.ExportRoles = []int{1}
	}
	if c.MaxRows == 0 {
		c.MaxRows = DefaultMaxRows
	}
	if c.IndexCatchUp == 0 {
		c.IndexCatchUp = DefaultIndexCatchUp
	}
}

// Validate reports what is wrong with c once its defaults are applied.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.MaxRows < 0 {
		errs = append(errs, fmt.Errorf("reports: Config.MaxRows must not be negative, got %d", c.MaxRows))
	}
	if c.IndexCatchUp < 0 {
		errs = append(errs, fmt.Errorf("reports: Config.IndexCatchUp must not be negative, got %d", c.IndexCatchUp))
	}
	return errors.Join(errs...)
}

// reportKinds are the journal records a report or an export shows. A late answer is a result of
// the request too; it carries its signer and organisation only when the broker still had the
// request stored (see broker.LateAnswers), and only then is it selected by user or organisation.
var reportKinds = []siobroker.JournalKind{
	siobroker.JournalRequest, siobroker.JournalRefusal, siobroker.JournalExchange, siobroker.JournalReply,
	siobroker.JournalLate,
}

// Service runs reports and exports. It is safe for concurrent use.
type Service struct {
	cfg     Config
	journal Journal
	index   *Indexer
	users   Users
	clock   siobroker.Clock
	logger  *slog.Logger
}

// New returns a Service. It applies the defaults of cfg and returns an error naming every field
// of cfg that is invalid and every collaborator that is missing: journal, index (the request
// index's Indexer over the same journal), users and clock are required; a nil logger discards.
func New(cfg Config, journal Journal, index *Indexer, users Users, clock siobroker.Clock, logger *slog.Logger) (*Service, error) {
	cfg.setDefaults()
	errs := []error{cfg.Validate()}
	if journal == nil {
		errs = append(errs, errors.New("reports: New: journal is required"))
	}
	if index == nil {
		errs = append(errs, errors.New("reports: New: index is required"))
	}
	if users == nil {
		errs = append(errs, errors.New("reports: New: users is required"))
	}
	if clock == nil {
		errs = append(errs, errors.New("reports: New: clock is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, journal: journal, index: index, users: users, clock: clock, logger: logger}, nil
}

// use is how a report or export came in, for its journal record.
type use struct {
	channel       string // "soap", "tls", or "" for a direct call
	requestID     string // the broker's id of the use (the reply's messageId)
	messageID     string // the client's messageId
	signedRequest []byte // the signed request as received, kept as the document of the use (§4)
}

// useDetails is the Data of a JournalReport record, as JSON.
type useDetails struct {
	Action        string         `json:"action"` // "report", or a step of the export workflow (actionExport*)
	Channel       string         `json:"channel,omitempty"`
	Filter        filterDetails  `json:"filter"`
	Format        string         `json:"format,omitempty"`
	Rows          int            `json:"rows"`
	Resolution    *resolution    `json:"resolution,omitempty"`
	Refusal       siobroker.Code `json:"refusal,omitempty"`
	Message       string         `json:"message,omitempty"`
	SignedRequest []byte         `json:"signedRequest,omitempty"` // base64
	// The export workflow's (exports.go): the export request's id, its query and resolution
	// document (on the request), and the operator's decision.
	ExportID string              `json:"exportId,omitempty"`
	Export   *exportQueryDetails `json:"export,omitempty"`
	Document *documentDetails    `json:"document,omitempty"`
	Decision *decisionDetails    `json:"decision,omitempty"`
}

type filterDetails struct {
	Kind         string `json:"kind,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	ERDRCode     string `json:"erdrCode,omitempty"`
	AllOrgs      bool   `json:"allOrganisations,omitempty"` // an oversight report of every organisation
	Department   string `json:"department,omitempty"`
	UserIIN      string `json:"userIin,omitempty"`
	From         string `json:"from,omitempty"`
	To           string `json:"to,omitempty"`
	Basis        int    `json:"basis,omitempty"`
	Service      int    `json:"service,omitempty"`
	Outcome      string `json:"outcome,omitempty"`
	// IndexedThrough is the journal record up to which the request index was complete when the
	// report was read.
	IndexedThrough int64 `json:"indexedThrough,omitempty"`
}

type resolution struct {
	No       string `json:"no"`
	Date     string `json:"date"`
	IssuedBy string `json:"issuedBy,omitempty"`
}

// Outcome codes of JournalReport records that are not refusals.
const outcomeOK = "ok"

// export runs the prosecutor's export of q, a query the operator approved under export request
// exportID (FetchExport): callerIIN must be authorised by the user registry and be of a role in
// Config.ExportRoles. The export covers q.UserIIN or q.Organisation (exactly one) of any
// organisation, and includes the raw request and reply XML. Its journal record keeps the
// resolution it was made under and the export request's id.
func (s *Service) export(ctx context.Context, callerIIN string, q soap.ExportQuery, u use, exportID string) (string, int, []byte, error) {
	rec := s.record(callerIIN, 0, u)
	d := useDetails{Action: actionExport, Channel: u.channel, Format: q.Format, SignedRequest: u.signedRequest, Filter: filterDetails{
		Organisation: q.Organisation, UserIIN: q.UserIIN, From: formatTime(q.From), To: formatTime(q.To),
	}, Resolution: &resolution{No: q.ResolutionNo, Date: formatDate(q.ResolutionDate), IssuedBy: q.IssuedBy}, ExportID: exportID}
	fail := func(err error) (string, int, []byte, error) { return "", 0, nil, s.refuse(ctx, rec, d, err) }

	if err := s.checkExportQuery(q); err != nil {
		return fail(err)
	}
	if err := s.authorizeExporter(ctx, callerIIN, &rec); err != nil {
		return fail(err)
	}
	f := siobroker.JournalFilter{Organisation: q.Organisation, SignerIIN: q.UserIIN, From: q.From, To: q.To, Kinds: reportKinds}
	return s.run(ctx, rec, d, f, q.Format, true)
}

// authorizeExporter authorises callerIIN with the user registry, puts the user's organisation in
// rec, and wants a role of Config.ExportRoles: the export is the prosecutor's (§51–52).
func (s *Service) authorizeExporter(ctx context.Context, callerIIN string, rec *siobroker.JournalRecord) error {
	user, err := s.users.Authorize(ctx, callerIIN)
	if err != nil {
		return err
	}
	rec.Organisation = user.Organisation
	if !slices.Contains(s.cfg.ExportRoles, user.Role) {
		return siobroker.Errorf(CodeReportsDenied,
			"role %d of user %s may not order an export of the journal; it is the prosecutor's, under a resolution (§51–52 of the Rules)", user.Role, callerIIN)
	}
	return nil
}

// run selects the records, renders them, journals the use and only then hands the report out.
func (s *Service) run(ctx context.Context, rec siobroker.JournalRecord, d useDetails, f siobroker.JournalFilter, format string, export bool) (string, int, []byte, error) {
	f.Limit = s.cfg.MaxRows + 1
	recs, err := s.journal.Query(ctx, f)
	if err != nil {
		return "", 0, nil, s.refuse(ctx, rec, d, siobroker.Wrap(siobroker.CodeUnavailable, err, "the journal cannot be read now; retry later"))
	}
	// The store is trusted to filter, and checked: a record outside the filter never leaves.
	kept := recs[:0:0]
	for _, r := range recs {
		if matches(f, r) {
			kept = append(kept, r)
		}
	}
	if dropped := len(recs) - len(kept); dropped > 0 {
		s.logger.ErrorContext(ctx, "the journal returned records outside the filter; they were dropped", "dropped", dropped)
	}
	if len(recs) > s.cfg.MaxRows {
		return "", 0, nil, s.refuse(ctx, rec, d, siobroker.Errorf(CodeReportsTooLarge,
			"the selection holds more than %d journal records; choose a shorter period", s.cfg.MaxRows))
	}
	body, err := render(format, kept, export)
	if err != nil {
		return "", 0, nil, s.refuse(ctx, rec, d, err)
	}
	d.Rows = len(kept)
	rec.Code = outcomeOK
	if rec.Data, err = json.Marshal(d); err != nil {
		return "", 0, nil, fmt.Errorf("reports: encode journal details: %w", err)
	}
	if _, err := s.journal.Append(ctx, rec); err != nil {
		// Without its record the use would be untraceable: nothing is handed out.
		s.logger.ErrorContext(ctx, "cannot journal a use of reports; nothing delivered", "action", d.Action, "signer_iin", rec.SignerIIN, "error", err)
		return "", 0, nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the use of reports now; retry later")
	}
	s.logger.InfoContext(ctx, "journal "+d.Action+" delivered", "signer_iin", rec.SignerIIN, "organisation", rec.Organisation,
		"rows", d.Rows, "format", format, "channel", d.Channel)
	return format, len(kept), body, nil
}

// record starts the JournalReport record of a use.
func (s *Service) record(callerIIN string, service int, u use) siobroker.JournalRecord {
	return siobroker.JournalRecord{
		At: s.clock.Now().In(siobroker.Astana), Kind: siobroker.JournalReport, RequestID: u.requestID, MessageID: u.messageID,
		SignerIIN: callerIIN, Service: service,
	}
}

// refuse journals a refused use and returns err. A refusal that cannot be journaled is still a
// refusal; the failure is logged.
func (s *Service) refuse(ctx context.Context, rec siobroker.JournalRecord, d useDetails, err error) error {
	code := siobroker.ErrorCode(err)
	rec.Code = string(code)
	d.Refusal, d.Message, d.Rows = code, siobroker.ErrorMessage(err), 0
	data, jerr := json.Marshal(d)
	if jerr == nil {
		rec.Data = data
		_, jerr = s.journal.Append(context.WithoutCancel(ctx), rec)
	}
	if jerr != nil {
		s.logger.ErrorContext(ctx, "cannot journal a refused use of reports", "action", d.Action, "signer_iin", rec.SignerIIN, "code", string(code), "error", jerr)
	}
	if code == siobroker.CodeInternal || code == siobroker.CodeUnavailable {
		s.logger.ErrorContext(ctx, "journal "+d.Action+" failed", "signer_iin", rec.SignerIIN, "code", string(code), "error", err)
	} else {
		s.logger.InfoContext(ctx, "journal "+d.Action+" refused", "signer_iin", rec.SignerIIN, "code", string(code), "reason", siobroker.ErrorMessage(err))
	}
	return err
}

// checkReportQuery repeats the checks of soap.ParseReportQuery, for callers that build a query
// themselves (the form, the dashboard, or a direct call).
func checkReportQuery(q soap.ReportQuery) error {
	const p = "reportQuery"
	if err := checkPeriod(p, q.From, q.To); err != nil {
		return err
	}
	switch {
	case q.Kind != "" && q.Kind != soap.ReportRequests && q.Kind != soap.ReportSummary:
		return siobroker.FieldError(p+"/kind", "must be %s or %s, got %q", soap.ReportRequests, soap.ReportSummary, q.Kind)
	case q.Service != 0 && (q.Service < siobroker.FirstService || q.Service > siobroker.LastService):
		return siobroker.FieldError(p+"/service", "must be an integer from %d to %d, got %d", siobroker.FirstService, siobroker.LastService, q.Service)
	case q.Basis != 0 && !q.Basis.Known():
		return siobroker.FieldError(p+"/basis", "must be an integer from %d to %d, got %d", siobroker.FirstBasis, siobroker.LastLawBasis, q.Basis)
	case q.Outcome != "" && !siobroker.RequestOutcome(q.Outcome).Valid():
		return siobroker.FieldError(p+"/outcome", "must be one of %s, got %q", outcomeList(), q.Outcome)
	case q.UserIIN != "" && !twelveDigits(q.UserIIN):
		return siobroker.FieldError(p+"/userIin", "must be 12 digits, got %q", q.UserIIN)
	case len(q.ERDRCode) > 64 || len(q.Department) > 1024 || len(q.Organisation) > 1024:
		return siobroker.FieldError(p, "erdrCode, department and organisation are short texts")
	}
	if q.Format != soap.ReportCSV && q.Format != soap.ReportJSON && q.Format != soap.ReportXLSX {
		return siobroker.FieldError(p+"/format", "must be csv, json or xlsx, got %q", q.Format)
	}
	return nil
}

func outcomeList() string {
	s := make([]string, len(siobroker.RequestOutcomes))
	for i, o := range siobroker.RequestOutcomes {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

func (s *Service) checkExportQuery(q soap.ExportQuery) error {
	const p = "exportQuery"
	if strings.TrimSpace(q.ResolutionNo) == "" {
		return siobroker.FieldError(p+"/resolutionNo", "is required: an export is made under a prosecutor's resolution (§51 of the Rules)")
	}
	if q.ResolutionDate.IsZero() {
		return siobroker.FieldError(p+"/resolutionDate", "is required")
	}
	today := s.clock.Now().In(siobroker.Astana).Format(soap.DateLayout)
	if formatDate(q.ResolutionDate) > today {
		return siobroker.FieldError(p+"/resolutionDate", "must not be after today (%s), got %s", today, formatDate(q.ResolutionDate))
	}
	switch {
	case q.UserIIN == "" && q.Organisation == "":
		return siobroker.FieldError(p+"/userIin", "is required: an export names either a user (userIin) or an organisation")
	case q.UserIIN != "" && q.Organisation != "":
		return siobroker.FieldError(p+"/organisation", "must not be given with userIin: an export names either a user or an organisation")
	case q.UserIIN != "" && !twelveDigits(q.UserIIN):
		return siobroker.FieldError(p+"/userIin", "must be 12 digits, got %q", q.UserIIN)
	}
	if err := checkPeriod(p, q.From, q.To); err != nil {
		return err
	}
	return checkFormat(p, q.Format)
}

func checkPeriod(p string, from, to time.Time) error {
	switch {
	case from.IsZero():
		return siobroker.FieldError(p+"/from", "is required")
	case to.IsZero():
		return siobroker.FieldError(p+"/to", "is required")
	case !to.After(from):
		return siobroker.FieldError(p+"/to", "must be after from (%s), got %s", siobroker.FormatTime(from), siobroker.FormatTime(to))
	}
	return nil
}

func checkFormat(p, format string) error {
	if format != soap.ReportCSV && format != soap.ReportJSON {
		return siobroker.FieldError(p+"/format", "must be csv or json, got %q", format)
	}
	return nil
}

func twelveDigits(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// matches reports whether r is inside f: the defence in depth of run.
func matches(f siobroker.JournalFilter, r siobroker.JournalRecord) bool {
	switch {
	case f.RequestID != "" && r.RequestID != f.RequestID,
		f.Organisation != "" && r.Organisation != f.Organisation,
		f.SignerIIN != "" && r.SignerIIN != f.SignerIIN,
		!f.From.IsZero() && r.At.Before(f.From),
		!f.To.IsZero() && !r.At.Before(f.To),
		f.Service != 0 && r.Service != f.Service,
		len(f.Kinds) > 0 && !slices.Contains(f.Kinds, r.Kind):
		return false
	}
	return true
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return siobroker.FormatTime(t)
}

func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(soap.DateLayout)
}
