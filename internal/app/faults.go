package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/signing"
)

// The incidents the broker opens for the failures of its own parts (§39–41): each part reports
// every use of it to the incident tracker (incidents.Tracker.Report), which only touches memory on
// the request's path and records the incident from its own goroutine.
//
//   - the journal: the pipeline's and the late answers' journal is wrapped
//     (incidents.Tracker.WatchJournal), and so are the pipeline's replay marks (watchedReplay),
//     which are kept where the journal is and are the first write of every request: a journal's
//     store that does not take writes refuses the request there, before any append is tried;
//   - the reply signer: watchedSigner;
//   - the message transport: probed every transportProbe (transportReady: the router runs and,
//     on RabbitMQ, both connections are up), since during an outage no request reaches the
//     transport to fail: the pipeline refuses them first (acceptsRequests);
//   - a publish that fails: the dispatcher reports it (incidents.DispatcherTracker).

// transportProbe is how often the transport's state is reported to the tracker.
const transportProbe = time.Second

// watchedSigner is the reply signer with every signing reported to the tracker
// (incidents.FaultSigning): a failure opens, or counts in, the signing-failure incident, and a
// success clears it.
type watchedSigner struct {
	broker.Signer
	report func(error)
}

func (s watchedSigner) Sign(doc *etree.Document, p signing.Placement) error {
	err := s.Signer.Sign(doc, p)
	s.report(err)
	return err
}

// watchedReplay is the pipeline's replay marks with every marking reported to the tracker as a
// write to the journal's store (incidents.FaultJournal). A marking abandoned because its caller's
// context ended is not reported.
type watchedReplay struct {
	broker.ReplayGuard
	report func(error)
}

func (w watchedReplay) MarkRequest(ctx context.Context, m siobroker.ReplayMark) (idFresh, contentFresh bool, err error) {
	idFresh, contentFresh, err = w.ReplayGuard.MarkRequest(ctx, m)
	if err == nil || ctx.Err() == nil {
		w.report(err)
	}
	return idFresh, contentFresh, err
}

// watchedTransactor reports to the tracker (FaultJournal) what a request's shared transaction
// came to (broker.Deps.Together). The replay marks and the journal's records written in it are
// only queued when their calls return, so watchedReplay and the watched journal see them succeed;
// a store that does not take the transaction (locked, full, failing) shows only here. A
// transaction abandoned because its caller's context ended is not the journal's failure.
type watchedTransactor struct {
	broker.Transactor
	report func(error)
}

func (w watchedTransactor) WriteTogether(ctx context.Context, f func(ctx context.Context) error) error {
	err := w.Transactor.WriteTogether(ctx, f)
	if err == nil || ctx.Err() == nil {
		w.report(err)
	}
	return err
}

// watchTransactor is t watched by the tracker, or nil without one: Deps.Together is optional.
func watchTransactor(t broker.Transactor, report func(error)) broker.Transactor {
	if t == nil {
		return nil
	}
	return watchedTransactor{Transactor: t, report: report}
}

// probeTransport reports the transport's state to the tracker every transportProbe until ctx
// ends. Nothing is reported once the broker is closing: its router stops before its jobs, and
// that is no outage.
func (b *Broker) probeTransport(ctx context.Context, tracker *incidents.Tracker) {
	report := tracker.Watch(incidents.FaultTransport)
	every(ctx, transportProbe, func(ctx context.Context) { b.reportTransport(ctx, report) })
}

// reportTransport reports the transport's state once, unless the broker is closing.
func (b *Broker) reportTransport(ctx context.Context, report func(error)) {
	if b.closing.Load() || ctx.Err() != nil {
		return
	}
	report(b.transportReady(ctx))
}

// loadEmergencyPlans reads the action plans of the emergencies an operator opens
// (incidents.emergency_plans_file). A file that does not exist leaves the broker without them,
// with a warning: it starts, and the dashboard refuses to open an emergency until the file is
// there. A file that does not read or check refuses the start, as the other configuration files
// do.
func loadEmergencyPlans(cfg config.Broker, logger *slog.Logger) (*incidents.Plans, error) {
	path := cfg.Incidents.EmergencyPlans
	if path == "" {
		logger.Warn("no emergency action plans (incidents.emergency_plans_file is empty): emergencies cannot be opened on the dashboard")
		return nil, nil
	}
	plans, err := incidents.LoadPlans(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		logger.Warn("the emergency action plans file does not exist: emergencies cannot be opened on the dashboard until it does",
			"file", path, "key", "incidents.emergency_plans_file")
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("incidents.emergency_plans_file: %w", err)
	}
	if plans.Example {
		logger.Warn("the emergency action plans are the shipped example (example: true): adapt them to the premises and staff, then remove the key",
			"file", path)
	}
	return plans, nil
}
