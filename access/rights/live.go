package rights

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/sio-pso/siobroker"
)

// Live is the table a running broker decides with. A reload swaps in a new table whole, so that
// every request is decided by one table from start to end of a decision, and requests in flight
// are never dropped. It is safe for concurrent use.
type Live struct{ p atomic.Pointer[Table] }

// NewLive returns a Live holding t.
func NewLive(t *Table) *Live {
	l := &Live{}
	l.p.Store(t)
	return l
}

// Table returns the table in force.
func (l *Live) Table() *Table { return l.p.Load() }

// Swap puts t in force and returns the table it replaces.
func (l *Live) Swap(t *Table) *Table { return l.p.Swap(t) }

// RoleMayUse is Table.RoleMayUse on the table in force.
func (l *Live) RoleMayUse(role int, b siobroker.Basis) bool { return l.Table().RoleMayUse(role, b) }

// DecideService is Table.DecideService on the table in force.
func (l *Live) DecideService(b siobroker.Basis, service int, q siobroker.Qualification) siobroker.Decision {
	return l.Table().DecideService(b, service, q)
}

// TruncatedFields is Table.TruncatedFields on the table in force.
func (l *Live) TruncatedFields(service int) []string { return l.Table().TruncatedFields(service) }

// Diff describes what changed from old to t, one line per changed role, cell, truncation list
// or article list, for the reload log.
func (t *Table) Diff(old *Table) []string {
	var out []string
	for i := 0; i < max(len(t.roles), len(old.roles)); i++ {
		var a, b []siobroker.Basis
		if i < len(old.roles) {
			a = old.roles[i].Bases
		}
		if i < len(t.roles) {
			b = t.roles[i].Bases
		}
		if !slices.Equal(a, b) {
			out = append(out, fmt.Sprintf("role %d: bases %v → %v", i+1, a, b))
		}
	}
	for i := 0; i < max(len(t.services), len(old.services)); i++ {
		var a, b map[siobroker.Basis]siobroker.Access
		if i < len(old.services) {
			a = old.services[i].Access
		}
		if i < len(t.services) {
			b = t.services[i].Access
		}
		for basis := siobroker.FirstBasis; basis <= siobroker.LastBasis; basis++ {
			if a[basis] != b[basis] {
				out = append(out, fmt.Sprintf("service %d, basis %d: %q → %q", i+1, basis, accessText(a[basis]), accessText(b[basis])))
			}
		}
	}
	for _, n := range sortedKeys(mergedKeys(old.truncated, t.truncated)) {
		if !slices.Equal(old.truncated[n], t.truncated[n]) {
			out = append(out, fmt.Sprintf("service %d: truncated fields %v → %v", n, old.truncated[n], t.truncated[n]))
		}
	}
	out = append(out, t.diffLaw(old)...)
	if !maps.Equal(old.articles, t.articles) {
		out = append(out, fmt.Sprintf("economic articles: %d → %d articles", len(old.articles), len(t.articles)))
	}
	return out
}

func accessText(a siobroker.Access) string {
	if a == "" {
		return "none"
	}
	return string(a)
}

func mergedKeys(a, b map[int][]string) map[int]bool {
	out := map[int]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
