package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Reports over a large request index: BenchmarkReport (operator/reports) generates
// --report-rows entries of one organisation in the embedded store's request index (and 10% more
// of another) and streams that organisation's report through the reports service, over a tenth of
// the year and over the whole year, in CSV and XLSX, and the year's monthly summary;
// BenchmarkReindex rebuilds the index from a journal of requests as the broker writes them. They
// run once, after the loads, with the broker idle, on the disk of the broker's data directory.
// Whether a report streams is read from the ratios of the year to its tenth: the same CPU and
// allocations per row, and the same peak heap, over ten times the rows.

// Names of the report benchmarks.
const (
	reportBench  = "BenchmarkReport"
	reindexBench = "BenchmarkReindex"
)

// reportLine matches one result line of either: its case ("csv/year", or "" for the reindex) and
// the rest of the line.
var reportLine = regexp.MustCompile(`^(` + reportBench + `|` + reindexBench + `)(?:/(\S+?))?(?:-\d+)?\s+\d+\s+(.*)$`)

// parseReportBench returns each case's metrics (unit → value): "csv/year" → {"rows/s": ...},
// and the reindex under "reindex".
func parseReportBench(out string) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	for line := range strings.SplitSeq(out, "\n") {
		m := reportLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		name := m[2]
		if m[1] == reindexBench {
			name = "reindex"
		}
		res[name] = parseMetrics(m[3])
	}
	return res
}

// runReports runs the report benchmarks once and keeps their figures in res.
func runReports(ctx context.Context, f benchFlags, binDir, dataDir string, res *benchResult, log io.Writer) error {
	fmt.Fprintf(log, "siobench: %s over %d request index entries, and %s\n", reportBench, f.reportRows, reindexBench)
	out, err := runTestBinary(ctx, binDir, "operator/reports", []string{"SIOBENCH_REPORT_ROWS=" + strconv.Itoa(f.reportRows), "SIOBENCH_DATA_DIR=" + dataDir},
		"-test.run", "^$", "-test.bench", "^("+reportBench+"|"+reindexBench+")$", "-test.benchtime", "1x", "-test.cpu", strconv.Itoa(f.cores), "-test.timeout", "1h")
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", reportBench, err, out)
	}
	if res.Reports = parseReportBench(string(out)); len(res.Reports) == 0 {
		return fmt.Errorf("%s printed no figures:\n%s", reportBench, out)
	}
	return nil
}

// writeReports writes the report benchmarks' figures and what they mean.
func (r *benchResult) writeReports(w io.Writer) {
	if len(r.Reports) == 0 {
		return
	}
	fmt.Fprintf(w, "\nReports over the request index (%s: the organisation's report streamed through the reports service to a writer that keeps nothing, the broker idle; the summary's rows counted as the requests it sums up).\n",
		reportBench)
	fmt.Fprintln(w, "\n| report | rows | rows/s | CPU µs per row | allocations per row | bytes allocated per row | bytes out per row | peak live heap, MB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, c := range []string{"csv/tenth", "csv/year", "xlsx/tenth", "xlsx/year", "summary/year"} {
		m := r.Reports[c]
		if m == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.2f | %.1f | %.0f | %.1f | %.1f |\n", c, m["rows/op"], m["rows/s"], m["cpu-us/row"],
			m["allocs/row"], m["B-alloc/row"], m["B-out/row"], m["peak-heap-MB"])
	}
	fmt.Fprintln(w, "\n| format | year ÷ tenth: rows | CPU per row | allocations per row | peak live heap |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, f := range []string{"csv", "xlsx"} {
		y, t := r.Reports[f+"/year"], r.Reports[f+"/tenth"]
		if y == nil || t == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", f, ratio(y["rows/op"], t["rows/op"]), ratio(y["cpu-us/row"], t["cpu-us/row"]),
			ratio(y["allocs/row"], t["allocs/row"]), ratio(y["peak-heap-MB"], t["peak-heap-MB"]))
	}
	if m := r.Reports["reindex"]; m != nil && m["records/s"] > 0 {
		fmt.Fprintf(w, "\nRebuilding the index from the journal (%s, %.0f requests, %.0f journal records): %.0f records/s, %.1f µs of CPU per record; a journal of 1,000,000 records in about %.0f s.\n",
			reindexBench, m["requests/op"], m["records/op"], m["records/s"], m["cpu-us/record"], 1e6/m["records/s"])
	}
}
