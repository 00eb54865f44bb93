package reports

import (
	"crypto/tls"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestHandlerGETChangesNothing: over TLS, a GET of /reports with a report's parameters and a
// client certificate journals nothing and delivers no report: it answers the form. The form's
// POST without its CSRF token, with another token, without the cookie or from another origin is
// refused with SIO-REPORTS-CSRF and journals nothing; with the token the report is delivered and
// journaled.
func TestHandlerGETChangesNothing(t *testing.T) {
	j := httpJournal(t)
	_, h := newHTTPService(t, j, Config{VerifyClientCert: pki.trust.VerifyChain})
	srv, client := tlsServer(t, h, tls.VerifyClientCertIfGiven)
	// tlsServer's factory hands out one shared client; these are the test's own.
	judge := client(clientCert(t, pki.judge)).Transport
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: judge, Jar: jar}
	from, to := time.Now().Add(-30*day).In(siobroker.Astana).Format(time.RFC3339), time.Now().Add(time.Minute).In(siobroker.Astana).Format(time.RFC3339)

	resp, err := c.Get(srv.URL + Path + "?from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("X-SIO-Records") != "" {
		t.Fatalf("GET: HTTP %d %q records %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-SIO-Records"))
	}
	if uses := j.uses(); len(uses) != 0 {
		t.Fatalf("GET journaled %d uses", len(uses))
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(page))
	if m == nil || !strings.Contains(html.UnescapeString(string(page)), `value="`+from+`"`) {
		t.Fatalf("no form with the token and the period:\n%s", page)
	}
	token := m[1]
	period := url.Values{"from": {from}, "to": {to}}
	with := func(extra ...string) url.Values {
		v := url.Values{"from": period["from"], "to": period["to"]}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	wantCSRF := func(what string, resp *http.Response, body []byte) {
		t.Helper()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-SIO-Error-Code") != string(CodeReportsCSRF) {
			t.Fatalf("%s: HTTP %d %q: %s", what, resp.StatusCode, resp.Header.Get("X-SIO-Error-Code"), body)
		}
	}
	resp, body := postForm(t, c, srv.URL+Path, with())
	wantCSRF("no token", resp, body)
	resp, body = postForm(t, c, srv.URL+Path, with("csrf", "another"))
	wantCSRF("another token", resp, body)
	resp, body = postForm(t, &http.Client{Transport: judge}, srv.URL+Path, with("csrf", token))
	wantCSRF("no cookie", resp, body)
	resp, body = postForm(t, c, srv.URL+Path, with("csrf", token), "Origin", "https://evil.example")
	wantCSRF("another origin", resp, body)
	resp, body = postForm(t, c, srv.URL+Path, with("csrf", token), "Sec-Fetch-Site", "cross-site")
	wantCSRF("a cross-site fetch", resp, body)
	if uses := j.uses(); len(uses) != 0 {
		t.Fatalf("refused forms journaled %d uses", len(uses))
	}

	resp, body = postForm(t, c, srv.URL+Path, with("csrf", token), "Origin", srv.URL, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-SIO-Records") != "1" {
		t.Fatalf("the form with its token: HTTP %d: %s", resp.StatusCode, body)
	}
	if rec, d := lastUse(t, j, 1); rec.SignerIIN != pki.judge.IIN || d.Channel != "tls" || rec.Code != outcomeOK {
		t.Errorf("journaled %+v %+v", rec, d)
	}
}
