package revocation

import "sync/atomic"

// tally counts events by a fixed set of results, without a lock: the metrics read it at each
// scrape, and the results are the label values of a counter, so the set must stay bounded.
type tally struct {
	counts map[string]*atomic.Uint64 // never written after newTally
}

func newTally(results []string) *tally {
	t := &tally{counts: make(map[string]*atomic.Uint64, len(results))}
	for _, r := range results {
		t.counts[r] = new(atomic.Uint64)
	}
	return t
}

// add counts one event of result, which must be one of the tally's.
func (t *tally) add(result string) { t.counts[result].Add(1) }

// read returns every result's count, those still at zero included.
func (t *tally) read() map[string]uint64 {
	out := make(map[string]uint64, len(t.counts))
	for r, c := range t.counts {
		out[r] = c.Load()
	}
	return out
}
