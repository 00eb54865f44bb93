package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/sqlite"
)

// TestIntegrationReplayMarksFollowTheJournal: the replay marks of requests, logins and reports
// are where the journal is: the embedded store by default, the journal's PostgreSQL database when
// brokers share one (and only those are pruned by the broker's job apart from the messageIds);
// there the pipeline's store ends a request's shared admission once it stores the request.
func TestIntegrationReplayMarksFollowTheJournal(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r, err := replayMarks(ctx, db.Journal(), db, logger)
	if err != nil {
		t.Fatal(err)
	}
	if r.calls != db || r.requests != db || r.async != db || r.prune != nil {
		t.Errorf("embedded journal: marks %T, %T, async %T, prune set %v; want the store, no prune", r.calls, r.requests, r.async, r.prune != nil)
	}
	j, err := postgres.OpenJournal(ctx, pgtest.Schema(t, "appreplay"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	if r, err = replayMarks(ctx, j, db, logger); err != nil {
		t.Fatal(err)
	}
	_, calls := r.calls.(postgres.ReplayMarks)
	_, requests := r.requests.(postgres.RequestMarks)
	_, async := r.async.(admittingStore)
	if !calls || !requests || !async || r.prune == nil {
		t.Fatalf("PostgreSQL journal: marks %T, %T, async %T, prune set %v; want PostgreSQL's, admittingStore and a prune", r.calls, r.requests, r.async, r.prune != nil)
	}

	// replay.id_retention prunes both shared tables; an admission in progress stays.
	old := time.Date(2026, 12, 6, 10, 0, 0, 0, siobroker.Astana)
	if _, err := r.calls.MarkOnce(ctx, "once:test:id:1", old); err != nil {
		t.Fatal(err)
	}
	for _, m := range []siobroker.ReplayMark{{Key: "m-old", Digest: "d-old", At: old}, {Key: "m-admitting", Digest: "d-adm", At: old, RequestID: "r-adm"}} {
		if _, _, err := r.requests.MarkRequest(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := r.prune(ctx, old.Add(24*time.Hour)); err != nil || n != 2 {
		t.Fatalf("prune = %d, %v; want the login's mark and the request's", n, err)
	}
	if fresh, _, err := r.requests.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-old", At: old}); err != nil || !fresh {
		t.Fatalf("a pruned request id: new %v, %v", fresh, err)
	}
	// Storing the request for delivery ends its admission among the shared marks.
	if err := r.async.CreateAsync(ctx, siobroker.AsyncJob{RequestID: "r-adm", MessageID: "m-admitting", State: siobroker.AsyncOnDelivery,
		Received: old, Channel: siobroker.SyncChannel}); err != nil {
		t.Fatal(err)
	}
	if marks, err := r.requests.Admissions(ctx, old.Add(time.Hour)); err != nil || len(marks) != 0 {
		t.Fatalf("admissions after the request was stored: %+v, %v; want none", marks, err)
	}
}
