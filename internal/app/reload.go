package app

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/config/check"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/routing/routes"
	"github.com/sio-pso/siobroker/signing"
)

// reloadPoll is how often the reloadable files are looked at for changes. Polling content
// digests, rather than watching inotify events, also sees a file replaced by rename (as editors
// and configuration tools write them) and needs nothing of the file system.
const reloadPoll = 2 * time.Second

// liveConfig is the part of the configuration a running broker reloads: the routing table (with
// its timeouts), the rights and the configured maintenance windows. A reload checks every file
// first and swaps them in together, or refuses them all and keeps what runs.
type liveConfig struct {
	cfg         config.Broker
	clock       siobroker.Clock // the maintenance file's windows are checked at its time
	routes      *routes.Live
	rights      *rights.Live
	maintenance *maintenance.Schedule // set once the store is open
	// trust is the broker's trust store, whose CRLs a reload rereads (attachTrust). Revocation
	// must take effect without a restart: a CRL read only at start-up keeps answering a revoked
	// user and, once past its nextUpdate, refuses every signer.
	trust *signing.TrustStore
	// observeCRL, when set, counts each CRL reload, applied or refused (the broker's metrics).
	observeCRL func(applied bool)

	mu         sync.Mutex          // one reload at a time
	digests    map[string][32]byte // of each file as last loaded (or refused)
	crlDigests map[string][32]byte // of each CRL file as last loaded (or refused)
}

// loadedFiles is one consistent reading of the reloadable files.
type loadedFiles struct {
	routes  *routes.Table
	rights  *rights.Table
	windows []siobroker.MaintenanceWindow
	digests map[string][32]byte
}

// loadLiveConfig reads the reloadable files for the first start.
func loadLiveConfig(cfg config.Broker, clock siobroker.Clock) (*liveConfig, error) {
	f, err := readReloadable(cfg, nil, clock)
	if err != nil {
		return nil, err
	}
	return &liveConfig{cfg: cfg, clock: clock, routes: routes.NewLive(f.routes), rights: rights.NewLive(f.rights), digests: f.digests,
		maintenance: nil}, nil
}

// attachTrust makes the reloads reread the CRL files of t, which are in force as read now.
func (l *liveConfig) attachTrust(t *signing.TrustStore) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trust = t
	l.crlDigests = fileDigests(t.CRLFiles())
}

// fileDigests returns the SHA-256 of each file; an unreadable file has the zero digest.
func fileDigests(paths []string) map[string][32]byte {
	d := make(map[string][32]byte, len(paths))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			d[p] = sha256.Sum256(b)
		} else {
			d[p] = [32]byte{}
		}
	}
	return d
}

// reloadCRLs rereads the CRL files. They are reloaded apart from the other files, so that a
// routing or rights file refused for an unrelated reason never holds a revocation back; a CRL
// file that does not parse or verify keeps the CRLs in force. It returns the changes to log.
func (l *liveConfig) reloadCRLs(why string, logger *slog.Logger) ([]string, error) {
	if l.trust == nil {
		return nil, nil
	}
	files := l.trust.CRLFiles()
	before := l.trust.CRLs()
	l.crlDigests = fileDigests(files) // a refused file is not retried until it changes again
	err := l.trust.ReloadCRLs()
	if l.observeCRL != nil {
		l.observeCRL(err == nil)
	}
	if err != nil {
		logger.Error("CRL reload refused; the CRLs in force stay", "trigger", why, "error", err)
		return nil, fmt.Errorf("CRL reload refused: %w", err)
	}
	return crlChanges(before, l.trust.CRLs()), nil
}

// crlChanges describes, for the log, how the CRLs in force changed: by issuer, number, thisUpdate
// and the count of revoked certificates.
func crlChanges(before, after []*x509.RevocationList) []string {
	describe := func(list []*x509.RevocationList) []string {
		var out []string
		for _, c := range list {
			out = append(out, fmt.Sprintf("%s number %v of %s (%d revoked, next update %s)",
				c.Issuer, c.Number, siobroker.FormatTime(c.ThisUpdate), len(c.RevokedCertificateEntries), siobroker.FormatTime(c.NextUpdate)))
		}
		return out
	}
	old, cur := describe(before), describe(after)
	var changes []string
	for _, c := range old {
		if !slices.Contains(cur, c) {
			changes = append(changes, "crls: no longer in force: "+c)
		}
	}
	for _, c := range cur {
		if !slices.Contains(old, c) {
			changes = append(changes, "crls: in force: "+c)
		}
	}
	return changes
}

