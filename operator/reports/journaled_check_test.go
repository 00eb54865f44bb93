package reports

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sync"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// The index reads a journaled request's query in one pass (soap.JournaledQuery), or takes the
// broker's hint of it (QueryHints). While the tests run (not the benchmarks, which measure that
// pass), every request they journal and index is also read through the tree of the whole
// document, and the tests fail if the readings differ.

var journaledChecks struct {
	sync.Mutex
	n        int
	hinted   int
	mismatch []string
}

// checkJournaledQueries makes journaledQuery compare the two readings, unless benchmarks run.
func checkJournaledQueries() {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		return
	}
	journaledQuery = func(raw []byte, lim soap.Limits) (siobroker.Query, error) {
		q, err := soap.JournaledQuery(raw, lim)
		want, wantErr := soap.JournaledQueryByTree(raw, lim)
		journaledChecks.Lock()
		defer journaledChecks.Unlock()
		journaledChecks.n++
		if !reflect.DeepEqual(q, want) || (err == nil) != (wantErr == nil) ||
			(err != nil && (err.Error() != wantErr.Error() || errors.Is(err, soap.ErrNoQuery) != errors.Is(wantErr, soap.ErrNoQuery))) {
			journaledChecks.mismatch = append(journaledChecks.mismatch,
				fmt.Sprintf("one pass: %+v, %v; the tree: %+v, %v; request: %.1000s", q, err, want, wantErr, raw))
		}
		return q, err
	}
	hintedQuery = func(h *QueryHints, r siobroker.JournalRecord) (siobroker.Query, bool) {
		q, ok := h.take(r.RequestID, len(r.Data))
		if !ok {
			return q, ok
		}
		want, err := soap.JournaledQueryByTree(r.Data, soap.Limits{})
		journaledChecks.Lock()
		defer journaledChecks.Unlock()
		journaledChecks.hinted++
		if err != nil || !reflect.DeepEqual(q, want) {
			journaledChecks.mismatch = append(journaledChecks.mismatch,
				fmt.Sprintf("hint: %+v; the tree: %+v, %v; request: %.1000s", q, want, err, r.Data))
		}
		return q, ok
	}
}

// journaledQueriesAgreed reports, after the tests, whether the readings agreed on every request.
func journaledQueriesAgreed() bool {
	journaledChecks.Lock()
	defer journaledChecks.Unlock()
	for _, m := range journaledChecks.mismatch {
		fmt.Fprintln(os.Stderr, "journaled query read differently:", m)
	}
	if testingVerbose() {
		fmt.Fprintf(os.Stderr, "journaled queries read both ways: %d, hints checked: %d, differing: %d\n", journaledChecks.n, journaledChecks.hinted, len(journaledChecks.mismatch))
	}
	return len(journaledChecks.mismatch) == 0
}

func testingVerbose() bool {
	f := flag.Lookup("test.v")
	return f != nil && f.Value.String() == "true"
}
