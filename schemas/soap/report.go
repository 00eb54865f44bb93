package soap

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// Reports (§10 of the Rules) and the prosecutor's export (§51–53) travel in the same SyncChannel
// SendMessage envelope as a query, signed in either placement: requestData/data carries one
// q:reportQuery or q:exportQuery, and responseData/data of the reply one q:report whose text is
// the CSV or JSON rendering. The types are in sio-query-v1.xsd.

// The formats of a report. An export is CSV or JSON; a report may also be an XLSX workbook, which
// travels in q:report as its base64 (ParseReport decodes it).
const (
	ReportCSV  = "csv"
	ReportJSON = "json"
	ReportXLSX = "xlsx"
)

// The kinds of report (§9–10 of the Rules): every request, or the monthly summary.
const (
	ReportRequests = "requests" // every request with its basis, case, subject, services, outcome, signer, department, time
	ReportSummary  = "summary"  // per month, organisation and department: the requests, by outcome
)

// ReportQuery is a q:reportQuery: the requests of the users of one organisation (the caller's,
// unless the caller's role is an oversight role), over the period [From, To), narrowed by the
// other fields, as every request or as the monthly summary. Zero fields do not narrow.
type ReportQuery struct {
	Kind string // ReportRequests ("" means it) or ReportSummary
	// Organisation is the caller's organisation by name, as the first reports named it: it may
	// only name the caller's own, and narrows nothing. Another organisation is chosen by
	// ERDRCode.
	Organisation string
	ERDRCode     string // the organisation by its ЕРДР code
	Department   string
	UserIIN      string
	From, To     time.Time
	Basis        siobroker.Basis
	Service      int
	Outcome      string // a siobroker.RequestOutcome
	Format       string
}

// ExportQuery is a q:exportQuery: the prosecutor's request (§52) for an export of one user's or
// one organisation's requests and their results over [From, To), made under a resolution
// (постановление, §51–52) that it names and attaches. It is answered with q:exportStatus: the
// operator approves or refuses it, and only an approved one is then fetched (q:exportFetch).
// Exactly one of UserIIN and Organisation is set.
type ExportQuery struct {
	ResolutionNo   string
	ResolutionDate time.Time // a calendar date: midnight, Astana time
	IssuedBy       string    // the prosecutor who issued the resolution: name and office
	Document       Document  // the resolution itself
	UserIIN        string
	Organisation   string
	From, To       time.Time
	Format         string
}

// Report is the q:report of a reply: the rendered report and how many rows it holds (journal
// records for an export, requests or summary rows for a report).
type Report struct {
	RequestMessageID string // the messageId of the request it answers
	Format           string
	Records          int
	Body             []byte // for xlsx, the workbook itself (decoded from its base64)
}

// DateLayout is how the date of a resolution is written (xs:date without a time zone).
const DateLayout = "2006-01-02"

// NewReportRequest builds an unsigned SendMessage envelope carrying q:reportQuery. Like NewRequest
// it does not validate q: ParseReportQuery on the broker is the authority.
func NewReportRequest(info siobroker.RequestInfo, q ReportQuery) *etree.Document {
	doc, data := newRequestData(info)
	qe := data.CreateElement(prefixQ + ":reportQuery")
	qe.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	qe.CreateAttr("Id", "id-rq-"+idPart(info.MessageID))
	optLeaf(qe, prefixQ+":kind", q.Kind)
	optLeaf(qe, prefixQ+":organisation", q.Organisation)
	optLeaf(qe, prefixQ+":erdrCode", q.ERDRCode)
	optLeaf(qe, prefixQ+":department", q.Department)
	optLeaf(qe, prefixQ+":userIin", q.UserIIN)
	leaf(qe, prefixQ+":from", siobroker.FormatTime(q.From))
	leaf(qe, prefixQ+":to", siobroker.FormatTime(q.To))
	if q.Basis != 0 {
		leaf(qe, prefixQ+":basis", strconv.Itoa(int(q.Basis)))
	}
	if q.Service != 0 {
		leaf(qe, prefixQ+":service", strconv.Itoa(q.Service))
	}
	optLeaf(qe, prefixQ+":outcome", q.Outcome)
	leaf(qe, prefixQ+":format", q.Format)
	return doc
}

