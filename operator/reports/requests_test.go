package reports

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/sqlite"
)

// The reports of §9–10 over the request index, on the real parts: the embedded store's journal,
// its request index and its user registry, with records journaled as the broker journals them.

const (
	orgAName = "ДП г. Астаны"
	orgACode = "1501"
	orgBName = "ДВД г. Алматы"
	orgBCode = "1901"
	orgOName = "КПСиСУ"
	orgOCode = "0001"
)

// idx returns a valid IIN from an 11-digit prefix.
func idx(t testing.TB, prefix string) string {
	t.Helper()
	s, ok := siobroker.CompleteIIN(prefix)
	if !ok {
		t.Fatalf("no IIN for %s", prefix)
	}
	return s
}

// world is the embedded store with its registry and journal, and a Service over them.
type world struct {
	t     *testing.T
	db    *sqlite.DB
	reg   *users.Registry
	clock *testclock.Clock
	svc   *Service
	index *Indexer

	ctrlA, ctrlA2, plainA, userA1, userA2, userB, ctrlB, overseer string
}

func newWorld(t *testing.T, cfg Config) *world {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{t: t, db: db, clock: testclock.New(testNow.Add(-50 * day))}
	w.reg = users.New(db, w.clock, nil)
	w.ctrlA, w.ctrlA2, w.plainA = idx(t, "80010130001"), idx(t, "80010130002"), idx(t, "80010130003")
	w.userA1, w.userA2, w.userB = idx(t, "85020240001"), idx(t, "85020240002"), idx(t, "85020240003")
	w.ctrlB, w.overseer = idx(t, "80010130004"), idx(t, "80010130005")
	for _, u := range []siobroker.User{
		{IIN: w.ctrlA, FullName: "КОНТРОЛЕР А", Organisation: orgAName, ERDRCode: orgACode, Department: "Руководство", Role: 3, ReportsRight: true},
		// The same organisation's name without its ЕРДР code: scoped by name among those without one.
		{IIN: w.ctrlA2, FullName: "КОНТРОЛЕР А2", Organisation: orgAName, Department: "Руководство", Role: 3, ReportsRight: true},
		{IIN: w.plainA, FullName: "БЕЗ ПРАВА", Organisation: orgAName, ERDRCode: orgACode, Department: "СУ", Role: 3},
		{IIN: w.userA1, FullName: "СЛЕДОВАТЕЛЬ ПЕРВЫЙ", Organisation: orgAName, ERDRCode: orgACode, Department: "СУ", Role: 3},
		{IIN: w.userA2, FullName: "ОПЕРАТИВНИК ВТОРОЙ", Organisation: orgAName, ERDRCode: orgACode, Department: "ОУР", Role: 3},
		{IIN: w.userB, FullName: "ДОЗНАВАТЕЛЬ Б", Organisation: orgBName, ERDRCode: orgBCode, Department: "СУ", Role: 5},
		{IIN: w.ctrlB, FullName: "КОНТРОЛЕР Б", Organisation: orgBName, ERDRCode: orgBCode, Department: "Руководство", Role: 5, ReportsRight: true},
		{IIN: w.overseer, FullName: "НАДЗОР", Organisation: orgOName, ERDRCode: orgOCode, Department: "Управление", Role: 9, ReportsRight: true},
	} {
		u.ConsentAt = w.clock.Now()
		w.apply(siobroker.ApplyRegister, u)
	}
	j := db.Journal()
	if w.index, err = NewIndexer(IndexerConfig{Batch: 4}, j, db, db, nil); err != nil {
		t.Fatal(err)
	}
	if w.svc, err = New(cfg, j, w.index, w.reg, w.clock, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) apply(kind siobroker.ApplicationKind, u siobroker.User) {
	w.t.Helper()
	if _, err := w.reg.Apply(context.Background(), siobroker.Application{Kind: kind, IIN: u.IIN, Reason: "заявка", By: "operator", User: u}); err != nil {
		w.t.Fatal(err)
	}
}

// request is one request as the broker journals it.
type request struct {
	id     string
	signer string
	org    string
	at     time.Time
	query  siobroker.Query
	// outcomes are the exchange records' codes by service; reply journals the reply.
	outcomes map[int]string
	reply    bool
	// refused journals a refusal with this code: after the request record, or instead of it
	// (early: refused before it was journaled, the raw request in the refusal).
	refused string
	early   bool
	raw     []byte // the request as received, when not built from query
}

func query(basis siobroker.Basis, services ...int) siobroker.Query {
	return siobroker.Query{Basis: basis, Case: siobroker.CaseRef{Number: "261500031000123", InstructionNo: "12/5"}, Article: "190",
		Subject: siobroker.Subject{IIN: "870315123455"}, Services: services, Purpose: "установление имущества подозреваемого"}
}

// journal appends the records of rq as the broker does: the raw request (or a refusal carrying
// it), an exchange record per service answered, the reply, a refusal.
func (w *world) journal(rq request) {
	w.t.Helper()
	raw := rq.raw
	if raw == nil {
		var err error
		if raw, err = soap.Serialize(soap.NewRequest(siobroker.RequestInfo{MessageID: "m-" + rq.id, ServiceID: "SIO_PSO_QUERY",
			MessageDate: rq.at, SenderID: "IS"}, rq.query)); err != nil {
			w.t.Fatal(err)
		}
	}
	rec := func(at time.Time, kind siobroker.JournalKind, service int, code string, data []byte) siobroker.JournalRecord {
		return siobroker.JournalRecord{At: at, Kind: kind, RequestID: rq.id, MessageID: "m-" + rq.id, SignerIIN: rq.signer,
			Organisation: rq.org, Service: service, Code: code, Data: data}
	}
	var recs []siobroker.JournalRecord
	if !rq.early {
		recs = append(recs, rec(rq.at, siobroker.JournalRequest, 0, "", raw))
	}
	for _, s := range rq.query.Services {
		if code, ok := rq.outcomes[s]; ok {
			recs = append(recs, rec(rq.at.Add(time.Second), siobroker.JournalExchange, s, code, []byte(`{"records":1}`)))
		}
	}
	if rq.reply {
		recs = append(recs, rec(rq.at.Add(time.Second), siobroker.JournalReply, 0, "", []byte("<reply>ANSWER-DATA</reply>")))
	}
	if rq.refused != "" {
		d := refusalData{Message: "refused"}
		if rq.early {
			d.Request = raw
		}
		data, _ := json.Marshal(d)
		recs = append(recs, rec(rq.at.Add(time.Millisecond), siobroker.JournalRefusal, 0, rq.refused, data))
	}
	if _, err := w.db.Journal().Append(context.Background(), recs...); err != nil {
		w.t.Fatal(err)
	}
}

// seed journals the requests of the tests: six of organisation A in the period (answered, denied,
// refused after and before it was journaled, partial, pending), one of A before it, one of B,
// and records that are no user's request.
func (w *world) seed() {
	w.t.Helper()
	at := func(d int) time.Time { return testNow.Add(-time.Duration(d) * day) }
	w.journal(request{id: "rA0", signer: w.userA1, org: orgAName, at: at(40), query: query(1, 1), outcomes: map[int]string{1: "ok/OK"}, reply: true})
	w.journal(request{id: "rA1", signer: w.userA1, org: orgAName, at: at(10), query: query(1, 1, 5),
		outcomes: map[int]string{1: "ok/OK", 5: "ok/NO_DATA"}, reply: true})
	w.journal(request{id: "rA2", signer: w.userA2, org: orgAName, at: at(9), query: query(6, 37),
		outcomes: map[int]string{37: "denied/DENIED_BASIS"}, reply: true})
	w.journal(request{id: "rA3", signer: w.userA1, org: orgAName, at: at(8), query: query(1, 1), refused: "SIO-CASE-UNKNOWN"})
	w.journal(request{id: "rB1", signer: w.userB, org: orgBName, at: at(7), query: query(5, 1), outcomes: map[int]string{1: "ok/OK"}, reply: true})
	// Not a user's request: a status query refused, an unsigned request refused, an incident.
	status, _ := soap.Serialize(soap.NewAsyncQueryRequest(siobroker.RequestInfo{MessageID: "st", MessageDate: at(6)}, "statusQuery", "rA1"))
	w.journal(request{id: "st", signer: w.userA1, org: orgAName, at: at(6), early: true, refused: "SIO-ASYNC-UNKNOWN", raw: status})
	w.journal(request{id: "anon", at: at(6), query: query(1, 1), early: true, refused: "SIO-SIGNATURE"})
	if _, err := w.db.Journal().Append(context.Background(), siobroker.JournalRecord{At: at(6), Kind: siobroker.JournalIncident, Code: "opened"}); err != nil {
		w.t.Fatal(err)
	}
	// userA1 moves to another department: later requests are the new department's.
	w.clock.Set(at(5))
	w.apply(siobroker.ApplyMove, siobroker.User{IIN: w.userA1, FullName: "СЛЕДОВАТЕЛЬ ПЕРВЫЙ", Organisation: orgAName,
		ERDRCode: orgACode, Department: "ОУР", Role: 3, ConsentAt: testNow.Add(-50 * day)})
	q := query(1, 11, 15)
	q.Subject, q.Purpose = siobroker.Subject{BIN: "020240003210"}, "=HYPERLINK(\"http://evil\")"
	w.journal(request{id: "rA4", signer: w.userA1, org: orgAName, at: at(2), query: q,
		outcomes: map[int]string{11: "ok/OK", 15: "timeout/TIMEOUT"}, reply: true})
	w.journal(request{id: "rA5", signer: w.userA2, org: orgAName, at: at(1), query: query(3, 1), early: true, refused: "SIO-REPLAY-ID"})
	w.journal(request{id: "rA6", signer: w.userA2, org: orgAName, at: at(1).Add(time.Hour), query: query(1, 1)})
	w.clock.Set(testNow)
}

// csvReport runs a report as caller and returns its CSV rows (after the header) by request id.
func (w *world) csvReport(caller string, q soap.ReportQuery) (map[string]map[string]string, []string) {
	w.t.Helper()
	q.Format = soap.ReportCSV
	_, n, body, err := w.svc.Report(context.Background(), caller, q)
	if err != nil {
		w.t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		w.t.Fatalf("%v:\n%s", err, body)
	}
	if !slices.Equal(rows[0], requestColumns) {
		w.t.Fatalf("header %v", rows[0])
	}
	if len(rows)-1 != n {
		w.t.Errorf("%d rows, the report says %d", len(rows)-1, n)
	}
	out := map[string]map[string]string{}
	var order []string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, c := range requestColumns {
			m[c] = r[i]
		}
		out[m["request_id"]] = m
		order = append(order, m["request_id"])
	}
	return out, order
}

