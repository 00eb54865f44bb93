package reports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/replayguard"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// The development PKI of the HTTP tests, generated once.
var pki struct {
	dir        string
	manifest   *devpki.Manifest
	trust      *signing.TrustStore
	broker     *signing.Signer
	prosecutor devpki.User // role 1, no reports right
	judge      devpki.User // RSA, reports right, organisation orgA
	ecdsa      devpki.User // ECDSA, reports right, organisation orgA
	revoked    devpki.User // reports right, organisation orgA, certificate revoked
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "reports-test-pki-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer removeBenchStores()
	if err := setupPKI(dir); err != nil {
		fmt.Fprintln(os.Stderr, "devpki:", err)
		return 1
	}
	checkJournaledQueries()
	code := m.Run()
	if code == 0 && !journaledQueriesAgreed() {
		code = 1
	}
	return code
}

func setupPKI(dir string) error {
	man, err := devpki.Generate(dir, time.Now())
	if err != nil {
		return err
	}
	pki.dir, pki.manifest = dir, man
	for _, u := range man.Users {
		switch {
		case u.Role == 1 && u.Status == devpki.StatusValid:
			pki.prosecutor = u
		case u.Role == 2 && u.Status == devpki.StatusValid:
			pki.judge = u
		case u.KeyType == devpki.KeyECDSA && u.Status == devpki.StatusValid:
			pki.ecdsa = u
		case u.Status == devpki.StatusRevoked:
			pki.revoked = u
		}
	}
	for _, u := range []devpki.User{pki.prosecutor, pki.judge, pki.ecdsa, pki.revoked} {
		if u.IIN == "" {
			return fmt.Errorf("the development PKI lacks a user the tests need")
		}
	}
	if pki.broker, err = signing.LoadSigner(filepath.Join(dir, man.BrokerCert), filepath.Join(dir, man.BrokerKey)); err != nil {
		return err
	}
	pki.trust, err = signing.LoadTrustStore(signing.TrustConfig{
		RootFiles: []string{filepath.Join(dir, man.CA)}, CRLFiles: []string{filepath.Join(dir, man.CRL)},
	})
	return err
}

