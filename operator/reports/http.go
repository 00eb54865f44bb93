package reports

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/replayguard"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/intake"
)

// Path is where Handler serves reports.
const Path = "/reports"

// MessageDateWindow is how far the messageDate of a signed report request may be from the
// broker's clock, either way.
const MessageDateWindow = 5 * time.Minute

// StatusReport is the responseInfo/status/code of a report reply.
const StatusReport = "SCSS001"

// Handler serves reports over HTTP at Path:
//
//   - POST: a SyncChannel SendMessage whose requestData/data holds q:reportQuery or q:exportQuery,
//     signed in either placement. The envelope is read under limits, its messageDate must be
//     within ±MessageDateWindow of clock, the signature is verified with verify, and the query is
//     read from the signed content only. A messageId or signed content seen before is refused
//     as a replay: the marks are kept in marks, the store the journal uses, so the refusal holds
//     after a restart and at every broker sharing that store. The answer is a SendMessageResponse with
//     q:report, signed with sign in the request's placement; every refusal is a SOAP fault.
//   - POST application/x-www-form-urlencoded with from, to, the other FormParams as wanted, and
//     csrf: a report (never an export) for the holder of the TLS client certificate the
//     connection was verified with, streamed as it is read (WriteReport), without a bound on its
//     rows. from and to are RFC 3339 with an offset; format is csv (the default), json or xlsx,
//     kind requests (the default) or summary. csrf must equal the cookie CSRFCookie (a double submit: another
//     site can make a browser post a form with its client certificate, but cannot set this
//     cookie), and a browser must not say the form came from another origin; else the answer is
//     403 SIO-REPORTS-CSRF, not journaled, since the caller did not ask for it. The answer is the
//     CSV, JSON or XLSX itself; a refusal is plain text "CODE: message" with a 4xx or 5xx status
//     and the code in the X-SIO-Error-Code header. Without a verified client certificate the
//     answer is 403 SIO-REPORTS-DENIED.
//   - GET [?from=&to=...]: changes nothing and journals nothing. With a verified client
//     certificate it answers an HTML form (the parameters prefilled from the query) that posts
//     the report with a new CSRF token, and sets CSRFCookie to it.
//
// Mount it with mux.Handle(reports.Path, h).
func (s *Service) Handler(verify func(ctx context.Context, doc *etree.Document, at time.Time) (*signing.Verified, error),
	sign func(doc *etree.Document, p signing.Placement) error, limits soap.Limits, clock siobroker.Clock,
	marks siobroker.ReplayMarks) http.Handler {
	h := &handler{svc: s, verify: verify, sign: sign, limits: limits.WithDefaults(), clock: clock,
		replay: replayguard.New(marks, "reports")}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, h.post)
	mux.HandleFunc("GET "+Path, h.form)
	mux.HandleFunc(Path, h.method)
	return mux
}

// method refuses every method but GET and POST.
func (h *handler) method(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, POST")
	plainError(w, siobroker.Errorf(siobroker.CodeMethod,
		"method %s is not allowed; POST a signed report request, or over TLS GET the report form and POST it", r.Method))
}

type handler struct {
	svc    *Service
	verify func(ctx context.Context, doc *etree.Document, at time.Time) (*signing.Verified, error)
	sign   func(doc *etree.Document, p signing.Placement) error
	limits soap.Limits
	clock  siobroker.Clock
	replay *replayguard.Guard
}