// attachSchedule makes s the broker's maintenance schedule, with the file's windows.
func (l *liveConfig) attachSchedule(ctx context.Context, s *maintenance.Schedule) error {
	windows, err := maintenance.LoadFile(l.cfg.Maintenance, fileRules(l.cfg, l.clock.Now()))
	if err != nil {
		return err
	}
	s.SetFileWindows(windows)
	l.maintenance = s
	return s.Refresh(ctx)
}

// fileRules are the notice rules of the maintenance file at now.
func fileRules(cfg config.Broker, now time.Time) maintenance.FileRules {
	return maintenance.FileRules{MinNotice: cfg.MaintenanceMinNotice, Now: now}
}

// readReloadable reads and checks every reloadable file at the time of clock. running, when not nil, is the
// table in force: a reload may not move a service to another queue, because queues are declared
// and consumed from start-up.
func readReloadable(cfg config.Broker, running *routes.Table, clock siobroker.Clock) (loadedFiles, error) {
	f := loadedFiles{digests: map[string][32]byte{}}
	var errs []error
	for _, path := range []string{cfg.Routing.RoutesFile, cfg.Rights, cfg.Maintenance} {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist) && path == cfg.Maintenance:
			f.digests[path] = [32]byte{}
		case err != nil:
			errs = append(errs, err)
		default:
			f.digests[path] = sha256.Sum256(b)
		}
	}
	var err error
	if f.routes, err = routes.Load(cfg.Routing.RoutesFile); err != nil {
		errs = append(errs, err)
	} else {
		if m := f.routes.MaxTimeout(); m > cfg.Routing.AsyncTimeout {
			errs = append(errs, fmt.Errorf("%s: the longest timeout, %s, exceeds routing.async_timeout (%s) of the broker configuration; shorten it or raise async_timeout",
				cfg.Routing.RoutesFile, m, cfg.Routing.AsyncTimeout))
		}
		if running != nil {
			errs = append(errs, queueChanges(running, f.routes)...)
		}
	}
	if f.rights, err = rights.Load(cfg.Rights); err != nil {
		errs = append(errs, fmt.Errorf("rights: %w", err))
	}
	if f.windows, err = maintenance.LoadFile(cfg.Maintenance, fileRules(cfg, clock.Now())); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		// The loaders check each file alone; `config check` also checks them against each other
		// (a service granted in the rights with no route) and against the broker's settings.
		errs = append(errs, crossCheck(cfg, clock)...)
	}
	return f, errors.Join(errs...)
}

// crossCheck runs the checks of `siobroker config check` over the reloadable files and returns
// its errors. Its warnings are not a reason to refuse.
func crossCheck(cfg config.Broker, clock siobroker.Clock) []error {
	files := []check.File{{Path: cfg.Routing.RoutesFile, Kind: check.KindRoutes}, {Path: cfg.Rights, Kind: check.KindRights}}
	if _, err := os.Stat(cfg.Maintenance); err == nil {
		files = append(files, check.File{Path: cfg.Maintenance, Kind: check.KindMaintenance})
	}
	report, err := check.Run(check.Options{Broker: &cfg, Clock: clock}, files...)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, f := range report.Findings {
		if f.Severity == check.Error {
			errs = append(errs, errors.New(f.String()))
		}
	}
	return errs
}

// queueChanges refuses routes that move a service to another queue than the running table's.
func queueChanges(running, next *routes.Table) []error {
	var errs []error
	for _, r := range next.Routes() {
		if old, ok := running.Route(r.Service); ok && old.Queue != r.Queue {
			errs = append(errs, fmt.Errorf("%s:%d: service %d moves from queue %s to %s: a queue change needs a restart (the broker declares queues, and adapters must consume the new one, at start-up)",
				next.Path, r.Line, r.Service, old.Queue, r.Queue))
		}
	}
	return errs
}

