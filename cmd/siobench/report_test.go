package main

import (
	"strings"
	"testing"
)

// TestCeiling: the ceiling counts RabbitMQ as a fixed share of the cores and the other parties
// per request, from the RabbitMQ topology's 1-service closed-loop load whatever runs before it.
func TestCeiling(t *testing.T) {
	r := &benchResult{
		Machine:     machine{Cores: 2},
		Baselines:   map[string][]float64{baseAMQP: {2800}, baseAMQPOne: {600}},
		RabbitCores: map[string][]float64{baseAMQP: {0.90}, baseAMQPOne: {0.70}},
		Loads: []loadRun{{
			Transport: transportEmbedded,
			Report:    loadReport{Services: 1, Answered: 9000, ElapsedSeconds: 20},
			CPU:       map[string]float64{"broker": 30},
		}, {
			Transport: transportAMQP,
			Report:    loadReport{Services: 1, Answered: 4834, ElapsedSeconds: 20},
			CPU:       map[string]float64{"broker": 17, "adapter": 3.6, "rabbitmq": 12.4, "load tool": 1.6},
		}},
	}
	var b strings.Builder
	r.writeCeiling(&b, 1544)
	out := b.String()
	// free 2 − 0.62 = 1.38 cores; broker 3.52 ms, neighbours 1.08 ms, goxmldsig 1.30 ms per op
	for _, want := range []string{"RabbitMQ took 0.62 cores", "0.90 cores at 2800/s", "0.70 one at a time at 600/s",
		"1.08 ms of CPU per request", "the broker 3.52 ms", "at most 300 requests/s", "(0.19 × goxmldsig)",
		"at most 582/s (0.38 ×)"} {
		if !strings.Contains(out, want) {
			t.Errorf("ceiling lacks %q:\n%s", want, out)
		}
	}

	// With neighbours that cost nothing and RabbitMQ elsewhere, the two cores carry the baseline.
	r.Loads[1].CPU = map[string]float64{"broker": 17, "rabbitmq": 0}
	b.Reset()
	r.writeCeiling(&b, 1544)
	if out := b.String(); !strings.Contains(out, "at most 1544/s (1.00 ×)") {
		t.Errorf("ceiling without neighbours:\n%s", out)
	}

	// Nothing is written without a metered RabbitMQ load.
	r.Loads[1].CPU = map[string]float64{"broker": 17}
	b.Reset()
	if r.writeCeiling(&b, 1544); b.Len() != 0 {
		t.Errorf("ceiling written without RabbitMQ's CPU: %s", b.String())
	}
}