func period() soap.ReportQuery { return soap.ReportQuery{From: pFrom, To: pTo} }

// TestReportShowsEveryRequestWithItsBasis: a report of organisation A over the period shows each
// of its users' requests, in time order, with the basis, case reference, subject, services,
// outcome, signer, department at the time of the request, and time; not organisation B's, not a
// request before the period, and nothing that is no user's request.
func TestReportShowsEveryRequestWithItsBasis(t *testing.T) {
	w := newWorld(t, Config{})
	w.seed()
	rows, order := w.csvReport(w.ctrlA, period())
	if want := []string{"rA1", "rA2", "rA3", "rA4", "rA5", "rA6"}; !slices.Equal(order, want) {
		t.Fatalf("requests %v, want %v", order, want)
	}
	a1 := rows["rA1"]
	for col, want := range map[string]string{
		"signer_iin": w.userA1, "signer_name": "СЛЕДОВАТЕЛЬ ПЕРВЫЙ", "organisation": orgAName, "erdr_code": orgACode,
		"department": "СУ", "basis": "1", "basis_name": "criminal case", "case": "261500031000123; instruction 12/5",
		"article": "190", "subject_kind": "iin", "subject": "870315123455", "services": "1 5",
		"purpose": "установление имущества подозреваемого", "outcome": "answered", "code": "",
		"service_outcomes": "1:ok/OK 5:ok/NO_DATA", "message_id": "m-rA1",
		"time": siobroker.FormatTime(testNow.Add(-10 * day)), "replied_at": siobroker.FormatTime(testNow.Add(-10*day + time.Second)),
	} {
		if a1[col] != want {
			t.Errorf("rA1 %s = %q, want %q", col, a1[col], want)
		}
	}
	for id, want := range map[string][3]string{
		"rA2": {"denied", "", "ОУР"},
		"rA3": {"refused", "SIO-CASE-UNKNOWN", "СУ"},
		"rA4": {"partial", "", "ОУР"}, // userA1 moved before it
		"rA5": {"refused", "SIO-REPLAY-ID", "ОУР"},
		"rA6": {"pending", "", "ОУР"},
	} {
		r := rows[id]
		if r["outcome"] != want[0] || r["code"] != want[1] || r["department"] != want[2] {
			t.Errorf("%s: outcome %q code %q department %q, want %v", id, r["outcome"], r["code"], r["department"], want)
		}
	}
	if r := rows["rA5"]; r["basis"] != "3" || r["subject"] != "870315123455" {
		t.Errorf("a request refused before it was journaled is read from its refusal: %v", r)
	}
	if r := rows["rA4"]; r["subject_kind"] != "bin" || r["subject"] != "020240003210" || r["purpose"] != `'=HYPERLINK("http://evil")` {
		t.Errorf("rA4 %v", r)
	}
	// §44: no request or reply, no answer.
	_, _, body, _ := w.svc.Report(context.Background(), w.ctrlA, soap.ReportQuery{From: pFrom, To: pTo, Format: soap.ReportJSON})
	for _, s := range []string{"ANSWER-DATA", "Envelope", "<reply>"} {
		if strings.Contains(string(body), s) {
			t.Errorf("the report carries %q", s)
		}
	}
	var js []map[string]any
	if err := json.Unmarshal(body, &js); err != nil || len(js) != 6 {
		t.Fatalf("JSON report: %v (%d rows)\n%s", err, len(js), body)
	}
	if js[0]["basis"] != float64(1) || js[0]["case"] != "261500031000123; instruction 12/5" || len(js[0]["services"].([]any)) != 2 {
		t.Errorf("JSON row %v", js[0])
	}
}