func userSigner(t *testing.T, u devpki.User) *signing.Signer {
	t.Helper()
	s, err := signing.LoadSigner(filepath.Join(pki.dir, u.Cert), filepath.Join(pki.dir, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pkiUsers() fakeUsers {
	consent := time.Now().Add(-100 * day)
	mk := func(u devpki.User, org string, right bool) siobroker.User {
		return siobroker.User{IIN: u.IIN, Organisation: org, Role: u.Role, ReportsRight: right, Status: siobroker.UserActive, ConsentAt: consent}
	}
	return fakeUsers{
		pki.prosecutor.IIN: mk(pki.prosecutor, "Генеральная прокуратура", false),
		pki.judge.IIN:      mk(pki.judge, orgA, true),
		pki.ecdsa.IIN:      mk(pki.ecdsa, orgA, true),
		pki.revoked.IIN:    mk(pki.revoked, orgA, true),
	}
}

// httpJournal is seedJournal moved to the present: the HTTP tests run on the wall clock.
func httpJournal(t *testing.T) *memJournal {
	t.Helper()
	j := seedJournal(t)
	shift := time.Since(testNow)
	for i := range j.recs {
		j.recs[i].At = j.recs[i].At.Add(shift)
	}
	return j
}

func newHTTPService(t *testing.T, j *memJournal, cfg Config) (*Service, http.Handler) {
	t.Helper()
	s, err := New(cfg, j, testIndexer(t, j), pkiUsers(), siobroker.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler(mustVerifier(t, signing.VerifierConfig{Trust: pki.trust}).Verify, pki.broker.Sign, soap.Limits{}, siobroker.SystemClock{}, replayguard.NewMemory())
	return s, h
}

func nowInfo() siobroker.RequestInfo {
	return siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "SIO_PSO_REPORTS", SenderID: "TEST",
		MessageDate: siobroker.SystemClock{}.Now()}
}

func signReport(t *testing.T, u devpki.User, p signing.Placement, info siobroker.RequestInfo, q soap.ReportQuery) []byte {
	t.Helper()
	doc := soap.NewReportRequest(info, q)
	if err := userSigner(t, u).Sign(doc, p); err != nil {
		t.Fatal(err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func signExport(t *testing.T, u devpki.User, p signing.Placement, info siobroker.RequestInfo, q soap.ExportQuery) []byte {
	t.Helper()
	return signDoc(t, u, p, soap.NewExportRequest(info, q))
}

// signDoc signs doc as u in placement p and serialises it.
func signDoc(t *testing.T, u devpki.User, p signing.Placement, doc *etree.Document) []byte {
	t.Helper()
	if err := userSigner(t, u).Sign(doc, p); err != nil {
		t.Fatal(err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func postXML(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "text/xml; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// verifyReply checks that raw is no fault and that its signature verifies, as the client does.
func verifyReply(t *testing.T, raw []byte) *signing.Verified {
	t.Helper()
	if f, ok := soap.ParseFault(raw); ok {
		t.Fatalf("fault %s: %s", f.Code, f.Message)
	}
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(raw), "text/xml", soap.Limits{MaxBytes: int64(len(raw)) + 1})
	if err != nil {
		t.Fatal(err)
	}
	v, err := mustVerifier(t, signing.VerifierConfig{Trust: pki.trust, AnySigner: true}).Verify(context.Background(), doc, time.Now())
	if err != nil {
		t.Fatalf("reply signature: %v", err)
	}
	return v
}

// verifyReport checks the reply's signature as the client does and returns the signed report.
func verifyReport(t *testing.T, raw []byte, p signing.Placement, messageID string) soap.Report {
	t.Helper()
	v := verifyReply(t, raw)
	var err error
	if v.Placement != p {
		t.Fatalf("reply signed in %s, request in %s", v.Placement, p)
	}
	var rep soap.Report
	if p == signing.PlacementWSSE {
		var info soap.ResponseInfo
		if info, rep, err = soap.ParseReportResponse(v.Signed); err == nil && info.CorrelationID != messageID {
			t.Errorf("correlationId %q, want %q", info.CorrelationID, messageID)
		}
	} else {
		rep, err = soap.ParseReport(v.Signed)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.RequestMessageID != messageID {
		t.Errorf("requestMessageId %q, want %q", rep.RequestMessageID, messageID)
	}
	return rep
}

func wantFault(t *testing.T, status int, body []byte, code siobroker.Code) {
	t.Helper()
	f, ok := soap.ParseFault(body)
	if !ok {
		t.Fatalf("HTTP %d without a fault: %s", status, body)
	}
	if f.Code != code {
		t.Fatalf("fault %s (%s), want %s", f.Code, f.Message, code)
	}
}

func TestHandlerSignedReport(t *testing.T) {
	for _, c := range []struct {
		u devpki.User
		p signing.Placement
	}{{pki.judge, signing.PlacementWSSE}, {pki.ecdsa, signing.PlacementEnveloped}} {
		t.Run(string(c.p), func(t *testing.T) {
			j := httpJournal(t)
			_, h := newHTTPService(t, j, Config{})
			srv := httptest.NewServer(h)
			defer srv.Close()

			info := nowInfo()
			q := soap.ReportQuery{From: time.Now().Add(-30 * day), To: time.Now().Add(time.Minute), Format: soap.ReportCSV}
			raw := signReport(t, c.u, c.p, info, q)
			status, body := postXML(t, srv.URL+Path, raw)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d: %s", status, body)
			}
			rep := verifyReport(t, body, c.p, info.MessageID)
			// Organisation A's one request in the period (its users have no ЕРДР code).
			if rep.Format != soap.ReportCSV || rep.Records != 1 {
				t.Fatalf("report %s with %d records", rep.Format, rep.Records)
			}
			rows, err := csv.NewReader(bytes.NewReader(rep.Body)).ReadAll()
			if err != nil || len(rows) != 2 || rows[1][1] != "req-1" || rows[1][7] != "1" || rows[1][13] != "1 5" {
				t.Fatalf("CSV (%v):\n%s", err, rep.Body)
			}
			if strings.Contains(string(rep.Body), "REQUEST-A") {
				t.Error("signed bytes in a report")
			}
			rec, d := lastUse(t, j, 1)
			if rec.SignerIIN != c.u.IIN || rec.MessageID != info.MessageID || rec.RequestID == "" || d.Channel != "soap" ||
				!bytes.Equal(d.SignedRequest, raw) || rec.Code != outcomeOK || d.Rows != 1 {
				t.Errorf("journaled %+v %+v", rec, d)
			}

			// The same signed request again is a replay.
			status, body = postXML(t, srv.URL+Path, raw)
			wantFault(t, status, body, siobroker.CodeReplayID)
			lastUse(t, j, 1)
		})
	}
}

// TestHandlerReplayAcrossRestarts: the replay marks of report requests are in the store the
// journal uses, so a request one handler answered is a replay to a handler started afresh on the
// same store (a restarted broker, or a second broker sharing it).
func TestHandlerReplayAcrossRestarts(t *testing.T) {
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	j := httpJournal(t)
	s, err := New(Config{}, j, testIndexer(t, j), pkiUsers(), siobroker.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := func() *httptest.Server {
		h := s.Handler(mustVerifier(t, signing.VerifierConfig{Trust: pki.trust}).Verify, pki.broker.Sign, soap.Limits{}, siobroker.SystemClock{}, db)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv
	}
	first, second := start(), start()
	q := soap.ReportQuery{From: time.Now().Add(-30 * day), To: time.Now().Add(time.Minute), Format: soap.ReportCSV}
	raw := signReport(t, pki.judge, signing.PlacementWSSE, nowInfo(), q)
	if status, body := postXML(t, first.URL+Path, raw); status != http.StatusOK {
		t.Fatalf("first: HTTP %d: %s", status, body)
	}
	status, body := postXML(t, second.URL+Path, raw)
	wantFault(t, status, body, siobroker.CodeReplayID)
	// A new request is still answered there.
	if status, body := postXML(t, second.URL+Path, signReport(t, pki.judge, signing.PlacementWSSE, nowInfo(), q)); status != http.StatusOK {
		t.Fatalf("a new request: HTTP %d: %s", status, body)
	}
}

// verifyStatus checks the reply's signature as the client does and returns its q:exportStatus.
func verifyStatus(t *testing.T, raw []byte, messageID string) soap.ExportStatus {
	t.Helper()
	v := verifyReply(t, raw)
	el := v.Signed
	if el.Tag != "exportStatus" {
		el = el.FindElement(".//exportStatus")
	}
	st, err := soap.ParseExportStatus(el)
	if err != nil {
		t.Fatal(err)
	}
	if st.RequestMessageID != messageID {
		t.Errorf("requestMessageId %q, want %q", st.RequestMessageID, messageID)
	}
	return st
}

// TestHandlerSignedExport: the prosecutor's signed export request is answered "pending" and
// nothing of the journal; a fetch before the operator's decision is "pending" too, by another
// user refused; once the operator approved it, the fetch is the signed export of exactly the
// query asked; a refused one is answered with the operator's reason. Every step is journaled.
func TestHandlerSignedExport(t *testing.T) {
	j := httpJournal(t)
	svc, h := newHTTPService(t, j, Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	desk, err := NewExportDesk(j, svc.clock)
	if err != nil {
		t.Fatal(err)
	}
	info := nowInfo()
	q := soap.ExportQuery{ResolutionNo: "2-15-26/77", ResolutionDate: time.Now().In(siobroker.Astana).Truncate(time.Hour),
		IssuedBy: "прокурор г. Астаны Ахметов А.А.", Document: soap.Document{FileName: "постановление.pdf", MediaType: "application/pdf",
			Content: []byte("%PDF-1.7 resolution")},
		UserIIN: iinUserA, From: time.Now().Add(-30 * day), To: time.Now(), Format: soap.ReportJSON}
	status, body := postXML(t, srv.URL+Path, signExport(t, pki.prosecutor, signing.PlacementEnveloped, info, q))
	if status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", status, body)
	}
	st := verifyStatus(t, body, info.MessageID)
	if st.Status != soap.ExportPending || st.ExportID == "" || bytes.Contains(body, []byte(rawRequestA)) {
		t.Fatalf("the export request was answered %+v:\n%s", st, body)
	}
	rec, d := lastUse(t, j, 1)
	sum := sha256.Sum256(q.Document.Content)
	if rec.SignerIIN != pki.prosecutor.IIN || rec.Code != outcomePending || d.Action != actionExportRequest || rec.RequestID != st.ExportID ||
		d.Document == nil || d.Document.SHA256 != hex.EncodeToString(sum[:]) || d.Resolution.IssuedBy != q.IssuedBy {
		t.Errorf("journaled %+v %+v", rec, d)
	}

	fetch := func(u devpki.User, id string) (int, []byte, string) {
		info := nowInfo()
		status, body := postXML(t, srv.URL+Path, signDoc(t, u, signing.PlacementWSSE, soap.NewExportFetchRequest(info, soap.ExportFetch{ExportID: id})))
		return status, body, info.MessageID
	}
	status, body, mid := fetch(pki.prosecutor, st.ExportID)
	if st := verifyStatus(t, body, mid); status != http.StatusOK || st.Status != soap.ExportPending {
		t.Fatalf("a fetch before the decision: HTTP %d, %+v", status, st)
	}
	status, body, _ = fetch(pki.judge, st.ExportID)
	wantFault(t, status, body, CodeReportsDenied)

	if _, err := desk.Decide(context.Background(), st.ExportID, true, "operator Askarov", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := desk.Decide(context.Background(), st.ExportID, false, "operator Bekov", "late"); !errors.Is(err, ErrExportDecided) {
		t.Errorf("a second decision: %v, want ErrExportDecided", err)
	}
	status, body, mid = fetch(pki.prosecutor, st.ExportID)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", status, body)
	}
	rep := verifyReport(t, body, signing.PlacementWSSE, mid)
	var rows []struct {
		Kind string `json:"kind"`
		Data []byte `json:"data"`
	}
	if err := json.Unmarshal(rep.Body, &rows); err != nil {
		t.Fatal(err)
	}
	if rep.Records != 4 || len(rows) != 4 || string(rows[0].Data) != rawRequestA || string(rows[2].Data) != rawReplyA {
		t.Fatalf("export %+v", rows)
	}
	rec, d = lastUse(t, j, 5) // request, pending fetch, unknown fetch, approval, export
	if rec.SignerIIN != pki.prosecutor.IIN || d.Action != actionExport || d.ExportID != st.ExportID || d.Resolution == nil || d.Resolution.No != "2-15-26/77" {
		t.Errorf("journaled %+v %+v", rec, d)
	}

	// A refused request: its fetch is told the reason, and nothing else.
	info = nowInfo()
	_, body = postXML(t, srv.URL+Path, signExport(t, pki.prosecutor, signing.PlacementWSSE, info, q))
	refused := verifyStatus(t, body, info.MessageID)
	if _, err := desk.Decide(context.Background(), refused.ExportID, false, "operator Askarov", "the resolution is not signed"); err != nil {
		t.Fatal(err)
	}
	_, body, mid = fetch(pki.prosecutor, refused.ExportID)
	if st := verifyStatus(t, body, mid); st.Status != soap.ExportRefused || st.Reason != "the resolution is not signed" || bytes.Contains(body, []byte(rawRequestA)) {
		t.Errorf("a refused export fetched as %+v", st)
	}

	// The same request signed by a user of another role is refused, and journaled.
	info = nowInfo()
	status, body = postXML(t, srv.URL+Path, signExport(t, pki.judge, signing.PlacementWSSE, info, q))
	wantFault(t, status, body, CodeReportsDenied)
	if rec, _ := lastUse(t, j, 9); rec.SignerIIN != pki.judge.IIN || rec.Code != string(CodeReportsDenied) || rec.MessageID != info.MessageID {
		t.Errorf("journaled %+v", rec)
	}
}

func TestHandlerRefusals(t *testing.T) {
	j := httpJournal(t)
	_, h := newHTTPService(t, j, Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	q := soap.ReportQuery{From: time.Now().Add(-day), To: time.Now(), Format: soap.ReportJSON}

	// Without the reports right: refused, journaled.
	status, body := postXML(t, srv.URL+Path, signReport(t, pki.prosecutor, signing.PlacementWSSE, nowInfo(), q))
	wantFault(t, status, body, CodeReportsDenied)
	lastUse(t, j, 1)

	// Another organisation: refused, journaled.
	other := q
	other.Organisation = orgB
	status, body = postXML(t, srv.URL+Path, signReport(t, pki.judge, signing.PlacementWSSE, nowInfo(), other))
	wantFault(t, status, body, CodeReportsDenied)
	lastUse(t, j, 2)

	// A signed query that breaks the schema: refused and journaled, with the field.
	bad := q
	bad.Format = "pdf"
	status, body = postXML(t, srv.URL+Path, signReport(t, pki.judge, signing.PlacementEnveloped, nowInfo(), bad))
	wantFault(t, status, body, siobroker.CodeSchema)
	if f, _ := soap.ParseFault(body); f.Field != "reportQuery/format" {
		t.Errorf("field %q", f.Field)
	}
	lastUse(t, j, 3)

	// An ordinary q:query is not a report request.
	qdoc := soap.NewRequest(nowInfo(), siobroker.Query{Basis: 1, Case: siobroker.CaseRef{Number: "1"}, Subject: siobroker.Subject{IIN: iinUserA}, Services: []int{1}, Purpose: "x"})
	if err := userSigner(t, pki.judge).Sign(qdoc, signing.PlacementWSSE); err != nil {
		t.Fatal(err)
	}
	raw, _ := soap.Serialize(qdoc)
	status, body = postXML(t, srv.URL+Path, raw)
	wantFault(t, status, body, siobroker.CodeSchema)
	lastUse(t, j, 4)

	// Refusals before the signer is known are not journaled.
	stale := nowInfo()
	stale.MessageDate = stale.MessageDate.Add(-6 * time.Minute)
	status, body = postXML(t, srv.URL+Path, signReport(t, pki.judge, signing.PlacementWSSE, stale, q))
	wantFault(t, status, body, siobroker.CodeReplayDate)

	unsigned, _ := soap.Serialize(soap.NewReportRequest(nowInfo(), q))
	status, body = postXML(t, srv.URL+Path, unsigned)
	wantFault(t, status, body, siobroker.CodeSigMissing)

	// The signed content changed after signing.
	tampered := bytes.Replace(signReport(t, pki.judge, signing.PlacementEnveloped, nowInfo(), q), []byte("<q:format>json"), []byte("<q:format>csv"), 1)
	status, body = postXML(t, srv.URL+Path, tampered)
	wantFault(t, status, body, siobroker.CodeSigInvalid)

	resp, err := http.Post(srv.URL+Path, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	wantFault(t, resp.StatusCode, body, siobroker.CodeContentType)

	req, _ := http.NewRequest(http.MethodPut, srv.URL+Path, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: HTTP %d", resp.StatusCode)
	}
	resp, err = http.Head(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD: HTTP %d", resp.StatusCode)
	}
	lastUse(t, j, 4)
}

// tlsServer starts the handler over TLS with client certificates from the development CA, asked
// for or required by auth, and returns it with a factory of clients presenting certs.
func tlsServer(t *testing.T, h http.Handler, auth tls.ClientAuthType) (*httptest.Server, func(certs ...tls.Certificate) *http.Client) {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(pki.dir, pki.manifest.CA))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: auth, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func(certs ...tls.Certificate) *http.Client {
		c := srv.Client()
		tr := c.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = certs
		c.Transport = tr
		return c
	}
}

func clientCert(t *testing.T, u devpki.User) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(pki.dir, u.Cert), filepath.Join(pki.dir, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// formReport posts the parameters of the query of rawURL as the report form, with a CSRF token
// and its cookie, as a client that does not first GET the form does.
func formReport(t *testing.T, c *http.Client, rawURL string) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	form := u.Query()
	form.Set("csrf", "token-1")
	u.RawQuery = ""
	return postForm(t, c, u.String(), form, "Cookie", CSRFCookie+"=token-1")
}

// postForm posts form to url in c with the headers hdr (name, value, ...).
func postForm(t *testing.T, c *http.Client, url string, form url.Values, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHandlerFormOverTLS(t *testing.T) {
	j := httpJournal(t)
	_, h := newHTTPService(t, j, Config{VerifyClientCert: pki.trust.VerifyChain})
	srv, client := tlsServer(t, h, tls.VerifyClientCertIfGiven)
	period := "from=" + urlTime(time.Now().Add(-30*day)) + "&to=" + urlTime(time.Now().Add(time.Minute))

	// A holder of the right, by client certificate: the CSV itself.
	resp, body := formReport(t, client(clientCert(t, pki.judge)), srv.URL+Path+"?"+period)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || resp.Header.Get("X-SIO-Records") != "1" {
		t.Errorf("Content-Type %q, records %q", ct, resp.Header.Get("X-SIO-Records"))
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "time" {
		t.Fatalf("CSV (%v):\n%s", err, body)
	}
	rec, d := lastUse(t, j, 1)
	if rec.SignerIIN != pki.judge.IIN || d.Channel != "tls" || rec.Code != outcomeOK {
		t.Errorf("journaled %+v %+v", rec, d)
	}

	// JSON, filtered by service.
	resp, body = formReport(t, client(clientCert(t, pki.judge)), srv.URL+Path+"?"+period+"&format=json&service=5")
	var jrows []map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &jrows) != nil || len(jrows) != 1 {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}

	wantPlain := func(resp *http.Response, body []byte, status int, code siobroker.Code) {
		t.Helper()
		if resp.StatusCode != status || resp.Header.Get("X-SIO-Error-Code") != string(code) || !strings.HasPrefix(string(body), string(code)+": ") {
			t.Errorf("HTTP %d %q: %s; want %d %s", resp.StatusCode, resp.Header.Get("X-SIO-Error-Code"), body, status, code)
		}
	}
	// No client certificate: 403, not journaled (no one to attribute it to).
	resp, body = formReport(t, client(), srv.URL+Path+"?"+period)
	wantPlain(resp, body, http.StatusForbidden, CodeReportsDenied)
	// No reports right: 403, journaled.
	resp, body = formReport(t, client(clientCert(t, pki.prosecutor)), srv.URL+Path+"?"+period)
	wantPlain(resp, body, http.StatusForbidden, CodeReportsDenied)
	// Another organisation: 403, journaled.
	resp, body = formReport(t, client(clientCert(t, pki.judge)), srv.URL+Path+"?"+period+"&organisation="+url.QueryEscape(orgB))
	wantPlain(resp, body, http.StatusForbidden, CodeReportsDenied)
	// A misspelt filter must not widen the report: 400, journaled.
	resp, body = formReport(t, client(clientCert(t, pki.judge)), srv.URL+Path+"?"+period+"&user_iin="+iinUserA)
	wantPlain(resp, body, http.StatusBadRequest, siobroker.CodeSchema)
	// A revoked certificate passes the TLS handshake but not the CRL.
	resp, body = formReport(t, client(clientCert(t, pki.revoked)), srv.URL+Path+"?"+period)
	wantPlain(resp, body, http.StatusForbidden, siobroker.CodeCertRevoked)
	lastUse(t, j, 5)

	// Plain HTTP has no client certificate at all.
	plain := httptest.NewServer(h)
	defer plain.Close()
	resp, body = formReport(t, http.DefaultClient, plain.URL+Path+"?"+period)
	wantPlain(resp, body, http.StatusForbidden, CodeReportsDenied)
	lastUse(t, j, 5)
}

// TestHandlerTLSRequired: with client certificates required, a client without one does not get
// past the handshake, and one with a certificate is served.
func TestHandlerTLSRequired(t *testing.T) {
	j := httpJournal(t)
	_, h := newHTTPService(t, j, Config{})
	srv, client := tlsServer(t, h, tls.RequireAndVerifyClientCert)
	u := srv.URL + Path + "?from=" + urlTime(time.Now().Add(-day)) + "&to=" + urlTime(time.Now())
	if resp, err := client().PostForm(u, nil); err == nil {
		resp.Body.Close()
		t.Fatal("served without a client certificate")
	}
	if resp, body := formReport(t, client(clientCert(t, pki.ecdsa)), u); resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
}

func urlTime(t time.Time) string { return url.QueryEscape(t.In(siobroker.Astana).Format(time.RFC3339)) }

// mustVerifier is signing.NewVerifier for a configuration the test knows to be valid.
func mustVerifier(t testing.TB, cfg signing.VerifierConfig) *signing.Verifier {
	t.Helper()
	v, err := signing.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
