// Package journaltest is the suite every siobroker.Journal must pass, so that the SQLite and the
// PostgreSQL journals behave alike.
package journaltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// Tamperer is what the suite needs besides siobroker.Journal to play someone with direct access to
// the database. The test of each implementation provides it; production code does not.
type Tamperer interface {
	// RawUpdate sets every column of the row of record seq, Seq excepted, to rec's fields, by an
	// SQL UPDATE straight against the database.
	RawUpdate(ctx context.Context, seq int64, rec siobroker.JournalRecord) error
	// RawDelete deletes the row of record seq by an SQL DELETE straight against the database.
	RawDelete(ctx context.Context, seq int64) error
	// Bypass runs fn with the append-only triggers out of the way (dropped or disabled) and puts
	// them back afterwards, as whoever controls the database could.
	Bypass(ctx context.Context, fn func() error) error
}

// RunStoreSuite runs the suite against stores that open returns: each call must give a new,
// empty journal (cleaned up through t), which must also implement Tamperer.
func RunStoreSuite(t *testing.T, open func(t *testing.T) siobroker.Journal) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("AppendChains", func(t *testing.T) { testAppendChains(t, open(t)) })
	t.Run("AppendRefusesIncomplete", func(t *testing.T) { testAppendRefusesIncomplete(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("Query", func(t *testing.T) { testQuery(t, open(t)) })
	t.Run("AppendOnly", func(t *testing.T) { testAppendOnly(t, open(t)) })
	t.Run("AppendOnce", func(t *testing.T) { testAppendOnce(t, open(t)) })
	t.Run("AppendOnceConcurrent", func(t *testing.T) { testAppendOnceConcurrent(t, open(t)) })
	t.Run("Tampered", func(t *testing.T) { testTampered(t, open) })
}

var base = time.Date(2026, 11, 23, 12, 0, 0, 0, siobroker.Astana)

// Record returns a record of kind k at base+ms milliseconds, for tests.
func Record(k siobroker.JournalKind, ms int, requestID string) siobroker.JournalRecord {
	return siobroker.JournalRecord{
		At: base.Add(time.Duration(ms) * time.Millisecond), Kind: k, RequestID: requestID,
		MessageID: "m-" + requestID, SignerIIN: "900101300123", Organisation: "ГП РК",
		Data: []byte("<data id=\"" + requestID + "\"/>"),
	}
}

func mustAppend(t testing.TB, s siobroker.Journal, recs ...siobroker.JournalRecord) []siobroker.JournalRecord {
	t.Helper()
	out, err := s.Append(context.Background(), recs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return out
}

func mustQuery(t testing.TB, s siobroker.Journal, f siobroker.JournalFilter) []siobroker.JournalRecord {
	t.Helper()
	out, err := s.Query(context.Background(), f)
	if err != nil {
		t.Fatalf("Query(%+v): %v", f, err)
	}
	return out
}

func mustVerify(t testing.TB, s siobroker.Journal) {
	t.Helper()
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// equal compares records field by field; nil and empty Data are alike (they hash alike).
func equal(a, b siobroker.JournalRecord) bool {
	return a.Seq == b.Seq && a.At.Equal(b.At) && a.At.Location() == b.At.Location() && a.Kind == b.Kind &&
		a.RequestID == b.RequestID && a.MessageID == b.MessageID && a.SignerIIN == b.SignerIIN &&
		a.Organisation == b.Organisation && a.Service == b.Service && a.Code == b.Code &&
		bytes.Equal(a.Data, b.Data) && a.PrevHash == b.PrevHash && a.Hash == b.Hash
}

func sameRecords(t testing.TB, what string, got, want []siobroker.JournalRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records (seqs %v), want %d (seqs %v)", what, len(got), seqs(got), len(want), seqs(want))
	}
	for i := range got {
		if !equal(got[i], want[i]) {
			t.Fatalf("%s: record %d is\n%+v\nwant\n%+v", what, i, got[i], want[i])
		}
	}
}

func seqs(recs []siobroker.JournalRecord) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func testEmpty(t *testing.T, s siobroker.Journal) {
	ctx := context.Background()
	seq, hash, err := s.Head(ctx)
	if err != nil || seq != 0 || hash != "" {
		t.Fatalf("Head of an empty journal = %d, %q, %v; want 0, \"\", nil", seq, hash, err)
	}
	if got := mustQuery(t, s, siobroker.JournalFilter{}); len(got) != 0 {
		t.Fatalf("Query of an empty journal = %v", got)
	}
	mustVerify(t, s)
	out, err := s.Append(ctx)
	if err != nil || len(out) != 0 {
		t.Fatalf("Append of nothing = %v, %v", out, err)
	}
	if seq, _, _ := s.Head(ctx); seq != 0 {
		t.Fatalf("Append of nothing moved the head to %d", seq)
	}
}

func testAppendChains(t *testing.T, s siobroker.Journal) {
	ctx := context.Background()
	// A time with nanoseconds in another zone: kept truncated to the ms, in Astana time.
	at := time.Date(2026, 11, 23, 7, 0, 0, 123_456_789, time.UTC)
	in := []siobroker.JournalRecord{
		{At: at, Kind: siobroker.JournalRequest, RequestID: "r1", MessageID: "m1", SignerIIN: "900101300123",
			Organisation: "ГП РК", Data: []byte("<request/>"), Seq: 99, PrevHash: "forged", Hash: "forged"},
		{At: at, Kind: siobroker.JournalExchange, RequestID: "r1", Service: 7, Code: "ok/", Data: []byte(`{"x":1}`)},
		{At: at.Add(time.Millisecond), Kind: siobroker.JournalReply, RequestID: "r1"},
	}
	inCopy := slices.Clone(in)
	out := mustAppend(t, s, in...)
	if len(out) != 3 {
		t.Fatalf("Append returned %d records, want 3", len(out))
	}
	for i := range in {
		if !equal(in[i], inCopy[i]) {
			t.Fatalf("Append changed its argument %d: %+v", i, in[i])
		}
	}
	wantAt := time.Date(2026, 11, 23, 12, 0, 0, 123_000_000, siobroker.Astana)
	prev := ""
	for i, r := range out {
		if r.Seq != int64(i+1) {
			t.Errorf("record %d: Seq %d, want %d", i, r.Seq, i+1)
		}
		if r.PrevHash != prev {
			t.Errorf("record %d: PrevHash %q, want %q", i, r.PrevHash, prev)
		}
		if r.Hash != r.ComputeHash() || len(r.Hash) != 64 {
			t.Errorf("record %d: Hash %q, want %q", i, r.Hash, r.ComputeHash())
		}
		if r.At.Location() != siobroker.Astana {
			t.Errorf("record %d: At in %v, want Astana", i, r.At.Location())
		}
		prev = r.Hash
	}
	if !out[0].At.Equal(wantAt) || out[0].At.Nanosecond() != 123_000_000 {
		t.Errorf("At = %v, want %v", out[0].At, wantAt)
	}
	if got := siobroker.FormatTime(out[0].At); got != "2026-11-23T12:00:00.123+05:00" {
		t.Errorf("At formats as %s", got)
	}
	sameRecords(t, "Query", mustQuery(t, s, siobroker.JournalFilter{}), out)

	seq, hash, err := s.Head(ctx)
	if err != nil || seq != 3 || hash != out[2].Hash {
		t.Fatalf("Head = %d, %q, %v; want 3, %q", seq, hash, err, out[2].Hash)
	}

	// A second call continues the chain.
	more := mustAppend(t, s, Record(siobroker.JournalRefusal, 5, "r2"))
	if more[0].Seq != 4 || more[0].PrevHash != out[2].Hash {
		t.Fatalf("second Append: Seq %d PrevHash %q; want 4, %q", more[0].Seq, more[0].PrevHash, out[2].Hash)
	}
	mustVerify(t, s)
}

func testAppendRefusesIncomplete(t *testing.T, s siobroker.Journal) {
	ctx := context.Background()
	mustAppend(t, s, Record(siobroker.JournalRequest, 0, "r0"))
	for name, bad := range map[string]siobroker.JournalRecord{
		"no time": {Kind: siobroker.JournalRequest, RequestID: "r2"},
		"no kind": {At: base, RequestID: "r2"},
	} {
		// The bad record comes second: the first must not be appended either.
		if _, err := s.Append(ctx, Record(siobroker.JournalRequest, 1, "r1"), bad); err == nil {
			t.Errorf("%s: Append accepted it", name)
		}
	}
	if seq, _, err := s.Head(ctx); err != nil || seq != 1 {
		t.Fatalf("after refused appends Head = %d, %v; want 1", seq, err)
	}
	mustVerify(t, s)
}

func testRoundTrip(t *testing.T, s siobroker.Journal) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	big := bytes.Repeat([]byte("<Record>данные</Record>"), 20000) // ~0.5 MB
	in := []siobroker.JournalRecord{
		{At: base, Kind: siobroker.JournalReply, RequestID: "r'1\"; --", Data: binary, Code: "SIO-Ω"},
		{At: base, Kind: siobroker.JournalReply, Data: []byte{}},
		{At: base, Kind: siobroker.JournalReply, Data: nil, Service: -1},
		{At: base, Kind: siobroker.JournalReply, Data: big, Service: 93},
		{At: time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC), Kind: siobroker.JournalIncident},
	}
	out := mustAppend(t, s, in...)
	sameRecords(t, "Query", mustQuery(t, s, siobroker.JournalFilter{}), out)
	if !out[4].At.Equal(time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC)) {
		t.Errorf("a time before 1970 kept as %v", out[4].At)
	}
	mustVerify(t, s)
}