// TestReportFilters: period, department, user, basis, service and outcome narrow a report.
func TestReportFilters(t *testing.T) {
	w := newWorld(t, Config{})
	w.seed()
	for name, c := range map[string]struct {
		edit func(*soap.ReportQuery)
		want []string
	}{
		"department": {func(q *soap.ReportQuery) { q.Department = "СУ" }, []string{"rA1", "rA3"}},
		"user":       {func(q *soap.ReportQuery) { q.UserIIN = w.userA2 }, []string{"rA2", "rA5", "rA6"}},
		"basis":      {func(q *soap.ReportQuery) { q.Basis = siobroker.BasisSearch }, []string{"rA2"}},
		"service":    {func(q *soap.ReportQuery) { q.Service = 15 }, []string{"rA4"}},
		"outcome":    {func(q *soap.ReportQuery) { q.Outcome = "refused" }, []string{"rA3", "rA5"}},
		"period":     {func(q *soap.ReportQuery) { q.From = testNow.Add(-3 * day) }, []string{"rA4", "rA5", "rA6"}},
		"user of B":  {func(q *soap.ReportQuery) { q.UserIIN = w.userB }, nil},
		"own code":   {func(q *soap.ReportQuery) { q.ERDRCode = orgACode; q.Organisation = orgAName }, []string{"rA1", "rA2", "rA3", "rA4", "rA5", "rA6"}},
	} {
		t.Run(name, func(t *testing.T) {
			q := period()
			c.edit(&q)
			if _, order := w.csvReport(w.ctrlA, q); !slices.Equal(order, c.want) {
				t.Errorf("got %v, want %v", order, c.want)
			}
		})
	}
}

