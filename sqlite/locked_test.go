package sqlite_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/sqlite"
	"github.com/sio-pso/siobroker/sqlite/sqlitetest"
)

// TestWriteFailsWhileLockHeld: with another connection holding the write lock, every write fails
// with the write timeout's error instead of waiting for the lock, the writes queued behind the
// first one too; none of them is made, and the store takes writes again once the lock is free.
func TestWriteFailsWhileLockHeld(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const timeout = time.Second
	db, err := sqlite.OpenWith(ctx, dir, sqlite.Options{WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	j := db.Journal()
	release := sqlitetest.HoldWriteLock(t, dir)

	at := time.Date(2026, 12, 7, 1, 0, 0, 0, siobroker.Astana)
	writes := map[string]func() error{
		"journal append": func() error {
			_, err := j.Append(ctx, siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: "r-1"})
			return err
		},
		"journal append once": func() error {
			_, err := j.AppendOnce(ctx, siobroker.JournalRecord{At: at, Kind: siobroker.JournalExchange, RequestID: "r-1", Service: 1})
			return err
		},
		"replay mark": func() error {
			_, _, err := db.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-1", SenderID: "s", Digest: "digest", At: at})
			return err
		},
		"release": func() error { return db.Release(ctx, "m-1", "digest") },
	}
	type outcome struct {
		err  error
		took time.Duration
	}
	var mu sync.Mutex
	got := map[string]outcome{}
	var wg sync.WaitGroup
	for name, write := range writes {
		wg.Go(func() {
			start := time.Now()
			err := write()
			mu.Lock()
			got[name] = outcome{err, time.Since(start)}
			mu.Unlock()
		})
		// Staggered, so that later writes queue behind a batch already waiting for the lock.
		time.Sleep(timeout / 10)
	}
	wg.Wait()
	for name, o := range got {
		if !errors.Is(o.err, siobroker.ErrWriteTimeout) || !errors.Is(o.err, context.DeadlineExceeded) {
			t.Errorf("%s with the write lock held: %v, want an error wrapping ErrWriteTimeout and context.DeadlineExceeded", name, o.err)
		}
		// Not a performance target: a write that waits for the lock beyond its timeout hangs
		// the request it serves, which is what this guards against.
		t.Logf("%s: failed after %s: %v", name, o.took.Round(time.Millisecond), o.err)
		if o.took > 3*timeout {
			t.Errorf("%s failed after %s, want within its write timeout (%s) and a margin", name, o.took, timeout)
		}
	}

	release()
	if seq, _, err := j.Head(ctx); err != nil || seq != 0 {
		t.Fatalf("journal head %d, %v after failed appends; want nothing appended", seq, err)
	}
	if _, err := j.Append(ctx, siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: "r-2"}); err != nil {
		t.Fatalf("append once the lock is free: %v", err)
	}
}

// TestWriteHonoursContext: a caller whose context ends before the write timeout gets its
// context's error, not the store's timeout.
func TestWriteHonoursContext(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.OpenWith(context.Background(), dir, sqlite.Options{WriteTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sqlitetest.HoldWriteLock(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = db.MarkSeen(ctx, "m-1", "s", time.Now())
	if !errors.Is(err, context.Canceled) || errors.Is(err, siobroker.ErrWriteTimeout) {
		t.Fatalf("write cancelled by its caller: %v, want context.Canceled", err)
	}
}
