package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
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
	"github.com/sio-pso/siobroker/internal/tlspolicy"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const dashboardUsage = `usage:
  siobroker dashboard login [--url URL] (--user IIN [--pki DIR] | --cert FILE --key FILE)
      sign a dashboard login with your certificate and print the one-time link that opens the
      operator's dashboard in a browser (valid for 2 minutes, once). Open it on this machine's
      browser and press its button: whoever does so first gets the session (opening the link
      alone spends nothing).

--url is the broker (http://HOST:PORT) or its login endpoint (.../dashboard/login). The reply's
signature is verified against --ca (default PKI/ca.pem).
Exit status: 0 link printed, 1 SOAP fault (e.g. SIO-DASHBOARD-DENIED: no operator right), 2
usage error, 3 any other failure.
`

// dashboardLogin is what dashboard login is given: the broker, the operator's credentials and
// the wait.
type dashboardLogin struct {
	url, user, pki, cert, key, roots, crls, placement, sender string
	timeout                                                   time.Duration
}

func (d *dashboardLogin) flags(f *cmdFlags) {
	f.StringVar(&d.url, "url", "http://127.0.0.1:8080", "the broker, or its "+dashboard.LoginPath+" endpoint")
	f.StringVar(&d.cert, "cert", "", "your certificate (PEM)")
	f.StringVar(&d.key, "key", "", "your private key (PEM)")
	f.StringVar(&d.user, "user", "", "a demo user's IIN: takes --cert and --key from the development PKI's demo.json")
	f.StringVar(&d.pki, "pki", "data/pki", "the development PKI directory, for --user and the default --ca/--crl")
	f.StringVar(&d.roots, "ca", "", "trusted root(s) of the broker's signature and of its TLS certificate, comma-separated PEM files (default PKI/ca.pem)")
	f.StringVar(&d.crls, "crl", "", "CRL file(s), comma-separated (default PKI/crl.pem if present)")
	f.StringVar(&d.placement, "placement", "wsse", "signature placement: wsse, wsse-token, wsse-token-ts or enveloped")
	f.StringVar(&d.sender, "sender", "SIO_PSO_OPERATOR", "requestInfo/sender/senderId")
	f.DurationVar(&d.timeout, "timeout", 30*time.Second, "give up waiting for the reply after this long")
}

// cmdDashboardLogin runs "siobroker dashboard login".
func cmdDashboardLogin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("dashboard login", dashboardUsage, stdout, stderr)
	var d dashboardLogin
	d.flags(f)
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	endpoint, err := loginURL(d.url)
	if err != nil {
		return f.usageError("%v", err)
	}
	signer, verifier, placement, err := loadCredentials(d.user, d.pki, d.cert, d.key, d.roots, d.crls, d.placement)
	if err != nil {
		return f.usageError("%v", err)
	}
	client, err := dashboardClient(endpoint, d.roots, d.pki, d.timeout)
	if err != nil {
		return f.usageError("%v", err)
	}
	info := siobroker.RequestInfo{MessageID: uuid.NewString(), ServiceID: "SIO_PSO_DASHBOARD", SenderID: d.sender,
		MessageDate: siobroker.SystemClock{}.Now()}
	doc := soap.NewDashboardLoginRequest(info)
	if err := signer.Sign(doc, placement); err != nil {
		return f.fail(reportsExitError, "sign the login: %v", err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		return f.fail(reportsExitError, "serialize the login: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	reply, status, err := dashboardPost(ctx, client, endpoint.String(), raw)
	if err != nil {
		return f.fail(reportsExitError, "%v", err)
	}
	if fault, ok := soap.ParseFault(reply); ok {
		return f.fail(reportsExitFault, "fault %s: %s", fault.Code, fault.Message)
	}
	if status != http.StatusOK {
		return f.fail(reportsExitError, "the broker answered HTTP %d without a SOAP fault", status)
	}
	ticket, err := dashboardVerify(reply, verifier, placement, info.MessageID)
	if err != nil {
		return f.fail(reportsExitError, "%v", err)
	}
	link, err := endpoint.Parse(ticket.Link)
	if err != nil {
		return f.fail(reportsExitError, "the ticket's link %q: %v", ticket.Link, err)
	}
	fmt.Fprintln(stdout, link.String())
	fmt.Fprintf(stderr, "open this link in a browser and press its button before %s; that opens one dashboard session (8 hours) and spends the link\n",
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
	c.Transport = &http.Transport{TLSClientConfig: tlspolicy.Apply(&tls.Config{RootCAs: pool})}
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