// TestReportScopeIsTheOwnOrganisation: the scope is the caller's ЕРДР code; another organisation
// is refused and journaled; a caller without a code sees the requests of users without one of
// the same organisation's name, not those of the organisation with the code.
func TestReportScopeIsTheOwnOrganisation(t *testing.T) {
	w := newWorld(t, Config{})
	w.seed()
	for name, q := range map[string]soap.ReportQuery{
		"erdr code":    {ERDRCode: orgBCode},
		"by name":      {Organisation: orgBName},
		"summary of B": {Kind: soap.ReportSummary, ERDRCode: orgBCode},
	} {
		q.From, q.To, q.Format = pFrom, pTo, soap.ReportCSV
		_, _, _, err := w.svc.Report(context.Background(), w.ctrlA, q)
		wantCode(t, err, CodeReportsDenied)
		if !strings.Contains(siobroker.ErrorMessage(err), "own organisation") {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, _, _, err := w.svc.Report(context.Background(), w.plainA, soap.ReportQuery{From: pFrom, To: pTo, Format: soap.ReportCSV})
	wantCode(t, err, CodeReportsDenied)
	if _, order := w.csvReport(w.ctrlB, period()); !slices.Equal(order, []string{"rB1"}) {
		t.Errorf("B's controller: %v", order)
	}
	if _, order := w.csvReport(w.ctrlA2, period()); len(order) != 0 {
		t.Errorf("a controller without an ЕРДР code sees %v of the organisation with one", order)
	}
	recs, err := w.db.Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalReport}})
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, r := range recs {
		if r.Code == string(CodeReportsDenied) {
			refused++
		}
	}
	if refused != 4 {
		t.Errorf("%d refusals journaled, want 4", refused)
	}
}

