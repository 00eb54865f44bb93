package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/devpki"
)

func cmdDevPKI(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devpki", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write the PKI into (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: siobroker devpki --out DIR\n\nWrites ca.pem, ca.key, crl.pem, broker.pem, broker.key, users/<IIN>.pem|.key and demo.json.\nThe keys are development keys: never use them in production.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	m, err := devpki.Generate(*out, siobroker.SystemClock{}.Now())
	if err != nil {
		fmt.Fprintf(stderr, "siobroker devpki: %v\n", err)
		return 1
	}
	printManifest(stdout, *out, m)
	return 0
}

func printManifest(w io.Writer, dir string, m *devpki.Manifest) {
	fmt.Fprintf(w, "development PKI in %s (NOT FOR PRODUCTION)\n", dir)
	fmt.Fprintf(w, "  trusted root: %s\n  CRL:          %s\n  broker:       %s\n  users (%s):\n",
		filepath.Join(dir, m.CA), filepath.Join(dir, m.CRL), filepath.Join(dir, m.BrokerCert), filepath.Join(dir, devpki.ManifestFile))
	for _, u := range m.Users {
		fmt.Fprintf(w, "    %s  role %-2d  %-6s %-8s %s\n", u.IIN, u.Role, u.KeyType, u.Status, u.Name)
	}
}
