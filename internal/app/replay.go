package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/sqlite"
)

// replay is where the broker keeps its replay marks: in the store the journal uses, so that a
// captured call is refused after a restart and, when brokers share a PostgreSQL journal, by
// every one of them.
type replay struct {
	calls    siobroker.ReplayMarks // of dashboard logins and signed report requests
	requests broker.ReplayGuard    // of the request pipeline's requests, with their admissions
	// async is the pipeline's AsyncStore: the embedded store, which ends a request's admission
	// in the transaction that stores it, or with shared marks admittingStore.
	async broker.AsyncStore
	// prune forgets the shared marks older than a cutoff; nil where they are the embedded
	// store's, which its own ForgetSeenBefore prunes.
	prune func(context.Context, time.Time) (int64, error)
	// together commits a request's consecutive writes in one transaction (broker.Deps.Together):
	// the embedded store, where it keeps the marks and the journal beside the requests and the
	// users; nil with a PostgreSQL journal, whose marks and records are in another database
	// than the requests' holds, and each write commits on its own as before.
	together broker.Transactor
}

// replayMarks returns the replay marks where the journal is: the embedded store by default; the
// journal's PostgreSQL database when brokers share one, where this broker's requests are marked
// under its store's id (sqlite.DB.StoreID), so that after a restart it closes the admissions it
// left, and never another broker's.
func replayMarks(ctx context.Context, j siobroker.Journal, db *sqlite.DB, logger *slog.Logger) (replay, error) {
	pj, ok := j.(*postgres.Journal)
	if !ok {
		return replay{calls: db, requests: db, async: db, together: db}, nil
	}
	id, err := db.StoreID(ctx)
	if err != nil {
		return replay{}, fmt.Errorf("replay marks: %w", err)
	}
	requests, err := pj.RequestMarks(id)
	if err != nil {
		return replay{}, fmt.Errorf("replay marks: %w", err)
	}
	calls := pj.ReplayMarks()
	return replay{
		calls:    calls,
		requests: requests,
		async:    admittingStore{DB: db, marks: requests, logger: logger.With("component", "broker")},
		prune: func(ctx context.Context, cutoff time.Time) (int64, error) {
			n, err := calls.ForgetBefore(ctx, cutoff)
			m, rerr := requests.ForgetBefore(ctx, cutoff)
			return n + m, errors.Join(err, rerr)
		},
	}, nil
}

// admittingStore is the embedded store as the pipeline's AsyncStore where the replay marks are
// shared in PostgreSQL. Storing a request for delivery accepts it, and so ends its admission
// (siobroker.ReplayMark); the store does that in its own transaction only for its own marks, so
// here the shared mark's admission is ended right after. A crash in between leaves it to
// CloseInterrupted at the next start, which finds the request stored and only ends it; a failure
// leaves it to the hourly sweep (CloseStaleAdmissions), which does the same: the request is
// accepted either way.
type admittingStore struct {
	*sqlite.DB
	marks  postgres.RequestMarks
	logger *slog.Logger
}

// CreateAsync stores j, then ends its admission among the shared marks.
func (s admittingStore) CreateAsync(ctx context.Context, j siobroker.AsyncJob) error {
	if err := s.DB.CreateAsync(ctx, j); err != nil {
		return err
	}
	if err := s.marks.EndAdmission(context.WithoutCancel(ctx), j.RequestID); err != nil {
		s.logger.WarnContext(ctx, "an accepted request's admission is ended by the hourly sweep instead",
			append(reqlog.Attrs(j.MessageID, j.RequestID), "error", err)...)
	}
	return nil
}
