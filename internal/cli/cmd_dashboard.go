package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const dashboardUsage = `usage:
  siobroker dashboard login [--url URL] (--user IIN [--pki DIR] | --cert FILE --key FILE)
      sign a dashboard login with your certificate and print the one-time link that opens the
      operator's dashboard in a browser (valid for 2 minutes, once). Open it on this machine's
      browser: whoever opens it first gets the session.

--url is the broker (http://HOST:PORT) or its login endpoint (.../dashboard/login). The reply's
signature is verified against --ca (default PKI/ca.pem). Exit status: 0 link printed, 1 SOAP fault
(e.g. SIO-DASHBOARD-DENIED: no operator right), 2 usage, 3 any other failure.

flags:
`

func cmdDashboard(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "login" {
		fmt.Fprint(stderr, dashboardUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return reportsExitOK
		}
		return reportsExitUsage
	}
	var cred struct{ url, user, pki, cert, key, roots, crls, placement, sender string }
	var timeout time.Duration
	fs := flag.NewFlagSet("dashboard login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, dashboardUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cred.url, "url", "http://127.0.0.1:8080", "the broker, or its "+dashboard.LoginPath+" endpoint")
	fs.StringVar(&cred.cert, "cert", "", "your certificate (PEM)")
	fs.StringVar(&cred.key, "key", "", "your private key (PEM)")
	fs.StringVar(&cred.user, "user", "", "a demo user's IIN: takes --cert and --key from the development PKI's demo.json")
	fs.StringVar(&cred.pki, "pki", "data/pki", "the development PKI directory, for --user and the default --ca/--crl")
	fs.StringVar(&cred.roots, "ca", "", "trusted root(s) of the broker's signature and of its TLS certificate, comma-separated PEM files (default PKI/ca.pem)")
	fs.StringVar(&cred.crls, "crl", "", "CRL file(s), comma-separated (default PKI/crl.pem if present)")
	fs.StringVar(&cred.placement, "placement", "wsse", "signature placement: wsse, wsse-token, wsse-token-ts or enveloped")
	fs.StringVar(&cred.sender, "sender", "SIO_PSO_OPERATOR", "requestInfo/sender/senderId")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "give up waiting for the reply after this long")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return reportsExitOK
		}
		return reportsExitUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "siobroker dashboard login: %s\n", fmt.Sprintf(format, a...))
		return code
	}
	if fs.NArg() > 0 {
		return fail(reportsExitUsage, "unexpected argument %q", fs.Arg(0))
	}
	endpoint, err := loginURL(cred.url)
	if err != nil {
		return fail(reportsExitUsage, "%v", err)
	}
	signer, verifier, placement, err := loadCredentials(cred.user, cred.pki, cred.cert, cred.key, cred.roots, cred.crls, cred.placement)
	if err != nil {
		return fail(reportsExitUsage, "%v", err)
	}
	client, err := dashboardClient(endpoint, cred.roots, cred.pki, timeout)
	if err != nil {
		return fail(reportsExitUsage, "%v", err)
	}

	info := siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "SIO_PSO_DASHBOARD", SenderID: cred.sender,
		MessageDate: siobroker.SystemClock{}.Now()}
	doc := soap.NewDashboardLoginRequest(info)
	if err := signer.Sign(doc, placement); err != nil {
		return fail(reportsExitError, "sign the login: %v", err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		return fail(reportsExitError, "serialize the login: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, status, err := dashboardPost(ctx, client, endpoint.String(), raw)
	if err != nil {
		return fail(reportsExitError, "%v", err)
	}
	if fault, ok := soap.ParseFault(reply); ok {
		return fail(reportsExitFault, "fault %s: %s", fault.Code, fault.Message)
	}
	if status != http.StatusOK {
		return fail(reportsExitError, "the broker answered HTTP %d without a SOAP fault", status)
	}
	ticket, err := dashboardVerify(reply, verifier, placement, info.MessageID)
	if err != nil {
		return fail(reportsExitError, "%v", err)
	}
	link, err := endpoint.Parse(ticket.Link)
	if err != nil {
		return fail(reportsExitError, "the ticket's link %q: %v", ticket.Link, err)
	}
	fmt.Fprintln(stdout, link.String())
	fmt.Fprintf(stderr, "open this link in a browser before %s; it opens one dashboard session (8 hours) and then is spent\n",
		siobroker.FormatTime(ticket.Expires))
	return reportsExitOK
}

// loginURL accepts the broker's address or its login endpoint.
func loginURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not an http(s) URL", s)
	}
	if strings.TrimSuffix(u.Path, "/") == "" {
		u.Path = dashboard.LoginPath
	}
	return u, nil
}

// dashboardClient is an HTTP client that, for https, also trusts --ca (or the development PKI's
// root), which signs the development broker's TLS certificate.
func dashboardClient(endpoint *url.URL, roots, pki string, timeout time.Duration) (*http.Client, error) {
	c := &http.Client{Timeout: timeout}
	if endpoint.Scheme != "https" {
		return c, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	files := splitList(roots)
	if len(files) == 0 {
		files = []string{filepath.Join(pki, devpki.CAFile)}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if roots == "" && errors.Is(err, os.ErrNotExist) {
				continue // no development PKI: the system roots alone
			}
			return nil, fmt.Errorf("--ca: %w", err)
		}
		certs, err := signing.ParseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("--ca %s: %w", f, err)
		}
		for _, cert := range certs {
			pool.AddCert(cert)
		}
	}
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return c, nil
}

func dashboardPost(ctx context.Context, c *http.Client, endpoint string, raw []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(raw))
	if err != nil {
		return nil, 0, fmt.Errorf("build the HTTP request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `""`)
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("post to %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	const limit = 1 << 20
	reply, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("read the reply: %w", err)
	}
	if len(reply) > limit {
		return nil, resp.StatusCode, fmt.Errorf("the reply exceeds %d bytes", limit)
	}
	return reply, resp.StatusCode, nil
}

// dashboardVerify accepts the reply only if the broker's signature verifies, in the login's
// placement, and the signed ticket answers this login.
func dashboardVerify(reply []byte, v *signing.Verifier, placement signing.Placement, messageID string) (soap.DashboardTicket, error) {
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(reply), "text/xml; charset=utf-8",
		soap.Limits{MaxBytes: int64(len(reply)) + 1, MaxElements: 10000, MaxDepth: 64})
	if err != nil {
		return soap.DashboardTicket{}, fmt.Errorf("the reply is not a valid envelope: %w", err)
	}
	ver, err := v.Verify(context.Background(), doc, time.Now())
	if err != nil {
		return soap.DashboardTicket{}, fmt.Errorf("the reply's signature does not verify: %w", err)
	}
	if ver.Placement != placement {
		return soap.DashboardTicket{}, fmt.Errorf("the reply is signed in the %s placement, the login in %s", ver.Placement, placement)
	}
	var t soap.DashboardTicket
	if placement.InHeader() {
		_, t, err = soap.ParseDashboardTicketResponse(ver.Signed)
	} else {
		t, err = soap.ParseDashboardTicket(ver.Signed)
	}
	if err != nil {
		return t, fmt.Errorf("the signed reply: %w", err)
	}
	if t.RequestMessageID != messageID {
		return t, fmt.Errorf("the ticket answers login %q, not this one %q", t.RequestMessageID, messageID)
	}
	if !strings.HasPrefix(t.Link, dashboard.Path) {
		return t, fmt.Errorf("the ticket's link %q is not under %s", t.Link, dashboard.Path)
	}
	return t, nil
}
