package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/client"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// Exit codes of send.
const (
	sendExitOK    = 0
	sendExitFault = 1 // the broker answered with a SOAP fault
	sendExitUsage = 2
	sendExitError = 3 // no valid answer: network, or a reply that does not verify
)

type sendFlags struct {
	url, cert, key, user, pki, placement  string
	roots, crls                           string
	basis                                 int
	caseNo, instructionNo, requestingBody string
	letterNo, year, court, article        string
	subject, services, purpose, sender    string
	saveRequest, saveReply                string
	timeout                               time.Duration
	async                                 bool
}

const sendUsage = `usage:
  siobroker send (--user IIN [--pki DIR] | --cert FILE --key FILE) --basis B --case NUMBER
                 [the case's other fields] --subject IIN|BIN --services N,N,... [flags]

Signs a request for the services about the subject, under the case, with the user's certificate,
posts it to the broker (--url) and verifies the broker's signed reply against --ca; prints the
per-service results. With --async the request goes to the asynchronous endpoint and the broker's
id of it is printed, for status and fetch. --save-request and --save-reply keep the exact bytes.
Exit status: 0 a verified reply (or an accepted --async request), 1 a SOAP fault (printed as
"fault CODE: message"), 2 usage error, 3 no valid reply (the network failed, or the reply's
signature does not verify).
`

func (f *sendFlags) register(fs *cmdFlags) {
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080/SyncChannel/v10", "the broker's SOAP endpoint")
	fs.StringVar(&f.cert, "cert", "", "the user's certificate (PEM)")
	fs.StringVar(&f.key, "key", "", "the user's private key (PEM)")
	fs.StringVar(&f.user, "user", "", "a demo user's IIN: takes --cert and --key from the development PKI's demo.json")
	fs.StringVar(&f.pki, "pki", "data/pki", "the development PKI directory, for --user and the default --ca/--crl")
	fs.StringVar(&f.roots, "ca", "", "trusted root(s) for the reply's signature, comma-separated PEM files (default PKI/ca.pem)")
	fs.StringVar(&f.crls, "crl", "", "CRL file(s), comma-separated (default PKI/crl.pem if present)")
	fs.StringVar(&f.placement, "placement", "wsse", "signature placement: wsse (WS-Security header over the Body, certificate in X509Data), wsse-token (the same with the certificate as a BinarySecurityToken, as WS-Security stacks sign), wsse-token-ts (and a signed wsu:Timestamp, as WSS4J signs by default) or enveloped (inside data)")
	fs.IntVar(&f.basis, "basis", 0, "basis 1-6: 1 criminal, 2 administrative (court), 3 administrative offence, 4 civil (court), 5 enforcement, 6 search")
	fs.StringVar(&f.caseNo, "case", "", "the case number the basis needs (ЕРДР, court, administrative, enforcement or search case)")
	fs.StringVar(&f.instructionNo, "instruction-no", "", "basis 1, §22: outgoing number of the instruction")
	fs.StringVar(&f.requestingBody, "requesting-body", "", "basis 1, §22: the body requesting international legal assistance")
	fs.StringVar(&f.letterNo, "letter-no", "", "basis 1, §22: outgoing number of the covering letter")
	fs.StringVar(&f.year, "year", "", "bases 2 and 4, §25: the accounting year")
	fs.StringVar(&f.court, "court", "", "bases 2 and 4, §25: the court")
	fs.StringVar(&f.article, "article", "", "Criminal Code article (needed for the КГД services 37-40, 70-74)")
	fs.StringVar(&f.subject, "subject", "", "the IIN or BIN asked about (12 digits)")
	fs.StringVar(&f.services, "services", "", "comma-separated service numbers 1-93, e.g. 1,5,11")
	fs.StringVar(&f.purpose, "purpose", "проверка по материалам дела", "free-text purpose of the request")
	fs.StringVar(&f.sender, "sender", "SIO_PSO_CLIENT", "requestInfo/sender/senderId")
	fs.StringVar(&f.saveRequest, "save-request", "", "write the exact bytes sent to FILE")
	fs.StringVar(&f.saveReply, "save-reply", "", "write the exact bytes received to FILE")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up waiting for the reply after this long")
	fs.BoolVar(&f.async, "async", false, "post to the asynchronous endpoint (/AsyncChannel/v10); print the broker's id for status and fetch, and exit")
}

func cmdSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("send", sendUsage, stdout, stderr)
	var f sendFlags
	f.register(fs)
	if code, ok := fs.parseNoArgs(args); !ok {
		return code
	}
	q, err := f.query()
	if err != nil {
		return fs.usageError("%v", err)
	}
	c, err := f.client()
	if err != nil {
		return fs.usageError("%v", err)
	}

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.async {
		return sendAsync(ctx, c, q, &f, stdout, stderr)
	}
	ex, err := c.Send(ctx, q)
	if ex != nil {
		if saveErr := f.save(ex); saveErr != nil {
			return fs.fail(sendExitError, "%v", saveErr)
		}
	}
	if code, done := reportErr("send", err, stdout, stderr); done {
		return code
	}
	printExchange(stdout, ex)
	return sendExitOK
}