func (h *handler) post(w http.ResponseWriter, r *http.Request) {
	log := h.svc.logger
	if r.ContentLength > h.limits.MaxBytes {
		soap.WriteFault(w, siobroker.Errorf(siobroker.CodeOversize, "request of %d bytes exceeds the limit of %d bytes",
			r.ContentLength, h.limits.MaxBytes), h.clock.Now())
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		h.tlsReport(w, r)
		return
	}
	if err := soap.CheckMediaType(r.Header.Get("Content-Type")); err != nil {
		soap.WriteFault(w, err, h.clock.Now())
		return
	}
	out, err := h.serve(r.Context(), r)
	if err != nil {
		code := siobroker.ErrorCode(err)
		if code == siobroker.CodeInternal || code == siobroker.CodeUnavailable {
			log.ErrorContext(r.Context(), "report request failed", "code", string(code), "error", err)
		} else {
			log.InfoContext(r.Context(), "report request refused", "code", string(code), "reason", siobroker.ErrorMessage(err))
		}
		soap.WriteFault(w, err, h.clock.Now())
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/xml; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(out); err != nil {
		log.WarnContext(r.Context(), "report reply not delivered", "error", err)
	}
}

// serve reads, verifies and answers one signed report request, in the order of broker.Handle.
func (h *handler) serve(ctx context.Context, r *http.Request) ([]byte, error) {
	sr, err := intake.ReadSigned(ctx, r.Body, r.Header.Get("Content-Type"), h.limits, MessageDateWindow, h.clock, h.verify)
	if err != nil {
		return nil, err
	}
	info, data, v, raw, now := sr.Info, sr.Data, sr.Verified, sr.Raw, sr.Now
	// Replays are refused after verification (unsigned traffic cannot burn a sender's ids) and
	// are not journaled: a captured request must not be able to fill the permanent journal.
	if err := h.replay.Mark(ctx, v.SignerIIN, info.MessageID, v.Signed, now); err != nil {
		return nil, err
	}

	u := use{channel: "soap", requestID: uuid.NewString(), messageID: info.MessageID, signedRequest: raw}
	var action, format string
	var count int
	var body []byte
	switch {
	case data.Tag == "reportQuery":
		action = "report"
		q, perr := soap.ParseReportQuery(data)
		if perr != nil {
			return nil, h.svc.refuseUse(ctx, v.SignerIIN, action, u, perr)
		}
		format, count, body, err = h.svc.reportBytes(ctx, v.SignerIIN, q, u)
	case data.Tag == "exportQuery":
		q, perr := soap.ParseExportQuery(data)
		if perr != nil {
			return nil, h.svc.refuseUse(ctx, v.SignerIIN, actionExportRequest, u, perr)
		}
		st, err := h.svc.requestExport(ctx, v.SignerIIN, q, u)
		if err != nil {
			return nil, err
		}
		return h.signStatus(info, u, st, v.Placement)
	case data.Tag == "exportFetch":
		q, perr := soap.ParseExportFetch(data)
		if perr != nil {
			return nil, h.svc.refuseUse(ctx, v.SignerIIN, actionExportFetch, u, perr)
		}
		var st soap.ExportStatus
		st, format, count, body, err = h.svc.fetchExport(ctx, v.SignerIIN, q.ExportID, u)
		if err != nil {
			return nil, err
		}
		if st.Status != soap.ExportApproved {
			return h.signStatus(info, u, st, v.Placement)
		}
		action = "export " + q.ExportID
	default:
		return nil, h.svc.refuseUse(ctx, v.SignerIIN, "unknown", u, siobroker.FieldError("requestData/data",
			"must hold q:reportQuery, q:exportQuery or q:exportFetch of namespace urn:kz:sio-pso:broker:v1, found <%s>", data.Tag))
	}
	if err != nil {
		return nil, err
	}
	reply := soap.NewReportResponse(soap.ResponseInfo{
		MessageID: u.requestID, CorrelationID: info.MessageID, ResponseDate: h.clock.Now(), SessionID: info.SessionID,
		StatusCode: StatusReport, StatusMessage: fmt.Sprintf("%s of %d journal records", action, count),
	}, format, count, body)
	if err := h.sign(reply, v.Placement); err != nil {
		return nil, fmt.Errorf("reports: sign reply %s: %w", u.requestID, err)
	}
	return soap.Serialize(reply)
}

// signStatus answers q:exportStatus st, signed in placement p.
func (h *handler) signStatus(info siobroker.RequestInfo, u use, st soap.ExportStatus, p signing.Placement) ([]byte, error) {
	msg := "export request " + st.ExportID + " is " + st.Status
	reply := soap.NewExportStatusResponse(soap.ResponseInfo{
		MessageID: u.requestID, CorrelationID: info.MessageID, ResponseDate: h.clock.Now(), SessionID: info.SessionID,
		StatusCode: StatusReport, StatusMessage: msg,
	}, st)
	if err := h.sign(reply, p); err != nil {
		return nil, fmt.Errorf("reports: sign reply %s: %w", u.requestID, err)
	}
	return soap.Serialize(reply)
}

// refuseUse journals a use refused before it reached Report or Export (its query did not parse).
func (s *Service) refuseUse(ctx context.Context, callerIIN, action string, u use, err error) error {
	return s.refuse(ctx, s.record(callerIIN, 0, u), useDetails{Action: action, Channel: u.channel, SignedRequest: u.signedRequest}, err)
}

// CSRFCookie holds the CSRF token of the report form (a double submit): the form's csrf field
// must equal it.
const CSRFCookie = "sio_reports_csrf"

// maxFormBody bounds the form of a report by client certificate.
const maxFormBody = 16 << 10

// clientIIN returns the IIN of the verified TLS client certificate of r, checked with
// VerifyClientCert; the error is what to answer.
func (h *handler) clientIIN(r *http.Request, now time.Time) (string, error) {
	ctx := r.Context()
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		h.svc.logger.InfoContext(ctx, "report refused: no verified TLS client certificate", "remote", r.RemoteAddr)
		return "", siobroker.Errorf(CodeReportsDenied,
			"a report by form needs a TLS client certificate issued under the trusted roots; or POST a signed report request")
	}
	chain := r.TLS.VerifiedChains[0]
	leaf := chain[0]
	if check := h.svc.cfg.VerifyClientCert; check != nil {
		var intermediates []*x509.Certificate
		if len(chain) > 2 {
			intermediates = chain[1 : len(chain)-1]
		}
		if err := check(leaf, intermediates, now); err != nil {
			h.svc.logger.InfoContext(ctx, "report refused: client certificate", "subject", leaf.Subject.String(), "error", err)
			return "", err
		}
	}
	iin, err := signing.SubjectIIN(leaf)
	if err != nil {
		h.svc.logger.InfoContext(ctx, "report refused: client certificate without an IIN", "subject", leaf.Subject.String())
		return "", err
	}
	return iin, nil
}

