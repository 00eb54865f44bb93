package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/private"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const devpkiUsage = `usage:
  siobroker devpki --out DIR

Writes a development PKI into DIR: ca.pem, ca.key, crl.pem, broker.pem, broker.key,
users/<IIN>.pem|.key and demo.json (the demo users, their roles and cases). The keys are
development keys: never use them in production.
Exit status: 0 written, 1 failed, 2 usage error.
`

func cmdDevPKI(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("devpki", devpkiUsage, stdout, stderr)
	out := f.String("out", "", "directory to write the PKI into (required)")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *out == "" {
		return f.usageError("--out is required")
	}
	private.RestrictUmask() // the keys, and whatever else lands in DIR
	m, err := devpki.Generate(*out, siobroker.SystemClock{}.Now())
	if err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	printManifest(stdout, *out, m)
	return exitOK
}

func printManifest(w io.Writer, dir string, m *devpki.Manifest) {
	fmt.Fprintf(w, "development PKI in %s (NOT FOR PRODUCTION)\n", dir)
	fmt.Fprintf(w, "  trusted root: %s\n  CRL:          %s\n  broker:       %s\n  users (%s):\n",
		filepath.Join(dir, m.CA), filepath.Join(dir, m.CRL), filepath.Join(dir, m.BrokerCert), filepath.Join(dir, devpki.ManifestFile))
	for _, u := range m.Users {
		fmt.Fprintf(w, "    %s  role %-2d  %-6s %-8s %s\n", u.IIN, u.Role, u.KeyType, u.Status, u.Name)
	}
}