// NewExportRequest builds an unsigned SendMessage envelope carrying q:exportQuery. If both
// UserIIN and Organisation are set, both are written, and ParseExportQuery refuses the request.
func NewExportRequest(info siobroker.RequestInfo, q ExportQuery) *etree.Document {
	doc, data := newRequestData(info)
	qe := data.CreateElement(prefixQ + ":exportQuery")
	qe.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	qe.CreateAttr("Id", "id-eq-"+idPart(info.MessageID))
	leaf(qe, prefixQ+":resolutionNo", q.ResolutionNo)
	date := ""
	if !q.ResolutionDate.IsZero() {
		date = q.ResolutionDate.Format(DateLayout)
	}
	leaf(qe, prefixQ+":resolutionDate", date)
	leaf(qe, prefixQ+":issuedBy", q.IssuedBy)
	de := qe.CreateElement(prefixQ + ":resolutionDocument")
	de.CreateAttr("fileName", q.Document.FileName)
	de.CreateAttr("mediaType", q.Document.MediaType)
	de.SetText(base64.StdEncoding.EncodeToString(q.Document.Content))
	optLeaf(qe, prefixQ+":userIin", q.UserIIN)
	optLeaf(qe, prefixQ+":organisation", q.Organisation)
	leaf(qe, prefixQ+":from", siobroker.FormatTime(q.From))
	leaf(qe, prefixQ+":to", siobroker.FormatTime(q.To))
	leaf(qe, prefixQ+":format", q.Format)
	return doc
}

// NewReportResponse builds an unsigned SendMessageResponse envelope around q:report, whose text is
// body. requestMessageId is info.CorrelationID, the messageId of the request answered: it is inside
// what an enveloped signature covers, so the client can bind the reply to its request.
func NewReportResponse(info ResponseInfo, format string, count int, body []byte) *etree.Document {
	doc, data := newResponseData(info)
	re := data.CreateElement(prefixQ + ":report")
	re.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	re.CreateAttr("Id", "id-rp-"+idPart(info.MessageID))
	re.CreateAttr("requestMessageId", info.CorrelationID)
	re.CreateAttr("format", format)
	re.CreateAttr("records", strconv.Itoa(count))
	if format == ReportXLSX {
		body = []byte(base64.StdEncoding.EncodeToString(body))
	}
	if len(body) > 0 {
		re.SetText(string(body))
	}
	return doc
}

// exportFormats are an export's; reportFormats a report's.
var (
	exportFormats = []string{ReportCSV, ReportJSON}
	reportFormats = []string{ReportCSV, ReportJSON, ReportXLSX}
	reportKinds   = []string{ReportRequests, ReportSummary}
)

// ParseReportQuery validates a q:reportQuery element against sio-query-v1.xsd and returns it. The
// element is the one a signature verifier returned (or the one SendMessageParts found in the
// signed Body). Beyond the XSD, to must be after from.
func ParseReportQuery(el *etree.Element) (ReportQuery, error) {
	var q ReportQuery
	const p = "reportQuery"
	if err := rootElement(el, p); err != nil {
		return q, err
	}
	s, err := querySeq(el, p, "kind", "organisation", "erdrCode", "department", "userIin", "from", "to", "basis", "service", "outcome", "format")
	if err != nil {
		return q, err
	}
	if q.Kind, err = optEnum(s, "kind", reportKinds); err != nil {
		return q, err
	}
	if q.Organisation, err = optText256(s, "organisation"); err != nil {
		return q, err
	}
	if q.ERDRCode, err = optText(s, "erdrCode", token64); err != nil {
		return q, err
	}
	if q.Department, err = optText256(s, "department"); err != nil {
		return q, err
	}
	if q.UserIIN, err = optTwelve(s, "userIin"); err != nil {
		return q, err
	}
	if q.From, q.To, err = period(s); err != nil {
		return q, err
	}
	basis, err := optInt(s, "basis", int(siobroker.FirstBasis), int(siobroker.LastLawBasis))
	if err != nil {
		return q, err
	}
	q.Basis = siobroker.Basis(basis)
	if q.Service, err = optInt(s, "service", siobroker.FirstService, siobroker.LastService); err != nil {
		return q, err
	}
	outcomes := make([]string, len(siobroker.RequestOutcomes))
	for i, o := range siobroker.RequestOutcomes {
		outcomes[i] = string(o)
	}
	if q.Outcome, err = optEnum(s, "outcome", outcomes); err != nil {
		return q, err
	}
	if q.Format, err = formatField(s, reportFormats); err != nil {
		return q, err
	}
	return q, s.end()
}