// TestTargets: each target of issue 20 is read from the loads of its topology and kind, against
// the baseline of the run, and a target whose loads are missing or too few says so.
func TestTargets(t *testing.T) {
	half := func(transport string, p99 float64) loadRun {
		return loadRun{Transport: transport, HalfRate: true,
			Report: loadReport{Services: 1, Rate: 300, Answered: 18000, ElapsedSeconds: 60, P99Ms: p99}, CPU: map[string]float64{"broker": 18000 * 0.0020}}
	}
	// goxmldsig: 1000 ops/s on 2 cores, 2 ms of CPU per op.
	r := &benchResult{
		Machine: machine{Cores: 2},
		Flags:   map[string]string{"synchronous": "full", "latency_duration": "1m0s", "adapters": "process"},
		Loads: []loadRun{
			{Transport: transportEmbedded, Report: loadReport{Services: 1, Throughput: 1100, Answered: 22000}, CPU: map[string]float64{"broker": 22000 * 0.0014}},
			{Transport: transportEmbedded, Report: loadReport{Services: 10, Throughput: 400, Answered: 8000}, CPU: map[string]float64{"broker": 8000 * 0.0035}},
			half(transportEmbedded, 20), half(transportEmbedded, 49.9), half(transportEmbedded, 30),
			{Transport: transportAMQP, Report: loadReport{Services: 1, Throughput: 300, Answered: 6000}, CPU: map[string]float64{"broker": 6000 * 0.0030},
				BrokerAllocBytes: 6000 * 190_000},
			half(transportAMQP, 20), half(transportAMQP, 50), half(transportAMQP, 10),
		},
	}
	var b strings.Builder
	r.writeTargets(&b, 1000)
	out := b.String()
	for _, want := range []string{
		"| embedded, 1 service: throughput ≥ 1.0 × goxmldsig | 1100.0/s = 1.10 × | met |",
		"| embedded, 1 service: broker CPU ≤ 1.5 ms per request | 1.40 ms | met |",
		"| embedded, 10 services: broker CPU ≤ 2 × the 1-service request's | 3.50 ms = 2.50 × | **NOT met** |",
		"| RabbitMQ, 1 service, closed loop: broker CPU ≤ 1.2 × goxmldsig's per op | 3.00 ms ÷ 2.00 ms = 1.50 × | **NOT met** |",
		"| RabbitMQ, 1 service at half rate: broker CPU ≤ 1.2 × goxmldsig's per op, in each run | 1.00, 1.00, 1.00 × | met |",
		"| embedded, 1 service at half rate (300/s): p99 < 50 ms in each of 3 runs | 20.0, 49.9, 30.0 ms, 1m0s each | met |",
		"| RabbitMQ, 1 service at half rate (300/s): p99 < 50 ms in each of 3 runs | 20.0, 50.0, 10.0 ms, 1m0s each | **NOT met** |",
		"| durable: the journal's commits on the disk before a reply (store.synchronous full) | store.synchronous full | met |",
		"| 190 KB | **NOT met** |",
		"make bench-soak",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("targets lack %q:\n%s", want, out)
		}
	}

	// Two half-rate runs, or shorter ones, do not make the p99 target; NORMAL is not durable; a
	// run without the embedded topology says what it lacks.
	r.Loads = r.Loads[5:7]
	r.Flags["synchronous"] = "normal"
	b.Reset()
	r.writeTargets(&b, 1000)
	out = b.String()
	for _, want := range []string{
		"| RabbitMQ, 1 service at half rate (300/s): p99 < 50 ms in each of 1 runs | 20.0 ms, 1m0s each | **NOT met** |",
		"| embedded, 1 service: throughput and broker CPU | not measured (--transports embedded and --services 1,…) | – |",
		"| store.synchronous normal | **NOT met** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("targets lack %q:\n%s", want, out)
		}
	}
}

