package publish_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/httpapi"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/operator/maintenance/publish"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// The development PKI of these tests, generated once.
var pki struct {
	dir          string
	manifest     *devpki.Manifest
	trust        *signing.TrustStore
	broker       *signing.Signer
	participant  devpki.User // valid, registered
	unregistered devpki.User // valid, not in the registry
	revoked      devpki.User // registered, certificate revoked
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "publish-test-pki-")
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
		case u.Status == devpki.StatusValid && pki.participant.IIN == "":
			pki.participant = u
		case u.Status == devpki.StatusValid && pki.unregistered.IIN == "":
			pki.unregistered = u
		case u.Status == devpki.StatusRevoked:
			pki.revoked = u
		}
	}
	if pki.participant.IIN == "" || pki.unregistered.IIN == "" || pki.revoked.IIN == "" {
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

const publicURL = "https://sio-broker.example:8443"

// fixture is the publisher over a real store, schedule, registry and journal of emergencies,
// behind the broker's real HTTP handler on a TLS server that asks for client certificates.
type fixture struct {
	clock    *testclock.Clock
	db       *sqlite.DB
	schedule *maintenance.Schedule
	server   *httptest.Server
	pipeline *recordingPipeline
	// windows announced: planned (services 11, 12), emergency (7, begun), cancelled (5)
	planned, emergency, cancelled siobroker.MaintenanceWindow
}

// recordingPipeline is the SendMessage pipeline of the endpoint: these tests are about the
// other operation, and only check that SendMessage still reaches the pipeline.
type recordingPipeline struct{ calls int }

func (p *recordingPipeline) Handle(context.Context, io.Reader, string) (*broker.Reply, broker.Request, error) {
	p.calls++
	return nil, broker.Request{}, siobroker.Errorf(siobroker.CodeUnavailable, "the pipeline of this test answers nothing")
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testclock.New(time.Now().In(siobroker.Astana)), pipeline: &recordingPipeline{}}
	var err error
	if f.db, err = sqlite.Open(ctx, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	registry := users.New(f.db, f.clock, nil)
	var apps []siobroker.Application
	for _, a := range pki.manifest.Registrations(f.clock.Now()) {
		if a.IIN != pki.unregistered.IIN {
			apps = append(apps, a)
		}
	}
	if err := registry.RegisterMissing(ctx, apps); err != nil {
		t.Fatal(err)
	}
	emergencies, err := incidents.NewService(f.db, f.db.Journal(), f.clock, "siobroker")
	if err != nil {
		t.Fatal(err)
	}
	f.schedule = maintenance.NewSchedule(f.db, f.clock, maintenance.Policy{MinNotice: 24 * time.Hour, Emergencies: emergencies})
	now := f.clock.Now()
	announce := func(w siobroker.MaintenanceWindow) siobroker.MaintenanceWindow {
		t.Helper()
		w.AnnouncedBy = "operator Askarov"
		got, err := f.schedule.Announce(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	f.planned = announce(siobroker.MaintenanceWindow{Services: []int{12, 11}, Start: now.Add(48 * time.Hour), End: now.Add(50 * time.Hour), Reason: "КГД database upgrade"})
	f.emergency = announce(siobroker.MaintenanceWindow{Services: []int{7}, Start: now.Add(-10 * time.Minute), End: now.Add(time.Hour), Reason: "отказ СХД", Emergency: true})
	f.cancelled = announce(siobroker.MaintenanceWindow{Services: []int{5}, Start: now.Add(30 * time.Hour), End: now.Add(31 * time.Hour), Reason: "замена коммутатора"})
	if err := f.schedule.Cancel(ctx, f.cancelled.ID, "operator Askarov"); err != nil {
		t.Fatal(err)
	}
	// A window that ended more than a week ago is no longer published; one of the file is.
	f.schedule.SetFileWindows([]siobroker.MaintenanceWindow{
		{Start: now.Add(-9 * 24 * time.Hour), End: now.Add(-8 * 24 * time.Hour), Reason: "old", AnnouncedAt: now.Add(-10 * 24 * time.Hour)},
		{Start: now.Add(72 * time.Hour), End: now.Add(73 * time.Hour), Reason: "data centre move", AnnouncedAt: now.Add(-time.Hour)},
	})

	pub, err := publish.New(publish.Config{
		Schedule: f.schedule, Users: registry, Clock: f.clock, PublicURL: publicURL + "/", VerifyClientCert: pki.trust.VerifyChain,
		Verify:            mustVerifier(t, signing.VerifierConfig{Trust: pki.trust}).Verify,
		Sign:              pki.broker.Sign,
		MessageDateWindow: 5 * time.Minute,
		Marks:             f.db,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.NewHandler(httpapi.Config{
		Endpoint: "/SyncChannel/v10", PublicURL: publicURL, Clock: f.clock, Logger: slog.New(slog.DiscardHandler),
		Mount: map[string]http.Handler{publish.FeedPrefix: pub.Handler()},
		Operations: []httpapi.Operation{{Element: xml.Name{Space: schemas.NSOperations, Local: "GetMaintenanceWindows"},
			Handle: pub.GetMaintenanceWindows}},
	}, f.pipeline)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(pki.dir, pki.manifest.CA))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	f.server = httptest.NewUnstartedServer(h)
	// As http.tls.client_auth: request: a certificate is asked for and verified if given.
	f.server.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	f.server.StartTLS()
	t.Cleanup(f.server.Close)
	return f
}

// client is an HTTPS client presenting u's certificate, or none for the zero user.
func (f *fixture) client(t *testing.T, u devpki.User) *http.Client {
	t.Helper()
	c := *f.server.Client() // a copy: the server's own client is shared
	tr := c.Transport.(*http.Transport).Clone()
	if u.IIN != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(pki.dir, u.Cert), filepath.Join(pki.dir, u.Key))
		if err != nil {
			t.Fatal(err)
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	c.Transport = tr
	return &c
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// journalRecords counts the journal's records: what a request may leave behind for good.
func (f *fixture) journalRecords(t *testing.T) int {
	t.Helper()
	recs, err := f.db.Journal().Query(context.Background(), siobroker.JournalFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// TestFeedRefusesWithoutCertificate: without a TLS client certificate, on TLS or plain HTTP,
// the feed answers 403 SIO-WINDOWS-DENIED and writes nothing; a revoked certificate, or one of
// no registered user, is refused with the registry's or the chain's code.
func TestFeedRefusesWithoutCertificate(t *testing.T) {
	f := newFixture(t)
	recs := f.journalRecords(t)
	plain := httptest.NewServer(f.server.Config.Handler)
	t.Cleanup(plain.Close)
	for name, c := range map[string]struct {
		client *http.Client
		url    string
		code   siobroker.Code
	}{
		"TLS, no certificate, JSON": {f.client(t, devpki.User{}), f.server.URL + publish.JSONPath, siobroker.CodeWindowsDenied},
		"TLS, no certificate, Atom": {f.client(t, devpki.User{}), f.server.URL + publish.AtomPath, siobroker.CodeWindowsDenied},
		"plain HTTP":                {plain.Client(), plain.URL + publish.AtomPath, siobroker.CodeWindowsDenied},
		"revoked certificate":       {f.client(t, pki.revoked), f.server.URL + publish.JSONPath, siobroker.CodeCertRevoked},
		"no registered user":        {f.client(t, pki.unregistered), f.server.URL + publish.JSONPath, siobroker.CodeUserUnknown},
	} {
		resp, body := get(t, c.client, c.url)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-SIO-Error-Code") != string(c.code) ||
			!strings.HasPrefix(string(body), string(c.code)+": ") {
			t.Errorf("%s: HTTP %d %s %q, want 403 %s", name, resp.StatusCode, resp.Header.Get("X-SIO-Error-Code"), body, c.code)
		}
	}
	if r := f.journalRecords(t); r != recs {
		t.Errorf("refused feed requests were journaled: %d → %d records", recs, r)
	}
	resp, _ := get(t, f.client(t, pki.participant), f.server.URL+publish.FeedPrefix+"other")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("another path under the feed: HTTP %d", resp.StatusCode)
	}
}

// TestFeedJSON: a registered participant reads the schedule as JSON: windows in force or to come
// and those cancelled lately, by start, with Astana times, services, reason, announcement time,
// the emergency flag and the state; the minimum notice.
func TestFeedJSON(t *testing.T) {
	f := newFixture(t)
	resp, body := get(t, f.client(t, pki.participant), f.server.URL+publish.JSONPath)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var feed struct {
		AsOf             string
		MinNotice        string
		MinNoticeSeconds int64
		Windows          []struct {
			ID, Source, Start, End, Reason, AnnouncedAt, Cancelled, State string
			Number                                                        int64
			Services                                                      []int
			Emergency                                                     bool
		}
	}
	if err := json.Unmarshal(body, &feed); err != nil {
		t.Fatal(err)
	}
	if feed.MinNotice != "PT24H" || feed.MinNoticeSeconds != 86400 || !strings.HasSuffix(feed.AsOf, "+05:00") {
		t.Errorf("feed: %+v", feed)
	}
	var got []string
	for _, w := range feed.Windows {
		for _, ts := range []string{w.Start, w.End, w.AnnouncedAt} {
			if !strings.HasSuffix(ts, "+05:00") {
				t.Errorf("window %q: time %q without the +05:00 offset", w.Reason, ts)
			}
		}
		got = append(got, fmt.Sprintf("%d %s %v %s emergency=%v %s cancelled=%v", w.Number, w.Source, w.Services, w.Reason, w.Emergency, w.State, w.Cancelled != ""))
	}
	want := []string{
		fmt.Sprintf("%d announced [7] отказ СХД emergency=true in force cancelled=false", f.emergency.ID),
		fmt.Sprintf("%d announced [5] замена коммутатора emergency=false cancelled cancelled=true", f.cancelled.ID),
		fmt.Sprintf("%d announced [11 12] КГД database upgrade emergency=false announced cancelled=false", f.planned.ID),
		"0 file [] data centre move emergency=false announced cancelled=false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("windows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(feed.Windows) > 0 && feed.Windows[0].ID != fmt.Sprintf("%s/maintenance/windows/%d", publicURL, f.emergency.ID) {
		t.Errorf("id %q", feed.Windows[0].ID)
	}
}

// atomFeed is what RFC 4287 requires of a feed and its entries, read with encoding/xml in the
// Atom namespace.
type atomFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"http://www.w3.org/2005/Atom id"`
	Title   string   `xml:"http://www.w3.org/2005/Atom title"`
	Updated string   `xml:"http://www.w3.org/2005/Atom updated"`
	Authors []struct {
		Name string `xml:"http://www.w3.org/2005/Atom name"`
	} `xml:"http://www.w3.org/2005/Atom author"`
	Links []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"http://www.w3.org/2005/Atom link"`
	Entries []struct {
		ID         string `xml:"http://www.w3.org/2005/Atom id"`
		Title      string `xml:"http://www.w3.org/2005/Atom title"`
		Updated    string `xml:"http://www.w3.org/2005/Atom updated"`
		Published  string `xml:"http://www.w3.org/2005/Atom published"`
		Summary    string `xml:"http://www.w3.org/2005/Atom summary"`
		Categories []struct {
			Term string `xml:"term,attr"`
		} `xml:"http://www.w3.org/2005/Atom category"`
	} `xml:"http://www.w3.org/2005/Atom entry"`
}

// TestFeedAtom: the Atom feed has what RFC 4287 requires (feed: id, title, updated, author;
// entry: id, title, updated), dates in RFC 3339 with the +05:00 offset, a self link, entry ids
// that are unique and the same at the next fetch, and says which window is an emergency.
func TestFeedAtom(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, pki.participant)
	fetch := func() atomFeed {
		t.Helper()
		resp, body := get(t, c, f.server.URL+publish.AtomPath)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/atom+xml") {
			t.Fatalf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var feed atomFeed
		if err := xml.Unmarshal(body, &feed); err != nil {
			t.Fatalf("not an Atom feed: %v\n%s", err, body)
		}
		return feed
	}
	feed := fetch()
	rfc3339 := func(what, s string) {
		t.Helper()
		if _, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "+05:00") {
			t.Errorf("%s %q is not RFC 3339 with +05:00", what, s)
		}
	}
	if feed.ID != publicURL+publish.AtomPath || feed.Title == "" || len(feed.Authors) == 0 || feed.Authors[0].Name == "" {
		t.Errorf("feed: id %q title %q authors %+v", feed.ID, feed.Title, feed.Authors)
	}
	rfc3339("feed updated", feed.Updated)
	if !slices.ContainsFunc(feed.Links, func(l struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	}) bool {
		return l.Rel == "self" && l.Href == publicURL+publish.AtomPath
	}) {
		t.Errorf("no self link: %+v", feed.Links)
	}
	if len(feed.Entries) != 4 {
		t.Fatalf("%d entries, want 4", len(feed.Entries))
	}
	ids := map[string]bool{}
	for _, e := range feed.Entries {
		if e.ID == "" || e.Title == "" || ids[e.ID] {
			t.Errorf("entry without id or title, or a repeated id: %+v", e)
		}
		ids[e.ID] = true
		rfc3339("entry updated", e.Updated)
		rfc3339("entry published", e.Published)
	}
	em := feed.Entries[0]
	if !strings.HasPrefix(em.Title, fmt.Sprintf("Emergency maintenance no. %d from ", f.emergency.ID)) || !strings.HasSuffix(em.Title, "(отказ СХД), services 7") ||
		!slices.ContainsFunc(em.Categories, func(c struct {
			Term string `xml:"term,attr"`
		}) bool {
			return c.Term == "emergency"
		}) || !strings.Contains(em.Summary, "отказ СХД") {
		t.Errorf("the emergency's entry: %+v", em)
	}
	if !strings.HasPrefix(feed.Entries[1].Title, "Cancelled: ") {
		t.Errorf("the cancelled window's entry: %+v", feed.Entries[1])
	}
	again := fetch()
	for i := range again.Entries {
		if again.Entries[i].ID != feed.Entries[i].ID || again.Entries[i].Updated != feed.Entries[i].Updated {
			t.Errorf("entry %d changed between two fetches: %+v / %+v", i, feed.Entries[i], again.Entries[i])
		}
	}
}

// signedQuery builds and signs a GetMaintenanceWindows request of u in placement p.
func (f *fixture) signedQuery(t *testing.T, u devpki.User, p signing.Placement, at time.Time) []byte {
	t.Helper()
	doc := soap.NewMaintenanceQueryRequest(siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "SIO_PSO_MAINTENANCE",
		SenderID: "TEST", MessageDate: at})
	s, err := signing.LoadSigner(filepath.Join(pki.dir, u.Cert), filepath.Join(pki.dir, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sign(doc, p); err != nil {
		t.Fatal(err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *fixture) post(t *testing.T, raw []byte) (int, []byte) {
	t.Helper()
	resp, err := f.server.Client().Post(f.server.URL+"/SyncChannel/v10", "text/xml; charset=utf-8", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustVerifier(t testing.TB, cfg signing.VerifierConfig) *signing.Verifier {
	t.Helper()
	v, err := signing.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantFault reads the SOAP fault of a refusal and checks its code.
func wantFault(t *testing.T, status int, body []byte, code siobroker.Code) {
	t.Helper()
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(body), "text/xml", soap.Limits{})
	if err == nil {
		t.Fatalf("HTTP %d: not a fault: %s", status, body)
	}
	if got := siobroker.ErrorCode(err); got != code && !strings.Contains(string(body), string(code)) {
		t.Fatalf("HTTP %d: fault %s (%v), want %s: %s", status, got, doc, code, body)
	}
}

// TestGetMaintenanceWindows sends real signed requests, in both placements, to the operation on
// the SyncChannel endpoint, and verifies each signed reply with the broker's certificate: the
// windows with their periods in +05:00, services, reason, announcement time and emergency flag.
// A replay, an unsigned request and a signer who is no registered user are refused with their
// codes, and nothing is journaled; a SendMessage still goes to the pipeline.
func TestGetMaintenanceWindows(t *testing.T) {
	f := newFixture(t)
	recs := f.journalRecords(t)
	replyVerifier := mustVerifier(t, signing.VerifierConfig{Trust: pki.trust, AnySigner: true})
	for _, p := range []signing.Placement{signing.PlacementWSSE, signing.PlacementEnveloped} {
		t.Run(string(p), func(t *testing.T) {
			raw := f.signedQuery(t, pki.participant, p, f.clock.Now())
			status, body := f.post(t, raw)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d: %s", status, body)
			}
			if !bytes.Contains(body, []byte("GetMaintenanceWindowsResponse")) {
				t.Fatalf("not a GetMaintenanceWindowsResponse: %s", body)
			}
			doc, _, err := soap.ReadOperationResponseEnvelope(bytes.NewReader(body), "text/xml", soap.Limits{}, soap.OpGetMaintenanceWindows)
			if err != nil {
				t.Fatal(err)
			}
			v, err := replyVerifier.Verify(context.Background(), doc, time.Now())
			if err != nil {
				t.Fatalf("the reply's signature: %v", err)
			}
			if v.Placement != p || !v.Certificate.Equal(pki.broker.Certificate()) {
				t.Errorf("reply signed in %s by %s", v.Placement, v.Certificate.Subject)
			}
			var m soap.MaintenanceWindows
			if p == signing.PlacementWSSE {
				var info soap.ResponseInfo
				info, m, err = soap.ParseMaintenanceWindowsResponse(v.Signed)
				if err == nil && info.StatusCode != publish.StatusWindows {
					t.Errorf("status %+v", info)
				}
			} else {
				m, err = soap.ParseMaintenanceWindows(v.Signed)
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.MinNotice != 24*time.Hour || len(m.Windows) != 4 {
				t.Fatalf("reply: %+v", m)
			}
			em := m.Windows[0]
			if em.Number != f.emergency.ID || !em.Emergency || em.State != soap.WindowInForce || fmt.Sprint(em.Services) != "[7]" ||
				em.Reason != "отказ СХД" || siobroker.FormatTime(em.Start) != siobroker.FormatTime(f.emergency.Start) ||
				siobroker.FormatTime(em.AnnouncedAt) != siobroker.FormatTime(f.emergency.AnnouncedAt) {
				t.Errorf("the emergency: %+v", em)
			}
			if pl := m.Windows[2]; pl.Number != f.planned.ID || pl.Emergency || fmt.Sprint(pl.Services) != "[11 12]" {
				t.Errorf("the planned window: %+v", pl)
			}
			for _, s := range []string{siobroker.FormatTime(f.planned.Start), siobroker.FormatTime(f.planned.End)} {
				if !strings.HasSuffix(s, "+05:00") || !bytes.Contains(body, []byte(s)) {
					t.Errorf("the reply does not carry %s", s)
				}
			}

			// The same signed request again is a replay.
			status, body = f.post(t, raw)
			wantFault(t, status, body, siobroker.CodeReplayID)
		})
	}

	unsigned, err := soap.Serialize(soap.NewMaintenanceQueryRequest(siobroker.RequestInfo{MessageID: uuid.NewString(),
		ServiceID: "SIO_PSO_MAINTENANCE", SenderID: "TEST", MessageDate: f.clock.Now()}))
	if err != nil {
		t.Fatal(err)
	}
	status, body := f.post(t, unsigned)
	wantFault(t, status, body, siobroker.CodeSigMissing)
	status, body = f.post(t, f.signedQuery(t, pki.unregistered, signing.PlacementWSSE, f.clock.Now()))
	wantFault(t, status, body, siobroker.CodeUserUnknown)
	status, body = f.post(t, f.signedQuery(t, pki.participant, signing.PlacementWSSE, f.clock.Now().Add(-10*time.Minute)))
	wantFault(t, status, body, siobroker.CodeReplayDate)
	if r := f.journalRecords(t); r != recs {
		t.Errorf("GetMaintenanceWindows journaled: %d → %d records", recs, r)
	}
	if f.pipeline.calls != 0 {
		t.Errorf("the pipeline was called %d times for GetMaintenanceWindows", f.pipeline.calls)
	}

	// SendMessage, on the same endpoint, goes to the pipeline.
	send := soap.NewRequest(siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "SIO_PSO_QUERY", SenderID: "TEST", MessageDate: f.clock.Now()},
		siobroker.Query{Basis: 1, Case: siobroker.CaseRef{Number: "261500031000123"}, Subject: siobroker.Subject{IIN: "750312300458"}, Services: []int{1}, Purpose: "check"})
	raw, err := soap.Serialize(send)
	if err != nil {
		t.Fatal(err)
	}
	status, body = f.post(t, raw)
	wantFault(t, status, body, siobroker.CodeUnavailable)
	if f.pipeline.calls != 1 {
		t.Errorf("SendMessage reached the pipeline %d times, want 1", f.pipeline.calls)
	}
}