// TestOversightRole: a role of Config.OversightRoles reports over every organisation, or one by
// its ЕРДР code, and sees another organisation's subjects masked and purposes left out; without
// the configuration the same user sees its own organisation only.
func TestOversightRole(t *testing.T) {
	w := newWorld(t, Config{})
	w.seed()
	if _, order := w.csvReport(w.overseer, period()); len(order) != 0 {
		t.Errorf("without oversight roles the overseer sees %v", order)
	}
	q := period()
	q.ERDRCode, q.Format = orgBCode, soap.ReportCSV
	_, _, _, err := w.svc.Report(context.Background(), w.overseer, q)
	wantCode(t, err, CodeReportsDenied)

	w = newWorld(t, Config{OversightRoles: []int{9}})
	w.seed()
	rows, order := w.csvReport(w.overseer, period())
	if want := []string{"rA1", "rA2", "rA3", "rB1", "rA4", "rA5", "rA6"}; !slices.Equal(order, want) {
		t.Fatalf("every organisation: %v, want %v", order, want)
	}
	if r := rows["rB1"]; r["subject"] != "********3455" || r["purpose"] != "" || !strings.Contains(r["note"], "withheld") ||
		r["case"] != "261500031000123; instruction 12/5" || r["signer_iin"] != w.userB {
		t.Errorf("another organisation's row: %v", r)
	}
	q = period()
	q.ERDRCode = orgBCode
	if _, order := w.csvReport(w.overseer, q); !slices.Equal(order, []string{"rB1"}) {
		t.Errorf("one organisation by its code: %v", order)
	}
	q = period()
	q.Organisation, q.Format = orgBName, soap.ReportCSV
	_, _, _, err = w.svc.Report(context.Background(), w.overseer, q)
	wantCode(t, err, siobroker.CodeSchema)
	// An ordinary controller is not widened by the configuration.
	if _, order := w.csvReport(w.ctrlA, period()); len(order) != 6 {
		t.Errorf("A's controller: %v", order)
	}
}

