package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The journal's commit cost: BenchmarkJournalCommit (sqlite package) appends request-sized
// records through the store's real write path with synchronous=full and synchronous=normal, one
// at a time and at the load's concurrency. It runs beside the baselines, before and after the
// loads, with the broker idle, on the disk of the broker's data directory.

// journalBench is the benchmark's name.
const journalBench = "BenchmarkJournalCommit"

// journalSubLine matches one sub-benchmark's result: its name and the rest of the line.
var journalSubLine = regexp.MustCompile(`^` + journalBench + `/(sync=\w+/inflight=\d+)(?:-\d+)?\s+\d+\s+(.*)$`)

// metricPair is one "value unit" of a benchmark line.
var metricPair = regexp.MustCompile(`([0-9.]+) (\S+)`)

// parseJournalBench returns each sub-benchmark's metrics (unit → value) from go test -bench
// output: "sync=full/inflight=1" → {"appends/s": 3029, "cpu-ms/op": 0.25, ...}.
func parseJournalBench(out string) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	for line := range strings.SplitSeq(out, "\n") {
		m := journalSubLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		res[m[1]] = parseMetrics(m[2])
	}
	return res
}

// parseMetrics reads the "value unit" pairs of the rest of a benchmark's line: unit → value.
func parseMetrics(rest string) map[string]float64 {
	metrics := map[string]float64{}
	for _, p := range metricPair.FindAllStringSubmatch(rest, -1) {
		if v, err := strconv.ParseFloat(p[1], 64); err == nil {
			metrics[p[2]] = v
		}
	}
	return metrics
}

// runTestBinary runs the test binary of package pkg (built by buildBaselines into binDir) in the
// package's directory, with env added to the environment, and returns its output.
func runTestBinary(ctx context.Context, binDir, pkg string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, filepath.Base(pkg)+".test"), args...)
	cmd.Dir = filepath.FromSlash(pkg)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

// runJournalCommit runs the journal's commit benchmark once and appends its figures to res.
func runJournalCommit(ctx context.Context, f benchFlags, binDir, dataDir string, res *benchResult, log io.Writer) error {
	fmt.Fprintf(log, "siobench: baseline %s (synchronous full and normal)\n", journalBench)
	out, err := runTestBinary(ctx, binDir, "sqlite", []string{"SIOBENCH_INFLIGHT=" + strconv.Itoa(f.concurrency), "SIOBENCH_DATA_DIR=" + dataDir},
		"-test.run", "^$", "-test.bench", "^"+journalBench+"$", "-test.benchtime", f.journalTime.String(), "-test.cpu", strconv.Itoa(f.cores))
	if err != nil {
		return fmt.Errorf("baseline %s: %w\n%s", journalBench, err, out)
	}
	got := parseJournalBench(string(out))
	if len(got) == 0 {
		return fmt.Errorf("baseline %s printed no figures:\n%s", journalBench, out)
	}
	if res.JournalCommit == nil {
		res.JournalCommit = map[string]map[string][]float64{}
	}
	for name, metrics := range got {
		if res.JournalCommit[name] == nil {
			res.JournalCommit[name] = map[string][]float64{}
		}
		for unit, v := range metrics {
			res.JournalCommit[name][unit] = append(res.JournalCommit[name][unit], v)
		}
	}
	return nil
}

// requestCommits is how many write transactions the embedded store commits for a one-service
// synchronous request, as internal/cli's TestCommitsPerRequest holds it: the replay marks with
// the request's record, the request's hold, the service's answer, the reply's records with the
// end of the hold.
const requestCommits = 4

// writeJournalCommit writes the journal's commit cost with synchronous FULL against NORMAL, as
// measured in this run, and what it adds to a request, which commits requestCommits
// transactions.
func (r *benchResult) writeJournalCommit(w io.Writer) {
	if len(r.JournalCommit) == 0 {
		return
	}
	fmt.Fprintf(w, "\nThe journal's commit cost (%s: the journal's Append through the write turn and group commit, 3 KB records, the broker idle; the mean of the runs before and after the loads). store.synchronous is %s for the broker in this run.\n",
		journalBench, r.Flags["synchronous"])
	fmt.Fprintln(w, "\n| in flight | FULL appends/s | NORMAL appends/s | FULL ÷ NORMAL, rate | FULL CPU ms per append | NORMAL CPU ms per append | FULL ÷ NORMAL, CPU |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	perRequest := ""
	for _, n := range []string{"1", r.Flags["concurrency"]} {
		full, normal := r.JournalCommit["sync=full/inflight="+n], r.JournalCommit["sync=normal/inflight="+n]
		if full == nil || normal == nil {
			continue
		}
		fr, nr := mean(full["appends/s"]), mean(normal["appends/s"])
		fc, nc := mean(full["cpu-ms/op"]), mean(normal["cpu-ms/op"])
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %.3f | %.3f | %s |\n", n, fr, nr, ratio(fr, nr), fc, nc, ratio(fc, nc))
		if n == "1" && fr > 0 && nr > 0 {
			perRequest = fmt.Sprintf("\nOne at a time, FULL adds %.3f ms of wall time and %.3f ms of CPU to each commit: %.2f ms and %.3f ms to a one-service request's %d commits.\n",
				1000/fr-1000/nr, fc-nc, requestCommits*(1000/fr-1000/nr), requestCommits*(fc-nc), requestCommits)
		}
	}
	fmt.Fprint(w, perRequest)
}
