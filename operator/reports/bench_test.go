package reports

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/sqlite"
)

// The cost of a report over a large request index, and of rebuilding the index from the journal
// (make bench runs both; docs/benchmarks.md explains the figures).
//
// BenchmarkReport generates SIOBENCH_REPORT_ROWS entries (default 1,000,000) of one organisation
// in the embedded store's request index, spread over a year, and 10% more of another
// organisation, once per process; then it runs the organisation's controller's report through
// Service.StreamReport to a writer that counts the bytes, as the form and the dashboard stream it:
// a tenth of the year (about a tenth of the rows) and the whole year (every row), in CSV and in
// XLSX, and the monthly summary of the year (its rows counted as the requests it sums up). Each
// case reports rows/s, the process's CPU microseconds per row (user and system, getrusage), the
// bytes and allocations per row, and the
// peak of the live heap during the report (sampled every 5 ms): a report that streams has the
// same peak over a tenth of the rows as over all of them, and the same allocations per row.
//
// BenchmarkReindex journals SIOBENCH_REINDEX_REQUESTS requests (default 20,000) as the broker
// does, each a signed-size request, an exchange per service and a reply, and rebuilds the index
// from that journal (Indexer.Rebuild): journal records/s and CPU microseconds per journal record,
// from which the rebuild of a journal of any size follows.

const benchOrg, benchCode = "ДП г. Астаны", "1501"

// benchYear is the year the generated entries are spread over.
var benchYear = time.Date(2026, 1, 1, 0, 0, 0, 0, siobroker.Astana)

// benchWorld is a generated store, built once per process and removed by TestMain.
type benchWorld struct {
	db         *sqlite.DB
	svc        *Service
	controller string
	rows       int
}

var (
	benchOnce   sync.Once
	benchShared *benchWorld
	benchErr    error
	benchDirs   []string
)

// removeBenchStores removes what the benchmarks generated; TestMain calls it.
func removeBenchStores() {
	if benchShared != nil {
		benchShared.db.Close()
	}
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
}

// benchDir is a new directory for a generated store: under SIOBENCH_DATA_DIR when set (the disk
// of the broker's data), else the system's temporary directory.
func benchDir(prefix string) (string, error) {
	d, err := os.MkdirTemp(os.Getenv("SIOBENCH_DATA_DIR"), prefix)
	if err == nil {
		benchDirs = append(benchDirs, d)
	}
	return d, err
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// newBenchUsers opens a store in a new directory with a controller of benchOrg registered.
func newBenchUsers(ctx context.Context, prefix string) (*sqlite.DB, *users.Registry, *testclock.Clock, string, error) {
	dir, err := benchDir(prefix)
	if err != nil {
		return nil, nil, nil, "", err
	}
	db, err := sqlite.Open(ctx, dir)
	if err != nil {
		return nil, nil, nil, "", err
	}
	clock := testclock.New(benchYear.AddDate(1, 0, 0).Add(-time.Hour))
	reg := users.New(db, clock, nil)
	controller, _ := siobroker.CompleteIIN("80010130001")
	if _, err := reg.Apply(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: controller, Reason: "bench", By: "bench",
		At: benchYear.Add(-time.Hour), User: siobroker.User{FullName: "КОНТРОЛЕР", Organisation: benchOrg, ERDRCode: benchCode,
			Role: 3, ReportsRight: true, ConsentAt: benchYear}}); err != nil {
		db.Close()
		return nil, nil, nil, "", err
	}
	// The clock stands within 60 days of the controller's registration as far as §16 sees it:
	// a request of the controller's own is recorded, so the registry does not block him.
	if err := db.TouchLastRequest(ctx, controller, clock.Now()); err != nil {
		db.Close()
		return nil, nil, nil, "", err
	}
	return db, reg, clock, controller, nil
}

