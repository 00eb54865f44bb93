package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/private"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const devpkiUsage = `usage:
  siobroker devpki --out DIR [--algorithm rsa|ecdsa|gost2015-512|gost2015-256|gost2004]

Writes a development PKI into DIR: ca.pem, ca.key, crl.pem, broker.pem, broker.key,
users/<IIN>.pem|.key and demo.json (the demo users, their roles and cases). The keys are
development keys: never use them in production.

--algorithm chooses the kind of every key: rsa (the default; one demo user has an ECDSA P-256
key), ecdsa (P-256), or a GOST kind of the national PKI: gost2015-512 (GOST 34.10-2015, 512 bits,
the НУЦ РК's keys since 2022), gost2015-256, gost2004 (GOST 34.310-2004). The CA signs its
certificates and its CRL with its own kind; GOST keys are PKCS #8 in "PRIVATE KEY" blocks. Written
as DATA/pki before serve --dev --data DATA first starts, it is the broker's PKI, and the broker signs
its replies with its key of that kind (a GOST broker certificate cannot serve TLS).
Exit status: 0 written, 1 failed, 2 usage error.
`

func cmdDevPKI(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("devpki", devpkiUsage, stdout, stderr)
	out := f.String("out", "", "directory to write the PKI into (required)")
	alg := f.String("algorithm", devpki.KeyRSA, "the kind of every key: "+strings.Join(devpki.Algorithms, ", "))
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *out == "" {
		return f.usageError("--out is required")
	}
	if !slices.Contains(devpki.Algorithms, *alg) {
		return f.usageError("--algorithm must be one of %s", strings.Join(devpki.Algorithms, ", "))
	}
	private.RestrictUmask() // the keys, and whatever else lands in DIR
	m, err := devpki.GenerateAlgorithm(*out, siobroker.SystemClock{}.Now(), *alg)
	if err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	printManifest(stdout, *out, m)
	return exitOK
}

func printManifest(w io.Writer, dir string, m *devpki.Manifest) {
	kind := m.Algorithm
	if kind == "" {
		kind = devpki.KeyRSA
	}
	fmt.Fprintf(w, "development PKI (%s) in %s (NOT FOR PRODUCTION)\n", kind, dir)
	fmt.Fprintf(w, "  trusted root: %s\n  CRL:          %s\n  broker:       %s\n  users (%s):\n",
		filepath.Join(dir, m.CA), filepath.Join(dir, m.CRL), filepath.Join(dir, m.BrokerCert), filepath.Join(dir, devpki.ManifestFile))
	for _, u := range m.Users {
		fmt.Fprintf(w, "    %s  role %-2d  %-12s %-8s %s\n", u.IIN, u.Role, u.KeyType, u.Status, u.Name)
	}
}