var formTemplate = template.Must(template.New("form").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>СИО ПСО: a report</title></head>
<body><main><h1>СИО ПСО: a report of the journal</h1>
<form id="report" method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<p><label>from <input name="from" value="{{.from}}" required></label>
<label>to <input name="to" value="{{.to}}" required></label> (RFC 3339 with an offset)</p>
<p><label>kind <input name="kind" value="{{.kind}}"></label> (requests or summary)
<label>ЕРДР code <input name="erdr_code" value="{{.erdr_code}}"></label>
<label>department <input name="department" value="{{.department}}"></label>
<label>user <input name="user" value="{{.user}}"></label></p>
<p><label>basis <input name="basis" value="{{.basis}}"></label>
<label>service <input name="service" value="{{.service}}"></label>
<label>outcome <input name="outcome" value="{{.outcome}}"></label>
<label>format <input name="format" value="{{.format}}"></label> (csv, json or xlsx)</p>
<button type="submit" id="report-button">Report</button>
</form></main></body></html>
`))

// form answers a GET: the form that posts a report by client certificate, with a new CSRF token
// in it and in CSRFCookie. It changes nothing and journals nothing: a report is delivered, and
// journaled, only by the form's POST.
func (h *handler) form(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		h.method(w, r)
		return
	}
	if _, err := h.clientIIN(r, h.clock.Now()); err != nil {
		plainError(w, err)
		return
	}
	q := r.URL.Query()
	tok := rand.Text()
	var b strings.Builder
	fields := map[string]string{"Action": Path, "CSRF": tok}
	for _, p := range FormParams {
		fields[p] = q.Get(p)
	}
	if err := formTemplate.Execute(&b, fields); err != nil {
		plainError(w, fmt.Errorf("reports: the report form: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: tok, Path: Path, HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	// Same-origin: the form's POST then carries the broker's own origin, not "null".
	hdr.Set("Referrer-Policy", "same-origin")
	_, _ = w.Write([]byte(b.String()))
}

// checkCSRF refuses a form that a browser says came from another origin, or whose csrf field does
// not equal CSRFCookie.
func checkCSRF(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return siobroker.Errorf(CodeReportsCSRF, "a report form must come from the broker's own page, not from %s", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return siobroker.Errorf(CodeReportsCSRF, "a report form must come from the broker's own origin, not %q", origin)
		}
	}
	c, err := r.Cookie(CSRFCookie)
	token := r.PostForm.Get("csrf")
	if err != nil || c.Value == "" || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(c.Value)) != 1 {
		return siobroker.Errorf(CodeReportsCSRF,
			"the csrf field is missing or does not match the cookie %s: GET %s for the form, or send both with the same value", CSRFCookie, Path)
	}
	return nil
}

// tlsReport answers the POST of the report form by the holder of the client certificate.
func (h *handler) tlsReport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.clock.Now()
	iin, err := h.clientIIN(r, now)
	if err != nil {
		plainError(w, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		plainError(w, siobroker.FieldError("form", "cannot be read: %v", err))
		return
	}
	if err := checkCSRF(r); err != nil {
		h.svc.logger.InfoContext(ctx, "report refused", "signer_iin", iin, "code", string(siobroker.ErrorCode(err)), "reason", siobroker.ErrorMessage(err))
		plainError(w, err)
		return
	}
	params := url.Values{}
	for k, v := range r.PostForm {
		if k != "csrf" {
			params[k] = v
		}
	}
	q, err := ParseForm(params)
	if err != nil {
		plainError(w, h.svc.refuseUse(ctx, iin, "report", use{channel: "tls", requestID: uuid.NewString()}, err))
		return
	}
	WriteReport(w, r, h.svc, iin, "tls", q)
}

// WriteReport answers an HTTP request with the report q of callerIIN, streamed
// (Service.StreamReport): a refusal is plain text "CODE: message" with its status and the code in
// X-SIO-Error-Code; an allowed report is the CSV, JSON or XLSX with its row count in
// X-SIO-Records and the use's id in X-SIO-Request-Id, written as it is read. A report that cannot
// be written whole after that is cut short (the connection is aborted), so that the client sees
// it incomplete rather than ended. The dashboard answers with it too.
func WriteReport(w http.ResponseWriter, r *http.Request, svc *Service, callerIIN, channel string, q soap.ReportQuery) {
	ctx := r.Context()
	opened := false
	_, err := svc.StreamReport(ctx, callerIIN, channel, q, func(format string, count int, requestID string) (io.Writer, error) {
		hdr := w.Header()
		hdr.Set("Content-Type", contentType(format))
		if format != soap.ReportJSON {
			// A file to keep: a browser saves it rather than showing it in place of the page.
			hdr.Set("Content-Disposition", `attachment; filename="`+reportFileName(q)+`"`)
		}
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-SIO-Records", strconv.Itoa(count))
		hdr.Set("X-SIO-Request-Id", requestID)
		w.WriteHeader(http.StatusOK)
		opened = true
		return &extendingWriter{w: w, rc: http.NewResponseController(w)}, nil
	})
	switch {
	case err != nil && !opened:
		plainError(w, err)
	case err != nil:
		svc.logger.WarnContext(ctx, "report cut short", "error", err)
		panic(http.ErrAbortHandler)
	}
}

// contentType is the media type of a report in format.
func contentType(format string) string {
	switch format {
	case soap.ReportJSON:
		return "application/json; charset=utf-8"
	case soap.ReportXLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8; header=present"
}

// reportFileName names a report's download by its kind and period.
func reportFileName(q soap.ReportQuery) string {
	kind := q.Kind
	if kind == "" {
		kind = soap.ReportRequests
	}
	return fmt.Sprintf("sio-%s-%s-%s.%s", kind, q.From.In(siobroker.Astana).Format("20060102"), q.To.In(siobroker.Astana).Format("20060102"), q.Format)
}

// streamWriteWindow is how long a streamed report's next write may take. The server's write
// timeout bounds a whole answer, which suits a SOAP reply but not a report of a year being read
// and written for minutes: each write moves the deadline on instead, so a client that stops
// reading is still let go.
const streamWriteWindow = 2 * time.Minute

// extendingWriter moves the connection's write deadline on as a streamed report is written.
type extendingWriter struct {
	w        io.Writer
	rc       *http.ResponseController
	extended time.Time
}

func (e *extendingWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(e.extended) > time.Second {
		// Not every ResponseWriter can (a test recorder): the server's timeout then stands.
		_ = e.rc.SetWriteDeadline(now.Add(streamWriteWindow))
		e.extended = now
	}
	return e.w.Write(p)
}

// FormParams are the parameters of a report by form (and from the dashboard). Any other is
// refused: a misspelt filter must not silently widen a report. An empty one does not filter.
var FormParams = []string{"kind", "from", "to", "organisation", "erdr_code", "department", "user", "basis", "service", "outcome", "format"}

// ParseForm reads the parameters of a report by form: from and to are RFC 3339 with an offset,
// format defaults to csv and kind to requests. Errors name the field as the XML query does.
func ParseForm(v url.Values) (soap.ReportQuery, error) {
	q := soap.ReportQuery{Format: soap.ReportCSV, Kind: soap.ReportRequests}
	const p = "reportQuery"
	for k, vs := range v {
		if !contains(FormParams, k) {
			return q, siobroker.FieldError(k, "unknown parameter; the parameters are %s", strings.Join(FormParams, ", "))
		}
		if len(vs) != 1 {
			return q, siobroker.FieldError(k, "may be given once")
		}
	}
	var err error
	if q.From, err = rfc3339(v, "from", p+"/from"); err != nil {
		return q, err
	}
	if q.To, err = rfc3339(v, "to", p+"/to"); err != nil {
		return q, err
	}
	q.Organisation, q.ERDRCode, q.Department = v.Get("organisation"), v.Get("erdr_code"), v.Get("department")
	q.UserIIN, q.Outcome = v.Get("user"), v.Get("outcome")
	if s := v.Get("service"); s != "" {
		if q.Service, err = strconv.Atoi(s); err != nil || q.Service < siobroker.FirstService || q.Service > siobroker.LastService {
			return q, siobroker.FieldError(p+"/service", "must be an integer from %d to %d, got %q", siobroker.FirstService, siobroker.LastService, s)
		}
	}
	if s := v.Get("basis"); s != "" {
		b, err := strconv.Atoi(s)
		if q.Basis = siobroker.Basis(b); err != nil || !q.Basis.Known() {
			return q, siobroker.FieldError(p+"/basis", "must be an integer from %d to %d, got %q", siobroker.FirstBasis, siobroker.LastLawBasis, s)
		}
	}
	if f := v.Get("format"); f != "" {
		q.Format = f
	}
	if k := v.Get("kind"); k != "" {
		q.Kind = k
	}
	return q, checkReportQuery(q)
}

func rfc3339(v url.Values, name, path string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, siobroker.FieldError(path, "is required (RFC 3339 with an offset, e.g. 2026-11-01T00:00:00+05:00)")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, siobroker.FieldError(path, "must be RFC 3339 with an offset, e.g. 2026-11-01T00:00:00+05:00, got %q", s)
	}
	return t, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// plainError answers a report by form with "CODE: message" as plain text, with the code's HTTP status.
func plainError(w http.ResponseWriter, err error) {
	code := siobroker.ErrorCode(err)
	status := siobroker.HTTPStatus(code)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-SIO-Error-Code", string(code))
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "%s: %s\n", code, siobroker.ErrorMessage(err))
}