// optText reads an optional element's text and checks it with check.
func optText(s *seq, name string, check func(path, v string) error) (string, error) {
	e := s.opt(name)
	if e == nil {
		return "", nil
	}
	v, err := text(e, s.child(name))
	if err != nil {
		return "", err
	}
	return v, check(s.child(name), v)
}

// optEnum reads an optional element whose text is one of values.
func optEnum(s *seq, name string, values []string) (string, error) {
	return optText(s, name, func(path, v string) error {
		if !contains(values, v) {
			return siobroker.FieldError(path, "must be one of %s, got %q", strings.Join(values, ", "), v)
		}
		return nil
	})
}

// optInt reads an optional xs:int element within [min, max]; 0 when it is absent.
func optInt(s *seq, name string, min, max int) (int, error) {
	e := s.opt(name)
	if e == nil {
		return 0, nil
	}
	v, err := text(e, s.child(name))
	if err != nil {
		return 0, err
	}
	return xsInt(s.child(name), v, min, max)
}

// ParseExportQuery validates a q:exportQuery element against sio-query-v1.xsd and returns it.
// Beyond the XSD, to must be after from.
func ParseExportQuery(el *etree.Element) (ExportQuery, error) {
	var q ExportQuery
	const p = "exportQuery"
	if err := rootElement(el, p); err != nil {
		return q, err
	}
	s, err := querySeq(el, p, "resolutionNo", "resolutionDate", "issuedBy", "resolutionDocument", "userIin", "organisation", "from", "to", "format")
	if err != nil {
		return q, err
	}
	e, err := s.req("resolutionNo")
	if err != nil {
		return q, err
	}
	if q.ResolutionNo, err = text(e, p+"/resolutionNo"); err != nil {
		return q, err
	}
	if err := token64(p+"/resolutionNo", q.ResolutionNo); err != nil {
		return q, err
	}
	if e, err = s.req("resolutionDate"); err != nil {
		return q, err
	}
	v, err := text(e, p+"/resolutionDate")
	if err != nil {
		return q, err
	}
	if q.ResolutionDate, err = xsDate(p+"/resolutionDate", v); err != nil {
		return q, err
	}
	if e, err = s.req("issuedBy"); err != nil {
		return q, err
	}
	if q.IssuedBy, err = text(e, p+"/issuedBy"); err != nil {
		return q, err
	}
	if err := text256(p+"/issuedBy", q.IssuedBy); err != nil {
		return q, err
	}
	if e, err = s.req("resolutionDocument"); err != nil {
		return q, err
	}
	if q.Document, err = parseDocument(e, p+"/resolutionDocument"); err != nil {
		return q, err
	}
	// xs:choice of userIin and organisation: exactly one.
	if q.UserIIN, err = optTwelve(s, "userIin"); err != nil {
		return q, err
	}
	if q.UserIIN == "" {
		if q.Organisation, err = optText256(s, "organisation"); err != nil {
			return q, err
		}
		if q.Organisation == "" {
			if s.peekIs("from") || s.i >= len(s.kids) {
				return q, siobroker.FieldError(p+"/userIin", "is required: an export names either a user (userIin) or an organisation")
			}
			return q, s.misplaced(s.kids[s.i], "userIin")
		}
	} else if s.peekIs("organisation") {
		return q, siobroker.FieldError(p+"/organisation", "must not be given with userIin: an export names either a user or an organisation")
	}
	if q.From, q.To, err = period(s); err != nil {
		return q, err
	}
	if q.Format, err = formatField(s, exportFormats); err != nil {
		return q, err
	}
	return q, s.end()
}

// rootElement checks the name and attributes of q:reportQuery, q:exportQuery or q:report.
func rootElement(el *etree.Element, p string, attrs ...string) error {
	if el == nil {
		return siobroker.FieldError(p, "is required")
	}
	if el.Tag != p || el.NamespaceURI() != schemas.NSQuery {
		return siobroker.FieldError(p, "expected <%s xmlns=%q>, found %s", p, schemas.NSQuery, describe(el))
	}
	if err := checkAttrs(el, p, append([]string{"Id"}, attrs...)...); err != nil {
		return err
	}
	return idAttr(el, p)
}

func optText256(s *seq, name string) (string, error) { return optText(s, name, text256) }

func optTwelve(s *seq, name string) (string, error) { return optText(s, name, twelveDigits) }

