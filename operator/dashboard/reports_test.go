package dashboard_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// withReports serves the fixture's dashboard again with reports over its journal, its request
// index and its registry, and journals a request of the demo organisation to report on.
func (f *fixture) withReports(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	j := f.db.Journal()
	indexer, err := reports.NewIndexer(reports.IndexerConfig{}, j, f.db, f.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := reports.New(reports.Config{TempDir: t.TempDir()}, j, indexer, f.users, f.clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Reports = svc
	if f.handler, err = dashboard.New(f.cfg); err != nil {
		t.Fatal(err)
	}
	f.server = httptest.NewServer(f.handler)
	t.Cleanup(f.server.Close)

	// An hour ago, but never before the clock's day began (Astana): the reports of the tests cover
	// that day, and between midnight and one in Astana an hour ago was the day before.
	now := f.clock.Now()
	at := now.Add(-time.Hour)
	if day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location()); at.Before(day) {
		at = day
	}
	raw, err := soap.Serialize(soap.NewRequest(siobroker.RequestInfo{MessageID: "m-1", MessageDate: at}, siobroker.Query{
		Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "261500031000123"}, Subject: siobroker.Subject{IIN: "870315123455"},
		Services: []int{1, 5}, Purpose: "проверка по уголовному делу"}))
	if err != nil {
		t.Fatal(err)
	}
	rec := func(kind siobroker.JournalKind, service int, code string, data []byte) siobroker.JournalRecord {
		return siobroker.JournalRecord{At: at, Kind: kind, RequestID: "req-1", MessageID: "m-1", SignerIIN: pki.operator.IIN,
			Organisation: devpki.DemoOrganisation, Service: service, Code: code, Data: data}
	}
	if _, err := j.Append(ctx, rec(siobroker.JournalRequest, 0, "", raw), rec(siobroker.JournalExchange, 1, "ok/OK", []byte(`{}`)),
		rec(siobroker.JournalExchange, 5, "denied/DENIED_BASIS", []byte(`{}`)), rec(siobroker.JournalReply, 0, "", []byte("<reply/>"))); err != nil {
		t.Fatal(err)
	}
}

// grant gives u the reports right, and takes the operator right away.
func (f *fixture) grant(t *testing.T, u devpki.User) {
	t.Helper()
	ctx := context.Background()
	user, _, err := f.db.User(ctx, u.IIN)
	if err != nil {
		t.Fatal(err)
	}
	user.ReportsRight, user.OperatorRight = true, false
	if _, err := f.users.Apply(ctx, siobroker.Application{Kind: siobroker.ApplyMove, IIN: u.IIN, Reason: "мотивированное письмо", By: "test", User: user}); err != nil {
		t.Fatal(err)
	}
}

// TestReportsInTheDashboard: a holder of the reports right without the operator right gets a
// session whose page is the reports form, and nothing of the operator's; the form's POST, with
// the session's CSRF token, answers the report (CSV or XLSX to download, JSON to show), and the
// reports service journals the use; a POST without the token is refused and journaled.
func TestReportsInTheDashboard(t *testing.T) {
	f := newFixture(t)
	// Without reports wired in, the reports right opens no session.
	f.grant(t, pki.judge)
	if _, body := f.postLogin(t, f.signedLogin(t, pki.judge, signing.PlacementWSSE)); !strings.Contains(string(body), "SIO-DASHBOARD-DENIED") {
		t.Fatalf("a reports-only login without reports: %s", body)
	}
	f.withReports(t)
	c, csrf := f.session(t, pki.judge)
	var s struct {
		Operator, Reports bool
		Now               string
	}
	if status := f.getJSON(t, c, "session", &s); status != http.StatusOK || s.Operator || !s.Reports {
		t.Fatalf("session: HTTP %d %+v", status, s)
	}
	for _, api := range []string{"services", "incidents", "deadletters", "maintenance"} {
		var r refusal
		if status := f.getJSON(t, c, api, &r); status != http.StatusForbidden || r.Code != siobroker.CodeDashboardDenied {
			t.Errorf("api/%s for a reports-only session: HTTP %d %+v", api, status, r)
		}
	}
	status, body := f.act(t, c, dashboard.Path+"api/maintenance", csrf, url.Values{"reason": {"x"}})
	wantRefusal(t, status, body, http.StatusForbidden, siobroker.CodeDashboardDenied)

	today := f.clock.Now().Format(time.DateOnly)
	form := url.Values{"from": {today}, "to": {today}, "format": {"csv"}}
	status, body = f.act(t, c, dashboard.ReportsPath, "", form)
	wantRefusal(t, status, body, http.StatusForbidden, siobroker.CodeDashboardCSRF)

	resp, body := f.postReport(t, c, csrf, form)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-SIO-Records") != "1" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV: HTTP %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][1] != "req-1" || rows[1][9] != "261500031000123" || rows[1][15] != "partial" {
		t.Fatalf("CSV (%v): %v", err, rows)
	}
	form.Set("format", "xlsx")
	if resp, body = f.postReport(t, c, csrf, form); resp.StatusCode != http.StatusOK {
		t.Fatalf("XLSX: HTTP %d\n%s", resp.StatusCode, body)
	}
	x, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if rows, _ := x.GetRows("requests"); len(rows) != 2 || rows[1][12] != "870315123455" {
		t.Errorf("XLSX rows %v", rows)
	}
	x.Close()
	form.Set("format", "json")
	form.Set("kind", "summary")
	resp, body = f.postReport(t, c, csrf, form)
	var summary []map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &summary) != nil || len(summary) != 1 || summary[0]["partial"] != float64(1) {
		t.Fatalf("summary: HTTP %d %s", resp.StatusCode, body)
	}
	// A period the other way round: refused by reports, plain text with the code.
	form.Set("from", f.clock.Now().AddDate(0, 0, 2).Format(time.DateOnly))
	if resp, body = f.postReport(t, c, csrf, form); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-SIO-Error-Code") != string(siobroker.CodeSchema) {
		t.Errorf("a reversed period: HTTP %d %s", resp.StatusCode, body)
	}

	uses, err := f.db.Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalReport}})
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) != 3 || uses[0].SignerIIN != pki.judge.IIN || uses[0].Code != "ok" || !strings.Contains(string(uses[0].Data), `"channel":"dashboard"`) {
		t.Errorf("uses journaled: %+v", uses)
	}
	refused := 0
	for _, r := range f.operatorRecords(t) {
		if d := decode(t, r); d.Action == "report" && (d.Refusal == siobroker.CodeDashboardCSRF || d.Refusal == siobroker.CodeSchema) {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("%d refused report forms journaled, want 2 (the token, the period)", refused)
	}

	// The operator holds the reports right too (the demo prosecutor): both halves of the page.
	op, _ := f.session(t, pki.operator)
	if status := f.getJSON(t, op, "session", &s); status != http.StatusOK || !s.Operator || !s.Reports {
		t.Errorf("the operator's session: %+v", s)
	}
}

// postReport posts the reports form with the session's token from the page's own origin.
func (f *fixture) postReport(t *testing.T, c *http.Client, csrf string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	v := url.Values{}
	for k, vs := range form {
		v[k] = vs
	}
	v.Set("csrf", csrf)
	req, err := http.NewRequest(http.MethodPost, f.server.URL+dashboard.ReportsPath, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.server.URL)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp, b.Bytes()
}
