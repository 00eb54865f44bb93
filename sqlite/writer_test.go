package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/sio-pso/siobroker"
)

// TestWritesKeepTheirPages: every write runs on the store's one writer connection, whose cache of
// pages survives from one write to the next, reads through the pool between them notwithstanding
// (a connection drops its cache when another one has written since its last transaction, so
// writes spread over the pool read every page they touched from the file again); and the
// writer's savepoints' sub-journals stay in memory (temp_store MEMORY).
func TestWritesKeepTheirPages(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	appendAndRead := func(i int) {
		t.Helper()
		rec := siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: fmt.Sprintf("r-%d", i), Data: make([]byte, 3000)}
		if _, err := db.Journal().Append(ctx, rec); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM journal`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		appendAndRead(i)
	}
	status := func(op sqlite.DBStatusOp, reset bool) int {
		t.Helper()
		if db.writer == nil {
			t.Fatal("the store has no writer connection after 50 writes")
		}
		var current int
		err := db.writer.Raw(func(dc any) error {
			var err error
			current, _, err = dc.(sqlite.DBStatus).Status(op, reset)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return current
	}
	status(sqlite.DBStatusCacheMiss, true)
	status(sqlite.DBStatusCacheHit, true)
	for i := 50; i < 150; i++ {
		appendAndRead(i)
	}
	// A journal append reads the chain's head and writes a row, its six indexes and the pages
	// they split: with a kept cache, only pages new to the file are missed.
	if misses, hits := status(sqlite.DBStatusCacheMiss, false), status(sqlite.DBStatusCacheHit, false); hits < 100 || misses > hits/10 {
		t.Errorf("100 writes missed the writer's cache %d times (hit %d): its pages were dropped between writes", misses, hits)
	}

	var tempStore int
	if err := db.writer.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&tempStore); err != nil {
		t.Fatal(err)
	}
	if tempStore != 2 {
		t.Errorf("the writer's temp_store = %d, want 2 (MEMORY): the savepoints' sub-journals would spill into files", tempStore)
	}
}

// TestWriteAfterCloseFails: a write that comes after Close has begun fails, and opens no writer
// connection that nothing would close.
func TestWriteAfterCloseFails(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkSeen(ctx, "m-1", "s", time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkSeen(ctx, "m-2", "s", time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)); err == nil {
		t.Fatal("a write after Close was taken")
	}
	if db.writer != nil {
		t.Error("a write after Close opened a writer connection")
	}
}
