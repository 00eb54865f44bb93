package journal_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/sqlite"
)

// TestCountedWrites: over the embedded store's journal, a write it takes is counted appended, one
// it refuses failed, and one given up by its caller not at all; reads pass through.
func TestCountedWrites(t *testing.T) {
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	inner := db.Journal()
	j := journal.Count(inner)
	ctx := context.Background()
	rec := siobroker.JournalRecord{At: time.Now(), Kind: siobroker.JournalIncident, Data: []byte("{}")}
	if _, err := j.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	exchange := siobroker.JournalRecord{At: time.Now(), Kind: siobroker.JournalExchange, RequestID: "r-1", Service: 1, Code: "OK"}
	if _, err := j.AppendOnce(ctx, exchange); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, siobroker.JournalRecord{Data: []byte("no time, no kind")}); err == nil {
		t.Fatal("the journal took a record without At and Kind")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := j.Append(cancelled, rec); err == nil {
		t.Fatal("the journal took a write whose caller had gone")
	}
	if got, want := j.Writes(), map[string]uint64{"appended": 2, "failed": 1}; !maps.Equal(got, want) {
		t.Errorf("writes %v, want %v", got, want)
	}
	if seq, _, err := j.Head(ctx); err != nil || seq != 2 {
		t.Errorf("head %d, %v: reads do not pass through", seq, err)
	}
	if j.Unwrap() != inner {
		t.Error("Unwrap does not give the journal counted")
	}
}