func testConcurrent(t *testing.T, s siobroker.Journal) {
	const writers, appends = 8, 50
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([][]siobroker.JournalRecord, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				recs := []siobroker.JournalRecord{Record(siobroker.JournalRequest, i, fmt.Sprintf("w%d-%d", w, i))}
				if i%10 == 0 { // some calls append two records, which must stay adjacent
					recs = append(recs, Record(siobroker.JournalReply, i, fmt.Sprintf("w%d-%d", w, i)))
				}
				out, err := s.Append(ctx, recs...)
				if err != nil {
					t.Errorf("writer %d, append %d: %v", w, i, err)
					return
				}
				if len(out) == 2 && out[1].Seq != out[0].Seq+1 {
					t.Errorf("writer %d: the records of one Append got Seq %d and %d", w, out[0].Seq, out[1].Seq)
				}
				got[w] = append(got[w], out...)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := writers * (appends + appends/10)
	all := mustQuery(t, s, siobroker.JournalFilter{})
	if len(all) != total {
		t.Fatalf("%d records, want %d", len(all), total)
	}
	bySeq := map[int64]siobroker.JournalRecord{}
	for i, r := range all {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has Seq %d: not contiguous", i, r.Seq)
		}
		bySeq[r.Seq] = r
	}
	for w, recs := range got {
		for i, r := range recs {
			if i > 0 && r.Seq <= recs[i-1].Seq {
				t.Fatalf("writer %d: Seq %d after %d", w, r.Seq, recs[i-1].Seq)
			}
			if !equal(r, bySeq[r.Seq]) {
				t.Fatalf("writer %d: Append returned %+v, the journal holds %+v", w, r, bySeq[r.Seq])
			}
		}
	}
	seq, hash, err := s.Head(ctx)
	if err != nil || seq != int64(total) || hash != all[total-1].Hash {
		t.Fatalf("Head = %d, %q, %v; want %d", seq, hash, err, total)
	}
	mustVerify(t, s)
}

