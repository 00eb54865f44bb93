package reports

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/sqlite"
)

// memJournal is an in-memory journal: it assigns Seq on Append and filters on Query as the
// JournalFilter documents.
type memJournal struct {
	mu        sync.Mutex
	recs      []siobroker.JournalRecord
	failQuery error
	failApp   error
	extra     []siobroker.JournalRecord // returned by Query whatever the filter (a faulty store)
}

func (j *memJournal) Query(_ context.Context, f siobroker.JournalFilter) ([]siobroker.JournalRecord, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failQuery != nil {
		return nil, j.failQuery
	}
	var out []siobroker.JournalRecord
	for _, r := range j.recs {
		if r.Seq > f.AfterSeq && matches(f, r) {
			out = append(out, r)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return append(out, j.extra...), nil
}

func (j *memJournal) Append(_ context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failApp != nil {
		return nil, j.failApp
	}
	out := make([]siobroker.JournalRecord, len(recs))
	for i, r := range recs {
		r.Seq = int64(len(j.recs) + 1)
		j.recs = append(j.recs, r)
		out[i] = r
	}
	return out, nil
}

// uses returns the JournalReport records.
func (j *memJournal) uses() []siobroker.JournalRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []siobroker.JournalRecord
	for _, r := range j.recs {
		if r.Kind == siobroker.JournalReport {
			out = append(out, r)
		}
	}
	return out
}

// fakeUsers is a user registry: a user not in it is unknown.
type fakeUsers map[string]siobroker.User

func (u fakeUsers) Authorize(_ context.Context, iin string) (siobroker.User, error) {
	user, ok := u[iin]
	if !ok {
		return siobroker.User{}, siobroker.Errorf(siobroker.CodeUserUnknown, "user %s is not registered", iin)
	}
	if err := user.CheckAccess(); err != nil {
		return siobroker.User{}, err
	}
	return user, nil
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

const (
	orgA = "ДП г. Астаны"
	orgB = "ДВД г. Алматы"

	iinController = "900101300011" // reports right, organisation A
	iinPlain      = "900101300022" // organisation A, no reports right
	iinNoOrg      = "900101300033" // reports right, no organisation
	iinProsecutor = "750312300455" // role 1
	iinInspector  = "750312300466" // role 3, reports right
	iinUserA      = "870315123455" // a user of A who made requests
	iinUserB      = "870315123466" // a user of B who made requests

	rawReplyA = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>REPLY-A</soapenv:Body></soapenv:Envelope>`
)

// The requests of the seeded journal, as received: a query for services 1 and 5, whose senderId is
// a marker no report shows (an export carries the whole request).
var (
	rawRequestA = rawQuery("REQUEST-A")
	rawRequestB = rawQuery("REQUEST-B")
)

func rawQuery(marker string) string {
	raw, err := soap.Serialize(soap.NewRequest(siobroker.RequestInfo{MessageID: "m-" + marker, ServiceID: "SIO_PSO_QUERY",
		MessageDate: time.Date(2026, 11, 13, 12, 0, 0, 0, siobroker.Astana), SenderID: marker},
		siobroker.Query{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "261500031000123"},
			Subject: siobroker.Subject{IIN: "870315123455"}, Services: []int{1, 5}, Purpose: "проверка"}))
	if err != nil {
		panic(err)
	}
	return string(raw)
}

var (
	testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, siobroker.Astana)
	day     = 24 * time.Hour
	pFrom   = testNow.Add(-30 * day)
	pTo     = testNow
)

func testUsers() fakeUsers {
	consent := testNow.Add(-100 * day)
	mk := func(iin, org string, role int, right bool) siobroker.User {
		return siobroker.User{IIN: iin, Organisation: org, Role: role, ReportsRight: right, Status: siobroker.UserActive, ConsentAt: consent}
	}
	return fakeUsers{
		iinController: mk(iinController, orgA, 3, true),
		iinPlain:      mk(iinPlain, orgA, 3, false),
		iinNoOrg:      mk(iinNoOrg, "", 3, true),
		iinProsecutor: mk(iinProsecutor, "Генеральная прокуратура", 1, false),
		iinInspector:  mk(iinInspector, orgA, 3, true),
	}
}

// seedJournal holds two requests of organisation A (one answered, one refused) and one of B.
func seedJournal(t *testing.T) *memJournal {
	t.Helper()
	j := &memJournal{}
	at := testNow.Add(-10 * day)
	recs := []siobroker.JournalRecord{
		{At: at, Kind: siobroker.JournalRequest, RequestID: "req-1", MessageID: "m-1", SignerIIN: iinUserA, Organisation: orgA, Data: []byte(rawRequestA)},
		{At: at.Add(time.Second), Kind: siobroker.JournalExchange, RequestID: "req-1", MessageID: "m-1", SignerIIN: iinUserA, Organisation: orgA, Service: 5, Code: "ok", Data: []byte(`{"received":"x"}`)},
		{At: at.Add(2 * time.Second), Kind: siobroker.JournalReply, RequestID: "req-1", MessageID: "m-1", SignerIIN: iinUserA, Organisation: orgA, Data: []byte(rawReplyA)},
		{At: at.Add(time.Hour), Kind: siobroker.JournalRefusal, MessageID: "m-2", SignerIIN: iinUserA, Organisation: orgA, Code: "SIO-ROLE-BASIS", Data: []byte("<fault/>")},
		{At: at.Add(2 * time.Hour), Kind: siobroker.JournalRequest, RequestID: "req-3", MessageID: "m-3", SignerIIN: iinUserB, Organisation: orgB, Data: []byte(rawRequestB)},
		{At: at.Add(3 * time.Hour), Kind: siobroker.JournalIncident, Code: "opened"},
		{At: testNow.Add(-40 * day), Kind: siobroker.JournalRequest, RequestID: "req-0", SignerIIN: iinUserA, Organisation: orgA, Data: []byte(rawRequestA)},
	}
	if _, err := j.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	return j
}

func newTestService(t *testing.T, j *memJournal, cfg Config) *Service {
	t.Helper()
	s, err := New(cfg, j, testIndexer(t, j), testUsers(), fixedClock{testNow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testIndexer is an Indexer of j into a request index in a new embedded store, whose registry
// has no history: entries take the organisation their records carry.
func testIndexer(t *testing.T, j siobroker.JournalReader) *Indexer {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	x, err := NewIndexer(IndexerConfig{}, j, db, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestNewValidates: a missing collaborator or a negative MaxRows is refused, naming it.
func TestNewValidates(t *testing.T) {
	type args struct {
		cfg     Config
		journal Journal
		index   *Indexer
		users   Users
		clock   siobroker.Clock
	}
	j := &memJournal{}
	full := args{Config{}, j, testIndexer(t, j), testUsers(), fixedClock{testNow}}
	if _, err := New(full.cfg, full.journal, full.index, full.users, full.clock, nil); err != nil {
		t.Fatalf("New with every collaborator: %v", err)
	}
	for _, tt := range []struct {
		want string
		mod  func(*args)
	}{
		{"reports: New: journal is required", func(a *args) { a.journal = nil }},
		{"reports: New: index is required", func(a *args) { a.index = nil }},
		{"reports: New: users is required", func(a *args) { a.users = nil }},
		{"reports: New: clock is required", func(a *args) { a.clock = nil }},
		{"reports: Config.MaxRows must not be negative", func(a *args) { a.cfg.MaxRows = -1 }},
		{"reports: Config.IndexCatchUp must not be negative", func(a *args) { a.cfg.IndexCatchUp = -1 }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			a := full
			tt.mod(&a)
			_, err := New(a.cfg, a.journal, a.index, a.users, a.clock, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
		})
	}
}

func reportQ(format string) soap.ReportQuery {
	return soap.ReportQuery{From: pFrom, To: pTo, Format: format}
}

func exportQ(format string) soap.ExportQuery {
	return soap.ExportQuery{ResolutionNo: "2-15-26/77", ResolutionDate: testNow.Add(-day).Truncate(day),
		IssuedBy: "прокурор г. Астаны Ахметов А.А.", Document: soap.Document{FileName: "resolution.pdf", MediaType: "application/pdf",
			Content: []byte("%PDF-1.7 resolution 2-15-26/77")},
		Organisation: orgA, From: pFrom, To: pTo, Format: format}
}

// approvedExport runs the whole export workflow for q: callerIIN asks for it, the operator
// approves it, and callerIIN fetches it. A refused request returns the refusal.
func approvedExport(t *testing.T, s *Service, j *memJournal, callerIIN string, q soap.ExportQuery) (string, int, []byte, error) {
	t.Helper()
	ctx := context.Background()
	st, err := s.RequestExport(ctx, callerIIN, q)
	if err != nil {
		return "", 0, nil, err
	}
	desk, err := NewExportDesk(j, s.clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := desk.Decide(ctx, st.ExportID, true, "operator Askarov", ""); err != nil {
		t.Fatal(err)
	}
	st, format, n, body, err := s.FetchExport(ctx, callerIIN, st.ExportID)
	if err == nil && st.Status != soap.ExportApproved {
		t.Fatalf("an approved export fetched as %+v", st)
	}
	return format, n, body, err
}

func wantCode(t *testing.T, err error, code siobroker.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if got := siobroker.ErrorCode(err); got != code {
		t.Fatalf("code %s (%v), want %s", got, err, code)
	}
}

// lastUse returns the last JournalReport record and its details, and checks that there are n.
func lastUse(t *testing.T, j *memJournal, n int) (siobroker.JournalRecord, useDetails) {
	t.Helper()
	uses := j.uses()
	if len(uses) != n {
		t.Fatalf("%d report records in the journal, want %d", len(uses), n)
	}
	rec := uses[len(uses)-1]
	var d useDetails
	if err := json.Unmarshal(rec.Data, &d); err != nil {
		t.Fatalf("report record data %q: %v", rec.Data, err)
	}
	return rec, d
}

func TestReportRefusedWithoutTheRight(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{})
	_, _, body, err := s.Report(context.Background(), iinPlain, reportQ(soap.ReportCSV))
	wantCode(t, err, CodeReportsDenied)
	if body != nil {
		t.Error("a refused report has a body")
	}
	rec, d := lastUse(t, j, 1)
	if rec.SignerIIN != iinPlain || rec.Organisation != orgA || rec.Code != string(CodeReportsDenied) || d.Refusal != CodeReportsDenied || d.Action != "report" || d.Rows != 0 {
		t.Errorf("journaled %+v %+v", rec, d)
	}
}

func TestReportRefusedForAnotherOrganisation(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{})
	q := reportQ(soap.ReportCSV)
	q.Organisation = orgB
	_, _, _, err := s.Report(context.Background(), iinController, q)
	wantCode(t, err, CodeReportsDenied)
	rec, d := lastUse(t, j, 1)
	if rec.Code != string(CodeReportsDenied) || d.Filter.Organisation != orgB {
		t.Errorf("journaled %+v %+v", rec, d)
	}
}

func TestReportRefusedWithoutOrganisationOrRegistration(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{})
	_, _, _, err := s.Report(context.Background(), iinNoOrg, reportQ(soap.ReportCSV))
	wantCode(t, err, CodeReportsDenied)
	_, _, _, err = s.Report(context.Background(), "111111111111", reportQ(soap.ReportCSV))
	wantCode(t, err, siobroker.CodeUserUnknown)
	rec, _ := lastUse(t, j, 2)
	if rec.Code != string(siobroker.CodeUserUnknown) || rec.SignerIIN != "111111111111" {
		t.Errorf("journaled %+v", rec)
	}
}

func TestReportQueryChecked(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{})
	for name, q := range map[string]soap.ReportQuery{
		"no period":  {Format: soap.ReportCSV},
		"reversed":   {From: pTo, To: pFrom, Format: soap.ReportCSV},
		"format":     {From: pFrom, To: pTo, Format: "xml"},
		"service 94": {From: pFrom, To: pTo, Format: soap.ReportCSV, Service: 94},
	} {
		_, _, _, err := s.Report(context.Background(), iinController, q)
		if siobroker.ErrorCode(err) != siobroker.CodeSchema {
			t.Errorf("%s: %v", name, err)
		}
	}
	lastUse(t, j, 4)
}

func TestExportRefusedForOtherRoles(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{})
	_, _, body, err := approvedExport(t, s, j, iinInspector, exportQ(soap.ReportCSV))
	wantCode(t, err, CodeReportsDenied)
	if body != nil {
		t.Error("a refused export has a body")
	}
	rec, d := lastUse(t, j, 1)
	if rec.Code != string(CodeReportsDenied) || d.Action != actionExportRequest || d.Resolution == nil || d.Resolution.No != "2-15-26/77" {
		t.Errorf("journaled %+v %+v", rec, d)
	}

	// Configured roles replace the default.
	s = newTestService(t, j, Config{ExportRoles: []int{3}})
	if _, _, _, err := approvedExport(t, s, j, iinInspector, exportQ(soap.ReportCSV)); err != nil {
		t.Errorf("role 3 configured: %v", err)
	}
	if _, _, _, err := approvedExport(t, s, j, iinProsecutor, exportQ(soap.ReportCSV)); siobroker.ErrorCode(err) != CodeReportsDenied {
		t.Errorf("role 1 not configured: %v", err)
	}
}

func TestExportByProsecutorCSV(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{})
	format, n, body, err := approvedExport(t, s, j, iinProsecutor, exportQ(soap.ReportCSV))
	if err != nil {
		t.Fatal(err)
	}
	if format != soap.ReportCSV || n != 4 {
		t.Fatalf("format %s, %d rows", format, n)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(reportColumns), dataColumn); !slices.Equal(rows[0], want) {
		t.Errorf("header %v", rows[0])
	}
	if rows[1][9] != rawRequestA || rows[3][9] != rawReplyA || rows[4][9] != "<fault/>" {
		t.Errorf("raw XML missing from the export: %v", rows[1:])
	}
	if strings.Contains(string(body), "REQUEST-B") {
		t.Error("organisation B in an export of A")
	}
	rec, d := lastUse(t, j, 3) // the request, the approval, the export
	if rec.Code != outcomeOK || rec.SignerIIN != iinProsecutor || d.Rows != 4 || d.Resolution == nil || d.Action != actionExport ||
		d.Resolution.No != "2-15-26/77" || d.Resolution.Date != "2026-11-22" || d.Resolution.IssuedBy == "" || d.ExportID == "" ||
		d.Filter.Organisation != orgA {
		t.Errorf("journaled %+v %+v", rec, d)
	}
}

func TestExportByUserJSON(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{})
	q := exportQ(soap.ReportJSON)
	q.Organisation, q.UserIIN = "", iinUserB
	_, n, body, err := approvedExport(t, s, j, iinProsecutor, q)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(body, &rows); err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(rows) != 1 || rows[0]["signerIin"] != iinUserB {
		t.Fatalf("rows %v", rows)
	}
	raw, err := base64.StdEncoding.DecodeString(rows[0]["data"].(string))
	if err != nil || string(raw) != rawRequestB {
		t.Errorf("data %q (%v), want the raw request", raw, err)
	}
}

// TestLateAnswersReportedAndExported: a late answer of a request of organisation A is in the
// export (with the answer); one whose request the broker no longer knew carries no organisation
// and is not.
func TestLateAnswersReportedAndExported(t *testing.T) {
	j := seedJournal(t)
	at := testNow.Add(-10 * day).Add(time.Minute)
	if _, err := j.Append(context.Background(),
		siobroker.JournalRecord{At: at, Kind: siobroker.JournalLate, RequestID: "req-1", MessageID: "m-1", SignerIIN: iinUserA,
			Organisation: orgA, Service: 7, Code: "ok/OK", Data: []byte(`{"answer":{"result":"ANSWER-A"}}`)},
		siobroker.JournalRecord{At: at, Kind: siobroker.JournalLate, RequestID: "req-9", Service: 7, Code: "ok/OK",
			Data: []byte(`{"answer":{"result":"ANSWER-UNKNOWN"}}`)},
	); err != nil {
		t.Fatal(err)
	}
	s := newTestService(t, j, Config{})
	_, n, body, err := approvedExport(t, s, j, iinProsecutor, exportQ(soap.ReportCSV))
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || !strings.Contains(string(body), "ANSWER-A") || strings.Contains(string(body), "ANSWER-UNKNOWN") {
		t.Errorf("export of %d rows:\n%s", n, body)
	}
}

func TestExportQueryChecked(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{})
	mod := func(f func(*soap.ExportQuery)) soap.ExportQuery {
		q := exportQ(soap.ReportCSV)
		f(&q)
		return q
	}
	for name, q := range map[string]soap.ExportQuery{
		"no resolution":   mod(func(q *soap.ExportQuery) { q.ResolutionNo = " " }),
		"no date":         mod(func(q *soap.ExportQuery) { q.ResolutionDate = time.Time{} }),
		"dated tomorrow":  mod(func(q *soap.ExportQuery) { q.ResolutionDate = testNow.Add(day) }),
		"neither":         mod(func(q *soap.ExportQuery) { q.Organisation = "" }),
		"both":            mod(func(q *soap.ExportQuery) { q.UserIIN = iinUserA }),
		"reversed period": mod(func(q *soap.ExportQuery) { q.From, q.To = q.To, q.From }),
		"no issuer":       mod(func(q *soap.ExportQuery) { q.IssuedBy = " " }),
		"no document":     mod(func(q *soap.ExportQuery) { q.Document.Content = nil }),
	} {
		_, _, _, err := approvedExport(t, s, j, iinProsecutor, q)
		if siobroker.ErrorCode(err) != siobroker.CodeSchema {
			t.Errorf("%s: %v", name, err)
		}
	}
	lastUse(t, j, 8)
}

func TestNothingDeliveredWithoutItsJournalRecord(t *testing.T) {
	j := seedJournal(t)
	j.failApp = errors.New("disk full")
	s := newTestService(t, j, Config{})
	_, _, body, err := s.Report(context.Background(), iinController, reportQ(soap.ReportCSV))
	wantCode(t, err, siobroker.CodeUnavailable)
	if body != nil {
		t.Error("a report was delivered that is not journaled")
	}
	// An approved export whose records cannot be read delivers nothing either.
	j.failApp = nil
	st, err := s.RequestExport(context.Background(), iinProsecutor, exportQ(soap.ReportCSV))
	if err != nil {
		t.Fatal(err)
	}
	desk, _ := NewExportDesk(j, s.clock)
	if _, err := desk.Decide(context.Background(), st.ExportID, true, "operator", ""); err != nil {
		t.Fatal(err)
	}
	j.failQuery = errors.New("down")
	_, _, _, body, err = s.FetchExport(context.Background(), iinProsecutor, st.ExportID)
	wantCode(t, err, siobroker.CodeUnavailable)
	if body != nil {
		t.Error("an export was delivered from a journal that cannot be read")
	}
	rec, _ := lastUse(t, j, 3) // the request, the approval, the refused fetch
	if rec.Code != string(siobroker.CodeUnavailable) {
		t.Errorf("journaled %+v", rec)
	}
}

func TestRenderIsXMLText(t *testing.T) {
	recs := []siobroker.JournalRecord{{Seq: 1, At: testNow, Kind: siobroker.JournalRequest, Organisation: "bad\x01\xff", Data: []byte("\x00\x01binary")}}
	for _, f := range []string{soap.ReportCSV, soap.ReportJSON} {
		body, err := render(f, recs, true)
		if err != nil {
			t.Fatal(err)
		}
		if !isXMLText(string(body)) {
			t.Errorf("%s: not XML text: %q", f, body)
		}
	}
	body, _ := render(soap.ReportCSV, recs, true)
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[1][9]; got != base64Prefix+base64.StdEncoding.EncodeToString(recs[0].Data) {
		t.Errorf("data cell %q", got)
	}
}

// TestExportOfAnotherProsecutor: a user who may order exports cannot fetch another's request,
// approved or not: it is unknown to them, and journaled as such.
func TestExportOfAnotherProsecutor(t *testing.T) {
	j := seedJournal(t)
	s := newTestService(t, j, Config{ExportRoles: []int{1, 3}})
	ctx := context.Background()
	st, err := s.RequestExport(ctx, iinProsecutor, exportQ(soap.ReportCSV))
	if err != nil {
		t.Fatal(err)
	}
	desk, _ := NewExportDesk(j, s.clock)
	if _, err := desk.Decide(ctx, st.ExportID, true, "operator", ""); err != nil {
		t.Fatal(err)
	}
	_, _, _, body, err := s.FetchExport(ctx, iinInspector, st.ExportID)
	wantCode(t, err, CodeExportUnknown)
	if body != nil {
		t.Error("another user got the export")
	}
	if rec, d := lastUse(t, j, 3); rec.SignerIIN != iinInspector || rec.Code != string(CodeExportUnknown) || d.ExportID != st.ExportID {
		t.Errorf("journaled %+v %+v", rec, d)
	}
}
