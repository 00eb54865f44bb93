package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

const verifyUsage = `usage:
  siobroker verify FILE --trusted-pem FILE [--trusted-pem FILE]... [--crl FILE]...
                        [--verification-time RFC3339] [--id-attr NAME]... [--signature N]

Verifies the XML-DSig signatures of FILE as xmlsec1 --verify does, for an integration engineer
checking what a system signs: any document, a SOAP message signed in its WS-Security header or
enveloped, or a document with an enveloped signature over the whole of it (URI=""), of any
algorithm the broker accepts (RSA-SHA256/512, ECDSA-SHA256, and the НУЦ РК's GOST 34.10-2015 512
and 256 and GOST 34.310-2004). Each signature's SignedInfo, SignatureValue and digests are checked,
and its signer's certificate is chained to the --trusted-pem certificates (CA certificates, or the
signer's own certificate pinned as its trust anchor) and looked up in every --crl, at
--verification-time (default now: give the signing time for an archived or expired document). A
signer named only by an identifier (thumbprint, issuer and serial...) is looked for among the
--trusted-pem certificates.

References name the whole document (URI="") or an element by Id, ID, id or xml:id; --id-attr
names another identifier attribute (xmlsec1's --id-attr). A document that Kalkan signed several
times (co-signatures, each over the document with the earlier ones) is checked as NCANode checks
it: a signature whose digests do not match is checked again without the signatures after it, and
the output says so. --signature N checks only the N-th ds:Signature (1 is the first).

For each signature it prints the signer's subject, issuer, validity, IIN and BIN, the key, the
algorithms, what each Reference covers, and the verdict with the broker's fault code.
Exit status: 0 every signature checked verified, 1 one did not (or FILE is not signed XML),
2 usage error (FILE unreadable included).
`

// maxVerifyFile bounds the file read: far above what the broker accepts, far below trouble.
const maxVerifyFile = 64 << 20

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("verify", verifyUsage, stdout, stderr)
	var trusted, crls, idAttrs listFlag
	f.Var(&trusted, "trusted-pem", "a file of trusted certificates, PEM (or one DER certificate): CAs, or the signer's own (repeatable; at least one)")
	f.Var(&crls, "crl", "a CRL, PEM or DER (repeatable)")
	f.Var(&idAttrs, "id-attr", "another attribute name carrying identifiers, beside Id, ID, id and xml:id (repeatable)")
	at := f.String("verification-time", "", "check certificates and CRLs at this time, RFC 3339 (default now)")
	only := f.Int("signature", 0, "check only the N-th ds:Signature of the document, 1 the first (default every one)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	switch {
	case len(pos) != 1:
		return f.usageError("one FILE is required")
	case len(trusted) == 0:
		return f.usageError("--trusted-pem is required: a CA certificate, or the signer's own")
	case *only < 0:
		return f.usageError("--signature must be 1 or more")
	}
	when := siobroker.SystemClock{}.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return f.usageError("--verification-time %q is not RFC 3339 (2022-09-01T12:00:00+05:00)", *at)
		}
		when = t
	}
	for _, a := range idAttrs {
		if a == "" || strings.ContainsAny(a, ": \t") {
			return f.usageError("--id-attr %q is not an attribute's local name (Id, not wsu:Id)", a)
		}
	}
	data, err := readLimited(pos[0])
	if err != nil {
		return f.usageError("%v", err)
	}
	trust, err := verifyTrust(trusted, crls)
	if err != nil {
		return f.usageError("%v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		fmt.Fprintf(stdout, "verdict: INVALID (%s is not well-formed XML: %v)\n", pos[0], err)
		return exitFailed
	}
	results, err := signing.VerifyDocument(ctx, doc, signing.DocumentOptions{
		Trust: trust, Directory: pinned(trust.Roots()), IDAttributes: idAttrs, At: when, Signature: *only,
	})
	if err != nil {
		fmt.Fprintf(stdout, "verdict: INVALID (%v)\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: checked at %s\n", pos[0], siobroker.FormatTime(when))
	bad := 0
	for _, r := range results {
		printDocumentSignature(stdout, r, len(scanSignatures(doc)))
		if r.Err != nil {
			bad++
		}
	}
	if bad > 0 {
		fmt.Fprintf(stdout, "verdict: INVALID (%d of %d signatures checked did not verify)\n", bad, len(results))
		return exitFailed
	}
	fmt.Fprintf(stdout, "verdict: VALID (%d signature(s) checked)\n", len(results))
	return exitOK
}

// verifyTrust makes the trust store of the command: the certificates of every trusted file (PEM,
// or one DER certificate, as the НУЦ РК publishes them) as roots, and the CRLs (PEM or DER).
func verifyTrust(trusted, crlFiles []string) (*signing.TrustStore, error) {
	var roots []*x509.Certificate
	for _, name := range trusted {
		data, err := readLimited(name)
		if err != nil {
			return nil, err
		}
		certs, err := signing.ParseCertificates(data)
		if err != nil {
			c, derErr := x509.ParseCertificate(data)
			if derErr != nil {
				return nil, fmt.Errorf("--trusted-pem %s: neither PEM certificates (%v) nor one DER certificate (%v)", name, err, derErr)
			}
			certs = []*x509.Certificate{c}
		}
		roots = append(roots, certs...)
	}
	var crls []*x509.RevocationList
	for _, name := range crlFiles {
		data, err := readLimited(name)
		if err != nil {
			return nil, err
		}
		list, err := signing.ParseCRLs(data)
		if err != nil {
			return nil, fmt.Errorf("--crl %s: %w", name, err)
		}
		crls = append(crls, list...)
	}
	return signing.NewTrustStore(roots, crls)
}

// readLimited reads a file of at most maxVerifyFile bytes.
func readLimited(name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxVerifyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxVerifyFile {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, maxVerifyFile>>20)
	}
	return data, nil
}

