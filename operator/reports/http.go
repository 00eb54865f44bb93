package reports

import (
	"context"
	"crypto/x509"
	"fmt"
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
//   - GET ?from=&to=[&organisation=][&user=][&service=][&format=csv|json]: a report (never an
//     export) for the holder of the TLS client certificate the connection was verified with. from
//     and to are RFC 3339 with an offset; format defaults to csv. The answer is the CSV or JSON
//     itself; a refusal is plain text "CODE: message" with a 4xx or 5xx status and the code in
//     the X-SIO-Error-Code header. Without a verified client certificate the answer is 403
//     SIO-REPORTS-DENIED.
//
// Mount it with mux.Handle(reports.Path, h).
func (s *Service) Handler(verify func(ctx context.Context, doc *etree.Document, at time.Time) (*signing.Verified, error),
	sign func(doc *etree.Document, p signing.Placement) error, limits soap.Limits, clock siobroker.Clock,
	marks siobroker.ReplayMarks) http.Handler {
	h := &handler{svc: s, verify: verify, sign: sign, limits: limits.WithDefaults(), clock: clock,
		replay: replayguard.New(marks, "reports")}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, h.post)
	mux.HandleFunc("GET "+Path, h.get)
	mux.HandleFunc(Path, h.method)
	return mux
}

// method refuses every method but GET and POST.
func (h *handler) method(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, POST")
	plainError(w, siobroker.Errorf(siobroker.CodeMethod,
		"method %s is not allowed; POST a signed report request, or GET a report over TLS", r.Method))
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
		format, count, body, err = h.svc.report(ctx, v.SignerIIN, q, u)
	case data.Tag == "exportQuery":
		action = "export"
		q, perr := soap.ParseExportQuery(data)
		if perr != nil {
			return nil, h.svc.refuseUse(ctx, v.SignerIIN, action, u, perr)
		}
		format, count, body, err = h.svc.export(ctx, v.SignerIIN, q, u)
	default:
		return nil, h.svc.refuseUse(ctx, v.SignerIIN, "unknown", u, siobroker.FieldError("requestData/data",
			"must hold q:reportQuery or q:exportQuery of namespace urn:kz:sio-pso:broker:v1, found <%s>", data.Tag))
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

// refuseUse journals a use refused before it reached Report or Export (its query did not parse).
func (s *Service) refuseUse(ctx context.Context, callerIIN, action string, u use, err error) error {
	return s.refuse(ctx, s.record(callerIIN, 0, u), useDetails{Action: action, Channel: u.channel, SignedRequest: u.signedRequest}, err)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		// HEAD would run a report, and journal it as delivered, without delivering it.
		h.method(w, r)
		return
	}
	ctx := r.Context()
	now := h.clock.Now()
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		h.svc.logger.InfoContext(ctx, "report refused: no verified TLS client certificate", "remote", r.RemoteAddr)
		plainError(w, siobroker.Errorf(CodeReportsDenied,
			"a report by GET needs a TLS client certificate issued under the trusted roots; or POST a signed report request"))
		return
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
			plainError(w, err)
			return
		}
	}
	iin, err := signing.SubjectIIN(leaf)
	if err != nil {
		h.svc.logger.InfoContext(ctx, "report refused: client certificate without an IIN", "subject", leaf.Subject.String())
		plainError(w, err)
		return
	}
	u := use{channel: "tls", requestID: uuid.NewString()}
	q, err := parseGetQuery(r.URL.Query())
	if err != nil {
		plainError(w, h.svc.refuseUse(ctx, iin, "report", u, err))
		return
	}
	format, count, body, err := h.svc.report(ctx, iin, q, u)
	if err != nil {
		plainError(w, err)
		return
	}
	hdr := w.Header()
	if format == soap.ReportJSON {
		hdr.Set("Content-Type", "application/json; charset=utf-8")
	} else {
		hdr.Set("Content-Type", "text/csv; charset=utf-8; header=present")
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-SIO-Records", strconv.Itoa(count))
	hdr.Set("X-SIO-Request-Id", u.requestID)
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		h.svc.logger.WarnContext(ctx, "report not delivered", "error", err)
	}
}

// getParams are the parameters GET accepts. Any other is refused: a misspelt filter must not
// silently widen a report.
var getParams = []string{"from", "to", "organisation", "user", "service", "format"}

// parseGetQuery reads the parameters of a GET report. Errors name the field as the XML query does.
func parseGetQuery(v url.Values) (soap.ReportQuery, error) {
	q := soap.ReportQuery{Format: soap.ReportCSV}
	const p = "reportQuery"
	for k, vs := range v {
		if !contains(getParams, k) {
			return q, siobroker.FieldError(k, "unknown parameter; the parameters are %s", strings.Join(getParams, ", "))
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
	q.Organisation = v.Get("organisation")
	q.UserIIN = v.Get("user")
	if s := v.Get("service"); s != "" {
		if q.Service, err = strconv.Atoi(s); err != nil || q.Service < siobroker.FirstService || q.Service > siobroker.LastService {
			return q, siobroker.FieldError(p+"/service", "must be an integer from %d to %d, got %q", siobroker.FirstService, siobroker.LastService, s)
		}
	}
	if f := v.Get("format"); f != "" {
		q.Format = f
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

// plainError answers a GET with "CODE: message" as plain text, with the code's HTTP status.
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
