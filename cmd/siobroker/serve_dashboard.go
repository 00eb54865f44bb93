package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/dashboard"
	"github.com/sio-pso/siobroker/incidents"
	"github.com/sio-pso/siobroker/registry"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/soap"
	amqptransport "github.com/sio-pso/siobroker/transport/amqp"
)

// dashboardHandler wires the operator's dashboard (package dashboard) to the broker's store,
// registry, journal, incident tracker, maintenance schedule and transport. Mount it at
// dashboard.Path.
func (b *runningBroker) dashboardHandler(cfg config.Broker, clock siobroker.Clock, logger *slog.Logger, trust *signing.TrustStore,
	signer *signing.Signer, users *registry.Registry, tracker *incidents.Tracker, journal journalStore) http.Handler {
	dc := dashboard.Config{
		Services:         b.ops.Monitor.Services,
		Incidents:        dashboard.IncidentsOf(tracker, b.db),
		Users:            users,
		Journal:          journal,
		Verify:           signing.NewVerifier(trust).Verify,
		Sign:             signer.Sign,
		VerifyClientCert: trust.VerifyChain,
		Limits:           soap.Limits{MaxBytes: cfg.HTTP.MaxBodyBytes, MaxDepth: cfg.HTTP.MaxDepth, MaxElements: cfg.HTTP.MaxElements},
		// A login is dated like any signed request.
		MessageDateWindow: cfg.Replay.Window,
		Clock:             clock,
		Logger:            logger.With("component", "dashboard"),
	}
	if b.live != nil && b.live.maintenance != nil {
		dc.Maintenance = b.live.maintenance
	}
	if cfg.Transport == "amqp" {
		dc.DeadLetters = amqpDeadLetters{cfg: amqpConfig(cfg.AMQP, "dashboard", nil)}
	}
	return dashboard.New(dc)
}

// amqpDeadLetters is RabbitMQ's dead-letter queue, read and replayed as `siobroker dlq` does.
type amqpDeadLetters struct{ cfg amqptransport.Config }

func (d amqpDeadLetters) List(ctx context.Context, max int) ([]dashboard.DeadLetter, error) {
	letters, err := amqptransport.ListDeadLetters(ctx, d.cfg, max)
	out := make([]dashboard.DeadLetter, 0, len(letters))
	for _, l := range letters {
		out = append(out, dashboard.DeadLetter{MessageID: l.MessageID, Queue: l.Queue, Reason: l.Reason, Count: l.Count,
			DiedAt: l.DiedAt, PayloadSize: l.PayloadSize})
	}
	return out, err
}

func (d amqpDeadLetters) Replay(ctx context.Context, max int) (int, error) {
	return amqptransport.ReplayDeadLetters(ctx, d.cfg, max)
}