// scanSignatures counts the ds:Signature elements of doc, for "signature 2 of 3".
func scanSignatures(doc *etree.Document) []*etree.Element {
	var out []*etree.Element
	for _, el := range doc.FindElements("//Signature") {
		if el.NamespaceURI() == "http://www.w3.org/2000/09/xmldsig#" {
			out = append(out, el)
		}
	}
	return out
}

// pinned resolves key identifiers against the trusted certificates: a signer that names its
// certificate by thumbprint or issuer and serial is found when it is given as --trusted-pem.
type pinned []*x509.Certificate

func (p pinned) LookupCertificates(_ context.Context, id signing.KeyIdentifier) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, c := range p {
		if id.Matches(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func printDocumentSignature(w io.Writer, r signing.DocumentSignature, total int) {
	verdict := "VALID"
	if r.Err != nil {
		verdict = "INVALID"
	}
	fmt.Fprintf(w, "\nsignature %d of %d (%s): %s\n", r.Index, total, r.Path, verdict)
	if c := r.Certificate; c != nil {
		fmt.Fprintf(w, "  signer:     %s\n", c.Subject.String())
		fmt.Fprintf(w, "  issuer:     %s\n", c.Issuer.String())
		fmt.Fprintf(w, "  serial:     %X\n", c.SerialNumber)
		fmt.Fprintf(w, "  validity:   %s to %s\n", siobroker.FormatTime(c.NotBefore), siobroker.FormatTime(c.NotAfter))
		fmt.Fprintf(w, "  IIN:        %s\n", identity(signing.SubjectIIN(c)))
		fmt.Fprintf(w, "  BIN:        %s\n", identity(signing.SubjectBIN(c)))
		fmt.Fprintf(w, "  key:        %s\n", keyDescription(c))
	} else {
		fmt.Fprintf(w, "  signer:     (no certificate read)\n")
	}
	if r.KeyForm != "" {
		fmt.Fprintf(w, "  key info:   %s\n", r.KeyForm)
	}
	fmt.Fprintf(w, "  signature:  %s\n", orUnknown(r.SignatureMethod))
	fmt.Fprintf(w, "  c14n:       %s\n", orUnknown(r.CanonicalizationMethod))
	for _, ref := range r.References {
		env := ""
		if ref.Enveloped {
			env = ", enveloped-signature"
		}
		fmt.Fprintf(w, "  reference:  URI=%q covers %s (%s%s), digest %s\n", ref.URI, orUnknown(ref.Covers), ref.Transform, env, ref.DigestMethod)
	}
	if r.LaterRemoved > 0 {
		fmt.Fprintf(w, "  co-signed:  checked without the %d signature(s) after it, which were added later (Kalkan's co-signatures)\n", r.LaterRemoved)
	}
	if r.Err != nil {
		fmt.Fprintf(w, "  result:     %s\n", describeErr(r.Err))
	} else {
		fmt.Fprintf(w, "  result:     the signature, its digests and the signer's chain verify\n")
	}
}

func identity(v string, err error) string {
	if err != nil {
		return "none (" + siobroker.ErrorMessage(err) + ")"
	}
	return v
}

func orUnknown(s string) string {
	if s == "" {
		return "(not read)"
	}
	return s
}

// describeErr is the fault code and message of err, with its cause: the operator of this command
// is the one who needs the detail a client is not told.
func describeErr(err error) string {
	var e *siobroker.Error
	if errors.As(err, &e) {
		if e.Err != nil {
			return fmt.Sprintf("%s: %s (%v)", e.Code, e.Message, e.Err)
		}
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
	return err.Error()
}

// keyDescription names the certificate's key: its algorithm and size.
func keyDescription(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	if gostx509.HasGOSTKey(c) {
		k, err := gostx509.PublicKeyOf(c)
		if err != nil {
			return "GOST, not valid: " + err.Error()
		}
		return fmt.Sprintf("%s (%s)", k.Algorithm, k.Public.Curve())
	}
	return c.PublicKeyAlgorithm.String()
}
