package dashboard_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/signing"
)

// sessionRecords counts the journaled sessions of channel that were opened.
func (f *fixture) sessionRecords(t *testing.T, channel string) int {
	t.Helper()
	n := 0
	for _, r := range f.operatorRecords(t) {
		if d := decode(t, r); d.Action == "session" && d.Channel == channel && r.Code == "ok" {
			n++
		}
	}
	return n
}

// get GETs base+path in c and returns the answer, its body read.
func get(t *testing.T, c *http.Client, base, path string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// postSession posts form to the session path of base in c, with the headers hdr (name, value,
// ...), and returns the answer.
func postSession(t *testing.T, c *http.Client, base string, form url.Values, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+dashboard.SessionPath, strings.NewReader(form.Encode()))
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
	resp.Body.Close()
	return resp
}

func formOf(t *testing.T, body string) url.Values {
	t.Helper()
	form := url.Values{}
	for _, m := range sessionForm.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], m[2])
	}
	if form.Get("csrf") == "" {
		t.Fatalf("no session form:\n%s", body)
	}
	return form
}

func wantCSRF(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-SIO-Error-Code") != string(siobroker.CodeDashboardCSRF) {
		t.Fatalf("%s: HTTP %d %q, want 403 %s", what, resp.StatusCode, resp.Header.Get("X-SIO-Error-Code"), siobroker.CodeDashboardCSRF)
	}
	if sessionCookie(resp) != nil {
		t.Fatalf("%s: a session cookie was set", what)
	}
}

// TestTicketLinkGETChangesNothing: the GET of a ticket link answers a form and changes nothing
// (no session cookie, no journal record, the ticket not spent); the form's POST without its CSRF
// token, with another browser's, or from another origin is refused with SIO-DASHBOARD-CSRF and
// spends nothing; with the token it opens the session.
func TestTicketLinkGETChangesNothing(t *testing.T) {
	f := newFixture(t)
	tk := f.login(t, pki.operator, signing.PlacementEnveloped)
	c := browser(t)
	var form url.Values
	for range 2 {
		resp, body := get(t, c, f.server.URL, tk.Link)
		if resp.StatusCode != http.StatusOK || sessionCookie(resp) != nil {
			t.Fatalf("GET of the link: HTTP %d, cookies %+v", resp.StatusCode, resp.Cookies())
		}
		form = formOf(t, body)
		if form.Get("ticket") == "" {
			t.Fatalf("the form carries no ticket:\n%s", body)
		}
	}
	if n := f.sessionRecords(t, "ticket"); n != 0 {
		t.Fatalf("GET journaled %d sessions", n)
	}
	var r refusal
	if status := f.getJSON(t, c, "session", &r); status != http.StatusForbidden {
		t.Fatalf("GET opened a session: HTTP %d", status)
	}

	noToken := url.Values{"ticket": {form.Get("ticket")}}
	wantCSRF(t, "no token", postSession(t, c, f.server.URL, noToken))
	wrong := url.Values{"ticket": {form.Get("ticket")}, "csrf": {"not-the-token"}}
	wantCSRF(t, "a wrong token", postSession(t, c, f.server.URL, wrong))
	// Another browser has no cookie to match the token: a page of another site cannot submit it.
	wantCSRF(t, "another browser", postSession(t, browser(t), f.server.URL, form))
	wantCSRF(t, "a cross-site origin", postSession(t, c, f.server.URL, form, "Origin", "https://evil.example"))
	wantCSRF(t, "a cross-site fetch", postSession(t, c, f.server.URL, form, "Sec-Fetch-Site", "cross-site"))
	if n := f.sessionRecords(t, "ticket"); n != 0 {
		t.Fatalf("refused POSTs journaled %d sessions", n)
	}

	resp := postSession(t, c, f.server.URL, form, "Origin", f.server.URL, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || sessionCookie(resp) == nil || resp.Header.Get("Location") != dashboard.Path {
		t.Fatalf("POST with the token: HTTP %d, cookies %+v", resp.StatusCode, resp.Cookies())
	}
	if n := f.sessionRecords(t, "ticket"); n != 1 {
		t.Fatalf("%d sessions journaled, want 1", n)
	}
	if status := f.getJSON(t, c, "session", &r); status != http.StatusOK {
		t.Fatalf("the session: HTTP %d", status)
	}
	// The ticket is spent now.
	if resp := postSession(t, browser(t), f.server.URL, form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the ticket again: HTTP %d", resp.StatusCode)
	}
}

// TestClientCertificateGETChangesNothing: over TLS, the GET of the page with an operator's
// client certificate and no session answers a form and opens no session; the form's POST
// without its token is refused with SIO-DASHBOARD-CSRF, with it the session opens.
func TestClientCertificateGETChangesNothing(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewUnstartedServer(f.handler)
	pool := x509.NewCertPool()
	for _, r := range pki.trust.Roots() {
		pool.AddCert(r)
	}
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki.dir, pki.operator.Cert), filepath.Join(pki.dir, pki.operator.Key))
	if err != nil {
		t.Fatal(err)
	}
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, body := get(t, c, srv.URL, dashboard.Path)
	if resp.StatusCode != http.StatusOK || sessionCookie(resp) != nil {
		t.Fatalf("GET with the certificate: HTTP %d, cookies %+v", resp.StatusCode, resp.Cookies())
	}
	form := formOf(t, body)
	if n := f.sessionRecords(t, "tls"); n != 0 {
		t.Fatalf("GET journaled %d sessions", n)
	}
	wantCSRF(t, "no token", postSession(t, c, srv.URL, url.Values{}))
	if n := f.sessionRecords(t, "tls"); n != 0 {
		t.Fatalf("a refused POST journaled %d sessions", n)
	}
	resp = postSession(t, c, srv.URL, form)
	if resp.StatusCode != http.StatusSeeOther || sessionCookie(resp) == nil || !sessionCookie(resp).Secure {
		t.Fatalf("POST with the token: HTTP %d, cookies %+v", resp.StatusCode, resp.Cookies())
	}
	if n := f.sessionRecords(t, "tls"); n != 1 {
		t.Fatalf("%d sessions journaled, want 1", n)
	}
}