func testQuery(t *testing.T, s siobroker.Journal) {
	rec := func(ms int, k siobroker.JournalKind, org, iin string, service int) siobroker.JournalRecord {
		r := Record(k, ms, fmt.Sprintf("q%d", ms))
		r.Organisation, r.SignerIIN, r.Service = org, iin, service
		return r
	}
	all := mustAppend(t, s,
		rec(0, siobroker.JournalRequest, "ГП", "111", 0),    // 1
		rec(1, siobroker.JournalExchange, "ГП", "111", 5),   // 2
		rec(2, siobroker.JournalExchange, "ГП", "111", 7),   // 3
		rec(3, siobroker.JournalReply, "ГП", "111", 0),      // 4
		rec(10, siobroker.JournalRequest, "МВД", "222", 0),  // 5
		rec(11, siobroker.JournalRefusal, "МВД", "222", 0),  // 6
		rec(20, siobroker.JournalRequest, "МВД", "333", 0),  // 7
		rec(21, siobroker.JournalExchange, "МВД", "333", 5), // 8
		rec(22, siobroker.JournalReply, "МВД", "333", 0),    // 9
		rec(30, siobroker.JournalReport, "ГП", "111", 0),    // 10
		rec(30, siobroker.JournalIncident, "", "", 0),       // 11
	)
	pick := func(seqs ...int64) []siobroker.JournalRecord {
		var out []siobroker.JournalRecord
		for _, q := range seqs {
			out = append(out, all[q-1])
		}
		return out
	}
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct {
		name string
		f    siobroker.JournalFilter
		want []int64
	}{
		{"all", siobroker.JournalFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"kind", siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalRequest}}, []int64{1, 5, 7}},
		{"kinds", siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalRefusal, siobroker.JournalReport}}, []int64{6, 10}},
		{"kind absent", siobroker.JournalFilter{Kinds: []siobroker.JournalKind{"nothing"}}, nil},
		{"request", siobroker.JournalFilter{RequestID: "q30"}, []int64{10, 11}},
		{"request and kind", siobroker.JournalFilter{RequestID: "q30", Kinds: []siobroker.JournalKind{siobroker.JournalIncident}}, []int64{11}},
		{"request absent", siobroker.JournalFilter{RequestID: "q99"}, nil},
		{"organisation", siobroker.JournalFilter{Organisation: "МВД"}, []int64{5, 6, 7, 8, 9}},
		{"signer", siobroker.JournalFilter{SignerIIN: "333"}, []int64{7, 8, 9}},
		{"service", siobroker.JournalFilter{Service: 5}, []int64{2, 8}},
		{"from", siobroker.JournalFilter{From: at(21)}, []int64{8, 9, 10, 11}},
		{"to is exclusive", siobroker.JournalFilter{To: at(3)}, []int64{1, 2, 3}},
		{"from to", siobroker.JournalFilter{From: at(2), To: at(20)}, []int64{3, 4, 5, 6}},
		{"from inside a millisecond", siobroker.JournalFilter{From: at(1).Add(time.Nanosecond)}, []int64{3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"to inside a millisecond", siobroker.JournalFilter{To: at(1).Add(time.Nanosecond)}, []int64{1, 2}},
		{"from in another zone", siobroker.JournalFilter{From: at(30).UTC()}, []int64{10, 11}},
		{"empty range", siobroker.JournalFilter{From: at(5), To: at(5)}, nil},
		{"after seq", siobroker.JournalFilter{AfterSeq: 8}, []int64{9, 10, 11}},
		{"limit", siobroker.JournalFilter{Limit: 2}, []int64{1, 2}},
		{"pages", siobroker.JournalFilter{AfterSeq: 2, Limit: 2, Organisation: "ГП"}, []int64{3, 4}},
		{"combined", siobroker.JournalFilter{Organisation: "МВД", Kinds: []siobroker.JournalKind{siobroker.JournalExchange, siobroker.JournalReply}, SignerIIN: "333", From: at(22)}, []int64{9}},
		{"service and kind", siobroker.JournalFilter{Service: 7, Kinds: []siobroker.JournalKind{siobroker.JournalExchange}}, []int64{3}},
		{"no match", siobroker.JournalFilter{Organisation: "КНБ"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			sameRecords(t, c.name, mustQuery(t, s, c.f), pick(c.want...))
		})
	}
	// DataOf selects nothing: it leaves out the Data of the other kinds, and only that.
	withoutData := func(kinds ...siobroker.JournalKind) func(...int64) []siobroker.JournalRecord {
		return func(seqs ...int64) []siobroker.JournalRecord {
			out := pick(seqs...)
			for i := range out {
				if !slices.Contains(kinds, out[i].Kind) {
					out[i].Data = nil
				}
			}
			return out
		}
	}
	for _, c := range []struct {
		name string
		f    siobroker.JournalFilter
		want []siobroker.JournalRecord
	}{
		{"data of one kind", siobroker.JournalFilter{DataOf: []siobroker.JournalKind{siobroker.JournalRequest}},
			withoutData(siobroker.JournalRequest)(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)},
		{"data of two kinds, pages", siobroker.JournalFilter{DataOf: []siobroker.JournalKind{siobroker.JournalRefusal, siobroker.JournalReply}, AfterSeq: 3, Limit: 4},
			withoutData(siobroker.JournalRefusal, siobroker.JournalReply)(4, 5, 6, 7)},
		{"data of a kind absent", siobroker.JournalFilter{DataOf: []siobroker.JournalKind{"nothing"}, Organisation: "МВД", Kinds: []siobroker.JournalKind{siobroker.JournalRequest, siobroker.JournalReply}},
			withoutData()(5, 7, 9)},
	} {
		t.Run(c.name, func(t *testing.T) {
			sameRecords(t, c.name, mustQuery(t, s, c.f), c.want)
		})
	}
}

