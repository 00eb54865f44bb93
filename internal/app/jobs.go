package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sio-pso/siobroker/access/hrfeed"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/journal/archive"
	"github.com/sio-pso/siobroker/operator/notify"
)

// startJobs starts the background jobs that keep the store true between requests: pruning the
// replay memory, the §16 sweep, the incident tracker and the transport's probe, the maintenance refresh, the reload watcher,
// the CRL fetcher, the asynchronous worker and the sealing of journal archives. Close waits for every one of them
// before it closes the store.
func (b *Broker) startJobs(ctx context.Context, p *parts, opts Options) error {
	cfg, clock, logger := p.cfg, p.clock, p.logger
	b.jobs.Go(func() {
		every(ctx, time.Hour, func(ctx context.Context) {
			// The admissions of refused requests are ended first, so that their marks can go.
			if _, err := b.pipeline.CloseStaleAdmissions(ctx); err != nil {
				logger.Warn("ending stale admissions failed", "error", err)
			}
			if _, err := b.db.ForgetSeenBefore(ctx, clock.Now().Add(-cfg.Replay.IDRetention)); err != nil {
				logger.Warn("pruning seen messageIds failed", "error", err)
			}
			if p.replay.prune != nil {
				if _, err := p.replay.prune(ctx, clock.Now().Add(-cfg.Replay.IDRetention)); err != nil {
					logger.Warn("pruning the shared replay marks failed", "error", err)
				}
			}
			// The answers held for completing requests are personal data; the journal keeps
			// the results for good, in the replies.
			if _, err := b.db.ForgetAnswersBefore(ctx, clock.Now().Add(-answerRetention(cfg))); err != nil {
				logger.Warn("pruning held answers failed", "error", err)
			}
		})
	})
	// §16 is applied by Authorize at the moment of a request too; the hourly sweep keeps the
	// registry's state true for operators in between.
	b.jobs.Go(func() {
		every(ctx, time.Hour, func(ctx context.Context) {
			blocked, err := p.users.BlockInactive(ctx)
			if err != nil {
				logger.Warn("blocking inactive users failed", "error", err)
			}
			if len(blocked) > 0 {
				logger.Info("blocked inactive users (§16)", "count", len(blocked))
			}
		})
	})
	b.jobs.Go(func() { p.tracker.Run(ctx) })
	b.jobs.Go(func() { b.probeTransport(ctx, p.tracker) })
	// A window announced from the command line, or by another broker on the store, takes
	// effect here within this period.
	b.jobs.Go(func() {
		every(ctx, 15*time.Second, func(ctx context.Context) {
			if err := b.live.maintenance.Refresh(ctx); err != nil {
				logger.Warn("refreshing maintenance windows failed", "component", "maintenance", "error", err)
			}
		})
	})
	b.jobs.Go(func() { b.revocation.fetcher.Run(ctx) })
	// The notices of §45, written by this broker or by an operator's command, are delivered from
	// the store's outbox, and retried until delivered; the events of submitted applications
	// (§12–15) are told as they happen. Without a recipients file nobody is told, but the events
	// are still marked as they pass, so that configuring recipients later does not send a
	// backlog of stale notices.
	notifier, err := NewNotifier(cfg, b.db, p.journal, clock, logger.With("component", "notify"))
	if err != nil {
		return err
	}
	if notifier == nil {
		if notifier, err = notify.New(notify.Config{Applications: b.db}, b.db, p.journal, clock, logger.With("component", "notify")); err != nil {
			return err
		}
	}
	b.jobs.Go(func() { notifier.Run(ctx, cfg.Notify.Interval) })
	// The HR systems' feeds dropped in hr.dir (§15): a dismissal blocks within a poll of arrival.
	if cfg.HR.Dir != "" {
		hr, err := b.hrFeed(p)
		if err != nil {
			return err
		}
		w, err := hrfeed.NewWatcher(cfg.HR.Dir, hr, cfg.HR.Poll)
		if err != nil {
			return err
		}
		b.jobs.Go(func() { w.Run(ctx) })
	}
	b.hup = make(chan os.Signal, 1)
	b.jobs.Go(func() { b.live.watch(ctx, b.hup, reloadPoll, cfg.Trust.CRLPoll, logger.With("component", "reload")) })
	if !opts.NoAsyncWorker {
		b.startAsyncWorker(ctx)
	}
	b.startIndexing(ctx, p)
	return b.startSealing(ctx, p)
}

