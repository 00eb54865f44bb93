package dashboard_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// The development PKI of the tests, generated once.
var pki struct {
	dir      string
	manifest *devpki.Manifest
	trust    *signing.TrustStore
	broker   *signing.Signer
	operator devpki.User // the role-1 prosecutor: devpki.Manifest.Registrations grants him the operator right
	judge    devpki.User // valid, without the operator right
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dashboard-test-pki-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	man, err := devpki.Generate(dir, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "devpki:", err)
		return 1
	}
	pki.dir, pki.manifest = dir, man
	for _, u := range man.Users {
		switch {
		case u.Role == 1 && u.Status == devpki.StatusValid:
			pki.operator = u
		case u.Role == 2 && u.Status == devpki.StatusValid:
			pki.judge = u
		}
	}
	if pki.operator.IIN == "" || pki.judge.IIN == "" {
		fmt.Fprintln(os.Stderr, "the development PKI lacks a user the tests need")
		return 1
	}
	if pki.broker, err = signing.LoadSigner(filepath.Join(dir, man.BrokerCert), filepath.Join(dir, man.BrokerKey)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if pki.trust, err = signing.LoadTrustStore(signing.TrustConfig{
		RootFiles: []string{filepath.Join(dir, man.CA)}, CRLFiles: []string{filepath.Join(dir, man.CRL)},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// fixture is a dashboard over a real store, registry, journal and incident tracker.
type fixture struct {
	clock    *testclock.Clock
	db       *sqlite.DB
	users    *users.Registry
	tracker  *incidents.Tracker
	schedule *maintenance.Schedule
	cfg      dashboard.Config // what handler was built with
	handler  http.Handler
	server   *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testclock.New(time.Now().In(siobroker.Astana))}
	var err error
	if f.db, err = sqlite.Open(ctx, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	f.users = users.New(f.db, f.clock, nil)
	if err := f.users.RegisterMissing(ctx, pki.manifest.Registrations(f.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if f.tracker, err = incidents.NewTracker(incidents.Config{}, f.db, f.db.Journal(), f.clock, nil); err != nil {
		t.Fatal(err)
	}
	emergencies, err := incidents.NewService(f.db, f.db.Journal(), f.clock, "siobroker")
	if err != nil {
		t.Fatal(err)
	}
	f.schedule = maintenance.NewSchedule(f.db, f.clock, maintenance.Policy{MinNotice: siobroker.DefaultMaintenanceMinNotice, Emergencies: emergencies})
	if err := f.schedule.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f.cfg = dashboard.Config{
		Services: func(context.Context) ([]health.ServiceState, error) {
			return []health.ServiceState{{Service: 1, Queue: schemas.ServiceTopic(1), QueueDepth: -1, DeadLetters: -1, InFlight: 2,
				OldestAge: 90 * time.Second, Dispatched: 10, Answered: 8, Errors: 1, ErrorRate: 0.1}}, nil
		},
		Incidents:        dashboard.IncidentsOf(f.tracker, f.db),
		Plans:            shippedPlans(t),
		Maintenance:      f.schedule,
		Applications:     f.db,
		Users:            f.users,
		Journal:          f.db.Journal(),
		Replay:           f.db,
		Verify:           mustVerifier(t, signing.VerifierConfig{Trust: pki.trust}).Verify,
		Sign:             pki.broker.Sign,
		VerifyClientCert: pki.trust.VerifyChain,
		Clock:            f.clock,
	}
	if f.handler, err = dashboard.New(f.cfg); err != nil {
		t.Fatal(err)
	}
	f.server = httptest.NewServer(f.handler)
	t.Cleanup(f.server.Close)
	return f
}

// TestNewValidates: New refuses a Config that lacks a required field or holds a negative
// duration, naming the field, where it used to panic.
func TestNewValidates(t *testing.T) {
	full := newFixture(t).cfg
	for _, tt := range []struct {
		want string
		mod  func(*dashboard.Config)
	}{
		{"dashboard: Config.Services is required", func(c *dashboard.Config) { c.Services = nil }},
		{"dashboard: Config.Incidents is required", func(c *dashboard.Config) { c.Incidents = nil }},
		{"dashboard: Config.Users is required", func(c *dashboard.Config) { c.Users = nil }},
		{"dashboard: Config.Journal is required", func(c *dashboard.Config) { c.Journal = nil }},
		{"dashboard: Config.Replay is required", func(c *dashboard.Config) { c.Replay = nil }},
		{"dashboard: Config.Verify is required", func(c *dashboard.Config) { c.Verify = nil }},
		{"dashboard: Config.Sign is required", func(c *dashboard.Config) { c.Sign = nil }},
		{"dashboard: Config.Clock is required", func(c *dashboard.Config) { c.Clock = nil }},
		{"dashboard: Config.MessageDateWindow must not be negative", func(c *dashboard.Config) { c.MessageDateWindow = -time.Minute }},
		{"dashboard: Config.TicketTTL must not be negative", func(c *dashboard.Config) { c.TicketTTL = -time.Minute }},
		{"dashboard: Config.SessionTTL must not be negative", func(c *dashboard.Config) { c.SessionTTL = -time.Minute }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c := full
			tt.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
			if h, err := dashboard.New(c); err == nil || h != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, %v, want %q", h, err, tt.want)
			}
		})
	}
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func signer(t *testing.T, u devpki.User) *signing.Signer {
	t.Helper()
	s, err := signing.LoadSigner(filepath.Join(pki.dir, u.Cert), filepath.Join(pki.dir, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedLogin is a q:dashboardLogin signed by u, dated by the fixture's clock.
func (f *fixture) signedLogin(t *testing.T, u devpki.User, p signing.Placement) []byte {
	t.Helper()
	info := siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "SIO_PSO_DASHBOARD", SenderID: "TEST", MessageDate: f.clock.Now()}
	doc := soap.NewDashboardLoginRequest(info)
	if err := signer(t, u).Sign(doc, p); err != nil {
		t.Fatal(err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *fixture) postLogin(t *testing.T, raw []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(f.server.URL+dashboard.LoginPath, "text/xml; charset=utf-8", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// login signs in as u and returns the ticket link the broker answered, after checking the
// reply's signature.
func (f *fixture) login(t *testing.T, u devpki.User, p signing.Placement) soap.DashboardTicket {
	t.Helper()
	status, body := f.postLogin(t, f.signedLogin(t, u, p))
	if status != http.StatusOK {
		t.Fatalf("login of %s: HTTP %d\n%s", u.IIN, status, body)
	}
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(body), "text/xml", soap.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := mustVerifier(t, signing.VerifierConfig{Trust: pki.trust, AnySigner: true}).Verify(context.Background(), doc, time.Now())
	if err != nil {
		t.Fatalf("the ticket reply's signature: %v", err)
	}
	var tk soap.DashboardTicket
	if p == signing.PlacementWSSE {
		_, tk, err = soap.ParseDashboardTicketResponse(v.Signed)
	} else {
		tk, err = soap.ParseDashboardTicket(v.Signed)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tk.Link, dashboard.Path+"?ticket=") || !tk.Expires.Equal(f.clock.Now().Add(dashboard.DefaultTicketTTL).Truncate(time.Millisecond)) {
		t.Fatalf("ticket = %+v", tk)
	}
	return tk
}

// open opens a ticket link in c as a browser does: the GET answers the form that opens the
// session, and open submits it. It returns the answer to the POST, or to the GET when that is
// not the form.
func (f *fixture) open(t *testing.T, c *http.Client, link string) *http.Response {
	t.Helper()
	return f.submitForm(t, c, f.server.URL, link)
}

// sessionForm is the form that opens a session, as the GET of a ticket link or of the page with
// a client certificate answers it.
var sessionForm = regexp.MustCompile(`name="(csrf|ticket)" value="([^"]*)"`)

// submitForm GETs path from base in c and, if the answer is the form that opens a session, posts
// it and returns the answer to the POST.
func (f *fixture) submitForm(t *testing.T, c *http.Client, base, path string) *http.Response {
	t.Helper()
	resp, err := c.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp
	}
	form := url.Values{}
	for _, m := range sessionForm.FindAllStringSubmatch(string(b), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("csrf") == "" {
		t.Fatalf("GET %s: no session form:\n%s", path, b)
	}
	resp, err = c.PostForm(base+dashboard.SessionPath, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// session logs u in and returns a browser holding the session, and its CSRF token.
func (f *fixture) session(t *testing.T, u devpki.User) (*http.Client, string) {
	t.Helper()
	c := browser(t)
	resp := f.open(t, c, f.login(t, u, signing.PlacementWSSE).Link)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != dashboard.Path {
		t.Fatalf("opening the ticket: HTTP %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var s struct {
		IIN, CSRF, Channel string
	}
	if status := f.getJSON(t, c, "session", &s); status != http.StatusOK || s.IIN != u.IIN || s.CSRF == "" || s.Channel != "ticket" {
		t.Fatalf("session: HTTP %d %+v", status, s)
	}
	return c, s.CSRF
}

func (f *fixture) getJSON(t *testing.T, c *http.Client, api string, v any) int {
	t.Helper()
	resp, err := c.Get(f.server.URL + dashboard.Path + "api/" + api)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET api/%s: HTTP %d, not JSON: %v", api, resp.StatusCode, err)
	}
	return resp.StatusCode
}

type refusal struct {
	Code    siobroker.Code
	Message string
	Field   string
}

// act posts an action with form; the CSRF token is added when csrf is not "".
func (f *fixture) act(t *testing.T, c *http.Client, path, csrf string, form url.Values, hdr ...string) (int, []byte) {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if csrf != "" {
		form.Set("csrf", csrf)
	}
	req, err := http.NewRequest(http.MethodPost, f.server.URL+path, strings.NewReader(form.Encode()))
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func wantRefusal(t *testing.T, status int, body []byte, wantStatus int, code siobroker.Code) refusal {
	t.Helper()
	var r refusal
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("want %s, got HTTP %d: %s", code, status, body)
	}
	if status != wantStatus || r.Code != code {
		t.Fatalf("want HTTP %d %s, got HTTP %d %s: %s", wantStatus, code, status, r.Code, r.Message)
	}
	return r
}

// operatorRecords returns the journal's JournalOperator records.
func (f *fixture) operatorRecords(t *testing.T) []siobroker.JournalRecord {
	t.Helper()
	recs, err := f.db.Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalOperator}})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

type journalDetails struct {
	Action, Channel, By, Note, Measures, Responsible string
	Incident, WindowID                               int64
	Refusal                                          siobroker.Code
}

func decode(t *testing.T, r siobroker.JournalRecord) journalDetails {
	t.Helper()
	var d journalDetails
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatalf("journal record %d: %v", r.Seq, err)
	}
	return d
}

// TestDeniedWithoutSession: the page, the API and the actions refuse a browser with neither a
// session nor a client certificate, with SIO-DASHBOARD-DENIED; nothing is journaled.
func TestDeniedWithoutSession(t *testing.T) {
	f := newFixture(t)
	c := browser(t)
	resp, err := c.Get(f.server.URL + dashboard.Path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-SIO-Error-Code") != string(siobroker.CodeDashboardDenied) ||
		!strings.Contains(string(page), "SIO-DASHBOARD-DENIED") || !strings.Contains(string(page), "siobroker dashboard login") {
		t.Fatalf("page without a session: HTTP %d %s\n%s", resp.StatusCode, resp.Header.Get("X-SIO-Error-Code"), page)
	}
	for _, api := range []string{"session", "services", "incidents", "deadletters", "maintenance"} {
		var r refusal
		if status := f.getJSON(t, c, api, &r); status != http.StatusForbidden || r.Code != siobroker.CodeDashboardDenied {
			t.Errorf("api/%s without a session: HTTP %d %+v", api, status, r)
		}
	}
	status, body := f.act(t, c, dashboard.Path+"api/incidents/1/close", "whatever", url.Values{"note": {"x"}})
	wantRefusal(t, status, body, http.StatusForbidden, siobroker.CodeDashboardDenied)
	// A forged cookie is no session.
	u, _ := url.Parse(f.server.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: dashboard.CookieName, Value: "forged", Path: "/dashboard"}})
	var r refusal
	if status := f.getJSON(t, c, "services", &r); status != http.StatusForbidden || r.Code != siobroker.CodeDashboardDenied {
		t.Errorf("a forged cookie: HTTP %d %+v", status, r)
	}
	if recs := f.operatorRecords(t); len(recs) != 0 {
		t.Errorf("unidentified requests were journaled: %+v", recs)
	}
}

// TestDeniedWithoutOperatorRight: a valid, active user without the operator right is refused at
// login, and the refusal is journaled with the user; an operator whose right is withdrawn loses
// the open session at the next request.
func TestDeniedWithoutOperatorRight(t *testing.T) {
	f := newFixture(t)
	status, body := f.postLogin(t, f.signedLogin(t, pki.judge, signing.PlacementWSSE))
	fault, ok := soap.ParseFault(body)
	if !ok || fault.Code != siobroker.CodeDashboardDenied || !strings.Contains(fault.Message, "operator right") {
		t.Fatalf("login of a user without the operator right: HTTP %d\n%s", status, body)
	}
	recs := f.operatorRecords(t)
	if len(recs) != 1 || recs[0].SignerIIN != pki.judge.IIN || recs[0].Code != string(siobroker.CodeDashboardDenied) ||
		decode(t, recs[0]).Action != "login" {
		t.Fatalf("journal of the refused login: %+v", recs)
	}

	c, csrf := f.session(t, pki.operator)
	ctx := context.Background()
	u, _, err := f.db.User(ctx, pki.operator.IIN)
	if err != nil {
		t.Fatal(err)
	}
	u.OperatorRight = false
	if _, err := f.users.Apply(ctx, siobroker.Application{Kind: siobroker.ApplyMove, IIN: u.IIN, Reason: "право отозвано", By: "test", User: u}); err != nil {
		t.Fatal(err)
	}
	var r refusal
	if status := f.getJSON(t, c, "services", &r); status != http.StatusForbidden || r.Code != siobroker.CodeDashboardDenied {
		t.Fatalf("after the right was withdrawn: HTTP %d %+v", status, r)
	}
	// The session is gone: granting the right again does not bring it back.
	u.OperatorRight = true
	if _, err := f.users.Apply(ctx, siobroker.Application{Kind: siobroker.ApplyMove, IIN: u.IIN, Reason: "право возвращено", By: "test", User: u}); err != nil {
		t.Fatal(err)
	}
	status, body = f.act(t, c, dashboard.Path+"logout", csrf, nil)
	wantRefusal(t, status, body, http.StatusForbidden, siobroker.CodeDashboardDenied)
}

// TestCSRFRefused: an action with no token, another session's token, or from another origin is
// refused with SIO-DASHBOARD-CSRF and journaled; the same action with the token is carried out.
func TestCSRFRefused(t *testing.T) {
	f := newFixture(t)
	c, csrf := f.session(t, pki.operator)
	_, otherCSRF := f.session(t, pki.operator)
	if otherCSRF == csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	// 25 hours ahead: over the minimum notice of 24 hours once the form drops the seconds.
	announce := func() url.Values {
		start := f.clock.Now().Add(25 * time.Hour).In(siobroker.Astana)
		return url.Values{"services": {"1, 5"}, "start": {start.Format("2006-01-02T15:04")},
			"end": {start.Add(2 * time.Hour).Format("2006-01-02T15:04")}, "reason": {"обновление СУБД"}}
	}
	path := dashboard.Path + "api/maintenance"
	for name, c2 := range map[string]struct {
		csrf string
		hdr  []string
	}{
		"no token":            {"", nil},
		"another's token":     {otherCSRF, nil},
		"a cross-site origin": {csrf, []string{"Origin", "https://evil.example"}},
		"a cross-site fetch":  {csrf, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		status, body := f.act(t, c, path, c2.csrf, announce(), c2.hdr...)
		if r := wantRefusal(t, status, body, http.StatusForbidden, siobroker.CodeDashboardCSRF); r.Message == "" {
			t.Errorf("%s: no message", name)
		}
	}
	if w, _ := f.schedule.Windows(context.Background(), true); len(w) != 0 {
		t.Fatalf("a refused action announced a window: %+v", w)
	}
	status, body := f.act(t, c, path, csrf, announce(), "Origin", f.server.URL, "Sec-Fetch-Site", "same-origin")
	if status != http.StatusOK {
		t.Fatalf("announce with the token: HTTP %d %s", status, body)
	}
	var refusals, announced int
	for _, r := range f.operatorRecords(t) {
		d := decode(t, r)
		switch {
		case d.Action == "announce" && r.Code == string(siobroker.CodeDashboardCSRF) && r.SignerIIN == pki.operator.IIN:
			refusals++
		case d.Action == "announce" && r.Code == "ok" && strings.Contains(d.By, pki.operator.IIN):
			announced++
		}
	}
	if refusals != 4 || announced != 1 {
		t.Fatalf("journal: %d CSRF refusals and %d announcements, want 4 and 1", refusals, announced)
	}
}

// TestTicketSingleUse: a ticket opens one session only, and none after it expires; a session ends
// after SessionTTL.
func TestTicketSingleUse(t *testing.T) {
	f := newFixture(t)
	tk := f.login(t, pki.operator, signing.PlacementEnveloped)
	c := browser(t)
	// A HEAD of the link (a preview) spends nothing.
	head, err := c.Head(f.server.URL + tk.Link)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusMethodNotAllowed || len(head.Cookies()) != 0 {
		t.Fatalf("HEAD of the ticket link: HTTP %d, cookies %v", head.StatusCode, head.Cookies())
	}
	if resp := f.open(t, c, tk.Link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use: HTTP %d", resp.StatusCode)
	}
	other := browser(t)
	resp := f.open(t, other, tk.Link)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-SIO-Error-Code") != string(siobroker.CodeDashboardTicket) {
		t.Fatalf("second use: HTTP %d %s", resp.StatusCode, resp.Header.Get("X-SIO-Error-Code"))
	}
	var r refusal
	if status := f.getJSON(t, other, "services", &r); status != http.StatusForbidden {
		t.Fatalf("the second use opened a session: HTTP %d", status)
	}

	late := f.login(t, pki.operator, signing.PlacementWSSE)
	f.clock.Advance(dashboard.DefaultTicketTTL + time.Second)
	if resp := f.open(t, browser(t), late.Link); resp.StatusCode != http.StatusForbidden ||
		resp.Header.Get("X-SIO-Error-Code") != string(siobroker.CodeDashboardTicket) {
		t.Fatalf("an expired ticket: HTTP %d %s", resp.StatusCode, resp.Header.Get("X-SIO-Error-Code"))
	}

	var s struct{ IIN string }
	if status := f.getJSON(t, c, "session", &s); status != http.StatusOK || s.IIN != pki.operator.IIN {
		t.Fatalf("the first session: HTTP %d %+v", status, s)
	}
	f.clock.Advance(dashboard.DefaultSessionTTL)
	if status := f.getJSON(t, c, "session", &r); status != http.StatusForbidden || r.Code != siobroker.CodeDashboardDenied {
		t.Fatalf("a session past its 8 hours: HTTP %d %+v", status, r)
	}
}

// TestLoginChecks: the signed login is checked as every signed request: replays, unsigned
// envelopes and another data element are refused with their codes.
func TestLoginChecks(t *testing.T) {
	f := newFixture(t)
	raw := f.signedLogin(t, pki.operator, signing.PlacementEnveloped)
	if status, body := f.postLogin(t, raw); status != http.StatusOK {
		t.Fatalf("first login: HTTP %d\n%s", status, body)
	}
	fault := func(raw []byte, code siobroker.Code) {
		t.Helper()
		status, body := f.postLogin(t, raw)
		got, ok := soap.ParseFault(body)
		if !ok || got.Code != code {
			t.Fatalf("want fault %s, got HTTP %d\n%s", code, status, body)
		}
	}
	fault(raw, siobroker.CodeReplayID)
	unsigned, err := soap.Serialize(soap.NewDashboardLoginRequest(siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "S",
		SenderID: "T", MessageDate: f.clock.Now()}))
	if err != nil {
		t.Fatal(err)
	}
	fault(unsigned, siobroker.CodeSigMissing)
	report := soap.NewReportRequest(siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "S", SenderID: "T", MessageDate: f.clock.Now()},
		soap.ReportQuery{From: f.clock.Now().Add(-time.Hour), To: f.clock.Now(), Format: "csv"})
	if err := signer(t, pki.operator).Sign(report, signing.PlacementWSSE); err != nil {
		t.Fatal(err)
	}
	rawReport, err := soap.Serialize(report)
	if err != nil {
		t.Fatal(err)
	}
	fault(rawReport, siobroker.CodeSchema)
	// A login signed ten minutes ago is outside the window.
	f.clock.Advance(-10 * time.Minute)
	old := f.signedLogin(t, pki.operator, signing.PlacementWSSE)
	f.clock.Advance(10 * time.Minute)
	fault(old, siobroker.CodeReplayDate)
}

// TestActions: through the API an operator annotates and closes an incident the tracker opened,
// announces and cancels a maintenance window, and is told that GoChannel has no dead-letter
// queue; each action is journaled with who did it, and the incident's history names the operator.
func TestActions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, csrf := f.session(t, pki.operator)

	f.tracker.Sent("m-1", siobroker.IncidentCause{Service: 7, Queue: schemas.ServiceTopic(7)}, f.clock.Now())
	f.clock.Advance(incidents.DefaultThreshold + time.Minute)
	if err := f.tracker.Check(ctx); err != nil {
		t.Fatal(err)
	}
	var inc struct {
		Open, Recent []struct {
			Number                               int64
			Service                              int
			Queue, Status, Measures, Responsible string
			ClosedAt, CloseNote                  string
		}
	}
	if status := f.getJSON(t, c, "incidents", &inc); status != http.StatusOK || len(inc.Open) != 1 || inc.Open[0].Queue != "sio.service.007" {
		t.Fatalf("incidents: HTTP %d %+v", status, inc)
	}
	n := inc.Open[0].Number
	base := fmt.Sprintf("%sapi/incidents/%d/", dashboard.Path, n)

	status, body := f.act(t, c, base+"annotate", csrf, url.Values{})
	if r := wantRefusal(t, status, body, http.StatusBadRequest, siobroker.CodeSchema); r.Field != "measures" {
		t.Errorf("an empty annotation names %q", r.Field)
	}
	status, body = f.act(t, c, dashboard.Path+"api/incidents/999/close", csrf, url.Values{"note": {"x"}})
	wantRefusal(t, status, body, http.StatusNotFound, siobroker.CodeDashboardNotFound)
	if status, body = f.act(t, c, base+"annotate", csrf, url.Values{"measures": {"адаптер перезапущен"}, "responsible": {"Петров П."}}); status != http.StatusOK {
		t.Fatalf("annotate: HTTP %d %s", status, body)
	}
	if status, body = f.act(t, c, base+"close", csrf, url.Values{"note": {"доставка восстановлена"}}); status != http.StatusOK {
		t.Fatalf("close: HTTP %d %s", status, body)
	}
	status, body = f.act(t, c, base+"close", csrf, url.Values{"note": {"again"}})
	wantRefusal(t, status, body, http.StatusConflict, siobroker.CodeDashboardConflict)

	got, ok, err := f.db.Incident(ctx, n)
	if err != nil || !ok || got.Status != siobroker.IncidentClosed || got.CloseNote != "доставка восстановлена" ||
		got.Measures != "адаптер перезапущен" || got.Responsible != "Петров П." {
		t.Fatalf("incident in the store: %+v %v %v", got, ok, err)
	}
	events, err := f.db.IncidentEvents(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	by := "ИВАНОВ ИВАН (" + pki.operator.IIN + ")"
	if last := events[len(events)-1]; last.Kind != siobroker.IncidentEventClosed || last.By != by {
		t.Fatalf("the close is recorded as by %q, want %q", last.By, by)
	}
	if status := f.getJSON(t, c, "incidents", &inc); status != http.StatusOK || len(inc.Open) != 0 || len(inc.Recent) != 1 ||
		inc.Recent[0].CloseNote != "доставка восстановлена" || !strings.HasSuffix(inc.Recent[0].ClosedAt, "+05:00") {
		t.Fatalf("incidents after the close: %+v", inc)
	}

	// Maintenance: announce, then cancel. A planned window is announced at least the minimum
	// notice (24 hours here) ahead.
	start := f.clock.Now().Add(25 * time.Hour).In(siobroker.Astana)
	status, body = f.act(t, c, dashboard.Path+"api/maintenance", csrf, url.Values{"services": {"11, 5,5"},
		"start": {start.Format("2006-01-02T15:04")}, "end": {start.Add(-2 * time.Hour).Format("2006-01-02T15:04")}, "reason": {"x"}})
	if r := wantRefusal(t, status, body, http.StatusBadRequest, siobroker.CodeSchema); r.Field != "end" {
		t.Errorf("an end before the start names %q", r.Field)
	}
	soon := f.clock.Now().Add(time.Hour).In(siobroker.Astana)
	status, body = f.act(t, c, dashboard.Path+"api/maintenance", csrf, url.Values{"services": {"11"},
		"start": {soon.Format("2006-01-02T15:04")}, "end": {soon.Add(2 * time.Hour).Format("2006-01-02T15:04")}, "reason": {"замена сервера"}})
	if r := wantRefusal(t, status, body, http.StatusBadRequest, siobroker.CodeSchema); r.Field != "start" || !strings.Contains(r.Message, "at least 24h0m0s ahead") {
		t.Errorf("a window with an hour's notice: field %q, %s", r.Field, r.Message)
	}
	status, body = f.act(t, c, dashboard.Path+"api/maintenance", csrf, url.Values{"services": {"11, 5,5"},
		"start": {start.Format("2006-01-02T15:04")}, "end": {start.Add(2 * time.Hour).Format("2006-01-02T15:04")}, "reason": {"замена сервера"}})
	if status != http.StatusOK {
		t.Fatalf("announce: HTTP %d %s", status, body)
	}
	var mw struct {
		Available bool
		Windows   []struct {
			ID                        int64
			Services                  []int
			Start, State, AnnouncedBy string
		}
	}
	if status := f.getJSON(t, c, "maintenance", &mw); status != http.StatusOK || !mw.Available || len(mw.Windows) != 1 ||
		fmt.Sprint(mw.Windows[0].Services) != "[5 11]" || mw.Windows[0].State != "announced" || mw.Windows[0].AnnouncedBy != by ||
		mw.Windows[0].Start != start.Truncate(time.Minute).Format("2006-01-02T15:04:05.000-07:00") {
		t.Fatalf("maintenance: HTTP %d %+v", status, mw)
	}
	if status, body = f.act(t, c, fmt.Sprintf("%sapi/maintenance/%d/cancel", dashboard.Path, mw.Windows[0].ID), csrf, nil); status != http.StatusOK {
		t.Fatalf("cancel: HTTP %d %s", status, body)
	}
	f.getJSON(t, c, "maintenance", &mw)
	if mw.Windows[0].State != "cancelled" {
		t.Fatalf("after the cancel: %+v", mw)
	}
	status, body = f.act(t, c, fmt.Sprintf("%sapi/maintenance/%d/cancel", dashboard.Path, mw.Windows[0].ID), csrf, nil)
	wantRefusal(t, status, body, http.StatusConflict, siobroker.CodeDashboardConflict)
	status, body = f.act(t, c, dashboard.Path+"api/maintenance/999/cancel", csrf, nil)
	wantRefusal(t, status, body, http.StatusNotFound, siobroker.CodeDashboardNotFound)
	if ws, err := f.schedule.Windows(ctx, true); err != nil || len(ws) != 1 || ws[0].Cancelled.IsZero() {
		t.Fatalf("the schedule after the cancel: %+v %v", ws, err)
	}

	// An emergency may have begun already: it is announced, and opens an incident.
	begun := f.clock.Now().Add(-10 * time.Minute).In(siobroker.Astana)
	status, body = f.act(t, c, dashboard.Path+"api/maintenance", csrf, url.Values{"services": {"11"}, "emergency": {"true"},
		"start": {begun.Format("2006-01-02T15:04")}, "end": {begun.Add(2 * time.Hour).Format("2006-01-02T15:04")}, "reason": {"отказ диска"}})
	if status != http.StatusOK {
		t.Fatalf("announce an emergency: HTTP %d %s", status, body)
	}
	if open, err := f.db.Incidents(ctx, false); err != nil || len(open) != 1 || open[0].Type != siobroker.IncidentEmergencyMaintenance ||
		open[0].Cause.Service != 11 || !strings.Contains(open[0].LastError, "отказ диска") {
		t.Fatalf("the emergency's incident: %+v %v", open, err)
	}

	// GoChannel: no dead-letter queue, and the page says so.
	var dl struct {
		Available bool
		Note      string
	}
	if status := f.getJSON(t, c, "deadletters", &dl); status != http.StatusOK || dl.Available || !strings.Contains(dl.Note, "GoChannel") {
		t.Fatalf("deadletters on GoChannel: HTTP %d %+v", status, dl)
	}
	status, body = f.act(t, c, dashboard.Path+"api/deadletters/replay", csrf, nil)
	wantRefusal(t, status, body, http.StatusNotImplemented, siobroker.CodeDashboardUnsupported)

	var svc struct {
		AsOf     string
		Services []struct {
			Queue            string
			QueueDepth       int64
			OldestAgeSeconds float64
		}
	}
	if status := f.getJSON(t, c, "services", &svc); status != http.StatusOK || len(svc.Services) != 1 || svc.Services[0].Queue != "sio.service.001" ||
		svc.Services[0].QueueDepth != -1 || svc.Services[0].OldestAgeSeconds != 90 || !strings.HasSuffix(svc.AsOf, "+05:00") {
		t.Fatalf("services: HTTP %d %+v", status, svc)
	}

	// The journal keeps every action with who did it.
	var actions []string
	for _, r := range f.operatorRecords(t) {
		d := decode(t, r)
		if r.SignerIIN != pki.operator.IIN {
			t.Errorf("record %d is by %s", r.Seq, r.SignerIIN)
		}
		actions = append(actions, d.Action+":"+r.Code)
		if d.Action == "close" && r.Code == "ok" && (d.Incident != n || d.Note != "доставка восстановлена" || r.Service != 7 || d.By != by) {
			t.Errorf("the close record: %+v %+v", r, d)
		}
	}
	want := "[login:ok session:ok annotate:SIO-SCHEMA close:SIO-DASHBOARD-NOT-FOUND annotate:ok close:ok close:SIO-DASHBOARD-CONFLICT " +
		"announce:SIO-SCHEMA announce:SIO-SCHEMA announce:ok cancel:ok cancel:SIO-DASHBOARD-CONFLICT cancel:SIO-DASHBOARD-NOT-FOUND announce:ok replay:SIO-DASHBOARD-UNSUPPORTED]"
	if fmt.Sprint(actions) != want {
		t.Fatalf("journaled actions:\n%v\nwant\n%s", actions, want)
	}

	// Logging out ends the session.
	if status, body = f.act(t, c, dashboard.Path+"logout", csrf, nil); status != http.StatusOK {
		t.Fatalf("logout: HTTP %d %s", status, body)
	}
	var r refusal
	if status := f.getJSON(t, c, "session", &r); status != http.StatusForbidden {
		t.Fatalf("after logout: HTTP %d", status)
	}
}

// TestPageHeadersAndCookie: the page and its assets come with the Content-Security-Policy, the
// cookie is HttpOnly, SameSite=Strict, Path=/dashboard, 8 hours, and not Secure over plain HTTP.
func TestPageHeadersAndCookie(t *testing.T) {
	f := newFixture(t)
	c := browser(t)
	resp := f.open(t, c, f.login(t, pki.operator, signing.PlacementWSSE).Link)
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.CookieName {
			ck = c
		}
	}
	if ck == nil {
		t.Fatalf("cookies: %+v", resp.Cookies())
	}
	if ck.Name != dashboard.CookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/dashboard" ||
		ck.MaxAge != 8*3600 || ck.Secure {
		t.Fatalf("cookie: %+v", ck)
	}
	for path, ctype := range map[string]string{
		dashboard.Path:                    "text/html",
		dashboard.Path + "static/app.js":  "text/javascript",
		dashboard.Path + "static/app.css": "text/css",
	} {
		resp, err := c.Get(f.server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) ||
			!strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") || len(b) == 0 {
			t.Errorf("GET %s: HTTP %d %q CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("%s refers to another site", path)
		}
	}
	resp, err := c.Get(f.server.URL + dashboard.Path + "static/../../etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("a path outside the assets was served")
	}
}

// TestClientCertificate: over TLS, an operator's verified client certificate opens a session
// (Secure cookie) without a signed login; a user without the operator right is refused.
func TestClientCertificate(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewUnstartedServer(f.handler)
	pool := x509.NewCertPool()
	for _, r := range pki.trust.Roots() {
		pool.AddCert(r)
	}
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := func(u devpki.User) *http.Client {
		cert, err := tls.LoadX509KeyPair(filepath.Join(pki.dir, u.Cert), filepath.Join(pki.dir, u.Key))
		if err != nil {
			t.Fatal(err)
		}
		c := srv.Client()
		tr := c.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
		jar, _ := cookiejar.New(nil)
		return &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp := f.submitForm(t, client(pki.operator), srv.URL, dashboard.Path)
	if resp.StatusCode != http.StatusSeeOther || sessionCookie(resp) == nil || !sessionCookie(resp).Secure {
		t.Fatalf("operator's certificate: HTTP %d cookies %+v", resp.StatusCode, resp.Cookies())
	}
	resp, err := client(pki.judge).Get(srv.URL + dashboard.Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-SIO-Error-Code") != string(siobroker.CodeDashboardDenied) {
		t.Fatalf("judge's certificate: HTTP %d %s", resp.StatusCode, resp.Header.Get("X-SIO-Error-Code"))
	}
	var sessions int
	for _, r := range f.operatorRecords(t) {
		if d := decode(t, r); d.Action == "session" && d.Channel == "tls" && r.Code == "ok" && r.SignerIIN == pki.operator.IIN {
			sessions++
		}
	}
	if sessions != 1 {
		t.Fatalf("%d tls sessions journaled, want 1", sessions)
	}
}

// mustVerifier is signing.NewVerifier for a configuration the test knows to be valid.
func mustVerifier(t testing.TB, cfg signing.VerifierConfig) *signing.Verifier {
	t.Helper()
	v, err := signing.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sessionCookie is the session cookie resp sets, or nil.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.CookieName && c.MaxAge >= 0 {
			return c
		}
	}
	return nil
}

// TestPendingApplications: the page lists the applications waiting for the operator's decision
// (§12–15) with their deadlines, and marks the one past it (§13: a day) once the clock passes it.
func TestPendingApplications(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	desk, err := users.NewDesk(f.db, f.users, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := desk.Submit(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: "870315123455", Reason: "заявка", By: "кадры",
		User: siobroker.User{FullName: "Тестов Тест", Organisation: "ДП г. Астаны", Role: 3, ERDRCode: "1975", Department: "СУ",
			Position: "следователь", WorkPhone: "+7 7172 71-00-00", MobilePhone: "+7 701 000 0000", Email: "testov@police.kz",
			WorkAddress: "г. Астана"}}); err != nil {
		t.Fatal(err)
	}
	c, _ := f.session(t, pki.operator)
	var v struct {
		Available bool
		Overdue   int
		Pending   []struct {
			ID      int64
			IIN     string
			Overdue bool
		}
	}
	if status := f.getJSON(t, c, "applications", &v); status != http.StatusOK || !v.Available || len(v.Pending) != 1 ||
		v.Pending[0].IIN != "870315123455" || v.Pending[0].Overdue || v.Overdue != 0 {
		t.Fatalf("applications = %d %+v", status, v)
	}
	f.clock.Advance(25 * time.Hour)
	c, _ = f.session(t, pki.operator) // a session outlives no day
	if status := f.getJSON(t, c, "applications", &v); status != http.StatusOK || !v.Pending[0].Overdue || v.Overdue != 1 {
		t.Errorf("a day later: %d %+v", status, v)
	}
}

// TestIncidentThresholdNamed: the page names the configured delay that opens an incident, not the
// Rules' hour whatever is configured.
func TestIncidentThresholdNamed(t *testing.T) {
	for _, tc := range []struct {
		threshold time.Duration
		want      string
	}{{0, "an hour"}, {time.Hour, "an hour"}, {90 * time.Minute, "90 minutes"}, {2 * time.Hour, "2 hours"}} {
		f := newFixture(t)
		f.cfg.IncidentThreshold = tc.threshold
		h, err := dashboard.New(f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		f.server.Config.Handler = h
		c, _ := f.session(t, pki.operator)
		var v struct{ Threshold string }
		if status := f.getJSON(t, c, "incidents", &v); status != http.StatusOK || v.Threshold != tc.want {
			t.Errorf("threshold %s: %d %q, want %q", tc.threshold, status, v.Threshold, tc.want)
		}
	}
}

// TestServicesNamedWithTheirAdapters: the services table names each service as Appendix 2 does
// and the adapter its route names, and each queue as RabbitMQ names it, with the deployment's
// prefix.
func TestServicesNamedWithTheirAdapters(t *testing.T) {
	f := newFixture(t)
	f.cfg.ServiceInfo = func(n int) (string, string) { return fmt.Sprintf("Сервис %d", n), "kgd-adapter-1" }
	f.cfg.QueuePrefix = "prod."
	h, err := dashboard.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.server.Config.Handler = h
	c, _ := f.session(t, pki.operator)
	var v struct {
		Services []struct {
			Service              int
			Name, Adapter, Queue string
		}
	}
	if status := f.getJSON(t, c, "services", &v); status != http.StatusOK || len(v.Services) != 1 ||
		v.Services[0].Name != "Сервис 1" || v.Services[0].Adapter != "kgd-adapter-1" || v.Services[0].Queue != "prod.sio.service.001" {
		t.Fatalf("services = %d %+v", status, v)
	}
}
