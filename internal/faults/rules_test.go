package faults

import (
	"testing"

	"github.com/sio-pso/siobroker"
)

// TestDuplicateRules holds the accounting's idea of a duplicate to the journal's design: one
// exchange record per request and service; a late record beside a timeout is the designed outcome
// of a late answer, beside an answer a second outcome; two late records of one answer are one too
// many.
func TestDuplicateRules(t *testing.T) {
	ex := func(code string) jrec { return jrec{kind: siobroker.JournalExchange, service: 5, code: code} }
	late := func(digest string) jrec {
		return jrec{kind: siobroker.JournalLate, service: 5, code: "ok/OK", answerDigest: digest}
	}
	for _, tc := range []struct {
		name               string
		exchanges, lates   []jrec
		journaled, dup     int
		late               int
		wantProblemsOfKind string
	}{
		{name: "answered", exchanges: []jrec{ex("ok/OK")}, journaled: 1},
		{name: "adapter error is an answer", exchanges: []jrec{ex("error/ADAPTER_ERROR")}, journaled: 1},
		{name: "timeout alone", exchanges: []jrec{ex("timeout/TIMEOUT")}},
		{name: "timeout then late answer", exchanges: []jrec{ex("timeout/TIMEOUT")}, lates: []jrec{late("a")}, journaled: 1, late: 1},
		{name: "two late answers that differ", exchanges: []jrec{ex("timeout/TIMEOUT")}, lates: []jrec{late("a"), late("b")}, journaled: 2, late: 2},
		{name: "a late copy of a late answer", exchanges: []jrec{ex("timeout/TIMEOUT")}, lates: []jrec{late("a"), late("a")}, journaled: 2, late: 2, dup: 1, wantProblemsOfKind: "duplicated"},
		{name: "two exchange records", exchanges: []jrec{ex("ok/OK"), ex("ok/OK")}, journaled: 2, dup: 1, wantProblemsOfKind: "duplicated"},
		{name: "answer journaled as exchange and late", exchanges: []jrec{ex("ok/OK")}, lates: []jrec{late("a")}, journaled: 2, late: 1, dup: 1, wantProblemsOfKind: "duplicated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counts{outcomes: map[string]int{}}
			j := &jreq{exchanges: map[int][]jrec{5: tc.exchanges}, lates: map[int][]jrec{5: tc.lates}}
			countJournaled(c, &sent{messageID: "m"}, j)
			if c.journaled != tc.journaled || c.duplicated != tc.dup || c.late != tc.late {
				t.Errorf("journaled %d, duplicated %d, late %d; want %d, %d, %d", c.journaled, c.duplicated, c.late, tc.journaled, tc.dup, tc.late)
			}
			if tc.wantProblemsOfKind != "" && len(c.problems[tc.wantProblemsOfKind]) == 0 {
				t.Errorf("no %s problem described: %v", tc.wantProblemsOfKind, c.problems)
			}
		})
	}
}
