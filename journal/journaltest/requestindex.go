package journaltest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// RunRequestIndexSuite runs the suite of siobroker.RequestIndex against stores that open returns:
// each call must give a new, empty index (cleaned up through t).
func RunRequestIndexSuite(t *testing.T, open func(t *testing.T) siobroker.RequestIndex) {
	t.Run("Empty", func(t *testing.T) { testIndexEmpty(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testIndexRoundTrip(t, open(t)) })
	t.Run("Mark", func(t *testing.T) { testIndexMark(t, open(t)) })
	t.Run("Filters", func(t *testing.T) { testIndexFilters(t, open(t)) })
	t.Run("Summary", func(t *testing.T) { testIndexSummary(t, open(t)) })
	t.Run("ScanStops", func(t *testing.T) { testIndexScanStops(t, open(t)) })
	t.Run("Reset", func(t *testing.T) { testIndexReset(t, open(t)) })
}

// Entry returns an entry of the index at base+min minutes, for tests: organisation "ДП" with
// ЕРДР code "15", department "СУ", basis 1, services 1 and 5, answered.
func Entry(id string, seq int64, min int) siobroker.RequestEntry {
	at := base.Add(time.Duration(min) * time.Minute)
	e := siobroker.RequestEntry{
		RequestID: id, Seq: seq, LastSeq: seq + 3, At: at, MessageID: "m-" + id, SignerIIN: "900101300123",
		SignerName: "ИВАНОВ ИВАН", Organisation: "ДП", ERDRCode: "15", Department: "СУ",
		Basis: siobroker.BasisCriminal, Case: "261500031000123; instruction 12/5", Article: "190",
		Subject: siobroker.Subject{IIN: "870315123455"}, Services: []int{1, 5}, Purpose: "проверка связей, \"кавычки\"; и ; точки",
		ServiceOutcomes: []siobroker.ServiceOutcome{{Service: 1, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK},
			{Service: 5, Status: siobroker.StatusOK, Reason: siobroker.ReasonNoData}},
		RepliedAt: at.Add(1500 * time.Millisecond),
	}
	e.Settle()
	return e
}

func put(t testing.TB, x siobroker.RequestIndex, from, through int64, es ...siobroker.RequestEntry) {
	t.Helper()
	if err := x.PutRequestEntries(context.Background(), from, through, es); err != nil {
		t.Fatalf("PutRequestEntries(%d, %d): %v", from, through, err)
	}
}

func scan(t testing.TB, x siobroker.RequestIndex, f siobroker.RequestFilter) (int, []siobroker.RequestEntry) {
	t.Helper()
	total := -1
	var out []siobroker.RequestEntry
	err := x.ScanRequests(context.Background(), f, func(n int) error {
		if len(out) > 0 {
			t.Error("total was called after a row")
		}
		total = n
		return nil
	}, func(e siobroker.RequestEntry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("ScanRequests(%+v): %v", f, err)
	}
	return total, out
}

func ids(es []siobroker.RequestEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.RequestID
	}
	return out
}

func testIndexEmpty(t *testing.T, x siobroker.RequestIndex) {
	ctx := context.Background()
	if seq, err := x.IndexedThrough(ctx); err != nil || seq != 0 {
		t.Errorf("IndexedThrough = %d, %v; want 0", seq, err)
	}
	if n, es := scan(t, x, siobroker.RequestFilter{}); n != 0 || len(es) != 0 {
		t.Errorf("scan of an empty index: %d, %v", n, es)
	}
	got, err := x.RequestEntries(ctx, []string{"none"})
	if err != nil || len(got) != 0 {
		t.Errorf("RequestEntries = %v, %v", got, err)
	}
}

// testIndexRoundTrip: an entry comes back exactly as written, including texts with separators,
// a BIN subject, no reply and a replaced entry.
func testIndexRoundTrip(t *testing.T, x siobroker.RequestIndex) {
	ctx := context.Background()
	a := Entry("a", 1, 0)
	b := Entry("b", 5, 1)
	b.Subject = siobroker.Subject{BIN: "020240003210"}
	b.RepliedAt, b.ServiceOutcomes, b.Code, b.Note = time.Time{}, nil, "SIO-CASE-UNKNOWN", "refused before its query was read"
	b.Basis, b.Services, b.Case, b.Article, b.Purpose = 0, nil, "", "", ""
	b.Settle()
	put(t, x, 0, 7, a, b)
	got, err := x.RequestEntries(ctx, []string{"b", "a", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(p, q siobroker.RequestEntry) int { return int(p.Seq - q.Seq) })
	for i, want := range []siobroker.RequestEntry{a, b} {
		if i >= len(got) {
			t.Fatalf("got %d entries, want 2", len(got))
		}
		if !sameEntry(got[i], want) {
			t.Errorf("entry %s:\n got %+v\nwant %+v", want.RequestID, got[i], want)
		}
	}
	if b.Outcome != siobroker.RequestRefused {
		t.Errorf("b settled %s", b.Outcome)
	}
	// Replaced whole by its id.
	a2 := a
	a2.LastSeq, a2.Code = 9, "SIO-UNAVAILABLE"
	put(t, x, 7, 9, a2)
	got, _ = x.RequestEntries(ctx, []string{"a"})
	if len(got) != 1 || !sameEntry(got[0], a2) {
		t.Errorf("replaced entry: %+v", got)
	}
}

// sameEntry compares entries, with times by instant.
func sameEntry(a, b siobroker.RequestEntry) bool {
	if !a.At.Equal(b.At) || !a.RepliedAt.Equal(b.RepliedAt) {
		return false
	}
	a.At, b.At, a.RepliedAt, b.RepliedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(a.Services) == 0 && len(b.Services) == 0 {
		a.Services, b.Services = nil, nil
	}
	if len(a.ServiceOutcomes) == 0 && len(b.ServiceOutcomes) == 0 {
		a.ServiceOutcomes, b.ServiceOutcomes = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// testIndexMark: the mark moves only from where the writer read it; a writer that lost the race
// writes nothing.
func testIndexMark(t *testing.T, x siobroker.RequestIndex) {
	ctx := context.Background()
	put(t, x, 0, 10, Entry("a", 1, 0))
	err := x.PutRequestEntries(ctx, 0, 12, []siobroker.RequestEntry{Entry("late", 11, 1)})
	if !errors.Is(err, siobroker.ErrIndexMoved) {
		t.Fatalf("a stale writer: err = %v, want ErrIndexMoved", err)
	}
	if got, _ := x.RequestEntries(ctx, []string{"late"}); len(got) != 0 {
		t.Error("a stale writer's entry was written")
	}
	if seq, _ := x.IndexedThrough(ctx); seq != 10 {
		t.Errorf("mark %d, want 10", seq)
	}
	put(t, x, 10, 20)
	if seq, _ := x.IndexedThrough(ctx); seq != 20 {
		t.Errorf("mark %d after an empty batch, want 20", seq)
	}
}

// indexFixture writes entries of two organisations, with and without an ЕРДР code, of several
// departments, users, bases, services and outcomes, over two months.
func indexFixture(t *testing.T, x siobroker.RequestIndex) map[string]siobroker.RequestEntry {
	mk := func(id string, seq int64, min int, edit func(*siobroker.RequestEntry)) siobroker.RequestEntry {
		e := Entry(id, seq, min)
		edit(&e)
		e.Settle()
		return e
	}
	month := 31 * 24 * 60
	es := []siobroker.RequestEntry{
		mk("a1", 1, 0, func(*siobroker.RequestEntry) {}),
		mk("a2", 5, 10, func(e *siobroker.RequestEntry) {
			e.Department, e.SignerIIN, e.Services = "ОУР", "900101300224", []int{37}
			e.ServiceOutcomes = []siobroker.ServiceOutcome{{Service: 37, Status: siobroker.StatusDenied, Reason: siobroker.ReasonDeniedArticle}}
		}),
		mk("a3", 9, 20, func(e *siobroker.RequestEntry) {
			e.Basis, e.RepliedAt, e.ServiceOutcomes, e.Code = siobroker.BasisSearch, time.Time{}, nil, "SIO-CASE-UNKNOWN"
		}),
		mk("a4", 13, month, func(e *siobroker.RequestEntry) {
			e.Services = []int{5, 15}
			e.ServiceOutcomes = []siobroker.ServiceOutcome{{Service: 5, Status: siobroker.StatusOK, Reason: "OK"}, {Service: 15, Status: siobroker.StatusTimeout, Reason: "TIMEOUT"}}
		}),
		mk("b1", 17, 5, func(e *siobroker.RequestEntry) {
			e.Organisation, e.ERDRCode, e.Department, e.SignerIIN = "ДВД", "19", "СУ", "900101300335"
		}),
		mk("n1", 21, 6, func(e *siobroker.RequestEntry) {
			e.Organisation, e.ERDRCode, e.SignerIIN = "ДП", "", "900101300446" // same name, no code
		}),
		mk("p1", 25, 7, func(e *siobroker.RequestEntry) {
			e.RepliedAt, e.ServiceOutcomes = time.Time{}, e.ServiceOutcomes[:1]
		}),
	}
	put(t, x, 0, 30, es...)
	out := map[string]siobroker.RequestEntry{}
	for _, e := range es {
		out[e.RequestID] = e
	}
	return out
}

func testIndexFilters(t *testing.T, x siobroker.RequestIndex) {
	all := indexFixture(t, x)
	at := func(id string) time.Time { return all[id].At }
	for _, c := range []struct {
		name string
		f    siobroker.RequestFilter
		want []string
	}{
		{"all, by time", siobroker.RequestFilter{}, []string{"a1", "b1", "n1", "p1", "a2", "a3", "a4"}},
		{"ЕРДР code", siobroker.RequestFilter{ERDRCode: "15"}, []string{"a1", "p1", "a2", "a3", "a4"}},
		{"name without code", siobroker.RequestFilter{Organisation: "ДП"}, []string{"n1"}},
		{"period", siobroker.RequestFilter{From: at("b1"), To: at("a2")}, []string{"b1", "n1", "p1"}},
		{"department", siobroker.RequestFilter{ERDRCode: "15", Department: "ОУР"}, []string{"a2"}},
		{"user", siobroker.RequestFilter{SignerIIN: "900101300335"}, []string{"b1"}},
		{"basis", siobroker.RequestFilter{Basis: siobroker.BasisSearch}, []string{"a3"}},
		{"service 5, not 15 or 55", siobroker.RequestFilter{Service: 5}, []string{"a1", "b1", "n1", "p1", "a3", "a4"}},
		{"service 15", siobroker.RequestFilter{Service: 15}, []string{"a4"}},
		{"outcome denied", siobroker.RequestFilter{Outcome: siobroker.RequestDenied}, []string{"a2"}},
		{"outcome refused", siobroker.RequestFilter{Outcome: siobroker.RequestRefused}, []string{"a3"}},
		{"outcome partial", siobroker.RequestFilter{Outcome: siobroker.RequestPartial}, []string{"a4"}},
		{"outcome pending", siobroker.RequestFilter{Outcome: siobroker.RequestPending}, []string{"p1"}},
		{"through seq", siobroker.RequestFilter{ThroughSeq: 9}, []string{"a1", "a2", "a3"}},
		{"combined", siobroker.RequestFilter{ERDRCode: "15", Department: "СУ", Service: 5, From: at("a1"), To: at("a4")}, []string{"a1", "p1", "a3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, es := scan(t, x, c.f)
			if got := ids(es); !slices.Equal(got, c.want) || n != len(c.want) {
				t.Errorf("got %d: %v, want %v", n, got, c.want)
			}
			for _, e := range es {
				if !c.f.Match(e) {
					t.Errorf("%s does not match the filter by RequestFilter.Match", e.RequestID)
				}
			}
			var matched []string
			for _, id := range c.want {
				if c.f.Match(all[id]) {
					matched = append(matched, id)
				}
			}
			if len(matched) != len(c.want) {
				t.Errorf("RequestFilter.Match disagrees with the store: %v of %v", matched, c.want)
			}
		})
	}
}

func testIndexSummary(t *testing.T, x siobroker.RequestIndex) {
	indexFixture(t, x)
	var got []siobroker.RequestSummary
	err := x.SummariseRequests(context.Background(), siobroker.RequestFilter{}, func(s siobroker.RequestSummary) error {
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := siobroker.MonthOf(base), siobroker.MonthOf(base.Add(31*24*time.Hour))
	want := []siobroker.RequestSummary{
		{Month: m1, ERDRCode: "", Organisation: "ДП", Department: "СУ", Requests: 1, Answered: 1},
		{Month: m1, ERDRCode: "15", Organisation: "ДП", Department: "ОУР", Requests: 1, Denied: 1},
		{Month: m1, ERDRCode: "15", Organisation: "ДП", Department: "СУ", Requests: 3, Answered: 1, Refused: 1, Pending: 1},
		{Month: m1, ERDRCode: "19", Organisation: "ДВД", Department: "СУ", Requests: 1, Answered: 1},
		{Month: m2, ERDRCode: "15", Organisation: "ДП", Department: "СУ", Requests: 1, Partial: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary:\n got %+v\nwant %+v", got, want)
	}
	got = nil
	if err := x.SummariseRequests(context.Background(), siobroker.RequestFilter{ERDRCode: "19"}, func(s siobroker.RequestSummary) error {
		got = append(got, s)
		return nil
	}); err != nil || len(got) != 1 || got[0].ERDRCode != "19" {
		t.Errorf("summary of one organisation: %+v, %v", got, err)
	}
}

// testIndexScanStops: an error of total or row ends the scan and is returned as it is.
func testIndexScanStops(t *testing.T, x siobroker.RequestIndex) {
	indexFixture(t, x)
	stop := errors.New("stop")
	rows := 0
	err := x.ScanRequests(context.Background(), siobroker.RequestFilter{}, func(int) error { return stop },
		func(siobroker.RequestEntry) error { rows++; return nil })
	if !errors.Is(err, stop) || rows != 0 {
		t.Errorf("total's error: %v after %d rows", err, rows)
	}
	err = x.ScanRequests(context.Background(), siobroker.RequestFilter{}, func(int) error { return nil },
		func(siobroker.RequestEntry) error {
			rows++
			if rows == 2 {
				return fmt.Errorf("wrapped: %w", stop)
			}
			return nil
		})
	if !errors.Is(err, stop) || rows != 2 {
		t.Errorf("row's error: %v after %d rows", err, rows)
	}
}

func testIndexReset(t *testing.T, x siobroker.RequestIndex) {
	ctx := context.Background()
	indexFixture(t, x)
	if err := x.ResetRequestIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if seq, _ := x.IndexedThrough(ctx); seq != 0 {
		t.Errorf("mark %d after a reset", seq)
	}
	if n, _ := scan(t, x, siobroker.RequestFilter{}); n != 0 {
		t.Errorf("%d entries after a reset", n)
	}
	put(t, x, 0, 3, Entry("a", 1, 0))
}