func tamperer(t *testing.T, s siobroker.Journal) Tamperer {
	t.Helper()
	tm, ok := s.(Tamperer)
	if !ok {
		t.Fatalf("%T does not implement journaltest.Tamperer: the suite cannot check the database's own defences", s)
	}
	return tm
}

func appendTen(t *testing.T, s siobroker.Journal) []siobroker.JournalRecord {
	t.Helper()
	var recs []siobroker.JournalRecord
	for i := range 10 {
		recs = append(recs, Record(siobroker.JournalRequest, i, fmt.Sprintf("t%d", i+1)))
	}
	out := mustAppend(t, s, recs...)
	mustVerify(t, s)
	return out
}

func testAppendOnly(t *testing.T, s siobroker.Journal) {
	ctx := context.Background()
	tm := tamperer(t, s)
	recs := appendTen(t, s)
	edited := recs[4]
	edited.Data = []byte("<forged/>")
	if err := tm.RawUpdate(ctx, 5, edited); err == nil {
		t.Error("the database accepted an UPDATE of the journal")
	}
	if err := tm.RawDelete(ctx, 5); err == nil {
		t.Error("the database accepted a DELETE from the journal")
	}
	if err := tm.RawDelete(ctx, 10); err == nil {
		t.Error("the database accepted a DELETE of the last record")
	}
	sameRecords(t, "after refused changes", mustQuery(t, s, siobroker.JournalFilter{}), recs)
	mustVerify(t, s)
	// Appending still works after the refusals.
	if out := mustAppend(t, s, Record(siobroker.JournalReply, 11, "t11")); out[0].Seq != 11 {
		t.Fatalf("Seq %d after the refusals, want 11", out[0].Seq)
	}
	mustVerify(t, s)
}

