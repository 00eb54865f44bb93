package journal

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/sio-pso/siobroker"
)

// Counted is a journal whose writes are counted, appended or failed, so that an operator is
// alerted when the permanent journal stops taking records (siobroker_journal_writes_total):
// every request then fails with SIO-UNAVAILABLE, and the cause (a locked or full database, a
// lost PostgreSQL) is in the store, not in the broker. Reads and everything else pass through.
type Counted struct {
	siobroker.Journal
	appended, failed atomic.Uint64
}

// Count returns j with its writes counted.
func Count(j siobroker.Journal) *Counted { return &Counted{Journal: j} }

// Unwrap returns the journal counted, for what its own type offers (a PostgreSQL journal's Ping
// and replay marks).
func (c *Counted) Unwrap() siobroker.Journal { return c.Journal }

// Append is the journal's Append, counted.
func (c *Counted) Append(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	out, err := c.Journal.Append(ctx, recs...)
	c.count(err)
	return out, err
}

// AppendOnce is the journal's AppendOnce, counted.
func (c *Counted) AppendOnce(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	out, err := c.Journal.AppendOnce(ctx, recs...)
	c.count(err)
	return out, err
}

// count counts one write. A write given up because its caller went away (a client that hung up)
// says nothing of the journal, and is not counted at all.
func (c *Counted) count(err error) {
	switch {
	case err == nil:
		c.appended.Add(1)
	case errors.Is(err, context.Canceled):
	default:
		c.failed.Add(1)
	}
}

// Writes returns the writes counted since Count, by result: appended and failed, both always present.
func (c *Counted) Writes() map[string]uint64 {
	return map[string]uint64{"appended": c.appended.Load(), "failed": c.failed.Load()}
}
