package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// Exit codes of reports, as of send.
const (
	reportsExitOK    = 0
	reportsExitFault = 1 // the broker answered with a SOAP fault
	reportsExitUsage = 2
	reportsExitError = 3 // no valid answer: network, or a reply that does not verify
	reportsExitWait  = 4 // reports fetch: the export request is pending, or was refused
)

const reportsUsage = `usage:
  siobroker reports [flags] --from RFC3339 --to RFC3339
      a report (§9–10 of the Rules) for holders of the reports right: your organisation's
      requests, each with its basis, case, subject, services, outcome, signer, department and
      time (--kind requests), or their monthly summary per organisation and department (--kind
      summary); --format xlsx writes the workbook (redirect stdout to a file)
  siobroker reports export [flags] --resolution-no X --resolution-date YYYY-MM-DD
      --resolution-by NAME --resolution-file FILE [--resolution-type MEDIA-TYPE]
      (--user-iin IIN | --organisation X) --from RFC3339 --to RFC3339
      the prosecutor's request for an export (§51–53) under the resolution attached: the broker
      answers with its id, pending; the operator approves or refuses it (siobroker exports)
  siobroker reports fetch [flags] --export-id ID
      the export asked for, once approved, with the raw request and reply XML; until then its
      status (pending, or refused with the operator's reason)

The request is signed with --cert/--key (or a demo --user), posted to --url, and the reply's
signature is verified against --ca before the CSV or JSON is written to stdout; an export
request's id and status go to stdout as "ID STATUS".
Exit status: 0 report written (or export requested), 1 SOAP fault, 2 usage error, 3 any other
failure, 4 (fetch) the export is pending or was refused.
`

type reportsFlags struct {
	url, cert, key, user, pki, placement string
	roots, crls, sender                  string
	from, to, organisation, userIIN      string
	kind, erdrCode, department, outcome  string
	service, basis                       int
	format                               string
	resolutionNo, resolutionDate         string
	resolutionBy, resolutionFile         string
	resolutionType, exportID             string
	saveRequest, saveReply               string
	timeout                              time.Duration
	maxReply                             int64
}

// The subcommands of reports.
const (
	reportsRun    = ""
	reportsExport = "export"
	reportsFetch  = "fetch"
)

func (f *reportsFlags) register(fs *cmdFlags, sub string) {
	export := sub == reportsExport
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080/reports", "the broker's reports endpoint")
	fs.StringVar(&f.cert, "cert", "", "your certificate (PEM)")
	fs.StringVar(&f.key, "key", "", "your private key (PEM)")
	fs.StringVar(&f.user, "user", "", "a demo user's IIN: takes --cert and --key from the development PKI's demo.json")
	fs.StringVar(&f.pki, "pki", "data/pki", "the development PKI directory, for --user and the default --ca/--crl")
	fs.StringVar(&f.roots, "ca", "", "trusted root(s) for the reply's signature, comma-separated PEM files (default PKI/ca.pem)")
	fs.StringVar(&f.crls, "crl", "", "CRL file(s), comma-separated (default PKI/crl.pem if present)")
	fs.StringVar(&f.placement, "placement", "wsse", "signature placement: wsse, wsse-token, wsse-token-ts or enveloped")
	if sub == reportsFetch {
		fs.StringVar(&f.exportID, "export-id", "", "the id of the export request, as reports export printed it (required)")
	} else {
		fs.StringVar(&f.from, "from", "", "start of the period, RFC 3339 with an offset, e.g. 2026-11-01T00:00:00+05:00 (required)")
		fs.StringVar(&f.to, "to", "", "end of the period (exclusive), RFC 3339 with an offset (required)")
		fs.StringVar(&f.userIIN, "user-iin", "", "only the requests of this user (12 digits)")
	}
	if export {
		fs.StringVar(&f.organisation, "organisation", "", "the organisation whose requests are exported (or --user-iin)")
		fs.StringVar(&f.format, "format", "csv", "csv or json")
	}
	if sub == reportsRun {
		fs.StringVar(&f.format, "format", "csv", "csv, json or xlsx")
		fs.StringVar(&f.kind, "kind", soap.ReportRequests, "requests (every request) or summary (per month, organisation and department)")
		fs.StringVar(&f.organisation, "organisation", "", "your organisation's name (only your own may be named); another organisation is chosen by --erdr-code")
		fs.StringVar(&f.erdrCode, "erdr-code", "", "the organisation by its ЕРДР code: your own (the default), or, for an oversight role (reports.oversight_roles), any")
		fs.StringVar(&f.department, "department", "", "only the requests of users of this department (as in the user registry)")
		fs.IntVar(&f.basis, "basis", 0, "only the requests under this basis (1-6)")
		fs.IntVar(&f.service, "service", 0, "only the requests that asked for this service (1-93)")
		fs.StringVar(&f.outcome, "outcome", "", "only the requests with this outcome: answered, partial, denied, failed, refused or pending")
	}
	if export {
		fs.StringVar(&f.resolutionNo, "resolution-no", "", "the number of the prosecutor's resolution (постановление) the export is made under (required)")
		fs.StringVar(&f.resolutionDate, "resolution-date", "", "the date of the resolution, YYYY-MM-DD (required)")
		fs.StringVar(&f.resolutionBy, "resolution-by", "", "the prosecutor who issued the resolution: name and office (required)")
		fs.StringVar(&f.resolutionFile, "resolution-file", "", "the resolution itself, e.g. a signed PDF, which the operator checks (required)")
		fs.StringVar(&f.resolutionType, "resolution-type", "", "its media type (default: by its extension, else application/octet-stream)")
	}
	fs.StringVar(&f.sender, "sender", "SIO_PSO_CLIENT", "requestInfo/sender/senderId")
	fs.StringVar(&f.saveRequest, "save-request", "", "write the exact bytes sent to FILE")
	fs.StringVar(&f.saveReply, "save-reply", "", "write the exact bytes received to FILE")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up waiting for the reply after this long")
	fs.Int64Var(&f.maxReply, "max-reply", 1<<30, "the largest reply accepted, in bytes")
}

