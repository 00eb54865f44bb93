package app

import (
	"context"
	"testing"

	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/sqlite"
)

// TestIntegrationReplayMarksFollowTheJournal: the replay marks of logins and reports are where
// the journal is: the embedded store by default, the journal's PostgreSQL database when brokers
// share one (and only those are pruned by the broker's job apart from the messageIds).
func TestIntegrationReplayMarksFollowTheJournal(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if marks, prune := replayMarks(db.Journal(), db); marks != db || prune != nil {
		t.Errorf("embedded journal: marks %T, prune set %v; want the store, no prune", marks, prune != nil)
	}
	j, err := postgres.OpenJournal(ctx, pgtest.Schema(t, "appreplay"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	marks, prune := replayMarks(j, db)
	if _, ok := marks.(postgres.ReplayMarks); !ok || prune == nil {
		t.Errorf("PostgreSQL journal: marks %T, prune set %v; want postgres.ReplayMarks and a prune", marks, prune != nil)
	}
}
