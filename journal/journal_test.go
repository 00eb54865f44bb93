package journal

import (
	"errors"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func TestCeilMilli(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 5_000_000, siobroker.Astana)
	for _, c := range []struct{ in, want time.Time }{
		{at, at},
		{at.Add(time.Nanosecond), at.Add(time.Millisecond)},
		{at.Add(-time.Nanosecond), at},
		{time.Unix(0, -1), time.Unix(0, 0)},
	} {
		if got := CeilMilli(c.in); !got.Equal(c.want) {
			t.Errorf("CeilMilli(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestLinkAndVerifier(t *testing.T) {
	at := time.Date(2026, 11, 23, 7, 0, 0, 999_999_999, time.UTC)
	data := []byte("x")
	recs, err := Link(0, "", []siobroker.JournalRecord{
		{At: at, Kind: siobroker.JournalRequest, Data: data},
		{At: at, Kind: siobroker.JournalReply},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The data is the caller's, not copied (siobroker.JournalWriter): the journals write it out
	// before they return.
	if &recs[0].Data[0] != &data[0] {
		t.Fatal("Link copied the record's data")
	}
	if recs[0].At.Location() != siobroker.Astana || recs[0].At.Nanosecond() != 999_000_000 {
		t.Fatalf("At = %v", recs[0].At)
	}
	var v Verifier
	for _, r := range recs {
		if err := v.Check(r); err != nil {
			t.Fatal(err)
		}
	}
	if seq, hash := v.Head(); seq != 2 || hash != recs[1].Hash {
		t.Fatalf("Head = %d, %s", seq, hash)
	}
	more, err := Link(2, recs[1].Hash, []siobroker.JournalRecord{{At: at, Kind: siobroker.JournalIncident}})
	if err != nil || more[0].Seq != 3 || more[0].PrevHash != recs[1].Hash {
		t.Fatalf("Link after 2 = %+v, %v", more, err)
	}

	var gap Verifier
	_ = gap.Check(recs[0])
	err = gap.Check(more[0])
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("a gap: %v", err)
	}
	if _, err := Link(0, "", []siobroker.JournalRecord{{Kind: siobroker.JournalReply}}); err == nil {
		t.Fatal("Link accepted a record without a time")
	}
}
