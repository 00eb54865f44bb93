package sqlite

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// BenchmarkJournalCommit measures what a durable commit costs on the journal's real path
// (DB.Journal().Append, through the write turn and group commit), with synchronous=full and
// synchronous=normal, one append at a time and SIOBENCH_INFLIGHT (default 8, the load's
// requests in flight) at once. Each append is one record of 3 KB, about a signed request's size.
// It reports appends/s and the process's CPU milliseconds per append (user and system, from
// getrusage). make bench runs it in the same run as the loads and reports FULL ÷ NORMAL;
// SIOBENCH_DATA_DIR puts the store on another disk than the test's temporary directory.
func BenchmarkJournalCommit(b *testing.B) {
	inflight := 8
	if v, err := strconv.Atoi(os.Getenv("SIOBENCH_INFLIGHT")); err == nil && v > 0 {
		inflight = v
	}
	for _, sync := range []Synchronous{SynchronousFull, SynchronousNormal} {
		for _, n := range []int{1, inflight} {
			b.Run(fmt.Sprintf("sync=%s/inflight=%d", sync, n), func(b *testing.B) { benchAppends(b, sync, n) })
		}
	}
}

func benchAppends(b *testing.B, sync Synchronous, inflight int) {
	dir := b.TempDir()
	if base := os.Getenv("SIOBENCH_DATA_DIR"); base != "" {
		var err error
		if dir, err = os.MkdirTemp(base, "journal-commit-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	ctx := context.Background()
	db, err := OpenWith(ctx, dir, Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	j := db.Journal()
	data := make([]byte, 3<<10)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	rec := siobroker.JournalRecord{At: time.Now(), Kind: siobroker.JournalRequest, RequestID: "bench", Data: data}
	// One append first: the statements are prepared and the WAL exists before the clock starts.
	if _, err := j.Append(ctx, rec); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	done := make(chan error, inflight)
	cpu0 := cpuTime()
	b.ResetTimer()
	for range inflight {
		go func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := j.Append(ctx, rec); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range inflight {
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