// builder returns what builds the request, a report's, an export request's or a fetch's, from the
// flags.
func (f *reportsFlags) builder(sub string) (func(siobroker.RequestInfo) *etree.Document, error) {
	switch sub {
	case reportsExport:
		q, err := f.exportQuery()
		if err != nil {
			return nil, err
		}
		return func(info siobroker.RequestInfo) *etree.Document { return soap.NewExportRequest(info, q) }, nil
	case reportsFetch:
		if f.exportID == "" {
			return nil, errors.New("--export-id is required")
		}
		q := soap.ExportFetch{ExportID: f.exportID}
		return func(info siobroker.RequestInfo) *etree.Document { return soap.NewExportFetchRequest(info, q) }, nil
	}
	q, err := f.reportQuery()
	if err != nil {
		return nil, err
	}
	return func(info siobroker.RequestInfo) *etree.Document { return soap.NewReportRequest(info, q) }, nil
}

func cmdReports(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, name := reportsRun, "reports"
	if len(args) > 0 && (args[0] == reportsExport || args[0] == reportsFetch) {
		sub, name, args = args[0], "reports "+args[0], args[1:]
	}
	fs := newFlags(name, reportsUsage, stdout, stderr)
	var f reportsFlags
	f.register(fs, sub)
	if code, ok := fs.parseNoArgs(args); !ok {
		return code
	}
	build, err := f.builder(sub)
	if err != nil {
		return fs.usageError("%v", err)
	}
	signer, verifier, placement, err := f.keys()
	if err != nil {
		return fs.usageError("%v", err)
	}
	info := siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "SIO_PSO_REPORTS", SenderID: f.sender,
		MessageDate: siobroker.SystemClock{}.Now()}
	doc := build(info)
	if err := signer.Sign(doc, placement); err != nil {
		return fs.fail(reportsExitError, "sign the request: %v", err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		return fs.fail(reportsExitError, "serialize the request: %v", err)
	}
	if f.saveRequest != "" {
		if err := os.WriteFile(f.saveRequest, raw, 0o600); err != nil {
			return fs.fail(reportsExitError, "save the request: %v", err)
		}
	}
	return f.exchange(ctx, fs, raw, verifier, placement, info.MessageID)
}

