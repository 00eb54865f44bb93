// Package sqlitetest holds the test fixtures of the embedded store that tests of several packages
// need: another process's write lock on the store, for the tests of what a locked store does.
package sqlitetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sio-pso/siobroker/sqlite"
)

// HoldWriteLock takes SQLite's write lock on the store in dir from a connection of its own, as
// another process holding a write transaction would (BEGIN IMMEDIATE), and returns the func that
// gives it back; the test's cleanup gives it back too. It waits up to 10 s for the lock, for a
// store busy with a loaded broker's writes.
func HoldWriteLock(t testing.TB, dir string) (release func()) {
	t.Helper()
	other, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatalf("take the store's write lock: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
				t.Errorf("give back the store's write lock: %v", err)
			}
			conn.Close()
			other.Close()
		})
	}
	t.Cleanup(release)
	return release
}
