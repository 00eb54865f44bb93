package main

import (
	"strings"
	"testing"
)

// TestClusterFlags: the counts are 1..16 and a shared journal is required.
func TestClusterFlags(t *testing.T) {
	c := clusterFlags{journalDSN: "postgres://h/db"}
	if err := c.parse("1, 2", "1,2,4"); err != nil || len(c.clusterBrokers) != 2 || len(c.clusterAdapters) != 3 {
		t.Fatalf("parse: %v %+v", err, c)
	}
	for _, bad := range [][2]string{{"0", "1"}, {"1", "x"}, {"17", "1"}} {
		c := clusterFlags{journalDSN: "postgres://h/db"}
		if err := c.parse(bad[0], bad[1]); err == nil {
			t.Errorf("parse(%q, %q): no error", bad[0], bad[1])
		}
	}
	if err := (&clusterFlags{}).parse("1", "1"); err == nil || !strings.Contains(err.Error(), "--journal-dsn") {
		t.Errorf("no journal: %v", err)
	}
}

// TestClusterWrite: CPU per request is each kind's CPU over the answered requests, and one
// process's is the mean over the processes of its kind.
func TestClusterWrite(t *testing.T) {
	r := &clusterResult{Machine: machine{Cores: 2}, Flags: map[string]string{}, Runs: []clusterRun{{
		Brokers: 2, Adapters: 4, Answered: 1000, Throughput: 100, P50Ms: 20, P99Ms: 90, BusyCores: 1.9,
		CPU:           map[string]float64{"broker": 4, "adapter": 2, "rabbitmq": 3, "load tool": 0.5, "others": 0.1},
		CPUPerProcess: map[string]float64{"broker-1": 2.5, "broker-2": 1.5, "adapter-1": 0.5, "adapter-2": 0.5, "adapter-3": 0.5, "adapter-4": 0.5},
	}}}
	var b strings.Builder
	r.write(&b)
	want := "| 2 | 4 | 100 | 20.0 | 90.0 | none | 4.00 | 2.00 | 3.00 | 0.50 | 0.10 | 2.00 | 0.50 | 1.90 |"
	if !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
}