// backgroundShare is the share of the wall time the journal's sealing and the request index's
// catch-up each spend working when they run in the background: they rest between their pages and
// batches (internal/pace). Run at once, each took a core from the requests for up to a second on
// the embedded default's two cores, every few seconds (the index) and every ten thousand journal
// records (the seal), and the half-rate load's p99 was 75–190 ms against 36 ms with both stopped
// (issue 20). A quarter keeps both far ahead of the journal: each folds or seals several thousand
// records a second at it, where 400 requests a second write 1,200.
const backgroundShare = 0.25

// indexChunk is how many journal records the background catch-up folds in one call before it
// starts another (and logs a backlog); a report's own catch-up goes in between its batches.
const indexChunk = 5000

// startIndexing folds the journal's new records into the request index every
// reports.index_every, so that a report finds it within seconds of the journal. A backlog (a
// journal older than the index) is folded chunk by chunk from the start, and said so.
func (b *Broker) startIndexing(ctx context.Context, p *parts) {
	log := p.logger.With("component", "request-index")
	catchUp := func(ctx context.Context) {
		for {
			through, done, err := p.indexer.CatchUpPaced(ctx, indexChunk)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("folding the journal into the request index failed; reports are refused until it succeeds", "indexed_through", through, "error", err)
				return
			case err != nil || done:
				return
			}
			log.Info("folding a backlog of the journal into the request index", "indexed_through", through)
		}
	}
	b.jobs.Go(func() {
		catchUp(ctx)
		every(ctx, p.cfg.Reports.IndexEvery, catchUp)
	})
}

// startAsyncWorker starts the asynchronous worker, which resumes every ON_DELIVERY request at
// start. It has its own context, which Close cancels before the router stops, so that no request
// in flight is answered with the errors of a closing transport: an interrupted request stays
// ON_DELIVERY.
func (b *Broker) startAsyncWorker(ctx context.Context) {
	asyncCtx, stop := context.WithCancel(ctx)
	b.async = asyncWorker{stop: stop, done: make(chan struct{})}
	worker := &broker.AsyncWorker{Broker: b.pipeline}
	b.jobs.Go(func() {
		defer close(b.async.done)
		worker.Run(asyncCtx)
	})
}

// startSealing seals every full segment of the journal into a signed archive (§38), every
// journal.seal_every.
func (b *Broker) startSealing(ctx context.Context, p *parts) error {
	cfg := p.cfg
	sealer, err := archive.NewSealer(archive.Config{Dir: archiveDirOf(cfg), MaxRecords: cfg.Journal.SegmentRecords, MaxBytes: cfg.Journal.SegmentBytes, Share: backgroundShare},
		p.journal, p.signer, p.clock)
	if err != nil {
		return fmt.Errorf("journal archives: %w", err)
	}
	archiveLog := p.logger.With("component", "archive")
	b.jobs.Go(func() {
		every(ctx, cfg.Journal.SealEvery, func(ctx context.Context) {
			manifests, err := sealer.SealFull(ctx)
			if err != nil {
				archiveLog.Error("sealing journal archives failed", "error", err)
			}
			for _, m := range manifests {
				archiveLog.Info("journal archive sealed", "archive", m.File, "first_seq", m.FirstSeq, "last_seq", m.LastSeq)
			}
		})
	})
	return nil
}

// archiveDirOf is where the journal's archives are written: journal.archive_dir, or DATA/archive.
func archiveDirOf(cfg config.Broker) string {
	if cfg.Journal.ArchiveDir != "" {
		return cfg.Journal.ArchiveDir
	}
	return filepath.Join(cfg.DataDir, "archive")
}

// answerRetention is how long the answers the dispatcher holds are kept: long after the longest
// wait for a service (routing.async_timeout), so that a request resumed after a long outage still
// finds them; one that does not is asked again, and the adapters' ledger answers it from what it
// recorded.
func answerRetention(cfg config.Broker) time.Duration {
	return max(24*time.Hour, 2*cfg.Routing.AsyncTimeout)
}

// every runs f once per period, the first time a period from now, until ctx ends: the broker's
// background jobs (pruning, sealing, sweeps, refreshes).
func every(ctx context.Context, period time.Duration, f func(ctx context.Context)) {
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			f(ctx)
		}
	}
}