// TestMonthlySummary: the summary counts the requests per month, organisation and department,
// by outcome.
func TestMonthlySummary(t *testing.T) {
	w := newWorld(t, Config{OversightRoles: []int{9}})
	w.seed()
	q := soap.ReportQuery{Kind: soap.ReportSummary, From: testNow.Add(-60 * day), To: testNow, Format: soap.ReportJSON}
	_, n, body, err := w.svc.Report(context.Background(), w.overseer, q)
	if err != nil {
		t.Fatal(err)
	}
	var got []summaryRow
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	month := func(d int) string { return siobroker.MonthOf(testNow.Add(-time.Duration(d) * day)) }
	// ОУР: rA2, rA5 and rA6 of userA2, and rA4 of userA1 after the move; СУ: rA1 and rA3.
	want := []summaryRow{
		{Month: month(40), ERDRCode: orgACode, Organisation: orgAName, Department: "СУ", Requests: 1, Answered: 1},
		{Month: month(10), ERDRCode: orgACode, Organisation: orgAName, Department: "ОУР", Requests: 4, Denied: 1, Partial: 1, Refused: 1, Pending: 1},
		{Month: month(10), ERDRCode: orgACode, Organisation: orgAName, Department: "СУ", Requests: 2, Answered: 1, Refused: 1},
		{Month: month(10), ERDRCode: orgBCode, Organisation: orgBName, Department: "СУ", Requests: 1, Answered: 1},
	}
	if month(40) == month(10) || month(10) != month(1) {
		t.Fatalf("the fixture's months moved: %s %s %s", month(40), month(10), month(1))
	}
	if n != len(want) || !slices.Equal(got, want) {
		t.Errorf("summary (%d rows):\n got %+v\nwant %+v", n, got, want)
	}
	// A controller's summary is the own organisation's; the CSV has the summary's columns.
	q.Format = soap.ReportCSV
	_, _, body, err = w.svc.Report(context.Background(), w.ctrlB, q)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if len(rows) != 2 || !slices.Equal(rows[0], summaryColumns) || rows[1][1] != orgBCode || rows[1][4] != "1" {
		t.Errorf("B's summary: %v", rows)
	}
}

// TestXLSXReport: the same report as an XLSX workbook: the requests sheet with its header and
// rows, and the summary sheet, read back with excelize.
func TestXLSXReport(t *testing.T) {
	w := newWorld(t, Config{TempDir: t.TempDir()})
	w.seed()
	q := period()
	q.Format = soap.ReportXLSX
	format, n, body, err := w.svc.Report(context.Background(), w.ctrlA, q)
	if err != nil || format != soap.ReportXLSX || n != 6 {
		t.Fatalf("format %s, %d rows, %v", format, n, err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"requests"}) {
		t.Errorf("sheets %v", got)
	}
	rows, err := f.GetRows("requests")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 || !slices.Equal(rows[0], requestColumns) {
		t.Fatalf("rows %v", rows)
	}
	col := func(name string) int { return slices.Index(requestColumns, name) }
	if r := rows[1]; r[col("request_id")] != "rA1" || r[col("case")] != "261500031000123; instruction 12/5" ||
		r[col("subject")] != "870315123455" || r[col("basis")] != "1" || r[col("department")] != "СУ" {
		t.Errorf("first row %v", r)
	}
	// A formula in a purpose is text in a workbook, not a formula.
	if r := rows[4]; r[col("purpose")] != `=HYPERLINK("http://evil")` {
		t.Errorf("rA4 purpose %q", r[col("purpose")])
	}
	if formula, _ := f.GetCellFormula("requests", "O5"); formula != "" {
		t.Errorf("a purpose became a formula: %q", formula)
	}
	q.Kind = soap.ReportSummary
	_, n, body, err = w.svc.Report(context.Background(), w.ctrlA, q)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	rows, _ = f2.GetRows("summary")
	if n != 2 || len(rows) != 3 || !slices.Equal(rows[0], summaryColumns) {
		t.Errorf("summary sheet %v", rows)
	}
}