// benchEntry is generated entry i of n: a request of benchOrg (or, for every tenth above n, of
// another organisation) with the fields a real one has.
func benchEntry(i, n int) siobroker.RequestEntry {
	span := benchYear.AddDate(1, 0, 0).Sub(benchYear)
	at := benchYear.Add(time.Duration(int64(span) / int64(n+n/10) * int64(i)))
	org, code := benchOrg, benchCode
	if i%11 == 10 {
		org, code = "ДВД г. Алматы", "1901"
	}
	e := siobroker.RequestEntry{
		RequestID: fmt.Sprintf("%08x-5d41-4c7a-9f16-2e8d7c5b4a39", i), Seq: int64(3*i + 1), LastSeq: int64(3*i + 3), At: at,
		MessageID: fmt.Sprintf("7c9e6679-7425-40de-944b-%012x", i), SignerIIN: "85020240" + fmt.Sprintf("%04d", i%10000),
		SignerName: "СЛЕДОВАТЕЛЬ ИВАНОВ ИВАН ИВАНОВИЧ", Organisation: org, ERDRCode: code, Department: []string{"СУ", "ОУР", "ОД"}[i%3],
		Basis: siobroker.Basis(1 + i%6), Case: "2615000310" + fmt.Sprintf("%05d", i%100000) + "; instruction 2-15-25/1234",
		Article: "190", Subject: siobroker.Subject{IIN: "870315123455"}, Services: []int{1, 5, 11},
		Purpose:         "Установление имущества подозреваемого по уголовному делу",
		ServiceOutcomes: []siobroker.ServiceOutcome{{Service: 1, Status: "ok", Reason: "OK"}, {Service: 5, Status: "ok", Reason: "NO_DATA"}, {Service: 11, Status: "denied", Reason: "DENIED_BASIS"}},
		RepliedAt:       at.Add(1200 * time.Millisecond),
	}
	e.Settle()
	return e
}

// benchStore generates the shared store of BenchmarkReport.
func benchStore(b *testing.B) *benchWorld {
	benchOnce.Do(func() {
		ctx := context.Background()
		rows := envInt("SIOBENCH_REPORT_ROWS", 1_000_000)
		db, reg, clock, controller, err := newBenchUsers(ctx, "report-bench-")
		if err != nil {
			benchErr = err
			return
		}
		start := time.Now()
		total := rows + rows/10
		const batch = 10000
		var through int64
		for i := 0; i < total; i += batch {
			es := make([]siobroker.RequestEntry, 0, batch)
			for k := i; k < min(i+batch, total); k++ {
				es = append(es, benchEntry(k, rows))
			}
			next := es[len(es)-1].LastSeq
			if benchErr = db.PutRequestEntries(ctx, through, next, es); benchErr != nil {
				return
			}
			through = next
		}
		b.Logf("generated %d request index entries in %s", total, time.Since(start).Round(time.Second))
		// The journal is empty, so the report's catch-up finds nothing to fold: the index is
		// what is measured.
		indexer, err := NewIndexer(IndexerConfig{}, db.Journal(), db, db, nil)
		if err != nil {
			benchErr = err
			return
		}
		svc, err := New(Config{TempDir: os.Getenv("SIOBENCH_DATA_DIR")}, db.Journal(), indexer, reg, clock, nil)
		if err != nil {
			benchErr = err
			return
		}
		benchShared = &benchWorld{db: db, svc: svc, controller: controller, rows: rows}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchShared
}

func BenchmarkReport(b *testing.B) {
	w := benchStore(b)
	year := soap.ReportQuery{From: benchYear, To: benchYear.AddDate(1, 0, 0)}
	tenth := soap.ReportQuery{From: benchYear, To: benchYear.Add(benchYear.AddDate(1, 0, 0).Sub(benchYear) / 10)}
	for _, c := range []struct {
		name string
		q    soap.ReportQuery
	}{
		{"csv/tenth", tenth}, {"csv/year", year}, {"xlsx/tenth", tenth}, {"xlsx/year", year}, {"summary/year", year},
	} {
		c.q.Format, c.q.Kind = soap.ReportCSV, soap.ReportRequests
		switch c.name[:4] {
		case "xlsx":
			c.q.Format = soap.ReportXLSX
		case "summ":
			c.q.Kind = soap.ReportSummary
		}
		b.Run(c.name, func(b *testing.B) { benchReport(b, w, c.q) })
	}
}

func benchReport(b *testing.B, w *benchWorld, q soap.ReportQuery) {
	ctx := context.Background()
	runtime.GC()
	peak := watchHeap()
	var rows, out int64
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		var n countingWriter
		count, err := w.svc.StreamReport(ctx, w.controller, "bench", q, func(string, int, string) (io.Writer, error) { return &n, nil })
		if err != nil {
			b.Fatal(err)
		}
		if q.Kind == soap.ReportSummary {
			// The summary's rows are a few per month: its cost is per request summed up.
			count = w.rows
		}
		rows += int64(count)
		out += n.n
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&m1)
	maxHeap := peak()
	if rows == 0 {
		b.Fatal("the report held no rows")
	}
	b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(rows), "cpu-us/row")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(rows), "allocs/row")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(rows), "B-alloc/row")
	b.ReportMetric(float64(out)/float64(rows), "B-out/row")
	b.ReportMetric(float64(maxHeap)/(1<<20), "peak-heap-MB")
}

