package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// seedDemoUsers registers the development PKI's demo users that are not registered yet, and
// records their certificates as registered with them, so that a client naming its certificate by
// a thumbprint or an issuer and serial works from the first request.
func seedDemoUsers(ctx context.Context, registry *users.Registry, certificates *users.Certificates, pkiDir string, m *devpki.Manifest, now time.Time) error {
	if err := registry.RegisterMissing(ctx, m.Registrations(now)); err != nil {
		return fmt.Errorf("seed demo users: %w", err)
	}
	var errs []error
	for _, u := range m.Users {
		certs, err := signing.LoadCertificates(filepath.Join(pkiDir, u.Cert))
		if err == nil {
			_, err = certificates.Add(ctx, u.IIN, certs[0], siobroker.CertificateRegistered, "devpki")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("demo user %s: %w", u.IIN, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("seed demo users' certificates: %w", err)
	}
	return nil
}
