package routes

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const shipped = "../../configs/routes.yaml"

func shippedText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestShippedTable(t *testing.T) {
	tbl, err := Load(shipped)
	if err != nil {
		t.Fatalf("Load(%s) = %v", shipped, err)
	}
	if len(tbl.Routes()) != 93 || tbl.DefaultTimeout != 10*time.Second {
		t.Fatalf("%d routes, default %s", len(tbl.Routes()), tbl.DefaultTimeout)
	}
	r, ok := tbl.Route(11)
	if !ok || r.Queue != "sio.service.011" || r.Adapter != "demo" || r.Backend != "demo" || r.Timeout != 10*time.Second || r.TimeoutSet {
		t.Errorf("route 11 = %+v", r)
	}
	if len(tbl.DeclaredQueues()) != 93 {
		t.Errorf("declared %d queues", len(tbl.DeclaredQueues()))
	}
}

// edit returns the shipped file with old replaced by new, failing if old is absent.
func edit(t *testing.T, old, new string) []byte {
	t.Helper()
	s := shippedText(t)
	if !strings.Contains(s, old) {
		t.Fatalf("shipped routes have no %q", old)
	}
	return []byte(strings.Replace(s, old, new, 1))
}

func lineOf(t *testing.T, text, needle string) int {
	t.Helper()
	i := strings.Index(text, needle)
	if i < 0 {
		t.Fatalf("no %q", needle)
	}
	return strings.Count(text[:i], "\n") + 1
}

