package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// usersConsentForm writes the consent form of §17 (App. 6) for a registered user: the document
// the user signs with their own EDS.
func usersConsentForm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("consent-form", stdout, stderr, false)
	iin := f.String("iin", "", "the user's IIN (required)")
	city := f.String("city", "Астана", "the city the consent is signed in")
	out := f.String("out", "", "write the form to FILE (default: stdout)")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *iin == "" {
		return f.usageError("--iin is required")
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	tmpl, err := users.LoadConsentTemplate(e.cfg.Users.ConsentTemplate)
	if err != nil {
		return f.fail(usersExitFailed, "%v (users.consent_template)", err)
	}
	db, _, err := openRegistry(ctx, e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	defer db.Close()
	u, exists, err := db.User(ctx, *iin)
	switch {
	case err != nil:
		return f.fail(usersExitFailed, "%v", err)
	case !exists:
		return f.fail(usersExitFailed, "user %s is not registered: the consent names the user as registered", *iin)
	}
	doc, err := tmpl.ConsentForm(u, *city, siobroker.SystemClock{}.Now())
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	return writeForm(f, doc, *out, fmt.Sprintf("the consent form of %s written to %s: the user signs it with their own EDS, then `users consent --iin %s --file SIGNED`",
		*iin, *out, *iin))
}

// writeForm writes a form to be signed (the consent, the application) indented to out, or to
// stdout when out is "", and then says what becomes of it.
func writeForm(f *operatorFlags, doc *etree.Document, out, written string) int {
	doc.Indent(2)
	if out == "" {
		if _, err := doc.WriteTo(f.stdout); err != nil {
			return f.fail(usersExitFailed, "%v", err)
		}
		return usersExitOK
	}
	if err := doc.WriteToFile(out); err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	fmt.Fprintln(f.stdout, written)
	return usersExitOK
}

// usersConsent records a consent the user signed (§17): verified against the broker's trusted
// roots, signed by the user, over the App. 6 text for the user as registered.
func usersConsent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("consent", stdout, stderr, true)
	iin := f.String("iin", "", "the user's IIN (required)")
	file := f.String("file", "", "the signed consent (required)")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *iin == "" || *file == "" {
		return f.usageError("--iin and --file are required")
	}
	raw, err := os.ReadFile(*file)
	if err != nil {
		return f.usageError("--file: %v", err)
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	tmpl, err := users.LoadConsentTemplate(e.cfg.Users.ConsentTemplate)
	if err != nil {
		return f.fail(usersExitFailed, "%v (users.consent_template)", err)
	}
	trust, err := operatorTrust(e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	db, reg, err := openRegistry(ctx, e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	defer db.Close()
	c, err := reg.RecordConsent(ctx, db, tmpl, trust, *iin, raw, *f.by)
	if err != nil {
		return f.fail(usersExitFailed, "the consent is not recorded: %v", err)
	}
	fmt.Fprintf(stdout, "consent of %s signed on %s by %s recorded (SHA-256 %s); the user may make requests (§19)\n",
		c.IIN, c.SignedOn.Format("2006-01-02"), c.Signer, c.SHA256)
	return usersExitOK
}

// operatorTrust is the broker's trusted roots and CRLs, or under its data directory's
// development PKI when it configures none (--dev).
func operatorTrust(e *brokerEnv) (*signing.TrustStore, error) {
	cfg := signing.TrustConfig{RootFiles: e.cfg.Trust.Roots, CRLFiles: e.cfg.Trust.CRLs}
	if len(cfg.RootFiles) == 0 {
		pki := filepath.Join(e.cfg.DataDir, "pki")
		cfg.RootFiles = []string{filepath.Join(pki, devpki.CAFile)}
		if _, err := os.Stat(filepath.Join(pki, devpki.CRLFile)); err == nil {
			cfg.CRLFiles = []string{filepath.Join(pki, devpki.CRLFile)}
		}
	}
	trust, err := signing.LoadTrustStore(cfg)
	if err != nil {
		return nil, fmt.Errorf("the broker's trusted roots (trust.roots, or the development PKI): %w", err)
	}
	return trust, nil
}

const signUsage = `usage: siobroker sign (--cert FILE --key FILE | --user IIN [--pki DIR]) [--out FILE] FILE

Signs the XML document FILE with an enveloped XML-DSig signature over its root element (RSA,
ECDSA or GOST, by the key), as Kalkan and NCALayer sign a document: for a user's consent (§17,
users consent-form) or any document to be checked with siobroker verify. Writes the signed
document to --out, or stdout.
Exit status: 0 signed, 1 failure, 2 usage error.
`

func cmdSign(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("sign", signUsage, stdout, stderr)
	cert := f.String("cert", "", "the signing certificate (PEM)")
	key := f.String("key", "", "the private key (PEM)")
	user := f.String("user", "", "a demo user's IIN: --cert and --key from the development PKI")
	pki := f.String("pki", "data/pki", "the development PKI directory, for --user")
	out := f.String("out", "", "write the signed document to FILE (default: stdout)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("one FILE is required")
	}
	signer, _, _, err := loadCredentials(*user, *pki, *cert, *key, filepath.Join(*pki, devpki.CAFile), "", string(signing.PlacementEnveloped))
	if err != nil && *user == "" && *cert != "" {
		// A certificate of another PKI: no development roots needed to sign.
		signer, err = signing.LoadSigner(*cert, *key)
	}
	if err != nil {
		return f.usageError("%v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(pos[0]); err != nil {
		return f.fail(exitFailed, "%s: %v", pos[0], err)
	}
	if doc.Root() == nil {
		return f.fail(exitFailed, "%s has no root element", pos[0])
	}
	if err := signer.SignEnveloped(doc.Root()); err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	if *out == "" {
		if _, err := doc.WriteTo(stdout); err != nil {
			return f.fail(exitFailed, "%v", err)
		}
		return exitOK
	}
	if err := doc.WriteToFile(*out); err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	return exitOK
}
