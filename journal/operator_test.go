package journal

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
)

type keptJournal struct{ recs []siobroker.JournalRecord }

func (j *keptJournal) Append(_ context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	j.recs = append(j.recs, recs...)
	return recs, nil
}

// TestAppendCommandLine: a command-line action is journaled as the dashboard's: an operator
// record, channel "cli", the operator's name; one that failed part-way carries its fault code
// and what it did.
func TestAppendCommandLine(t *testing.T) {
	clock := testclock.New(time.Date(2026, 12, 4, 9, 0, 0, 0, siobroker.Astana))
	j := &keptJournal{}
	n := 2
	failed := siobroker.Wrap(siobroker.CodeUnavailable, errors.New("channel closed"), "2 dead letter(s) were sent back, then the replay failed")
	if err := AppendCommandLine(context.Background(), j, clock, CommandLineAction{Action: "replay", By: "operator Askarov", Max: 5, Replayed: &n}, failed); err != nil {
		t.Fatal(err)
	}
	if len(j.recs) != 1 {
		t.Fatalf("%d records, want 1", len(j.recs))
	}
	rec := j.recs[0]
	if rec.Kind != siobroker.JournalOperator || rec.Code != string(siobroker.CodeUnavailable) || rec.RequestID == "" || !rec.At.Equal(clock.Now()) {
		t.Errorf("record %+v", rec)
	}
	var d OperatorAction
	if err := json.Unmarshal(rec.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Action != "replay" || d.Channel != ChannelCommandLine || d.By != "operator Askarov" || d.Max != 5 || d.Replayed == nil || *d.Replayed != 2 ||
		d.Refusal != siobroker.CodeUnavailable || d.Message != "2 dead letter(s) were sent back, then the replay failed" {
		t.Errorf("details %+v", d)
	}
}