// countingWriter counts what a report writes, and keeps nothing.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// watchHeap samples the live heap every 5 ms until the returned func is called, which returns the
// largest sample.
func watchHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		peak := read()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				peak = max(peak, read())
			case <-done:
				result <- max(peak, read())
				return
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-result
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkReindex(b *testing.B) {
	ctx := context.Background()
	requests := envInt("SIOBENCH_REINDEX_REQUESTS", 20_000)
	db, _, _, controller, err := newBenchUsers(ctx, "reindex-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// A signed request is about 6 KB with its signature and certificate: the query's envelope,
	// padded with a header of that size, as the broker journals the bytes it received.
	pad := make([]byte, 4<<10)
	for i := range pad {
		pad[i] = 'A' + byte(i%26)
	}
	header := []byte("<soapenv:Header><Security>" + string(pad) + "</Security></soapenv:Header><soapenv:Body")
	j := db.Journal()
	var recs []siobroker.JournalRecord
	for i := range requests {
		e := benchEntry(i, requests)
		raw, err := soap.Serialize(soap.NewRequest(siobroker.RequestInfo{MessageID: e.MessageID, MessageDate: e.At, SenderID: "IS"},
			siobroker.Query{Basis: e.Basis, Case: siobroker.CaseRef{Number: "261500031000123"}, Article: "190", Subject: e.Subject,
				Services: e.Services, Purpose: e.Purpose}))
		if err != nil {
			b.Fatal(err)
		}
		raw = bytes.Replace(raw, []byte("<soapenv:Body"), header, 1)
		rec := func(kind siobroker.JournalKind, service int, code string, data []byte) siobroker.JournalRecord {
			return siobroker.JournalRecord{At: e.At, Kind: kind, RequestID: e.RequestID, MessageID: e.MessageID, SignerIIN: controller,
				Organisation: benchOrg, Service: service, Code: code, Data: data}
		}
		recs = append(recs, rec(siobroker.JournalRequest, 0, "", raw))
		for _, o := range e.ServiceOutcomes {
			recs = append(recs, rec(siobroker.JournalExchange, o.Service, string(o.Status)+"/"+o.Reason, []byte(`{"times":{},"status":"ok","records":1}`)))
		}
		recs = append(recs, rec(siobroker.JournalReply, 0, "", pad))
		if len(recs) >= 2000 || i == requests-1 {
			if _, err := j.Append(ctx, recs...); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	head, _, err := j.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	indexer, err := NewIndexer(IndexerConfig{}, j, db, db, nil)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		through, err := indexer.Rebuild(ctx, nil)
		if err != nil || through != head {
			b.Fatalf("rebuilt through %d of %d: %v", through, head, err)
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(head), "records/op")
	b.ReportMetric(float64(requests), "requests/op")
	b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(head)/float64(b.N), "cpu-us/record")
}
