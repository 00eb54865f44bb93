package incidents

import (
	"context"

	"github.com/sio-pso/siobroker"
)

// Watch returns the report function of fault f: give it the outcome of every use of the part f
// names (nil for a success). Like Report, it only touches memory.
func (t *Tracker) Watch(f Fault) func(error) {
	return func(err error) { t.Report(f, err) }
}

// WatchJournal returns j with its appends reported to the tracker (FaultJournal): an append that
// fails begins, or counts in, the journal-failure incident, and one that succeeds clears it. An
// append abandoned because its caller's context ended is not the journal's failure and is not
// reported. Give it to the request pipeline; the tracker itself journals through the journal
// unwatched, so that its own records do not report to it.
func (t *Tracker) WatchJournal(j siobroker.Journal) siobroker.Journal {
	return watchedJournal{Journal: j, t: t}
}

type watchedJournal struct {
	siobroker.Journal
	t *Tracker
}

func (w watchedJournal) Append(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	out, err := w.Journal.Append(ctx, recs...)
	w.report(ctx, err)
	return out, err
}

func (w watchedJournal) AppendOnce(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	out, err := w.Journal.AppendOnce(ctx, recs...)
	w.report(ctx, err)
	return out, err
}

func (w watchedJournal) report(ctx context.Context, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	w.t.Report(FaultJournal, err)
}