// Reload rereads the CRL files (apart: see reloadCRLs) and the other reloadable files and, if
// every one of these passes the check, puts them in force together and logs what changed. Requests in flight keep the tables they started with. A
// refused reload is logged with every reason and changes nothing.
func (l *liveConfig) Reload(ctx context.Context, why string, logger *slog.Logger) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The CRL changes are logged now: they are in force whatever becomes of the other files.
	changes, crlErr := l.reloadCRLs(why, logger)
	for _, c := range changes {
		logger.Info("configuration change", "trigger", why, "change", c)
	}
	crlCount := len(changes)
	f, err := readReloadable(l.cfg, l.routes.Table(), l.clock)
	if err != nil {
		l.digests = f.digests // a refused file is not retried until it changes again
		logger.Error("configuration reload refused; the running configuration stays", "trigger", why, "error", err)
		return errors.Join(crlErr, fmt.Errorf("reload refused: %w", err))
	}
	// The store's roles are numbered by the running edition of Appendix 1 (CheckRolesEdition at
	// start); a file of another would renumber them under the users' feet.
	if from, to := l.rights.Table().Edition(), f.rights.Edition(); from != to {
		err := fmt.Errorf("%s: edition %s, the running one is %s: a new edition of Appendix 1 needs `siobroker users migrate-roles` and a restart", l.cfg.Rights, to, from)
		l.digests = f.digests // as any refused file: not retried until it changes again
		logger.Error("configuration reload refused; the running configuration stays", "trigger", why, "error", err)
		return errors.Join(crlErr, fmt.Errorf("reload refused: %w", err))
	}
	for _, c := range f.routes.Diff(l.routes.Table()) {
		changes = append(changes, "routes: "+c)
	}
	for _, c := range f.rights.Diff(l.rights.Table()) {
		changes = append(changes, "rights: "+c)
	}
	if l.maintenance != nil {
		if old := l.maintenance.FileWindows(); !sameWindows(old, f.windows) {
			changes = append(changes, fmt.Sprintf("maintenance: %d configured windows → %d", len(old), len(f.windows)))
		}
		l.maintenance.SetFileWindows(f.windows)
		// An emergency window of the file is recorded in the journal of emergencies as it is
		// loaded; should that fail, the schedule's next refresh records it.
		if err := l.maintenance.RecordEmergencies(ctx); err != nil {
			logger.Error("an emergency maintenance window of the file has no incident yet; the next refresh retries", "error", err)
		}
	}
	l.routes.Swap(f.routes)
	l.rights.Swap(f.rights)
	l.digests = f.digests
	if len(changes) == 0 {
		logger.Info("configuration reloaded: no change", "trigger", why)
		return crlErr
	}
	logger.Info("configuration reloaded", "trigger", why, "changes", len(changes))
	for _, c := range changes[crlCount:] {
		logger.Info("configuration change", "trigger", why, "change", c)
	}
	return crlErr
}

func sameWindows(a, b []siobroker.MaintenanceWindow) bool {
	return slices.EqualFunc(a, b, func(x, y siobroker.MaintenanceWindow) bool {
		return slices.Equal(x.Services, y.Services) && x.Start.Equal(y.Start) && x.End.Equal(y.End) && x.Reason == y.Reason &&
			x.AnnouncedAt.Equal(y.AnnouncedAt) && x.Emergency == y.Emergency
	})
}

// changed reports whether any reloadable file but the CRLs differs from what was last read.
func (l *liveConfig) changed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, path := range []string{l.cfg.Routing.RoutesFile, l.cfg.Rights, l.cfg.Maintenance} {
		var d [32]byte
		if b, err := os.ReadFile(path); err == nil {
			d = sha256.Sum256(b)
		} else if !errors.Is(err, os.ErrNotExist) {
			continue // unreadable for now (being written): look again at the next poll
		}
		if d != l.digests[path] {
			return true
		}
	}
	return false
}

// crlsChanged reports whether a CRL file differs from what was last read.
func (l *liveConfig) crlsChanged() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.trust == nil {
		return false
	}
	for path, d := range fileDigests(l.trust.CRLFiles()) {
		if d != [32]byte{} && d != l.crlDigests[path] { // unreadable: being written, look again
			return true
		}
	}
	return false
}

// ReloadCRLs rereads the CRL files alone (reloadCRLs) and logs what changed, for a change of a
// CRL file seen by the poll: the routes, rights and maintenance files have their own.
func (l *liveConfig) ReloadCRLs(why string, logger *slog.Logger) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	changes, err := l.reloadCRLs(why, logger)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		logger.Info("CRLs reloaded: no change", "trigger", why)
	}
	for _, c := range changes {
		logger.Info("configuration change", "trigger", why, "change", c)
	}
	return nil
}

// watch reloads everything on every signal from hup, the routes, rights and maintenance files
// when their content changes (looked at every poll), and the CRL files when theirs does (every
// crlPoll, trust.crl_poll), until ctx ends.
func (l *liveConfig) watch(ctx context.Context, hup <-chan os.Signal, poll, crlPoll time.Duration, logger *slog.Logger) {
	if crlPoll <= 0 {
		crlPoll = poll // a configuration built by hand, not by config.Load
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	crlTicker := time.NewTicker(crlPoll)
	defer crlTicker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = l.Reload(ctx, "SIGHUP", logger)
		case <-ticker.C:
			if l.changed() {
				_ = l.Reload(ctx, "file changed", logger)
			}
		case <-crlTicker.C:
			if l.crlsChanged() {
				_ = l.ReloadCRLs("file changed", logger)
			}
		}
	}
}