// period reads from and to (tns:ZonedDateTime) and requires to after from.
func period(s *seq) (from, to time.Time, err error) {
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		e, err := s.req(f.name)
		if err != nil {
			return from, to, err
		}
		v, err := text(e, s.child(f.name))
		if err != nil {
			return from, to, err
		}
		if *f.dst, err = xsDateTime(s.child(f.name), v); err != nil {
			return from, to, err
		}
	}
	if !to.After(from) {
		return from, to, siobroker.FieldError(s.child("to"), "must be after from (%s), got %s", siobroker.FormatTime(from), siobroker.FormatTime(to))
	}
	return from, to, nil
}

func formatField(s *seq, formats []string) (string, error) {
	e, err := s.req("format")
	if err != nil {
		return "", err
	}
	v, err := text(e, s.child("format"))
	if err != nil {
		return "", err
	}
	if !contains(formats, v) {
		return "", siobroker.FieldError(s.child("format"), "must be %s, got %q", strings.Join(formats, " or "), v)
	}
	return v, nil
}

// reDate is tns:ResolutionDate: an xs:date without a time zone (a resolution is dated by the
// calendar, not by an instant).
var reDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

func xsDate(path, raw string) (time.Time, error) {
	s := collapse(raw)
	if reDate.MatchString(s) {
		if t, err := time.ParseInLocation(DateLayout, s, siobroker.Astana); err == nil {
			return t, nil
		}
	}
	return time.Time{}, siobroker.FieldError(path, "must be a date such as 2026-11-23, got %q", raw)
}

// ParseReportResponse reads a SendMessageResponse carrying q:report from a Body, validating
// responseInfo against the gateway XSD and q:report against sio-query-v1.xsd. A Body holding a
// soapenv:Fault gives the fault's error. The client calls it after verifying the reply's
// signature; in the enveloped placement only q:report is signed, and the client reads that with
// ParseReport from the verified element.
func ParseReportResponse(body *etree.Element) (ResponseInfo, Report, error) {
	info, data, err := responseParts(body)
	if err != nil {
		return info, Report{}, err
	}
	rep, err := ParseReport(data)
	return info, rep, err
}

// ParseReport validates and reads a q:report element on its own: the content an enveloped reply
// signature covers. Its text is everything but an enveloped ds:Signature, its first child.
func ParseReport(el *etree.Element) (Report, error) {
	var r Report
	const p = "report"
	if err := rootElement(el, p, "requestMessageId", "format", "records"); err != nil {
		return r, err
	}
	var b strings.Builder
	first := true
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Element:
			if first && t.Tag == "Signature" && t.NamespaceURI() == schemas.NSDSig {
				first = false
				continue
			}
			return r, siobroker.FieldError(p, "must hold text only (after an optional ds:Signature), found element %s", describe(t))
		}
	}
	attr := func(name string) (string, error) {
		a := el.SelectAttr(name)
		if a == nil {
			return "", siobroker.FieldError(p+"/@"+name, "is required")
		}
		return a.Value, nil
	}
	var err error
	if r.RequestMessageID, err = attr("requestMessageId"); err != nil {
		return r, err
	}
	if r.Format, err = attr("format"); err != nil {
		return r, err
	}
	if !contains(reportFormats, r.Format) {
		return r, siobroker.FieldError(p+"/@format", "must be %s, got %q", strings.Join(reportFormats, " or "), r.Format)
	}
	n, err := attr("records")
	if err != nil {
		return r, err
	}
	if r.Records, err = xsNonNegative(p+"/@records", n); err != nil {
		return r, err
	}
	r.Body = []byte(b.String())
	if r.Format == ReportXLSX {
		// The workbook travels as its base64 (xs:base64Binary allows whitespace between groups).
		if r.Body, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b.String()), "")); err != nil {
			return r, siobroker.FieldError(p, "an xlsx report must hold the workbook's base64: %v", err)
		}
	}
	return r, nil
}

var reNonNegative = regexp.MustCompile(`^\+?[0-9]+$`)

// xsNonNegative parses an xs:nonNegativeInteger that fits an int.
func xsNonNegative(path, raw string) (int, error) {
	s := collapse(raw)
	if reNonNegative.MatchString(s) {
		if n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 32); err == nil {
			return int(n), nil
		}
	}
	return 0, siobroker.FieldError(path, "must be a non-negative integer, got %q", raw)
}