// TestJournalCommit: the journal benchmark's sub-benchmarks are read with their metrics, and
// the summary gives FULL against NORMAL at each concurrency, and the cost per request.
func TestJournalCommit(t *testing.T) {
	out := `goos: linux
BenchmarkJournalCommit/sync=full/inflight=1-2         	    6518	    330110 ns/op	      3000 appends/s	         0.2520 cpu-ms/op
BenchmarkJournalCommit/sync=full/inflight=8-2         	   19908	    230876 ns/op	      4331 appends/s	         0.1283 cpu-ms/op
BenchmarkJournalCommit/sync=normal/inflight=1-2       	   10000	    275114 ns/op	      4000 appends/s	         0.1420 cpu-ms/op
BenchmarkJournalCommit/sync=normal/inflight=8-2       	   10000	    307992 ns/op	      3247 appends/s	         0.1098 cpu-ms/op
PASS`
	got := parseJournalBench(out)
	if len(got) != 4 || got["sync=full/inflight=1"]["appends/s"] != 3000 || got["sync=normal/inflight=8"]["cpu-ms/op"] != 0.1098 {
		t.Fatalf("parsed %v", got)
	}
	r := &benchResult{Flags: map[string]string{"concurrency": "8", "synchronous": "full"}, JournalCommit: map[string]map[string][]float64{}}
	for name, metrics := range got {
		r.JournalCommit[name] = map[string][]float64{}
		for unit, v := range metrics {
			r.JournalCommit[name][unit] = []float64{v}
		}
	}
	var b strings.Builder
	r.writeJournalCommit(&b)
	// 1000/3000 − 1000/4000 = 0.083 ms per commit, requestCommits (4) per request
	for _, want := range []string{"| 1 | 3000 | 4000 | 0.75 | 0.252 | 0.142 | 1.77 |", "| 8 | 4331 | 3247 | 1.33 |",
		"FULL adds 0.083 ms of wall time and 0.110 ms of CPU to each commit: 0.33 ms and 0.440 ms to a one-service request's 4 commits"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestReportsBench(t *testing.T) {
	out := `goos: linux
BenchmarkReport/csv/tenth-2         	       1	2221793474 ns/op	      2382 B-alloc/row	       510.5 B-out/row	        70.01 allocs/row	        14.70 cpu-us/row	         5.954 peak-heap-MB	    100001 rows/op	     45009 rows/s
BenchmarkReport/csv/year-2          	       1	14576556876 ns/op	      2381 B-alloc/row	       511.5 B-out/row	        70.00 allocs/row	        11.83 cpu-us/row	         7.619 peak-heap-MB	   1000000 rows/op	     68603 rows/s
BenchmarkReport/xlsx/tenth-2        	       1	3212363932 ns/op	      8397 B-alloc/row	       111.8 B-out/row	       231.0 allocs/row	        34.27 cpu-us/row	        60.50 peak-heap-MB	    100001 rows/op	     31130 rows/s
BenchmarkReport/xlsx/year-2         	       1	33544889012 ns/op	      8015 B-alloc/row	       112.7 B-out/row	       231.0 allocs/row	        31.88 cpu-us/row	        60.79 peak-heap-MB	   1000000 rows/op	     29811 rows/s
BenchmarkReport/summary/year-2      	       1	2523215789 ns/op	         0.06967 B-alloc/row	         0.002352 B-out/row	         0.001222 allocs/row	         2.348 cpu-us/row	         1.323 peak-heap-MB	   1000000 rows/op	    396320 rows/s
BenchmarkReindex-2                  	       1	5327514793 ns/op	        59.96 cpu-us/record	    100000 records/op	     18770 records/s	     20000 requests/op
PASS`
	r := &benchResult{Reports: parseReportBench(out)}
	if len(r.Reports) != 6 || r.Reports["csv/year"]["rows/s"] != 68603 || r.Reports["reindex"]["records/s"] != 18770 {
		t.Fatalf("parsed %v", r.Reports)
	}
	var b strings.Builder
	r.writeReports(&b)
	for _, want := range []string{"| csv/year | 1000000 | 68603 | 11.83 | 70.0 | 2381 | 511.5 | 7.6 |",
		"| xlsx | 10.00 | 0.93 | 1.00 | 1.00 |", "| csv | 10.00 | 0.80 | 1.00 | 1.28 |",
		"18770 records/s, 60.0 µs of CPU per record; a journal of 1,000,000 records in about 53 s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// TestTargetsOfFailedLoads: a load that answered nothing, or whose requests failed, meets no
// target, however low its CPU per answered request reads; a target whose half-rate loads did not
// run says so.
func TestTargetsOfFailedLoads(t *testing.T) {
	r := &benchResult{
		Machine: machine{Cores: 2},
		Flags:   map[string]string{"synchronous": "full", "latency_duration": "1m0s", "adapters": "process"},
		Loads: []loadRun{
			{Transport: transportEmbedded, Report: loadReport{Services: 1, Throughput: 1100, Answered: 22000}, CPU: map[string]float64{"broker": 22000 * 0.0014}},
			// Ten services per request: every request refused, nothing answered.
			{Transport: transportEmbedded, Report: loadReport{Services: 10, Errors: map[string]int{"SIO-INTERNAL": 9000}}, CPU: map[string]float64{"broker": 5}},
			// Over RabbitMQ: a fast answer for some, a transport failure for most.
			{Transport: transportAMQP, Report: loadReport{Services: 1, Throughput: 10, Answered: 200, Errors: map[string]int{"transport": 5000}},
				CPU: map[string]float64{"broker": 200 * 0.0010}},
		},
	}
	var b strings.Builder
	r.writeTargets(&b, 1000)
	out := b.String()
	for _, bad := range []string{"embedded, 10 services", "RabbitMQ, 1 service, closed loop"} {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, bad) && !strings.HasSuffix(line, "| **NOT met** |") {
				t.Errorf("a failed load's target reads as met: %s", line)
			}
		}
	}
	if !strings.Contains(out, "| RabbitMQ, 1 service at half rate: broker CPU") || !strings.Contains(out, "not measured") {
		t.Errorf("the half-rate CPU target over RabbitMQ is missing though its loads did not run:\n%s", out)
	}
	// A store.synchronous the run could not read is not durable.
	r.Flags["synchronous"] = "unknown (configs/broker.yaml: no such file)"
	b.Reset()
	r.writeTargets(&b, 1000)
	if !strings.Contains(b.String(), "| store.synchronous unknown (configs/broker.yaml: no such file) | **NOT met** |") {
		t.Errorf("an unknown store.synchronous reads as durable:\n%s", b.String())
	}
}

// TestThroughputEmbeddedNotOverRawAMQP: the embedded default's loads make no RabbitMQ round trip,
// so they are not given as a multiple of the raw AMQP baseline; the RabbitMQ loads are.
func TestThroughputEmbeddedNotOverRawAMQP(t *testing.T) {
	r := &benchResult{
		Baselines: map[string][]float64{baseSigning: {1000}, baseAMQP: {2000}},
		Loads: []loadRun{
			{Name: "embedded, 1 service(s), 8 in flight", Transport: transportEmbedded, Report: loadReport{Throughput: 1000}},
			{Name: "RabbitMQ, 1 service(s), 8 in flight", Transport: transportAMQP, Report: loadReport{Throughput: 500}},
		},
	}
	var b strings.Builder
	r.writeThroughput(&b, 1000)
	for _, want := range []string{"| embedded, 1 service(s), 8 in flight | 1000.0 | 0.0 | 0.0 | 0.0 | 0.0 | none | 1.00 | 1.00 | – |",
		"| RabbitMQ, 1 service(s), 8 in flight | 500.0 | 0.0 | 0.0 | 0.0 | 0.0 | none | 0.50 | 0.50 | 0.25 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("throughput lacks %q:\n%s", want, b.String())
		}
	}
}

// TestGoxmldsigCPU: the CPU targets read goxmldsig's CPU per operation as its benchmark measured
// it, and only without that fall back to --cores ÷ its ops/s; the bench output's metric is read.
func TestGoxmldsigCPU(t *testing.T) {
	out := `BenchmarkGoxmldsigVerifyAndSign-2   	     300	    684108 ns/op	   5.16 MB/s	         1.313 cpu-ms/op	      1462 ops/s
BenchmarkVerifyAndSignParallel-2    	     300	    598148 ns/op	   6.26 MB/s	         1.169 cpu-ms/op	      1672 ops/s`
	got := parseBenchMetric(out, "cpu-ms/op")
	if got[baseGoxmldsig] != 1.313 || got[baseSigning] != 1.169 {
		t.Fatalf("parsed %v", got)
	}
	r := &benchResult{Machine: machine{Cores: 2}, Flags: map[string]string{"cores": "1"}, BaselineCPU: map[string][]float64{}}
	if v := r.goxmldsigCPUms(1000); v != 1 {
		t.Errorf("without a measured figure, --cores 1 at 1000/s gives %.3f ms, want 1", v)
	}
	r.BaselineCPU[baseGoxmldsig] = []float64{1.2, 1.4}
	if v := r.goxmldsigCPUms(1000); v < 1.2999 || v > 1.3001 {
		t.Errorf("measured 1.2 and 1.4 give %.3f ms, want their mean 1.3", v)
	}
}