// tampering is a change made to a journal of ten records behind its back, by someone who can
// write to the database: the record Verify must name, and a word its error must contain.
type tampering struct {
	name   string
	tamper func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error
	broken int64
	says   string
}

// tamperings are the changes testTampered makes, each to a journal of its own.
var tamperings = []tampering{
	{"edited", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		r := recs[4]
		r.Data = []byte("<forged/>")
		return tm.RawUpdate(ctx, 5, r)
	}, 5, "hash"},
	{"edited organisation", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		r := recs[6]
		r.Organisation = "КНБ"
		return tm.RawUpdate(ctx, 7, r)
	}, 7, "hash"},
	{"edited time", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		r := recs[2]
		r.At = r.At.Add(-time.Hour)
		return tm.RawUpdate(ctx, 3, r)
	}, 3, "hash"},
	{"edited with its hash recomputed", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		r := recs[4]
		r.Data = []byte("<forged/>")
		r.Hash = r.ComputeHash()
		return tm.RawUpdate(ctx, 5, r)
	}, 6, "link"},
	{"edited last record with its hash recomputed", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		r := recs[9]
		r.PrevHash = recs[7].Hash // made to follow record 8
		r.Hash = r.ComputeHash()
		return tm.RawUpdate(ctx, 10, r)
	}, 10, "link"},
	{"removed", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		return tm.RawDelete(ctx, 5)
	}, 5, "missing"},
	{"removed first", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		return tm.RawDelete(ctx, 1)
	}, 1, "missing"},
	{"removed two", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		if err := tm.RawDelete(ctx, 8); err != nil {
			return err
		}
		return tm.RawDelete(ctx, 4)
	}, 4, "missing"},
	{"swapped", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		if err := tm.RawUpdate(ctx, 4, recs[5]); err != nil {
			return err
		}
		return tm.RawUpdate(ctx, 6, recs[3])
	}, 4, "link"},
	{"swapped neighbours", func(ctx context.Context, tm Tamperer, recs []siobroker.JournalRecord) error {
		if err := tm.RawUpdate(ctx, 2, recs[2]); err != nil {
			return err
		}
		return tm.RawUpdate(ctx, 3, recs[1])
	}, 2, "link"},
}

func testTampered(t *testing.T, open func(t *testing.T) siobroker.Journal) {
	for _, c := range tamperings {
		t.Run(c.name, func(t *testing.T) { testTampering(t, open(t), c) })
	}
}

