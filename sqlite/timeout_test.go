package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// holdWriteLock takes SQLite's write lock on the store in dir from a connection of its own, as
// another process would (BEGIN IMMEDIATE), and returns the func that gives it back.
func holdWriteLock(t *testing.T, dir string) (release func()) {
	t.Helper()
	other, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=busy_timeout(1000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
				t.Errorf("give back the write lock: %v", err)
			}
			conn.Close()
			other.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// TestWriteFailsWhileLockHeld: with another connection holding the write lock, every write fails
// with the write timeout's error instead of waiting for the lock, the writes queued behind the
// first one too; none of them is made, and the store takes writes again once the lock is free.
func TestWriteFailsWhileLockHeld(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const timeout = time.Second
	db, err := OpenWith(ctx, dir, Options{WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	j := db.Journal()
	release := holdWriteLock(t, dir)

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
	db, err := OpenWith(context.Background(), dir, Options{WriteTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	holdWriteLock(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = db.MarkSeen(ctx, "m-1", "s", time.Now())
	if !errors.Is(err, context.Canceled) || errors.Is(err, siobroker.ErrWriteTimeout) {
		t.Fatalf("write cancelled by its caller: %v, want context.Canceled", err)
	}
}

// TestSynchronousOption: the store commits with synchronous=FULL unless told otherwise, on every
// connection of its pool; an unknown setting is refused.
func TestSynchronousOption(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		opts Options
		want int // PRAGMA synchronous: 1 normal, 2 full
	}{
		{Options{}, 2},
		{Options{Synchronous: SynchronousFull}, 2},
		{Options{Synchronous: SynchronousNormal}, 1},
	} {
		db, err := OpenWith(ctx, t.TempDir(), c.opts)
		if err != nil {
			t.Fatal(err)
		}
		// Several connections at once, so that the pool opens more than one.
		conns := make([]*sql.Conn, 3)
		for i := range conns {
			if conns[i], err = db.db.Conn(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := conns[i].QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != c.want {
				t.Errorf("%+v: connection %d runs synchronous=%d, want %d", c.opts, i, n, c.want)
			}
		}
		for _, conn := range conns {
			conn.Close()
		}
		if n, err := db.Synchronous(ctx); err != nil || n != c.want {
			t.Errorf("%+v: Synchronous() = %d, %v; want %d", c.opts, n, err, c.want)
		}
		db.Close()
	}
	if _, err := OpenWith(ctx, t.TempDir(), Options{Synchronous: "extra"}); err == nil {
		t.Error("synchronous \"extra\" was accepted")
	}
}
