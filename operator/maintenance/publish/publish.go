// Package publish makes the schedule of maintenance windows visible to every participant system
// (§36, 42 of the Rules: planned works are published, and access is round the clock except in
// emergencies and in works so published). It serves the schedule two ways, both for participants
// only:
//
//   - a feed, in JSON and in Atom (RFC 4287), that a feed reader or a script fetches with GET and
//     the TLS client certificate of a registered user (Handler);
//   - the operation GetMaintenanceWindows of the SyncChannel endpoint: a signed request in, a
//     signed reply out, as every other call of the broker (GetMaintenanceWindows).
//
// Neither is journaled: the schedule discloses nothing of users or subjects (§44), it is what the
// Rules have published to all participants, and the Log journal (§37), kept forever (§38), would
// otherwise grow by a record each time a reader polls it. A refusal costs no store write either.
package publish

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/replayguard"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// Schedule is the maintenance schedule (maintenance.Schedule implements it).
type Schedule interface {
	// Windows returns the windows kept, ended and cancelled ones too when includeEnded is true.
	Windows(ctx context.Context, includeEnded bool) ([]siobroker.MaintenanceWindow, error)
	// MinNotice is the least notice of a planned window.
	MinNotice() time.Duration
}

// Users is the user registry: whether the holder of an IIN may act now.
type Users interface {
	Authorize(ctx context.Context, iin string) (siobroker.User, error)
}

// Recent is how long a window stays in the schedule once it ended or was cancelled: long enough
// for a reader that looks once a day, or after a weekend, to learn that a window it saw was
// called off, or is over.
const Recent = 7 * 24 * time.Hour

// Config configures a Publisher. Every field is required but Logger (none: discarded), Limits
// (zero: soap.Limits' defaults) and VerifyClientCert (none: a verified chain is enough).
type Config struct {
	Schedule Schedule
	Users    Users
	Clock    siobroker.Clock
	Logger   *slog.Logger
	// PublicURL is the scheme, host and optional path prefix participants reach the broker at
	// (http.public_url): the Atom feed's ids and links are made from it, never from the request.
	PublicURL string
	// VerifyClientCert checks a client certificate's chain for revocation at a time
	// (signing.TrustStore.VerifyChain): the TLS handshake checked the chain, not the CRLs.
	VerifyClientCert func(leaf *x509.Certificate, intermediates []*x509.Certificate, at time.Time) error

	// The signed operation: how requests are verified and replies signed, the limits a request
	// is read under, how far its messageDate and issuedAt may be from the clock, and where its
	// replay marks are kept (the store the journal uses).
	Verify            func(ctx context.Context, doc *etree.Document, at time.Time) (*signing.Verified, error)
	Sign              func(doc *etree.Document, p signing.Placement) error
	Limits            soap.Limits
	MessageDateWindow time.Duration
	Marks             siobroker.ReplayMarks
}

// Validate reports every required field that c lacks.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"Schedule", c.Schedule != nil}, {"Users", c.Users != nil}, {"Clock", c.Clock != nil}, {"PublicURL", c.PublicURL != ""},
		{"Verify", c.Verify != nil}, {"Sign", c.Sign != nil}, {"Marks", c.Marks != nil},
	} {
		if !f.set {
			errs = append(errs, fmt.Errorf("publish: Config.%s is required", f.name))
		}
	}
	if c.MessageDateWindow <= 0 {
		errs = append(errs, fmt.Errorf("publish: Config.MessageDateWindow must be positive, got %s", c.MessageDateWindow))
	}
	return errors.Join(errs...)
}

// Publisher serves the schedule to participants. It is safe for concurrent use.
type Publisher struct {
	cfg    Config
	log    *slog.Logger
	replay *replayguard.Guard
}

// New returns a Publisher, or an error naming every field of cfg that is missing.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{cfg: cfg, log: log, replay: replayguard.New(cfg.Marks, "maintenance-windows")}, nil
}

// schedule is what both ways serve: the windows in force or to come, and those that ended or
// were cancelled within Recent, by start, each with its state at now.
func (p *Publisher) schedule(ctx context.Context, now time.Time) ([]published, error) {
	all, err := p.cfg.Schedule.Windows(ctx, true)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the schedule of maintenance windows cannot be read now; retry later")
	}
	var out []published
	for _, w := range all {
		gone := w.End
		if !w.Cancelled.IsZero() {
			gone = w.Cancelled
		}
		if (!w.Cancelled.IsZero() || !now.Before(w.End)) && now.Sub(gone) > Recent {
			continue
		}
		out = append(out, published{window: w, entry: entryOf(w, now)})
	}
	return out, nil
}

// published is one window of the schedule as it is served.
type published struct {
	window siobroker.MaintenanceWindow
	entry  soap.WindowEntry
}

// entryOf is w as both ways describe it, at now.
func entryOf(w siobroker.MaintenanceWindow, now time.Time) soap.WindowEntry {
	e := soap.WindowEntry{Number: w.ID, Services: w.Services, Start: w.Start.In(siobroker.Astana), End: w.End.In(siobroker.Astana),
		Reason: w.Reason, AnnouncedAt: w.AnnouncedAt.In(siobroker.Astana), Emergency: w.Emergency}
	switch {
	case !w.Cancelled.IsZero():
		e.State, e.Cancelled = soap.WindowCancelled, w.Cancelled.In(siobroker.Astana)
	case !now.Before(w.End):
		e.State = soap.WindowEnded
	case !now.Before(w.Start):
		e.State = soap.WindowInForce
	default:
		e.State = soap.WindowAnnounced
	}
	return e
}

// windowID is a window's stable identifier, an IRI under the public URL (the Atom entry's id):
// an announced window by its number, a window of the file by a digest of its period and
// services, which are what make it that window.
func (p *Publisher) windowID(w siobroker.MaintenanceWindow) string {
	if w.ID > 0 {
		return fmt.Sprintf("%s%swindows/%d", p.cfg.PublicURL, FeedPrefix, w.ID)
	}
	sum := sha256.Sum256([]byte(w.IncidentCause().Queue))
	return fmt.Sprintf("%s%swindows/file-%s", p.cfg.PublicURL, FeedPrefix, hex.EncodeToString(sum[:8]))
}

// participant authenticates a feed request: by the TLS client certificate the connection was
// verified with, not revoked at now, of a registered user the registry lets act now. Without a
// certificate it answers CodeWindowsDenied at once: no store is read, nothing is written.
func (p *Publisher) participant(r *http.Request, now time.Time) (siobroker.User, error) {
	iin, err := signing.ClientCertificateIIN(r.TLS, p.cfg.VerifyClientCert, now)
	if errors.Is(err, signing.ErrNoClientCertificate) {
		return siobroker.User{}, siobroker.Errorf(siobroker.CodeWindowsDenied,
			"the schedule of maintenance windows is for participant systems: connect over TLS with the client certificate of a registered user, or call GetMaintenanceWindows on the SOAP endpoint with a signed request")
	}
	if err != nil {
		return siobroker.User{}, err
	}
	return p.cfg.Users.Authorize(r.Context(), iin)
}
