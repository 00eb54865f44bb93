package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationHRFeeds keeps the SHA-256 of every HR feed taken (access/hrfeed): a feed is taken
// once, so one captured and sent again (its MAC still good) cannot block again a user unblocked
// since. Never deleted.
const migrationHRFeeds = `CREATE TABLE IF NOT EXISTS hr_feeds (
		sha256   TEXT PRIMARY KEY,
		system   TEXT NOT NULL,
		taken_at TEXT NOT NULL,
		taken_ns INTEGER NOT NULL
	)`

// TakeHRFeed records the feed of system whose SHA-256 is sum as taken at at, and reports whether
// it is new: false for a feed taken before.
func (s *DB) TakeHRFeed(ctx context.Context, system, sum string, at time.Time) (bool, error) {
	fresh := false
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO hr_feeds(sha256, system, taken_at, taken_ns) VALUES (?, ?, ?, ?)
			ON CONFLICT(sha256) DO NOTHING`, sum, system, siobroker.FormatTime(at), at.UnixNano())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record the HR feed %s: %w", sum, err)
	}
	return fresh, nil
}