func (f *sendFlags) query() (siobroker.Query, error) {
	q := siobroker.Query{
		Basis: siobroker.Basis(f.basis),
		Case: siobroker.CaseRef{Number: f.caseNo, InstructionNo: f.instructionNo, RequestingBody: f.requestingBody,
			CoveringLetterNo: f.letterNo, Year: f.year, Court: f.court},
		Article: f.article,
		Purpose: f.purpose,
	}
	if !q.Basis.Known() {
		return q, fmt.Errorf("--basis must be 1 to 9 (7 to 9: the Law's bases of §1)")
	}
	if f.caseNo == "" {
		return q, fmt.Errorf("--case is required: every request names its case (§3 of the Rules)")
	}
	switch {
	case len(f.subject) != 12:
		return q, fmt.Errorf("--subject must be a 12-digit IIN or BIN")
	case isBIN(f.subject):
		q.Subject.BIN = f.subject
	default:
		q.Subject.IIN = f.subject
	}
	for s := range strings.SplitSeq(f.services, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, fmt.Errorf("--services: %q is not a number", s)
		}
		q.Services = append(q.Services, n)
	}
	if len(q.Services) == 0 {
		return q, fmt.Errorf("--services is required, e.g. --services 1,5,11")
	}
	return q, nil
}

// isBIN tells a BIN from an IIN by the fifth digit: in an IIN it is the tens of the day of birth
// (0-3), in a BIN the type of the legal entity (4-6).
func isBIN(id string) bool {
	return len(id) == 12 && id[4] >= '4' && id[4] <= '6'
}

func (f *sendFlags) client() (*client.Client, error) {
	signer, verifier, placement, err := loadCredentials(f.user, f.pki, f.cert, f.key, f.roots, f.crls, f.placement)
	if err != nil {
		return nil, err
	}
	return &client.Client{
		URL: f.url, Signer: signer, Verifier: verifier, Placement: placement,
		HTTP: client.DefaultHTTPClient(f.timeout), Clock: siobroker.SystemClock{},
		SenderID: f.sender, ServiceID: "SIO_PSO_QUERY",
	}, nil
}

// loadCredentials loads what a signing command (send, reports, status, fetch, load) needs: the
// user's signer (from --cert/--key, or a demo user's files in the development PKI), the verifier
// of the broker's reply (--ca/--crl, by default the PKI's root and CRL) and the placement.
func loadCredentials(user, pki, cert, key, roots, crls, placementFlag string) (*signing.Signer, *signing.Verifier, signing.Placement, error) {
	placement := signing.Placement(placementFlag)
	if !placement.Valid() {
		return nil, nil, "", errors.New("--placement must be wsse, wsse-token, wsse-token-ts or enveloped")
	}
	if user != "" {
		m, err := devpki.LoadManifest(pki)
		if err != nil {
			return nil, nil, "", fmt.Errorf("--user needs the development PKI in --pki %s: %w", pki, err)
		}
		found := false
		for _, u := range m.Users {
			if u.IIN == user {
				cert, key, found = filepath.Join(pki, u.Cert), filepath.Join(pki, u.Key), true
			}
		}
		if !found {
			return nil, nil, "", fmt.Errorf("--user %s is not in %s", user, filepath.Join(pki, devpki.ManifestFile))
		}
	}
	if cert == "" || key == "" {
		return nil, nil, "", errors.New("--cert and --key (or --user) are required")
	}
	signer, err := signing.LoadSigner(cert, key)
	if err != nil {
		return nil, nil, "", fmt.Errorf("load signing key: %w", err)
	}
	trustCfg := signing.TrustConfig{RootFiles: splitList(roots), CRLFiles: splitList(crls)}
	if len(trustCfg.RootFiles) == 0 {
		trustCfg.RootFiles = []string{filepath.Join(pki, devpki.CAFile)}
		if crls == "" {
			if _, err := os.Stat(filepath.Join(pki, devpki.CRLFile)); err == nil {
				trustCfg.CRLFiles = []string{filepath.Join(pki, devpki.CRLFile)}
			}
		}
	}
	trust, err := signing.LoadTrustStore(trustCfg)
	if err != nil {
		return nil, nil, "", fmt.Errorf("trusted roots for the reply: %w", err)
	}
	verifier, err := signing.NewReplyVerifier(trust)
	if err != nil {
		return nil, nil, "", err
	}
	return signer, verifier, placement, nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (f *sendFlags) save(ex *client.Exchange) error {
	if f.saveRequest != "" && ex.Request != nil {
		if err := os.WriteFile(f.saveRequest, ex.Request, 0o600); err != nil {
			return fmt.Errorf("save request: %w", err)
		}
	}
	if f.saveReply != "" && ex.Reply != nil {
		if err := os.WriteFile(f.saveReply, ex.Reply, 0o600); err != nil {
			return fmt.Errorf("save reply: %w", err)
		}
	}
	return nil
}

func printExchange(w io.Writer, ex *client.Exchange) {
	fmt.Fprintf(w, "reply %s to %s, %s\n", ex.Info.MessageID, ex.Info.CorrelationID, siobroker.FormatTime(ex.Info.ResponseDate))
	fmt.Fprintf(w, "status %s: %s\n", ex.Info.StatusCode, ex.Info.StatusMessage)
	if ex.Placement == signing.PlacementEnveloped {
		// Only q:result is signed in this placement; say so rather than vouch for responseInfo.
		fmt.Fprintf(w, "signature verified over the results (responseInfo above is unsigned): signed by %q\n", ex.BrokerCN)
	} else {
		fmt.Fprintf(w, "signature verified over the whole Body: signed by %q\n", ex.BrokerCN)
	}
	for _, r := range ex.Result.Services {
		fmt.Fprintf(w, "\nservice %d: %s %s", r.Service, r.Status, r.Reason)
		if r.Message != "" {
			fmt.Fprintf(w, " (%s)", r.Message)
		}
		fmt.Fprintf(w, ", %d record(s)\n", len(r.Records))
		for _, rec := range r.Records {
			fmt.Fprintf(w, "  %s\n", rec.Type)
			for _, fld := range rec.Fields {
				fmt.Fprintf(w, "    %s: %s\n", fld.Name, fld.Value)
			}
		}
	}
}
