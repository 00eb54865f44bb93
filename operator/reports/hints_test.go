package reports

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// TestQueryHints: a hint is taken once, only for a record of the size it was given for; the
// oldest goes first when the hints are full by count or by bytes; a nil *QueryHints holds none.
func TestQueryHints(t *testing.T) {
	q := query(1, 1, 5)
	h := NewQueryHints(3, 0)
	h.Hint("r1", 100, q)
	if got, ok := h.take("r1", 100); !ok || !reflect.DeepEqual(got, q) {
		t.Errorf("take r1: %+v, %v", got, ok)
	}
	if _, ok := h.take("r1", 100); ok {
		t.Error("a hint was taken twice")
	}
	h.Hint("r2", 100, q)
	if _, ok := h.take("r2", 99); ok {
		t.Error("a hint was taken for a record of another size")
	}
	if _, ok := h.take("r2", 100); ok {
		t.Error("a hint for other bytes stayed once met")
	}
	if h.Taken() != 1 || h.Missed() != 3 {
		t.Errorf("taken %d, missed %d; want 1 and 3", h.Taken(), h.Missed())
	}

	// By count: the ring holds 3 ids, taken ones included until their turn.
	for _, id := range []string{"a", "b", "c", "d"} {
		h.Hint(id, 1, q)
	}
	if n, _ := h.Len(); n != 3 {
		t.Errorf("%d hints held, want 3", n)
	}
	if _, ok := h.take("a", 1); ok {
		t.Error("the oldest hint stayed past the count")
	}
	for _, id := range []string{"b", "c", "d"} {
		if _, ok := h.take(id, 1); !ok {
			t.Errorf("hint %s lost", id)
		}
	}
	if n, b := h.Len(); n != 0 || b != 0 {
		t.Errorf("all taken: %d hints of %d bytes held", n, b)
	}

	// By bytes: room for two.
	one := hintBytes("x1", q)
	h = NewQueryHints(100, 2*one+one/2)
	for _, id := range []string{"x1", "x2", "x3"} {
		h.Hint(id, 1, q)
	}
	if n, b := h.Len(); n != 2 || b != 2*one {
		t.Errorf("%d hints of %d bytes held, want 2 of %d", n, b, 2*one)
	}
	if _, ok := h.take("x1", 1); ok {
		t.Error("the oldest hint stayed past the bytes")
	}
	// A hint given again replaces the first, counted once.
	h.Hint("x3", 2, q)
	if n, b := h.Len(); n != 2 || b != 2*one {
		t.Errorf("a hint given twice: %d hints of %d bytes", n, b)
	}
	if _, ok := h.take("x3", 2); !ok {
		t.Error("the second hint of x3 was not the one held")
	}

	var none *QueryHints
	none.Hint("r", 1, q)
	if _, ok := none.take("r", 1); ok {
		t.Error("a nil QueryHints held a hint")
	}
}

// TestHintedIndexIsTheJournals: with the broker's hints (the query of each journaled request, as
// soap.JournaledQueryOfTree reads it from the envelope the broker parsed), the index folds the
// requests without reading their envelopes again, and holds what a rebuild from the journal
// alone holds, field for field. A hint that does not fit its record (another size) is not used.
func TestHintedIndexIsTheJournals(t *testing.T) {
	w := newWorld(t, Config{})
	ctx := context.Background()
	hints := NewQueryHints(0, 0)
	var err error
	if w.index, err = NewIndexer(IndexerConfig{Batch: 4, Hints: hints}, w.db.Journal(), w.db, w.db, nil); err != nil {
		t.Fatal(err)
	}
	w.seed()
	recs, err := w.db.Journal().Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalRequest}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		doc, raw, err := soap.ReadEnvelope(bytes.NewReader(r.Data), "text/xml; charset=utf-8", soap.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", r.RequestID, err)
		}
		q, err := soap.JournaledQueryOfTree(doc)
		if err != nil {
			t.Fatalf("%s: %v", r.RequestID, err)
		}
		size := len(raw)
		if i == 0 {
			size++ // a hint for other bytes
		}
		hints.Hint(r.RequestID, size, q)
	}
	read := 0
	defer func(saved func([]byte, soap.Limits) (siobroker.Query, error)) { journaledQuery = saved }(journaledQuery)
	saved := journaledQuery
	journaledQuery = func(raw []byte, lim soap.Limits) (siobroker.Query, error) {
		read++
		return saved(raw, lim)
	}
	if _, _, err := w.index.CatchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// The journal's request records, and the two refusals carrying their request (which the
	// broker journals before anything is hinted).
	if hints.Taken() != uint64(len(recs)-1) || read != 1+2 {
		t.Errorf("%d requests journaled: %d hints taken, %d envelopes read; want %d and 3", len(recs), hints.Taken(), read, len(recs)-1)
	}
	live := w.entries()
	if _, err := w.index.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if rebuilt := w.entries(); !reflect.DeepEqual(live, rebuilt) {
		t.Errorf("the index from hints differs from the journal's:\nlive    %+v\nrebuilt %+v", live, rebuilt)
	}
}
