package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// replaySchema is the table of the replay marks of dashboard logins and signed report requests
// (siobroker.ReplayMarks). It lives beside the journal so that every broker sharing the journal
// shares the marks too: a login one broker took is a replay at every other. Unlike sio_journal
// it is pruned, so the broker's role needs SELECT, INSERT and DELETE on it.
const replaySchema = `
CREATE TABLE IF NOT EXISTS sio_replay_marks (
	key     text PRIMARY KEY,
	seen_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS sio_replay_marks_seen ON sio_replay_marks (seen_at);`

// ReplayMarks are the replay marks in the journal's database. They satisfy
// siobroker.ReplayMarks.
type ReplayMarks struct{ j *Journal }

var _ siobroker.ReplayMarks = ReplayMarks{}

// ReplayMarks returns the replay marks kept in the journal's database, over its connections.
func (j *Journal) ReplayMarks() ReplayMarks { return ReplayMarks{j: j} }

// MarkOnce records key and reports whether it is new. The primary key makes the insert the
// check: of two brokers inserting one key at once, one is told it is new and the other waits for
// it and is told it is not.
func (m ReplayMarks) MarkOnce(ctx context.Context, key string, at time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, m.j.writeTimeout+serverFirst)
	defer cancel()
	tag, err := m.j.pool.Exec(ctx, `INSERT INTO sio_replay_marks (key, seen_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, at)
	if err != nil {
		return false, fmt.Errorf("replay mark: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ForgetBefore removes the marks recorded before cutoff and returns how many. It is safe once
// cutoff is older than the replay window: a call that old is refused for its date.
func (m ReplayMarks) ForgetBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := m.j.pool.Exec(ctx, `DELETE FROM sio_replay_marks WHERE seen_at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune replay marks: %w", err)
	}
	return tag.RowsAffected(), nil
}