// testTampering appends ten records to s, applies c with the append-only triggers out of the
// way, and wants Verify to name the broken record and the triggers to be back.
func testTampering(t *testing.T, s siobroker.Journal, c tampering) {
	ctx := context.Background()
	tm := tamperer(t, s)
	recs := appendTen(t, s)
	if err := tm.Bypass(ctx, func() error { return c.tamper(ctx, tm, recs) }); err != nil {
		t.Fatalf("tampering: %v", err)
	}
	err := s.Verify(ctx)
	if err == nil {
		t.Fatal("Verify passed a tampered journal")
	}
	var be interface{ BrokenSeq() int64 }
	if !errors.As(err, &be) {
		t.Fatalf("Verify: %v; want an error with BrokenSeq", err)
	}
	if be.BrokenSeq() != c.broken {
		t.Errorf("Verify names record %d (%v); want %d", be.BrokenSeq(), err, c.broken)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("record %d", c.broken)) || !strings.Contains(msg, c.says) {
		t.Errorf("Verify: %q; want it to name record %d and say %q", msg, c.broken, c.says)
	}
	// The triggers are back.
	if err := tm.RawDelete(ctx, 9); err == nil {
		t.Error("after tampering, the database accepts DELETE: Bypass did not restore the triggers")
	}
}

// outcome is an outcome record of kind k for requestID and service.
func outcome(k siobroker.JournalKind, ms int, requestID string, service int) siobroker.JournalRecord {
	r := Record(k, ms, requestID)
	r.Service = service
	return r
}

// testAppendOnce: AppendOnce skips an exchange or late record the journal holds for its request
// and service, and a repeat within its own records, and appends every other record.
func testAppendOnce(t *testing.T, s siobroker.Journal) {
	ctx := context.Background()
	mustAppend(t, s, Record(siobroker.JournalRequest, 0, "r1"), outcome(siobroker.JournalExchange, 1, "r1", 1))
	got, err := s.AppendOnce(ctx,
		outcome(siobroker.JournalExchange, 2, "r1", 1), // held
		outcome(siobroker.JournalExchange, 3, "r1", 2),
		outcome(siobroker.JournalExchange, 4, "r1", 2), // repeats the one before
		outcome(siobroker.JournalLate, 5, "r1", 1),     // another kind
		outcome(siobroker.JournalExchange, 6, "r2", 1), // another request
		Record(siobroker.JournalReply, 7, "r1"),        // not an outcome: always appended
	)
	if err != nil {
		t.Fatalf("AppendOnce: %v", err)
	}
	var kept []string
	for _, r := range got {
		kept = append(kept, fmt.Sprintf("%s/%s/%d", r.Kind, r.RequestID, r.Service))
	}
	want := []string{"exchange/r1/2", "late/r1/1", "exchange/r2/1", "reply/r1/0"}
	if !slices.Equal(kept, want) {
		t.Fatalf("AppendOnce appended %v, want %v", kept, want)
	}
	if got[0].Seq != 3 || got[len(got)-1].Seq != 6 {
		t.Fatalf("AppendOnce seqs %v, want 3..6 after the two records before", seqs(got))
	}
	if again, err := s.AppendOnce(ctx, outcome(siobroker.JournalLate, 8, "r1", 1)); err != nil || len(again) != 0 {
		t.Fatalf("AppendOnce of a held late record = %v, %v; want nothing", again, err)
	}
	// A late record of another answer to the same service is kept: each answer once.
	other := outcome(siobroker.JournalLate, 9, "r1", 1)
	other.Data = []byte(`{"answerDigest":"another"}`)
	if got, err := s.AppendOnce(ctx, other, other); err != nil || len(got) != 1 {
		t.Fatalf("AppendOnce of another answer, twice = %v, %v; want it once", got, err)
	}
	if none, err := s.AppendOnce(ctx); err != nil || len(none) != 0 {
		t.Fatalf("AppendOnce of nothing = %v, %v", none, err)
	}
	mustVerify(t, s)
}

// testAppendOnceConcurrent: writers racing to record one outcome record it once.
func testAppendOnceConcurrent(t *testing.T, s siobroker.Journal) {
	ctx := context.Background()
	const writers = 8
	var wg sync.WaitGroup
	var appended atomic.Int32
	for i := range writers {
		wg.Go(func() {
			got, err := s.AppendOnce(ctx, outcome(siobroker.JournalExchange, i, "race", 5))
			if err != nil {
				t.Errorf("AppendOnce: %v", err)
			}
			appended.Add(int32(len(got)))
		})
	}
	wg.Wait()
	if n := appended.Load(); n != 1 {
		t.Fatalf("%d writers appended %d records, want 1", writers, n)
	}
	if got := mustQuery(t, s, siobroker.JournalFilter{RequestID: "race"}); len(got) != 1 {
		t.Fatalf("the journal holds %d records of the race, want 1", len(got))
	}
	mustVerify(t, s)
}
