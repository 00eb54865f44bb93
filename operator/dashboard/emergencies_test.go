package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/operator/incidents"
)

func shippedPlans(t *testing.T) *incidents.Plans {
	t.Helper()
	plans, err := incidents.LoadPlans("../../configs/emergencies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return plans
}

// emergencyView is what GET api/incidents says of the emergencies.
type emergencyView struct {
	Open []struct {
		Number  int64
		Type    string
		Reason  string
		Actions []struct {
			No                 int
			Max                string
			StartedAt, EndedAt string
		}
	}
	Overdue map[string][]int
	Kinds   []struct {
		Kind    string
		Section int
		Title   string
		Actions int
	}
	PlansNote    string
	PlansExample bool
}

// TestEmergencyOnTheDashboard: the operator opens an emergency of Appendix 7 by a POST carrying the
// session's CSRF token (and not without it), records its actions' starts and ends, sees the action
// past its maximum time, and every action, allowed or refused, is journaled with who did it.
func TestEmergencyOnTheDashboard(t *testing.T) {
	f := newFixture(t)
	c, csrf := f.session(t, pki.operator)
	onset := f.clock.Now().In(siobroker.Astana).Add(-30 * time.Minute)
	form := url.Values{"kind": {"power-failure"}, "cause": {"отключение городской сети"}, "started": {onset.Format("2006-01-02T15:04")}}

	status, body := f.act(t, c, dashboard.Path+"api/emergencies", "", form)
	wantRefusal(t, status, body, http.StatusForbidden, siobroker.CodeDashboardCSRF)
	status, body = f.act(t, c, dashboard.Path+"api/emergencies", csrf, url.Values{"kind": {"earthquake"}, "cause": {"x"}})
	wantRefusal(t, status, body, http.StatusBadRequest, siobroker.CodeSchema)
	status, body = f.act(t, c, dashboard.Path+"api/emergencies", csrf, form)
	if status != http.StatusOK {
		t.Fatalf("open: HTTP %d %s", status, body)
	}
	var inc siobroker.Incident
	if err := json.Unmarshal(body, &inc); err != nil || inc.Number != 1 || inc.Type != "power-failure" || len(inc.Actions) != 4 ||
		!inc.StartedAt.Equal(onset.Truncate(time.Minute)) {
		t.Fatalf("opened %s: %v", body, err)
	}
	status, body = f.act(t, c, dashboard.Path+"api/emergencies", csrf, form)
	wantRefusal(t, status, body, http.StatusConflict, siobroker.CodeDashboardConflict)

	action := func(no, phase string, form url.Values) (int, []byte) {
		return f.act(t, c, dashboard.Path+"api/incidents/1/actions/"+no+"/"+phase, csrf, form)
	}
	if status, body = action("1", "start", url.Values{"at": {onset.Format("2006-01-02T15:04")}}); status != http.StatusOK {
		t.Fatalf("start: HTTP %d %s", status, body)
	}
	var v emergencyView
	if status := f.getJSON(t, c, "incidents", &v); status != http.StatusOK {
		t.Fatalf("incidents: HTTP %d", status)
	}
	if len(v.Open) != 1 || v.Open[0].Reason != "отключение городской сети" || v.Open[0].Actions[0].Max != "5m0s" ||
		len(v.Overdue["1"]) != 1 || v.Overdue["1"][0] != 1 {
		t.Fatalf("incidents view: %+v", v)
	}
	if len(v.Kinds) != 6 || v.Kinds[4].Title != "Действия при отказе электропитания" || v.Kinds[4].Actions != 4 || !v.PlansExample || v.PlansNote != "" {
		t.Fatalf("kinds: %+v", v.Kinds)
	}
	if status, body = action("1", "end", nil); status != http.StatusOK {
		t.Fatalf("end: HTTP %d %s", status, body)
	}
	status, body = action("1", "end", nil)
	wantRefusal(t, status, body, http.StatusConflict, siobroker.CodeDashboardConflict)
	status, body = action("2", "end", nil)
	wantRefusal(t, status, body, http.StatusBadRequest, siobroker.CodeSchema)
	status, body = action("9", "start", nil)
	wantRefusal(t, status, body, http.StatusNotFound, siobroker.CodeDashboardNotFound)
	status, body = action("2", "finish", nil)
	wantRefusal(t, status, body, http.StatusNotFound, siobroker.CodeDashboardNotFound)
	status, body = action("2", "start", url.Values{"at": {f.clock.Now().Add(time.Hour).Format(time.RFC3339)}})
	wantRefusal(t, status, body, http.StatusBadRequest, siobroker.CodeSchema)

	var got []string
	for _, r := range f.operatorRecords(t) {
		var d struct {
			Action, By, Kind, Phase string
			Incident                int64
			ActionNo                int
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Action != "open" && d.Action != "action" {
			continue
		}
		if !strings.Contains(d.By, pki.operator.IIN) {
			t.Errorf("record %s names no operator", r.Data)
		}
		got = append(got, d.Action+":"+d.Phase+":"+r.Code)
	}
	want := "open::SIO-DASHBOARD-CSRF open::SIO-SCHEMA open::ok open::SIO-DASHBOARD-CONFLICT action:start:ok action:end:ok " +
		"action:end:SIO-DASHBOARD-CONFLICT action:end:SIO-SCHEMA action:start:SIO-DASHBOARD-NOT-FOUND action:finish:SIO-DASHBOARD-NOT-FOUND action:start:SIO-SCHEMA"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("operator records\n got %s\nwant %s", s, want)
	}
	recs, err := f.db.Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalIncident}})
	if err != nil || len(recs) != 3 || recs[0].Code != "opened" || recs[1].Code != "action-started" || recs[2].Code != "action-ended" {
		t.Fatalf("incident records %+v, %v", recs, err)
	}
}

