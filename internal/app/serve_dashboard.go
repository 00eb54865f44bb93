package app

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/operator/reports"
	amqptransport "github.com/sio-pso/siobroker/routing/amqp"
)

// dashboardHandler wires the operator's dashboard (package dashboard) to the broker's store,
// registry, journal, incident tracker, maintenance schedule and transport, and to reports for the
// holders of the reports right. Mount it at dashboard.Path.
func (b *Broker) dashboardHandler(p *parts, rs *reports.Service) (http.Handler, error) {
	cfg, clock, logger := p.cfg, p.clock, p.logger
	dc := dashboard.Config{
		Services:     b.ops.Monitor.Services,
		Incidents:    dashboard.IncidentsOf(p.tracker, b.db),
		Plans:        p.plans,
		Applications: b.db,
		// The page names the delay that opens an incident as configured, not the Rules' hour.
		IncidentThreshold: cfg.Incidents.Threshold,
		ServiceInfo: func(n int) (string, string) {
			var name string
			if s, ok := b.live.rights.Table().Service(n); ok {
				name = s.Name
			}
			return name, b.live.routes.Adapter(n)
		},
		// The charts and the busy services read the dispatcher's history, kept with the counters
		// /metrics reads, so that they agree.
		History: func(service int, day bool) []dashboard.Bucket {
			h := p.dispatcher.History(service, day)
			out := make([]dashboard.Bucket, len(h))
			for i, b := range h {
				out[i] = dashboard.Bucket(b)
			}
			return out
		},
		Traffic:          p.dispatcher.Traffic,
		Users:            p.users,
		Reports:          rs,
		Journal:          p.journal,
		Replay:           p.replay.calls,
		Verify:           p.verifier.Verify,
		Sign:             p.signer.Sign,
		VerifyClientCert: p.trust.VerifyChain,
		Limits:           limitsOf(cfg),
		// A login is dated like any signed request.
		MessageDateWindow: cfg.Replay.Window,
		Clock:             clock,
		Logger:            logger.With("component", "dashboard"),
	}
	if b.live != nil && b.live.maintenance != nil {
		dc.Maintenance = b.live.maintenance
	}
	if cfg.Transport == "amqp" {
		dc.QueuePrefix = cfg.AMQP.Prefix
		dl := newAMQPDeadLetters(AMQPConfig(cfg.AMQP, "dashboard", nil), b.msg.amqp)
		dl.renew = renewerOf(p.transportAuth, clock)
		dc.DeadLetters = dl
	}
	return dashboard.New(dc)
}

// amqpDeadLetters is RabbitMQ's dead-letter queue, read and replayed as `siobroker dlq` does.
// Reading a letter means taking it and putting it back, which a quorum queue counts as a
// delivery: the list is read again only when the queue's depth has changed (or after
// deadLetterListTTL), not at every poll of every open page.
type amqpDeadLetters struct {
	cfg   amqptransport.Config
	renew amqptransport.Renewer                    // the broker's keys renew the authenticators of the letters replayed
	depth func(ctx context.Context) (int64, error) // the dead-letter queue's depth

	mu     sync.Mutex
	cached []dashboard.DeadLetter
	max    int
	at     time.Time
	known  int64 // the depth the cached list was read at; -1: none
}

// deadLetterListTTL bounds how long an unchanged depth keeps the cached list.
const deadLetterListTTL = 5 * time.Minute

func newAMQPDeadLetters(cfg amqptransport.Config, t *amqptransport.Transport) *amqpDeadLetters {
	d := &amqpDeadLetters{cfg: cfg, known: -1}
	queue := cfg.DeadLetterQueue
	if queue == "" {
		queue = amqptransport.DefaultDeadLetterQueue
	}
	if t != nil {
		d.depth = func(ctx context.Context) (int64, error) {
			depths, err := t.QueueDepths(ctx, []string{queue})
			return depths[queue], err
		}
	}
	return d
}

func (d *amqpDeadLetters) List(ctx context.Context, max int) ([]dashboard.DeadLetter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	depth := int64(-1)
	if d.depth != nil {
		if n, err := d.depth(ctx); err == nil {
			depth = n
		}
	}
	if depth >= 0 && depth == d.known && max == d.max && time.Since(d.at) < deadLetterListTTL {
		return slices.Clone(d.cached), nil
	}
	letters, err := amqptransport.ListDeadLetters(ctx, d.cfg, max)
	out := make([]dashboard.DeadLetter, 0, len(letters))
	for _, l := range letters {
		out = append(out, dashboard.DeadLetter{MessageID: l.MessageID, Queue: l.Queue, Reason: l.Reason, Count: l.Count,
			DiedAt: l.DiedAt, PayloadSize: l.PayloadSize})
	}
	if err == nil {
		d.cached, d.max, d.at, d.known = slices.Clone(out), max, time.Now(), depth
	}
	return out, err
}

func (d *amqpDeadLetters) Replay(ctx context.Context, max int) (int, error) {
	res, err := amqptransport.ReplayDeadLetters(ctx, d.cfg, max, d.renew)
	d.mu.Lock()
	d.known = -1 // read the list again
	d.mu.Unlock()
	return res.Replayed, err
}