// exchange posts the signed request, verifies the reply and writes the report to stdout.
func (f *reportsFlags) exchange(ctx context.Context, fs *cmdFlags, raw []byte, verifier *signing.Verifier, placement signing.Placement, messageID string) int {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	reply, status, err := reportsPost(ctx, f.url, raw, f.maxReply)
	if reply != nil && f.saveReply != "" {
		if err := os.WriteFile(f.saveReply, reply, 0o600); err != nil {
			return fs.fail(reportsExitError, "save the reply: %v", err)
		}
	}
	if err != nil {
		return fs.fail(reportsExitError, "%v", err)
	}
	if fault, ok := soap.ParseFault(reply); ok {
		msg := fmt.Sprintf("fault %s: %s", fault.Code, fault.Message)
		if fault.Field != "" {
			msg += " (" + fault.Field + ")"
		}
		return fs.fail(reportsExitFault, "%s", msg)
	}
	if status != http.StatusOK {
		return fs.fail(reportsExitError, "the broker answered HTTP %d without a SOAP fault", status)
	}
	signed, signerCN, err := reportsVerify(reply, verifier, placement, messageID)
	if err != nil {
		return fs.fail(reportsExitError, "%v", err)
	}
	if st := selfOrDescendant(signed, "exportStatus"); st != nil {
		return f.status(fs, st, placement, signerCN, messageID)
	}
	rep, err := soap.ParseReport(selfOrDescendant(signed, "report"))
	if err == nil && rep.RequestMessageID != messageID {
		err = fmt.Errorf("the report answers message %q, not this request %q", rep.RequestMessageID, messageID)
	}
	if err != nil {
		return fs.fail(reportsExitError, "the signed reply: %v", err)
	}
	if f.format != "" && rep.Format != f.format {
		return fs.fail(reportsExitError, "the reply is in %s, %s was asked for", rep.Format, f.format)
	}
	if _, err := fs.stdout.Write(rep.Body); err != nil {
		return fs.fail(reportsExitError, "write the report: %v", err)
	}
	fmt.Fprintf(fs.stderr, "%s; reply signature verified (%s placement), signed by %q\n", plural(rep.Records, "row"), placement, signerCN)
	return reportsExitOK
}

// status writes the export request's id and status, el its signed q:exportStatus: an export
// request's answer (exit 0), or a fetch's while the export is not approved (exit 4).
func (f *reportsFlags) status(fs *cmdFlags, el *etree.Element, placement signing.Placement, signerCN, messageID string) int {
	st, err := soap.ParseExportStatus(el)
	if err == nil && st.RequestMessageID != messageID {
		err = fmt.Errorf("the status answers message %q, not this request %q", st.RequestMessageID, messageID)
	}
	if err != nil {
		return fs.fail(reportsExitError, "the signed reply: %v", err)
	}
	fmt.Fprintf(fs.stdout, "%s %s\n", st.ExportID, st.Status)
	if st.Reason != "" {
		fmt.Fprintf(fs.stderr, "the operator's reason: %s\n", st.Reason)
	}
	fmt.Fprintf(fs.stderr, "reply signature verified (%s placement), signed by %q\n", placement, signerCN)
	if f.exportID != "" {
		return reportsExitWait
	}
	return reportsExitOK
}

func (f *reportsFlags) period() (from, to time.Time, err error) {
	if f.from == "" || f.to == "" {
		return from, to, errors.New("--from and --to are required (RFC 3339 with an offset, e.g. 2026-11-01T00:00:00+05:00)")
	}
	if from, err = time.Parse(time.RFC3339Nano, f.from); err != nil {
		return from, to, fmt.Errorf("--from: %q is not RFC 3339 with an offset", f.from)
	}
	if to, err = time.Parse(time.RFC3339Nano, f.to); err != nil {
		return from, to, fmt.Errorf("--to: %q is not RFC 3339 with an offset", f.to)
	}
	if !to.After(from) {
		return from, to, errors.New("--to must be after --from")
	}
	return from, to, nil
}

func (f *reportsFlags) checkCommon(formats ...string) error {
	if !slices.Contains(formats, f.format) {
		return fmt.Errorf("--format must be %s", strings.Join(formats, " or "))
	}
	if f.userIIN != "" && siobroker.ValidateIIN(f.userIIN) != nil {
		return fmt.Errorf("--user-iin %q is not a valid IIN", f.userIIN)
	}
	return nil
}

func (f *reportsFlags) reportQuery() (soap.ReportQuery, error) {
	from, to, err := f.period()
	if err != nil {
		return soap.ReportQuery{}, err
	}
	if err := f.checkCommon(soap.ReportCSV, soap.ReportJSON, soap.ReportXLSX); err != nil {
		return soap.ReportQuery{}, err
	}
	switch {
	case f.service != 0 && (f.service < siobroker.FirstService || f.service > siobroker.LastService):
		return soap.ReportQuery{}, errors.New("--service must be 1 to 93")
	case f.basis != 0 && !siobroker.Basis(f.basis).Valid():
		return soap.ReportQuery{}, errors.New("--basis must be 1 to 6")
	case f.kind != soap.ReportRequests && f.kind != soap.ReportSummary:
		return soap.ReportQuery{}, errors.New("--kind must be requests or summary")
	case f.outcome != "" && !siobroker.RequestOutcome(f.outcome).Valid():
		return soap.ReportQuery{}, errors.New("--outcome must be answered, partial, denied, failed, refused or pending")
	}
	return soap.ReportQuery{Kind: f.kind, Organisation: f.organisation, ERDRCode: f.erdrCode, Department: f.department,
		UserIIN: f.userIIN, From: from, To: to, Basis: siobroker.Basis(f.basis), Service: f.service, Outcome: f.outcome,
		Format: f.format}, nil
}