// getPage GETs base+path in c and returns the answer and its body.
func getPage(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestRegisterPage: the register prints in the form of Appendix 7 for an operator with a session,
// styled by a sheet of the dashboard's own (its Content-Security-Policy forbids inline styles), or
// as CSV; it is refused without a session.
func TestRegisterPage(t *testing.T) {
	f := newFixture(t)
	c, csrf := f.session(t, pki.operator)
	if status, body := f.act(t, c, dashboard.Path+"api/emergencies", csrf, url.Values{"kind": {"flooding"}, "cause": {"протечка кровли"}}); status != http.StatusOK {
		t.Fatalf("open: HTTP %d %s", status, body)
	}
	resp, page := getPage(t, c, f.server.URL+dashboard.RegisterPath)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("register: HTTP %d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{"<h1>Журнал аварийных ситуаций</h1>", "6. Действия в случае затопления:", "протечка кровли",
		`href="/dashboard/static/register.css"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the register lacks %q", want)
		}
	}
	if strings.Contains(page, "<style>") {
		t.Error("the register has an inline style, which the dashboard's policy blocks")
	}
	resp, css := getPage(t, c, f.server.URL+dashboard.Path+"static/register.css")
	if resp.StatusCode != http.StatusOK || !strings.Contains(css, "@page") {
		t.Fatalf("register.css: HTTP %d", resp.StatusCode)
	}
	resp, csvText := getPage(t, c, f.server.URL+dashboard.RegisterPath+"?format=csv&from=2020-01-01T00:00")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || strings.Count(csvText, "протечка кровли") != 4 {
		t.Fatalf("register csv: HTTP %d %v\n%s", resp.StatusCode, resp.Header, csvText)
	}
	if resp, _ := getPage(t, browser(t), f.server.URL+dashboard.RegisterPath); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("register without a session: HTTP %d", resp.StatusCode)
	}
}

// TestNoPlansNoEmergency: without action plans the page says so and an emergency is refused as
// unsupported.
func TestNoPlansNoEmergency(t *testing.T) {
	f := newFixture(t)
	cfg := f.cfg
	cfg.Plans = nil
	h, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.server = httptest.NewServer(h)
	t.Cleanup(f.server.Close)
	c, csrf := f.session(t, pki.operator)
	var v emergencyView
	if f.getJSON(t, c, "incidents", &v); v.PlansNote != dashboard.NoPlans {
		t.Fatalf("plans note %q", v.PlansNote)
	}
	status, body := f.act(t, c, dashboard.Path+"api/emergencies", csrf, url.Values{"kind": {"flooding"}, "cause": {"x"}})
	wantRefusal(t, status, body, http.StatusNotImplemented, siobroker.CodeDashboardUnsupported)
}

// TestTimeInputsTakeAstana24Hour: the page's time fields are plain text in the 24-hour form
// "YYYY-MM-DD HH:MM" of Astana time, not the browser's datetime-local, whose picker follows the
// operator's locale (AM/PM) and time zone; the server takes what the fields ask for.
func TestTimeInputsTakeAstana24Hour(t *testing.T) {
	f := newFixture(t)
	c, csrf := f.session(t, pki.operator)
	_, page := getPage(t, c, f.server.URL+dashboard.Path)
	if strings.Contains(page, "datetime-local") {
		t.Error("the page still has a datetime-local input")
	}
	if strings.Contains(page, `type="date"`) {
		t.Error("the page still has a date input, whose picker follows the browser's locale")
	}
	for _, id := range []string{"em-at", "em-started", "mw-start", "mw-end"} {
		i := strings.Index(page, `id="`+id+`"`)
		if i < 0 {
			t.Fatalf("no input %s", id)
		}
		input := page[i : i+strings.Index(page[i:], ">")]
		if !strings.Contains(input, `type="text"`) || !strings.Contains(input, `pattern="\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}"`) ||
			!strings.Contains(input, "UTC+05:00") {
			t.Errorf("input %s: %s", id, input)
		}
	}
	started := f.clock.Now().Add(-30 * time.Minute).Format("2006-01-02 15:04")
	if status, body := f.act(t, c, dashboard.Path+"api/emergencies", csrf,
		url.Values{"kind": {"flooding"}, "cause": {"протечка"}, "started": {started}}); status != http.StatusOK {
		t.Fatalf("an onset in the 24-hour form: HTTP %d %s", status, body)
	}
	from := f.clock.Now().Add(-time.Hour).Format("2006-01-02 15:04")
	if resp, csvText := getPage(t, c, f.server.URL+dashboard.RegisterPath+"?format=csv&from="+url.QueryEscape(from)); resp.StatusCode != http.StatusOK ||
		!strings.Contains(csvText, started[11:]) {
		t.Fatalf("register from %s: HTTP %d\n%s", from, resp.StatusCode, csvText)
	}
}