func TestParseErrorsNameLineAndFix(t *testing.T) {
	line11 := lineOf(t, shippedText(t), "  11: {")
	tests := []struct {
		name, old, new string
		want           []string
	}{
		{"undeclared queue", "11: {queue: sio.service.011,", "11: {queue: sio.kgd,",
			[]string{"routes.yaml:" + itoa(line11) + ":", `queue "sio.kgd", which is not declared`, `add "sio.kgd" to queues`}},
		{"another service's queue", "11: {queue: sio.service.011,", "11: {queue: sio.service.012,",
			[]string{"the queue of another service", "use sio.service.011"}},
		{"service without route", "  11: {queue: sio.service.011, adapter: demo, backend: demo}", "",
			[]string{"no route for service 11;", "every service of Appendix 2 needs one"}},
		{"unknown key", "11: {queue: sio.service.011, adapter: demo,", "11: {queue: sio.service.011, adaptor: demo, adapter: demo,",
			[]string{"field adaptor not found", "a service's keys: queue, adapter, backend, timeout"}},
		{"unknown backend", "11: {queue: sio.service.011, adapter: demo, backend: demo}", "11: {queue: sio.service.011, adapter: demo, backend: oracle}",
			[]string{`backend "oracle" is not one of demo, postgres, http`}},
		{"negative timeout", "11: {queue: sio.service.011, adapter: demo, backend: demo}", "11: {queue: sio.service.011, adapter: demo, backend: demo, timeout: -1s}",
			[]string{"timeout -1s must be positive"}},
		{"service outside Appendix 2", "  93: {", "  94: {queue: sio.service.093, adapter: demo, backend: demo}\n  93: {",
			[]string{"service 94 is not in Appendix 2"}},
		{"bad default", "default_timeout: 10s", "default_timeout: 0s", []string{"default_timeout must be positive"}},
		{"bad queue name", "queues: []", "queues: [Sio KGD]", []string{`queue name "Sio KGD"`}},
		{"two adapters on one queue", "queues: []", "queues: [sio.kgd]",
			nil}, // valid on its own: no service uses it
		{"registry without adapter", "  erdr: {adapter: demo}", "  erdr: {}",
			[]string{`registry erdr: adapter "" must be the name of the adapter config that answers its case checks`}},
		{"bad registry name", "  erdr: {adapter: demo}", "  ЕРДР: {adapter: demo}",
			[]string{`registry "ЕРДР": a case registry's name is 1 to 32 of a-z`}},
		{"unknown registry key", "  erdr: {adapter: demo}", "  erdr: {adapter: demo, backend: postgres}",
			[]string{"field backend not found", "a registry's: adapter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("configs/routes.yaml", edit(t, tt.old, tt.new))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Parse = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestSharedQueueNeedsOneAdapter(t *testing.T) {
	b := edit(t, "queues: []", "queues: [sio.kgd]")
	s := strings.Replace(string(b), "11: {queue: sio.service.011, adapter: demo, backend: demo}", "11: {queue: sio.kgd, adapter: kgd, backend: postgres, timeout: 20s}", 1)
	s = strings.Replace(s, "12: {queue: sio.service.012, adapter: demo, backend: demo}", "12: {queue: sio.kgd, adapter: kgd, backend: postgres}", 1)
	tbl, err := Parse("routes.yaml", []byte(s))
	if err != nil {
		t.Fatalf("two services of one adapter on a shared queue: %v", err)
	}
	if r, _ := tbl.Route(11); r.Queue != "sio.kgd" || r.Timeout != 20*time.Second || !r.TimeoutSet {
		t.Errorf("route 11 = %+v", r)
	}
	if tbl.Timeout(12) != 10*time.Second || tbl.MaxTimeout() != 20*time.Second {
		t.Errorf("timeouts: 12 %s, max %s", tbl.Timeout(12), tbl.MaxTimeout())
	}
	if q := tbl.DeclaredQueues(); len(q) != 94 {
		t.Errorf("declared %d queues, want 94", len(q))
	}
	s = strings.Replace(s, "12: {queue: sio.kgd, adapter: kgd,", "12: {queue: sio.kgd, adapter: other,", 1)
	if _, err := Parse("routes.yaml", []byte(s)); err == nil || !strings.Contains(err.Error(), "every service of a queue must have one adapter") {
		t.Errorf("two adapters on one queue: %v", err)
	}
}

func TestDiff(t *testing.T) {
	old, err := Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse("routes.yaml", edit(t, "11: {queue: sio.service.011, adapter: demo, backend: demo}", "11: {queue: sio.service.011, adapter: kgd, backend: postgres, timeout: 20s}"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(next.Diff(old), "\n")
	for _, want := range []string{"service 11: adapter demo/demo → kgd/postgres", "service 11: timeout 10s → 20s"} {
		if !strings.Contains(got, want) {
			t.Errorf("Diff = %q, want %q", got, want)
		}
	}
	if d := old.Diff(old); len(d) != 0 {
		t.Errorf("Diff of a table with itself = %v", d)
	}
	live := NewLive(old)
	if live.Timeout(11) != 10*time.Second {
		t.Fatal("live timeout")
	}
	live.Swap(next)
	if live.Timeout(11) != 20*time.Second || live.Queue(11) != "sio.service.011" {
		t.Errorf("after swap: timeout %s queue %s", live.Timeout(11), live.Queue(11))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRegistryRoutes: the table names the adapter of each case registry, and a reload's diff says
// when one moves.
func TestRegistryRoutes(t *testing.T) {
	tbl, err := Parse("routes.yaml", edit(t, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.Registries(); !slices.Equal(got, []string{"aisoip", "courts", "erdr"}) {
		t.Errorf("registries %v", got)
	}
	if a := tbl.RegistryAdapter("erdr"); a != "demo" {
		t.Errorf("erdr's adapter %q, want demo", a)
	}
	if a := tbl.RegistryAdapter("nobody"); a != "" {
		t.Errorf("an unrouted registry's adapter %q, want none", a)
	}
	moved, err := Parse("routes.yaml", edit(t, "  erdr: {adapter: demo}", "  erdr: {adapter: erdr-pg}"))
	if err != nil {
		t.Fatal(err)
	}
	if d := moved.Diff(tbl); !slices.Equal(d, []string{`registry erdr: adapter "demo" → "erdr-pg"`}) {
		t.Errorf("diff %q", d)
	}
}