func (f *reportsFlags) exportQuery() (soap.ExportQuery, error) {
	var q soap.ExportQuery
	if f.resolutionNo == "" {
		return q, errors.New("--resolution-no is required: an export is made under a prosecutor's resolution (§51 of the Rules)")
	}
	date, err := time.ParseInLocation(soap.DateLayout, f.resolutionDate, siobroker.Astana)
	if err != nil {
		return q, errors.New("--resolution-date is required, as YYYY-MM-DD")
	}
	if (f.userIIN == "") == (f.organisation == "") {
		return q, errors.New("give exactly one of --user-iin and --organisation")
	}
	from, to, err := f.period()
	if err != nil {
		return q, err
	}
	if err := f.checkCommon(soap.ReportCSV, soap.ReportJSON); err != nil {
		return q, err
	}
	if f.resolutionBy == "" {
		return q, errors.New("--resolution-by is required: the prosecutor who issued the resolution")
	}
	if f.resolutionFile == "" {
		return q, errors.New("--resolution-file is required: the operator checks the resolution before approving the export (§52)")
	}
	content, err := os.ReadFile(f.resolutionFile)
	if err != nil {
		return q, fmt.Errorf("--resolution-file: %w", err)
	}
	mediaType := f.resolutionType
	if mediaType == "" {
		if mediaType = mime.TypeByExtension(filepath.Ext(f.resolutionFile)); mediaType == "" {
			mediaType = "application/octet-stream"
		}
	}
	doc := soap.Document{FileName: filepath.Base(f.resolutionFile), MediaType: mediaType, Content: content}
	return soap.ExportQuery{ResolutionNo: f.resolutionNo, ResolutionDate: date, IssuedBy: f.resolutionBy, Document: doc,
		UserIIN: f.userIIN, Organisation: f.organisation, From: from, To: to, Format: f.format}, nil
}

// keys loads the signing key, as send does, and the verifier of the broker's reply.
func (f *reportsFlags) keys() (*signing.Signer, *signing.Verifier, signing.Placement, error) {
	return loadCredentials(f.user, f.pki, f.cert, f.key, f.roots, f.crls, f.placement)
}

// reportsPost posts a signed request and reads at most limit bytes of the reply.
func reportsPost(ctx context.Context, url string, raw []byte, limit int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return nil, 0, fmt.Errorf("build the HTTP request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `""`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("read the reply: %w", err)
	}
	if int64(len(reply)) > limit {
		return nil, resp.StatusCode, fmt.Errorf("the reply exceeds %d bytes (--max-reply)", limit)
	}
	return reply, resp.StatusCode, nil
}

// reportsVerify accepts the reply only if its signature verifies, in the request's placement,
// and, in a header placement, its responseInfo answers this request; it returns what the
// signature covers: the Body, or in the enveloped placement q:report or q:exportStatus alone,
// which is all that is read then.
func reportsVerify(reply []byte, v *signing.Verifier, placement signing.Placement, messageID string) (*etree.Element, string, error) {
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(reply), "text/xml; charset=utf-8",
		soap.Limits{MaxBytes: int64(len(reply)) + 1, MaxElements: 1 << 20, MaxDepth: 64})
	if err != nil {
		return nil, "", fmt.Errorf("the reply is not a valid envelope: %w", err)
	}
	ver, err := v.Verify(context.Background(), doc, time.Now())
	if err != nil {
		return nil, "", fmt.Errorf("the reply's signature does not verify: %w", err)
	}
	if ver.Placement != placement {
		return nil, "", fmt.Errorf("the reply is signed in the %s placement, the request in %s", ver.Placement, placement)
	}
	if placement.InHeader() {
		info, err := soap.ParseResponseInfoOf(ver.Signed)
		if err != nil {
			return nil, "", fmt.Errorf("the signed reply: %w", err)
		}
		if info.CorrelationID != messageID {
			return nil, "", fmt.Errorf("responseInfo answers message %q, not %q", info.CorrelationID, messageID)
		}
	}
	return ver.Signed, ver.Certificate.Subject.CommonName, nil
}

// selfOrDescendant is el when it is called tag, else its first descendant called tag, or nil.
func selfOrDescendant(el *etree.Element, tag string) *etree.Element {
	if el.Tag == tag {
		return el
	}
	return el.FindElement(".//" + tag)
}