// TestXLSXRollsOverFullSheets: a worksheet ends at Excel's last row and the next one goes on.
func TestXLSXRollsOverFullSheets(t *testing.T) {
	var buf bytes.Buffer
	sh, err := newXLSXSheet("requests", []string{"n"}, &buf, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sh.last = xlsxMaxRow - 1 // as if the sheet were nearly full
	for i := range 3 {
		if err := sh.row(nil, []any{i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sh.close(); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"requests", "requests 2"}) {
		t.Fatalf("sheets %v", got)
	}
	rows, _ := f.GetRows("requests 2")
	if len(rows) != 3 || rows[0][0] != "n" || rows[1][0] != "1" || rows[2][0] != "2" {
		t.Errorf("second sheet %v", rows)
	}
}

// TestReportStreamsAfterItsRecord: StreamReport journals the use with the row count before it
// opens the output, then writes every row to it; the signed channel's bound does not apply.
func TestReportStreamsAfterItsRecord(t *testing.T) {
	w := newWorld(t, Config{MaxRows: 2})
	w.seed()
	q := period()
	q.Format = soap.ReportCSV
	_, _, _, err := w.svc.Report(context.Background(), w.ctrlA, q)
	wantCode(t, err, CodeReportsTooLarge)
	var buf bytes.Buffer
	n, err := w.svc.StreamReport(context.Background(), w.ctrlA, "tls", q, func(format string, count int, id string) (io.Writer, error) {
		recs, err := w.db.Journal().Query(context.Background(), siobroker.JournalFilter{RequestID: id, Kinds: []siobroker.JournalKind{siobroker.JournalReport}})
		if err != nil || len(recs) != 1 || recs[0].Code != outcomeOK {
			t.Errorf("opened before its record: %v %v", recs, err)
		}
		var d useDetails
		_ = json.Unmarshal(recs[0].Data, &d)
		if d.Rows != 6 || count != 6 || format != soap.ReportCSV || d.Channel != "tls" || d.Filter.ERDRCode != orgACode || d.Filter.IndexedThrough == 0 {
			t.Errorf("journaled %+v, opened with %d", d, count)
		}
		return &buf, nil
	})
	if err != nil || n != 6 || strings.Count(buf.String(), "\n") != 7 {
		t.Fatalf("%d rows, %v:\n%s", n, err, buf.String())
	}
	// A failure to write is not a refusal: nothing more is journaled, the error is returned.
	before := len(w.uses())
	_, err = w.svc.StreamReport(context.Background(), w.ctrlA, "tls", q, func(string, int, string) (io.Writer, error) {
		return failingWriter{}, nil
	})
	if err == nil || len(w.uses()) != before+1 {
		t.Errorf("a failed delivery: %v, %d uses journaled after %d", err, len(w.uses()), before)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

func (w *world) uses() []siobroker.JournalRecord {
	recs, err := w.db.Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalReport}})
	if err != nil {
		w.t.Fatal(err)
	}
	return recs
}

// TestRebuildGivesTheSameIndex: the index rebuilt from the journal alone equals the one kept as
// the records came in, batch by batch, the department at the time of each request included.
func TestRebuildGivesTheSameIndex(t *testing.T) {
	w := newWorld(t, Config{})
	ctx := context.Background()
	w.seed()
	// Live: caught up after every request, as the broker's background catch-up does.
	if _, _, err := w.index.CatchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	live := w.entries()
	if len(live) != 8 {
		t.Fatalf("%d entries, want 8 (A's seven and B's one)", len(live))
	}
	through, err := w.index.Rebuild(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := w.db.Journal().Head(ctx)
	if through == 0 || through > head {
		t.Errorf("rebuilt through %d, journal head %d", through, head)
	}
	rebuilt := w.entries()
	for id, e := range live {
		r := rebuilt[id]
		if e.Department != r.Department || e.Outcome != r.Outcome || e.Case != r.Case || !slices.Equal(e.Services, r.Services) || e.LastSeq != r.LastSeq {
			t.Errorf("%s: live %+v\nrebuilt %+v", id, e, r)
		}
	}
}

func (w *world) entries() map[string]siobroker.RequestEntry {
	w.t.Helper()
	out := map[string]siobroker.RequestEntry{}
	err := w.db.ScanRequests(context.Background(), siobroker.RequestFilter{}, func(int) error { return nil }, func(e siobroker.RequestEntry) error {
		out[e.RequestID] = e
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// TestReportWhileTheIndexLags: a report brings the index up to the journal's end first; an index
// further behind than ReportCatchUp, or that cannot be written, refuses the report
// SIO-UNAVAILABLE (journaled), and the journal takes every record all the same.
func TestReportWhileTheIndexLags(t *testing.T) {
	w := newWorld(t, Config{})
	w.seed()
	// Nothing was folded yet: the report folds it.
	if seq, _ := w.db.IndexedThrough(context.Background()); seq != 0 {
		t.Fatalf("indexed through %d before any report", seq)
	}
	if _, order := w.csvReport(w.ctrlA, period()); len(order) != 6 {
		t.Fatalf("report %v", order)
	}
	// An index that cannot be written: the journal still takes the requests, the report is refused.
	broken, err := NewIndexer(IndexerConfig{}, w.db.Journal(), failingIndex{w.db}, w.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{}, w.db.Journal(), broken, w.reg, w.clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.journal(request{id: "rA7", signer: w.userA1, org: orgAName, at: testNow.Add(-time.Hour), query: query(1, 1)})
	_, _, _, err = svc.Report(context.Background(), w.ctrlA, soap.ReportQuery{From: pFrom, To: pTo, Format: soap.ReportCSV})
	wantCode(t, err, siobroker.CodeUnavailable)
	if last := w.uses(); last[len(last)-1].Code != string(siobroker.CodeUnavailable) {
		t.Errorf("the refusal was not journaled: %+v", last[len(last)-1])
	}
	// Further behind than a report folds: refused, and complete once the rest is folded.
	for i := range 6 {
		w.journal(request{id: "bulk" + string(rune('a'+i)), signer: w.userA2, org: orgAName, at: testNow.Add(-time.Hour), query: query(1, 1)})
	}
	small, _ := NewIndexer(IndexerConfig{Batch: 1}, w.db.Journal(), w.db, w.db, nil)
	svc, err = New(Config{IndexCatchUp: 2}, w.db.Journal(), small, w.reg, w.clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = svc.Report(context.Background(), w.ctrlA, soap.ReportQuery{From: pFrom, To: pTo, Format: soap.ReportCSV})
	wantCode(t, err, siobroker.CodeUnavailable)
	if !strings.Contains(siobroker.ErrorMessage(err), "still being built") {
		t.Errorf("refusal: %v", err)
	}
	if _, order := w.csvReport(w.ctrlA, period()); len(order) != 13 {
		t.Errorf("after catching up: %d requests, want 13", len(order))
	}
}

// failingIndex is an index whose writes fail.
type failingIndex struct{ siobroker.RequestIndex }

func (failingIndex) PutRequestEntries(context.Context, int64, int64, []siobroker.RequestEntry) error {
	return errors.New("disk I/O error")
}

// countingIndex counts the writes of an index.
type countingIndex struct {
	siobroker.RequestIndex
	writes int
}

func (c *countingIndex) PutRequestEntries(ctx context.Context, from, through int64, entries []siobroker.RequestEntry) error {
	c.writes++
	return c.RequestIndex.PutRequestEntries(ctx, from, through, entries)
}

// TestPacedCatchUpGivesTheSameIndex: the broker's background catch-up (CatchUpPaced) writes the
// index in batches of PacedBatch records, resting between them, and the index is the one a
// rebuild in batches of Batch gives.
func TestPacedCatchUpGivesTheSameIndex(t *testing.T) {
	w := newWorld(t, Config{})
	ctx := context.Background()
	w.seed()
	counting := &countingIndex{RequestIndex: w.db}
	paced, err := NewIndexer(IndexerConfig{PacedBatch: 3, PacedShare: 0.5}, w.db.Journal(), counting, w.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	through, done, err := paced.CatchUpPaced(ctx, 0)
	if err != nil || !done {
		t.Fatalf("CatchUpPaced: through %d, done %v, %v", through, done, err)
	}
	head, _, _ := w.db.Journal().Head(ctx)
	if through != head {
		t.Errorf("caught up through %d, journal head %d", through, head)
	}
	if want := int(head+2) / 3; counting.writes != want {
		t.Errorf("%d writes of the index for %d records, want %d (batches of 3)", counting.writes, head, want)
	}
	caught := w.entries()
	if _, err := w.index.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rebuilt := w.entries()
	if len(caught) != len(rebuilt) || len(caught) == 0 {
		t.Fatalf("%d entries caught up, %d rebuilt", len(caught), len(rebuilt))
	}
	for id, e := range rebuilt {
		c := caught[id]
		if e.Department != c.Department || e.Outcome != c.Outcome || e.Case != c.Case || !slices.Equal(e.Services, c.Services) || e.LastSeq != c.LastSeq {
			t.Errorf("%s: caught up %+v\nrebuilt %+v", id, c, e)
		}
	}
}
